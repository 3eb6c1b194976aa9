/*
 * coserve's command line: parse flags, load apps, open the listener, serve.
 *
 * main() parses flags and binds the listener; master.c forks the workers,
 * and each worker (main_worker) loads the apps and serves with http/.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "app/app.h"
#include "core/fdio.h"
#include "core/hook.h"
#include "core/log.h"
#include "core/offload.h"
#include "core/stack.h"
#include "core/watchdog.h"
#include "http/server.h"
#include "http/static.h"
#include "master.h"
#include "privs.h"
#include "sockets.h"
#include "stream/stream.h"
#include "version.h"

static struct static_root main_www;
static int main_have_www;

static int main_static(co_request_t *req, co_response_t *res)
{
    return static__serve(&main_www, req, res);
}

static const struct http_route main_static_route = {
    .name = "static", .mount = "", .handler = main_static};

/* What the master hands each worker it forks. */
struct main_worker_ctx {
    struct http_config cfg;
    const char *apps;
    int listen_fd;
    struct app_table table;
    int ready_fd;
    struct stream_set streams; /* the stream apps' listeners */
    struct app_stream_opts stream_opts;
};

/* In the worker's hub, before it accepts: init the apps, then tell the
 * master we serve (a reload retires the old workers only after this). */
static void main_apps_start(void *arg)
{
    struct main_worker_ctx *w = arg;
    app__init_all(&w->table);
    /* stream apps ask the master for their sockets over ready_fd, so
     * before the ready byte */
    w->stream_opts.ask_ctx = w;
    app__streams_start(&w->table, &w->streams, &w->stream_opts);
    if (w->ready_fd >= 0) {
        ssize_t n = write(w->ready_fd, "1", 1);
        (void)n;
        close(w->ready_fd);
        w->ready_fd = -1;
    }
}

/* A stop begins: stream connections get the grace HTTP requests get. */
static void main_apps_drain(void *arg, int64_t grace_ms)
{
    struct main_worker_ctx *w = arg;
    stream__drain(&w->streams, grace_ms);
}

static void main_apps_stop(void *arg)
{
    struct main_worker_ctx *w = arg;
    stream__finish(&w->streams); /* before fini: handlers run app code */
    app__fini_all(&w->table);
}

/* A stream app's socket: the master binds it and keeps it (sockets.h). */
static int main_ask_stream(void *arg, const char *spec, char *err,
                           size_t errlen)
{
    struct main_worker_ctx *w = arg;
    if (w->ready_fd < 0) {
        snprintf(err, errlen, "no master to ask");
        return -1;
    }
    return sockets__ask(w->ready_fd, spec, err, errlen);
}

static int main_socket_mode = 0660;
static struct privs main_privs;

/* In the master: a stream app's listener, unix sockets with the mode of
 * --socket-mode. */
static int main_listen_stream(const char *spec, char *err, size_t errlen)
{
    int fd = http__listen(spec, err, errlen);
    if (fd >= 0 && strncmp(spec, "unix:", 5) == 0 &&
        chmod(spec + 5, (mode_t)main_socket_mode) < 0) {
        snprintf(err, errlen, "chmod %s: %s", spec + 5, strerror(errno));
        close(fd);
        return -1;
    }
    /* after the drop only a group of --user's is possible: the error
     * says so */
    if (fd >= 0 && strncmp(spec, "unix:", 5) == 0 &&
        privs__chown_socket(&main_privs, spec + 5, err, errlen) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* --stream-listen entries, after COSERVE_STREAM_LISTEN's (comma
 * separated): a later entry for an app wins. */
#define MAIN_STREAMS_MAX 64
static const char *main_streams[MAIN_STREAMS_MAX];
static size_t main_nstreams;

static int main_add_stream(const char *entry)
{
    if (main_nstreams == MAIN_STREAMS_MAX || app__streams_check(entry) < 0)
        return -1;
    main_streams[main_nstreams++] = entry;
    return 0;
}

static int main_env_streams(void)
{
    const char *env = getenv("COSERVE_STREAM_LISTEN");
    char *copy = env && *env ? strdup(env) : NULL, *save = NULL;
    for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; t;
         t = strtok_r(NULL, ",", &save))
        if (main_add_stream(t) < 0)
            return -1; /* copy stays: main_streams points into it */
    return 0;
}

