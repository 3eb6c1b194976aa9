/*
 * harness.h - starts the real coserve binary and talks raw HTTP to it.
 *
 * Header-only (everything is static inline) and included by exactly one
 * test file per binary. Each Criterion test runs in its own process, so each
 * test starts its own server:
 *
 *   - h_setup() makes a temp dir: www/ (an index.html and a few files),
 *     apps/ (empty; fill it for loader tests), stderr.log, access.log.
 *     h_start() calls it if the test did not.
 *   - h_start(extra) picks a free loopback port (bind port 0, read it, close),
 *     fork+execs $COSERVE_BIN (build/plain/coserve) with --listen, --apps
 *     $COSERVE_APPS (build/apps), --www <temp www>, --access-log <temp file>,
 *     --graceful-timeout 3s, --workers $COSERVE_TEST_WORKERS (2) and then
 *     `extra` (getopt: later flags win), with stdout and stderr going to
 *     stderr.log. It is ready when every worker has logged "serving on" (so
 *     the port is ours and the apps are loaded) and connect() succeeds; a
 *     port lost to a race (EADDRINUSE) is retried with another. A sanitizer
 *     report or a dying worker during startup fails at once.
 *   - h_stop() sends SIGTERM, waits, and asserts exit status 0 and a log
 *     free of sanitizer reports and crashed workers (the master exits 0
 *     whatever its workers did, so the log is where a worker's ASan/UBSan
 *     report shows); the failure message quotes the server's stderr.
 *   - h_teardown() is every suite's .fini: it kills a server still running
 *     (a failed test) and removes the temp dir. The server also gets
 *     PR_SET_PDEATHSIG, so a test killed by a timeout leaves no orphan.
 *
 * Clients are plain sockets (non-blocking, every wait bounded by poll):
 * h_connect, h_send (reads whatever arrives while it writes, so a server
 * streaming back never deadlocks against us), h_read_response (status line,
 * headers, then a body framed by Content-Length, chunked encoding or close;
 * leftover bytes stay buffered, so pipelined responses split cleanly),
 * h_wait_eof / h_assert_closed, h_reset (SO_LINGER 0: an RST).
 */
#ifndef COSERVE_TESTS_HTTP_HARNESS_H
#define COSERVE_TESTS_HTTP_HARNESS_H

#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* A guard for waits that should succeed: generous, so a slow (sanitized)
 * server is never failed for being slow; only a hang hits it. */
#define H_GUARD_MS 10000
/* Waiting for the server to come up or to stop. */
#define H_START_MS 20000
#define H_STOP_MS 15000

/* ---- small utilities -------------------------------------------------- */

static inline int64_t h_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void h_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static inline const char *h_env(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v && *v ? v : def;
}

/* Reads a whole file (NUL-terminated, *len set if len). NULL if unreadable. */
static inline char *h_read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

static inline void h_write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
    const char *p = data;
    while (len) {
        ssize_t w = write(fd, p, len);
        cr_assert(w > 0, "write %s: %s", path, strerror(errno));
        p += w;
        len -= (size_t)w;
    }
    close(fd);
}

/* Finds needle in the first n bytes of hay (which may hold NULs). */
static inline const char *h_memmem(const void *hay, size_t n,
                                   const char *needle)
{
    return memmem(hay, n, needle, strlen(needle));
}

/* Fills buf with deterministic pseudo-random bytes (all 256 values). */
static inline void h_fill_random(char *buf, size_t n, uint32_t seed)
{
    uint32_t x = seed ? seed : 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = (char)(x >> 24);
    }
}

