/*
 * The server: accepting, the pools' trim, and the graceful stop.
 *
 * Everything runs in one hub. http__start sets up the accept watchers and
 * returns; accepting happens in the hub's callbacks, requests in their own
 * coroutines (conn.c). Whoever started it (the worker, server/worker.c)
 * decides when to stop and with what grace: http knows no signals and no
 * process.
 */
#include "http/server.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/coro.h"
#include "core/hub.h"
#include "core/log.h"
#include "core/watchdog.h"
#include "http/accesslog.h"
#include "http/conn.h"
#include "http/forwarded.h"
#include "http/listen.h"
#include "http/request.h"
#include "http/stats.h"

void http__config_defaults(struct http_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->limits.max_url = 8 * 1024;
    cfg->limits.max_head = 12 * 1024;
    cfg->limits.max_headers = 100;
    cfg->limits.max_body = 16 * 1024 * 1024;
    cfg->limits.header_timeout_ms = 10 * 1000;
    cfg->limits.body_timeout_ms = 30 * 1000;
    cfg->limits.keepalive_timeout_ms = 30 * 1000;
    cfg->limits.write_timeout_ms = 30 * 1000;
    cfg->limits.max_conns = 10000;
    forwarded__parse(&cfg->routing, "127.0.0.1,::1,unix");
}

/* ---- pools --------------------------------------------------------- */

/* The pools' trim (bufpool.c says why) runs once a second. */
#define SERVER_TRIM_S 1.0

static void server_pool_trim_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct http_server *srv = list_entry(w, struct http_server, pool_trim);
    size_t freed = bufpool__trim(&srv->conn_pool) +
                   bufpool__trim(&srv->req_pool) +
                   bufpool__trim(&srv->store_pool) +
                   bufpool__trim(&srv->buf_pool);
    freed += coro__trim(srv->hub);
#ifdef __GLIBC__
    /* free() keeps holes in the middle of the heap resident; this hands
     * their whole pages back (madvise). Only after a trim that freed
     * enough to matter: it walks the allocator's bins. */
    if (freed >= 256 * 1024)
        malloc_trim(0);
#endif
}

/* ---- accepting ----------------------------------------------------- */

/* How long accepting pauses when the process or system is out of fds (or
 * memory): the listener stays readable, so retrying at once would spin at
 * full CPU and log at every turn, as nginx learned. Closing a connection
 * also resumes accepting (conn__close), since it frees an fd. */
#define SERVER_ACCEPT_PAUSE_MS 100
#define SERVER_ACCEPT_LOG_MS 1000

static void server_accept_resume(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    (void)loop;
    listen__resume(list_entry(w, struct http_server, accept_pause));
}

/* An accept error other than "nothing to accept": logged at most once a
 * second with the count of those not logged; out of fds or memory pauses
 * accepting. */
static void server_accept_failed(struct http_server *srv, int err)
{
    int64_t now = co_now();
    if (now - srv->accept_logged >= SERVER_ACCEPT_LOG_MS) {
        if (srv->accept_quiet)
            log_error("accept: %s (and %u more since the last report)",
                      strerror(err), srv->accept_quiet);
        else
            log_error("accept: %s", strerror(err));
        srv->accept_logged = now;
        srv->accept_quiet = 0;
    } else {
        srv->accept_quiet++;
    }
    if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        listen__accepting(srv, 0);
        ev_timer_stop(srv->hub->loop, &srv->accept_pause);
        ev_timer_set(&srv->accept_pause, SERVER_ACCEPT_PAUSE_MS / 1000.0, 0.);
        ev_timer_start(srv->hub->loop, &srv->accept_pause);
    }
}

/* At --max-connections, a new client takes the slot of the connection that
 * has waited longest for a head, once that one has waited a second: slow or
 * idle clients cannot hold every slot against new ones (slowloris). When
 * none may go yet, accepting stops, the rest wait in the kernel's backlog,
 * and a timer brings accepting back when the oldest may go (a close brings
 * it back sooner). The new connection is accepted before the old one is
 * closed, so nobody is evicted for a client another worker took. */
static void server_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    struct http_listener *l = list_entry(w, struct http_listener, io);
    struct http_server *srv = l->srv;
    for (;;) {
        int full = srv->open >= srv->cfg.limits.max_conns;
        double wait_s;
        if (full && !conn__evictable(srv, &wait_s)) {
            listen__accepting(srv, 0);
            if (wait_s >= 0 && !ev_is_active(&srv->accept_pause)) {
                ev_timer_set(&srv->accept_pause, wait_s + 0.001, 0.);
                ev_timer_start(loop, &srv->accept_pause);
            }
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
                server_accept_failed(srv, errno);
            return;
        }
        if (full)
            conn__evict(srv);
        srv->accepting_on = l;
        conn__accept(srv, fd, (struct sockaddr *)&peer, len);
        srv->accepting_on = NULL;
        if (!srv->accepting)
            return; /* out of fds, or evicting stopped it */
    }
}

/* ---- starting and stopping ----------------------------------------- */

void http__start(struct http_server *srv, const struct http_config *cfg,
                 const int *listen_fds, unsigned nlisten)
{
    http__server_init(srv, cfg, listen_fds, nlisten);
    for (unsigned i = 0; i < srv->nlisteners; i++)
        ev_io_init(&srv->listeners[i].io, server_accept_cb,
                   srv->listeners[i].fd, EV_READ);
    ev_init(&srv->accept_pause, server_accept_resume);
    srv->accept_logged = co_now() - SERVER_ACCEPT_LOG_MS;
    listen__accepting(srv, 1);
    listen__log_serving(srv);
}

