/*
 * deploy_util.h - helpers for the deployment suites (tests/deploy): several
 * processes per test (coserve masters, nginx), clients from any address or
 * over unix sockets, and what /proc tells about workers and sockets.
 *
 * It reuses tests/http/harness.h read-only for what is process-independent:
 * the client connection (struct h_conn), sending (h_try_send, which reads
 * while it writes), the strict response parser (h_read_response), and small
 * utilities. The harness's own server (h_srv, h_start) is not used: it
 * knows one coserve on one TCP port.
 *
 *   - du_setup() makes the test's temp dir; du_teardown() (every suite's
 *     .fini) kills whatever a failed test left running and removes it.
 *   - du_coserve_start() runs $COSERVE_BIN as a master with N workers on a
 *     fresh TCP port or a unix socket in the temp dir, and returns once
 *     every worker says "serving on". du_coserve_stop() sends SIGTERM and
 *     asserts exit status 0 and a log without sanitizer reports or worker
 *     deaths (the master exits 0 whatever its workers did).
 *   - du_nginx_start() runs deploy/nginx/coserve.conf, its default
 *     addresses and paths replaced, inside a minimal nginx.conf in the
 *     temp dir.
 *   - du_connect() / du_exchange() never assert: load threads use them.
 *     du_request() / du_get() assert, for the test's main thread only.
 *
 * Every wait is bounded; nothing asserts on how long something took.
 */
#ifndef COSERVE_TESTS_DEPLOY_UTIL_H
#define COSERVE_TESTS_DEPLOY_UTIL_H

#include "../http/harness.h"

#include <dirent.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <pthread.h>
#include <sys/un.h>

#define DU_MAX_PROCS 8
#define DU_START_MS 20000
#define DU_STOP_MS 15000

struct du_proc {
    pid_t pid; /* -1: reaped */
    int kind;  /* DU_COSERVE or DU_NGINX */
};

enum { DU_COSERVE = 1, DU_NGINX = 2 };

static struct {
    char dir[128];
    struct du_proc procs[DU_MAX_PROCS];
    int nprocs;
} du;

/* ---- the temp dir ----------------------------------------------------- */

static inline void du_setup(void)
{
    if (du.dir[0])
        return;
    signal(SIGPIPE, SIG_IGN);
    snprintf(du.dir, sizeof du.dir, "/tmp/coserve-deploy-XXXXXX");
    cr_assert_not_null(mkdtemp(du.dir), "mkdtemp: %s", strerror(errno));
    chmod(du.dir, 0755);
}

/* A path in the temp dir (one of 8 rotating static buffers). */
static inline const char *du_path(const char *rel)
{
    static char buf[8][512];
    static int which;
    which = (which + 1) % 8;
    snprintf(buf[which], sizeof buf[which], "%s/%s", du.dir, rel);
    return buf[which];
}

static inline void du_mkdir(const char *rel)
{
    const char *p = du_path(rel);
    cr_assert(mkdir(p, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", p,
              strerror(errno));
}

/* The absolute form of a path relative to the working directory. */
static inline char *du_abs(const char *path)
{
    char *r = realpath(path, NULL);
    cr_assert_not_null(r,
                       "%s: %s (run the tests from the repository root "
                       "after `make apps`)",
                       path, strerror(errno));
    return r;
}

/* Points dir/name at target (replacing it atomically if it exists). */
static inline void du_symlink(const char *target, const char *dir,
                              const char *name)
{
    char tmp[600], dst[600];
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name);
    snprintf(dst, sizeof dst, "%s/%s", dir, name);
    unlink(tmp);
    cr_assert_eq(symlink(target, tmp), 0, "symlink %s: %s", tmp,
                 strerror(errno));
    cr_assert_eq(rename(tmp, dst), 0, "rename %s: %s", dst, strerror(errno));
}

/* Links dir/NAME.so to SRCDIR/NAME.so (absolute). */
static inline void du_link_app(const char *srcdir, const char *name,
                               const char *dir)
{
    char so[300], rel[400];
    snprintf(so, sizeof so, "%s.so", name);
    snprintf(rel, sizeof rel, "%s/%s", srcdir, so);
    char *abs = du_abs(rel);
    du_symlink(abs, dir, so);
    free(abs);
}

