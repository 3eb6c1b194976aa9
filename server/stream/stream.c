/* Stream listeners and their connections (see stream.h). */
#include "stream/stream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/coro.h"
#include "core/hook_libc.h"
#include "core/log.h"

/* Out of fds (or memory), accepting pauses this long instead of spinning
 * on a listener that stays readable (as http/server.c does); a closing
 * connection resumes it sooner. Errors are logged at most once a second. */
#define STREAM_ACCEPT_PAUSE_MS 100
#define STREAM_ACCEPT_LOG_MS 1000

struct stream_listener {
    struct list link; /* set->listeners */
    struct stream_set *set;
    struct stream_config cfg;
    int fd; /* -1 once closed by a drain */
    ev_io io;
    ev_timer pause;
    int accepting;
    unsigned open;     /* connections of this listener */
    struct list conns; /* struct stream_conn, by link */
    int64_t err_logged;
    unsigned err_quiet;
};

struct stream_conn {
    struct list link; /* l->conns */
    struct stream_listener *l;
    struct co *co;
    int fd;
    struct sockaddr_storage peer;
    socklen_t peer_len;
    char desc[96]; /* "stream NAME: PEER", for crash and block reports */
};

void stream__set_init(struct stream_set *set)
{
    memset(set, 0, sizeof *set);
    list_init(&set->listeners);
    set->deadline = -1;
}

/* ---- connections ---------------------------------------------------- */

/* The watchdog's and crash report's name for a connection's coroutine.
 * Runs in a signal handler: copies bytes only. */
static size_t stream_describe(void *arg, char *buf, size_t len)
{
    const struct stream_conn *c = arg;
    size_t n = strnlen(c->desc, sizeof c->desc);
    if (!len)
        return 0;
    if (n >= len)
        n = len - 1;
    memcpy(buf, c->desc, n);
    buf[n] = '\0';
    return n;
}

static void stream_peer_text(struct stream_conn *c)
{
    char addr[INET6_ADDRSTRLEN] = "unix";
    int port = 0;
    if (c->peer.ss_family == AF_INET) {
        struct sockaddr_in *in = (void *)&c->peer;
        inet_ntop(AF_INET, &in->sin_addr, addr, sizeof addr);
        port = ntohs(in->sin_port);
    } else if (c->peer.ss_family == AF_INET6) {
        struct sockaddr_in6 *in6 = (void *)&c->peer;
        inet_ntop(AF_INET6, &in6->sin6_addr, addr, sizeof addr);
        port = ntohs(in6->sin6_port);
    }
    snprintf(c->desc, sizeof c->desc, "stream %s: %s:%d", c->l->cfg.name, addr,
             port);
}

/* A closed connection frees a slot and an fd: accepting resumes if the
 * cap or an fd shortage had paused it. */
static void stream_conn_end(struct stream_conn *c)
{
    struct stream_listener *l = c->l;
    struct stream_set *set = l->set;
    close(c->fd);
    list_remove(&c->link);
    l->open--;
    set->open--;
    free(c);
    if (!l->accepting && !set->draining && l->fd >= 0) {
        struct ev_loop *loop = hub__self->loop;
        ev_timer_stop(loop, &l->pause);
        ev_io_start(loop, &l->io);
        l->accepting = 1;
    }
    if (set->draining && set->open == 0 && set->idle)
        co_event_set(set->idle);
}

/* A connection's coroutine: the app's handler, then the close. */
static void *stream_serve(void *arg)
{
    struct stream_conn *c = arg;
    struct stream_listener *l = c->l;
    struct co *self = co_current();
    co_set_name(self, l->cfg.name);
    self->describe = stream_describe;
    self->describe_arg = c;
    errno = 0;
    int rc = l->cfg.handler(c->fd, (struct sockaddr *)&c->peer, c->peer_len);
    int err = errno;
    self->describe = NULL;
    if (rc != 0 && !(err == ECANCELED && l->set->draining))
        log_warn("%s: the handler failed: %s", c->desc,
                 err ? strerror(err) : "no errno");
    stream_conn_end(c);
    return NULL;
}

/* Gives an accepted socket its semantics for the app: non-blocking in the
 * kernel (the co_* calls need it), but blocking as far as the hooks know,
 * so a plain read or write waits in the coroutine; SO_SNDTIMEO is the
 * write timeout, so a peer that stops reading cannot hold a writer for
 * ever. */
static void stream_fd_setup(int fd, const struct stream_config *cfg)
{
    hook__fd_new(fd, HOOK_FD_SOCKET | HOOK_FD_POLLABLE | HOOK_FD_STREAM);
    struct hook_fd *e = hook__fd_peek(fd);
    if (e) {
        e->flags |= HOOK_FD_FORCED;
        int64_t ms = cfg->write_timeout_ms;
        e->snd_ms = ms > 0 && ms < INT32_MAX ? (int32_t)ms : 0;
        __atomic_store_n(&hook__any_forced, 1, __ATOMIC_RELAXED);
    }
}

