/* The command line, from one table (see options.h). */
#include "options.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/app.h"
#include "core/fdio.h"
#include "core/log.h"
#include "http/forwarded.h"
#include "http/request.h"
#include "http/server.h"
#include "version.h"

enum opt_kind {
    K_SECTION,  /* a heading in --help, not an option */
    K_SIZE,     /* a number with K/M/G suffixes, in lo..hi */
    K_COUNT,    /* the same, shown without suffixes */
    K_DURATION, /* 500ms, 10s, 1.5 (seconds), stored as int64_t ms */
    K_MODE,     /* octal permissions, 0..0777 */
    K_WORD,     /* one of words: stores its index */
    K_STRING,   /* kept as given */
    K_LIST,     /* repeatable: every value kept (struct options_list) */
    K_CHECK,    /* a string the row's check function parses */
    K_FLAG,     /* no value: sets an int to 1 */
    K_HELP,
    K_VERSION,
};

struct opt {
    const char *name; /* the long form, without dashes (K_SECTION: title) */
    char short_name;  /* 0: none */
    unsigned char kind;
    unsigned char off;        /* "off" is accepted: 0, or NULL for strings */
    unsigned char shown_only; /* dflt is for --help; the code sets it */
    const char *arg;          /* the value's name in --help */
    size_t field, width;      /* where in struct options, how many bytes */
    size_t given;             /* an int set to 1 when given (0: none) */
    uint64_t lo, hi;
    const char *const *words;                           /* K_WORD */
    int (*check)(struct options *o, const char *value); /* K_LIST, K_CHECK */
    const char *want; /* what check accepts, for the error line */
    const char *dflt; /* the default, applied before argv unless shown_only */
    const char *help;
};

#define AT(f)                                                                  \
    .field = offsetof(struct options, f),                                      \
    .width = sizeof(((struct options *)0)->f)
#define GIVEN(f) .given = offsetof(struct options, f)
#define SECTION(title)                                                         \
    {                                                                          \
        .name = title, .kind = K_SECTION                                       \
    }

static int opt_listen_ok(struct options *o, const char *v);
static int opt_stream_ok(struct options *o, const char *v);
static int opt_forwarded(struct options *o, const char *v);

static const char *const opt_levels[] = {"error", "warn", "info", "debug",
                                         NULL};
static const char *const opt_formats[] = {"combined", "json", NULL};

/* Every flag coserve takes. Rows are tried in order; --help prints them in
 * this order, with their defaults. */
