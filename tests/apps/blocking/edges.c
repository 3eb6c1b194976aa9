/*
 * edges.c - result and errno parity: each case runs once in the request's
 * coroutine (hooked) and once on a plain thread (straight libc), and both
 * must give what Linux gives. A case is a small function that makes its
 * fds, makes one call, and reports rc, errno and a note; composite checks
 * (revents, a timeout written back) turn a mismatch into rc = BK_WRONG.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>

#include "blocking.h"

#define BK_WRONG (-100)
#define BK_ANY_ERR (-1)

/* flags of a case */
#define BK_NONZERO 1   /* rc must be non-zero (a failure), not want_rc */
#define BK_SAME 2      /* coroutine and thread must agree on rc and errno */
#define BK_SAME_NOTE 4 /* ... and on the note */

struct bk_res {
    long rc;
    int err;
    char note[96];
};

struct bk_case {
    const char *name;
    void (*fn)(struct bk_res *r);
    long want_rc;
    int want_err; /* BK_ANY_ERR: not checked */
    int flags;
};

#define BK_CALL(r, expr)                                                       \
    do {                                                                       \
        errno = 0;                                                             \
        (r)->rc = (long)(expr);                                                \
        (r)->err = errno;                                                      \
    } while (0)

static void bk_note(struct bk_res *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void bk_note(struct bk_res *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->note, sizeof r->note, fmt, ap);
    va_end(ap);
}

/* Marks a composite check wrong, keeping the call's rc in the note. */
static void bk_wrong(struct bk_res *r, const char *why)
{
    char n[96];
    snprintf(n, sizeof n, "rc was %ld: %s", r->rc, why);
    snprintf(r->note, sizeof r->note, "%s", n);
    r->rc = BK_WRONG;
}

/* A call that should return at once but might wrongly wait forever is
 * guarded: 3 s later a thread makes it ready (a byte on `fd`, 1 added to an
 * eventfd, or a connection to a listener) and the case is marked wrong.
 * A call that returns at once stops the guard at once. */
#define BK_GUARD_S 3

struct bk_guard {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int fd, kind, stop, fired;
};

static void *bk_guard_main(void *arg)
{
    struct bk_guard *g = arg;
    struct timespec end;
    clock_gettime(CLOCK_REALTIME, &end);
    end.tv_sec += BK_GUARD_S;
    pthread_mutex_lock(&g->mu);
    while (!g->stop &&
           pthread_cond_timedwait(&g->cv, &g->mu, &end) != ETIMEDOUT)
        ;
    if (!g->stop) {
        g->fired = 1;
        if (g->kind == 1) {
            uint64_t one = 1;
            ssize_t n = write(g->fd, &one, sizeof one);
            (void)n;
        } else if (g->kind == 2) {
            struct sockaddr_in sa;
            socklen_t len = sizeof sa;
            int c = socket(AF_INET, SOCK_STREAM, 0);
            if (getsockname(g->fd, (struct sockaddr *)&sa, &len) == 0)
                connect(c, (struct sockaddr *)&sa, len);
            /* left open until the process ends: the accept needs it */
        } else {
            ssize_t n = write(g->fd, "G", 1);
            (void)n;
        }
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

static void bk_guard_start(struct bk_guard *g, int fd, int kind)
{
    memset(g, 0, sizeof *g);
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->fd = fd;
    g->kind = kind;
    pthread_create(&g->th, NULL, bk_guard_main, g);
}

static void bk_guard_stop(struct bk_guard *g, struct bk_res *r)
{
    pthread_mutex_lock(&g->mu);
    g->stop = 1;
    pthread_cond_signal(&g->cv);
    pthread_mutex_unlock(&g->mu);
    pthread_join(g->th, NULL);
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
    if (g->fired)
        bk_wrong(r, "it blocked until the guard woke it 3 s later");
}

/* BK_CALL, guarded (fd and kind as in struct bk_guard). */
#define BK_GUARDED(r, fd, kind, expr)                                          \
    do {                                                                       \
        struct bk_guard g_;                                                    \
        bk_guard_start(&g_, (fd), (kind));                                     \
        BK_CALL(r, expr);                                                      \
        bk_guard_stop(&g_, (r));                                               \
    } while (0)

static void bk_pipe_with_data(int p[2])
{
    if (pipe(p) == 0) {
        ssize_t n = write(p[1], "ab", 2);
        (void)n;
    }
}

static int bk_closed_fd(void)
{
    int p[2];
    if (pipe(p) < 0)
        return 1000;
    close(p[0]);
    close(p[1]);
    return p[0];
}

static void bk_close2(int p[2])
{
    bk_close(&p[0]);
    bk_close(&p[1]);
}

/* ---- time -------------------------------------------------------------- */

static void e_nanosleep_nsec_1e9(struct bk_res *r)
{
    struct timespec ts = {0, 1000000000L};
    BK_CALL(r, nanosleep(&ts, NULL));
}

static void e_nanosleep_negative(struct bk_res *r)
{
    struct timespec ts = {-1, 0};
    BK_CALL(r, nanosleep(&ts, NULL));
}

static void e_nanosleep_1ms(struct bk_res *r)
{
    struct timespec ts = {0, 1000000L};
    BK_CALL(r, nanosleep(&ts, NULL));
}

static void e_cns_bad_nsec(struct bk_res *r)
{
    struct timespec ts = {0, 1000000000L};
    BK_CALL(r, clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL));
}

static void e_cns_thread_cputime(struct bk_res *r)
{
    struct timespec ts = {0, 1000};
    BK_CALL(r, clock_nanosleep(CLOCK_THREAD_CPUTIME_ID, 0, &ts, NULL));
}

static void e_cns_abs_past(struct bk_res *r)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec -= 1;
    BK_CALL(r, clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL));
}

static void e_cns_abs_realtime_not_early(struct bk_res *r)
{
    struct timespec ts, now;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 20000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    BK_CALL(r, clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL));
    clock_gettime(CLOCK_REALTIME, &now);
    if (r->rc == 0 && (now.tv_sec < ts.tv_sec ||
                       (now.tv_sec == ts.tv_sec && now.tv_nsec < ts.tv_nsec)))
        bk_wrong(r, "woke before its CLOCK_REALTIME deadline");
}