/* Links every .so of srcdir into dir. */
static inline void du_link_all_apps(const char *srcdir, const char *dir)
{
    DIR *d = opendir(srcdir);
    cr_assert_not_null(d, "%s: %s (run `make apps`)", srcdir, strerror(errno));
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n > 3 && strcmp(de->d_name + n - 3, ".so") == 0) {
            char name[256];
            snprintf(name, sizeof name, "%.*s", (int)(n - 3), de->d_name);
            du_link_app(srcdir, name, dir);
        }
    }
    closedir(d);
}

static inline const char *du_apps_src(void)
{
    return h_env("COSERVE_APPS", "build/apps");
}

static inline const char *du_test_apps_src(void)
{
    return h_env("COSERVE_TEST_APPS", "build/test-apps");
}

/* Empties a file (creating it). */
static inline void du_truncate(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0)
        close(fd);
}

static inline int du_file_exists(const char *path)
{
    return access(path, F_OK) == 0;
}

/* How many times needle occurs in the file (0 if unreadable). */
static inline int du_count_in_file(const char *path, const char *needle)
{
    char *s = h_read_file(path, NULL);
    if (!s)
        return 0;
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    free(s);
    return n;
}

/* Waits (bounded) until the file holds needle at least `times` times. */
static inline int du_wait_in_file(const char *path, const char *needle,
                                  int times, int timeout_ms)
{
    int64_t end = h_now_ms() + timeout_ms;
    for (;;) {
        if (du_count_in_file(path, needle) >= times)
            return 1;
        if (h_now_ms() > end)
            return 0;
        h_sleep_ms(10);
    }
}

/* The last max bytes of a file, for failure messages (static buffer). */
static inline const char *du_tail(const char *path, size_t max)
{
    static char tail[8192];
    if (max >= sizeof tail)
        max = sizeof tail - 1;
    char *s = h_read_file(path, NULL);
    if (!s) {
        snprintf(tail, sizeof tail, "(%s unreadable)", path);
        return tail;
    }
    size_t n = strlen(s);
    snprintf(tail, sizeof tail, "%s", n > max ? s + n - max : s);
    free(s);
    return tail;
}

/* ---- processes -------------------------------------------------------- */

/* The live children of parent (zombies excluded), from /proc/PID/stat. */
static inline int du_children(pid_t parent, pid_t *out, int max)
{
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] < '1' || de->d_name[0] > '9')
            continue;
        char path[300], buf[1024];
        snprintf(path, sizeof path, "/proc/%s/stat", de->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t r = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (r <= 0)
            continue;
        buf[r] = '\0';
        /* pid (comm) state ppid ...: comm may hold spaces and parens */
        char *rp = strrchr(buf, ')');
        char state;
        int ppid;
        if (!rp || sscanf(rp + 1, " %c %d", &state, &ppid) != 2)
            continue;
        if (ppid == parent && state != 'Z' && state != 'X') {
            if (n < max)
                out[n] = (pid_t)atoi(de->d_name);
            n++;
        }
    }
    closedir(d);
    return n < max ? n : max;
}

/* Waits until parent has exactly `want` live children; returns the count
 * last seen. */
static inline int du_wait_children(pid_t parent, int want, int timeout_ms)
{
    pid_t kids[64];
    int64_t end = h_now_ms() + timeout_ms;
    for (;;) {
        int n = du_children(parent, kids, 64);
        if (n == want || h_now_ms() > end)
            return n;
        h_sleep_ms(10);
    }
}

static inline int du_pid_in(pid_t pid, const pid_t *set, int n)
{
    for (int i = 0; i < n; i++)
        if (set[i] == pid)
            return 1;
    return 0;
}

static inline void du_track(pid_t pid, int kind)
{
    for (int i = 0; i < du.nprocs; i++)
        if (du.procs[i].pid < 0) {
            du.procs[i] = (struct du_proc){pid, kind};
            return;
        }
    cr_assert(du.nprocs < DU_MAX_PROCS, "too many processes");
    du.procs[du.nprocs++] = (struct du_proc){pid, kind};
}

static inline void du_untrack(pid_t pid)
{
    for (int i = 0; i < du.nprocs; i++)
        if (du.procs[i].pid == pid)
            du.procs[i].pid = -1;
}

