/*
 * Monkey patching, part one: finding libc's functions, the fd table, and
 * the bookkeeping hooks that keep each fd's user-visible semantics (see
 * hook.h). The waiting hooks are in hook_io.c, hook_time.c, hook_dns.c.
 */
#include "core/hook.h"
#include "core/hook_libc.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/coro.h"
#include "core/log.h"

struct hook_libc hook__libc;
int hook__any_forced;

/* In the sanitizer build, libc's read is wrapped by AddressSanitizer's
 * interceptor (a weak "read" our hook replaces). Calling the interceptor
 * rather than libc keeps the sanitizer's checks of every buffer the hooked
 * call touches; it calls libc in turn. */
static void *hook_find(const char *name)
{
#ifdef COSERVE_ASAN
    char alias[64] = "__interceptor_";
    strncat(alias, name, sizeof alias - strlen(alias) - 1);
    void *p = dlsym(RTLD_DEFAULT, alias);
    if (p)
        return p;
#endif
    void *p2 = dlsym(RTLD_NEXT, name);
    if (!p2)
        log__fatal("hooks: libc has no %s", name);
    return p2;
}

#define HOOK_FIND(name) *(void **)&hook__libc.name = hook_find(#name)

/* Runs before main (and so before any thread), and again from the first
 * hook called if a library's constructor got there first. */
__attribute__((constructor)) void hook__init(void)
{
    if (hook__libc.close)
        return;
    HOOK_FIND(read);
    HOOK_FIND(readv);
    HOOK_FIND(recv);
    HOOK_FIND(recvfrom);
    HOOK_FIND(recvmsg);
    HOOK_FIND(write);
    HOOK_FIND(writev);
    HOOK_FIND(send);
    HOOK_FIND(sendto);
    HOOK_FIND(sendmsg);
    HOOK_FIND(accept);
    HOOK_FIND(accept4);
    HOOK_FIND(connect);
    HOOK_FIND(socket);
    HOOK_FIND(socketpair);
    HOOK_FIND(pipe);
    HOOK_FIND(pipe2);
    HOOK_FIND(eventfd);
    HOOK_FIND(dup);
    HOOK_FIND(dup2);
    HOOK_FIND(dup3);
    HOOK_FIND(fcntl);
    HOOK_FIND(ioctl);
    HOOK_FIND(setsockopt);
    HOOK_FIND(sleep);
    HOOK_FIND(usleep);
    HOOK_FIND(nanosleep);
    HOOK_FIND(clock_nanosleep);
    HOOK_FIND(poll);
    HOOK_FIND(ppoll);
    HOOK_FIND(select);
    HOOK_FIND(pselect);
    HOOK_FIND(getaddrinfo);
    HOOK_FIND(getnameinfo);
    HOOK_FIND(gethostbyname);
    HOOK_FIND(gethostbyname_r);
    HOOK_FIND(close); /* last: it marks the table complete */
}

/* ---- the fd table -------------------------------------------------- */

/* Pages of entries, allocated on first touch and never freed, so a
 * lookup needs no lock: two loads. 1024 pages of 1024 cover Linux's
 * largest fd (nr_open defaults to 2^20). */
#define HOOK_PAGE_BITS 10
#define HOOK_PAGE (1 << HOOK_PAGE_BITS)
#define HOOK_PAGES 1024

static struct hook_fd *hook_pages[HOOK_PAGES];

struct hook_fd *hook__fd_peek(int fd)
{
    if (fd < 0 || fd >= HOOK_PAGE * HOOK_PAGES)
        return NULL;
    struct hook_fd *page =
        __atomic_load_n(&hook_pages[fd >> HOOK_PAGE_BITS], __ATOMIC_ACQUIRE);
    return page ? &page[fd & (HOOK_PAGE - 1)] : NULL;
}

