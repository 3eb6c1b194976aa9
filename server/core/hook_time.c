/*
 * Monkey patching, part three: the calls that wait for time, or for any of
 * several fds (see hook.h). In a coroutine, a sleep is a park until a
 * deadline, and poll/select try once without waiting, then park with one
 * libev watcher per fd until one fires or the timeout passes, and ask the
 * kernel again for the exact answer.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/coro.h"
#include "core/hook.h"
#include "core/hook_libc.h"

#define REAL(name)                                                             \
    (hook__libc.name ? hook__libc.name : (hook__init(), hook__libc.name))

#define NS_PER_S 1000000000LL
#define NS_PER_MS 1000000LL

static int64_t hook_clock_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static int hook_ts_valid(const struct timespec *ts)
{
    return ts && ts->tv_nsec >= 0 && ts->tv_nsec < NS_PER_S;
}

static int64_t hook_ts_ns(const struct timespec *ts)
{
    if (ts->tv_sec > INT64_MAX / NS_PER_S - 1)
        return INT64_MAX / 2;
    return (int64_t)ts->tv_sec * NS_PER_S + ts->tv_nsec;
}

static void hook_ns_ts(int64_t ns, struct timespec *ts)
{
    if (ns < 0)
        ns = 0;
    ts->tv_sec = ns / NS_PER_S;
    ts->tv_nsec = ns % NS_PER_S;
}

/* The monotonic millisecond deadline (co_now's clock) that is not before
 * ns from now: a hooked sleep never returns early. */
static int64_t hook_deadline_ns(int64_t ns)
{
    int64_t end = hook_clock_ns(CLOCK_MONOTONIC) + ns;
    return (end + NS_PER_MS - 1) / NS_PER_MS;
}

/* Parks co for at least ns nanoseconds. Returns 0, or -1 with errno
 * ECANCELED (or ETIMEDOUT: a co_timeout scope ended it) and *left the
 * time not slept. */
static int hook_sleep_ns(struct co *co, int64_t ns, int64_t *left)
{
    int64_t end = hook_clock_ns(CLOCK_MONOTONIC) + (ns > 0 ? ns : 0);
    int rc = ns > 0 ? co_sleep(hook_deadline_ns(ns)) : co_yield_now();
    if (rc == 0 && !coro__cancel_pending(co))
        return 0;
    int err = rc < 0 ? errno : ECANCELED;
    if (left)
        *left = end - hook_clock_ns(CLOCK_MONOTONIC);
    errno = err;
    return -1;
}

HOOK_PUBLIC unsigned sleep(unsigned s)
{
    struct co *co = hook__co;
    if (!co)
        return REAL(sleep)(s);
    int64_t left = 0;
    if (hook_sleep_ns(co, (int64_t)s * NS_PER_S, &left) == 0)
        return 0;
    unsigned rest = (unsigned)((left + NS_PER_S - 1) / NS_PER_S);
    return rest ? rest : 1; /* non-zero: the sleep was cut short */
}

HOOK_PUBLIC int usleep(useconds_t us)
{
    struct co *co = hook__co;
    if (!co)
        return REAL(usleep)(us);
    return hook_sleep_ns(co, (int64_t)us * 1000, NULL);
}

HOOK_PUBLIC int nanosleep(const struct timespec *req, struct timespec *rem)
{
    struct co *co = hook__co;
    if (!co)
        return REAL(nanosleep)(req, rem);
    if (!hook_ts_valid(req) || req->tv_sec < 0) {
        errno = EINVAL;
        return -1;
    }
    int64_t left = 0;
    if (hook_sleep_ns(co, hook_ts_ns(req), &left) == 0)
        return 0;
    if (rem)
        hook_ns_ts(left, rem);
    return -1;
}