/* h_spawn, appending to log_path, and tracked for the teardown. */
static inline pid_t du_spawn(const char *const *argv, const char *log_path,
                             const char *const *env, int kind)
{
    pid_t pid = h_spawn(argv, log_path, 1, env);
    du_track(pid, kind);
    return pid;
}

/* Waits for pid to exit. 1: exited (*status set), 0: still running. */
static inline int du_wait_exit(pid_t pid, int timeout_ms, int *status)
{
    int64_t end = h_now_ms() + timeout_ms;
    for (;;) {
        int st;
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid) {
            du_untrack(pid);
            if (status)
                *status = st;
            return 1;
        }
        if (w < 0 && errno == ECHILD) {
            du_untrack(pid);
            if (status)
                *status = 0;
            return 1;
        }
        if (h_now_ms() > end)
            return 0;
        h_sleep_ms(5);
    }
}

/* Stops pid the hard way, its children too (nginx workers do not die with
 * their master). */
static inline void du_kill_tree(pid_t pid)
{
    pid_t kids[64];
    int n = du_children(pid, kids, 64);
    kill(pid, SIGKILL);
    for (int i = 0; i < n; i++)
        kill(kids[i], SIGKILL);
    waitpid(pid, NULL, 0);
    du_untrack(pid);
}

static inline void du_teardown(void)
{
    for (int i = 0; i < du.nprocs; i++) {
        pid_t pid = du.procs[i].pid;
        if (pid <= 0)
            continue;
        if (du.procs[i].kind == DU_NGINX) {
            /* nginx: TERM is its fast stop, and it takes its workers */
            kill(pid, SIGTERM);
            if (du_wait_exit(pid, 3000, NULL))
                continue;
        }
        du_kill_tree(pid);
    }
    du.nprocs = 0;
    if (du.dir[0] && !getenv("COSERVE_TEST_KEEP"))
        nftw(du.dir, h_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    du.dir[0] = '\0';
}

/* ---- coserve ---------------------------------------------------------- */

struct du_coserve {
    pid_t pid;        /* the master; -1 once stopped */
    int port;         /* TCP port, 0 on a unix socket */
    char sock[256];   /* the unix socket path, or "" */
    char err[256];    /* stdout + stderr of master and workers */
    char access[256]; /* --access-log */
    char apps[256];   /* --apps */
    int workers;
};

/* Args for du_coserve_start: du_coserve_start(&s, "a", 0, 2, DU_ARGS(...)) */
#define DU_ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static inline int du_try_connect_tcp_once(const char *ip, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, ip, &sa.sin_addr);
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    close(fd);
    return rc;
}

static inline int du_try_connect_unix_once(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof un.sun_path) {
        close(fd);
        return -1;
    }
    memcpy(un.sun_path, path, strlen(path) + 1);
    int rc = connect(fd, (struct sockaddr *)&un, sizeof un);
    close(fd);
    return rc;
}

/* Starts a coserve master named `name` (its files in the temp dir are
 * NAME.log, NAME.access.log, NAME.sock) with `workers` workers, --apps apps
 * (NULL: $COSERVE_APPS), --www off, then `extra` (later flags win). unix:
 * listen on NAME.sock, else on a free 127.0.0.1 port. env: added to its
 * environment. Returns when every worker serves. */