struct hook_fd *hook__fd_slot(int fd)
{
    struct hook_fd *e = hook__fd_peek(fd);
    if (e || fd < 0 || fd >= HOOK_PAGE * HOOK_PAGES)
        return e;
    struct hook_fd *page = calloc(HOOK_PAGE, sizeof *page);
    if (!page)
        return NULL;
    for (int i = 0; i < HOOK_PAGE; i++)
        list_init(&page[i].waiters);
    struct hook_fd *expected = NULL;
    if (!__atomic_compare_exchange_n(&hook_pages[fd >> HOOK_PAGE_BITS],
                                     &expected, page, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
        free(page); /* another thread won the race */
    return hook__fd_peek(fd);
}

static int32_t hook_tv_ms(const struct timeval *tv)
{
    int64_t ms = (int64_t)tv->tv_sec * 1000 + (tv->tv_usec + 999) / 1000;
    return ms > INT32_MAX ? INT32_MAX : (int32_t)ms;
}

/* An fd the hooks did not see being made (inherited, or opened by a libc
 * function that calls the kernel directly): asks the kernel once. */
static void hook_fd_classify(int fd, struct hook_fd *e)
{
    struct stat st;
    int fl = hook__libc.fcntl(fd, F_GETFL);
    if (fl < 0 || fstat(fd, &st) < 0)
        return;
    unsigned flags = HOOK_FD_KNOWN | ((fl & O_NONBLOCK) ? HOOK_FD_NONBLOCK : 0);
    mode_t type = st.st_mode & S_IFMT;
    if (type == S_IFSOCK) {
        int st_type = 0;
        struct timeval rcv = {0, 0}, snd = {0, 0};
        socklen_t len = sizeof st_type;
        getsockopt(fd, SOL_SOCKET, SO_TYPE, &st_type, &len);
        len = sizeof rcv;
        getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rcv, &len);
        len = sizeof snd;
        getsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &snd, &len);
        e->rcv_ms = hook_tv_ms(&rcv);
        e->snd_ms = hook_tv_ms(&snd);
        flags |= HOOK_FD_SOCKET | HOOK_FD_POLLABLE |
                 (st_type == SOCK_STREAM ? HOOK_FD_STREAM : 0);
    } else if (type == S_IFIFO || type == S_IFCHR || type == 0) {
        /* pipes, ttys, and anonymous inodes (eventfd, timerfd, signalfd);
         * regular files and directories never wait in poll's sense */
        flags |= HOOK_FD_POLLABLE | (type == S_IFIFO ? HOOK_FD_STREAM : 0);
        e->rcv_ms = e->snd_ms = 0;
    } else {
        e->rcv_ms = e->snd_ms = 0;
    }
    e->flags = (uint8_t)flags;
}

struct hook_fd *hook__fd(int fd)
{
    struct hook_fd *e = hook__fd_slot(fd);
    if (e && !(e->flags & HOOK_FD_KNOWN))
        hook_fd_classify(fd, e);
    if (!e || !(e->flags & HOOK_FD_KNOWN))
        return NULL;
    /* O_NONBLOCK belongs to the open file, which a dup shares: a socket's
     * (never forced) is read back from the kernel. */
    if ((e->flags & (HOOK_FD_SHARED | HOOK_FD_SOCKET)) ==
        (HOOK_FD_SHARED | HOOK_FD_SOCKET)) {
        int fl = hook__libc.fcntl(fd, F_GETFL);
        if (fl >= 0 && (fl & O_NONBLOCK))
            e->flags |= HOOK_FD_NONBLOCK;
        else if (fl >= 0)
            e->flags &= (uint8_t)~HOOK_FD_NONBLOCK;
    }
    return e;
}

void hook__fd_new(int fd, unsigned flags)
{
    struct hook_fd *e = hook__fd_slot(fd);
    if (!e)
        return;
    e->flags = (uint8_t)(flags | HOOK_FD_KNOWN);
    e->rcv_ms = e->snd_ms = 0;
    e->gen++;
}

void hook__fd_copy(int from, int to)
{
    struct hook_fd *src = hook__fd_peek(from), *dst = hook__fd_slot(to);
    if (!dst)
        return;
    if (src && (src->flags & HOOK_FD_KNOWN))
        src->flags |= HOOK_FD_SHARED;
    dst->gen++;
    dst->flags = src ? src->flags : 0;
    dst->rcv_ms = src ? src->rcv_ms : 0;
    dst->snd_ms = src ? src->snd_ms : 0;
}

