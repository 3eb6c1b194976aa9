/*
 * co_wait_any / co_wait_next: wait for the first of several objects
 * (gevent.wait(count=1) and iwait; see coserve.h for how it differs).
 *
 * One pass checks every entry (one poll() for the fds); if none is ready,
 * a wait_node per entry goes on the object's watchers list (an ev_io for
 * an fd), the coroutine parks once, and every node comes off again: O(n)
 * per call, and the nodes sit on the stack up to CO_WAIT_STACK entries.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>

#include "core/coro.h"
#include "core/hook_libc.h"
#include "core/wait.h"

void wait__notify(struct list *watchers)
{
    for (struct list *n = watchers->next; n != watchers; n = n->next) {
        struct wait_node *w = list_entry(n, struct wait_node, link);
        w->fired = 1;
        if (w->first && *w->first < 0 && w->co->state == CORO_WAITING)
            *w->first = w->index;
        coro__wake(w->co, 0); /* does nothing if it is already awake */
    }
}

static void wait_fd_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    ev_io_stop(loop, io);
    struct wait_node *w = list_entry(io, struct wait_node, io);
    /* EV_ERROR (the fd was closed): ready, so the next call says why */
    w->fired = (revents & (EV_READ | EV_ERROR) ? CO_READABLE : 0) |
               (revents & (EV_WRITE | EV_ERROR) ? CO_WRITABLE : 0);
    if (w->first && *w->first < 0 && w->co->state == CORO_WAITING)
        *w->first = w->index;
    coro__wake(w->co, 0);
}

/* EINVAL for an entry that names nothing to wait for; 0 if it is fine. */
static int wait_check(struct co *self, const struct co_waitable *e)
{
    switch (e->kind) {
    case CO_WAIT_NONE:
        return 0;
    case CO_WAIT_CO:
        if (e->co == self)
            return EDEADLK;
        return e->co ? 0 : EINVAL;
    case CO_WAIT_EVENT:
        return e->event ? 0 : EINVAL;
    case CO_WAIT_SEM:
        return e->sem ? 0 : EINVAL;
    case CO_WAIT_CHAN:
        return e->chan && (e->events & (CO_READABLE | CO_WRITABLE)) ? 0
                                                                    : EINVAL;
    case CO_WAIT_FD:
        return e->fd >= 0 && (e->events & (CO_READABLE | CO_WRITABLE)) ? 0
                                                                       : EINVAL;
    default:
        return EINVAL;
    }
}

/* What entry e is ready for now (fds: what its node saw). */
static int wait_ready(const struct co_waitable *e, const struct wait_node *w)
{
    switch (e->kind) {
    case CO_WAIT_CO:
        return e->co->state == CORO_DONE ? CO_READABLE : 0;
    case CO_WAIT_EVENT:
        return event__ready(e->event);
    case CO_WAIT_SEM:
        return sem__ready(e->sem);
    case CO_WAIT_CHAN:
        return chan__ready(e->chan) & e->events;
    case CO_WAIT_FD:
        return w->fired & e->events;
    default:
        return 0;
    }
}

/* Sets every revents; returns `prefer` if it is ready, else the lowest
 * ready index, else -1. */
static int wait_scan(struct co_waitable *w, size_t n, struct wait_node *nodes,
                     int prefer)
{
    int found = -1;
    for (size_t i = 0; i < n; i++) {
        w[i].revents = wait_ready(&w[i], &nodes[i]);
        if (w[i].revents && found < 0)
            found = (int)i;
    }
    if (prefer >= 0 && w[prefer].revents)
        return prefer;
    return found;
}

/* The fds' state before any wait: one poll() over them, its answers kept
 * in their nodes as if their watchers had fired. */
