/*
 * test_hook.c - monkey patching inside one hub: plain blocking calls made
 * by coroutines park them instead of the thread (two coroutines of one hub
 * talk over a blocking socketpair: without the hooks that deadlocks), and
 * fds keep the semantics their user gave them (O_NONBLOCK, SO_RCVTIMEO),
 * also for threads that are not coroutines.
 *
 * This binary links the runtime statically, so its own read/recv/poll...
 * calls bind to the hooks; hook__enabled turns them on as the server does.
 * Coroutines only record; assertions run after co_run() returns. No test
 * asserts on timing.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/hook.h"
#include "util.h"

static void hooks_on(void)
{
    hook__enabled = 1;
}

TestSuite(hook, .init = hooks_on);

static void pair(int sv[2], int type)
{
    cr_assert_eq(socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv), 0,
                 "socketpair: %s", strerror(errno));
}

/* ---- two coroutines over a blocking socketpair ------------------------ */

struct chat {
    int sv[2];
    ssize_t got;
    char buf[16];
    int err;
    int order[4], n; /* who ran when */
};

static void *chat_reader(void *p)
{
    struct chat *c = p;
    c->order[c->n++] = 1;                              /* reader parks first */
    c->got = recv(c->sv[0], c->buf, sizeof c->buf, 0); /* blocking fd */
    c->err = errno;
    c->order[c->n++] = 3;
    return NULL;
}

static void *chat_writer(void *p)
{
    struct chat *c = p;
    c->order[c->n++] = 2; /* ran while the reader was blocked in recv */
    send(c->sv[1], "ping", 4, 0);
    return NULL;
}

static void *chat_main(void *p)
{
    co_t *r = co_spawn(chat_reader, p), *w = co_spawn(chat_writer, p);
    co_join(r, NULL, co_deadline(LONG_MS));
    co_join(w, NULL, co_deadline(LONG_MS));
    return NULL;
}

Test(hook, blocking_recv_parks_only_its_coroutine)
{
    struct chat c = {0};
    pair(c.sv, SOCK_STREAM);
    run(chat_main, &c);
    cr_assert_eq(c.got, 4, "recv: %zd (%s)", c.got, strerror(c.err));
    cr_assert_eq(memcmp(c.buf, "ping", 4), 0);
    cr_assert_eq(c.n, 3);
    cr_assert(c.order[0] == 1 && c.order[1] == 2 && c.order[2] == 3);
    /* the file itself was never made non-blocking behind the user's back */
    cr_assert_eq(fcntl(c.sv[0], F_GETFL) & O_NONBLOCK, 0);
    close(c.sv[0]);
    close(c.sv[1]);
}

/* ---- the user's O_NONBLOCK and SO_RCVTIMEO ---------------------------- */

struct sem_check {
    int fd;
    ssize_t r1, r2;
    int e1, e2;
};

static void *nonblock_main(void *p)
{
    struct sem_check *s = p;
    int fl = fcntl(s->fd, F_GETFL);
    fcntl(s->fd, F_SETFL, fl | O_NONBLOCK);
    char b;
    s->r1 = read(s->fd, &b, 1);
    s->e1 = errno;
    int on = 0;
    fcntl(s->fd, F_SETFL, fl);
    ioctl(s->fd, FIONBIO, &(int){1});
    s->r2 = recv(s->fd, &b, 1, 0);
    s->e2 = errno;
    ioctl(s->fd, FIONBIO, &on);
    return NULL;
}

Test(hook, a_socket_the_user_made_non_blocking_still_says_eagain)
{
    int sv[2];
    pair(sv, SOCK_STREAM);
    struct sem_check s = {.fd = sv[0]};
    run(nonblock_main, &s);
    cr_assert_eq(s.r1, -1);
    cr_assert_eq(s.e1, EAGAIN, "fcntl O_NONBLOCK: %s", strerror(s.e1));
    cr_assert_eq(s.r2, -1);
    cr_assert_eq(s.e2, EAGAIN, "ioctl FIONBIO: %s", strerror(s.e2));
    close(sv[0]);
    close(sv[1]);
}

static void *rcvtimeo_main(void *p)
{
    struct sem_check *s = p;
    struct timeval tv = {0, 50 * 1000};
    setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char b;
    s->r1 = recv(s->fd, &b, 1, 0);
    s->e1 = errno;
    return NULL;
}

Test(hook, so_rcvtimeo_ends_a_hooked_recv_with_eagain)
{
    int sv[2];
    pair(sv, SOCK_STREAM);
    struct sem_check s = {.fd = sv[0]};
    run(rcvtimeo_main, &s);
    cr_assert_eq(s.r1, -1);
    cr_assert_eq(s.e1, EAGAIN, "got %s", strerror(s.e1));
    close(sv[0]);
    close(sv[1]);
}