static inline void du_coserve_start(struct du_coserve *s, const char *name,
                                    int unix_socket, int workers,
                                    const char *apps, const char *const *extra,
                                    const char *const *env)
{
    du_setup();
    memset(s, 0, sizeof *s);
    s->pid = -1;
    s->workers = workers;
    snprintf(s->err, sizeof s->err, "%s/%s.log", du.dir, name);
    snprintf(s->access, sizeof s->access, "%s/%s.access.log", du.dir, name);
    snprintf(s->apps, sizeof s->apps, "%s", apps ? apps : du_apps_src());
    if (unix_socket)
        snprintf(s->sock, sizeof s->sock, "%s/%s.sock", du.dir, name);
    const char *bin = h_env("COSERVE_BIN", "build/plain/coserve");
    for (int attempt = 0; attempt < 8; attempt++) {
        char listen[300], nworkers[16];
        if (unix_socket) {
            snprintf(listen, sizeof listen, "unix:%s", s->sock);
        } else {
            s->port = h_free_port();
            snprintf(listen, sizeof listen, "127.0.0.1:%d", s->port);
        }
        snprintf(nworkers, sizeof nworkers, "%d", workers);
        const char *argv[64];
        int argc = 0;
        argv[argc++] = bin;
        argv[argc++] = "--listen";
        argv[argc++] = listen;
        argv[argc++] = "--workers";
        argv[argc++] = nworkers;
        argv[argc++] = "--apps";
        argv[argc++] = s->apps;
        argv[argc++] = "--www";
        argv[argc++] = "off";
        argv[argc++] = "--access-log";
        argv[argc++] = s->access;
        for (int i = 0; extra && extra[i]; i++) {
            cr_assert(argc < 62, "too many flags");
            argv[argc++] = extra[i];
        }
        argv[argc] = NULL;
        du_truncate(s->err);
        s->pid = du_spawn(argv, s->err, env, DU_COSERVE);
        int64_t end = h_now_ms() + DU_START_MS;
        for (;;) {
            int status;
            if (du_wait_exit(s->pid, 0, &status)) {
                s->pid = -1;
                if (!unix_socket &&
                    du_count_in_file(s->err, "Address already in use"))
                    break; /* lost the port: try another */
                cr_assert_fail("coserve %s exited during startup (status "
                               "0x%x); its log:\n%s",
                               name, status, du_tail(s->err, 4000));
            }
            if (du_count_in_file(s->err, "serving on") >= workers &&
                (unix_socket
                     ? du_try_connect_unix_once(s->sock)
                     : du_try_connect_tcp_once("127.0.0.1", s->port)) == 0)
                return;
            if (h_now_ms() > end) {
                du_kill_tree(s->pid);
                s->pid = -1;
                cr_assert_fail("coserve %s did not serve within %d ms; its "
                               "log:\n%s",
                               name, DU_START_MS, du_tail(s->err, 4000));
            }
            h_sleep_ms(10);
        }
    }
    cr_assert_fail("no free port for coserve in 8 tries");
}

/* Waits for the master to exit; asserts status 0 and a clean log. */
static inline void du_coserve_wait_stopped(struct du_coserve *s, int timeout_ms,
                                           int allow_deaths)
{
    int status = 0;
    if (!du_wait_exit(s->pid, timeout_ms, &status)) {
        du_kill_tree(s->pid);
        s->pid = -1;
        cr_assert_fail("coserve did not stop within %d ms; its log:\n%s",
                       timeout_ms, du_tail(s->err, 4000));
    }
    s->pid = -1;
    cr_assert(h_exit_ok(status, s->err),
              "coserve exited with status 0x%x; its log:\n%s", status,
              du_tail(s->err, 4000));
    const char *trouble = h_log_problem_in(s->err, allow_deaths);
    cr_assert_null(trouble, "coserve's log has \"%s\":\n%s", trouble,
                   du_tail(s->err, 6000));
}

/* SIGTERM, then asserts exit status 0 and a clean log. */
static inline void du_coserve_stop(struct du_coserve *s)
{
    cr_assert(s->pid > 0, "coserve is not running");
    kill(s->pid, SIGTERM);
    du_coserve_wait_stopped(s, DU_STOP_MS, 0);
}

/* The master's workers now. */
static inline int du_workers(const struct du_coserve *s, pid_t *out, int max)
{
    return du_children(s->pid, out, max);
}

/* ---- clients (no assertions: safe in any thread) ---------------------- */

struct du_target {
    const char *unix_path; /* set: a unix socket */
    const char *ip;        /* else TCP to ip:port (NULL: 127.0.0.1) */
    int port;
    const char *src; /* bind the client to this address first */
};

static inline struct du_target du_at(const struct du_coserve *s)
{
    struct du_target t = {0};
    if (s->sock[0])
        t.unix_path = s->sock;
    else
        t.port = s->port;
    return t;
}