void hook__fd_forget(int fd)
{
    struct hook_fd *e = hook__fd_peek(fd);
    if (!e)
        return;
    e->flags = 0;
    e->gen++;
    /* Only this thread's coroutines can be woken from here; an fd is
     * waited on by the hub that uses it. Their watchers stop now, while
     * the fd is still open, as libev requires. */
    struct hub *hub = hub__self;
    for (struct list *n = e->waiters.next; n != &e->waiters;) {
        struct co *co = list_entry(n, struct co, wait_link);
        n = n->next;
        if (co->hub != hub)
            continue;
        ev_io_stop(hub->loop, &co->io);
        coro__wake(co, EBADF);
    }
}

int hook__fd_force(int fd, struct hook_fd *e)
{
    if (e->flags & (HOOK_FD_FORCED | HOOK_FD_NONBLOCK))
        return 0;
    int fl = hook__libc.fcntl(fd, F_GETFL);
    if (fl < 0 || hook__libc.fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -1;
    e->flags |= HOOK_FD_FORCED;
    __atomic_store_n(&hook__any_forced, 1, __ATOMIC_RELAXED);
    return 0;
}

int hook__block_thread(int fd, struct hook_fd *e, short events)
{
    struct pollfd p = {.fd = fd, .events = events};
    int32_t ms = (events & POLLOUT) ? e->snd_ms : e->rcv_ms;
    int r;
    do
        r = hook__libc.poll(&p, 1, ms ? ms : -1);
    while (r < 0 && errno == EINTR);
    if (r == 0) {
        errno = EAGAIN;
        return -1;
    }
    return r < 0 ? -1 : 0;
}

int hook__wait(struct co *co, int fd, int events, int32_t timeout_ms)
{
    if (fdio__wait(co, fd, events, timeout_ms ? co_deadline(timeout_ms) : -1) <
        0) {
        if (errno == ETIMEDOUT)
            errno = EAGAIN;
        return -1;
    }
    return 0;
}

/* ---- bookkeeping hooks: every thread, every context ---------------- */

static unsigned hook_sock_flags(int type)
{
    int base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
    return HOOK_FD_SOCKET | HOOK_FD_POLLABLE |
           (base == SOCK_STREAM ? HOOK_FD_STREAM : 0) |
           ((type & SOCK_NONBLOCK) ? HOOK_FD_NONBLOCK : 0);
}

HOOK_PUBLIC int socket(int domain, int type, int protocol)
{
    hook__init();
    int fd = hook__libc.socket(domain, type, protocol);
    if (fd >= 0)
        hook__fd_new(fd, hook_sock_flags(type));
    return fd;
}

HOOK_PUBLIC int socketpair(int domain, int type, int protocol, int sv[2])
{
    hook__init();
    int r = hook__libc.socketpair(domain, type, protocol, sv);
    if (r == 0) {
        hook__fd_new(sv[0], hook_sock_flags(type));
        hook__fd_new(sv[1], hook_sock_flags(type));
    }
    return r;
}

HOOK_PUBLIC int pipe2(int fds[2], int flags)
{
    hook__init();
    int r = hook__libc.pipe2(fds, flags);
    if (r == 0) {
        unsigned f = HOOK_FD_POLLABLE | HOOK_FD_STREAM |
                     ((flags & O_NONBLOCK) ? HOOK_FD_NONBLOCK : 0);
        hook__fd_new(fds[0], f);
        hook__fd_new(fds[1], f);
    }
    return r;
}

HOOK_PUBLIC int pipe(int fds[2])
{
    return pipe2(fds, 0);
}

HOOK_PUBLIC int eventfd(unsigned initval, int flags)
{
    hook__init();
    int fd = hook__libc.eventfd(initval, flags);
    if (fd >= 0)
        hook__fd_new(fd, HOOK_FD_POLLABLE |
                             ((flags & EFD_NONBLOCK) ? HOOK_FD_NONBLOCK : 0));
    return fd;
}

HOOK_PUBLIC int dup(int fd)
{
    hook__init();
    int r = hook__libc.dup(fd);
    if (r >= 0)
        hook__fd_copy(fd, r);
    return r;
}

HOOK_PUBLIC int dup3(int oldfd, int newfd, int flags)
{
    hook__init();
    if (oldfd != newfd)
        hook__fd_forget(newfd); /* dup3 closes what newfd was */
    int r = hook__libc.dup3(oldfd, newfd, flags);
    if (r >= 0)
        hook__fd_copy(oldfd, r);
    return r;
}

HOOK_PUBLIC int dup2(int oldfd, int newfd)
{
    hook__init();
    if (oldfd == newfd)
        return hook__libc.dup2(oldfd, newfd);
    hook__fd_forget(newfd);
    int r = hook__libc.dup2(oldfd, newfd);
    if (r >= 0)
        hook__fd_copy(oldfd, r);
    return r;
}

/* fcntl's third argument is an int or a pointer by command; like glibc,
 * pass it on as a pointer-sized value. F_SETFL on an fd the hooks made
 * non-blocking keeps O_NONBLOCK in the kernel and records the user's wish;
 * F_GETFL shows the user's view. */
static int hook_fcntl(int fd, int cmd, void *arg)
{
    hook__init();
    struct hook_fd *e;
    switch (cmd) {
    case F_SETFL: {
        int fl = (int)(intptr_t)arg;
        e = hook__fd(fd);
        if (e) {
            if (fl & O_NONBLOCK)
                e->flags |= HOOK_FD_NONBLOCK;
            else
                e->flags &= (uint8_t)~HOOK_FD_NONBLOCK;
            if (e->flags & HOOK_FD_FORCED)
                fl |= O_NONBLOCK;
        }
        return hook__libc.fcntl(fd, cmd, fl);
    }
    case F_GETFL: {
        int fl = hook__libc.fcntl(fd, cmd);
        e = hook__fd_peek(fd);
        if (fl >= 0 && e && (e->flags & HOOK_FD_KNOWN) &&
            (e->flags & (HOOK_FD_FORCED | HOOK_FD_NONBLOCK)) == HOOK_FD_FORCED)
            fl &= ~O_NONBLOCK;
        return fl;
    }
    case F_DUPFD:
    case F_DUPFD_CLOEXEC: {
        int r = hook__libc.fcntl(fd, cmd, arg);
        if (r >= 0)
            hook__fd_copy(fd, r);
        return r;
    }
    default:
        return hook__libc.fcntl(fd, cmd, arg);
    }
}

HOOK_PUBLIC int fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return hook_fcntl(fd, cmd, arg);
}