static const struct opt opt_table[] = {
    SECTION("serving"),
    {.name = "listen",
     .short_name = 'b',
     .kind = K_LIST,
     .arg = "ADDR",
     AT(listen),
     .check = opt_listen_ok,
     .want = "HOST:PORT, [V6]:PORT or unix:PATH",
     .dflt = "127.0.0.1:8080",
     .help = "where to listen: HOST:PORT, [V6]:PORT or unix:PATH; repeat it "
             "to serve on several (sockets from systemd, LISTEN_FDS, win)"},
    {.name = "workers",
     .short_name = 'w',
     .kind = K_COUNT,
     .arg = "N",
     AT(workers),
     .lo = 1,
     .hi = 256,
     .shown_only = 1,
     .dflt = "one per core",
     .help = "worker processes"},
    {.name = "apps",
     .kind = K_STRING,
     .arg = "DIR",
     AT(apps),
     .dflt = "build/apps",
     .help = "load every .so in DIR (it must exist)"},
    {.name = "www",
     .kind = K_STRING,
     .off = 1,
     .arg = "DIR",
     AT(www),
     .dflt = "www",
     .help = "static files; off serves none"},
    {.name = "stream-listen",
     .kind = K_LIST,
     .arg = "NAME=ADDR",
     AT(streams),
     .check = opt_stream_ok,
     .want = "NAME=HOST:PORT, NAME=unix:PATH or NAME=off",
     .dflt = "the app's .listen",
     .shown_only = 1,
     .help = "where stream app NAME listens (HOST:PORT, unix:PATH, or off); "
             "repeatable; wins over COSERVE_STREAM_LISTEN (NAME=ADDR,...); "
             "--max-connections counts per listener"},
    {.name = "access-log",
     .kind = K_STRING,
     .off = 1,
     .arg = "FILE",
     AT(access_log),
     .dflt = "-",
     .help = "the access log: a file, - for stdout, or off"},
    {.name = "access-log-format",
     .kind = K_WORD,
     .arg = "FORMAT",
     AT(access_format),
     .words = opt_formats,
     .dflt = "combined",
     .help = "combined (nginx's, plus the request time) or json (one object "
             "per line)"},
    {.name = "log-level",
     .kind = K_WORD,
     .arg = "LEVEL",
     AT(log_level),
     .words = opt_levels,
     .dflt = "info",
     .help = "the error log's: error, warn, info or debug (app stderr lines "
             "are warn)"},
    {.name = "forwarded-allow-ips",
     .kind = K_CHECK,
     .arg = "LIST",
     .check = opt_forwarded,
     .want = "addresses, CIDR networks, unix or *",
     .dflt = "127.0.0.1,::1,unix",
     .help = "peers whose X-Forwarded-For/-Proto are believed (* = all)"},
    {.name = "metrics-listen",
     .kind = K_STRING,
     .off = 1,
     .arg = "ADDR",
     AT(metrics_listen),
     .dflt = "off",
     .help = "serve GET /metrics (Prometheus) and GET /status (JSON) there, "
             "from the master"},
    {.name = "pid-file",
     .short_name = 'p',
     .kind = K_STRING,
     .off = 1,
     .arg = "FILE",
     AT(pid_file),
     .dflt = "off",
     .help = "write the master's pid there"},

    SECTION("sockets and privileges"),
    {.name = "socket-mode",
     .kind = K_MODE,
     .arg = "MODE",
     AT(socket_mode),
     .dflt = "0660",
     .help = "permissions of a unix socket"},
    {.name = "socket-owner",
     .kind = K_STRING,
     .arg = "USER[:GROUP]",
     AT(privs.socket_owner),
     .shown_only = 1,
     .dflt = "unchanged",
     .help = "owner (and group) of a unix socket"},
    {.name = "socket-group",
     .kind = K_STRING,
     .arg = "GROUP",
     AT(privs.socket_group),
     .shown_only = 1,
     .dflt = "unchanged",
     .help = "group of a unix socket (for Debian's nginx: www-data, mode "
             "0660)"},
    {.name = "user",
     .short_name = 'u',
     .kind = K_STRING,
     .arg = "USER",
     AT(privs.user),
     .shown_only = 1,
     .dflt = "unchanged",
     .help = "run as USER (and its groups) once the sockets are bound (as "
             "root: needed to run apps unprivileged)"},
    {.name = "group",
     .short_name = 'g',
     .kind = K_STRING,
     .arg = "GROUP",
     AT(privs.group),
     .shown_only = 1,
     .dflt = "unchanged",
     .help = "run as GROUP once the sockets are bound"},

    SECTION("limits (sizes take K/M/G suffixes; times take ms or s, bare = "
            "s)"),
    {.name = "max-url-bytes",
     .kind = K_SIZE,
     .arg = "N",
     AT(http.limits.max_url),
     .lo = 16,
     .hi = 64 * 1024,
     .dflt = "8K",
     .help = "request target, else 414"},
    {.name = "max-header-bytes",
     .kind = K_SIZE,
     .arg = "N",
     AT(http.limits.max_head),
     .lo = 256,
     .hi = HTTP_BUF_SIZE - 1024,
     .dflt = "12K",
     .help = "request line + headers, else 431"},
    {.name = "max-headers",
     .kind = K_COUNT,
     .arg = "N",
     AT(http.limits.max_headers),
     .lo = 1,
     .hi = HTTP_MAX_HEADERS_CAP,
     .dflt = "100",
     .help = "header lines, else 431"},
    {.name = "max-body-bytes",
     .kind = K_SIZE,
     .arg = "N",
     AT(http.limits.max_body),
     .hi = UINT64_MAX,
     .dflt = "16M",
     .help = "request body, else 413"},
    {.name = "header-timeout",
     .kind = K_DURATION,
     .arg = "T",
     AT(http.limits.header_timeout_ms),
     .dflt = "10s",
     .help = "the whole head must arrive in T from the accept, else 408"},
    {.name = "body-timeout",
     .kind = K_DURATION,
     .arg = "T",
     AT(http.limits.body_timeout_ms),
     .dflt = "30s",
     .help = "each body read waits at most T"},
    {.name = "keepalive-timeout",
     .kind = K_DURATION,
     .arg = "T",
     AT(http.limits.keepalive_timeout_ms),
     .dflt = "30s",
     .help = "idle keep-alive connections close"},
    {.name = "write-timeout",
     .kind = K_DURATION,
     .arg = "T",
     AT(http.limits.write_timeout_ms),
     .dflt = "30s",
     .help = "a response making no progress for T is cut"},
    {.name = "graceful-timeout",
     .kind = K_DURATION,
     .arg = "T",
     AT(worker.grace_ms),
     .dflt = "30s",
     .help = "in-flight requests get T at SIGTERM"},
    {.name = "request-timeout",
     .kind = K_DURATION,
     .off = 1,
     .arg = "T",
     AT(http.limits.request_timeout_ms),
     .dflt = "off",
     .help = "a handler running longer is cancelled; the client gets 504 if "
             "nothing was sent"},
    {.name = "ws-max-message",
     .kind = K_SIZE,
     .arg = "N",
     AT(http.limits.ws_max_message),
     .lo = 125,
     .hi = 1024ull * 1024 * 1024,
     .dflt = "1M",
     .help = "a WebSocket message (reassembled, inflated), else close 1009"},
    {.name = "ws-ping-interval",
     .kind = K_DURATION,
     .arg = "T",
     AT(http.limits.ws_ping_ms),
     .dflt = "30s",
     .help = "a WebSocket on which nothing moved one way for T is "
             "pinged"},
    {.name = "ws-idle-timeout",
     .kind = K_DURATION,
     .arg = "T",
     AT(http.limits.ws_idle_ms),
     .dflt = "75s",
     .help = "a WebSocket peer silent for T is closed (1001)"},
    {.name = "max-connections",
     .kind = K_COUNT,
     .arg = "N",
     AT(http.limits.max_conns),
     .lo = 1,
     .hi = 1000000,
     .dflt = "10000",
     .help = "open connections per worker; more wait in the backlog"},
    {.name = "max-requests",
     .kind = K_COUNT,
     .off = 1,
     .arg = "N",
     AT(worker.max_requests),
     .hi = UINT64_MAX,
     .dflt = "off",
     .help = "a worker is recycled after N requests"},
    {.name = "max-requests-jitter",
     .kind = K_COUNT,
     .arg = "N",
     AT(worker.max_requests_jitter),
     .hi = UINT64_MAX,
     .dflt = "0",
     .help = "plus a random 0..N per worker"},

    SECTION("runtime"),
    {.name = "stack-size",
     .kind = K_SIZE,
     .arg = "N",
     AT(stack_size),
     GIVEN(stack_size_set),
     .lo = 16 * 1024,
     .hi = 1024 * 1024 * 1024,
     .shown_only = 1,
     .dflt = "256K, or COSERVE_STACK_SIZE",
     .help = "coroutine stack size"},
    {.name = "offload-threads",
     .kind = K_COUNT,
     .arg = "N",
     AT(offload_threads),
     GIVEN(offload_threads_set),
     .lo = 1,
     .hi = 1024,
     .shown_only = 1,
     .dflt = "4, or COSERVE_OFFLOAD_THREADS",
     .help = "blocking-work thread pool"},
    {.name = "sendfile-max-chunk",
     .kind = K_SIZE,
     .arg = "N",
     AT(sendfile_chunk),
     GIVEN(sendfile_chunk_set),
     .lo = FDIO_SENDFILE_CHUNK_MIN,
     .hi = FDIO_SENDFILE_CHUNK_MAX,
     .shown_only = 1,
     .dflt = "2M",
     .help = "most bytes one sendfile() sends before the worker serves "
             "others"},
    {.name = "block-threshold",
     .kind = K_DURATION,
     .off = 1,
     .arg = "T",
     AT(block_ms),
     .dflt = "100ms",
     .help = "log a backtrace when a handler keeps its worker from its loop "
             "longer than T"},
    {.name = "timeout",
     .short_name = 't',
     .kind = K_DURATION,
     .off = 1,
     .arg = "T",
     AT(timeout_ms),
     .dflt = "30s",
     .help = "a worker whose loop is blocked longer than T is killed and "
             "replaced, after its backtrace is logged"},
    {.name = "no-hooks",
     .kind = K_FLAG,
     AT(no_hooks),
     .help = "leave blocking libc calls (sleep, read, connect, poll, "
             "getaddrinfo...) blocking in apps instead of cooperative"},
    {.name = "version",
     .short_name = 'v',
     .kind = K_VERSION,
     .help = "print coserve's version"},
    {.name = "help", .short_name = 'h', .kind = K_HELP, .help = "this text"},
};