static void e_usleep_0(struct bk_res *r)
{
    BK_CALL(r, usleep(0));
}

static void e_sleep_0(struct bk_res *r)
{
    BK_CALL(r, sleep(0));
}

static void e_usleep_20ms_not_early(struct bk_res *r)
{
    int64_t t0 = bk_now_ns();
    BK_CALL(r, usleep(20000));
    if (r->rc == 0 && bk_now_ns() - t0 < 20000000LL)
        bk_wrong(r, "returned before 20 ms");
}

/* ---- poll -------------------------------------------------------------- */

static void e_poll_no_fds(struct bk_res *r)
{
    BK_CALL(r, poll(NULL, 0, 20));
}

static void e_poll_ready(struct bk_res *r)
{
    int p[2];
    bk_pipe_with_data(p);
    struct pollfd pf = {p[0], POLLIN, 0};
    BK_CALL(r, poll(&pf, 1, -1));
    if (pf.revents != POLLIN)
        bk_wrong(r, "revents is not POLLIN");
    bk_close2(p);
}

static void e_poll_write_ready(struct bk_res *r)
{
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    struct pollfd pf = {sv[0], POLLOUT, 0};
    BK_CALL(r, poll(&pf, 1, -1));
    if (pf.revents != POLLOUT)
        bk_wrong(r, "revents is not POLLOUT");
    bk_close2(sv);
}

static void e_poll_closed_fd(struct bk_res *r)
{
    struct pollfd pf = {bk_closed_fd(), POLLIN, 0};
    BK_CALL(r, poll(&pf, 1, 20));
    if (pf.revents != POLLNVAL)
        bk_wrong(r, "revents is not POLLNVAL");
}

static void e_poll_negative_fd(struct bk_res *r)
{
    struct pollfd pf = {-1, POLLIN, 0x55};
    BK_CALL(r, poll(&pf, 1, 20));
    if (pf.revents != 0)
        bk_wrong(r, "revents of a negative fd not cleared");
}

static void e_poll_times_out(struct bk_res *r)
{
    int p[2];
    pipe(p);
    struct pollfd pf = {p[0], POLLIN, 0x55};
    BK_CALL(r, poll(&pf, 1, 20));
    if (pf.revents != 0)
        bk_wrong(r, "revents not cleared");
    bk_close2(p);
}

static void e_poll_zero_timeout(struct bk_res *r)
{
    int p[2];
    pipe(p);
    struct pollfd pf = {p[0], POLLIN, 0};
    BK_CALL(r, poll(&pf, 1, 0));
    bk_close2(p);
}

static void e_poll_hup(struct bk_res *r)
{
    int p[2];
    pipe(p);
    bk_close(&p[1]);
    struct pollfd pf = {p[0], POLLIN, 0};
    BK_CALL(r, poll(&pf, 1, -1));
    if (!(pf.revents & POLLHUP))
        bk_wrong(r, "no POLLHUP");
    bk_close2(p);
}

static void e_poll_one_of_two_ready(struct bk_res *r)
{
    int p[2], q[2];
    pipe(p);
    bk_pipe_with_data(q);
    struct pollfd pf[2] = {{p[0], POLLIN, 0}, {q[0], POLLIN, 0}};
    BK_CALL(r, poll(pf, 2, -1));
    if (pf[0].revents != 0 || pf[1].revents != POLLIN)
        bk_wrong(r, "wrong revents");
    bk_close2(p);
    bk_close2(q);
}

static void e_ppoll_ready(struct bk_res *r)
{
    int p[2];
    bk_pipe_with_data(p);
    struct pollfd pf = {p[0], POLLIN, 0};
    BK_CALL(r, ppoll(&pf, 1, NULL, NULL));
    if (pf.revents != POLLIN)
        bk_wrong(r, "revents is not POLLIN");
    bk_close2(p);
}

static void e_ppoll_times_out(struct bk_res *r)
{
    int p[2];
    pipe(p);
    struct pollfd pf = {p[0], POLLIN, 0};
    struct timespec ts = {0, 20000000L};
    BK_CALL(r, ppoll(&pf, 1, &ts, NULL));
    bk_close2(p);
}

static void e_ppoll_bad_timespec(struct bk_res *r)
{
    int p[2];
    pipe(p);
    struct pollfd pf = {p[0], POLLIN, 0};
    struct timespec ts = {0, 1000000000L};
    BK_CALL(r, ppoll(&pf, 1, &ts, NULL));
    bk_close2(p);
}

/* ---- select ------------------------------------------------------------ */

static void e_select_ready(struct bk_res *r)
{
    int p[2];
    bk_pipe_with_data(p);
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    BK_CALL(r, select(p[0] + 1, &rs, NULL, NULL, NULL));
    if (!FD_ISSET(p[0], &rs))
        bk_wrong(r, "the ready fd is not in the set");
    bk_close2(p);
}

static void e_select_write_ready(struct bk_res *r)
{
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    fd_set ws;
    FD_ZERO(&ws);
    FD_SET(sv[0], &ws);
    struct timeval tv = {5, 0};
    BK_CALL(r, select(sv[0] + 1, NULL, &ws, NULL, &tv));
    if (!FD_ISSET(sv[0], &ws))
        bk_wrong(r, "the writable fd is not in the set");
    bk_close2(sv);
}

static void e_select_times_out(struct bk_res *r)
{
    int p[2];
    pipe(p);
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    struct timeval tv = {0, 20000};
    BK_CALL(r, select(p[0] + 1, &rs, NULL, NULL, &tv));
    if (FD_ISSET(p[0], &rs))
        bk_wrong(r, "a not-ready fd left in the set");
    bk_close2(p);
}

