/*
 * test_fdio.c - cooperative fd I/O: co_read/co_write_all, co_wait_fd,
 * co_readv/co_writev_all, co_recv/co_send_all, co_accept/co_connect,
 * co_sendfile, co_dial, and 10,000 coroutines ping-ponging at once.
 *
 * Coroutines only record what they saw; the assertions run after co_run()
 * returns (a failed assertion must not unwind a coroutine stack). No test
 * asserts on timing: deadlines are either meant to expire or generous guards.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/fdio.h"
#include "core/hub.h"
#include "coserve.h"

#ifdef COSERVE_ASAN
#include <sanitizer/lsan_interface.h>
#endif

/* Deadline for operations that should succeed: only a guard against hangs. */
#define GUARD_MS 20000

/* Criterion ignores a test process's exit status once the test has passed,
 * so LeakSanitizer's report at exit would go unnoticed: check here, at the
 * end of the test, where everything the test allocated has been freed. */
static void assert_no_leaks(void)
{
#ifdef COSERVE_ASAN
    cr_assert_eq(__lsan_do_recoverable_leak_check(), 0,
                 "LeakSanitizer found leaks (see its report above)");
#endif
}

/* ---- helpers (called from the test body, where cr_assert is safe) ----- */

static void make_pair(int sv[2])
{
    int rc =
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv);
    cr_assert_eq(rc, 0, "socketpair: %s", strerror(errno));
}

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

/* A TCP listener on 127.0.0.1, port chosen by the kernel. */
static int make_listener(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0, "socket: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0, "bind: %s",
                 strerror(errno));
    cr_assert_eq(listen(fd, 64), 0, "listen: %s", strerror(errno));
    socklen_t len = sizeof sa;
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

static uint8_t pattern(size_t i, unsigned seed)
{
    return (uint8_t)(i * 131u + (i >> 11) + seed * 7u);
}

static void fill(uint8_t *buf, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = pattern(i, seed);
}

/* Index of the first byte of buf[0..n) that differs from the pattern, or n. */
static size_t first_bad(const uint8_t *buf, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        if (buf[i] != pattern(i, seed))
            return i;
    return n;
}

static int is_nonblocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl >= 0 && (fl & O_NONBLOCK);
}

static int is_cloexec(int fd)
{
    int fl = fcntl(fd, F_GETFD);
    return fl >= 0 && (fl & FD_CLOEXEC);
}

/* ---- helpers for coroutines (no assertions) ---------------------------- */

/* Reads until n bytes or end of file; returns the count or -1 (errno). */
static ssize_t read_full(int fd, void *buf, size_t n, int64_t deadline)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = co_read(fd, (char *)buf + got, n - got, deadline);
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* Reads until end of file into buf (at most cap bytes). Records the count,
 * and the errno if a read failed. */
struct drain {
    int fd;
    uint8_t *buf;
    size_t cap;
    size_t got;
    int rc;  /* 0, or -1 if a read failed or more than cap bytes came */
    int err; /* errno of the failed read */
    int eof; /* saw end of file */
};

static void *drain_co(void *arg)
{
    struct drain *d = arg;
    int64_t dl = co_deadline(GUARD_MS);
    for (;;) {
        size_t room = d->cap - d->got;
        uint8_t extra;
        ssize_t r = room ? co_read(d->fd, d->buf + d->got, room, dl)
                         : co_read(d->fd, &extra, 1, dl);
        if (r < 0) {
            d->rc = -1;
            d->err = errno;
            return NULL;
        }
        if (r == 0) {
            d->eof = 1;
            return NULL;
        }
        if (!room) {
            d->rc = -1; /* more than expected */
            return NULL;
        }
        d->got += (size_t)r;
    }
}

/* ===================================================================== */

#define RW_SIZE (1u << 20) /* bigger than a socket buffer: writes must wait */

struct rw_case {
    int sv[2];
    uint8_t *out;
    struct drain d;
    int write_rc, write_err;
};

static void *rw_writer(void *arg)
{
    struct rw_case *c = arg;
    c->write_rc =
        co_write_all(c->sv[1], c->out, RW_SIZE, co_deadline(GUARD_MS));
    c->write_err = errno;
    close_fd(&c->sv[1]);
    return NULL;
}

static void *rw_main(void *arg)
{
    struct rw_case *c = arg;
    co_t *w = co_spawn(rw_writer, c);
    if (!w)
        return (void *)"spawn failed";
    drain_co(&c->d);
    if (co_join(w, NULL, -1) != 0)
        return (void *)"join failed";
    return NULL;
}

Test(fdio, read_returns_what_write_all_sent_then_zero_at_end_of_file)
{
    struct rw_case c = {.out = malloc(RW_SIZE)};
    cr_assert_not_null(c.out);
    fill(c.out, RW_SIZE, 1);
    make_pair(c.sv);
    c.d = (struct drain){.fd = c.sv[0], .buf = malloc(RW_SIZE), .cap = RW_SIZE};
    cr_assert_not_null(c.d.buf);

    void *res = (void *)"not run";
    cr_assert_eq(co_run(rw_main, &c, &res), 0, "co_run: %s", strerror(errno));
    cr_assert_null(res, "%s", (char *)res);
    cr_assert_eq(c.write_rc, 0, "co_write_all: %s", strerror(c.write_err));
    cr_assert_eq(c.d.rc, 0, "co_read failed: %s", strerror(c.d.err));
    cr_assert(c.d.eof, "co_read never returned 0 after the writer closed");
    cr_assert_eq(c.d.got, RW_SIZE);
    cr_assert_eq(first_bad(c.d.buf, RW_SIZE, 1), RW_SIZE,
                 "bytes differ from offset %zu",
                 first_bad(c.d.buf, RW_SIZE, 1));
    close_fd(&c.sv[0]);
    free(c.out);
    free(c.d.buf);
    assert_no_leaks();
}

/* ===================================================================== */

struct timeout_case {
    int fd;
    ssize_t read_rc;
    int read_err;
    int wait_rc, wait_err;
    int past_rc, past_err;
    int both_rc, both_err;
};

static void *timeout_main(void *arg)
{
    struct timeout_case *c = arg;
    char buf[16];
    c->read_rc = co_read(c->fd, buf, sizeof buf, co_deadline(30));
    c->read_err = errno;
    c->wait_rc = co_wait_fd(c->fd, CO_READABLE, co_deadline(30));
    c->wait_err = errno;
    /* A deadline already in the past. */
    c->past_rc = co_wait_fd(c->fd, CO_READABLE, co_now() - 1000);
    c->past_err = errno;
    return NULL;
}