HOOK_PUBLIC int clock_nanosleep(clockid_t clock, int flags,
                                const struct timespec *req,
                                struct timespec *rem)
{
    struct co *co = hook__co;
    if (!co || (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC &&
                clock != CLOCK_BOOTTIME && clock != CLOCK_TAI))
        return REAL(clock_nanosleep)(clock, flags, req, rem);
    if (!hook_ts_valid(req) || req->tv_sec < 0)
        return EINVAL;
    int64_t ns = hook_ts_ns(req);
    if (flags & TIMER_ABSTIME)
        ns -= hook_clock_ns(clock); /* <= 0: already past, return at once */
    int64_t left = 0;
    int saved = errno; /* clock_nanosleep reports in its return value */
    int rc = hook_sleep_ns(co, ns, &left);
    errno = saved;
    if (rc == 0)
        return 0;
    if (rem && !(flags & TIMER_ABSTIME))
        hook_ns_ts(left, rem);
    return ECANCELED;
}

/* ---- poll and select ----------------------------------------------- */

struct hook_poller {
    ev_io io;
    struct co *co;
};

static void hook_poll_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    ev_io_stop(loop, w);
    coro__wake(((struct hook_poller *)w)->co, 0);
}

#define HOOK_POLL_STACK 16

/* poll(fds, n) in a coroutine until deadline (monotonic ms, -1 = none).
 * Returns what poll returns, or -1 with ECANCELED. */
static int hook_poll(struct co *co, struct pollfd *fds, nfds_t n,
                     int64_t deadline)
{
    struct hook_poller stack[HOOK_POLL_STACK], *w = stack;
    if (n > HOOK_POLL_STACK && !(w = malloc(n * sizeof *w))) {
        errno = ENOMEM;
        return -1;
    }
    int rc;
    for (;;) {
        if (coro__cancel_pending(co)) {
            errno = ECANCELED;
            rc = -1;
            break;
        }
        if ((rc = REAL(poll)(fds, n, 0)) != 0)
            break;
        nfds_t armed = 0;
        for (nfds_t i = 0; i < n; i++) {
            int mask =
                ((fds[i].events & (POLLIN | POLLPRI | POLLRDHUP)) ? EV_READ
                                                                  : 0) |
                ((fds[i].events & POLLOUT) ? EV_WRITE : 0);
            if (fds[i].fd < 0 || !mask)
                continue;
            ev_io_init(&w[armed].io, hook_poll_cb, fds[i].fd, mask);
            w[armed].co = co;
            ev_io_start(co->hub->loop, &w[armed].io);
            armed++;
        }
        int parked = coro__park(co, deadline, 0);
        int err = errno;
        for (nfds_t i = 0; i < armed; i++)
            ev_io_stop(co->hub->loop, &w[i].io);
        if (parked < 0 && err == ETIMEDOUT) {
            rc = REAL(poll)(fds, n, 0); /* the last word is the kernel's */
            break;
        }
        if (parked < 0) {
            errno = err;
            rc = -1;
            break;
        }
    }
    if (w != stack) {
        int err = errno;
        free(w);
        errno = err;
    }
    return rc;
}

/* A timeout as a hooked wait's deadline: -1 for none. */
static int64_t hook_ts_deadline(const struct timespec *ts)
{
    return ts ? hook_deadline_ns(hook_ts_ns(ts)) : -1;
}

HOOK_PUBLIC int poll(struct pollfd *fds, nfds_t n, int timeout)
{
    struct co *co = hook__co;
    if (!co || timeout == 0)
        return REAL(poll)(fds, n, timeout);
    return hook_poll(co, fds, n,
                     timeout < 0 ? -1 : hook_deadline_ns(timeout * NS_PER_MS));
}

/* The signal mask of ppoll / pselect does not apply in a coroutine:
 * signals are the hub's business, never delivered to a coroutine's wait. */
HOOK_PUBLIC int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts,
                      const sigset_t *mask)
{
    struct co *co = hook__co;
    if (!co || (ts && ts->tv_sec == 0 && ts->tv_nsec == 0))
        return REAL(ppoll)(fds, n, ts, mask);
    if (ts && (!hook_ts_valid(ts) || ts->tv_sec < 0)) {
        errno = EINVAL;
        return -1;
    }
    return hook_poll(co, fds, n, hook_ts_deadline(ts));
}

int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen);
HOOK_PUBLIC int __poll_chk(struct pollfd *fds, nfds_t n, int timeout,
                           size_t fdslen)
{
    if (fdslen / sizeof *fds < n)
        abort();
    return poll(fds, n, timeout);
}