/* Raises the soft RLIMIT_NOFILE to at least want (up to the hard limit). */
static inline void h_raise_nofile(rlim_t want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want
                          ? want
                          : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* ---- the server process ----------------------------------------------- */

struct h_server {
    pid_t pid; /* -1 when not running */
    int port;
    char dir[128];      /* the test's temp dir */
    char www[192];      /* dir/www */
    char apps[192];     /* dir/apps (empty unless a test fills it) */
    char err_path[192]; /* the server's stdout + stderr */
    char log_path[192]; /* its access log */
};

static struct h_server h_srv = {.pid = -1};

#define H_INDEX_HTML "<!doctype html>\n<title>coserve test</title>\n<p>hi\n"

/* Makes the temp dir with a small www. Idempotent. */
static inline void h_setup(void)
{
    if (h_srv.dir[0])
        return;
    signal(SIGPIPE, SIG_IGN);
    snprintf(h_srv.dir, sizeof h_srv.dir, "/tmp/coserve-test-XXXXXX");
    cr_assert_not_null(mkdtemp(h_srv.dir), "mkdtemp: %s", strerror(errno));
    snprintf(h_srv.www, sizeof h_srv.www, "%s/www", h_srv.dir);
    snprintf(h_srv.apps, sizeof h_srv.apps, "%s/apps", h_srv.dir);
    snprintf(h_srv.err_path, sizeof h_srv.err_path, "%s/stderr.log", h_srv.dir);
    snprintf(h_srv.log_path, sizeof h_srv.log_path, "%s/access.log", h_srv.dir);
    cr_assert_eq(mkdir(h_srv.www, 0755), 0, "mkdir: %s", strerror(errno));
    cr_assert_eq(mkdir(h_srv.apps, 0755), 0, "mkdir: %s", strerror(errno));
    char path[512];
    snprintf(path, sizeof path, "%s/index.html", h_srv.www);
    h_write_file(path, H_INDEX_HTML, strlen(H_INDEX_HTML));
    snprintf(path, sizeof path, "%s/hello.txt", h_srv.www);
    h_write_file(path, "hello, static\n", 14);
    /* the notes app (when loaded) must not touch the developer's var/ */
    if (!getenv("COSERVE_NOTES_DB")) {
        snprintf(path, sizeof path, "%s/notes.db", h_srv.dir);
        setenv("COSERVE_NOTES_DB", path, 1);
    }
}

/* A path inside the temp dir (static buffer: copy it to keep two). */
static inline const char *h_path(const char *rel)
{
    static char buf[2][512];
    static int which;
    which ^= 1;
    snprintf(buf[which], sizeof buf[which], "%s/%s", h_srv.dir, rel);
    return buf[which];
}

/* The server's stdout + stderr so far (malloc'd, NUL-terminated). */
static inline char *h_stderr(void)
{
    char *s = h_read_file(h_srv.err_path, NULL);
    return s ? s : strdup("");
}

static inline int h_stderr_has(const char *needle)
{
    char *s = h_stderr();
    int found = strstr(s, needle) != NULL;
    free(s);
    return found;
}

/* How many times needle occurs in the server's stderr. */
static inline int h_stderr_count(const char *needle)
{
    char *s = h_stderr();
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    free(s);
    return n;
}

/* Waits (bounded) until the server's stderr contains needle. */
static inline int h_wait_stderr(const char *needle, int timeout_ms)
{
    int64_t end = h_now_ms() + timeout_ms;
    for (;;) {
        if (h_stderr_has(needle))
            return 1;
        if (h_now_ms() > end)
            return 0;
        h_sleep_ms(10);
    }
}

/* The last `max` bytes of stderr, for failure messages (static buffer). */
static inline const char *h_stderr_tail(size_t max)
{
    static char tail[8192];
    if (max >= sizeof tail)
        max = sizeof tail - 1;
    char *s = h_stderr();
    size_t n = strlen(s);
    const char *from = n > max ? s + n - max : s;
    snprintf(tail, sizeof tail, "%s", from);
    free(s);
    return tail;
}

/* The first sign of trouble in a coserve log, or NULL: a sanitizer report,
 * a fatal error, and (unless the test caused them: allow_deaths) a worker
 * that crashed or exited non-zero. The master's exit status says only
 * whether workers failed while it stopped, so the rest shows only here. */
/* LeakSanitizer's own tracer sometimes crashes at a worker's exit on this
 * kind of VM ("Tracer caught signal 11", then "LeakSanitizer has
 * encountered a fatal error" and exit status 1): the leak check did not
 * run, and nothing was found. Non-zero when that, and only that, is what
 * made a process of this log exit non-zero. */
static inline int h_lsan_tool_failed_only(const char *log)
{
    return log && strstr(log, "LeakSanitizer has encountered a fatal error") &&
           !strstr(log, "ERROR: LeakSanitizer: detected memory leaks") &&
           !strstr(log, "ERROR: AddressSanitizer") &&
           !strstr(log, "runtime error:") && !strstr(log, "killed by signal");
}

static inline const char *h_log_problem_in(const char *path, int allow_deaths)
{
    static const char *const bad[] = {"ERROR: AddressSanitizer",
                                      "ERROR: LeakSanitizer",
                                      "runtime error:",
                                      "fatal:",
                                      "killed by signal",
                                      "exited with status",
                                      NULL};
    int n = allow_deaths ? 4 : 6;
    char *log = h_read_file(path, NULL);
    if (h_lsan_tool_failed_only(log)) {
        cr_log_warn("LeakSanitizer's tracer failed at a worker's exit (no "
                    "leak check ran): not the server's fault");
        n = 4;
    }
    const char *found = NULL;
    for (int i = 0; log && i < n && !found; i++)
        if (strstr(log, bad[i]))
            found = bad[i];
    free(log);
    return found;
}

/* A master exit status to accept: 0, or 1 when the only failure in its log
 * is LeakSanitizer's tracer crashing at a worker's exit. */
static inline int h_exit_ok(int status, const char *path)
{
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 1;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 1)
        return 0;
    char *log = h_read_file(path, NULL);
    int ok = h_lsan_tool_failed_only(log);
    free(log);
    return ok;
}