#define OPT_COUNT (sizeof opt_table / sizeof *opt_table)

/* ---- values ------------------------------------------------------------ */

/* The one error line, and the exit status that goes with it. */
__attribute__((format(printf, 1, 2))) static int opt_bad(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* one line, whatever the value held */
    for (char *p = line; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    fprintf(stderr, "coserve: %s\n", line);
    return 2;
}

static int opt_number(const char *s, uint64_t *out)
{
    char *end;
    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || errno)
        return -1;
    unsigned shift = 0;
    if (*end == 'k' || *end == 'K')
        shift = 10, end++;
    else if (*end == 'm' || *end == 'M')
        shift = 20, end++;
    else if (*end == 'g' || *end == 'G')
        shift = 30, end++;
    if (*end || (shift && v > (UINT64_MAX >> shift)))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

static int opt_duration(const char *s, int64_t *ms)
{
    char *end;
    if ((*s < '0' || *s > '9') && *s != '.')
        return -1;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || v < 0 || v > 1e9)
        return -1;
    if (strcmp(end, "ms") == 0)
        *ms = (int64_t)v;
    else if (!*end || strcmp(end, "s") == 0)
        *ms = (int64_t)(v * 1000);
    else
        return -1;
    return *ms > 0 ? 0 : -1;
}