static int wait_poll_fds(struct co_waitable *w, size_t n,
                         struct wait_node *nodes, size_t nfds)
{
    struct pollfd stack[CO_WAIT_STACK], *p = stack;
    if (nfds > CO_WAIT_STACK && !(p = malloc(nfds * sizeof *p)))
        return -1;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (w[i].kind == CO_WAIT_FD)
            p[k++] = (struct pollfd){
                .fd = w[i].fd,
                .events = (short)(((w[i].events & CO_READABLE) ? POLLIN : 0) |
                                  ((w[i].events & CO_WRITABLE) ? POLLOUT : 0))};
    int rc = hook__libc.poll(p, (nfds_t)nfds, 0);
    if (rc > 0) {
        k = 0;
        for (size_t i = 0; i < n; i++) {
            if (w[i].kind != CO_WAIT_FD)
                continue;
            short re = p[k++].revents;
            /* hangups and errors count as ready, as for a blocked read */
            int bad = re & (POLLERR | POLLHUP | POLLNVAL);
            nodes[i].fired = ((re & POLLIN) || bad ? CO_READABLE : 0) |
                             ((re & POLLOUT) || bad ? CO_WRITABLE : 0);
        }
    }
    if (p != stack)
        free(p);
    return rc < 0 ? -1 : 0;
}

static void wait_arm(struct co *self, struct co_waitable *w, size_t n,
                     struct wait_node *nodes, int *first)
{
    for (size_t i = 0; i < n; i++) {
        struct wait_node *nd = &nodes[i];
        nd->co = self;
        nd->first = first;
        nd->index = (int)i;
        list_init(&nd->link);
        struct list *watchers = NULL;
        switch (w[i].kind) {
        case CO_WAIT_CO:
            watchers = &w[i].co->done_watchers;
            break;
        case CO_WAIT_EVENT:
            watchers = event__watchers(w[i].event);
            break;
        case CO_WAIT_SEM:
            watchers = sem__watchers(w[i].sem);
            break;
        case CO_WAIT_CHAN:
            watchers = chan__watchers(w[i].chan);
            break;
        case CO_WAIT_FD:
            ev_init(&nd->io, wait_fd_cb);
            fdio__io_set(self->hub->loop, &nd->io, w[i].fd,
                         ((w[i].events & CO_READABLE) ? EV_READ : 0) |
                             ((w[i].events & CO_WRITABLE) ? EV_WRITE : 0));
            ev_io_start(self->hub->loop, &nd->io);
            break;
        }
        if (watchers)
            list_push_back(watchers, &nd->link);
    }
}

static void wait_disarm(struct co *self, struct co_waitable *w, size_t n,
                        struct wait_node *nodes)
{
    for (size_t i = 0; i < n; i++) {
        if (list_linked(&nodes[i].link))
            list_remove(&nodes[i].link);
        if (w[i].kind == CO_WAIT_FD)
            ev_io_stop(self->hub->loop, &nodes[i].io);
    }
}

int co_wait_any(struct co_waitable *w, size_t n, int64_t deadline)
{
    return wait__any(w, n, deadline, 0);
}

int wait__any(struct co_waitable *w, size_t n, int64_t deadline,
              int fds_not_ready)
{
    struct co *self = coro__self("co_wait_any");
    size_t active = 0, nfds = 0;
    for (size_t i = 0; i < n; i++) {
        int err = wait_check(self, &w[i]);
        if (err) {
            errno = err;
            return -1;
        }
        active += w[i].kind != CO_WAIT_NONE;
        nfds += w[i].kind == CO_WAIT_FD;
    }
    if (!active) {
        errno = ENOENT;
        return -1;
    }
    if (coro__cancel_pending(self)) {
        errno = ECANCELED;
        return -1;
    }
    struct wait_node stack[CO_WAIT_STACK], *nodes = stack;
    if (n > CO_WAIT_STACK && !(nodes = malloc(n * sizeof *nodes))) {
        errno = ENOMEM;
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        nodes[i].fired = 0;
    int found = -1;
    if (nfds && !fds_not_ready && wait_poll_fds(w, n, nodes, nfds) < 0)
        goto out;
    found = wait_scan(w, n, nodes, -1);
    if (found < 0) {
        int first = -1;
        wait_arm(self, w, n, nodes, &first);
        /* a wake means "maybe": another coroutine may have taken what
         * woke us before we ran, so check again and park again if so */
        while (found < 0 && coro__park(self, deadline, 0) == 0) {
            found = wait_scan(w, n, nodes, first);
            first = -1;
        }
        int err = errno;
        wait_disarm(self, w, n, nodes);
        errno = err;
    }
out:
    if (nodes != stack) {
        int err = errno;
        free(nodes);
        errno = err;
    }
    return found;
}

int co_wait_next(struct co_waitable *w, size_t n, int64_t deadline)
{
    int i = co_wait_any(w, n, deadline);
    if (i >= 0)
        w[i].kind = CO_WAIT_NONE;
    return i;
}