static inline const char *h_log_problem(void)
{
    return h_log_problem_in(h_srv.err_path, 0);
}

/* fork + exec argv: stdin from /dev/null, stdout and stderr to log_path
 * (appended, or truncated first), each "NAME=value" of env (NULL-terminated,
 * or NULL) added to the environment. The child dies with the test. */
static inline pid_t h_spawn(const char *const *argv, const char *log_path,
                            int append, const char *const *env)
{
    int logfd = open(
        log_path,
        O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0644);
    cr_assert(logfd >= 0, "open %s: %s", log_path, strerror(errno));
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    cr_assert(devnull >= 0);
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        /* the child: only async-signal-safe calls until exec */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        dup2(devnull, 0);
        dup2(logfd, 1);
        dup2(logfd, 2);
        /* no inherited descriptor (Criterion's pipes) outlives exec */
        if (close_range(3, ~0U, 0) < 0)
            for (int fd = 3; fd < 4096; fd++)
                close(fd);
        signal(SIGPIPE, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        for (int i = 0; env && env[i]; i++)
            putenv((char *)env[i]);
        execv(argv[0], (char *const *)argv);
        static const char msg[] = "harness: exec failed\n";
        ssize_t w = write(2, msg, sizeof msg - 1);
        (void)w;
        _exit(127);
    }
    close(logfd);
    close(devnull);
    return pid;
}

/* A port that was free a moment ago (bind 127.0.0.1:0, read, close). */
static inline int h_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(fd >= 0, "socket: %s", strerror(errno));
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0, "bind: %s",
                 strerror(errno));
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

/* Connects a blocking socket to the server once (no retry); -1 on failure. */
static inline int h_try_connect_port(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* One attempt: 1 running, 0 lost the port (retry), fails the test otherwise. */
static inline int h_start_once(const char *const *extra)
{
    char listen_arg[64], port_text[16];
    h_srv.port = h_free_port();
    snprintf(port_text, sizeof port_text, "%d", h_srv.port);
    snprintf(listen_arg, sizeof listen_arg, "127.0.0.1:%d", h_srv.port);
    const char *argv[96];
    int argc = 0;
    argv[argc++] = h_env("COSERVE_BIN", "build/plain/coserve");
    argv[argc++] = "--listen";
    argv[argc++] = listen_arg;
    argv[argc++] = "--apps";
    argv[argc++] = h_env("COSERVE_APPS", "build/apps");
    argv[argc++] = "--www";
    argv[argc++] = h_srv.www;
    argv[argc++] = "--access-log";
    argv[argc++] = h_srv.log_path;
    argv[argc++] = "--graceful-timeout";
    argv[argc++] = "3s";
    /* every worker logs "serving on": wait for all of them */
    int workers = atoi(h_env("COSERVE_TEST_WORKERS", "2"));
    if (workers < 1)
        workers = 1;
    static char workers_text[16];
    snprintf(workers_text, sizeof workers_text, "%d", workers);
    argv[argc++] = "--workers";
    argv[argc++] = workers_text;
    for (int i = 0; extra && extra[i]; i++) {
        cr_assert(argc < 94, "too many server flags");
        argv[argc++] = extra[i];
        if (strcmp(extra[i], "--workers") == 0 && extra[i + 1])
            workers = atoi(extra[i + 1]) > 0 ? atoi(extra[i + 1]) : 1;
    }
    argv[argc] = NULL;

    pid_t pid = h_spawn(argv, h_srv.err_path, 0, NULL);
    h_srv.pid = pid;

    int64_t end = h_now_ms() + H_START_MS;
    for (;;) {
        int status;
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) {
            h_srv.pid = -1;
            char *err = h_stderr();
            int lost = strstr(err, "Address already in use") != NULL;
            if (!lost)
                cr_log_error("server stderr:\n%s", err);
            free(err);
            if (lost)
                return 0;
            cr_assert_fail("the server (%s) exited during startup with "
                           "status 0x%x; its stderr is above",
                           argv[0], status);
        }
        const char *bad = h_log_problem();
        if (bad) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            h_srv.pid = -1;
            cr_log_error("server stderr:\n%s", h_stderr_tail(6000));
            cr_assert_fail("the server failed while starting: its log says "
                           "\"%s\" (stderr above)",
                           bad);
        }
        if (h_stderr_count("serving on") >= workers) {
            int fd = h_try_connect_port(h_srv.port);
            if (fd >= 0) {
                close(fd);
                return 1;
            }
        }
        if (h_now_ms() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            h_srv.pid = -1;
            cr_assert_fail("the server did not come up within %d ms; "
                           "stderr:\n%s",
                           H_START_MS, h_stderr_tail(4000));
        }
        h_sleep_ms(5);
    }
}