/* "64K" for 65536: a range reads as the user would write it. */
static void opt_size_text(uint64_t v, int suffixes, char *buf, size_t len)
{
    const char *units = "KMG";
    int u = -1;
    while (suffixes && u < 2 && v >= 1024 && v % 1024 == 0)
        v /= 1024, u++;
    snprintf(buf, len, "%llu%.*s", (unsigned long long)v, u >= 0 ? 1 : 0,
             u >= 0 ? units + u : "");
}

/* What a row accepts, for its error line. */
static void opt_want(const struct opt *o, char *buf, size_t len)
{
    char lo[32], hi[32];
    size_t n = 0;
    switch (o->kind) {
    case K_SIZE:
    case K_COUNT:
        if (o->hi == UINT64_MAX) {
            n = (size_t)snprintf(buf, len, "%s",
                                 o->kind == K_SIZE ? "a size like 16M"
                                                   : "a count");
            break;
        }
        opt_size_text(o->lo, o->kind == K_SIZE, lo, sizeof lo);
        opt_size_text(o->hi, o->kind == K_SIZE, hi, sizeof hi);
        n = (size_t)snprintf(buf, len, "%s..%s", lo, hi);
        break;
    case K_DURATION:
        n = (size_t)snprintf(buf, len, "a duration like 10s or 500ms");
        break;
    case K_MODE:
        n = (size_t)snprintf(buf, len, "an octal mode like 0660");
        break;
    case K_WORD:
        for (size_t i = 0; o->words[i] && n < len; i++)
            n += (size_t)snprintf(buf + n, len - n, "%s%s",
                                  i == 0            ? ""
                                  : o->words[i + 1] ? ", "
                                                    : " or ",
                                  o->words[i]);
        break;
    default:
        n = (size_t)snprintf(buf, len, "%s", o->want ? o->want : "a value");
    }
    if (o->off && o->kind != K_STRING && n < len)
        snprintf(buf + n, len - n, ", or off");
}

static void opt_store(struct options *opts, const struct opt *o, uint64_t v)
{
    char *p = (char *)opts + o->field;
    switch (o->width) {
    case 1:
        *(uint8_t *)p = (uint8_t)v;
        break;
    case 2:
        *(uint16_t *)p = (uint16_t)v;
        break;
    case 4:
        *(uint32_t *)p = (uint32_t)v;
        break;
    default:
        *(uint64_t *)p = v;
    }
}

/* Parses value for row o into opts. 0, or -1 if the value is bad. */
static int opt_apply(struct options *opts, const struct opt *o,
                     const char *value)
{
    uint64_t v = 0;
    int64_t ms = 0;
    char *end;
    int off = o->off && strcmp(value, "off") == 0;
    switch (o->kind) {
    case K_SIZE:
    case K_COUNT:
        if (!off && (opt_number(value, &v) < 0 || v < o->lo || v > o->hi))
            return -1;
        opt_store(opts, o, v);
        break;
    case K_DURATION:
        if (!off && opt_duration(value, &ms) < 0)
            return -1;
        opt_store(opts, o, (uint64_t)ms);
        break;
    case K_MODE:
        errno = 0;
        v = strtoull(value, &end, 8);
        if (*value < '0' || *value > '7' || *end || errno || v > 0777)
            return -1;
        opt_store(opts, o, v);
        break;
    case K_WORD:
        for (v = 0; o->words[v] && strcmp(o->words[v], value); v++)
            ;
        if (!o->words[v])
            return -1;
        opt_store(opts, o, v);
        break;
    case K_STRING:
        *(const char **)((char *)opts + o->field) = off ? NULL : value;
        break;
    case K_LIST: {
        struct options_list *l = (void *)((char *)opts + o->field);
        if (l->count == OPTIONS_LIST_MAX || o->check(opts, value) < 0)
            return -1;
        l->items[l->count++] = value;
        break;
    }
    case K_CHECK:
        return o->check(opts, value);
    case K_FLAG:
        opt_store(opts, o, 1);
        break;
    }
    if (o->given)
        *(int *)((char *)opts + o->given) = 1;
    return 0;
}