Test(fdio, read_times_out_when_nothing_arrives)
{
    int sv[2];
    make_pair(sv);
    struct timeout_case c = {.fd = sv[0]};
    cr_assert_eq(co_run(timeout_main, &c, NULL), 0);
    cr_assert_eq(c.read_rc, -1);
    cr_assert_eq(c.read_err, ETIMEDOUT, "co_read errno %d (%s)", c.read_err,
                 strerror(c.read_err));
    cr_assert_eq(c.wait_rc, -1);
    cr_assert_eq(c.wait_err, ETIMEDOUT, "co_wait_fd errno %d (%s)", c.wait_err,
                 strerror(c.wait_err));
    cr_assert_eq(c.past_rc, -1);
    cr_assert_eq(c.past_err, ETIMEDOUT, "past deadline: errno %d (%s)",
                 c.past_err, strerror(c.past_err));
    close(sv[0]);
    close(sv[1]);
    assert_no_leaks();
}

/* ===================================================================== */

struct ready_case {
    int sv[2];
    int writable_rc, writable_err;
    int readable_rc, readable_err;
    int either_rc, either_err;
};

static void *ready_main(void *arg)
{
    struct ready_case *c = arg;
    /* A fresh socket is writable. */
    c->writable_rc = co_wait_fd(c->sv[0], CO_WRITABLE, co_deadline(GUARD_MS));
    c->writable_err = errno;
    /* Pending data makes the other end readable. */
    if (write(c->sv[0], "x", 1) != 1)
        return (void *)"write failed";
    c->readable_rc = co_wait_fd(c->sv[1], CO_READABLE, co_deadline(GUARD_MS));
    c->readable_err = errno;
    c->either_rc =
        co_wait_fd(c->sv[1], CO_READABLE | CO_WRITABLE, co_deadline(GUARD_MS));
    c->either_err = errno;
    return NULL;
}

Test(fdio, wait_fd_returns_when_the_fd_is_already_ready)
{
    struct ready_case c;
    make_pair(c.sv);
    void *res = NULL;
    cr_assert_eq(co_run(ready_main, &c, &res), 0);
    cr_assert_null(res, "%s", (char *)res);
    cr_assert_eq(c.writable_rc, 0, "CO_WRITABLE: %s", strerror(c.writable_err));
    cr_assert_eq(c.readable_rc, 0, "CO_READABLE: %s", strerror(c.readable_err));
    cr_assert_eq(c.either_rc, 0, "CO_READABLE|CO_WRITABLE: %s",
                 strerror(c.either_err));
    close(c.sv[0]);
    close(c.sv[1]);
    assert_no_leaks();
}

/* ===================================================================== */

struct cancel_case {
    int sv[2];
    int started;
    int wait_rc, wait_err;   /* the cancelled co_wait_fd */
    int later_rc, later_err; /* a second wait by the same coroutine */
    int after_cancel_still_flagged;
    co_t *victim;
    int next_rc, next_err; /* a new waiter on the same fd and direction */
    ssize_t read_rc;
    int read_err;
    int read_started;
};

static void *cancel_victim(void *arg)
{
    struct cancel_case *c = arg;
    c->started = 1;
    c->wait_rc = co_wait_fd(c->sv[0], CO_READABLE, -1);
    c->wait_err = errno;
    c->after_cancel_still_flagged = co_cancelled();
    c->later_rc = co_wait_fd(c->sv[0], CO_READABLE, -1);
    c->later_err = errno;
    return (void *)0x1234;
}

static void *cancel_canceller(void *arg)
{
    struct cancel_case *c = arg;
    while (!c->started)
        if (co_yield_now() != 0)
            return NULL;
    co_yield_now(); /* let the victim settle into its wait */
    co_cancel(c->victim);
    return NULL;
}

static void *cancel_next_waiter(void *arg)
{
    struct cancel_case *c = arg;
    c->next_rc = co_wait_fd(c->sv[0], CO_READABLE, co_deadline(GUARD_MS));
    c->next_err = errno;
    return NULL;
}

static void *cancel_reader(void *arg)
{
    struct cancel_case *c = arg;
    char buf[8];
    c->read_started = 1;
    c->read_rc = co_read(c->sv[1], buf, sizeof buf, -1);
    c->read_err = errno;
    return NULL;
}

static void *cancel_main(void *arg)
{
    struct cancel_case *c = arg;
    c->victim = co_spawn(cancel_victim, c);
    co_t *canceller = co_spawn(cancel_canceller, c);
    if (!c->victim || !canceller)
        return (void *)"spawn failed";
    void *vres = NULL;
    if (co_join(canceller, NULL, co_deadline(GUARD_MS)) != 0)
        return (void *)"join canceller failed";
    if (co_join(c->victim, &vres, co_deadline(GUARD_MS)) != 0)
        return (void *)"join victim failed (did the cancel not wake it?)";
    if (vres != (void *)0x1234)
        return (void *)"victim result lost";

    /* The fd and direction must be free again for a new waiter. */
    co_t *next = co_spawn(cancel_next_waiter, c);
    if (!next)
        return (void *)"spawn failed";
    co_yield_now();
    co_yield_now();
    if (write(c->sv[1], "y", 1) != 1)
        return (void *)"write failed";
    if (co_join(next, NULL, co_deadline(GUARD_MS)) != 0)
        return (void *)"join next waiter failed";

    /* A coroutine blocked in co_read, cancelled by its parent. */
    co_t *reader = co_spawn(cancel_reader, c);
    if (!reader)
        return (void *)"spawn failed";
    while (!c->read_started)
        co_yield_now();
    co_yield_now();
    co_cancel(reader);
    if (co_join(reader, NULL, co_deadline(GUARD_MS)) != 0)
        return (void *)"join reader failed";
    return NULL;
}

Test(fdio, cancelled_waits_fail_with_ecanceled_and_free_the_fd_for_others)
{
    struct cancel_case c = {0};
    make_pair(c.sv);
    void *res = (void *)"not run";
    cr_assert_eq(co_run(cancel_main, &c, &res), 0);
    cr_assert_null(res, "%s", (char *)res);
    cr_assert_eq(c.wait_rc, -1);
    cr_assert_eq(c.wait_err, ECANCELED, "cancelled co_wait_fd: errno %d (%s)",
                 c.wait_err, strerror(c.wait_err));
    cr_assert(c.after_cancel_still_flagged, "co_cancelled() is 0 after cancel");
    cr_assert_eq(c.later_rc, -1);
    cr_assert_eq(c.later_err, ECANCELED, "later co_wait_fd: errno %d (%s)",
                 c.later_err, strerror(c.later_err));
    cr_assert_eq(c.next_rc, 0, "new waiter on the same fd: %s",
                 strerror(c.next_err));
    cr_assert_eq(c.read_rc, -1);
    cr_assert_eq(c.read_err, ECANCELED, "cancelled co_read: errno %d (%s)",
                 c.read_err, strerror(c.read_err));
    close(c.sv[0]);
    close(c.sv[1]);
    assert_no_leaks();
}

/* ===================================================================== */

struct wto_case {
    int sv[2];
    uint8_t *buf;
    int rc, err;
};

#define WTO_SIZE (16u << 20) /* far more than the socket can buffer */

static void *wto_main(void *arg)
{
    struct wto_case *c = arg;
    c->rc = co_write_all(c->sv[0], c->buf, WTO_SIZE, co_deadline(50));
    c->err = errno;
    return NULL;
}