static int main_worker(void *arg, int ready_fd, struct watchdog_shared *slot,
                       struct http_stats *stats)
{
    struct main_worker_ctx *w = arg;
    w->ready_fd = ready_fd;
    /* the hub publishes its heartbeat there, for the master's --timeout */
    watchdog__set_shared(slot);
    /* Apps load here, in the worker, never in the master: a reload then
     * picks up the .so files as they are now, and a crashing init takes
     * down a worker, not the supervisor. */
    if (app__load_dir(&w->table, w->apps) < 0)
        log_warn("--apps %s: %s; serving no apps", w->apps, strerror(errno));
    w->cfg.route = app__route;
    w->cfg.route_ctx = &w->table;
    /* --metrics-listen: the apps get their label index before serving */
    w->cfg.stats = stats;
    if (stats)
        stats__init(stats);
    for (size_t i = 0; stats && i < w->table.count; i++)
        w->table.apps[i].route.stats_id =
            stats__app(stats, w->table.apps[i].route.name);
    w->cfg.on_start = main_apps_start;
    w->cfg.on_stop = main_apps_stop;
    w->cfg.on_drain = main_apps_drain;
    stream__set_init(&w->streams);
    w->cfg.hooks_ctx = w;
    int rc = http__serve(&w->cfg, w->listen_fd);
    /* the apps' offload hooks (fini) must run while their code is mapped */
    offload__shutdown();
    app__unload_all(&w->table);
    if (main_have_www)
        static__close(&main_www);
    if (w->cfg.access_log)
        fflush(w->cfg.access_log);
    return rc == 0 ? 0 : 1;
}

/* systemd socket activation: LISTEN_PID is us and LISTEN_FDS >= 1 means
 * fd 3 is a listening socket made for us. Returns it, or -1. */
static int main_socket_activation(void)
{
    const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
    if (!pid || !fds || atoi(pid) != (int)getpid() || atoi(fds) < 1)
        return -1;
    int fd = 3;
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    return fd;
}

/* COSERVE_LISTEN: where this server's HTTP listener is, for apps that
 * call the server itself (fanout): "unix:PATH" or "HOST:PORT". A request
 * on a unix socket carries no address an app could dial, and a socket
 * from systemd is known only by its fd, so it is asked for its name. */
static void main_export_listen(int fd, const char *spec, int activated)
{
    char buf[NI_MAXHOST + NI_MAXSERV + 8];
    if (activated) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        char host[NI_MAXHOST], port[NI_MAXSERV];
        if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
            return;
        if (ss.ss_family == AF_UNIX) {
            const struct sockaddr_un *un = (const struct sockaddr_un *)&ss;
            if (len <= offsetof(struct sockaddr_un, sun_path) ||
                !un->sun_path[0])
                return; /* unnamed or abstract: no path to give */
            snprintf(buf, sizeof buf, "unix:%.*s",
                     (int)(len - offsetof(struct sockaddr_un, sun_path)),
                     un->sun_path);
        } else if (getnameinfo((struct sockaddr *)&ss, len, host, sizeof host,
                               port, sizeof port,
                               NI_NUMERICHOST | NI_NUMERICSERV) == 0) {
            snprintf(buf, sizeof buf, "%s%s%s:%s", strchr(host, ':') ? "[" : "",
                     host, strchr(host, ':') ? "]" : "", port);
        } else {
            return;
        }
        spec = buf;
    }
    setenv("COSERVE_LISTEN", spec, 1);
}

/* --pid-file: the master's pid, for logrotate's postrotate (USR1) and
 * scripts; the master keeps its pid across reloads. */
