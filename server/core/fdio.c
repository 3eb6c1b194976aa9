/*
 * Cooperative fd I/O: try the system call first (data is often already
 * there), and only on EAGAIN wait for readiness through the coroutine's own
 * ev_io. The watcher is embedded in the coroutine, so a wait allocates
 * nothing, and libev skips the epoll_ctl when the same fd and mask come back.
 *
 * These calls are the cooperative API itself, so they call libc directly
 * (hook__libc), not the hooks: their deadline, not the fd's SO_RCVTIMEO,
 * bounds the wait.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include "core/coro.h"
#include "core/fdio.h"
#include "core/hook.h"
#include "core/hook_libc.h"

/* Written once before the hubs start (fdio__set_sendfile_chunk), then only
 * read. */
static size_t fdio_sendfile_chunk = FDIO_SENDFILE_CHUNK;

int fdio__set_sendfile_chunk(uint64_t bytes)
{
    if (bytes < FDIO_SENDFILE_CHUNK_MIN || bytes > FDIO_SENDFILE_CHUNK_MAX) {
        errno = EINVAL;
        return -1;
    }
    fdio_sendfile_chunk = (size_t)bytes;
    return 0;
}

size_t fdio__sendfile_chunk(void)
{
    return fdio_sendfile_chunk;
}

static void fdio_ready_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    /* Stop now, not when the coroutine runs: the fd stays readable until
     * then, and epoll (level-triggered) would report it at every poll. */
    ev_io_stop(loop, w);
    coro__wake(list_entry(w, struct co, io), 0);
}

/* ev_io_set marks the watcher so that libev registers its fd with epoll
 * again at the next poll, in case the number now names another file:
 * EPOLL_CTL_ADD, answered EEXIST when it is the same one, a wasted system
 * call per wait (a WebSocket echo made one per message). The hooks' table
 * knows when the number changed file (gen, bumped by every hooked close
 * and every fd a hooked call makes), so only the first watcher on a loop
 * after such a change needs the mark; the others set fd and events as
 * ev_io_set does, without it. Without the hooks nothing counts closes:
 * always the mark. (An fd closed behind the hooks, by a raw system call,
 * and its number reused within one loop turn, would go unseen.) */
void fdio__io_set(struct ev_loop *loop, ev_io *io, int fd, int mask)
{
    struct hook_fd *e = hook__enabled ? hook__fd_slot(fd) : NULL;
    if (e && e->set_loop == loop && e->set_gen == e->gen) {
        io->fd = fd;
        io->events = mask;
        return;
    }
    ev_io_set(io, fd, mask);
    if (e) {
        e->set_loop = loop;
        e->set_gen = e->gen;
    }
}

int fdio__wait(struct co *self, int fd, int events, int64_t deadline)
{
    if (coro__cancel_pending(self)) {
        errno = ECANCELED;
        return -1;
    }
    int mask = ((events & CO_READABLE) ? EV_READ : 0) |
               ((events & CO_WRITABLE) ? EV_WRITE : 0);
    if (!mask || fd < 0) {
        errno = EINVAL;
        return -1;
    }
    ev_set_cb(&self->io, fdio_ready_cb);
    fdio__io_set(self->hub->loop, &self->io, fd, mask);
    ev_io_start(self->hub->loop, &self->io);
    /* On the fd's waiter list, a close() of the fd wakes us with EBADF
     * (hook__fd_forget); coro__wake unlinks us either way. */
    struct hook_fd *e = hook__fd_slot(fd);
    if (e)
        list_push_back(&e->waiters, &self->wait_link);
    int rc = coro__park(self, deadline, 0);
    if (list_linked(&self->wait_link))
        list_remove(&self->wait_link);
    ev_io_stop(self->hub->loop, &self->io);
    return rc;
}

int co_wait_fd(int fd, int events, int64_t deadline)
{
    struct co *self = coro__self("co_wait_fd");
    /* The other calls reach fdio_wait only after the fd answered EAGAIN;
     * here a closed fd must be EBADF, not an assertion inside libev. */
    if (fcntl(fd, F_GETFD) < 0)
        return -1;
    return fdio__wait(self, fd, events, deadline);
}

/* After a system call failed: non-zero to try it again (EINTR, or EAGAIN
 * and the fd then became ready), 0 to give up with errno saying why. */
static int fdio_retry(struct co *self, int fd, int events, int64_t deadline)
{
    if (errno == EINTR)
        return 1;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
        return 0;
    return fdio__wait(self, fd, events, deadline) == 0;
}

ssize_t co_read(int fd, void *buf, size_t n, int64_t deadline)
{
    struct co *self = coro__self("co_read");
    ssize_t r;
    while ((r = hook__libc.read(fd, buf, n)) < 0)
        if (!fdio_retry(self, fd, CO_READABLE, deadline))
            return -1;
    return r;
}

ssize_t co_readv(int fd, const struct iovec *iov, int iovcnt, int64_t deadline)
{
    struct co *self = coro__self("co_readv");
    ssize_t r;
    while ((r = hook__libc.readv(fd, iov, iovcnt)) < 0)
        if (!fdio_retry(self, fd, CO_READABLE, deadline))
            return -1;
    return r;
}