Test(fdio, write_all_times_out_when_the_peer_does_not_read)
{
    struct wto_case c = {.buf = calloc(1, WTO_SIZE)};
    cr_assert_not_null(c.buf);
    make_pair(c.sv);
    cr_assert_eq(co_run(wto_main, &c, NULL), 0);
    cr_assert_eq(c.rc, -1);
    cr_assert_eq(c.err, ETIMEDOUT, "errno %d (%s)", c.err, strerror(c.err));
    close(c.sv[0]);
    close(c.sv[1]);
    free(c.buf);
    assert_no_leaks();
}

/* ===================================================================== */

#define V_SIZE ((6u << 20) + 12345u)
#define V_NIOV 7

struct v_case {
    int sv[2];
    uint8_t *src, *dst;
    struct iovec iov[V_NIOV], iov_copy[V_NIOV];
    int write_rc, write_err;
    size_t got;
    int read_rc, read_err, eof, overflow;
    unsigned readv_calls;
};

static void *v_writer(void *arg)
{
    struct v_case *c = arg;
    c->write_rc =
        co_writev_all(c->sv[0], c->iov, V_NIOV, co_deadline(GUARD_MS));
    c->write_err = errno;
    close_fd(&c->sv[0]);
    return NULL;
}

static void *v_reader(void *arg)
{
    struct v_case *c = arg;
    int64_t dl = co_deadline(GUARD_MS);
    for (;;) {
        /* Three uneven pieces, the last may be empty near the end. */
        size_t left = V_SIZE - c->got;
        size_t a = left < 4093 ? left : 4093;
        size_t b = left - a < 1 ? left - a : 1;
        size_t d = left - a - b;
        if (d > 100000)
            d = 100000;
        uint8_t spare[1];
        struct iovec iov[3] = {{c->dst + c->got, a},
                               {c->dst + c->got + a, b},
                               {c->dst + c->got + a + b, d}};
        ssize_t r;
        c->readv_calls++;
        if (left == 0) {
            struct iovec one = {spare, 1};
            r = co_readv(c->sv[1], &one, 1, dl);
            if (r > 0) {
                c->overflow = 1;
                return NULL;
            }
        } else {
            r = co_readv(c->sv[1], iov, 3, dl);
        }
        if (r < 0) {
            c->read_rc = -1;
            c->read_err = errno;
            return NULL;
        }
        if (r == 0) {
            c->eof = 1;
            return NULL;
        }
        c->got += (size_t)r;
    }
}

static void *v_main(void *arg)
{
    co_t *r = co_spawn(v_reader, arg);
    co_t *w = co_spawn(v_writer, arg);
    if (!r || !w)
        return (void *)"spawn failed";
    co_t *all[2] = {r, w};
    if (co_join_all(all, 2, co_deadline(GUARD_MS)) != 0)
        return (void *)"join failed";
    return NULL;
}

Test(fdio, writev_all_of_several_mib_arrives_intact_through_readv)
{
    struct v_case c = {0};
    c.src = malloc(V_SIZE);
    c.dst = malloc(V_SIZE);
    cr_assert(c.src && c.dst);
    fill(c.src, V_SIZE, 3);
    memset(c.dst, 0, V_SIZE);
    /* Cut points: uneven sizes and one empty iovec in the middle. */
    size_t cuts[V_NIOV + 1] = {0,
                               (1u << 20) + 3,
                               (1u << 20) + 3,
                               (1u << 20) + 20,
                               (3u << 20) + 20,
                               (3u << 20) + 21,
                               (5u << 20),
                               V_SIZE};
    for (int i = 0; i < V_NIOV; i++) {
        c.iov[i].iov_base = c.src + cuts[i];
        c.iov[i].iov_len = cuts[i + 1] - cuts[i];
    }
    memcpy(c.iov_copy, c.iov, sizeof c.iov);
    make_pair(c.sv);

    void *res = (void *)"not run";
    cr_assert_eq(co_run(v_main, &c, &res), 0);
    cr_assert_null(res, "%s", (char *)res);
    cr_assert_eq(c.write_rc, 0, "co_writev_all: %s", strerror(c.write_err));
    cr_assert_eq(memcmp(c.iov, c.iov_copy, sizeof c.iov), 0,
                 "co_writev_all modified the iovec array");
    cr_assert_eq(c.read_rc, 0, "co_readv: %s", strerror(c.read_err));
    cr_assert_not(c.overflow, "more bytes arrived than were written");
    cr_assert(c.eof, "co_readv never returned 0 at end of file");
    cr_assert_eq(c.got, V_SIZE, "got %zu of %u bytes", c.got, V_SIZE);
    cr_assert_eq(first_bad(c.dst, V_SIZE, 3), V_SIZE,
                 "bytes differ from offset %zu", first_bad(c.dst, V_SIZE, 3));
    cr_log_info("co_readv calls: %u", c.readv_calls);
    close_fd(&c.sv[0]);
    close_fd(&c.sv[1]);
    free(c.src);
    free(c.dst);
    assert_no_leaks();
}

/* ===================================================================== */

/* Full duplex on one fd: a reader and a writer on each end at once (the
 * one-waiter rule is per fd and direction). */
#define DUP_SIZE (4u << 20)

struct dup_side {
    int fd;
    unsigned seed_out;
    uint8_t *out;
    struct drain in; /* reads DUP_SIZE bytes, not until EOF */
    int write_rc, write_err;
    ssize_t read_rc;
    int read_err;
};

static void *dup_writer(void *arg)
{
    struct dup_side *s = arg;
    s->write_rc = co_write_all(s->fd, s->out, DUP_SIZE, co_deadline(GUARD_MS));
    s->write_err = errno;
    return NULL;
}

static void *dup_reader(void *arg)
{
    struct dup_side *s = arg;
    s->read_rc = read_full(s->fd, s->in.buf, DUP_SIZE, co_deadline(GUARD_MS));
    s->read_err = errno;
    return NULL;
}

static void *dup_main(void *arg)
{
    struct dup_side *sides = arg;
    co_t *cos[4] = {
        co_spawn(dup_writer, &sides[0]), co_spawn(dup_reader, &sides[0]),
        co_spawn(dup_writer, &sides[1]), co_spawn(dup_reader, &sides[1])};
    for (int i = 0; i < 4; i++)
        if (!cos[i])
            return (void *)"spawn failed";
    if (co_join_all(cos, 4, co_deadline(GUARD_MS)) != 0)
        return (void *)"join failed";
    return NULL;
}