static int main_write_pid_file(const char *path)
{
    char line[32];
    int n = snprintf(line, sizeof line, "%d\n", (int)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    int ok = write(fd, line, (size_t)n) == n;
    int e = errno;
    if (close(fd) < 0 || !ok) {
        errno = ok ? errno : e;
        return -1;
    }
    return 0;
}

static void main_usage(FILE *out)
{
    fprintf(
        out,
        "usage: coserve [options]\n"
        "\n"
        "  --listen HOST:PORT|unix:PATH  where to listen (127.0.0.1:8080; "
        "systemd\n"
        "                              socket activation, LISTEN_FDS, wins)\n"
        "  --socket-mode MODE          permissions of a unix socket (0660)\n"
        "  --socket-owner USER[:GROUP] owner (and group) of a unix socket\n"
        "  --socket-group GROUP        group of a unix socket (for Debian's\n"
        "                              nginx: www-data, mode 0660)\n"
        "  --user USER, --group GROUP  run as USER (its groups) / GROUP once\n"
        "                              the sockets are bound (as root: needed\n"
        "                              to run apps unprivileged)\n"
        "  --pid-file FILE             write the master's pid there\n"
        "  --metrics-listen HOST:PORT|unix:PATH\n"
        "                              serve GET /metrics (Prometheus) and\n"
        "                              GET /status (JSON) there, from the\n"
        "                              master (off)\n"
        "  --workers N                 worker processes (one per core)\n"
        "  --forwarded-allow-ips LIST  peers whose X-Forwarded-For/-Proto are\n"
        "                              believed (127.0.0.1,::1,unix; * = all)\n"
        "  --apps DIR                  load every .so in DIR (build/apps)\n"
        "  --stream-listen NAME=ADDR   where stream app NAME listens "
        "(HOST:PORT,\n"
        "                              unix:PATH, or off); wins over its "
        ".listen\n"
        "                              and COSERVE_STREAM_LISTEN "
        "(NAME=ADDR,...);\n"
        "                              --max-connections counts per "
        "listener\n"
        "  --www DIR                   static files (www); 'off' serves none\n"
        "  --access-log FILE|-|off     combined log + request time (-: "
        "stdout)\n"
        "  --log-level LEVEL           error, warn, info, debug (info)\n"
        "\n"
        "limits (sizes take K/M suffixes; times take ms/s suffixes, bare = "
        "s):\n"
        "  --max-url-bytes N           request target, else 414 (8K)\n"
        "  --max-header-bytes N        request line + headers, else 431 (12K)\n"
        "  --max-headers N             header lines, else 431 (100)\n"
        "  --max-body-bytes N          request body, else 413 (16M)\n"
        "  --header-timeout T          whole head must arrive in T, else 408 "
        "(10s)\n"
        "  --body-timeout T            each body read waits at most T (30s)\n"
        "  --keepalive-timeout T       idle keep-alive connections close "
        "(30s)\n"
        "  --write-timeout T           a response making no progress for T is "
        "cut\n"
        "                              (30s)\n"
        "  --sendfile-max-chunk N      most bytes one sendfile() sends before "
        "the\n"
        "                              worker serves others (2M)\n"
        "  --graceful-timeout T        in-flight requests get T at SIGTERM "
        "(30s)\n"
        "  --max-connections N         open connections; more wait in the "
        "backlog\n"
        "                              (10000)\n"
        "  --request-timeout T         a handler running longer is cancelled; "
        "the\n"
        "                              client gets 504 if nothing was sent "
        "(off)\n"
        "  --max-requests N            a worker is recycled after N requests "
        "(off)\n"
        "  --max-requests-jitter N     plus a random 0..N per worker (0)\n"
        "  --stack-size N              coroutine stack size (256K)\n"
        "  --offload-threads N         blocking-work thread pool (4)\n"
        "  --block-threshold T|off     log a backtrace when a handler keeps "
        "its\n"
        "                              worker from its loop longer than T "
        "(100ms)\n"
        "  --timeout T|off             a worker whose loop is blocked longer "
        "than T\n"
        "                              is killed and replaced, after its "
        "backtrace\n"
        "                              is logged (30s)\n"
        "  --no-hooks                  leave blocking libc calls (sleep, read,\n"
        "                              connect, poll, getaddrinfo...) blocking\n"
        "                              in apps instead of cooperative\n"
        "  --version                   print coserve's version\n"
        "  --help                      this text\n");
}

static int main_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || errno || *s == '-')
        return -1;
    if (*end == 'k' || *end == 'K')
        v <<= 10, end++;
    else if (*end == 'm' || *end == 'M')
        v <<= 20, end++;
    else if (*end == 'g' || *end == 'G')
        v <<= 30, end++;
    if (*end)
        return -1;
    *out = v;
    return 0;
}

