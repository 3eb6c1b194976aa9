/*
 * Monkey patching, part two: the socket and pipe calls (see hook.h).
 *
 * In a coroutine, a call on a pollable fd its user left blocking becomes a
 * non-blocking attempt plus a wait for readiness: sockets get MSG_DONTWAIT
 * per call, so their file stays blocking for every other thread; pipes,
 * ttys, eventfds and listening sockets have no per-call flag, so the hooks
 * set O_NONBLOCK on them once ("forced") and emulate blocking for calls
 * made outside coroutines. Writes on stream fds go whole, as a blocking
 * write does; SO_RCVTIMEO / SO_SNDTIMEO end a wait with EAGAIN, as Linux's.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "core/coro.h"
#include "core/errcap.h"
#include "core/hook.h"
#include "core/hook_libc.h"

#define REAL(name)                                                             \
    (hook__libc.name ? hook__libc.name : (hook__init(), hook__libc.name))

/* The fd's entry when a call in a coroutine may have to wait on it: a
 * pollable fd its user left blocking. NULL: libc's call as it is. */
static struct hook_fd *hook_io_blocking(int fd)
{
    struct hook_fd *e = hook__fd(fd);
    if (!e ||
        (e->flags & (HOOK_FD_POLLABLE | HOOK_FD_NONBLOCK)) != HOOK_FD_POLLABLE)
        return NULL;
    return e;
}

/* One attempt of a call, `done` bytes into it. flags is MSG_DONTWAIT for a
 * socket in a coroutine, 0 otherwise (the fd is then non-blocking or the
 * caller may block). */
typedef ssize_t (*hook_try_fn)(int fd, void *call, size_t done, int flags);

/* The blocking semantics of a call that moves bytes. total is the number
 * of bytes a blocking call would move before returning (whole writes on
 * stream fds, MSG_WAITALL reads), 0 when any progress returns at once. */
static ssize_t hook_io_run(struct co *co, int fd, int events, hook_try_fn try,
                           void *call, size_t total)
{
    struct hook_fd *e = co                    ? hook_io_blocking(fd)
                        : hook__fd_forced(fd) ? hook__fd_peek(fd)
                                              : NULL;
    if (!e)
        return try(fd, call, 0, 0);
    int flags = 0;
    if (co) {
        if (coro__cancel_pending(co)) {
            errno = ECANCELED;
            return -1;
        }
        if (e->flags & HOOK_FD_SOCKET)
            flags = MSG_DONTWAIT;
        else if (hook__fd_force(fd, e) < 0)
            return -1;
    }
    if (!(e->flags & HOOK_FD_STREAM))
        total = 0;
    size_t done = 0;
    for (;;) {
        ssize_t r = try(fd, call, done, flags);
        if (r > 0 && done + (size_t)r < total) {
            done += (size_t)r;
            continue;
        }
        if (r >= 0)
            return (ssize_t)done + r;
        if (errno == EINTR)
            continue;
        int failed = errno != EAGAIN && errno != EWOULDBLOCK;
        if (!failed) {
            if (co)
                failed = hook__wait(co, fd, events,
                                    (events & CO_WRITABLE) ? e->snd_ms
                                                           : e->rcv_ms) < 0;
            else
                failed =
                    hook__block_thread(
                        fd, e, (events & CO_WRITABLE) ? POLLOUT : POLLIN) < 0;
        }
        if (failed)
            return done ? (ssize_t)done : -1; /* a partial write stands */
    }
}

/* ---- the calls, each as one attempt ---------------------------------- */

struct hook_buf {
    void *buf;
    size_t len;
    int flags;
    struct sockaddr *addr;
    socklen_t *addrlen;
    const struct sockaddr *to;
    socklen_t tolen;
};

static ssize_t hook_try_read(int fd, void *c, size_t done, int flags)
{
    struct hook_buf *b = c;
    char *p = (char *)b->buf + done;
    if (flags)
        return REAL(recv)(fd, p, b->len - done, flags);
    return REAL(read)(fd, p, b->len - done);
}

static ssize_t hook_try_recv(int fd, void *c, size_t done, int flags)
{
    struct hook_buf *b = c;
    /* MSG_WAITALL is emulated when the call cannot block (hook_io_run) */
    int fl = flags ? (b->flags & ~MSG_WAITALL) | flags : b->flags;
    return REAL(recvfrom)(fd, (char *)b->buf + done, b->len - done, fl, b->addr,
                          b->addrlen);
}

