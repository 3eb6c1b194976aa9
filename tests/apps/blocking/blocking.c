/*
 * blocking - a test app written as plain blocking C, for the hooks suite
 * (tests/http/test_hooks.c). With the hooks on, each blocking libc call
 * parks only the request's coroutine, so many requests are in progress at
 * once on one worker; with --no-hooks they run one at a time.
 *
 *   GET /blocking?op=NAME[&ms=M][&until=N][&via=V]
 *       runs one round of op NAME (ops.c: usleep, nanosleep, poll, pipe,
 *       sock, accept, client, curl, rcvtimeo, ...) waiting about M ms
 *       (default 20). With until=N the round repeats until N requests
 *       were in progress at once (a rendezvous: overlap is proved by
 *       counting, never by timing), with a 15 s guard. 200 "ok ..." when
 *       every result and errno was what the blocking call gives, else 500
 *       with the FAIL lines.
 *   op=edges&group=G    errno/result parity cases (edges.c), each run in
 *                       the coroutine and on a plain thread
 *   op=offload, op=thread   blocking calls on an offload thread / an app
 *                       thread really block (threads.c)
 *   op=cancel&what=W    a hooked call the request timeout cancels; the
 *                       results land in the stats (the client gets 504)
 *   op=close_wait&what=recv|read, op=close_do
 *                       one request blocks on a socket, another closes it
 *   op=stats            inflight, max (most in progress at once), counts,
 *                       and what the last cancelled call returned
 *   op=reset            zeroes max and the counts
 *
 * Globals are fine: a worker is one thread, and the suite runs one worker.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <poll.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <sys/socket.h>

#include <curl/curl.h>

#include "blocking.h"

#define BK_TEXT "text/plain; charset=utf-8"
/* A rendezvous that is not reached gives up after this long. */
#define BK_GUARD_NS (15LL * 1000000000LL)
/* How long the cancel and close ops wait when nothing wakes them. */
#define BK_LONG_S 20

/* The gauge: requests in progress now, the most at once, counts. */
static int bk_inflight, bk_max, bk_started, bk_finished, bk_failed;
/* What the last cancelled call (and the one after it) returned. */
static int bk_cancel_seen, bk_cancel_rc, bk_cancel_errno, bk_cancel2_rc,
    bk_cancel2_errno;
/* The socket pair a close_wait request blocks on. */
static int bk_close_sv[2] = {-1, -1};

void bk_say(struct bk_out *o, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        size_t room = o->cap - o->len;
        int n = vsnprintf(o->buf ? o->buf + o->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if ((size_t)n < room) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = o->cap ? o->cap * 2 : 4096;
        while (cap - o->len <= (size_t)n)
            cap *= 2;
        char *p = realloc(o->buf, cap);
        if (!p)
            return;
        o->buf = p;
        o->cap = cap;
    }
}

void bk_fail(struct bk_out *o, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    o->bad++;
    bk_say(o, "FAIL: %s\n", line);
}

const char *bk_errname(int err)
{
    if (err == 0)
        return "0";
    const char *name = strerrorname_np(err);
    return name ? name : "E?";
}

int64_t bk_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int bk_param_int(co_request_t *req, const char *name, int def)
{
    char buf[32];
    if (co_req_query_param(req, name, buf, sizeof buf) < 0)
        return def;
    return atoi(buf);
}

/* Runs op once, or (until=N) until N requests overlapped. */
static void bk_run(bk_op_fn fn, const struct bk_args *a, struct bk_out *o)
{
    int64_t start = bk_now_ns();
    int rounds = 0;
    for (;;) {
        if (fn(a, o) < 0)
            return;
        rounds++;
        if (a->until <= 0 || bk_max >= a->until)
            break;
        if (bk_now_ns() - start > BK_GUARD_NS) {
            bk_fail(o, "%s: only %d of %d requests overlapped in %d rounds",
                    a->op, bk_max, a->until, rounds);
            return;
        }
    }
    bk_say(o, "ok %s rounds=%d max=%d\n", a->op, rounds, bk_max);
}