Test(fdio, one_fd_can_be_read_and_written_by_two_coroutines_at_once)
{
    int sv[2];
    make_pair(sv);
    struct dup_side sides[2];
    for (int i = 0; i < 2; i++) {
        sides[i] = (struct dup_side){.fd = sv[i], .seed_out = 10u + i};
        sides[i].out = malloc(DUP_SIZE);
        sides[i].in.buf = malloc(DUP_SIZE);
        cr_assert(sides[i].out && sides[i].in.buf);
        fill(sides[i].out, DUP_SIZE, sides[i].seed_out);
    }
    void *res = (void *)"not run";
    cr_assert_eq(co_run(dup_main, sides, &res), 0);
    cr_assert_null(res, "%s", (char *)res);
    for (int i = 0; i < 2; i++) {
        struct dup_side *s = &sides[i];
        unsigned peer_seed = sides[1 - i].seed_out;
        cr_assert_eq(s->write_rc, 0, "side %d co_write_all: %s", i,
                     strerror(s->write_err));
        cr_assert_eq(s->read_rc, (ssize_t)DUP_SIZE, "side %d read %zd: %s", i,
                     s->read_rc, strerror(s->read_err));
        cr_assert_eq(first_bad(s->in.buf, DUP_SIZE, peer_seed), DUP_SIZE,
                     "side %d: bytes differ", i);
        free(s->out);
        free(s->in.buf);
    }
    close(sv[0]);
    close(sv[1]);
    assert_no_leaks();
}

/* ===================================================================== */

#define SR_SIZE (2u << 20)

struct sr_case {
    int sv[2];
    uint8_t *out, *in;
    int send_rc, send_err;
    ssize_t peek_rc;
    int peek_err;
    char peeked[4];
    size_t got;
    int recv_rc, recv_err, eof;
};

static void *sr_sender(void *arg)
{
    struct sr_case *c = arg;
    c->send_rc =
        co_send_all(c->sv[0], c->out, SR_SIZE, 0, co_deadline(GUARD_MS));
    c->send_err = errno;
    close_fd(&c->sv[0]);
    return NULL;
}

static void *sr_receiver(void *arg)
{
    struct sr_case *c = arg;
    int64_t dl = co_deadline(GUARD_MS);
    /* MSG_PEEK waits for data but leaves it queued. */
    c->peek_rc = co_recv(c->sv[1], c->peeked, sizeof c->peeked, MSG_PEEK, dl);
    c->peek_err = errno;
    for (;;) {
        size_t room = SR_SIZE - c->got;
        char extra;
        ssize_t r = room ? co_recv(c->sv[1], c->in + c->got, room, 0, dl)
                         : co_recv(c->sv[1], &extra, 1, 0, dl);
        if (r < 0) {
            c->recv_rc = -1;
            c->recv_err = errno;
            return NULL;
        }
        if (r == 0) {
            c->eof = 1;
            return NULL;
        }
        if (!room) {
            c->recv_rc = -1;
            c->recv_err = EMSGSIZE;
            return NULL;
        }
        c->got += (size_t)r;
    }
}

static void *sr_main(void *arg)
{
    /* Receiver first, so it waits before anything was sent. */
    co_t *cos[2] = {co_spawn(sr_receiver, arg), co_spawn(sr_sender, arg)};
    if (!cos[0] || !cos[1])
        return (void *)"spawn failed";
    if (co_join_all(cos, 2, co_deadline(GUARD_MS)) != 0)
        return (void *)"join failed";
    return NULL;
}

Test(fdio, recv_and_send_all_move_every_byte_and_peek_leaves_it_queued)
{
    struct sr_case c = {0};
    c.out = malloc(SR_SIZE);
    c.in = malloc(SR_SIZE);
    cr_assert(c.out && c.in);
    fill(c.out, SR_SIZE, 5);
    make_pair(c.sv);
    void *res = (void *)"not run";
    cr_assert_eq(co_run(sr_main, &c, &res), 0);
    cr_assert_null(res, "%s", (char *)res);
    cr_assert_eq(c.send_rc, 0, "co_send_all: %s", strerror(c.send_err));
    cr_assert_gt(c.peek_rc, 0, "co_recv(MSG_PEEK) = %zd: %s", c.peek_rc,
                 strerror(c.peek_err));
    for (ssize_t i = 0; i < c.peek_rc; i++)
        cr_assert_eq((uint8_t)c.peeked[i], pattern((size_t)i, 5));
    cr_assert_eq(c.recv_rc, 0, "co_recv: %s", strerror(c.recv_err));
    cr_assert(c.eof, "co_recv never returned 0 after the peer closed");
    cr_assert_eq(c.got, SR_SIZE, "got %zu bytes", c.got);
    cr_assert_eq(first_bad(c.in, SR_SIZE, 5), SR_SIZE, "bytes differ at %zu",
                 first_bad(c.in, SR_SIZE, 5));
    close_fd(&c.sv[0]);
    close_fd(&c.sv[1]);
    free(c.out);
    free(c.in);
    assert_no_leaks();
}

/* ===================================================================== */

struct pipe_case {
    int fd;
    int rc, err;
};

static void *epipe_main(void *arg)
{
    struct pipe_case *c = arg;
    static const char msg[4096];
    /* The first send may land in the buffer; keep going until it fails. */
    c->rc = 0;
    for (int i = 0; i < 64 && c->rc == 0; i++) {
        c->rc = co_send_all(c->fd, msg, sizeof msg, 0, co_deadline(GUARD_MS));
        c->err = errno;
    }
    return NULL;
}

Test(fdio, send_all_to_a_closed_peer_fails_with_epipe_without_a_signal)
{
    int sv[2];
    make_pair(sv);
    close(sv[1]);
    struct pipe_case c = {.fd = sv[0]};
    cr_assert_eq(co_run(epipe_main, &c, NULL), 0);
    cr_assert_eq(c.rc, -1);
    cr_assert_eq(c.err, EPIPE, "errno %d (%s)", c.err, strerror(c.err));
    close(sv[0]);
    assert_no_leaks();
}

/* ===================================================================== */

struct badf_case {
    int fd;
    int write_rc, write_err;
    ssize_t read_rc;
    int read_err;
};

static void *badf_main(void *arg)
{
    struct badf_case *c = arg;
    c->write_rc = co_write_all(c->fd, "abc", 3, co_deadline(GUARD_MS));
    c->write_err = errno;
    char b[4];
    c->read_rc = co_read(c->fd, b, sizeof b, co_deadline(GUARD_MS));
    c->read_err = errno;
    return NULL;
}