static int opt_listen_ok(struct options *o, const char *v)
{
    (void)o;
    if (strncmp(v, "unix:", 5) == 0)
        return v[5] ? 0 : -1;
    const char *colon = strrchr(v, ':');
    return colon && colon != v && colon[1] ? 0 : -1;
}

static int opt_stream_ok(struct options *o, const char *v)
{
    (void)o;
    return app__streams_check(v);
}

static int opt_forwarded(struct options *o, const char *v)
{
    return forwarded__parse(&o->http.routing, v);
}

/* ---- parsing ----------------------------------------------------------- */

static const struct opt *opt_find_long(const char *name, size_t len)
{
    for (size_t i = 0; i < OPT_COUNT; i++)
        if (opt_table[i].kind != K_SECTION &&
            strlen(opt_table[i].name) == len &&
            memcmp(opt_table[i].name, name, len) == 0)
            return &opt_table[i];
    return NULL;
}

static const struct opt *opt_find_short(char c)
{
    for (size_t i = 0; i < OPT_COUNT; i++)
        if (opt_table[i].short_name == c)
            return &opt_table[i];
    return NULL;
}

static int opt_defaults(struct options *opts)
{
    memset(opts, 0, sizeof *opts);
    http__config_defaults(&opts->http);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    opts->workers = ncpu > 0 && ncpu <= 256 ? (unsigned)ncpu : 1;
    for (size_t i = 0; i < OPT_COUNT; i++) {
        const struct opt *o = &opt_table[i];
        if (o->dflt && !o->shown_only && opt_apply(opts, o, o->dflt) < 0) {
            /* the table itself is wrong: say which row */
            return opt_bad("built-in default of --%s ('%s') is invalid",
                           o->name, o->dflt);
        }
        if (o->given)
            *(int *)((char *)opts + o->given) = 0;
    }
    return -1;
}

/* COSERVE_STREAM_LISTEN: entries before the flags', so a flag wins. */
static int opt_env_streams(struct options *opts)
{
    const char *env = getenv("COSERVE_STREAM_LISTEN");
    if (!env || !*env)
        return -1;
    /* kept for the process's life: the list points into it */
    char *copy = strdup(env), *save = NULL;
    if (!copy)
        return opt_bad("COSERVE_STREAM_LISTEN: %s", strerror(errno));
    for (char *t = strtok_r(copy, ",", &save); t;
         t = strtok_r(NULL, ",", &save)) {
        struct options_list *l = &opts->streams;
        if (l->count == OPTIONS_LIST_MAX || app__streams_check(t) < 0)
            return opt_bad("COSERVE_STREAM_LISTEN: want NAME=ADDR,... (ADDR "
                           "may be off), not '%s'",
                           t);
        l->items[l->count++] = t;
    }
    return -1;
}

/* One option with its value (NULL if none was there). Returns -1 to go on,
 * or an exit status. */
static int opt_one(struct options *opts, const struct opt *o, const char *flag,
                   const char *value, unsigned char *seen)
{
    if (o->kind == K_HELP) {
        options__usage(stdout);
        return 0;
    }
    if (o->kind == K_VERSION) {
        printf("coserve %s\n", COSERVE_VERSION);
        return 0;
    }
    if (o->kind == K_FLAG) {
        if (value)
            return opt_bad("%s: takes no value, not '%s'", flag, value);
    } else if (!value) {
        return opt_bad("%s: wants a value (see --help)", flag);
    }
    size_t i = (size_t)(o - opt_table);
    /* a list's default gives way to the first value given */
    if (o->kind == K_LIST && !seen[i] && o->dflt && !o->shown_only)
        ((struct options_list *)(void *)((char *)opts + o->field))->count = 0;
    seen[i] = 1;
    if (opt_apply(opts, o, value) < 0) {
        char want[256];
        opt_want(o, want, sizeof want);
        if (o->kind == K_LIST &&
            (((struct options_list *)(void *)((char *)opts + o->field))
                 ->count == OPTIONS_LIST_MAX))
            return opt_bad("--%s: at most %d, not '%s'", o->name,
                           OPTIONS_LIST_MAX, value);
        return opt_bad("--%s: want %s, not '%s'", o->name, want, value);
    }
    return -1;
}