/* select as poll: the sets become pollfds and back. */
static int hook_select(struct co *co, int nfds, fd_set *r, fd_set *w, fd_set *x,
                       int64_t deadline)
{
    if (nfds < 0 || nfds > FD_SETSIZE) {
        errno = EINVAL;
        return -1;
    }
    struct pollfd stack[32], *p = stack;
    int n = 0;
    for (int fd = 0; fd < nfds; fd++)
        if ((r && FD_ISSET(fd, r)) || (w && FD_ISSET(fd, w)) ||
            (x && FD_ISSET(fd, x)))
            n++;
    if (n > 32 && !(p = malloc((size_t)n * sizeof *p))) {
        errno = ENOMEM;
        return -1;
    }
    int i = 0;
    for (int fd = 0; fd < nfds; fd++) {
        short ev = (short)(((r && FD_ISSET(fd, r)) ? POLLIN : 0) |
                           ((w && FD_ISSET(fd, w)) ? POLLOUT : 0) |
                           ((x && FD_ISSET(fd, x)) ? POLLPRI : 0));
        if (ev)
            p[i++] = (struct pollfd){.fd = fd, .events = ev};
    }
    int rc = hook_poll(co, p, (nfds_t)n, deadline);
    if (rc >= 0) {
        for (i = 0; i < n; i++)
            if (p[i].revents & POLLNVAL) {
                errno = EBADF;
                rc = -1;
            }
    }
    if (rc >= 0) {
        rc = 0;
        if (r)
            FD_ZERO(r);
        if (w)
            FD_ZERO(w);
        if (x)
            FD_ZERO(x);
        for (i = 0; i < n; i++) {
            short ev = p[i].events, re = p[i].revents;
            if ((ev & POLLIN) && (re & (POLLIN | POLLHUP | POLLERR)))
                FD_SET(p[i].fd, r), rc++;
            if ((ev & POLLOUT) && (re & (POLLOUT | POLLERR)))
                FD_SET(p[i].fd, w), rc++;
            if ((ev & POLLPRI) && (re & POLLPRI))
                FD_SET(p[i].fd, x), rc++;
        }
    }
    if (p != stack) {
        int err = errno;
        free(p);
        errno = err;
    }
    return rc;
}

HOOK_PUBLIC int select(int nfds, fd_set *r, fd_set *w, fd_set *x,
                       struct timeval *tv)
{
    struct co *co = hook__co;
    if (!co || (tv && tv->tv_sec == 0 && tv->tv_usec == 0))
        return REAL(select)(nfds, r, w, x, tv);
    if (tv && (tv->tv_sec < 0 || tv->tv_usec < 0 || tv->tv_usec >= 1000000)) {
        errno = EINVAL;
        return -1;
    }
    int64_t end = 0, deadline = -1;
    if (tv) {
        int64_t ns = (int64_t)tv->tv_sec * NS_PER_S + tv->tv_usec * 1000LL;
        end = hook_clock_ns(CLOCK_MONOTONIC) + ns;
        deadline = hook_deadline_ns(ns);
    }
    int rc = hook_select(co, nfds, r, w, x, deadline);
    if (tv) { /* Linux leaves the time not slept in the timeval */
        int64_t left = end - hook_clock_ns(CLOCK_MONOTONIC);
        if (left < 0 || rc == 0)
            left = 0;
        tv->tv_sec = left / NS_PER_S;
        tv->tv_usec = (left % NS_PER_S) / 1000;
    }
    return rc;
}

HOOK_PUBLIC int pselect(int nfds, fd_set *r, fd_set *w, fd_set *x,
                        const struct timespec *ts, const sigset_t *mask)
{
    struct co *co = hook__co;
    if (!co || (ts && ts->tv_sec == 0 && ts->tv_nsec == 0))
        return REAL(pselect)(nfds, r, w, x, ts, mask);
    if (ts && (!hook_ts_valid(ts) || ts->tv_sec < 0)) {
        errno = EINVAL;
        return -1;
    }
    return hook_select(co, nfds, r, w, x, hook_ts_deadline(ts));
}