Test(fdio, system_call_errors_keep_their_own_errno)
{
    /* /dev/null opened read-only: write() fails with EBADF, read() is EOF. */
    int fd = open("/dev/null", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    cr_assert_geq(fd, 0);
    struct badf_case c = {.fd = fd};
    cr_assert_eq(co_run(badf_main, &c, NULL), 0);
    cr_assert_eq(c.write_rc, -1);
    cr_assert_eq(c.write_err, EBADF, "errno %d (%s)", c.write_err,
                 strerror(c.write_err));
    cr_assert_eq(c.read_rc, 0, "co_read of /dev/null = %zd (%s)", c.read_rc,
                 strerror(c.read_err));
    close(fd);
    assert_no_leaks();
}

/* ===================================================================== */

struct tcp_case {
    int lfd;
    uint16_t port;
    /* server side */
    int acc_fd, acc_err;
    int acc_nonblock, acc_cloexec;
    int acc_family;
    socklen_t acc_len;
    int acc2_fd, acc2_err;
    char srv_got[16];
    ssize_t srv_read;
    /* client side */
    int cli_fd, conn_rc, conn_err;
    char cli_got[16];
    ssize_t cli_read;
    int cli2_fd, conn2_rc, conn2_err;
};

static void *tcp_server(void *arg)
{
    struct tcp_case *c = arg;
    int64_t dl = co_deadline(GUARD_MS);
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    c->acc_fd = co_accept(c->lfd, (struct sockaddr *)&ss, &len, dl);
    c->acc_err = errno;
    if (c->acc_fd < 0)
        return NULL;
    c->acc_nonblock = is_nonblocking(c->acc_fd);
    c->acc_cloexec = is_cloexec(c->acc_fd);
    c->acc_family = ss.ss_family;
    c->acc_len = len;
    c->srv_read = read_full(c->acc_fd, c->srv_got, 5, dl);
    if (c->srv_read == 5)
        co_write_all(c->acc_fd, "world", 5, dl);
    /* A second connection, accepted without asking for the address. */
    c->acc2_fd = co_accept(c->lfd, NULL, NULL, dl);
    c->acc2_err = errno;
    return NULL;
}

static void *tcp_main(void *arg)
{
    struct tcp_case *c = arg;
    co_t *srv = co_spawn(tcp_server, c);
    if (!srv)
        return (void *)"spawn failed";
    int64_t dl = co_deadline(GUARD_MS);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons(c->port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    c->conn_rc = co_connect(c->cli_fd, (struct sockaddr *)&sa, sizeof sa, dl);
    c->conn_err = errno;
    if (c->conn_rc == 0) {
        if (co_write_all(c->cli_fd, "hello", 5, dl) == 0)
            c->cli_read = read_full(c->cli_fd, c->cli_got, 5, dl);
    }
    c->conn2_rc = co_connect(c->cli2_fd, (struct sockaddr *)&sa, sizeof sa, dl);
    c->conn2_err = errno;
    if (co_join(srv, NULL, dl) != 0)
        return (void *)"join failed";
    return NULL;
}

Test(fdio, accept_and_connect_work_over_loopback_tcp)
{
    struct tcp_case c = {.acc_fd = -1, .acc2_fd = -1};
    c.lfd = make_listener(&c.port);
    c.cli_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    c.cli2_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    cr_assert(c.cli_fd >= 0 && c.cli2_fd >= 0);
    void *res = (void *)"not run";
    cr_assert_eq(co_run(tcp_main, &c, &res), 0);
    cr_assert_null(res, "%s", (char *)res);
    cr_assert_eq(c.conn_rc, 0, "co_connect: %s", strerror(c.conn_err));
    cr_assert_geq(c.acc_fd, 0, "co_accept: %s", strerror(c.acc_err));
    cr_assert(c.acc_nonblock, "accepted fd is not O_NONBLOCK");
    cr_assert(c.acc_cloexec, "accepted fd is not close-on-exec");
    cr_assert_eq(c.acc_family, AF_INET);
    cr_assert_eq(c.acc_len, sizeof(struct sockaddr_in));
    cr_assert_eq(c.srv_read, 5);
    cr_assert_arr_eq(c.srv_got, "hello", 5);
    cr_assert_eq(c.cli_read, 5);
    cr_assert_arr_eq(c.cli_got, "world", 5);
    cr_assert_eq(c.conn2_rc, 0, "second co_connect: %s", strerror(c.conn2_err));
    cr_assert_geq(c.acc2_fd, 0, "co_accept(NULL, NULL): %s",
                  strerror(c.acc2_err));
    close_fd(&c.acc_fd);
    close_fd(&c.acc2_fd);
    close_fd(&c.cli_fd);
    close_fd(&c.cli2_fd);
    close_fd(&c.lfd);
    assert_no_leaks();
}

/* ===================================================================== */

struct refused_case {
    int fd;
    uint16_t port;
    int rc, err;
    int dial_rc, dial_err;
};

static void *refused_main(void *arg)
{
    struct refused_case *c = arg;
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons(c->port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    c->rc = co_connect(c->fd, (struct sockaddr *)&sa, sizeof sa,
                       co_deadline(GUARD_MS));
    c->err = errno;
    char port[8];
    snprintf(port, sizeof port, "%u", c->port);
    c->dial_rc = co_dial("127.0.0.1", port, co_deadline(GUARD_MS));
    c->dial_err = errno;
    if (c->dial_rc >= 0)
        close(c->dial_rc);
    return NULL;
}

Test(fdio, connect_to_a_port_nobody_listens_on_fails_with_econnrefused)
{
    /* Bound but not listening: the port is ours and refuses connections. */
    int holder = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(holder, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t len = sizeof sa;
    cr_assert_eq(getsockname(holder, (struct sockaddr *)&sa, &len), 0);
    struct refused_case c = {.port = ntohs(sa.sin_port)};
    c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    cr_assert_geq(c.fd, 0);
    cr_assert_eq(co_run(refused_main, &c, NULL), 0);
    cr_assert_eq(c.rc, -1);
    cr_assert_eq(c.err, ECONNREFUSED, "co_connect errno %d (%s)", c.err,
                 strerror(c.err));
    cr_assert_eq(c.dial_rc, -1);
    cr_assert_eq(c.dial_err, ECONNREFUSED, "co_dial errno %d (%s)", c.dial_err,
                 strerror(c.dial_err));
    close(c.fd);
    close(holder);
    assert_no_leaks();
}

/* ===================================================================== */

/* A sendfile that never fills the socket still gives the hub a poll after
 * each chunk: a coroutine whose fd was ready all along runs before the
 * file is all sent. 64 KiB in 4 KiB chunks fit in the socket buffer, so
 * without the chunks one call would send it all without a wait. */
#define SFC_SIZE (64u << 10)
#define SFC_CHUNK 4096u

struct sfc_case {
    int sv[2], pipe[2];
    int file_fd;
    off_t off; /* the sender's, advanced as it goes */
    ssize_t sent;
    off_t seen; /* the sender's offset when the watcher ran */
    int wait_rc;
};

static void *sfc_watcher(void *arg)
{
    struct sfc_case *c = arg;
    c->wait_rc = co_wait_fd(c->pipe[0], CO_READABLE, co_deadline(GUARD_MS));
    c->seen = c->off;
    return NULL;
}

static void *sfc_sender(void *arg)
{
    struct sfc_case *c = arg;
    c->sent = co_sendfile(c->sv[0], c->file_fd, &c->off, SFC_SIZE,
                          co_deadline(GUARD_MS));
    return NULL;
}

static void *sfc_main(void *arg)
{
    co_t *cos[2] = {co_spawn(sfc_watcher, arg), co_spawn(sfc_sender, arg)};
    if (!cos[0] || !cos[1])
        return (void *)"spawn failed";
    if (co_join_all(cos, 2, co_deadline(GUARD_MS)) != 0)
        return (void *)"join failed";
    return NULL;
}

Test(fdio, sendfile_lets_the_hub_poll_between_chunks)
{
    char path[] = "/tmp/coserve-sendfile-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0, "mkstemp: %s", strerror(errno));
    unlink(path);
    cr_assert_eq(ftruncate(fd, SFC_SIZE), 0);
    cr_assert_eq(fdio__set_sendfile_chunk(SFC_CHUNK), 0);
    cr_assert_eq(fdio__set_sendfile_chunk(1), -1, "a 1-byte chunk accepted");
    struct sfc_case c = {.file_fd = fd, .seen = -1};
    make_pair(c.sv);
    int buf = 1 << 20;
    setsockopt(c.sv[0], SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    cr_assert_eq(pipe2(c.pipe, O_NONBLOCK | O_CLOEXEC), 0);
    cr_assert_eq(write(c.pipe[1], "x", 1), 1); /* readable from the start */

    void *res = (void *)"not run";
    cr_assert_eq(co_run(sfc_main, &c, &res), 0);
    cr_assert_null(res, "%s", (char *)res);
    cr_assert_eq(c.sent, (ssize_t)SFC_SIZE, "co_sendfile = %zd", c.sent);
    cr_assert_eq(c.wait_rc, 0);
    cr_assert(c.seen >= (off_t)SFC_CHUNK && c.seen < (off_t)SFC_SIZE,
              "the ready coroutine ran when %lld of %u bytes were sent",
              (long long)c.seen, SFC_SIZE);
    close_fd(&c.sv[0]);
    close_fd(&c.sv[1]);
    close(c.pipe[0]);
    close(c.pipe[1]);
    close(fd);
    assert_no_leaks();
}

/* ===================================================================== */

#define SF_SIZE ((3u << 20) + 777u)
#define SF_START 1000u
#define SF_TAIL 10u

struct sf_case {
    int sv[2];
    int file_fd;
    off_t off1, off2;
    ssize_t sent1, sent2;
    int err1, err2;
    struct drain d;
};

static void *sf_sender(void *arg)
{
    struct sf_case *c = arg;
    int64_t dl = co_deadline(GUARD_MS);
    c->off1 = SF_START;
    c->sent1 =
        co_sendfile(c->sv[0], c->file_fd, &c->off1, SF_SIZE - SF_START, dl);
    c->err1 = errno;
    /* Asking past the end: only what is left is sent. */
    c->off2 = SF_SIZE - SF_TAIL;
    c->sent2 = co_sendfile(c->sv[0], c->file_fd, &c->off2, 100, dl);
    c->err2 = errno;
    close_fd(&c->sv[0]);
    return NULL;
}

static void *sf_main(void *arg)
{
    struct sf_case *c = arg;
    co_t *cos[2] = {co_spawn(drain_co, &c->d), co_spawn(sf_sender, c)};
    if (!cos[0] || !cos[1])
        return (void *)"spawn failed";
    if (co_join_all(cos, 2, co_deadline(GUARD_MS)) != 0)
        return (void *)"join failed";
    return NULL;
}

Test(fdio, sendfile_sends_a_file_range_and_advances_the_offset)
{
    char path[] = "/tmp/coserve-sendfile-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0, "mkstemp: %s", strerror(errno));
    unlink(path);
    uint8_t *content = malloc(SF_SIZE);
    cr_assert_not_null(content);
    fill(content, SF_SIZE, 9);
    for (size_t done = 0; done < SF_SIZE;) {
        ssize_t w = write(fd, content + done, SF_SIZE - done);
        cr_assert_gt(w, 0);
        done += (size_t)w;
    }
    lseek(fd, 0, SEEK_SET);

    struct sf_case c = {.file_fd = fd};
    make_pair(c.sv);
    size_t expect = SF_SIZE - SF_START + SF_TAIL;
    c.d = (struct drain){.fd = c.sv[1], .buf = malloc(expect), .cap = expect};
    cr_assert_not_null(c.d.buf);

    void *res = (void *)"not run";
    cr_assert_eq(co_run(sf_main, &c, &res), 0);
    cr_assert_null(res, "%s", (char *)res);
    cr_assert_eq(c.sent1, (ssize_t)(SF_SIZE - SF_START),
                 "co_sendfile = %zd (%s)", c.sent1, strerror(c.err1));
    cr_assert_eq(c.off1, (off_t)SF_SIZE, "offset not advanced: %lld",
                 (long long)c.off1);
    cr_assert_eq(c.sent2, (ssize_t)SF_TAIL, "co_sendfile past end = %zd (%s)",
                 c.sent2, strerror(c.err2));
    cr_assert_eq(c.off2, (off_t)SF_SIZE);
    cr_assert_eq(lseek(fd, 0, SEEK_CUR), 0, "the file's own offset moved");
    cr_assert_eq(c.d.rc, 0, "receiver: %s", strerror(c.d.err));
    cr_assert(c.d.eof);
    cr_assert_eq(c.d.got, expect, "received %zu of %zu", c.d.got, expect);
    cr_assert_eq(memcmp(c.d.buf, content + SF_START, SF_SIZE - SF_START), 0,
                 "range differs");
    cr_assert_eq(memcmp(c.d.buf + SF_SIZE - SF_START,
                        content + SF_SIZE - SF_TAIL, SF_TAIL),
                 0, "tail differs");
    close_fd(&c.sv[1]);
    close(fd);
    free(content);
    free(c.d.buf);
    assert_no_leaks();
}

/* ===================================================================== */

#define DIAL_N 2

struct dial_case {
    int lfd;
    char port[8];
    const char *hosts[DIAL_N];
    int fd[DIAL_N], err[DIAL_N];
    int nonblock[DIAL_N], cloexec[DIAL_N], nodelay[DIAL_N];
    ssize_t echoed[DIAL_N];
    char got[DIAL_N][16];
    int accepted;
};

static void *dial_server(void *arg)
{
    struct dial_case *c = arg;
    int64_t dl = co_deadline(GUARD_MS);
    for (int i = 0; i < DIAL_N; i++) {
        int fd = co_accept(c->lfd, NULL, NULL, dl);
        if (fd < 0)
            return NULL;
        c->accepted++;
        char buf[16];
        ssize_t n = co_read(fd, buf, sizeof buf, dl);
        if (n > 0)
            co_write_all(fd, buf, (size_t)n, dl);
        close(fd);
    }
    return NULL;
}

static void *dial_main(void *arg)
{
    struct dial_case *c = arg;
    co_t *srv = co_spawn(dial_server, c);
    if (!srv)
        return (void *)"spawn failed";
    int64_t dl = co_deadline(GUARD_MS);
    for (int i = 0; i < DIAL_N; i++) {
        int fd = c->fd[i] = co_dial(c->hosts[i], c->port, dl);
        c->err[i] = errno;
        if (fd < 0)
            continue;
        c->nonblock[i] = is_nonblocking(fd);
        c->cloexec[i] = is_cloexec(fd);
        int v = 0;
        socklen_t len = sizeof v;
        if (getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &len) == 0)
            c->nodelay[i] = v != 0;
        char msg[16];
        int n = snprintf(msg, sizeof msg, "dial-%d", i);
        if (co_write_all(fd, msg, (size_t)n, dl) == 0)
            c->echoed[i] = read_full(fd, c->got[i], (size_t)n, dl);
    }
    if (co_join(srv, NULL, dl) != 0)
        return (void *)"join failed";
    return NULL;
}

Test(fdio, dial_connects_to_a_local_listener_by_address_and_by_name)
{
    uint16_t port;
    struct dial_case c = {.hosts = {"127.0.0.1", "localhost"}};
    c.lfd = make_listener(&port);
    snprintf(c.port, sizeof c.port, "%u", port);
    void *res = (void *)"not run";
    cr_assert_eq(co_run(dial_main, &c, &res), 0);
    cr_assert_null(res, "%s", (char *)res);
    for (int i = 0; i < DIAL_N; i++) {
        cr_assert_geq(c.fd[i], 0, "co_dial(%s): %s", c.hosts[i],
                      strerror(c.err[i]));
        cr_assert(c.nonblock[i], "co_dial(%s): fd not O_NONBLOCK", c.hosts[i]);
        cr_assert(c.cloexec[i], "co_dial(%s): fd not close-on-exec",
                  c.hosts[i]);
        cr_assert(c.nodelay[i], "co_dial(%s): no TCP_NODELAY", c.hosts[i]);
        char want[16];
        int n = snprintf(want, sizeof want, "dial-%d", i);
        cr_assert_eq(c.echoed[i], n, "co_dial(%s): echo %zd bytes", c.hosts[i],
                     c.echoed[i]);
        cr_assert_arr_eq(c.got[i], want, (size_t)n);
        close(c.fd[i]);
    }
    cr_assert_eq(c.accepted, DIAL_N);
    close(c.lfd);
    assert_no_leaks();
}

/* ===================================================================== */

struct dial_cancel_case {
    co_t *child;
    int rc, err;
};

static void *dial_cancelled_child(void *arg)
{
    struct dial_cancel_case *c = arg;
    c->rc = co_dial("127.0.0.1", "9", co_deadline(GUARD_MS));
    c->err = errno;
    if (c->rc >= 0)
        close(c->rc);
    return NULL;
}

static void *dial_cancel_main(void *arg)
{
    struct dial_cancel_case *c = arg;
    c->child = co_spawn(dial_cancelled_child, c);
    if (!c->child)
        return (void *)"spawn failed";
    co_cancel(c->child); /* before it ever runs */
    if (co_join(c->child, NULL, co_deadline(GUARD_MS)) != 0)
        return (void *)"join failed";
    co_sleep(co_deadline(20)); /* let anything deferred settle */
    return NULL;
}

Test(fdio,
     dial_from_a_cancelled_coroutine_fails_with_ecanceled_and_leaks_nothing)
{
    struct dial_cancel_case c = {0};
    void *res = (void *)"not run";
    cr_assert_eq(co_run(dial_cancel_main, &c, &res), 0);
    cr_assert_null(res, "%s", (char *)res);
    cr_assert_eq(c.rc, -1);
    cr_assert_eq(c.err, ECANCELED, "errno %d (%s)", c.err, strerror(c.err));
    assert_no_leaks();
}

/* ===================================================================== */

/* Closing an fd and getting its number back for a new socket: the new one
 * must be watched afresh (libev caches per-fd state). */
#define REUSE_ROUNDS 200

struct reuse_case {
    int fds[2];
    int round_ok;
    int bad_round, bad_err;
    int same_number;
};

static void *reuse_writer(void *arg)
{
    struct reuse_case *c = arg;
    co_yield_now(); /* the reader is parked by now */
    co_write_all(c->fds[1], "r", 1, co_deadline(GUARD_MS));
    return NULL;
}

static void *reuse_main(void *arg)
{
    struct reuse_case *c = arg;
    int first = -1;
    c->bad_round = -1;
    for (int r = 0; r < REUSE_ROUNDS; r++) {
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                       c->fds) != 0)
            return (void *)"socketpair failed";
        if (r == 0)
            first = c->fds[0];
        else if (c->fds[0] == first)
            c->same_number++;
        co_t *w = co_spawn(reuse_writer, c);
        if (!w)
            return (void *)"spawn failed";
        char b;
        /* Alternate a plain read and an explicit wait. */
        int ok;
        if (r % 2)
            ok = co_read(c->fds[0], &b, 1, co_deadline(GUARD_MS)) == 1;
        else
            ok = co_wait_fd(c->fds[0], CO_READABLE, co_deadline(GUARD_MS)) ==
                     0 &&
                 read(c->fds[0], &b, 1) == 1;
        if (!ok && c->bad_round < 0) {
            c->bad_round = r;
            c->bad_err = errno;
        }
        c->round_ok += ok;
        co_join(w, NULL, co_deadline(GUARD_MS));
        close(c->fds[0]);
        close(c->fds[1]);
    }
    return NULL;
}

Test(fdio, a_reused_fd_number_is_watched_afresh)
{
    struct reuse_case c = {0};
    void *res = (void *)"not run";
    cr_assert_eq(co_run(reuse_main, &c, &res), 0);
    cr_assert_null(res, "%s", (char *)res);
    cr_assert_eq(c.round_ok, REUSE_ROUNDS, "round %d failed: %s", c.bad_round,
                 strerror(c.bad_err));
    cr_log_info("fd number reused in %d of %d rounds", c.same_number,
                REUSE_ROUNDS - 1);
    assert_no_leaks();
}

/* The same, within one loop turn: woken on an fd, a coroutine closes it
 * and waits on a new fd that got its number, before libev has seen its
 * watcher stop. A wait that skips re-registering an fd it already
 * watches (fdio__wait, to save an epoll_ctl) must still see that this is
 * another file, or the wait never ends. */
struct same_turn_case {
    int old_fd, new_fd;
    ssize_t got;
    int err;
};

static void *same_turn_writer(void *arg)
{
    int fd = *(int *)arg;
    co_sleep(co_deadline(20)); /* the reader is parked by now */
    co_write_all(fd, "t", 1, co_deadline(GUARD_MS));
    return NULL;
}

static void *same_turn_main(void *arg)
{
    struct same_turn_case *c = arg;
    int a[2], b[2];
    char ch;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, a))
        return (void *)"socketpair failed";
    co_t *w = co_spawn(same_turn_writer, &a[1]);
    if (!w || co_read(a[0], &ch, 1, co_deadline(GUARD_MS)) != 1)
        return (void *)"first read failed";
    co_join(w, NULL, co_deadline(GUARD_MS)); /* it returned: no yield since */
    /* woken by the fd: from here to the next wait, no switch */
    c->old_fd = a[0];
    close(a[0]);
    close(a[1]);
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, b))
        return (void *)"second socketpair failed";
    c->new_fd = b[0];
    w = co_spawn(same_turn_writer, &b[1]);
    if (!w)
        return (void *)"spawn failed";
    c->got = co_read(b[0], &ch, 1, co_deadline(GUARD_MS));
    c->err = errno;
    co_join(w, NULL, co_deadline(GUARD_MS));
    close(b[0]);
    close(b[1]);
    return NULL;
}