/* Linux writes the time not slept back into the timeval. */
static void e_select_timeout_written_back(struct bk_res *r)
{
    struct timeval tv = {0, 20000};
    BK_CALL(r, select(0, NULL, NULL, NULL, &tv));
    bk_note(r, "tv after = %ld.%06ld", (long)tv.tv_sec, (long)tv.tv_usec);
    if (tv.tv_sec != 0 || tv.tv_usec != 0)
        bk_wrong(r, "timeval not set to the time left (0)");
}

static void e_select_no_fds_sleeps(struct bk_res *r)
{
    struct timeval tv = {0, 20000};
    BK_CALL(r, select(0, NULL, NULL, NULL, &tv));
}

static void e_select_closed_fd(struct bk_res *r)
{
    int fd = bk_closed_fd();
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(fd, &rs);
    struct timeval tv = {0, 20000};
    BK_CALL(r, select(fd + 1, &rs, NULL, NULL, &tv));
}

static void e_select_negative_nfds(struct bk_res *r)
{
    struct timeval tv = {0, 20000};
    BK_CALL(r, select(-1, NULL, NULL, NULL, &tv));
}

static void e_select_zero_timeout(struct bk_res *r)
{
    int p[2];
    pipe(p);
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    struct timeval tv = {0, 0};
    BK_CALL(r, select(p[0] + 1, &rs, NULL, NULL, &tv));
    bk_close2(p);
}

static void e_pselect_ready(struct bk_res *r)
{
    int p[2];
    bk_pipe_with_data(p);
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    BK_CALL(r, pselect(p[0] + 1, &rs, NULL, NULL, NULL, NULL));
    if (!FD_ISSET(p[0], &rs))
        bk_wrong(r, "the ready fd is not in the set");
    bk_close2(p);
}

static void e_pselect_times_out(struct bk_res *r)
{
    int p[2];
    pipe(p);
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    struct timespec ts = {0, 20000000L};
    BK_CALL(r, pselect(p[0] + 1, &rs, NULL, NULL, &ts, NULL));
    if (FD_ISSET(p[0], &rs))
        bk_wrong(r, "a not-ready fd left in the set");
    bk_close2(p);
}

static void e_pselect_closed_fd(struct bk_res *r)
{
    int fd = bk_closed_fd();
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(fd, &rs);
    struct timespec ts = {0, 20000000L};
    BK_CALL(r, pselect(fd + 1, &rs, NULL, NULL, &ts, NULL));
}

/* ---- fd ---------------------------------------------------------------- */

static void e_read_closed(struct bk_res *r)
{
    char c;
    BK_CALL(r, read(bk_closed_fd(), &c, 1));
}

static void e_write_closed(struct bk_res *r)
{
    BK_CALL(r, write(bk_closed_fd(), "x", 1));
}

static void e_recv_closed(struct bk_res *r)
{
    char c;
    BK_CALL(r, recv(bk_closed_fd(), &c, 1, 0));
}

static void e_send_closed(struct bk_res *r)
{
    BK_CALL(r, send(bk_closed_fd(), "x", 1, MSG_NOSIGNAL));
}

static void e_close_closed(struct bk_res *r)
{
    BK_CALL(r, close(bk_closed_fd()));
}

static void e_dup_closed(struct bk_res *r)
{
    BK_CALL(r, dup(bk_closed_fd()));
}

static void e_recv_on_pipe(struct bk_res *r)
{
    int p[2];
    bk_pipe_with_data(p);
    char c;
    BK_CALL(r, recv(p[0], &c, 1, 0));
    bk_close2(p);
}

static void e_read_zero_bytes(struct bk_res *r)
{
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    char c;
    BK_GUARDED(r, sv[1], 0, read(sv[0], &c, 0));
    bk_close2(sv);
}

static void e_read_data_ready(struct bk_res *r)
{
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    send(sv[1], "hello", 5, 0);
    char buf[16];
    BK_CALL(r, read(sv[0], buf, sizeof buf));
    bk_close2(sv);
}

static void e_readv_data_ready(struct bk_res *r)
{
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    send(sv[1], "hello", 5, 0);
    char a[2], b[8];
    struct iovec iov[2] = {{a, sizeof a}, {b, sizeof b}};
    BK_CALL(r, readv(sv[0], iov, 2));
    if (r->rc == 5 && (memcmp(a, "he", 2) != 0 || memcmp(b, "llo", 3) != 0))
        bk_wrong(r, "bytes scattered wrong");
    bk_close2(sv);
}

static void e_recv_after_peer_closed(struct bk_res *r)
{
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    bk_close(&sv[1]);
    char c;
    BK_CALL(r, recv(sv[0], &c, 1, 0));
    bk_close2(sv);
}

static void e_read_after_peer_closed(struct bk_res *r)
{
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    bk_close(&sv[1]);
    char c;
    BK_CALL(r, read(sv[0], &c, 1));
    bk_close2(sv);
}

static void e_send_after_peer_closed(struct bk_res *r)
{
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    bk_close(&sv[1]);
    BK_CALL(r, send(sv[0], "x", 1, MSG_NOSIGNAL));
    bk_close2(sv);
}

static void e_recv_peek_then_recv(struct bk_res *r)
{
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    send(sv[1], "ab", 2, 0);
    char a[4] = "", b[4] = "";
    ssize_t n = recv(sv[0], a, sizeof a, MSG_PEEK);
    BK_CALL(r, recv(sv[0], b, sizeof b, 0));
    if (n != 2 || memcmp(a, "ab", 2) != 0 || memcmp(b, "ab", 2) != 0)
        bk_wrong(r, "MSG_PEEK did not leave the bytes");
    bk_close2(sv);
}

static void e_recv_dontwait_blocking_socket(struct bk_res *r)
{
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    char c;
    BK_GUARDED(r, sv[1], 0, recv(sv[0], &c, 1, MSG_DONTWAIT));
    bk_close2(sv);
}

static void e_send_dontwait_full(struct bk_res *r)
{
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    static char buf[65536];
    int i = 0;
    do
        BK_CALL(r, send(sv[0], buf, sizeof buf, MSG_DONTWAIT | MSG_NOSIGNAL));
    while (r->rc > 0 && ++i < 10000);
    bk_close2(sv);
}