/* One hooked call that a request timeout will cancel, then a second one:
 * both must fail with ECANCELED. Recorded for op=stats, since the client
 * only sees the 504. */
static void bk_cancel(const struct bk_args *a, struct bk_out *o)
{
    int rc = 0, err = 0;
    int fds[2] = {-1, -1};
    char buf[16];
    errno = 0;
    if (strcmp(a->what, "usleep") == 0) {
        rc = usleep(BK_LONG_S * 1000000U);
    } else if (strcmp(a->what, "nanosleep") == 0) {
        struct timespec ts = {BK_LONG_S, 0};
        rc = nanosleep(&ts, NULL);
    } else if (strcmp(a->what, "poll") == 0 && pipe(fds) == 0) {
        struct pollfd pf = {fds[0], POLLIN, 0};
        rc = poll(&pf, 1, BK_LONG_S * 1000);
    } else if (strcmp(a->what, "select") == 0 && pipe(fds) == 0) {
        fd_set rs;
        FD_ZERO(&rs);
        FD_SET(fds[0], &rs);
        struct timeval tv = {BK_LONG_S, 0};
        rc = select(fds[0] + 1, &rs, NULL, NULL, &tv);
    } else if (strcmp(a->what, "recv") == 0 &&
               socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0) {
        rc = (int)recv(fds[0], buf, sizeof buf, 0);
    } else if (strcmp(a->what, "read") == 0 && pipe(fds) == 0) {
        rc = (int)read(fds[0], buf, sizeof buf);
    } else if (strcmp(a->what, "eventfd") == 0 &&
               (fds[0] = eventfd(0, 0)) >= 0) {
        uint64_t v;
        rc = (int)read(fds[0], &v, sizeof v);
    } else if (strcmp(a->what, "accept") == 0 &&
               (fds[0] = socket(AF_INET, SOCK_STREAM, 0)) >= 0) {
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        if (bind(fds[0], (struct sockaddr *)&sa, sizeof sa) == 0 &&
            listen(fds[0], 4) == 0)
            rc = accept(fds[0], NULL, NULL);
        else
            rc = -2;
    } else {
        bk_fail(o, "cancel: unknown what '%s' or setup failed (%s)", a->what,
                bk_errname(errno));
        return;
    }
    err = errno;
    errno = 0;
    int rc2 = usleep(1000);
    int err2 = errno;
    bk_cancel_seen++;
    bk_cancel_rc = rc;
    bk_cancel_errno = err;
    bk_cancel2_rc = rc2;
    bk_cancel2_errno = err2;
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    bk_say(o, "cancel %s rc=%d errno=%s then rc=%d errno=%s\n", a->what, rc,
           bk_errname(err), rc2, bk_errname(err2));
}

/* Blocks in recv or read on bk_close_sv[0] until op=close_do closes it. */
static void bk_close_wait(const struct bk_args *a, struct bk_out *o)
{
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, bk_close_sv) < 0) {
        bk_fail(o, "socketpair: %s", bk_errname(errno));
        return;
    }
    char buf[16];
    errno = 0;
    ssize_t rc = strcmp(a->what, "read") == 0
                     ? read(bk_close_sv[0], buf, sizeof buf)
                     : recv(bk_close_sv[0], buf, sizeof buf, 0);
    int err = errno;
    bk_say(o, "close_wait %s rc=%zd errno=%s\n", a->what, rc, bk_errname(err));
    if (rc != -1 || err != EBADF)
        bk_fail(o,
                "a %s on a socket another request closed: want -1 EBADF, "
                "got rc=%zd errno=%s",
                a->what, rc, bk_errname(err));
    close(bk_close_sv[1]);
    bk_close_sv[0] = bk_close_sv[1] = -1;
}