Test(fdio, a_reused_fd_number_is_watched_afresh_within_one_loop_turn)
{
    struct same_turn_case c = {0};
    void *res = (void *)"not run";
    /* the hooks on, as in the server: without them (the library's
     * default) every wait registers its fd again anyway */
    hook__enabled = 1;
    int rc = co_run(same_turn_main, &c, &res);
    hook__enabled = 0;
    cr_assert_eq(rc, 0);
    cr_assert_null(res, "%s", (char *)res);
    cr_assert_eq(c.new_fd, c.old_fd, "the number was not reused (%d, %d)",
                 c.old_fd, c.new_fd);
    cr_assert_eq(c.got, 1, "the wait on the new fd failed: %s",
                 strerror(c.err));
    assert_no_leaks();
}

/* ===================================================================== */

/*
 * The big one: every socketpair has a pinger on one end and a ponger on the
 * other, all parked at once, PP_ROUNDS round trips each. 10,000 pairs
 * (20,000 coroutines, 20,000 fds) when RLIMIT_NOFILE's hard limit allows it;
 * otherwise as many pairs as fit, and at least 5,000 (10,000 coroutines at
 * once over 10,000 fds) or the test is skipped. Five round trips each keep
 * the suite near its time budget under AddressSanitizer; the number of
 * coroutines at once is what this test is about.
 */