/* Connects (non-blocking, bounded). NULL with errno on failure. */
static inline struct h_conn *du_connect(const struct du_target *t)
{
    int fd;
    int rc;
    if (t->unix_path) {
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
            return NULL;
        struct sockaddr_un un = {.sun_family = AF_UNIX};
        if (strlen(t->unix_path) >= sizeof un.sun_path) {
            close(fd);
            errno = ENAMETOOLONG;
            return NULL;
        }
        memcpy(un.sun_path, t->unix_path, strlen(t->unix_path) + 1);
        rc = connect(fd, (struct sockaddr *)&un, sizeof un);
    } else {
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
            return NULL;
        if (t->src) {
            struct sockaddr_in src = {.sin_family = AF_INET};
            if (inet_pton(AF_INET, t->src, &src.sin_addr) != 1 ||
                bind(fd, (struct sockaddr *)&src, sizeof src) < 0) {
                int e = errno;
                close(fd);
                errno = e;
                return NULL;
            }
        }
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)t->port)};
        inet_pton(AF_INET, t->ip ? t->ip : "127.0.0.1", &sa.sin_addr);
        rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    if (rc < 0) {
        if (errno != EINPROGRESS && errno != EAGAIN) {
            int e = errno;
            close(fd);
            errno = e;
            return NULL;
        }
        struct pollfd p = {fd, POLLOUT, 0};
        int err = 0;
        socklen_t el = sizeof err;
        if (poll(&p, 1, H_GUARD_MS) != 1 ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err) {
            close(fd);
            errno = err ? err : ETIMEDOUT;
            return NULL;
        }
    }
    struct h_conn *c = calloc(1, sizeof *c);
    c->fd = fd;
    return c;
}

/* Sends n bytes and reads one response into r. 1: a complete response, 0:
 * the connection closed before its first byte, -1: anything else (why). */
static inline int du_exchange(struct h_conn *c, const void *raw, size_t n,
                              struct h_resp *r, int flags, int timeout_ms,
                              char *why, size_t wl)
{
    memset(r, 0, sizeof *r);
    if (h_try_send(c, raw, n) < 0) {
        if (c->len == 0 && (errno == EPIPE || errno == ECONNRESET))
            return 0;
        snprintf(why, wl, "send: %s", strerror(errno));
        return -1;
    }
    return h_read_response(c, r, flags, timeout_ms, why, wl);
}

/* Frees what h_read_response put in r (r itself is the caller's). */
static inline void du_resp_clear(struct h_resp *r)
{
    free(r->head);
    free(r->lines);
    free(r->body);
    free(r->trailers);
    memset(r, 0, sizeof *r);
}

/* ---- clients that assert (the test's main thread) ---------------------- */

/* raw on a new connection; asserts a complete response with want_status
 * (0: any). The caller h_resp_free()s it. */
static inline struct h_resp *du_request(const struct du_target *t,
                                        const char *raw, size_t n,
                                        int want_status)
{
    struct h_conn *c = du_connect(t);
    cr_assert_not_null(c, "connect to %s%s:%d: %s", t->unix_path ? "unix:" : "",
                       t->unix_path ? t->unix_path
                                    : (t->ip ? t->ip : "127.0.0.1"),
                       t->port, strerror(errno));
    struct h_resp *r = calloc(1, sizeof *r);
    char why[512] = "";
    int rc = du_exchange(c, raw, n, r, 0, H_GUARD_MS, why, sizeof why);
    h_close(c);
    cr_assert_neq(rc, 0, "connection closed without a response to:\n%.300s",
                  (const char *)raw);
    cr_assert_eq(rc, 1, "bad response (%s) to:\n%.300s", why,
                 (const char *)raw);
    if (want_status)
        cr_assert_eq(r->status, want_status,
                     "want %d, got %d for:\n%.300s\nresponse:\n%s%.500s",
                     want_status, r->status, (const char *)raw, r->head,
                     r->body);
    return r;
}

/* GET path with extra header lines (each ending in CRLF, or NULL). */
static inline struct h_resp *du_get(const struct du_target *t, const char *path,
                                    const char *headers, int want_status)
{
    char *raw = h_fmt("GET %s HTTP/1.1\r\nHost: coserve.test\r\n%s\r\n", path,
                      headers ? headers : "");
    struct h_resp *r = du_request(t, raw, strlen(raw), want_status);
    free(raw);
    return r;
}