/* ---- close wakes a waiter; cancel interrupts a hooked call ------------- */

struct closer {
    int fd;
    ssize_t r;
    int err;
};

static void *closer_wait(void *p)
{
    struct closer *c = p;
    char b;
    c->r = read(c->fd, &b, 1);
    c->err = errno;
    return NULL;
}

static void *closer_main(void *p)
{
    struct closer *c = p;
    co_t *w = co_spawn(closer_wait, c);
    co_yield_now(); /* w is now parked in read */
    close(c->fd);
    co_join(w, NULL, co_deadline(LONG_MS));
    return NULL;
}

Test(hook, close_wakes_a_coroutine_blocked_on_the_fd_with_ebadf)
{
    int sv[2];
    pair(sv, SOCK_STREAM);
    struct closer c = {.fd = sv[0]};
    run(closer_main, &c);
    cr_assert_eq(c.r, -1);
    cr_assert_eq(c.err, EBADF, "got %s", strerror(c.err));
    close(sv[1]);
}

struct sleeper {
    int rc, err;
    unsigned left;
    int gai, gai_errno;
};

static void *sleeper_body(void *p)
{
    struct sleeper *s = p;
    s->rc = usleep(LONG_MS * 1000);
    s->err = errno;
    s->left = sleep(100); /* cancelled already: returns at once */
    struct addrinfo *ai = NULL;
    s->gai = getaddrinfo("localhost", "80", NULL, &ai);
    s->gai_errno = errno;
    if (s->gai == 0)
        freeaddrinfo(ai);
    return NULL;
}

static void *sleeper_main(void *p)
{
    co_t *w = co_spawn(sleeper_body, p);
    co_yield_now();
    co_cancel(w);
    co_join(w, NULL, co_deadline(LONG_MS));
    return NULL;
}

Test(hook, cancel_interrupts_hooked_calls_with_ecanceled)
{
    struct sleeper s = {0};
    run(sleeper_main, &s);
    cr_assert_eq(s.rc, -1);
    cr_assert_eq(s.err, ECANCELED, "usleep: %s", strerror(s.err));
    cr_assert_gt(s.left, 0u);
    cr_assert_eq(s.gai, EAI_SYSTEM);
    cr_assert_eq(s.gai_errno, ECANCELED);
}

/* ---- poll, select, sleeps --------------------------------------------- */

struct poller {
    int fds[2];
    int prc, srcv, src0, nrc, nerr, crc;
    short revents;
    struct timeval tv;
};

static void *poller_writer(void *p)
{
    struct poller *s = p;
    usleep(1000);
    write(s->fds[1], "x", 1);
    return NULL;
}

static void *poller_main(void *p)
{
    struct poller *s = p;
    co_t *w = co_spawn(poller_writer, s);
    struct pollfd pfd = {.fd = s->fds[0], .events = POLLIN};
    s->prc = poll(&pfd, 1, LONG_MS);
    s->revents = pfd.revents;
    co_join(w, NULL, co_deadline(LONG_MS));
    fd_set r;
    FD_ZERO(&r);
    FD_SET(s->fds[0], &r);
    s->srcv = select(s->fds[0] + 1, &r, NULL, NULL,
                     &(struct timeval){LONG_MS / 1000, 0});
    char b;
    read(s->fds[0], &b, 1);
    FD_ZERO(&r);
    FD_SET(s->fds[0], &r);
    s->tv = (struct timeval){0, 2000};
    s->src0 = select(s->fds[0] + 1, &r, NULL, NULL, &s->tv);
    s->nrc = nanosleep(&(struct timespec){0, 2000000000L}, NULL);
    s->nerr = errno;
    struct timespec abs;
    clock_gettime(CLOCK_MONOTONIC, &abs);
    abs.tv_nsec += 1000000;
    if (abs.tv_nsec >= 1000000000L)
        abs.tv_sec++, abs.tv_nsec -= 1000000000L;
    s->crc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &abs, NULL);
    return NULL;
}

Test(hook, poll_select_and_sleeps_keep_their_results)
{
    struct poller s = {0};
    cr_assert_eq(pipe(s.fds), 0);
    run(poller_main, &s);
    cr_assert_eq(s.prc, 1);
    cr_assert(s.revents & POLLIN);
    cr_assert_eq(s.srcv, 1, "select on a readable pipe");
    cr_assert_eq(s.src0, 0, "select timing out");
    cr_assert(s.tv.tv_sec == 0 && s.tv.tv_usec == 0);
    cr_assert_eq(s.nrc, -1);
    cr_assert_eq(s.nerr, EINVAL, "nanosleep tv_nsec=2e9: %s", strerror(s.nerr));
    cr_assert_eq(s.crc, 0);
    close(s.fds[0]);
    close(s.fds[1]);
}