#define PP_ROUNDS 5
#define PP_FULL 10000
#define PP_RESERVE 64 /* fds for stdio, Criterion, the hub's loop, ... */

struct pp_msg {
    uint64_t pair, round, check;
};

struct pp_state {
    int (*sv)[2];
    size_t pairs;
    size_t coros;
    size_t started;
    int go;
    size_t live, peak;
    size_t ok_rounds;    /* round trips whose reply was right */
    size_t done_pingers; /* finished all rounds */
    size_t done_pongers;
    size_t bad; /* wrong bytes, short reads, errors */
    int first_err;
};

static struct pp_state pp;

static void pp_enter(void)
{
    pp.started++;
    pp.live++;
    if (pp.live > pp.peak)
        pp.peak = pp.live;
    while (!pp.go)
        if (co_yield_now() != 0)
            break;
}

static void pp_fail(void)
{
    if (!pp.first_err)
        pp.first_err = errno ? errno : -1;
    pp.bad++;
}

static void *pp_pinger(void *arg)
{
    size_t i = (size_t)(uintptr_t)arg;
    int fd = pp.sv[i][0];
    int64_t dl = co_deadline(60000);
    pp_enter();
    for (uint64_t r = 0; r < PP_ROUNDS; r++) {
        struct pp_msg m = {i, r, i * 2654435761u ^ r}, back;
        if (co_write_all(fd, &m, sizeof m, dl) != 0) {
            pp_fail();
            goto out;
        }
        if (read_full(fd, &back, sizeof back, dl) != (ssize_t)sizeof back) {
            pp_fail();
            goto out;
        }
        if (back.pair != i || back.round != r + 1 || back.check != ~m.check) {
            errno = EPROTO;
            pp_fail();
            goto out;
        }
        pp.ok_rounds++;
    }
    pp.done_pingers++;
out:
    pp.live--;
    return NULL;
}