static int main_time(const char *s, int64_t *ms)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || v < 0)
        return -1;
    if (strcmp(end, "ms") == 0)
        *ms = (int64_t)v;
    else if (!*end || strcmp(end, "s") == 0)
        *ms = (int64_t)(v * 1000);
    else
        return -1;
    return *ms > 0 ? 0 : -1;
}

enum {
    OPT_LISTEN = 256,
    OPT_APPS,
    OPT_WWW,
    OPT_ACCESS,
    OPT_LEVEL,
    OPT_URL,
    OPT_HEAD,
    OPT_HEADERS,
    OPT_BODY,
    OPT_HTO,
    OPT_BTO,
    OPT_KTO,
    OPT_WTO,
    OPT_GRACE,
    OPT_RTO,
    OPT_CONNS,
    OPT_STACK,
    OPT_OFFLOAD,
    OPT_WORKERS,
    OPT_MODE,
    OPT_FWD,
    OPT_MAXREQ,
    OPT_JITTER,
    OPT_NOHOOKS,
    OPT_BLOCK,
    OPT_SENDFILE,
    OPT_TIMEOUT,
    OPT_STREAM,
    OPT_VERSION,
    OPT_SOCK_OWNER,
    OPT_SOCK_GROUP,
    OPT_USER,
    OPT_GROUP,
    OPT_PIDFILE,
    OPT_METRICS
};

static const struct option main_options[] = {
    {"listen", required_argument, 0, OPT_LISTEN},
    {"apps", required_argument, 0, OPT_APPS},
    {"www", required_argument, 0, OPT_WWW},
    {"access-log", required_argument, 0, OPT_ACCESS},
    {"log-level", required_argument, 0, OPT_LEVEL},
    {"max-url-bytes", required_argument, 0, OPT_URL},
    {"max-header-bytes", required_argument, 0, OPT_HEAD},
    {"max-headers", required_argument, 0, OPT_HEADERS},
    {"max-body-bytes", required_argument, 0, OPT_BODY},
    {"header-timeout", required_argument, 0, OPT_HTO},
    {"body-timeout", required_argument, 0, OPT_BTO},
    {"keepalive-timeout", required_argument, 0, OPT_KTO},
    {"write-timeout", required_argument, 0, OPT_WTO},
    {"graceful-timeout", required_argument, 0, OPT_GRACE},
    {"request-timeout", required_argument, 0, OPT_RTO},
    {"workers", required_argument, 0, OPT_WORKERS},
    {"socket-mode", required_argument, 0, OPT_MODE},
    {"forwarded-allow-ips", required_argument, 0, OPT_FWD},
    {"max-requests", required_argument, 0, OPT_MAXREQ},
    {"max-requests-jitter", required_argument, 0, OPT_JITTER},
    {"max-connections", required_argument, 0, OPT_CONNS},
    {"stack-size", required_argument, 0, OPT_STACK},
    {"offload-threads", required_argument, 0, OPT_OFFLOAD},
    {"no-hooks", no_argument, 0, OPT_NOHOOKS},
    {"block-threshold", required_argument, 0, OPT_BLOCK},
    {"sendfile-max-chunk", required_argument, 0, OPT_SENDFILE},
    {"timeout", required_argument, 0, OPT_TIMEOUT},
    {"stream-listen", required_argument, 0, OPT_STREAM},
    {"version", no_argument, 0, OPT_VERSION},
    {"socket-owner", required_argument, 0, OPT_SOCK_OWNER},
    {"socket-group", required_argument, 0, OPT_SOCK_GROUP},
    {"user", required_argument, 0, OPT_USER},
    {"group", required_argument, 0, OPT_GROUP},
    {"pid-file", required_argument, 0, OPT_PIDFILE},
    {"metrics-listen", required_argument, 0, OPT_METRICS},
    {"help", no_argument, 0, 'h'},
    {0, 0, 0, 0},
};