ssize_t co_recv(int fd, void *buf, size_t n, int flags, int64_t deadline)
{
    struct co *self = coro__self("co_recv");
    ssize_t r;
    while ((r = hook__libc.recv(fd, buf, n, flags)) < 0)
        if (!fdio_retry(self, fd, CO_READABLE, deadline))
            return -1;
    return r;
}

int co_write_all(int fd, const void *buf, size_t n, int64_t deadline)
{
    struct co *self = coro__self("co_write_all");
    const char *p = buf;
    while (n > 0) {
        ssize_t w = hook__libc.write(fd, p, n);
        if (w >= 0) {
            p += w;
            n -= (size_t)w;
        } else if (!fdio_retry(self, fd, CO_WRITABLE, deadline)) {
            return -1;
        }
    }
    return 0;
}

int co_send_all(int fd, const void *buf, size_t n, int flags, int64_t deadline)
{
    struct co *self = coro__self("co_send_all");
    const char *p = buf;
    while (n > 0) {
        ssize_t w = hook__libc.send(fd, p, n, flags | MSG_NOSIGNAL);
        if (w >= 0) {
            p += w;
            n -= (size_t)w;
        } else if (!fdio_retry(self, fd, CO_WRITABLE, deadline)) {
            return -1;
        }
    }
    return 0;
}

#define FDIO_IOV_BATCH 64

int co_writev_all(int fd, const struct iovec *iov, int iovcnt, int64_t deadline)
{
    struct co *self = coro__self("co_writev_all");
    /* writev may stop anywhere: keep a private window of at most
     * FDIO_IOV_BATCH entries, the first one trimmed to what is left. */
    struct iovec win[FDIO_IOV_BATCH];
    int next = 0; /* first entry of iov not yet in the window */
    int wn = 0, wi = 0;
    for (;;) {
        if (wi == wn) { /* refill */
            wn = wi = 0;
            while (next < iovcnt && wn < FDIO_IOV_BATCH) {
                if (iov[next].iov_len)
                    win[wn++] = iov[next];
                next++;
            }
            if (wn == 0)
                return 0;
        }
        ssize_t w = hook__libc.writev(fd, win + wi, wn - wi);
        if (w < 0) {
            if (!fdio_retry(self, fd, CO_WRITABLE, deadline))
                return -1;
            continue;
        }
        size_t left = (size_t)w;
        while (wi < wn && left >= win[wi].iov_len)
            left -= win[wi++].iov_len;
        if (wi < wn) {
            win[wi].iov_base = (char *)win[wi].iov_base + left;
            win[wi].iov_len -= left;
        }
    }
}

int co_accept(int fd, struct sockaddr *addr, socklen_t *len, int64_t deadline)
{
    struct co *self = coro__self("co_accept");
    for (;;) {
        int c = hook__libc.accept4(fd, addr, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c >= 0) {
            hook__fd_new(c, HOOK_FD_SOCKET | HOOK_FD_POLLABLE | HOOK_FD_STREAM |
                                HOOK_FD_NONBLOCK);
            return c;
        }
        if (errno != ECONNABORTED &&
            !fdio_retry(self, fd, CO_READABLE, deadline))
            return -1;
    }
}

int co_connect(int fd, const struct sockaddr *addr, socklen_t len,
               int64_t deadline)
{
    struct co *self = coro__self("co_connect");
    if (hook__libc.connect(fd, addr, len) == 0)
        return 0;
    if (errno != EINPROGRESS && errno != EINTR)
        return -1;
    if (fdio__wait(self, fd, CO_WRITABLE, deadline) < 0)
        return -1;
    int err = 0;
    socklen_t elen = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
        return -1;
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}

/* A reader as fast as the disk never fills the socket, so one sendfile()
 * for the whole file would hold the hub until it is all sent (a second per
 * few hundred MB). Each call is capped at a chunk, and after a full chunk
 * sent without waiting the coroutine waits for writability: that goes
 * through the loop's poll, so other connections are served in between
 * (co_yield_now would not: a lone ready coroutine runs again before any poll).
 */
ssize_t co_sendfile(int out_fd, int in_fd, off_t *offset, size_t count,
                    int64_t deadline)
{
    struct co *self = coro__self("co_sendfile");
    size_t chunk = fdio_sendfile_chunk, sent = 0, burst = 0;
    while (sent < count) {
        size_t ask = count - sent < chunk ? count - sent : chunk;
        ssize_t w = sendfile(out_fd, in_fd, offset, ask);
        if (w > 0) {
            sent += (size_t)w;
            burst += (size_t)w;
            if (burst >= chunk && sent < count) {
                burst = 0;
                if (fdio__wait(self, out_fd, CO_WRITABLE, deadline) < 0)
                    return -1;
            }
        } else if (w == 0) {
            break; /* end of in_fd */
        } else if (fdio_retry(self, out_fd, CO_WRITABLE, deadline)) {
            burst = 0;
        } else {
            return -1;
        }
    }
    return (ssize_t)sent;
}