/* The value of "key=value" line in a whoami body (static buffer). */
static inline const char *du_field(const char *body, const char *key)
{
    static char val[128];
    char pat[64];
    snprintf(pat, sizeof pat, "%s=", key);
    const char *p = body;
    val[0] = '\0';
    while ((p = strstr(p, pat))) {
        if (p == body || p[-1] == '\n') {
            p += strlen(pat);
            size_t n = strcspn(p, "\n");
            snprintf(val, sizeof val, "%.*s", (int)n, p);
            return val;
        }
        p++;
    }
    return val;
}

/* ---- sockets, as /proc/net sees them ----------------------------------- */

struct du_tcp_stat {
    int listening;   /* a LISTEN socket on the port exists */
    int backlog;     /* connections waiting in its accept queue */
    int established; /* server-side established sockets on the port */
    int unread;      /* ... of them with request bytes nobody read */
};

/* IPv4 sockets whose local port is `port`, from the kernel's sock_diag
 * (asking for LISTEN and ESTABLISHED only: /proc/net/tcp also lists every
 * TIME_WAIT socket, tens of thousands after a load test, and takes seconds
 * to read). Returns 0, or -1 if netlink failed. */
static inline int du_tcp_stat_diag(int port, struct du_tcp_stat *st)
{
    int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (fd < 0)
        return -1;
    struct {
        struct nlmsghdr nlh;
        struct inet_diag_req_v2 r;
    } req = {
        .nlh = {.nlmsg_len = sizeof req,
                .nlmsg_type = SOCK_DIAG_BY_FAMILY,
                .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP},
        .r = {.sdiag_family = AF_INET,
              .sdiag_protocol = IPPROTO_TCP,
              .idiag_states = (1u << TCP_ESTABLISHED) | (1u << TCP_LISTEN)},
    };
    struct sockaddr_nl nl = {.nl_family = AF_NETLINK};
    if (sendto(fd, &req, sizeof req, 0, (struct sockaddr *)&nl, sizeof nl) !=
        (ssize_t)sizeof req) {
        close(fd);
        return -1;
    }
    static __thread char buf[65536];
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 2000) != 1) {
            close(fd);
            return -1;
        }
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) {
            close(fd);
            return -1;
        }
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, n);
             h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_type == NLMSG_DONE) {
                close(fd);
                return 0;
            }
            if (h->nlmsg_type == NLMSG_ERROR) {
                close(fd);
                return -1;
            }
            const struct inet_diag_msg *m = NLMSG_DATA(h);
            if (ntohs(m->id.idiag_sport) != port)
                continue;
            if (m->idiag_state == TCP_LISTEN) {
                st->listening = 1;
                st->backlog += (int)m->idiag_rqueue;
            } else if (m->idiag_state == TCP_ESTABLISHED) {
                st->established++;
                if (m->idiag_rqueue)
                    st->unread++;
            }
        }
    }
}

/* The same from /proc/net/tcp, if netlink is not there. */
static inline void du_tcp_stat(int port, struct du_tcp_stat *st)
{
    memset(st, 0, sizeof *st);
    if (du_tcp_stat_diag(port, st) == 0)
        return;
    memset(st, 0, sizeof *st);
    FILE *f = fopen("/proc/net/tcp", "re");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        unsigned lport, state, txq, rxq;
        char laddr[16];
        if (sscanf(line, " %*d: %8[0-9A-Fa-f]:%x %*8[0-9A-Fa-f]:%*x %x %x:%x",
                   laddr, &lport, &state, &txq, &rxq) != 5)
            continue;
        if ((int)lport != port)
            continue;
        if (state == 0x0A) {
            st->listening = 1;
            st->backlog += (int)rxq;
        } else if (state == 0x01) {
            st->established++;
            if (rxq)
                st->unread++;
        }
    }
    fclose(f);
}

/* Waits until `want` connections to port are established, accepted and
 * read (their requests are with the server's handlers). 1 or 0 (timeout). */
static inline int du_wait_tcp_taken(int port, int want, int timeout_ms)
{
    int64_t end = h_now_ms() + timeout_ms;
    for (;;) {
        struct du_tcp_stat st;
        du_tcp_stat(port, &st);
        if (st.established >= want && st.backlog == 0 && st.unread == 0)
            return 1;
        if (h_now_ms() > end)
            return 0;
        h_sleep_ms(10);
    }
}