static void e_getfl_blocking_socket(struct bk_res *r)
{
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    BK_CALL(r, fcntl(sv[0], F_GETFL) & O_NONBLOCK);
    bk_close2(sv);
}

static void e_getfl_after_a_parked_recv(struct bk_res *r)
{
    int sv[2];
    struct bk_out o = {0};
    if (bk_parked_pair(sv, 5, &o) < 0) {
        bk_note(r, "%.90s", o.buf ? o.buf : "");
        r->rc = BK_WRONG;
        free(o.buf);
        return;
    }
    free(o.buf);
    BK_CALL(r, fcntl(sv[0], F_GETFL) & O_NONBLOCK);
    bk_close2(sv);
}

static void e_getfl_closed(struct bk_res *r)
{
    BK_CALL(r, fcntl(bk_closed_fd(), F_GETFL));
}

/* ---- nonblock ---------------------------------------------------------- */

static void e_sock_nonblock_recv(struct bk_res *r)
{
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv);
    char c;
    BK_GUARDED(r, sv[1], 0, recv(sv[0], &c, 1, 0));
    bk_close2(sv);
}

static void e_sock_nonblock_read(struct bk_res *r)
{
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv);
    char c;
    BK_GUARDED(r, sv[1], 0, read(sv[0], &c, 1));
    bk_close2(sv);
}

static void e_sock_nonblock_getfl(struct bk_res *r)
{
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv);
    BK_CALL(r, (fcntl(sv[0], F_GETFL) & O_NONBLOCK) != 0);
    bk_close2(sv);
}

static void e_setfl_nonblock_recv(struct bk_res *r)
{
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
    char c;
    BK_GUARDED(r, sv[1], 0, recv(sv[0], &c, 1, 0));
    if (!(fcntl(sv[0], F_GETFL) & O_NONBLOCK))
        bk_wrong(r, "F_GETFL lost the O_NONBLOCK just set");
    bk_close2(sv);
}

static void e_setfl_after_park_recv(struct bk_res *r)
{
    int sv[2];
    struct bk_out o = {0};
    if (bk_parked_pair(sv, 5, &o) < 0) {
        r->rc = BK_WRONG;
        free(o.buf);
        return;
    }
    free(o.buf);
    fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
    char c;
    BK_GUARDED(r, sv[1], 0, recv(sv[0], &c, 1, 0));
    bk_close2(sv);
}

static void e_fionbio_recv(struct bk_res *r)
{
    int sv[2], on = 1;
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    ioctl(sv[0], FIONBIO, &on);
    char c;
    BK_GUARDED(r, sv[1], 0, recv(sv[0], &c, 1, 0));
    if (!(fcntl(sv[0], F_GETFL) & O_NONBLOCK))
        bk_wrong(r, "F_GETFL does not show FIONBIO's O_NONBLOCK");
    bk_close2(sv);
}

/* Non-blocking cleared again (fcntl or FIONBIO 0): the socket blocks until
 * a thread's byte arrives, no EAGAIN. */
static void bk_cleared_then_blocks(struct bk_res *r, int by_ioctl)
{
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv);
    if (by_ioctl) {
        int off = 0;
        ioctl(sv[0], FIONBIO, &off);
    } else {
        fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) & ~O_NONBLOCK);
    }
    struct bk_later l;
    bk_later_start(&l, sv[1], "q", 1, 20);
    char c = 0;
    BK_CALL(r, recv(sv[0], &c, 1, 0));
    bk_later_join(&l);
    if (r->rc == 1 && c != 'q')
        bk_wrong(r, "wrong byte");
    bk_close2(sv);
}

static void e_setfl_cleared_blocks(struct bk_res *r)
{
    bk_cleared_then_blocks(r, 0);
}

static void e_fionbio_cleared_blocks(struct bk_res *r)
{
    bk_cleared_then_blocks(r, 1);
}

static void e_pipe2_nonblock_read(struct bk_res *r)
{
    int p[2];
    pipe2(p, O_NONBLOCK);
    char c;
    BK_GUARDED(r, p[1], 0, read(p[0], &c, 1));
    bk_close2(p);
}

static void e_eventfd_nonblock_read(struct bk_res *r)
{
    int fd = eventfd(0, EFD_NONBLOCK);
    uint64_t v;
    BK_GUARDED(r, fd, 1, read(fd, &v, sizeof v));
    bk_close(&fd);
}

