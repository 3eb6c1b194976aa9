/*
 * hook_libc.h - the hooks' internals: libc's own functions, the fd table,
 * and the wait every hook parks in. Only the hook_*.c files and fdio.c
 * include it.
 */
#ifndef COSERVE_CORE_HOOK_LIBC_H
#define COSERVE_CORE_HOOK_LIBC_H

#include <ev.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include "core/list.h"

/* libc's functions behind the hooks (in the sanitizer build, the
 * sanitizer's interceptors, which then call libc: see hook.c). */
struct hook_libc {
    ssize_t (*read)(int, void *, size_t);
    ssize_t (*readv)(int, const struct iovec *, int);
    ssize_t (*recv)(int, void *, size_t, int);
    ssize_t (*recvfrom)(int, void *, size_t, int, struct sockaddr *,
                        socklen_t *);
    ssize_t (*recvmsg)(int, struct msghdr *, int);
    ssize_t (*write)(int, const void *, size_t);
    ssize_t (*writev)(int, const struct iovec *, int);
    ssize_t (*send)(int, const void *, size_t, int);
    ssize_t (*sendto)(int, const void *, size_t, int, const struct sockaddr *,
                      socklen_t);
    ssize_t (*sendmsg)(int, const struct msghdr *, int);
    int (*accept)(int, struct sockaddr *, socklen_t *);
    int (*accept4)(int, struct sockaddr *, socklen_t *, int);
    int (*connect)(int, const struct sockaddr *, socklen_t);
    int (*socket)(int, int, int);
    int (*socketpair)(int, int, int, int[2]);
    int (*pipe)(int[2]);
    int (*pipe2)(int[2], int);
    int (*eventfd)(unsigned, int);
    int (*dup)(int);
    int (*dup2)(int, int);
    int (*dup3)(int, int, int);
    int (*fcntl)(int, int, ...);
    int (*ioctl)(int, unsigned long, ...);
    int (*setsockopt)(int, int, int, const void *, socklen_t);
    int (*close)(int);
    unsigned (*sleep)(unsigned);
    int (*usleep)(useconds_t);
    int (*nanosleep)(const struct timespec *, struct timespec *);
    int (*clock_nanosleep)(clockid_t, int, const struct timespec *,
                           struct timespec *);
    int (*poll)(struct pollfd *, nfds_t, int);
    int (*ppoll)(struct pollfd *, nfds_t, const struct timespec *,
                 const sigset_t *);
    int (*select)(int, fd_set *, fd_set *, fd_set *, struct timeval *);
    int (*pselect)(int, fd_set *, fd_set *, fd_set *, const struct timespec *,
                   const sigset_t *);
    int (*getaddrinfo)(const char *, const char *, const struct addrinfo *,
                       struct addrinfo **);
    int (*getnameinfo)(const struct sockaddr *, socklen_t, char *, socklen_t,
                       char *, socklen_t, int);
    struct hostent *(*gethostbyname)(const char *);
    int (*gethostbyname_r)(const char *, struct hostent *, char *, size_t,
                           struct hostent **, int *);
};

extern struct hook_libc hook__libc;

/* A hook: exported from the binary (coserve.dynlist) despite the build's
 * hidden default visibility. */
#define HOOK_PUBLIC __attribute__((visibility("default")))

/* What the table knows of an fd. */
#define HOOK_FD_KNOWN 0x01    /* classified (the other bits are true) */
#define HOOK_FD_SOCKET 0x02   /* a socket: MSG_DONTWAIT works per call */
#define HOOK_FD_STREAM 0x04   /* a stream socket or a pipe: writes go whole */
#define HOOK_FD_POLLABLE 0x08 /* a socket, pipe, tty, eventfd...: can wait */
#define HOOK_FD_NONBLOCK 0x10 /* the user's O_NONBLOCK */
#define HOOK_FD_FORCED 0x20   /* O_NONBLOCK set by the hooks, not the user */
#define HOOK_FD_SHARED                                                         \
    0x40 /* dup'ed: O_NONBLOCK may change through another fd */

struct hook_fd {
    uint8_t flags;
    /* Bumped when a hooked call closes or makes this fd number; set_gen
     * and set_loop say which file with the number the loop last heard of
     * (fdio__io_set). */
    uint32_t gen, set_gen;
    struct ev_loop *set_loop;
    int32_t rcv_ms, snd_ms; /* SO_RCVTIMEO / SO_SNDTIMEO; 0 = none */
    struct list waiters;    /* coroutines of this thread's hub waiting */
};

/* The entry of fd, classified on first use (fstat, F_GETFL); NULL for an
 * fd out of the table's range or not open. */
struct hook_fd *hook__fd(int fd);
/* The entry of fd if the table has one, unclassified or not; else NULL. */
struct hook_fd *hook__fd_peek(int fd);
/* The entry of fd, made if missing, classified or not; NULL out of range. */
struct hook_fd *hook__fd_slot(int fd);
/* Records a new fd made by a hooked call (flags as above, KNOWN added). */
void hook__fd_new(int fd, unsigned flags);
/* Copies what the table knows of from to to (dup). */
void hook__fd_copy(int from, int to);

/* Whether a call on fd from outside a coroutine must emulate blocking: the
 * hooks made it non-blocking behind its user's back. */
extern int hook__any_forced; /* set once any fd was forced: saves lookups */

static inline int hook__fd_forced(int fd)
{
    if (!__atomic_load_n(&hook__any_forced, __ATOMIC_RELAXED))
        return 0;
    struct hook_fd *e = hook__fd_peek(fd);
    return e &&
           (e->flags & (HOOK_FD_FORCED | HOOK_FD_NONBLOCK)) == HOOK_FD_FORCED;
}

/* Makes fd's file really non-blocking for a coroutine's wait (pipes, ttys,
 * listeners: calls with no per-call MSG_DONTWAIT). Returns 0 or -1. */
int hook__fd_force(int fd, struct hook_fd *e);

/* Outside a coroutine, a forced fd answered EAGAIN: waits the way the
 * blocking call would have (poll, honouring the fd's timeout). Returns 0 to
 * retry, -1 with errno EAGAIN at the timeout. */
int hook__block_thread(int fd, struct hook_fd *e, short events);

/* In a coroutine: waits until fd is ready for events (CO_READABLE or
 * CO_WRITABLE) or timeout_ms passes (0 = none). Returns 0, or -1 with errno:
 * EAGAIN at the timeout (what SO_RCVTIMEO gives), ECANCELED, EBADF if the fd
 * was closed meanwhile. */
int hook__wait(struct co *co, int fd, int events, int32_t timeout_ms);

/* The calling coroutine's wait on fd (fdio.c): links co on the fd's
 * waiters so a close wakes it with EBADF. */
int fdio__wait(struct co *self, int fd, int events, int64_t deadline);

/* ev_io_set(io, fd, mask) for a watcher about to start on loop, but
 * asking libev to register fd with epoll afresh only if loop has not
 * heard of this file with the number yet (fdio.c says why). */
void fdio__io_set(struct ev_loop *loop, ev_io *io, int fd, int mask);

#endif