/* ---- a pipe used by a coroutine, then by a plain thread ---------------- */

struct shared_pipe {
    int fds[2];
    ssize_t co_r, th_r;
    int th_err;
    char th_buf[8];
    int flags_seen;
};

static void *pipe_thread(void *p)
{
    struct shared_pipe *s = p;
    s->th_r = read(s->fds[0], s->th_buf, sizeof s->th_buf);
    s->th_err = errno;
    return NULL;
}

static void *pipe_feeder(void *p)
{
    struct shared_pipe *s = p;
    write(s->fds[1], "a", 1);
    return NULL;
}

static void *pipe_main(void *p)
{
    struct shared_pipe *s = p;
    co_t *f = co_spawn(pipe_feeder, s);
    char b;
    s->co_r = read(s->fds[0], &b, 1); /* parks: the hooks force O_NONBLOCK */
    co_join(f, NULL, co_deadline(LONG_MS));
    s->flags_seen = fcntl(s->fds[0], F_GETFL);
    return NULL;
}

Test(hook, a_plain_thread_still_blocks_on_a_pipe_a_coroutine_used)
{
    struct shared_pipe s = {0};
    cr_assert_eq(pipe(s.fds), 0);
    run(pipe_main, &s);
    cr_assert_eq(s.co_r, 1);
    cr_assert_eq(s.flags_seen & O_NONBLOCK, 0, "the user's view: blocking");
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, pipe_thread, &s), 0);
    /* the thread's read must wait for this write, not fail with EAGAIN */
    usleep(20000);
    cr_assert_eq(write(s.fds[1], "late", 4), 4);
    pthread_join(t, NULL);
    cr_assert_eq(s.th_r, 4, "thread read: %zd (%s)", s.th_r,
                 strerror(s.th_err));
    cr_assert_eq(memcmp(s.th_buf, "late", 4), 0);
    close(s.fds[0]);
    close(s.fds[1]);
}

/* ---- accept + connect + whole writes, all blocking, one hub ------------ */

#define BIG (4 << 20)

struct tcp {
    int lfd, port;
    ssize_t wrote, read_total;
    int cerr, aerr;
};

static void *tcp_server(void *p)
{
    struct tcp *t = p;
    int c = accept(t->lfd, NULL, NULL);
    t->aerr = errno;
    if (c < 0)
        return NULL;
    char *buf = malloc(65536);
    ssize_t r;
    while ((r = read(c, buf, 65536)) > 0)
        t->read_total += r;
    free(buf);
    close(c);
    return NULL;
}

static void *tcp_main(void *p)
{
    struct tcp *t = p;
    co_t *srv = co_spawn(tcp_server, t);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)t->port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        t->cerr = errno;
    } else {
        char *big = calloc(1, BIG);
        t->wrote = write(fd, big, BIG); /* one call, the whole buffer */
        free(big);
    }
    close(fd);
    co_join(srv, NULL, co_deadline(LONG_MS));
    return NULL;
}

Test(hook, blocking_accept_connect_and_a_whole_write_in_one_hub)
{
    struct tcp t = {0};
    t.lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    cr_assert_eq(bind(t.lfd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(t.lfd, 8), 0);
    getsockname(t.lfd, (struct sockaddr *)&a, &len);
    t.port = ntohs(a.sin_port);
    run(tcp_main, &t);
    cr_assert_eq(t.cerr, 0, "connect: %s", strerror(t.cerr));
    cr_assert_eq(t.wrote, BIG);
    cr_assert_eq(t.read_total, BIG);
    close(t.lfd);
}

/* ---- with the hooks off, calls are libc's ----------------------------- */

static void *off_writer(void *p)
{
    int *fd = p;
    send(fd[1], "x", 1, 0);
    return NULL;
}

/* With the hooks on the writer would run while main waits and main would
 * read its byte; off, main blocks the thread until its timeout. */
static void *off_main(void *p)
{
    int *fd = p;
    char b;
    co_t *w = co_spawn(off_writer, fd);
    /* blocking for real; a timeout keeps the test from hanging */
    struct timeval tv = {0, 10 * 1000};
    setsockopt(fd[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    fd[2] = (int)recv(fd[0], &b, 1, 0);
    fd[3] = errno;
    fd[4] = fcntl(fd[0], F_GETFL);
    co_join(w, NULL, co_deadline(LONG_MS));
    return NULL;
}

Test(hook, hooks_off_leave_libc_alone)
{
    hook__enabled = 0;
    int fd[5] = {0};
    pair(fd, SOCK_STREAM);
    run(off_main, fd);
    cr_assert_eq(fd[2], -1);
    cr_assert_eq(fd[3], EAGAIN);
    cr_assert_eq(fd[4] & O_NONBLOCK, 0);
    close(fd[0]);
    close(fd[1]);
}