static int bk_listener(struct sockaddr_in *sa, int type)
{
    *sa = (struct sockaddr_in){.sin_family = AF_INET,
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof *sa;
    int l = socket(AF_INET, SOCK_STREAM | type, 0);
    if (l >= 0 &&
        (bind(l, (struct sockaddr *)sa, len) < 0 || listen(l, 8) < 0 ||
         getsockname(l, (struct sockaddr *)sa, &len) < 0)) {
        close(l);
        return -1;
    }
    return l;
}

static void e_accept_nonblocking_empty(struct bk_res *r)
{
    struct sockaddr_in sa;
    int l = bk_listener(&sa, SOCK_NONBLOCK);
    BK_GUARDED(r, l, 2, accept(l, NULL, NULL));
    bk_close(&l);
}

/* accept on a listener with a connection queued: (mode 0) accept from a
 * non-blocking listener gives a blocking socket; (1) accept4 SOCK_NONBLOCK
 * gives a non-blocking one (recv EAGAIN); (2) accept4 without it gives a
 * blocking one. rc is the accepted socket's O_NONBLOCK, or recv's rc. */
static void bk_accept_mode(struct bk_res *r, int mode)
{
    struct sockaddr_in sa;
    int l = bk_listener(&sa, mode == 0 ? SOCK_NONBLOCK : 0);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (l < 0 || c < 0 || connect(c, (struct sockaddr *)&sa, sizeof sa) < 0) {
        bk_note(r, "setup: %s", bk_errname(errno));
        r->rc = BK_WRONG;
    } else if (mode == 1) {
        int fd = accept4(l, NULL, NULL, SOCK_NONBLOCK);
        char ch;
        BK_GUARDED(r, c, 0, recv(fd, &ch, 1, 0));
        bk_close(&fd);
    } else {
        int fd;
        if (mode == 0) {
            /* the connection may not be queued the moment connect returns */
            struct pollfd pf = {l, POLLIN, 0};
            poll(&pf, 1, 5000);
            fd = accept(l, NULL, NULL);
        } else {
            fd = accept4(l, NULL, NULL, SOCK_CLOEXEC);
        }
        BK_CALL(r, fd < 0 ? -1 : (fcntl(fd, F_GETFL) & O_NONBLOCK));
        bk_close(&fd);
    }
    bk_close(&c);
    bk_close(&l);
}

static void e_accept_gives_blocking(struct bk_res *r)
{
    bk_accept_mode(r, 0);
}

static void e_accept4_nonblock(struct bk_res *r)
{
    bk_accept_mode(r, 1);
}

static void e_accept4_blocking(struct bk_res *r)
{
    bk_accept_mode(r, 2);
}

/* mode 0 dup, 1 dup2 over a blocking socket, 2 dup3, 3 F_DUPFD, of a
 * non-blocking socket: the copy is non-blocking too. */
static void bk_dup_mode(struct bk_res *r, int mode)
{
    int sv[2], other[2];
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv);
    socketpair(AF_UNIX, SOCK_STREAM, 0, other);
    int d = mode == 0   ? dup(sv[0])
            : mode == 1 ? dup2(sv[0], other[0])
            : mode == 2 ? dup3(sv[0], other[0], O_CLOEXEC)
                        : fcntl(sv[0], F_DUPFD, 100);
    if (mode == 1 || mode == 2)
        other[0] = -1; /* d is that number now */
    char c;
    BK_GUARDED(r, sv[1], 0, recv(d, &c, 1, 0));
    bk_close(&d);
    bk_close2(sv);
    bk_close2(other);
}

static void e_dup_nonblock(struct bk_res *r)
{
    bk_dup_mode(r, 0);
}

static void e_dup2_nonblock(struct bk_res *r)
{
    bk_dup_mode(r, 1);
}

static void e_dup3_nonblock(struct bk_res *r)
{
    bk_dup_mode(r, 2);
}

static void e_fdupfd_nonblock(struct bk_res *r)
{
    bk_dup_mode(r, 3);
}

/* O_NONBLOCK belongs to the open file: set through a dup, the original
 * sees it too. */
static void e_dup_shares_nonblock(struct bk_res *r)
{
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    int d = dup(sv[0]);
    fcntl(d, F_SETFL, fcntl(d, F_GETFL) | O_NONBLOCK);
    char c;
    BK_GUARDED(r, sv[1], 0, recv(sv[0], &c, 1, 0));
    bk_close(&d);
    bk_close2(sv);
}

static void e_connect_nonblocking(struct bk_res *r)
{
    struct sockaddr_in sa;
    int l = bk_listener(&sa, 0);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    BK_CALL(r, connect(c, (struct sockaddr *)&sa, sizeof sa));
    bk_close(&c);
    bk_close(&l);
}

/* ---- net --------------------------------------------------------------- */

static void e_connect_refused(struct bk_res *r)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    int b = socket(AF_INET, SOCK_STREAM, 0); /* bound, never listening */
    bind(b, (struct sockaddr *)&sa, len);
    getsockname(b, (struct sockaddr *)&sa, &len);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    BK_CALL(r, connect(c, (struct sockaddr *)&sa, len));
    bk_close(&c);
    bk_close(&b);
}

static void e_connect_twice(struct bk_res *r)
{
    struct sockaddr_in sa;
    int l = bk_listener(&sa, 0);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    connect(c, (struct sockaddr *)&sa, sizeof sa);
    BK_CALL(r, connect(c, (struct sockaddr *)&sa, sizeof sa));
    bk_close(&c);
    bk_close(&l);
}

static void e_connect_closed_fd(struct bk_res *r)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons(9),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    BK_CALL(r, connect(bk_closed_fd(), (struct sockaddr *)&sa, sizeof sa));
}

static void e_connect_unix_missing(struct bk_res *r)
{
    struct sockaddr_un su = {.sun_family = AF_UNIX};
    snprintf(su.sun_path, sizeof su.sun_path, "/nonexistent/coserve.sock");
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    BK_CALL(r, connect(c, (struct sockaddr *)&su, sizeof su));
    bk_close(&c);
}

static void e_accept_not_listening(struct bk_res *r)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    BK_CALL(r, accept(s, NULL, NULL));
    bk_close(&s);
}

static void e_connect_send_accept_recv(struct bk_res *r)
{
    struct sockaddr_in sa;
    int l = bk_listener(&sa, 0);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    connect(c, (struct sockaddr *)&sa, sizeof sa);
    send(c, "hello", 5, 0);
    int a = accept(l, NULL, NULL);
    char buf[8];
    size_t got = 0;
    ssize_t n = 0;
    while (got < 5 && (n = recv(a, buf + got, sizeof buf - got, 0)) > 0)
        got += (size_t)n;
    BK_CALL(r, got);
    bk_close(&a);
    bk_close(&c);
    bk_close(&l);
}

/* ---- timeo ------------------------------------------------------------- */

static int bk_timeo_pair(int sv[2], int opt)
{
    struct timeval tv = {0, 100000};
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    return setsockopt(sv[0], SOL_SOCKET, opt, &tv, sizeof tv);
}

static void e_rcvtimeo_recv(struct bk_res *r)
{
    int sv[2];
    bk_timeo_pair(sv, SO_RCVTIMEO);
    char c;
    BK_CALL(r, recv(sv[0], &c, 1, 0));
    bk_close2(sv);
}

static void e_rcvtimeo_read(struct bk_res *r)
{
    int sv[2];
    bk_timeo_pair(sv, SO_RCVTIMEO);
    char c;
    BK_CALL(r, read(sv[0], &c, 1));
    bk_close2(sv);
}