#define MAIN_BAD(...)                                                          \
    do {                                                                       \
        fprintf(stderr, "coserve: " __VA_ARGS__);                              \
        fputc('\n', stderr);                                                   \
        return 2;                                                              \
    } while (0)

/* More connections than fds makes accept fail with EMFILE: raise the soft
 * limit to the hard one, as nginx's worker_rlimit_nofile would. */
static void main_raise_nofile(unsigned want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want + 64)
        log_warn("open-file limit %llu is below --max-connections %u",
                 (unsigned long long)rl.rlim_cur, want);
}

int main(int argc, char **argv)
{
    const char *listen_spec = "127.0.0.1:8080", *apps = "build/apps",
               *www = "www", *access = "-", *pid_file = NULL,
               *metrics_spec = NULL;
    struct http_config cfg;
    http__config_defaults(&cfg);
    int opt;
    uint64_t v;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned workers = ncpu > 0 ? (unsigned)ncpu : 1;
    int socket_mode = 0660;
    if (main_env_streams() < 0)
        MAIN_BAD("COSERVE_STREAM_LISTEN: want NAME=ADDR,... (ADDR may be "
                 "off)");
    int hooks = 1;
    int64_t block_ms = 100;
    int64_t timeout_ms = 30000;
    while ((opt = getopt_long(argc, argv, "h", main_options, NULL)) != -1) {
        switch (opt) {
        case OPT_LISTEN:
            listen_spec = optarg;
            break;
        case OPT_APPS:
            apps = optarg;
            break;
        case OPT_WWW:
            www = optarg;
            break;
        case OPT_ACCESS:
            access = optarg;
            break;
        case OPT_LEVEL: {
            int l = log__parse_level(optarg);
            if (l < 0)
                MAIN_BAD("--log-level: '%s' is not error, warn, info or debug",
                         optarg);
            log__level = (enum log_level)l;
            break;
        }
        case OPT_URL:
            if (main_size(optarg, &v) || v < 16 || v > 65536)
                MAIN_BAD("--max-url-bytes: want 16..64K, not '%s'", optarg);
            cfg.max_url = v;
            break;
        case OPT_HEAD:
            if (main_size(optarg, &v) || v < 256 || v > HTTP_BUF_SIZE - 1024)
                MAIN_BAD("--max-header-bytes: want 256..%d, not '%s'",
                         HTTP_BUF_SIZE - 1024, optarg);
            cfg.max_head = v;
            break;
        case OPT_HEADERS:
            if (main_size(optarg, &v) || v < 1 || v > HTTP_MAX_HEADERS_CAP)
                MAIN_BAD("--max-headers: want 1..%d, not '%s'",
                         HTTP_MAX_HEADERS_CAP, optarg);
            cfg.max_headers = (unsigned)v;
            break;
        case OPT_BODY:
            if (main_size(optarg, &v))
                MAIN_BAD("--max-body-bytes: '%s' is not a size", optarg);
            cfg.max_body = v;
            break;
        case OPT_HTO:
        case OPT_BTO:
        case OPT_KTO:
        case OPT_WTO:
        case OPT_GRACE:
        case OPT_RTO: {
            int64_t ms;
            if (main_time(optarg, &ms))
                MAIN_BAD("%s: '%s' is not a duration like 10s or 500ms",
                         argv[optind - 2], optarg);
            int64_t *slot[] = {&cfg.header_timeout_ms,
                               &cfg.body_timeout_ms,
                               &cfg.keepalive_timeout_ms,
                               &cfg.write_timeout_ms,
                               &cfg.grace_ms,
                               &cfg.request_timeout_ms};
            *slot[opt - OPT_HTO] = ms;
            break;
        }
        case OPT_WORKERS:
            if (main_size(optarg, &v) || v < 1 || v > 256)
                MAIN_BAD("--workers: want 1..256, not '%s'", optarg);
            workers = (unsigned)v;
            break;
        case OPT_MODE: {
            char *end;
            long mode = strtol(optarg, &end, 8);
            if (*end || mode < 0 || mode > 0777)
                MAIN_BAD("--socket-mode: '%s' is not an octal mode", optarg);
            socket_mode = (int)mode;
            break;
        }
        case OPT_FWD:
            if (forwarded__parse(&cfg, optarg) < 0)
                MAIN_BAD("--forwarded-allow-ips: cannot parse '%s' (want "
                         "addresses, CIDR networks, unix or *)",
                         optarg);
            break;
        case OPT_MAXREQ:
        case OPT_JITTER:
            if (main_size(optarg, &v))
                MAIN_BAD("%s: '%s' is not a count", argv[optind - 2], optarg);
            *(opt == OPT_MAXREQ ? &cfg.max_requests
                                : &cfg.max_requests_jitter) = v;
            break;
        case OPT_CONNS:
            if (main_size(optarg, &v) || v < 1 || v > 1000000)
                MAIN_BAD("--max-connections: want 1..1000000, not '%s'",
                         optarg);
            cfg.max_conns = (unsigned)v;
            break;
        case OPT_STACK:
            if (main_size(optarg, &v) || stack__set_size(v) < 0)
                MAIN_BAD("--stack-size: '%s' is not a size up to 1G", optarg);
            break;
        case OPT_OFFLOAD:
            if (main_size(optarg, &v) || co_offload_set_threads((unsigned)v))
                MAIN_BAD("--offload-threads: want 1..1024, not '%s'", optarg);
            break;
        case OPT_NOHOOKS:
            hooks = 0;
            break;
        case OPT_BLOCK:
            if (strcmp(optarg, "off") == 0)
                block_ms = 0;
            else if (main_time(optarg, &block_ms))
                MAIN_BAD("--block-threshold: '%s' is not a duration like "
                         "100ms or 1s, or off",
                         optarg);
            break;
        case OPT_TIMEOUT:
            if (strcmp(optarg, "off") == 0)
                timeout_ms = 0;
            else if (main_time(optarg, &timeout_ms))
                MAIN_BAD("--timeout: '%s' is not a duration like 30s, or off",
                         optarg);
            break;
        case OPT_STREAM:
            if (main_add_stream(optarg) < 0)
                MAIN_BAD("--stream-listen: want NAME=HOST:PORT, NAME=unix:PATH "
                         "or NAME=off, not '%s'",
                         optarg);
            break;
        case OPT_SENDFILE:
            if (main_size(optarg, &v) || fdio__set_sendfile_chunk(v) < 0)
                MAIN_BAD("--sendfile-max-chunk: want 4K..1G, not '%s'", optarg);
            break;
        case OPT_VERSION:
            printf("coserve %s\n", COSERVE_VERSION);
            return 0;
        case OPT_SOCK_OWNER:
            main_privs.socket_owner = optarg;
            break;
        case OPT_SOCK_GROUP:
            main_privs.socket_group = optarg;
            break;
        case OPT_USER:
            main_privs.user = optarg;
            break;
        case OPT_GROUP:
            main_privs.group = optarg;
            break;
        case OPT_PIDFILE:
            pid_file = optarg;
            break;
        case OPT_METRICS:
            metrics_spec = optarg;
            break;
        case 'h':
            main_usage(stdout);
            return 0;
        default:
            main_usage(stderr);
            return 2;
        }
    }
    if (optind < argc)
        MAIN_BAD("unexpected argument '%s' (see --help)", argv[optind]);
    char perr[300];
    if (privs__resolve(&main_privs, perr, sizeof perr) < 0)
        MAIN_BAD("%s", perr);
    if (cfg.max_url > cfg.max_head)
        cfg.max_url = cfg.max_head;
    hook__enabled = hooks;
    watchdog__set_threshold(block_ms);
    watchdog__set_timeout(timeout_ms);
    watchdog__set_crash_reports(1);

    if (strcmp(access, "off") == 0) {
        cfg.access_log = NULL;
    } else if (strcmp(access, "-") == 0) {
        cfg.access_log = stdout;
    } else {
        if (!(cfg.access_log = fopen(access, "a")))
            MAIN_BAD("--access-log %s: %s", access, strerror(errno));
        cfg.access_log_path = access;
    }

    if (strcmp(www, "off") != 0) {
        if (static__open(&main_www, www) < 0)
            MAIN_BAD("--www %s: %s", www, strerror(errno));
        main_have_www = 1;
        cfg.fallback = &main_static_route;
    }

    char err[512];
    int fd = main_socket_activation();
    int activated = fd >= 0;
    if (fd < 0) {
        fd = http__listen(listen_spec, err, sizeof err);
        if (fd < 0)
            MAIN_BAD("%s", err);
        if (strncmp(listen_spec, "unix:", 5) == 0 &&
            chmod(listen_spec + 5, (mode_t)socket_mode) < 0)
            MAIN_BAD("--socket-mode: chmod %s: %s", listen_spec + 5,
                     strerror(errno));
        const char *path = listen_spec + 5;
        if (strncmp(listen_spec, "unix:", 5) == 0 &&
            privs__chown_socket(&main_privs, path, err, sizeof err) < 0)
            MAIN_BAD("%s", err);
    }
    main_export_listen(fd, listen_spec, activated);
    /* the metrics listener: bound now, before the drop, like the others */
    main_socket_mode = socket_mode;
    int metrics_fd =
        metrics_spec ? main_listen_stream(metrics_spec, err, sizeof err) : -1;
    if (metrics_spec && metrics_fd < 0)
        MAIN_BAD("--metrics-listen %s: %s", metrics_spec, err);
    if (pid_file && main_write_pid_file(pid_file) < 0)
        MAIN_BAD("--pid-file %s: %s", pid_file, strerror(errno));
    /* every socket and file that needs them is open: drop privileges
     * before a worker (and so any app code) exists */
    if (privs__drop(&main_privs, err, sizeof err) < 0)
        MAIN_BAD("%s", err);
    main_raise_nofile(cfg.max_conns);
    fflush(stdout);

    static struct main_worker_ctx wctx;
    wctx.cfg = cfg;
    wctx.apps = apps;
    wctx.listen_fd = fd;
    wctx.ready_fd = -1;
    main_socket_mode = socket_mode;
    wctx.stream_opts =
        (struct app_stream_opts){.listen = main_streams,
                                 .nlisten = main_nstreams,
                                 .ask = main_ask_stream,
                                 .max_conns = cfg.max_conns,
                                 .write_timeout_ms = cfg.write_timeout_ms};
    struct master_config mcfg = {.workers = workers,
                                 .graceful_ms = cfg.grace_ms,
                                 .timeout_ms = timeout_ms,
                                 .worker_main = main_worker,
                                 .ctx = &wctx,
                                 .listen_fd = fd,
                                 .listen_activated = activated,
                                 .listen_stream = main_listen_stream,
                                 .metrics_on = metrics_fd >= 0,
                                 .metrics_fd = metrics_fd};
    int rc = master__run(&mcfg); /* it closes fd */
    /* systemd's socket stays: it is systemd's, for the next start */
    if (strncmp(listen_spec, "unix:", 5) == 0 && fd >= 0 && !activated)
        unlink(listen_spec + 5);
    if (pid_file)
        unlink(pid_file); /* may fail after a drop: then it is stale */
    if (metrics_spec && strncmp(metrics_spec, "unix:", 5) == 0)
        unlink(metrics_spec + 5);
    if (main_have_www)
        static__close(&main_www);
    if (cfg.access_log && cfg.access_log != stdout)
        fclose(cfg.access_log);
    log_info("stopped");
    return rc;
}