static void bk_close_do(struct bk_out *o)
{
    if (bk_close_sv[0] < 0) {
        bk_fail(o, "close_do: nobody is waiting (no close_wait first)");
        return;
    }
    errno = 0;
    int rc = close(bk_close_sv[0]);
    bk_say(o, "close rc=%d errno=%s\n", rc, bk_errname(errno));
    if (rc != 0)
        bk_fail(o, "close of the socket another request blocks on: %s",
                bk_errname(errno));
}

static int bk_stats(co_response_t *res)
{
    char body[512];
    int n = snprintf(body, sizeof body,
                     "inflight=%d\nmax=%d\nstarted=%d\nfinished=%d\n"
                     "failed=%d\ncancel_seen=%d\ncancel_rc=%d\n"
                     "cancel_errno=%s\ncancel2_rc=%d\ncancel2_errno=%s\n",
                     bk_inflight, bk_max, bk_started, bk_finished, bk_failed,
                     bk_cancel_seen, bk_cancel_rc, bk_errname(bk_cancel_errno),
                     bk_cancel2_rc, bk_errname(bk_cancel2_errno));
    return co_res_send(res, 200, BK_TEXT, body, (size_t)n);
}

static int blocking(co_request_t *req, co_response_t *res)
{
    char op[32];
    if (co_req_query_param(req, "op", op, sizeof op) < 0)
        return co_res_send(res, 400, BK_TEXT, "op=?\n", 5);
    if (strcmp(op, "stats") == 0)
        return bk_stats(res);
    if (strcmp(op, "reset") == 0) {
        bk_max = bk_inflight;
        bk_started = bk_finished = bk_failed = 0;
        bk_cancel_seen = bk_cancel_rc = bk_cancel_errno = 0;
        bk_cancel2_rc = bk_cancel2_errno = 0;
        return co_res_send(res, 200, BK_TEXT, "reset\n", 6);
    }

    struct bk_args a = {.op = op,
                        .ms = bk_param_int(req, "ms", 20),
                        .until = bk_param_int(req, "until", 0),
                        .via = bk_param_int(req, "via", 0),
                        .port = co_req_local_port(req)};
    if (co_req_query_param(req, "what", a.what, sizeof a.what) < 0)
        a.what[0] = '\0';
    if (co_req_query_param(req, "group", a.group, sizeof a.group) < 0)
        a.group[0] = '\0';

    struct bk_out o = {0};
    bk_inflight++;
    if (bk_inflight > bk_max)
        bk_max = bk_inflight;
    bk_started++;
    bk_op_fn fn = bk_op_find(op);
    if (fn) {
        bk_run(fn, &a, &o);
    } else if (strcmp(op, "edges") == 0) {
        int n = bk_edges(a.group, &o);
        if (n < 0)
            bk_fail(&o, "unknown group '%s'", a.group);
        else
            bk_say(&o, "%d cases, %d bad\n", n, o.bad);
    } else if (strcmp(op, "offload") == 0) {
        bk_offload(&a, &o);
    } else if (strcmp(op, "thread") == 0) {
        bk_thread(&a, &o);
    } else if (strcmp(op, "cancel") == 0) {
        bk_cancel(&a, &o);
    } else if (strcmp(op, "close_wait") == 0) {
        bk_close_wait(&a, &o);
    } else if (strcmp(op, "close_do") == 0) {
        bk_close_do(&o);
    } else {
        bk_fail(&o, "unknown op '%s'", op);
    }
    bk_inflight--;
    bk_finished++;
    if (o.bad)
        bk_failed++;
    int rc =
        co_res_send(res, o.bad ? 500 : 200, BK_TEXT, o.buf ? o.buf : "", o.len);
    free(o.buf);
    return rc;
}

static int blocking_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

static void blocking_fini(void)
{
    curl_global_cleanup();
}

COSERVE_APP(.name = "blocking", .mount = "/blocking", .init = blocking_init,
            .fini = blocking_fini, .handler = blocking);