static void e_rcvtimeo_recvmsg(struct bk_res *r)
{
    int sv[2];
    bk_timeo_pair(sv, SO_RCVTIMEO);
    char c;
    struct iovec iov = {&c, 1};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    BK_CALL(r, recvmsg(sv[0], &mh, 0));
    bk_close2(sv);
}

static void e_rcvtimeo_reads_back(struct bk_res *r)
{
    int sv[2];
    bk_timeo_pair(sv, SO_RCVTIMEO);
    struct timeval tv = {0, 0};
    socklen_t len = sizeof tv;
    BK_CALL(r, getsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, &len));
    bk_note(r, "%ld.%06ld", (long)tv.tv_sec, (long)tv.tv_usec);
    if (tv.tv_sec != 0 || tv.tv_usec != 100000)
        bk_wrong(r, "getsockopt(SO_RCVTIMEO) is not what was set");
    bk_close2(sv);
}

static void e_rcvtimeo_accept(struct bk_res *r)
{
    struct sockaddr_in sa;
    int l = bk_listener(&sa, 0);
    struct timeval tv = {0, 100000};
    setsockopt(l, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    BK_CALL(r, accept(l, NULL, NULL));
    bk_close(&l);
}

static void e_sndtimeo_partial_then_eagain(struct bk_res *r)
{
    int sv[2], small = 4096;
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    struct timeval tv = {0, 100000};
    setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    size_t big = 1 << 20;
    char *buf = calloc(1, big);
    ssize_t first = send(sv[0], buf, big, MSG_NOSIGNAL);
    BK_CALL(r, send(sv[0], buf, big, MSG_NOSIGNAL));
    free(buf);
    bk_note(r, "first send %zd of %zu", first, big);
    if (first <= 0 || (size_t)first >= big)
        bk_wrong(r, "the first send did not return a partial count");
    bk_close2(sv);
}

/* ---- names ------------------------------------------------------------- */

static void e_gai_localhost(struct bk_res *r)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM},
                    *res = NULL;
    BK_CALL(r, getaddrinfo("localhost", "80", &hints, &res));
    if (r->rc == 0) {
        char host[64];
        inet_ntop(AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr,
                  host, sizeof host);
        bk_note(r, "%s", host);
        if (strcmp(host, "127.0.0.1") != 0)
            bk_wrong(r, "localhost is not 127.0.0.1");
        freeaddrinfo(res);
    }
    r->err = 0; /* getaddrinfo's errno means nothing on success */
}

static void e_gai_nonexistent(struct bk_res *r)
{
    struct addrinfo *res = NULL;
    r->rc = getaddrinfo("nonexistent.invalid", "80", NULL, &res);
    r->err = 0;
    bk_note(r, "%s", gai_strerror((int)r->rc));
    if (r->rc == 0)
        freeaddrinfo(res);
    else if (r->rc != EAI_NONAME && r->rc != EAI_AGAIN && r->rc != EAI_FAIL &&
             r->rc != EAI_NODATA)
        bk_wrong(r, "not a name-not-found error");
}

static void e_gai_bad_flags(struct bk_res *r)
{
    struct addrinfo hints = {.ai_flags = 0x7fff0000}, *res = NULL;
    r->rc = getaddrinfo("localhost", "80", &hints, &res);
    r->err = 0;
    if (r->rc == 0)
        freeaddrinfo(res);
}

static void e_gai_bad_service(struct bk_res *r)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    r->rc = getaddrinfo("localhost", "no-such-service-x", &hints, &res);
    r->err = 0;
    if (r->rc == 0)
        freeaddrinfo(res);
}

static void e_gai_numeric(struct bk_res *r)
{
    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST,
                             .ai_socktype = SOCK_STREAM},
                    *res = NULL;
    r->rc = getaddrinfo("127.0.0.1", "8080", &hints, &res);
    r->err = 0;
    if (r->rc == 0) {
        struct sockaddr_in *sin = (struct sockaddr_in *)res->ai_addr;
        if (res->ai_family != AF_INET || ntohs(sin->sin_port) != 8080)
            bk_wrong(r, "wrong address");
        freeaddrinfo(res);
    }
}

static void bk_gni(struct bk_res *r, int flags, size_t hostlen)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons(80),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    char host[64] = "", serv[32] = "";
    r->rc = getnameinfo((struct sockaddr *)&sa, sizeof sa, host, hostlen, serv,
                        sizeof serv, flags);
    r->err = 0;
    bk_note(r, "%s:%s", r->rc == 0 ? host : "", r->rc == 0 ? serv : "");
}

static void e_gni_numeric(struct bk_res *r)
{
    bk_gni(r, NI_NUMERICHOST | NI_NUMERICSERV, 64);
    if (r->rc == 0 && strcmp(r->note, "127.0.0.1:80") != 0)
        bk_wrong(r, "not 127.0.0.1:80");
}

static void e_gni_names(struct bk_res *r)
{
    bk_gni(r, 0, 64);
}

static void e_gni_overflow(struct bk_res *r)
{
    bk_gni(r, NI_NUMERICHOST | NI_NUMERICSERV, 3);
}

static void e_ghbn_localhost(struct bk_res *r)
{
    struct hostent *h = gethostbyname("localhost");
    r->rc = h ? 0 : h_errno;
    r->err = 0;
    if (h) {
        char host[64] = "";
        inet_ntop(h->h_addrtype, h->h_addr_list[0], host, sizeof host);
        bk_note(r, "%s %s", h->h_name, host);
        if (h->h_addrtype != AF_INET || strcmp(host, "127.0.0.1") != 0)
            bk_wrong(r, "not 127.0.0.1");
    }
}

static void e_ghbn_nonexistent(struct bk_res *r)
{
    struct hostent *h = gethostbyname("nonexistent.invalid");
    r->rc = h ? 0 : h_errno;
    r->err = 0;
}

static void e_ghbn_r_localhost(struct bk_res *r)
{
    struct hostent he, *h = NULL;
    char buf[1024];
    int herr = 0;
    r->rc = gethostbyname_r("localhost", &he, buf, sizeof buf, &h, &herr);
    r->err = 0;
    if (r->rc == 0 && !h)
        bk_wrong(r, "no result");
    else if (h)
        bk_note(r, "%s", h->h_name);
}