static void *pp_ponger(void *arg)
{
    size_t i = (size_t)(uintptr_t)arg;
    int fd = pp.sv[i][1];
    int64_t dl = co_deadline(60000);
    pp_enter();
    for (int r = 0; r < PP_ROUNDS; r++) {
        struct pp_msg m;
        if (read_full(fd, &m, sizeof m, dl) != (ssize_t)sizeof m) {
            pp_fail();
            goto out;
        }
        m.round++;
        m.check = ~m.check;
        if (co_write_all(fd, &m, sizeof m, dl) != 0) {
            pp_fail();
            goto out;
        }
    }
    pp.done_pongers++;
out:
    pp.live--;
    return NULL;
}

static void *pp_main(void *arg)
{
    (void)arg;
    co_t **cos = calloc(pp.coros, sizeof *cos);
    if (!cos)
        return (void *)"calloc failed";
    for (size_t i = 0; i < pp.pairs; i++) {
        cos[2 * i] = co_spawn(pp_pinger, (void *)(uintptr_t)i);
        cos[2 * i + 1] = co_spawn(pp_ponger, (void *)(uintptr_t)i);
        if (!cos[2 * i] || !cos[2 * i + 1]) {
            free(cos);
            return (void *)"co_spawn failed";
        }
    }
    /* Everyone starts and parks before anyone talks. */
    while (pp.started < pp.coros)
        if (co_yield_now() != 0)
            break;
    pp.go = 1;
    int rc = co_join_all(cos, pp.coros, co_deadline(60000));
    free(cos);
    return rc == 0 ? NULL : (void *)"co_join_all failed";
}

static size_t open_fds(void)
{
    size_t n = 0;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    for (int fd = 0; fd < 1024 && (rlim_t)fd < rl.rlim_cur; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            n++;
    return n;
}

Test(fdio, ten_thousand_coroutines_ping_pong_over_their_own_socketpairs)
{
    struct rlimit rl;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rl.rlim_cur = rl.rlim_max;
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0, "setrlimit: %s",
                 strerror(errno));
    size_t room =
        rl.rlim_cur == RLIM_INFINITY ? (size_t)1 << 30 : (size_t)rl.rlim_cur;
    size_t need_extra = open_fds() + PP_RESERVE;
    size_t pairs = room > need_extra ? (room - need_extra) / 2 : 0;
    if (pairs > PP_FULL)
        pairs = PP_FULL;
    if (pairs < PP_FULL / 2)
        cr_skip_test("RLIMIT_NOFILE hard limit %zu is too low for %u fds", room,
                     PP_FULL + PP_RESERVE);
    cr_log_info("%zu socketpairs, %zu coroutines (fd limit %zu)", pairs,
                2 * pairs, room);

    memset(&pp, 0, sizeof pp);
    pp.pairs = pairs;
    pp.coros = 2 * pairs;
    pp.sv = calloc(pairs, sizeof *pp.sv);
    cr_assert_not_null(pp.sv);
    for (size_t i = 0; i < pairs; i++)
        make_pair(pp.sv[i]);

    void *res = (void *)"not run";
    int rc = co_run(pp_main, NULL, &res);
    cr_assert_eq(rc, 0, "co_run: %s", strerror(errno));
    cr_assert_null(res, "%s", (char *)res);
    cr_assert_eq(pp.bad, 0, "%zu coroutines failed, first errno %d (%s)",
                 pp.bad, pp.first_err, strerror(pp.first_err));
    cr_assert_eq(pp.peak, pp.coros, "only %zu of %zu were alive at once",
                 pp.peak, pp.coros);
    cr_assert_eq(pp.done_pingers, pairs);
    cr_assert_eq(pp.done_pongers, pairs);
    cr_assert_eq(pp.ok_rounds, pairs * PP_ROUNDS);
    cr_assert_eq(pp.live, 0);
    for (size_t i = 0; i < pairs; i++) {
        close(pp.sv[i][0]);
        close(pp.sv[i][1]);
    }
    free(pp.sv);
    assert_no_leaks();
}