static ssize_t hook_try_write(int fd, void *c, size_t done, int flags)
{
    struct hook_buf *b = c;
    const char *p = (const char *)b->buf + done;
    if (flags)
        return REAL(send)(fd, p, b->len - done, flags);
    return REAL(write)(fd, p, b->len - done);
}

static ssize_t hook_try_send(int fd, void *c, size_t done, int flags)
{
    struct hook_buf *b = c;
    return REAL(sendto)(fd, (const char *)b->buf + done, b->len - done,
                        b->flags | flags, b->to, b->tolen);
}

HOOK_PUBLIC ssize_t read(int fd, void *buf, size_t n)
{
    struct co *co = hook__co;
    /* a zero-length read returns at once in Linux, blocking or not */
    if ((!co && !hook__fd_forced(fd)) || n == 0)
        return REAL(read)(fd, buf, n);
    struct hook_buf b = {.buf = buf, .len = n};
    return hook_io_run(co, fd, CO_READABLE, hook_try_read, &b, 0);
}

HOOK_PUBLIC ssize_t recv(int fd, void *buf, size_t n, int flags)
{
    return recvfrom(fd, buf, n, flags, NULL, NULL);
}

HOOK_PUBLIC ssize_t recvfrom(int fd, void *buf, size_t n, int flags,
                             struct sockaddr *addr, socklen_t *addrlen)
{
    struct co *co = hook__co;
    if ((!co && !hook__fd_forced(fd)) || (flags & MSG_DONTWAIT) || n == 0)
        return REAL(recvfrom)(fd, buf, n, flags, addr, addrlen);
    struct hook_buf b = {
        .buf = buf, .len = n, .flags = flags, .addr = addr, .addrlen = addrlen};
    return hook_io_run(co, fd, CO_READABLE, hook_try_recv, &b,
                       (flags & MSG_WAITALL) ? n : 0);
}

HOOK_PUBLIC ssize_t write(int fd, const void *buf, size_t n)
{
    struct co *co = hook__co;
    if (!co && !hook__fd_forced(fd))
        return REAL(write)(fd, buf, n);
    /* an app's write(2, ...): an error log line naming it (errcap.h) */
    if (co && fd == STDERR_FILENO && errcap__on)
        return errcap__write(buf, n);
    struct hook_buf b = {.buf = (void *)buf, .len = n};
    return hook_io_run(co, fd, CO_WRITABLE, hook_try_write, &b, n);
}

HOOK_PUBLIC ssize_t send(int fd, const void *buf, size_t n, int flags)
{
    return sendto(fd, buf, n, flags, NULL, 0);
}

HOOK_PUBLIC ssize_t sendto(int fd, const void *buf, size_t n, int flags,
                           const struct sockaddr *to, socklen_t tolen)
{
    struct co *co = hook__co;
    if ((!co && !hook__fd_forced(fd)) || (flags & MSG_DONTWAIT))
        return REAL(sendto)(fd, buf, n, flags, to, tolen);
    struct hook_buf b = {
        .buf = (void *)buf, .len = n, .flags = flags, .to = to, .tolen = tolen};
    return hook_io_run(co, fd, CO_WRITABLE, hook_try_send, &b, n);
}

/* ---- scatter / gather ---------------------------------------------- */

#define HOOK_IOV_WINDOW 64

struct hook_msg {
    const struct msghdr *msg; /* iov, and for sendmsg/recvmsg the rest */
    int flags;
    int is_msg; /* recvmsg / sendmsg rather than readv / writev */
};

/* Points win at what is left of iov past `done` bytes (at most
 * HOOK_IOV_WINDOW entries). Returns the entry count. */
static int hook_iov_window(const struct iovec *iov, int cnt, size_t done,
                           struct iovec *win)
{
    int i = 0;
    while (i < cnt && done >= iov[i].iov_len)
        done -= iov[i++].iov_len;
    int n = 0;
    for (; i < cnt && n < HOOK_IOV_WINDOW; i++, n++) {
        win[n] = iov[i];
        if (done) {
            win[n].iov_base = (char *)win[n].iov_base + done;
            win[n].iov_len -= done;
            done = 0;
        }
    }
    return n;
}