/* Server-side connected sockets of the unix socket at path: their inodes
 * (up to max) and their count. */
static inline int du_unix_conns(const char *path, unsigned long *inodes,
                                int max)
{
    FILE *f = fopen("/proc/net/unix", "re");
    if (!f)
        return 0;
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long flags, inode;
        unsigned type, state;
        char p[600] = "";
        if (sscanf(line, "%*s %*x %*x %lx %x %x %lu %599s", &flags, &type,
                   &state, &inode, p) != 5)
            continue;
        if (strcmp(p, path) != 0 || state != 3 || (flags & 0x10000))
            continue;
        if (n < max)
            inodes[n] = inode;
        n++;
    }
    fclose(f);
    return n;
}

/* ---- nginx ------------------------------------------------------------- */

struct du_nginx {
    pid_t pid;
    int port;
    char dir[256]; /* prefix: nginx.conf, coserve.conf, logs */
    char error_log[300];
};

/* The user nginx's workers run as: NULL is root when the tests run as
 * root (then nothing a socket's permissions say stands in its way); a test
 * sets "www-data" to be Debian's nginx. */
static const char *du_nginx_user;

static inline const char *du_nginx_bin(void)
{
    return h_env("NGINX_BIN", "/usr/sbin/nginx");
}

/* Skips the test when there is no nginx to run. */
#define DU_REQUIRE_NGINX()                                                     \
    do {                                                                       \
        if (access(du_nginx_bin(), X_OK) != 0) {                               \
            cr_skip_test("no nginx at %s (apt-get install nginx-light, or "    \
                         "set NGINX_BIN)",                                     \
                         du_nginx_bin());                                      \
            return;                                                            \
        }                                                                      \
    } while (0)

/* Replaces every key of keys (pairs, NULL-terminated) in s. */
static inline char *du_substitute(const char *s, const char *const *keys)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    cr_assert_not_null(f);
    while (*s) {
        int done = 0;
        for (int i = 0; keys[i] && !done; i += 2) {
            size_t kl = strlen(keys[i]);
            if (strncmp(s, keys[i], kl) == 0) {
                fputs(keys[i + 1], f);
                s += kl;
                done = 1;
            }
        }
        if (!done)
            fputc(*s++, f);
    }
    fclose(f);
    return out;
}

/* The defaults written in deploy/nginx/coserve.conf, which a test's
 * variant of it replaces (pairs: what, the placeholder of du_substitute's
 * keys in du_nginx_start). */
#define DU_NGINX_LISTEN "listen 80;"
#define DU_NGINX_SOCK "unix:/run/coserve/coserve.sock"
#define DU_NGINX_TCP "127.0.0.1:8000"
#define DU_NGINX_WWW "/srv/coserve/www"

/* Runs deploy/nginx/coserve.conf ($COSERVE_NGINX_CONF) with its default
 * addresses and paths replaced by the test's, inside a minimal main
 * config: one worker, everything (pid, logs, temp files) under the temp
 * dir. */