/* Starts the server with extra flags (NULL-terminated array, or NULL). */
static inline void h_start(const char *const *extra)
{
    h_setup();
    cr_assert_eq(h_srv.pid, -1, "a server is already running");
    for (int attempt = 0; attempt < 8; attempt++)
        if (h_start_once(extra))
            return;
    cr_assert_fail("could not find a free port for the server in 8 tries");
}

/* The flags of h_start, written inline: h_start(H_ARGS("--www", "off")). */
#define H_ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* Is the server process still running? */
static inline int h_alive(void)
{
    if (h_srv.pid < 0)
        return 0;
    int status;
    pid_t w = waitpid(h_srv.pid, &status, WNOHANG);
    if (w == h_srv.pid) {
        h_srv.pid = -1;
        cr_log_error("the server exited unexpectedly (status 0x%x); "
                     "stderr:\n%s",
                     status, h_stderr_tail(4000));
        return 0;
    }
    return 1;
}

/* Stops the server with SIGTERM and asserts it exits with status 0. */
/* The pid of the master's one worker (its only child: --workers 1). */
static inline pid_t h_only_worker(void)
{
    char path[64], buf[64] = "";
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", h_srv.pid,
             h_srv.pid);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    cr_assert_not_null(fgets(buf, sizeof buf, f));
    fclose(f);
    pid_t pid = (pid_t)atoi(buf);
    cr_assert_gt(pid, 0);
    return pid;
}

/* A number from /proc/PID/FILE: the first line that matches format (a
 * scanf format with one %ld, e.g. "VmRSS: %ld kB" in status). */
static inline long h_proc_number(pid_t pid, const char *file,
                                 const char *format)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    long n = -1;
    int found = 0;
    while (!found && fgets(line, sizeof line, f))
        found = sscanf(line, format, &n) == 1;
    fclose(f);
    cr_assert(found, "no \"%s\" in %s", format, path);
    return n;
}

static inline void h_stop(void)
{
    cr_assert(h_srv.pid > 0, "no server running");
    pid_t pid = h_srv.pid;
    kill(pid, SIGTERM);
    int64_t end = h_now_ms() + H_STOP_MS;
    int status = 0;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            break;
        if (h_now_ms() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            h_srv.pid = -1;
            cr_assert_fail("the server did not stop within %d ms of SIGTERM; "
                           "stderr:\n%s",
                           H_STOP_MS, h_stderr_tail(4000));
        }
        h_sleep_ms(5);
    }
    h_srv.pid = -1;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        cr_log_error("server stderr:\n%s", h_stderr_tail(6000));
    cr_assert(WIFEXITED(status), "the server died of signal %d (stderr above)",
              WIFSIGNALED(status) ? WTERMSIG(status) : -1);
    cr_assert(h_exit_ok(status, h_srv.err_path),
              "the server exited with status %d, not 0 (a sanitizer "
              "report?); its stderr is above",
              WEXITSTATUS(status));
    /* The master exits 0 whatever its workers did: a worker's sanitizer
     * report or crash shows only in the log. */
    const char *bad = h_log_problem();
    if (bad) {
        cr_log_error("server stderr:\n%s", h_stderr_tail(6000));
        cr_assert_fail("the server's log says \"%s\" (stderr above)", bad);
    }
}

static inline int h_rm_entry(const char *path, const struct stat *st, int type,
                             struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    remove(path);
    return 0;
}