void http__stop(struct http_server *srv, int64_t grace_ms)
{
    struct ev_loop *loop = srv->hub->loop;
    /* WebSocket readers wait on this with their socket: the 1001 goes out
     * now, not when their handler next reads */
    if (srv->stop_event)
        co_event_set(srv->stop_event);

    /* Stop accepting. Busy connections close after their current response
     * (draining turns keep-alive off); idle kept-alive ones get a moment
     * for a request already on its way, then close (conn__drain). A
     * connection accepted but not yet served is kept for its first request:
     * its client has sent, or is sending, a request it expects answered. */
    srv->draining = 1;
    listen__accepting(srv, 0);
    ev_timer_stop(loop, &srv->accept_pause);
    for (unsigned i = 0; i < srv->nlisteners; i++) {
        if (srv->listeners[i].fd >= 0)
            close(srv->listeners[i].fd);
        srv->listeners[i].fd = -1;
    }
    struct list *n, *next;
    for (n = srv->conns.next; n != &srv->conns; n = next) {
        next = n->next;
        struct conn *c = list_entry(n, struct conn, link);
        /* an event stream never ends by itself, and its app waits on its
         * own events, which a stop does not touch: without this it would
         * hold the worker for the whole grace. Cancelled, its waits fail
         * (ECANCELED), it returns, and EventSource reconnects by itself */
        if (c->busy && c->co && c->req && c->req->res.event_stream)
            co_cancel(c->co);
        conn__drain(c);
    }
    srv->idle_event = co_event_new();
    if (srv->open > 0 && srv->idle_event)
        co_event_wait(srv->idle_event, co_deadline(grace_ms));
    if (srv->open > 0) {
        log_warn("grace period over: cancelling %u requests", srv->active);
        for (n = srv->conns.next; n != &srv->conns; n = next) {
            next = n->next;
            struct conn *c = list_entry(n, struct conn, link);
            if (c->busy && c->co)
                co_cancel(c->co);
            else
                conn__close(c);
        }
        while (srv->open > 0 && co_sleep(co_deadline(10)) == 0)
            ;
    }
    co_event_free(srv->idle_event);
    srv->idle_event = NULL;
    accesslog__flush(srv);
}

/* After logrotate moved the file: the access log points at a fresh one,
 * keeping the same FILE and fd number (lines already handed to the
 * writer thread land in the old file, as nginx's do). */
void http__reopen_log(struct http_server *srv, const char *path)
{
    if (!path || !srv->cfg.access_log)
        return;
    accesslog__flush(srv);
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        log_error("reopening %s: %s", path, strerror(errno));
        return;
    }
    dup2(fd, fileno(srv->cfg.access_log));
    close(fd);
    log_info("reopened %s", path);
}

void http__server_init(struct http_server *srv, const struct http_config *cfg,
                       const int *listen_fds, unsigned nlisten)
{
    memset(srv, 0, sizeof *srv);
    srv->cfg = *cfg;
    srv->hub = hub__require("http__server_init");
    /* crash and --timeout reports list the requests cut short */
    watchdog__set_requests_fn(srv->hub, conn__list_requests, srv);
    srv->listeners = nlisten ? calloc(nlisten, sizeof *srv->listeners) : NULL;
    if (!srv->listeners)
        nlisten = 0; /* out of memory this early: nothing to serve */
    srv->nlisteners = nlisten;
    for (unsigned i = 0; i < nlisten; i++) {
        srv->listeners[i].srv = srv;
        srv->listeners[i].fd = listen_fds[i];
        listen__local_addr(&srv->listeners[i]);
    }
    list_init(&srv->conns);
    list_init(&srv->waiting);
    bufpool__init(&srv->conn_pool, sizeof(struct conn));
    bufpool__init(&srv->req_pool, sizeof(co_request_t));
    bufpool__init(&srv->store_pool, sizeof(struct req_store));
    bufpool__init(&srv->buf_pool, HTTP_BUF_SIZE);
    srv->evict_logged = co_now() - 1000;
    srv->stop_event = co_event_new();
    ev_timer_init(&srv->pool_trim, server_pool_trim_cb, SERVER_TRIM_S,
                  SERVER_TRIM_S);
    ev_timer_start(srv->hub->loop, &srv->pool_trim);
    ev_unref(srv->hub->loop); /* the trim alone keeps no loop alive */
    accesslog__init(srv);
    srv->stats = cfg->stats;
    stats__start(srv);
}

void http__server_fini(struct http_server *srv)
{
    watchdog__set_requests_fn(srv->hub, NULL, NULL);
    struct list *n, *next;
    for (n = srv->conns.next; n != &srv->conns; n = next) {
        next = n->next;
        conn__close(list_entry(n, struct conn, link));
    }
    accesslog__fini(srv);
    stats__stop(srv);
    ev_ref(srv->hub->loop);
    ev_timer_stop(srv->hub->loop, &srv->pool_trim);
    bufpool__free(&srv->conn_pool, (size_t)-1);
    bufpool__free(&srv->req_pool, (size_t)-1);
    bufpool__free(&srv->store_pool, (size_t)-1);
    bufpool__free(&srv->buf_pool, (size_t)-1);
    co_event_free(srv->stop_event);
    srv->stop_event = NULL;
    free(srv->listeners);
    srv->listeners = NULL;
    srv->nlisteners = 0;
}