static ssize_t hook_try_msg(int fd, void *c, size_t done, int flags, int out)
{
    struct hook_msg *m = c;
    const struct msghdr *msg = m->msg;
    if (!flags && !done) { /* as the user asked: the fd may block */
        if (m->is_msg)
            return out ? REAL(sendmsg)(fd, msg, m->flags)
                       : REAL(recvmsg)(fd, (struct msghdr *)msg, m->flags);
        return out ? REAL(writev)(fd, msg->msg_iov, (int)msg->msg_iovlen)
                   : REAL(readv)(fd, msg->msg_iov, (int)msg->msg_iovlen);
    }
    struct iovec win[HOOK_IOV_WINDOW];
    int n = hook_iov_window(msg->msg_iov, (int)msg->msg_iovlen, done, win);
    if (!m->is_msg && !flags) /* a forced pipe: plain readv / writev */
        return out ? REAL(writev)(fd, win, n) : REAL(readv)(fd, win, n);
    struct msghdr tmp = *msg;
    tmp.msg_iov = win;
    tmp.msg_iovlen = (size_t)n;
    if (done && out) { /* the address and ancillary data went with byte 0 */
        tmp.msg_name = NULL;
        tmp.msg_namelen = 0;
        tmp.msg_control = NULL;
        tmp.msg_controllen = 0;
    }
    int fl = (m->flags & ~MSG_WAITALL) | flags;
    if (out)
        return REAL(sendmsg)(fd, &tmp, fl);
    ssize_t r = REAL(recvmsg)(fd, &tmp, fl);
    if (r >= 0 && m->is_msg) { /* hand back what recvmsg filled in */
        struct msghdr *user = (struct msghdr *)msg;
        user->msg_namelen = tmp.msg_namelen;
        user->msg_controllen = tmp.msg_controllen;
        user->msg_flags = tmp.msg_flags;
    }
    return r;
}

static ssize_t hook_try_msg_in(int fd, void *c, size_t done, int flags)
{
    return hook_try_msg(fd, c, done, flags, 0);
}

static ssize_t hook_try_msg_out(int fd, void *c, size_t done, int flags)
{
    return hook_try_msg(fd, c, done, flags, 1);
}

static size_t hook_iov_total(const struct iovec *iov, size_t cnt)
{
    size_t t = 0;
    for (size_t i = 0; i < cnt; i++)
        t += iov[i].iov_len;
    return t;
}

HOOK_PUBLIC ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
    struct co *co = hook__co;
    if ((!co && !hook__fd_forced(fd)) || cnt <= 0 ||
        hook_iov_total(iov, (size_t)cnt) == 0)
        return REAL(readv)(fd, iov, cnt);
    if (cnt < 0) {
        errno = EINVAL;
        return -1;
    }
    struct msghdr msg = {.msg_iov = (struct iovec *)iov,
                         .msg_iovlen = (size_t)cnt};
    struct hook_msg m = {.msg = &msg};
    return hook_io_run(co, fd, CO_READABLE, hook_try_msg_in, &m, 0);
}

HOOK_PUBLIC ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    struct co *co = hook__co;
    if (!co && !hook__fd_forced(fd))
        return REAL(writev)(fd, iov, cnt);
    if (cnt < 0) {
        errno = EINVAL;
        return -1;
    }
    struct msghdr msg = {.msg_iov = (struct iovec *)iov,
                         .msg_iovlen = (size_t)cnt};
    struct hook_msg m = {.msg = &msg};
    return hook_io_run(co, fd, CO_WRITABLE, hook_try_msg_out, &m,
                       hook_iov_total(iov, (size_t)cnt));
}

HOOK_PUBLIC ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
    struct co *co = hook__co;
    if ((!co && !hook__fd_forced(fd)) || (flags & MSG_DONTWAIT))
        return REAL(recvmsg)(fd, msg, flags);
    struct hook_msg m = {.msg = msg, .flags = flags, .is_msg = 1};
    return hook_io_run(co, fd, CO_READABLE, hook_try_msg_in, &m,
                       (flags & MSG_WAITALL)
                           ? hook_iov_total(msg->msg_iov, msg->msg_iovlen)
                           : 0);
}

HOOK_PUBLIC ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    struct co *co = hook__co;
    if ((!co && !hook__fd_forced(fd)) || (flags & MSG_DONTWAIT))
        return REAL(sendmsg)(fd, msg, flags);
    struct hook_msg m = {.msg = msg, .flags = flags, .is_msg = 1};
    return hook_io_run(co, fd, CO_WRITABLE, hook_try_msg_out, &m,
                       hook_iov_total(msg->msg_iov, msg->msg_iovlen));
}