/* Every suite's .fini: kill a server left running, remove the temp dir. */
static inline void h_teardown(void)
{
    if (h_srv.pid > 0) {
        kill(h_srv.pid, SIGKILL);
        waitpid(h_srv.pid, NULL, 0);
        h_srv.pid = -1;
    }
    if (h_srv.dir[0] && !getenv("COSERVE_TEST_KEEP"))
        nftw(h_srv.dir, h_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    h_srv.dir[0] = '\0';
}

/* ---- clients ---------------------------------------------------------- */

struct h_conn {
    int fd;
    char *buf; /* received, not yet consumed */
    size_t len, cap;
    int eof;   /* the peer closed (FIN or RST) */
    int reset; /* ... with an RST (ECONNRESET) */
};

/* Connects (non-blocking connect, bounded); NULL if it fails. */
static inline struct h_conn *h_try_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return NULL;
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)h_srv.port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        if (errno != EINPROGRESS) {
            close(fd);
            return NULL;
        }
        struct pollfd p = {fd, POLLOUT, 0};
        int err = 0;
        socklen_t el = sizeof err;
        if (poll(&p, 1, H_GUARD_MS) != 1 ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err) {
            close(fd);
            return NULL;
        }
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct h_conn *c = calloc(1, sizeof *c);
    c->fd = fd;
    return c;
}

static inline struct h_conn *h_connect(void)
{
    struct h_conn *c = h_try_connect();
    cr_assert_not_null(c, "cannot connect to the server on port %d: %s",
                       h_srv.port, strerror(errno));
    return c;
}

static inline void h_close(struct h_conn *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    free(c->buf);
    free(c);
}