static void e_ghbn_r_small_buffer(struct bk_res *r)
{
    struct hostent he, *h = NULL;
    char buf[8];
    int herr = 0;
    r->rc = gethostbyname_r("localhost", &he, buf, sizeof buf, &h, &herr);
    r->err = 0;
}

/* ---- the tables -------------------------------------------------------- */

#define C(name, want_rc, want_err, flags)                                      \
    {                                                                          \
#name, e_##name, want_rc, want_err, flags                              \
    }

static const struct bk_case bk_time[] = {
    C(nanosleep_nsec_1e9, -1, EINVAL, 0),
    C(nanosleep_negative, -1, EINVAL, 0),
    C(nanosleep_1ms, 0, BK_ANY_ERR, 0),
    C(cns_bad_nsec, EINVAL, BK_ANY_ERR, 0),
    C(cns_thread_cputime, EINVAL, BK_ANY_ERR, 0),
    C(cns_abs_past, 0, BK_ANY_ERR, 0),
    C(cns_abs_realtime_not_early, 0, BK_ANY_ERR, 0),
    C(usleep_0, 0, BK_ANY_ERR, 0),
    C(sleep_0, 0, BK_ANY_ERR, 0),
    C(usleep_20ms_not_early, 0, BK_ANY_ERR, 0),
    {0},
};

static const struct bk_case bk_poll[] = {
    C(poll_no_fds, 0, BK_ANY_ERR, 0),
    C(poll_ready, 1, BK_ANY_ERR, 0),
    C(poll_write_ready, 1, BK_ANY_ERR, 0),
    C(poll_closed_fd, 1, BK_ANY_ERR, 0),
    C(poll_negative_fd, 0, BK_ANY_ERR, 0),
    C(poll_times_out, 0, BK_ANY_ERR, 0),
    C(poll_zero_timeout, 0, BK_ANY_ERR, 0),
    C(poll_hup, 1, BK_ANY_ERR, 0),
    C(poll_one_of_two_ready, 1, BK_ANY_ERR, 0),
    C(ppoll_ready, 1, BK_ANY_ERR, 0),
    C(ppoll_times_out, 0, BK_ANY_ERR, 0),
    C(ppoll_bad_timespec, -1, EINVAL, 0),
    {0},
};

static const struct bk_case bk_select[] = {
    C(select_ready, 1, BK_ANY_ERR, 0),
    C(select_write_ready, 1, BK_ANY_ERR, 0),
    C(select_times_out, 0, BK_ANY_ERR, 0),
    C(select_timeout_written_back, 0, BK_ANY_ERR, 0),
    C(select_no_fds_sleeps, 0, BK_ANY_ERR, 0),
    C(select_closed_fd, -1, EBADF, 0),
    C(select_negative_nfds, -1, EINVAL, 0),
    C(select_zero_timeout, 0, BK_ANY_ERR, 0),
    C(pselect_ready, 1, BK_ANY_ERR, 0),
    C(pselect_times_out, 0, BK_ANY_ERR, 0),
    C(pselect_closed_fd, -1, EBADF, 0),
    {0},
};

static const struct bk_case bk_fd[] = {
    C(read_closed, -1, EBADF, 0),
    C(write_closed, -1, EBADF, 0),
    C(recv_closed, -1, EBADF, 0),
    C(send_closed, -1, EBADF, 0),
    C(close_closed, -1, EBADF, 0),
    C(dup_closed, -1, EBADF, 0),
    C(getfl_closed, -1, EBADF, 0),
    C(recv_on_pipe, -1, ENOTSOCK, 0),
    C(read_zero_bytes, 0, BK_ANY_ERR, 0),
    C(read_data_ready, 5, BK_ANY_ERR, 0),
    C(readv_data_ready, 5, BK_ANY_ERR, 0),
    C(recv_after_peer_closed, 0, BK_ANY_ERR, 0),
    C(read_after_peer_closed, 0, BK_ANY_ERR, 0),
    C(send_after_peer_closed, -1, EPIPE, 0),
    C(recv_peek_then_recv, 2, BK_ANY_ERR, 0),
    C(recv_dontwait_blocking_socket, -1, EAGAIN, 0),
    C(send_dontwait_full, -1, EAGAIN, 0),
    C(getfl_blocking_socket, 0, BK_ANY_ERR, 0),
    C(getfl_after_a_parked_recv, 0, BK_ANY_ERR, 0),
    {0},
};

static const struct bk_case bk_nonblock[] = {
    C(sock_nonblock_recv, -1, EAGAIN, 0),
    C(sock_nonblock_read, -1, EAGAIN, 0),
    C(sock_nonblock_getfl, 1, BK_ANY_ERR, 0),
    C(setfl_nonblock_recv, -1, EAGAIN, 0),
    C(setfl_after_park_recv, -1, EAGAIN, 0),
    C(fionbio_recv, -1, EAGAIN, 0),
    C(setfl_cleared_blocks, 1, BK_ANY_ERR, 0),
    C(fionbio_cleared_blocks, 1, BK_ANY_ERR, 0),
    C(pipe2_nonblock_read, -1, EAGAIN, 0),
    C(eventfd_nonblock_read, -1, EAGAIN, 0),
    C(accept_nonblocking_empty, -1, EAGAIN, 0),
    C(accept_gives_blocking, 0, BK_ANY_ERR, 0),
    C(accept4_nonblock, -1, EAGAIN, 0),
    C(accept4_blocking, 0, BK_ANY_ERR, 0),
    C(dup_nonblock, -1, EAGAIN, 0),
    C(dup2_nonblock, -1, EAGAIN, 0),
    C(dup3_nonblock, -1, EAGAIN, 0),
    C(fdupfd_nonblock, -1, EAGAIN, 0),
    C(connect_nonblocking, -1, EINPROGRESS, 0),
    {0},
};

/* O_NONBLOCK is shared through dup: its own group, so a table that keeps it
 * per fd number shows up by name. */