HOOK_PUBLIC int fcntl64(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return hook_fcntl(fd, cmd, arg);
}

HOOK_PUBLIC int ioctl(int fd, unsigned long request, ...)
{
    hook__init();
    va_list ap;
    va_start(ap, request);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    if (request == FIONBIO && arg) {
        struct hook_fd *e = hook__fd(fd);
        if (e && (e->flags & HOOK_FD_FORCED)) {
            /* the kernel stays non-blocking; only the user's view moves */
            if (*(int *)arg)
                e->flags |= HOOK_FD_NONBLOCK;
            else
                e->flags &= (uint8_t)~HOOK_FD_NONBLOCK;
            return 0;
        }
        int r = hook__libc.ioctl(fd, request, arg);
        if (r == 0 && e) {
            if (*(int *)arg)
                e->flags |= HOOK_FD_NONBLOCK;
            else
                e->flags &= (uint8_t)~HOOK_FD_NONBLOCK;
        }
        return r;
    }
    return hook__libc.ioctl(fd, request, arg);
}

HOOK_PUBLIC int setsockopt(int fd, int level, int name, const void *val,
                           socklen_t len)
{
    hook__init();
    int r = hook__libc.setsockopt(fd, level, name, val, len);
    if (r == 0 && level == SOL_SOCKET &&
        (name == SO_RCVTIMEO || name == SO_SNDTIMEO) &&
        len >= sizeof(struct timeval)) {
        struct hook_fd *e = hook__fd(fd);
        if (e)
            *(name == SO_RCVTIMEO ? &e->rcv_ms : &e->snd_ms) = hook_tv_ms(val);
    }
    return r;
}

HOOK_PUBLIC int close(int fd)
{
    hook__init();
    hook__fd_forget(fd);
    return hook__libc.close(fd);
}