/* _FORTIFY_SOURCE builds of libraries call these checked variants. */
void __chk_fail(void) __attribute__((noreturn));

HOOK_PUBLIC ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
    if (n > buflen)
        __chk_fail();
    return read(fd, buf, n);
}

HOOK_PUBLIC ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen,
                               int flags)
{
    if (n > buflen)
        __chk_fail();
    return recvfrom(fd, buf, n, flags, NULL, NULL);
}

HOOK_PUBLIC ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen,
                                   int flags, struct sockaddr *addr,
                                   socklen_t *addrlen)
{
    if (n > buflen)
        __chk_fail();
    return recvfrom(fd, buf, n, flags, addr, addrlen);
}

/* ---- accept and connect ---------------------------------------------- */

/* A socket accepted through the hooks: recorded, with the timeouts Linux
 * copies from the listener. */
static int hook_accepted(int lfd, int fd, int flags)
{
    if (fd < 0)
        return fd;
    struct hook_fd *l = hook__fd_peek(lfd);
    hook__fd_new(fd,
                 HOOK_FD_SOCKET | HOOK_FD_POLLABLE |
                     (l && (l->flags & HOOK_FD_STREAM) ? HOOK_FD_STREAM : 0) |
                     ((flags & SOCK_NONBLOCK) ? HOOK_FD_NONBLOCK : 0));
    struct hook_fd *e = hook__fd_peek(fd);
    if (e && l) {
        e->rcv_ms = l->rcv_ms;
        e->snd_ms = l->snd_ms;
    }
    return fd;
}

HOOK_PUBLIC int accept4(int fd, struct sockaddr *addr, socklen_t *len,
                        int flags)
{
    struct co *co = hook__co;
    struct hook_fd *e = co ? hook_io_blocking(fd) : NULL;
    if (!co && hook__fd_forced(fd))
        e = hook__fd_peek(fd);
    if (!e)
        return hook_accepted(fd, REAL(accept4)(fd, addr, len, flags), flags);
    if (co && coro__cancel_pending(co)) {
        errno = ECANCELED;
        return -1;
    }
    if (co && hook__fd_force(fd, e) < 0)
        return -1;
    for (;;) {
        int c = REAL(accept4)(fd, addr, len, flags);
        if (c >= 0)
            return hook_accepted(fd, c, flags);
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        if (co ? hook__wait(co, fd, CO_READABLE, e->rcv_ms) < 0
               : hook__block_thread(fd, e, POLLIN) < 0)
            return -1;
    }
}

HOOK_PUBLIC int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
    return accept4(fd, addr, len, 0);
}

/* A blocking connect in a coroutine: the socket is non-blocking for the
 * duration of the call, while the coroutine waits for writability. Then a
 * second connect() collects the outcome, as the blocking call would have
 * (Linux marks the socket connected only then: a later connect() says
 * EISCONN). SO_SNDTIMEO ends the wait with EINPROGRESS, as Linux's
 * blocking connect does. */
HOOK_PUBLIC int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    struct co *co = hook__co;
    struct hook_fd *e = co ? hook_io_blocking(fd) : NULL;
    if (!e || !(e->flags & HOOK_FD_SOCKET))
        return REAL(connect)(fd, addr, len);
    if (coro__cancel_pending(co)) {
        errno = ECANCELED;
        return -1;
    }
    int fl = 0, forced = e->flags & HOOK_FD_FORCED;
    if (!forced) {
        fl = REAL(fcntl)(fd, F_GETFL);
        if (fl < 0 || REAL(fcntl)(fd, F_SETFL, fl | O_NONBLOCK) < 0)
            return -1;
    }
    int r = REAL(connect)(fd, addr, len);
    while (r < 0 && (errno == EINPROGRESS || errno == EALREADY)) {
        if (hook__wait(co, fd, CO_WRITABLE, e->snd_ms) < 0) {
            if (errno == EAGAIN)
                errno = EINPROGRESS;
            break;
        }
        r = REAL(connect)(fd, addr, len);
    }
    int err = errno;
    if (!forced)
        REAL(fcntl)(fd, F_SETFL, fl);
    errno = err;
    return r;
}