static const struct bk_case bk_dupshare[] = {
    C(dup_shares_nonblock, -1, EAGAIN, 0),
    {0},
};

static const struct bk_case bk_net[] = {
    C(connect_refused, -1, ECONNREFUSED, 0),
    C(connect_twice, -1, EISCONN, 0),
    C(connect_closed_fd, -1, EBADF, 0),
    C(connect_unix_missing, -1, ENOENT, 0),
    C(accept_not_listening, -1, EINVAL, 0),
    C(connect_send_accept_recv, 5, BK_ANY_ERR, 0),
    {0},
};

static const struct bk_case bk_timeo[] = {
    C(rcvtimeo_recv, -1, EAGAIN, 0),
    C(rcvtimeo_read, -1, EAGAIN, 0),
    C(rcvtimeo_recvmsg, -1, EAGAIN, 0),
    C(rcvtimeo_reads_back, 0, BK_ANY_ERR, 0),
    C(rcvtimeo_accept, -1, EAGAIN, 0),
    C(sndtimeo_partial_then_eagain, -1, EAGAIN, 0),
    {0},
};

static const struct bk_case bk_names[] = {
    C(gai_localhost, 0, 0, BK_SAME_NOTE),
    C(gai_nonexistent, 0, 0, BK_NONZERO | BK_SAME | BK_SAME_NOTE),
    C(gai_bad_flags, EAI_BADFLAGS, 0, 0),
    C(gai_bad_service, EAI_SERVICE, 0, 0),
    C(gai_numeric, 0, 0, 0),
    C(gni_numeric, 0, 0, 0),
    C(gni_names, 0, 0, BK_SAME_NOTE),
    C(gni_overflow, EAI_OVERFLOW, 0, 0),
    C(ghbn_localhost, 0, 0, BK_SAME_NOTE),
    C(ghbn_nonexistent, 0, 0, BK_NONZERO | BK_SAME),
    C(ghbn_r_localhost, 0, 0, BK_SAME_NOTE),
    C(ghbn_r_small_buffer, ERANGE, 0, 0),
    {0},
};

static const struct {
    const char *name;
    const struct bk_case *cases;
} bk_groups[] = {
    {"time", bk_time}, {"poll", bk_poll},         {"select", bk_select},
    {"fd", bk_fd},     {"nonblock", bk_nonblock}, {"dupshare", bk_dupshare},
    {"net", bk_net},   {"timeo", bk_timeo},       {"names", bk_names},
};

/* ---- running them ------------------------------------------------------ */

struct bk_thread_run {
    const struct bk_case *cases;
    struct bk_res *res;
};

static void *bk_thread_run_main(void *arg)
{
    struct bk_thread_run *t = arg;
    for (size_t i = 0; t->cases[i].name; i++)
        t->cases[i].fn(&t->res[i]);
    return NULL;
}

static int bk_meets(const struct bk_case *c, const struct bk_res *r)
{
    if (r->rc == BK_WRONG)
        return 0;
    if (c->flags & BK_NONZERO)
        return r->rc != 0;
    return r->rc == c->want_rc &&
           (c->want_err == BK_ANY_ERR || r->err == c->want_err);
}

int bk_edges(const char *group, struct bk_out *o)
{
    const struct bk_case *cases = NULL;
    for (size_t i = 0; i < sizeof bk_groups / sizeof bk_groups[0]; i++)
        if (strcmp(bk_groups[i].name, group) == 0)
            cases = bk_groups[i].cases;
    if (!cases)
        return -1;
    size_t n = 0;
    while (cases[n].name)
        n++;
    struct bk_res *th = calloc(n, sizeof *th), *co = calloc(n, sizeof *co);
    /* straight libc first, on a plain thread */
    struct bk_thread_run t = {cases, th};
    pthread_t tid;
    if (pthread_create(&tid, NULL, bk_thread_run_main, &t) != 0) {
        bk_fail(o, "pthread_create");
        free(th);
        free(co);
        return (int)n;
    }
    pthread_join(tid, NULL);
    /* then hooked, in this coroutine; the log names a case that hangs */
    for (size_t i = 0; i < n; i++) {
        fprintf(stderr, "blocking: edge case %s/%s in the coroutine\n", group,
                cases[i].name);
        cases[i].fn(&co[i]);
    }
    fprintf(stderr, "blocking: edge cases %s done\n", group);
    for (size_t i = 0; i < n; i++) {
        const struct bk_case *c = &cases[i];
        int ok_co = bk_meets(c, &co[i]), ok_th = bk_meets(c, &th[i]);
        int same = 1;
        if ((c->flags & BK_SAME) &&
            (co[i].rc != th[i].rc || co[i].err != th[i].err))
            same = 0;
        if ((c->flags & BK_SAME_NOTE) && strcmp(co[i].note, th[i].note) != 0)
            same = 0;
        char want[64];
        if (c->flags & BK_NONZERO)
            snprintf(want, sizeof want, "non-zero");
        else
            snprintf(want, sizeof want, "%ld %s", c->want_rc,
                     c->want_err == BK_ANY_ERR ? "*" : bk_errname(c->want_err));
        bk_say(o,
               "%-30s coroutine %ld %s [%s] | thread %ld %s [%s] | want %s%s\n",
               c->name, co[i].rc, bk_errname(co[i].err), co[i].note, th[i].rc,
               bk_errname(th[i].err), th[i].note, want,
               ok_co && ok_th && same ? "" : "  <-- BAD");
        if (!ok_co)
            bk_fail(o, "%s in the coroutine: rc=%ld errno=%s [%s], want %s",
                    c->name, co[i].rc, bk_errname(co[i].err), co[i].note, want);
        if (!ok_th)
            bk_fail(o, "%s on a plain thread: rc=%ld errno=%s [%s], want %s",
                    c->name, th[i].rc, bk_errname(th[i].err), th[i].note, want);
        if (!same)
            bk_fail(o, "%s: the coroutine and the thread disagree", c->name);
    }
    free(th);
    free(co);
    return (int)n;
}