int options__parse(struct options *opts, int argc, char **argv)
{
    unsigned char seen[OPT_COUNT] = {0};
    int rc = opt_defaults(opts);
    if (rc < 0)
        rc = opt_env_streams(opts);
    for (int i = 1; rc < 0 && i < argc; i++) {
        const char *a = argv[i];
        const struct opt *o;
        if (strcmp(a, "--") == 0) {
            if (i + 1 < argc)
                return opt_bad("unexpected argument '%s' (see --help)",
                               argv[i + 1]);
            break;
        }
        if (a[0] == '-' && a[1] == '-') {
            const char *eq = strchr(a + 2, '=');
            size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
            if (!(o = opt_find_long(a + 2, len)))
                return opt_bad("unknown option '%.*s' (see --help)",
                               (int)(len + 2), a);
            const char *value = eq ? eq + 1 : NULL;
            if (!eq && o->kind != K_FLAG && o->kind != K_HELP &&
                o->kind != K_VERSION && i + 1 < argc)
                value = argv[++i];
            char flag[80];
            snprintf(flag, sizeof flag, "--%s", o->name);
            rc = opt_one(opts, o, flag, value, seen);
        } else if (a[0] == '-' && a[1]) {
            if (!(o = opt_find_short(a[1])))
                return opt_bad("unknown option '-%c' (see --help)", a[1]);
            const char *value = a[2] ? a + 2 : NULL;
            if (!value && o->kind != K_FLAG && o->kind != K_HELP &&
                o->kind != K_VERSION && i + 1 < argc)
                value = argv[++i];
            char flag[80];
            snprintf(flag, sizeof flag, "--%s", o->name);
            rc = opt_one(opts, o, flag, value, seen);
        } else {
            return opt_bad("unexpected argument '%s' (see --help)", a);
        }
    }
    if (rc >= 0)
        return rc;
    log__level = (enum log_level)opts->log_level;
    /* a head limit below the target limit caps it */
    if (opts->http.limits.max_url > opts->http.limits.max_head)
        opts->http.limits.max_url = opts->http.limits.max_head;
    return -1;
}

/* ---- --help ------------------------------------------------------------ */

#define OPT_HELP_COL 32
#define OPT_HELP_WIDTH 79

/* Writes text word-wrapped from column `col` (the cursor is there). */
static void opt_wrap(FILE *out, const char *text, int col)
{
    int at = col;
    const char *p = text;
    while (*p) {
        const char *sp = strchr(p, ' ');
        int w = sp ? (int)(sp - p) : (int)strlen(p);
        if (at > col && at + 1 + w > OPT_HELP_WIDTH) {
            fprintf(out, "\n%*s", col, "");
            at = col;
        } else if (at > col) {
            fputc(' ', out);
            at++;
        }
        fprintf(out, "%.*s", w, p);
        at += w;
        p += w;
        while (*p == ' ')
            p++;
    }
    fputc('\n', out);
}

void options__usage(FILE *out)
{
    fprintf(out, "usage: coserve [options]\n");
    for (size_t i = 0; i < OPT_COUNT; i++) {
        const struct opt *o = &opt_table[i];
        if (o->kind == K_SECTION) {
            fprintf(out, "\n%s:\n", o->name);
            continue;
        }
        char head[96];
        int n = snprintf(
            head, sizeof head, "  %c%c%s--%s%s%s", o->short_name ? '-' : ' ',
            o->short_name ? o->short_name : ' ', o->short_name ? ", " : "  ",
            o->name, o->arg ? " " : "", o->arg ? o->arg : "");
        fputs(head, out);
        if (n + 1 > OPT_HELP_COL)
            fprintf(out, "\n%*s", OPT_HELP_COL, "");
        else
            fprintf(out, "%*s", OPT_HELP_COL - n, "");
        char text[512];
        if (o->dflt)
            snprintf(text, sizeof text, "%s (default: %s)", o->help, o->dflt);
        else
            snprintf(text, sizeof text, "%s", o->help);
        opt_wrap(out, text, OPT_HELP_COL);
    }
}