static inline void du_nginx_start(struct du_nginx *n, const char *coserve_sock,
                                  int coserve_tcp_port, const char *www)
{
    du_setup();
    memset(n, 0, sizeof *n);
    n->pid = -1;
    snprintf(n->dir, sizeof n->dir, "%s/nginx", du.dir);
    snprintf(n->error_log, sizeof n->error_log, "%s/error.log", n->dir);
    du_mkdir("nginx");
    du_mkdir("nginx/tmp");
    du_mkdir("nginx/logs");
    const char *src = h_env("COSERVE_NGINX_CONF", "deploy/nginx/coserve.conf");
    char *site = h_read_file(src, NULL);
    cr_assert_not_null(site, "%s: %s", src, strerror(errno));
    char path[400], tcp[64];
    snprintf(tcp, sizeof tcp, "127.0.0.1:%d", coserve_tcp_port);
    for (int attempt = 0; attempt < 8; attempt++) {
        n->port = h_free_port();
        char listen[64], sock[400];
        snprintf(listen, sizeof listen, "listen 127.0.0.1:%d;", n->port);
        snprintf(sock, sizeof sock, "unix:%s", coserve_sock);
        const char *keys[] = {
            DU_NGINX_LISTEN, listen, DU_NGINX_SOCK, sock, DU_NGINX_TCP, tcp,
            DU_NGINX_WWW,    www,    NULL};
        /* the shipped file still has every default the variant replaces:
         * else the variant would reach the system's coserve, not ours */
        for (int i = 0; keys[i]; i += 2)
            cr_assert_not_null(strstr(site, keys[i]),
                               "%s no longer holds \"%s\" (its default, "
                               "which tests replace)",
                               src, keys[i]);
        char *conf = du_substitute(site, keys);
        snprintf(path, sizeof path, "%s/coserve.conf", n->dir);
        h_write_file(path, conf, strlen(conf));
        free(conf);
        char user[80] = "";
        if (geteuid() == 0)
            snprintf(user, sizeof user, "user %s;\n",
                     du_nginx_user ? du_nginx_user : "root");
        char *main_conf = h_fmt(
            "# written by tests/deploy: the site is deploy/nginx/coserve.conf\n"
            "daemon off;\n"
            "master_process on;\n"
            "worker_processes 1;\n"
            "%s"
            "pid %s/nginx.pid;\n"
            "error_log %s info;\n"
            "events { worker_connections 1024; }\n"
            "http {\n"
            "    access_log %s/access.log;\n"
            "    default_type application/octet-stream;\n"
            "    client_body_temp_path %s/tmp/body;\n"
            "    proxy_temp_path %s/tmp/proxy;\n"
            "    fastcgi_temp_path %s/tmp/fastcgi;\n"
            "    uwsgi_temp_path %s/tmp/uwsgi;\n"
            "    scgi_temp_path %s/tmp/scgi;\n"
            "    include %s/coserve.conf;\n"
            "}\n",
            user, n->dir, n->error_log, n->dir, n->dir, n->dir, n->dir, n->dir,
            n->dir, n->dir);
        snprintf(path, sizeof path, "%s/nginx.conf", n->dir);
        h_write_file(path, main_conf, strlen(main_conf));
        free(main_conf);
        char startup[400];
        snprintf(startup, sizeof startup, "%s/startup.log", n->dir);
        const char *argv[] = {du_nginx_bin(), "-p", n->dir,       "-c",
                              path,           "-e", n->error_log, NULL};
        du_truncate(n->error_log);
        n->pid = du_spawn(argv, startup, NULL, DU_NGINX);
        int64_t end = h_now_ms() + DU_START_MS;
        int lost = 0;
        for (;;) {
            int status;
            if (du_wait_exit(n->pid, 0, &status)) {
                n->pid = -1;
                if (du_count_in_file(n->error_log, "Address already in use") ||
                    du_count_in_file(startup, "Address already in use")) {
                    lost = 1;
                    break;
                }
                cr_assert_fail("nginx exited at startup (status 0x%x):\n%s\n%s",
                               status, du_tail(startup, 2000),
                               du_tail(n->error_log, 3000));
            }
            if (du_count_in_file(n->error_log, "start worker process ") >= 1 &&
                du_try_connect_tcp_once("127.0.0.1", n->port) == 0) {
                free(site);
                return;
            }
            if (h_now_ms() > end) {
                du_kill_tree(n->pid);
                n->pid = -1;
                cr_assert_fail("nginx did not come up:\n%s",
                               du_tail(n->error_log, 3000));
            }
            h_sleep_ms(10);
        }
        (void)lost;
    }
    free(site);
    cr_assert_fail("no free port for nginx in 8 tries");
}

/* Graceful stop (QUIT); asserts nginx exits 0. */
static inline void du_nginx_stop(struct du_nginx *n)
{
    cr_assert(n->pid > 0);
    kill(n->pid, SIGQUIT);
    int status = 0;
    if (!du_wait_exit(n->pid, DU_STOP_MS, &status)) {
        du_kill_tree(n->pid);
        n->pid = -1;
        cr_assert_fail("nginx did not stop:\n%s", du_tail(n->error_log, 3000));
    }
    n->pid = -1;
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "nginx exited with 0x%x:\n%s", status,
              du_tail(n->error_log, 3000));
}

static inline struct du_target du_via(const struct du_nginx *n)
{
    struct du_target t = {.port = n->port};
    return t;
}

#endif