/* Closes with SO_LINGER 0, so the server gets an RST, not a FIN. */
static inline void h_reset(struct h_conn *c)
{
    struct linger lg = {1, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    h_close(c);
}

/* Half-closes our side (the server reads end of file). */
static inline void h_shutdown_write(struct h_conn *c)
{
    shutdown(c->fd, SHUT_WR);
}

/* Reads what is there right now into c->buf. 1: got bytes, 0: end of file
 * (or reset), -1: nothing yet. Never blocks. */
static inline int h_read_now(struct h_conn *c)
{
    if (c->eof)
        return 0;
    if (c->cap - c->len < 65536) {
        c->cap = c->cap ? c->cap * 2 : 131072;
        while (c->cap - c->len < 65536)
            c->cap *= 2;
        c->buf = realloc(c->buf, c->cap + 1);
    }
    ssize_t r = recv(c->fd, c->buf + c->len, c->cap - c->len, MSG_DONTWAIT);
    if (r > 0) {
        c->len += (size_t)r;
        c->buf[c->len] = '\0';
        return 1;
    }
    if (r == 0) {
        c->eof = 1;
        return 0;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return -1;
    c->eof = 1;
    c->reset = errno == ECONNRESET;
    return 0;
}

/* Waits (until deadline, ms on h_now_ms) for more bytes. 1: got some, 0: end
 * of file, -1: timed out. */
static inline int h_fill(struct h_conn *c, int64_t deadline)
{
    for (;;) {
        int r = h_read_now(c);
        if (r >= 0)
            return r;
        int64_t left = deadline - h_now_ms();
        if (left <= 0)
            return -1;
        struct pollfd p = {c->fd, POLLIN, 0};
        poll(&p, 1, (int)(left > 1000 ? 1000 : left));
    }
}

/* Sends all n bytes, reading whatever the server sends meanwhile. Returns 0,
 * or -1 with errno (EPIPE, ECONNRESET: the server closed; ETIMEDOUT). */
static inline int h_try_send(struct h_conn *c, const void *data, size_t n)
{
    const char *p = data;
    int64_t end = h_now_ms() + H_GUARD_MS;
    while (n) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            end = h_now_ms() + H_GUARD_MS; /* progress: a new guard */
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return -1;
        int64_t left = end - h_now_ms();
        if (left <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        struct pollfd pf = {c->fd, POLLOUT | (c->eof ? 0 : POLLIN), 0};
        poll(&pf, 1, (int)(left > 1000 ? 1000 : left));
        if (pf.revents & POLLIN)
            h_read_now(c);
    }
    return 0;
}

static inline void h_send(struct h_conn *c, const void *data, size_t n)
{
    int rc = h_try_send(c, data, n);
    cr_assert_eq(rc, 0, "sending %zu bytes failed: %s", n, strerror(errno));
}

static inline void h_sends(struct h_conn *c, const char *s)
{
    h_send(c, s, strlen(s));
}

/* printf into a malloc'd string. */
static inline char *h_fmt(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    cr_assert(n >= 0);
    return s;
}

/* ---- responses ------------------------------------------------------- */

#define H_MAX_HEADERS 64

struct h_resp {
    int status;
    int minor;  /* HTTP/1.x */
    char *head; /* the raw head, up to and including CRLF CRLF */
    size_t head_len;
    int nheaders;
    char *names[H_MAX_HEADERS], *values[H_MAX_HEADERS]; /* into `lines` */
    char *lines;
    char *body; /* decoded (chunked removed), NUL-terminated */
    size_t body_len;
    int chunked;              /* framed with Transfer-Encoding: chunked */
    long long content_length; /* -1 if none */
    int until_close;          /* framed by the end of the connection */
    size_t raw_len;           /* wire bytes of the whole response */
    char *trailers;           /* raw trailer section (chunked), or NULL */
};

enum {
    H_HEAD = 1, /* the response to a HEAD: no body whatever it says */
};

static inline void h_resp_free(struct h_resp *r)
{
    if (!r)
        return;
    free(r->head);
    free(r->lines);
    free(r->body);
    free(r->trailers);
    free(r);
}

/* The value of the first header named name (any case), or NULL. */
static inline const char *h_header(const struct h_resp *r, const char *name)
{
    for (int i = 0; i < r->nheaders; i++)
        if (strcasecmp(r->names[i], name) == 0)
            return r->values[i];
    return NULL;
}

static inline int h_header_count(const struct h_resp *r, const char *name)
{
    int n = 0;
    for (int i = 0; i < r->nheaders; i++)
        n += strcasecmp(r->names[i], name) == 0;
    return n;
}

/* Does a comma-separated header (Connection) list token, any case? */
static inline int h_header_has_token(const struct h_resp *r, const char *name,
                                     const char *token)
{
    size_t tl = strlen(token);
    for (int i = 0; i < r->nheaders; i++) {
        if (strcasecmp(r->names[i], name) != 0)
            continue;
        const char *p = r->values[i];
        while (*p) {
            while (*p == ' ' || *p == '\t' || *p == ',')
                p++;
            const char *e = p;
            while (*e && *e != ',')
                e++;
            const char *t = e;
            while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
                t--;
            if ((size_t)(t - p) == tl && strncasecmp(p, token, tl) == 0)
                return 1;
            p = e;
        }
    }
    return 0;
}

/* Parses a strictly formatted HTTP/1.x head into r. Returns 0 or -1. */
static inline int h_parse_head(const char *buf, size_t head_len,
                               struct h_resp *r, char *why, size_t wl)
{
    r->head = malloc(head_len + 1);
    memcpy(r->head, buf, head_len);
    r->head[head_len] = '\0';
    r->head_len = head_len;
    if (strlen(r->head) != head_len) {
        snprintf(why, wl, "NUL byte in the response head");
        return -1;
    }
    if (head_len < 16 || strncmp(r->head, "HTTP/1.", 7) != 0 ||
        !isdigit((unsigned char)r->head[7]) || r->head[8] != ' ' ||
        !isdigit((unsigned char)r->head[9]) ||
        !isdigit((unsigned char)r->head[10]) ||
        !isdigit((unsigned char)r->head[11]) ||
        (r->head[12] != ' ' && r->head[12] != '\r')) {
        snprintf(why, wl, "bad status line: %.60s", r->head);
        return -1;
    }
    r->minor = r->head[7] - '0';
    r->status = atoi(r->head + 9);
    r->lines = strdup(strstr(r->head, "\r\n") + 2);
    char *line = r->lines;
    for (;;) {
        char *eol = strstr(line, "\r\n");
        if (!eol) {
            snprintf(why, wl, "header line without CRLF");
            return -1;
        }
        *eol = '\0';
        if (line == eol)
            break; /* the blank line */
        if (strchr(line, '\n') || strchr(line, '\r')) {
            snprintf(why, wl, "bare CR or LF in header line '%s'", line);
            return -1;
        }
        char *colon = strchr(line, ':');
        if (!colon || colon == line || colon[-1] == ' ' || colon[-1] == '\t' ||
            line[0] == ' ' || line[0] == '\t') {
            snprintf(why, wl, "malformed header line '%s'", line);
            return -1;
        }
        if (r->nheaders == H_MAX_HEADERS) {
            snprintf(why, wl, "more than %d header lines", H_MAX_HEADERS);
            return -1;
        }
        *colon = '\0';
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        char *ve = v + strlen(v);
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            *--ve = '\0';
        r->names[r->nheaders] = line;
        r->values[r->nheaders++] = v;
        line = eol + 2;
    }
    return 0;
}

/* Walks a chunked body at buf[pos..len). Returns 1 complete (*end is the
 * first byte after it), 0 incomplete, -1 malformed. With out (size *outlen
 * known to suffice), copies the data there and the trailers to *trailers. */
static inline int h_walk_chunked(const char *buf, size_t len, size_t pos,
                                 size_t *end, size_t *body_len, char *out,
                                 char **trailers, char *why, size_t wl)
{
    size_t total = 0;
    for (;;) {
        const char *eol = memmem(buf + pos, len - pos, "\r\n", 2);
        if (!eol) {
            if (len - pos > 4096) {
                snprintf(why, wl, "chunk-size line over 4 KiB");
                return -1;
            }
            return 0;
        }
        const char *p = buf + pos;
        unsigned long long size = 0;
        int digits = 0;
        while (p < eol && isxdigit((unsigned char)*p)) {
            int d = isdigit((unsigned char)*p) ? *p - '0'
                                               : (tolower(*p) - 'a' + 10);
            size = size * 16 + (unsigned)d;
            p++;
            if (++digits > 15) {
                snprintf(why, wl, "chunk size too long");
                return -1;
            }
        }
        if (!digits || (p < eol && *p != ';' && *p != ' ' && *p != '\t')) {
            snprintf(why, wl, "bad chunk-size line '%.*s'",
                     (int)(eol - (buf + pos) > 40 ? 40 : eol - (buf + pos)),
                     buf + pos);
            return -1;
        }
        pos = (size_t)(eol - buf) + 2;
        if (size == 0)
            break;
        if (len - pos < size + 2)
            return 0;
        if (buf[pos + size] != '\r' || buf[pos + size + 1] != '\n') {
            snprintf(why, wl, "chunk data not followed by CRLF");
            return -1;
        }
        if (out)
            memcpy(out + total, buf + pos, size);
        total += size;
        pos += size + 2;
    }
    /* trailers, then the blank line */
    size_t tstart = pos;
    for (;;) {
        const char *eol = memmem(buf + pos, len - pos, "\r\n", 2);
        if (!eol)
            return 0;
        size_t l = (size_t)(eol - (buf + pos));
        pos += l + 2;
        if (l == 0)
            break;
    }
    if (out && trailers && pos - 2 > tstart) {
        *trailers = malloc(pos - 2 - tstart + 1);
        memcpy(*trailers, buf + tstart, pos - 2 - tstart);
        (*trailers)[pos - 2 - tstart] = '\0';
    }
    *end = pos;
    *body_len = total;
    return 1;
}

/* Parses one response from c->buf without reading. Returns 1 complete (and
 * consumes it), 0 needs more bytes, -1 malformed (why says what). */
static inline int h_parse_response(struct h_conn *c, struct h_resp *r,
                                   int flags, char *why, size_t wl)
{
    const char *blank = c->len ? memmem(c->buf, c->len, "\r\n\r\n", 4) : NULL;
    if (!blank) {
        if (c->len > 65536) {
            snprintf(why, wl, "response head over 64 KiB");
            return -1;
        }
        if (c->len >= 5 && strncmp(c->buf, "HTTP/", 5) != 0) {
            snprintf(why, wl, "not an HTTP response: %.40s", c->buf);
            return -1;
        }
        return 0;
    }
    size_t head_len = (size_t)(blank - c->buf) + 4;
    struct h_resp tmp = {.content_length = -1};
    if (h_parse_head(c->buf, head_len, &tmp, why, wl) < 0) {
        free(tmp.head);
        free(tmp.lines);
        return -1;
    }
    const char *te = h_header(&tmp, "Transfer-Encoding");
    const char *cl = h_header(&tmp, "Content-Length");
    int no_body = (flags & H_HEAD) || tmp.status < 200 || tmp.status == 204 ||
                  tmp.status == 304;
    int rc = 1;
    if (te && cl) {
        snprintf(why, wl, "both Transfer-Encoding and Content-Length");
        rc = -1;
    } else if (h_header_count(&tmp, "Content-Length") > 1 ||
               h_header_count(&tmp, "Transfer-Encoding") > 1) {
        snprintf(why, wl, "repeated framing header");
        rc = -1;
    } else if (te && strcasecmp(te, "chunked") != 0) {
        snprintf(why, wl, "Transfer-Encoding '%s' is not chunked", te);
        rc = -1;
    }
    if (cl && rc == 1) {
        char *e;
        errno = 0;
        tmp.content_length = strtoll(cl, &e, 10);
        if (*e || errno || tmp.content_length < 0 ||
            !isdigit((unsigned char)*cl)) {
            snprintf(why, wl, "bad Content-Length '%s'", cl);
            rc = -1;
        }
    }
    if (rc < 0) {
        free(tmp.head);
        free(tmp.lines);
        return -1;
    }
    size_t end = head_len, body_len = 0;
    if (no_body) {
        /* nothing */
    } else if (te) {
        tmp.chunked = 1;
        rc = h_walk_chunked(c->buf, c->len, head_len, &end, &body_len, NULL,
                            NULL, why, wl);
    } else if (cl) {
        if (c->len - head_len < (size_t)tmp.content_length)
            rc = 0;
        body_len = (size_t)tmp.content_length;
        end = head_len + body_len;
    } else {
        tmp.until_close = 1;
        if (!c->eof)
            rc = 0;
        body_len = c->len - head_len;
        end = c->len;
    }
    if (rc != 1) {
        free(tmp.head);
        free(tmp.lines);
        return rc;
    }
    tmp.body = malloc(body_len + 1);
    if (tmp.chunked)
        h_walk_chunked(c->buf, c->len, head_len, &end, &body_len, tmp.body,
                       &tmp.trailers, why, wl);
    else
        memcpy(tmp.body, c->buf + head_len, body_len);
    tmp.body[body_len] = '\0';
    tmp.body_len = body_len;
    tmp.raw_len = end;
    memmove(c->buf, c->buf + end, c->len - end);
    c->len -= end;
    if (c->buf)
        c->buf[c->len] = '\0';
    *r = tmp;
    return 1;
}

/* Reads one response. Returns 1 (r filled), 0 when the connection ended
 * cleanly before any byte of it, -1 on timeout, a truncated or malformed
 * response (why says which). */
static inline int h_read_response(struct h_conn *c, struct h_resp *r, int flags,
                                  int timeout_ms, char *why, size_t wl)
{
    int64_t deadline = h_now_ms() + timeout_ms;
    memset(r, 0, sizeof *r);
    r->content_length = -1;
    for (;;) {
        int rc = h_parse_response(c, r, flags, why, wl);
        if (rc != 0)
            return rc;
        if (c->eof) {
            if (c->len == 0)
                return 0;
            snprintf(why, wl,
                     "connection %s after %zu bytes of an incomplete "
                     "response: %.200s",
                     c->reset ? "reset" : "closed", c->len, c->buf);
            return -1;
        }
        int f = h_fill(c, deadline);
        if (f < 0) {
            snprintf(why, wl,
                     "no complete response within %d ms (%zu bytes so far: "
                     "%.200s)",
                     timeout_ms, c->len, c->len ? c->buf : "");
            return -1;
        }
    }
}

/* Reads one response and asserts it is complete and well formed. */
static inline struct h_resp *h_response(struct h_conn *c, int flags)
{
    struct h_resp *r = calloc(1, sizeof *r);
    char why[512] = "";
    int rc = h_read_response(c, r, flags, H_GUARD_MS, why, sizeof why);
    cr_assert_neq(rc, 0, "the server closed the connection without a response");
    cr_assert_eq(rc, 1, "bad response: %s", why);
    return r;
}

/* A request and its response, on a fresh connection; asserts the status. */
static inline struct h_resp *h_request(const char *raw, int flags,
                                       int want_status)
{
    struct h_conn *c = h_connect();
    h_sends(c, raw);
    struct h_resp *r = h_response(c, flags);
    h_close(c);
    if (want_status)
        cr_assert_eq(r->status, want_status,
                     "want status %d, got %d for request:\n%s\nresponse:\n%s%s",
                     want_status, r->status, raw, r->head, r->body);
    return r;
}

/* Waits for the server to close. 1: closed with no further bytes, 0: more
 * bytes arrived (left in c->buf), -1: still open at the timeout. */
static inline int h_wait_eof(struct h_conn *c, int timeout_ms)
{
    int64_t deadline = h_now_ms() + timeout_ms;
    size_t before = c->len;
    while (!c->eof) {
        if (h_fill(c, deadline) < 0)
            return c->len > before ? 0 : -1;
    }
    return c->len > 0 ? 0 : 1;
}

/* Asserts the server closes the connection and sends nothing more. */
static inline void h_assert_closed(struct h_conn *c)
{
    int rc = h_wait_eof(c, H_GUARD_MS);
    cr_assert_neq(rc, -1, "the server left the connection open");
    cr_assert_eq(rc, 1, "the server sent more bytes before closing: %.300s",
                 c->buf);
}

/* Asserts the connection is still open: nothing arrives within ms. */
static inline void h_assert_open(struct h_conn *c, int ms)
{
    int rc = h_wait_eof(c, ms);
    cr_assert_neq(rc, 1, "the server closed the connection");
    cr_assert_eq(rc, -1, "unexpected bytes from the server: %.300s", c->buf);
}

/* GET /hello on a new connection gives 200 "Hello, World!\n": the server is
 * alive and serving. */
static inline void h_assert_serving(void)
{
    cr_assert(h_alive(), "the server process is gone");
    struct h_resp *r =
        h_request("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n", 0, 200);
    cr_assert_str_eq(r->body, "Hello, World!\n");
    h_resp_free(r);
}

#endif
