/*
 * The server loop: accepting, the pools' trim, and the graceful stop.
 *
 * Everything runs in one hub (co_run). Its main coroutine sets up the
 * accept watcher, then waits for a stop signal; accepting happens in the
 * hub's callbacks, requests in their own coroutines (conn.c).
 */
#include "http/server.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
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
#include "worker.h"

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

/* ---- stopping ------------------------------------------------------ */

/* Signals arrive on any thread at any time: the handler only records them
 * and pokes the hub through an ev_async (async-signal-safe), and the hub
 * acts on them in its own time. */
enum { SIG_STOP = 1, SIG_FAST = 2, SIG_REOPEN = 4 };

static struct {
    struct ev_loop *loop;
    ev_async *async;
    int pending;
} server_signal;

static void server_on_signal(int signo)
{
    int bit = signo == SIGQUIT   ? SIG_FAST
              : signo == SIGUSR1 ? SIG_REOPEN
                                 : SIG_STOP;
    __atomic_fetch_or(&server_signal.pending, bit, __ATOMIC_SEQ_CST);
    if (server_signal.async)
        ev_async_send(server_signal.loop, server_signal.async);
}

struct server_main {
    struct http_server *srv;
    struct worker_config wc;
    co_event_t *stop;
    ev_async stop_async;
};

/* SIGUSR1: point the access log at a fresh file (after logrotate moved the
 * old one), keeping the same FILE and fd number. */
static void server_reopen_log(struct server_main *m)
{
    struct http_server *srv = m->srv;
    const char *path = m->wc.access_log_path;
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

static void server_stop_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)loop;
    (void)revents;
    struct server_main *m = list_entry(w, struct server_main, stop_async);
    int pending =
        __atomic_exchange_n(&server_signal.pending, 0, __ATOMIC_SEQ_CST);
    if (pending & SIG_REOPEN)
        server_reopen_log(m);
    if (pending & SIG_FAST)
        m->wc.grace_ms = 0;
    if (pending & (SIG_STOP | SIG_FAST))
        co_event_set(m->stop);
}

static void *server_main(void *arg)
{
    struct server_main *m = arg;
    struct http_server *srv = m->srv;
    struct ev_loop *loop = srv->hub->loop;
    if (m->wc.on_start)
        m->wc.on_start(m->wc.ctx);
    for (unsigned i = 0; i < srv->nlisteners; i++)
        ev_io_init(&srv->listeners[i].io, server_accept_cb,
                   srv->listeners[i].fd, EV_READ);
    ev_init(&srv->accept_pause, server_accept_resume);
    srv->accept_logged = co_now() - SERVER_ACCEPT_LOG_MS;
    listen__accepting(srv, 1);
    listen__log_serving(srv);

    co_event_wait(m->stop, -1);
    log_info("stopping (grace %lld ms for %u requests)",
             (long long)m->wc.grace_ms, srv->active);
    if (m->wc.on_drain)
        m->wc.on_drain(m->wc.ctx, m->wc.grace_ms);

    /* Stop accepting. Busy connections close after their current response
     * (draining turns keep-alive off); idle kept-alive ones get a moment
     * for a request already on its way, then close (conn__drain). A
     * connection accepted but not yet served is kept for its first request:
     * its client has sent, or is sending, a request it expects answered. */
    srv->draining = 1;
    listen__accepting(srv, 0);
    ev_timer_stop(loop, &srv->accept_pause);
    for (unsigned i = 0; i < srv->nlisteners; i++) {
        close(srv->listeners[i].fd);
        srv->listeners[i].fd = -1;
    }
    struct list *n, *next;
    for (n = srv->conns.next; n != &srv->conns; n = next) {
        next = n->next;
        conn__drain(list_entry(n, struct conn, link));
    }
    srv->idle_event = co_event_new();
    if (srv->open > 0 && srv->idle_event)
        co_event_wait(srv->idle_event, co_deadline(m->wc.grace_ms));
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
    if (m->wc.on_stop)
        m->wc.on_stop(m->wc.ctx);
    return NULL;
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
    bufpool__init(&srv->buf_pool, HTTP_BUF_SIZE);
    srv->evict_logged = co_now() - 1000;
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
    bufpool__free(&srv->buf_pool, (size_t)-1);
    free(srv->listeners);
    srv->listeners = NULL;
    srv->nlisteners = 0;
}

/* Runs the server inside the hub: the struct lives on main's stack. */
static void *server_hub_main(void *arg)
{
    const struct http_config *cfg = ((void **)arg)[0];
    const struct worker_config *wc = ((void **)arg)[1];
    const int *listen_fds = ((void **)arg)[2];
    unsigned nlisten = *(unsigned *)((void **)arg)[3];
    struct http_server srv;
    http__server_init(&srv, cfg, listen_fds, nlisten);

    struct server_main m = {.srv = &srv, .wc = *wc, .stop = co_event_new()};
    ev_async_init(&m.stop_async, server_stop_cb);
    ev_async_start(srv.hub->loop, &m.stop_async);
    ev_unref(srv.hub->loop);
    server_signal.loop = srv.hub->loop;
    server_signal.async = &m.stop_async;
    srv.stop_event = m.stop;
    if (wc->max_requests) {
        srand((unsigned)getpid() ^ (unsigned)co_now());
        srv.max_served = wc->max_requests +
                         (wc->max_requests_jitter
                              ? (uint64_t)rand() % (wc->max_requests_jitter + 1)
                              : 0);
    }
    struct sigaction sa = {.sa_handler = server_on_signal};
    sigemptyset(&sa.sa_mask);
    int sigs[] = {SIGTERM, SIGINT, SIGQUIT, SIGUSR1};
    sigset_t set;
    sigemptyset(&set);
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
        sigaction(sigs[i], &sa, NULL);
        sigaddset(&set, sigs[i]);
    }
    /* A master forks workers with these blocked, so a TERM that arrives
     * while a worker starts waits here instead of killing it. */
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);

    server_main(&m);

    /* Ignored, not back to the default: a worker that is already on its
     * way out (retired by a reload) still gets the master's TERM when a
     * stop begins, and must not die of it (the master would count a
     * worker killed by a signal as a failed stop). */
    sa.sa_handler = SIG_IGN;
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
        sigaction(sigs[i], &sa, NULL);
    server_signal.async = NULL;
    ev_ref(srv.hub->loop);
    ev_async_stop(srv.hub->loop, &m.stop_async);
    co_event_free(m.stop);
    http__server_fini(&srv);
    return NULL;
}

int http__serve(const struct http_config *cfg, const struct worker_config *wc,
                const int *listen_fds, unsigned nlisten)
{
    signal(SIGPIPE, SIG_IGN);
    void *args[4] = {(void *)cfg, (void *)wc, (void *)listen_fds, &nlisten};
    return co_run(server_hub_main, args, NULL);
}