static void stream_conn_start(struct stream_listener *l, int fd,
                              const struct sockaddr_storage *peer,
                              socklen_t len)
{
    struct stream_conn *c = calloc(1, sizeof *c);
    if (!c) {
        log_error("stream %s: no memory for a connection", l->cfg.name);
        close(fd);
        return;
    }
    c->l = l;
    c->fd = fd;
    c->peer = *peer;
    c->peer_len = len;
    stream_peer_text(c);
    if (peer->ss_family == AF_INET || peer->ss_family == AF_INET6) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    stream_fd_setup(fd, &l->cfg);
    c->co = coro__spawn(hub__self, NULL, stream_serve, c);
    if (!c->co) {
        log_error("%s: no coroutine: %s", c->desc, strerror(errno));
        close(fd);
        free(c);
        return;
    }
    c->co->detached = 1;
    list_push_back(&l->conns, &c->link);
    l->open++;
    l->set->open++;
}

/* ---- accepting ------------------------------------------------------ */

static void stream_accept_stop(struct stream_listener *l)
{
    ev_io_stop(hub__self->loop, &l->io);
    l->accepting = 0;
}

static void stream_accept_failed(struct stream_listener *l, int err)
{
    int64_t now = co_now();
    if (now - l->err_logged >= STREAM_ACCEPT_LOG_MS) {
        log_error("stream %s: accept: %s (and %u more since the last report)",
                  l->cfg.name, strerror(err), l->err_quiet);
        l->err_logged = now;
        l->err_quiet = 0;
    } else {
        l->err_quiet++;
    }
    if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        stream_accept_stop(l);
        ev_timer_set(&l->pause, STREAM_ACCEPT_PAUSE_MS / 1000.0, 0.);
        ev_timer_start(hub__self->loop, &l->pause);
    }
}

static void stream_accept_resume(struct ev_loop *loop, ev_timer *w, int rev)
{
    (void)rev;
    struct stream_listener *l = list_entry(w, struct stream_listener, pause);
    if (!l->accepting && !l->set->draining && l->fd >= 0 &&
        l->open < l->cfg.max_conns) {
        ev_io_start(loop, &l->io);
        l->accepting = 1;
    }
}

/* Accepts until the backlog is empty or the listener is full; a full one
 * stops watching its socket (the rest wait in the backlog, or in another
 * worker) until a connection ends. */
static void stream_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    struct stream_listener *l = list_entry(w, struct stream_listener, io);
    for (;;) {
        if (l->open >= l->cfg.max_conns) {
            stream_accept_stop(l);
            return;
        }
        struct sockaddr_storage peer;
        socklen_t len = sizeof peer;
        int fd = accept4(l->fd, (struct sockaddr *)&peer, &len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                stream_accept_failed(l, errno);
            return;
        }
        stream_conn_start(l, fd, &peer, len);
    }
}

int stream__listen(struct stream_set *set, int fd,
                   const struct stream_config *cfg)
{
    struct stream_listener *l = calloc(1, sizeof *l);
    if (!l) {
        close(fd);
        errno = ENOMEM;
        return -1;
    }
    l->set = set;
    l->cfg = *cfg;
    if (!l->cfg.max_conns)
        l->cfg.max_conns = 1;
    l->fd = fd;
    list_init(&l->conns);
    l->err_logged = co_now() - STREAM_ACCEPT_LOG_MS;
    struct hub *hub = hub__require("stream__listen");
    ev_io_init(&l->io, stream_accept_cb, fd, EV_READ);
    ev_init(&l->pause, stream_accept_resume);
    list_push_back(&set->listeners, &l->link);
    if (set->draining) {
        close(fd);
        l->fd = -1;
        return 0;
    }
    ev_io_start(hub->loop, &l->io);
    l->accepting = 1;
    return 0;
}

/* ---- draining ------------------------------------------------------- */

void stream__drain(struct stream_set *set, int64_t grace_ms)
{
    if (set->draining)
        return;
    set->draining = 1;
    set->deadline = co_deadline(grace_ms);
    struct ev_loop *loop = hub__self->loop;
    for (struct list *n = set->listeners.next; n != &set->listeners;
         n = n->next) {
        struct stream_listener *l = list_entry(n, struct stream_listener, link);
        ev_io_stop(loop, &l->io);
        ev_timer_stop(loop, &l->pause);
        l->accepting = 0;
        /* the worker's copy: the master's stays open for the workers of
         * a reload, and is closed by the master itself at a stop */
        if (l->fd >= 0)
            close(l->fd);
        l->fd = -1;
    }
    if (!list_empty(&set->listeners))
        log_info("stream: stopped accepting (grace %lld ms for %u "
                 "connections)",
                 (long long)grace_ms, set->open);
}

void stream__finish(struct stream_set *set)
{
    stream__drain(set, 0);
    set->idle = co_event_new();
    if (set->open && set->idle)
        co_event_wait(set->idle, set->deadline);
    if (set->open) {
        log_warn("stream: grace period over: cancelling %u connections",
                 set->open);
        for (struct list *n = set->listeners.next; n != &set->listeners;
             n = n->next) {
            struct stream_listener *l =
                list_entry(n, struct stream_listener, link);
            for (struct list *k = l->conns.next; k != &l->conns; k = k->next)
                co_cancel(list_entry(k, struct stream_conn, link)->co);
        }
        /* a handler returns soon once its waits fail; one that ignores
         * ECANCELED is the master's to kill after the grace */
        if (set->idle)
            co_event_wait(set->idle, -1);
        else
            while (set->open && co_sleep(co_deadline(10)) == 0)
                ;
    }
    co_event_free(set->idle);
    set->idle = NULL;
    struct list *n;
    while ((n = list_pop_front(&set->listeners)))
        free(list_entry(n, struct stream_listener, link));
}
