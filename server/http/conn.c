/*
 * Connections: reading heads in the hub, serving requests in coroutines.
 *
 * In the hub's hands a connection has its read watcher and one timer (the
 * header timeout while a head is arriving, the keep-alive timeout while
 * idle). When a head is complete, or must be refused, the watcher stops and
 * a coroutine takes the connection: it runs the handler, finishes the
 * response, drains the body, logs, and then either serves the next
 * pipelined head already in the buffer or hands the connection back to the
 * hub, holding no coroutine and, when no bytes are pending, no buffer.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/coro.h"
#include "core/hook_libc.h"
#include "core/hub.h"
#include "http/accesslog.h"
#include "http/body.h"
#include "http/bufpool.h"
#include "http/conn.h"
#include "http/guard.h"
#include "http/head.h"
#include "http/http.h"
#include "http/listen.h"
#include "http/request.h"
#include "http/response.h"
#include "http/stats.h"
#include "http/ws.h"

static void conn_read_cb(struct ev_loop *loop, ev_io *w, int revents);
static void conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents);

/* ---- pools --------------------------------------------------------- */

static co_request_t *conn_req_get(struct http_server *srv)
{
    co_request_t *req = bufpool__get(&srv->req_pool);
    if (!req)
        return NULL;
    req->store = bufpool__get(&srv->store_pool);
    if (!req->store) {
        bufpool__put(&srv->req_pool, req);
        return NULL;
    }
    request__attach_store(req, req->store);
    return req;
}

static void conn_req_put(struct http_server *srv, co_request_t *req)
{
    if (req->res.out)
        bufpool__put(&srv->buf_pool, req->res.out);
    req->res.out = NULL;
    req->owner = guard__none; /* a kept pointer's calls now abort */
    req->live = 0;
    if (req->store)
        bufpool__put(&srv->store_pool, req->store);
    free(req->compact);
    req->store = NULL;
    req->compact = NULL;
    bufpool__put(&srv->req_pool, req);
}

/* Starts a request record for the head that begins at buf[0]. */
static co_request_t *conn_begin_request(struct conn *c)
{
    co_request_t *req = conn_req_get(c->srv);
    if (!req)
        return NULL;
    memset(&req->res, 0, sizeof req->res);
    req->res.status = 200;
    req->conn = c;
    req->method = NULL;
    req->path = req->path_info = req->query = NULL;
    req->script_name = "";
    req->version = 11;
    req->keep_alive = 0;
    req->expect_continue = 0;
    req->route = NULL;
    req->owner = guard__none; /* until a coroutine serves it */
    req->live = 0;
    req->body_mode = BODY_NONE;
    req->content_length = -1;
    req->body_left = req->body_read = 0;
    req->body_done = 0;
    req->body_error = 0;
    req->remote_text = NULL;
    req->timed_out = 0;
    req->client_gone = 0;
    req->ws = NULL;
    req->arena_used = 0;
    if (c->srv->log_buf || c->srv->stats) /* the log's and metrics' clock */
        clock_gettime(CLOCK_MONOTONIC, &req->start_ts);
    head__init(req);
    c->req = req;
    c->head_end = 0;
    return req;
}

/* The connection's one timer is lazy (libev's "be smart about timeouts"):
 * c->due is when it must act (monotonic ms, 0: never), and the ev_timer
 * may fire earlier than that and re-arm for the rest. Moving the deadline
 * later, or dropping it, is then a store: serving a kept-alive request
 * took an ev_timer_stop and an ev_timer_again, two updates of the loop's
 * timer heap, and now takes none.
 *
 * It fires on a 100 ms grid of the monotonic clock, never before
 * c->due: these are timeouts of seconds, and the timers of many
 * connections then fire in one loop turn instead of each waking the hub
 * on its own. At 1,000 kept-alive connections each timer fires every
 * header timeout (10 s) to re-arm, 100 fires a second at their own
 * times; on the grid, the hub's polls fell from 238 to 137 a second at
 * 1,000 connections on /sleep?ms=1000. A burst of connections timing out
 * together still spreads over 10 turns (conn_timer_spread). */
#define CONN_TIMER_GRAIN_MS 100
static void conn_timer_start(struct conn *c, int64_t now)
{
    struct ev_loop *loop = c->srv->hub->loop;
    c->fires = (c->due + CONN_TIMER_GRAIN_MS - 1) / CONN_TIMER_GRAIN_MS *
               CONN_TIMER_GRAIN_MS;
    ev_timer_stop(loop, &c->timer);
    ev_timer_set(&c->timer, (double)(c->fires - now) / 1000.0, 0.);
    ev_timer_start(loop, &c->timer);
}

/* Sets the timer to act in ms (0: never, as a 0 timeout means). */
static void conn_timer_set(struct conn *c, int64_t ms)
{
    if (ms <= 0) {
        c->due = 0;
        return;
    }
    int64_t now = hub__now(c->srv->hub);
    c->due = now + ms;
    if (ev_is_active(&c->timer) && c->fires <= c->due)
        return; /* it fires first, and re-arms */
    conn_timer_start(c, now);
}

static void conn_timer_clear(struct conn *c)
{
    c->due = 0;
}

/* The header and keep-alive timeouts get up to 10% more, at random:
 * thousands of connections accepted in the same instant (a burst, or a
 * slowloris attack) would otherwise all time out in the same loop turn,
 * each 408 costing a coroutine and a write (a 145 ms stall at 10,000).
 * Never less than asked: a client keeps the whole timeout it was given. */
static void conn_timer_spread(struct conn *c, int64_t ms)
{
    static __thread uint32_t state;
    if (!state)
        state = (uint32_t)co_now() * 2654435761u | 1;
    state ^= state << 13; /* xorshift32 */
    state ^= state >> 17;
    state ^= state << 5;
    conn_timer_set(c, ms + (int64_t)(state % (uint32_t)(ms / 10 + 1)));
}

/* Joins the hub's waiting list (its back: the list stays oldest first). */
static void conn_wait(struct conn *c)
{
    c->since = ev_now(c->srv->hub->loop);
    list_push_back(&c->srv->waiting, &c->wait_link);
}

/* ---- lifecycle ----------------------------------------------------- */

void conn__accept(struct http_server *srv, int fd, const struct sockaddr *peer,
                  socklen_t peer_len)
{
    struct conn *c = bufpool__get(&srv->conn_pool);
    if (!c) {
        close(fd);
        return;
    }
    memset(c, 0, sizeof *c);
    c->srv = srv;
    c->lst = srv->accepting_on;
    c->fd = fd;
    c->peer_family = (uint8_t)peer->sa_family;
    if (peer->sa_family == AF_INET && peer_len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const void *)peer;
        memcpy(c->peer_addr, &in->sin_addr, 4);
        c->peer_port = ntohs(in->sin_port);
    } else if (peer->sa_family == AF_INET6 &&
               peer_len >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const void *)peer;
        memcpy(c->peer_addr, &in6->sin6_addr, 16);
        c->peer_port = ntohs(in6->sin6_port);
    } else {
        c->peer_family = AF_UNIX;
    }
    if (c->peer_family != AF_UNIX) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    list_push_back(&srv->conns, &c->link);
    conn_wait(c);
    srv->open++;
    if (srv->stats)
        stats__add(&srv->stats->accepted, 1);
    ev_io_init(&c->io, conn_read_cb, fd, EV_READ);
    ev_io_start(srv->hub->loop, &c->io);
    ev_init(&c->timer, conn_timer_cb);
    /* a new connection's first head must be complete within the header
     * timeout from the accept (not from its first byte: a client that
     * waits before sending would hold the slot twice as long) */
    conn_timer_spread(c, srv->cfg.limits.header_timeout_ms);
}

void conn__close(struct conn *c)
{
    struct http_server *srv = c->srv;
    ev_io_stop(srv->hub->loop, &c->io);
    ev_timer_stop(srv->hub->loop, &c->timer);
    close(c->fd);
    if (c->req)
        conn_req_put(srv, c->req);
    if (c->buf)
        bufpool__put(&srv->buf_pool, c->buf);
    if (c->held)
        bufpool__put(&srv->buf_pool, c->held);
    list_remove(&c->link);
    if (list_linked(&c->wait_link))
        list_remove(&c->wait_link);
    srv->open--;
    bufpool__put(&srv->conn_pool, c);
    if (srv->open < srv->cfg.limits.max_conns)
        listen__resume(srv);
    if (srv->draining && srv->open == 0 && srv->idle_event)
        co_event_set(srv->idle_event);
}

/* How long an idle kept-alive connection may still send a request once a
 * graceful stop began. Its client may be sending one this very moment:
 * closing at once would lose it (a client that does not retry sees an
 * error; nginx loses these). */
#define CONN_DRAIN_IDLE_MS 1000

void conn__drain(struct conn *c)
{
    if (!c->busy && c->served && !c->req)
        conn_timer_set(c, CONN_DRAIN_IDLE_MS);
}

/* How long a connection must have waited for a head before a new client
 * may take its slot at --max-connections: long enough for any client that
 * is sending a request to have sent it, so a burst of real clients larger
 * than the cap is not churned (each evicting the one before it). */
#define CONN_EVICT_AGE_S 1.0
#define CONN_EVICT_LOG_MS 1000

int conn__evictable(struct http_server *srv, double *wait_s)
{
    *wait_s = -1;
    if (list_empty(&srv->waiting) || srv->draining)
        return 0;
    struct conn *c = list_entry(srv->waiting.next, struct conn, wait_link);
    double age = ev_now(srv->hub->loop) - c->since;
    if (age >= CONN_EVICT_AGE_S)
        return 1;
    *wait_s = CONN_EVICT_AGE_S - age;
    return 0;
}

void conn__evict(struct http_server *srv)
{
    struct conn *c = list_entry(srv->waiting.next, struct conn, wait_link);
    if (c->req && c->len > 0 && !c->closing) {
        /* part of a head came: say why, best effort (no wait, no linger) */
        static const char msg[] = "HTTP/1.1 408 Request Timeout\r\n"
                                  "Content-Type: text/plain\r\n"
                                  "Content-Length: 38\r\n"
                                  "Connection: close\r\n\r\n"
                                  "the server is full: head not received\n";
        ssize_t w =
            send(c->fd, msg, sizeof msg - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
        (void)w;
    }
    conn__close(c);
    int64_t now = co_now();
    if (now - srv->evict_logged >= CONN_EVICT_LOG_MS) {
        log_warn("at --max-connections (%u): closed the connection waiting "
                 "longest for a request to accept a new one (and %u more "
                 "since the last report)",
                 srv->cfg.limits.max_conns, srv->evict_quiet);
        srv->evict_logged = now;
        srv->evict_quiet = 0;
    } else {
        srv->evict_quiet++;
    }
}

/* ---- serving (in the request's coroutine) --------------------------- */

static void *conn_serve(void *arg);

/* Hands the connection to a new coroutine: a head is complete, or must be
 * refused (req->res.status >= 400 is then the status to send). */
static void conn_dispatch(struct conn *c)
{
    struct http_server *srv = c->srv;
    /* The read watcher stays on: stopping and restarting it around every
     * request costs an epoll_ctl whenever the loop polls in between. If it
     * fires while the coroutine has the connection, conn_read_cb stops it
     * then, once. */
    conn_timer_clear(c);
    if (list_linked(&c->wait_link))
        list_remove(&c->wait_link);
    struct co *co = coro__spawn(srv->hub, NULL, conn_serve, c);
    if (!co) {
        log_error("no coroutine for a request: %s", strerror(errno));
        conn__close(c);
        return;
    }
    co->detached = 1;
    c->busy = 1;
    c->co = co;
    /* Run it now rather than after the loop has handled every ready
     * connection: otherwise a busy loop turn holds one stack per
     * connection at once (17 KiB each at 1,000 connections, and the cache
     * misses to match). The hub's usual rule, callbacks only mark
     * coroutines ready, is bent for this one hot path; c may be closed and
     * reused when this returns, so nothing after it touches c. */
    if (!srv->hub->current) {
        list_remove(&co->run_link);
        hub__resume(srv->hub, co);
    }
}

/* Back to the hub between requests: wait for the next head, holding the
 * buffer only if part of one is already here. */
static void conn_idle(struct conn *c)
{
    struct http_server *srv = c->srv;
    c->busy = 0;
    c->co = NULL;
    if (c->len == 0 && c->buf) {
        bufpool__put(&srv->buf_pool, c->buf);
        c->buf = NULL;
    }
    if (c->held) { /* sent (conn_serve flushed it) */
        bufpool__put(&srv->buf_pool, c->held);
        c->held = NULL;
    }
    ev_io_start(srv->hub->loop, &c->io);
    conn_wait(c);
    conn_timer_spread(c, c->req ? srv->cfg.limits.header_timeout_ms
                                : srv->cfg.limits.keepalive_timeout_ms);
}

static void conn_route(co_request_t *req)
{
    struct http_server *srv = req->conn->srv;
    const struct http_route *r =
        srv->cfg.routing.route
            ? srv->cfg.routing.route(srv->cfg.routing.route_ctx, req->path)
            : NULL;
    if (!r)
        r = srv->cfg.routing.fallback;
    req->route = r;
    if (!r)
        return;
    size_t ml = strlen(r->mount);
    req->script_name = r->mount;
    req->path_info = req->path + (ml <= strlen(req->path) ? ml : 0);
}

/* Copies parts one after another into dst (size bytes), cut to fit and
 * NUL-terminated; returns the length. Plain copies, no formatting: it runs
 * in the watchdog's and the crash report's signal handlers. */
static size_t conn_join(char *dst, size_t size, const char *const *parts,
                        size_t nparts)
{
    size_t room = size - 1, n = 0;
    for (size_t i = 0; i < nparts && n < room; i++) {
        size_t len = strlen(parts[i]);
        if (len > room - n)
            len = room - n;
        memcpy(dst + n, parts[i], len);
        n += len;
    }
    dst[n] = '\0';
    return n;
}

/* Names the request a coroutine serves when the watchdog finds the hub
 * blocked: "app NAME: METHOD TARGET". Runs in a signal handler while the
 * request's coroutine is stopped, so the request cannot change under it. */
static size_t conn_describe(void *arg, char *buf, size_t len)
{
    const co_request_t *req = arg;
    const char *parts[] = {req->route ? "app " : "no app",
                           req->route ? req->route->name : "",
                           ": ",
                           req->method ? req->method : "-",
                           " ",
                           req->target ? req->target : "-"};
    return len ? conn_join(buf, len, parts, 6) : 0;
}

size_t conn__list_requests(void *arg, const struct co *skip, char *buf,
                           size_t len, unsigned *count)
{
    struct http_server *srv = arg;
    size_t n = 0;
    unsigned k = 0, steps = 0;
    buf[0] = '\0';
    /* at most as many links as there are connections: the lists may be
     * half-updated where the signal came */
    for (struct list *l = srv->conns.next;
         l != &srv->conns && steps <= srv->open; l = l->next, steps++) {
        struct conn *c = list_entry(l, struct conn, link);
        if (!c->busy || !c->co || c->co == skip || !c->co->describe)
            continue;
        k++;
        if (n + 3 >= len)
            continue;
        if (n) {
            buf[n++] = ';';
            buf[n++] = ' ';
        }
        n += c->co->describe(c->co->describe_arg, buf + n, len - n);
    }
    buf[n] = '\0';
    *count = k;
    return n;
}

/* A handler returned -1 before responding. A broken body is the client's
 * fault and gets its own status; anything else is the app's: 500, logged. */
static void conn_app_failed(co_request_t *req, int err)
{
    int status = 500;
    const char *why = "the app failed";
    if (req->conn->co->cancelled && !req->body_error) {
        /* the server is stopping (QUIT, or the grace period ran out): not
         * the app's fault */
        req->keep_alive = 0;
        response__error(req, 503, "the server is stopping");
        return;
    }
    switch (req->body_error) {
    case 0:
        log_error("app %s failed on %s %s: %s", req->route->name, req->method,
                  req->target, strerror(err));
        break;
    case EMSGSIZE:
        status = 413, why = "body larger than the server accepts";
        break;
    case EPROTO:
        status = 400, why = "malformed chunked body";
        break;
    case ETIMEDOUT:
        status = 408, why = "body not received in time";
        break;
    default: /* the client is gone */
        req->res.failed = 1;
        return;
    }
    if (req->body_error)
        req->keep_alive = 0;
    response__error(req, status, why);
}

/* A handler returned -1 after its head went out: closing the connection is
 * all that is left (a chunked body then lacks its last chunk, a fixed one
 * its length, so the client knows it is cut short). The access log keeps
 * what the client got, nginx's way: the status sent and the body bytes the
 * kernel took; this line says why it stops there. A write that failed
 * because the client left is not the app's failure: not logged. */
static void conn_app_failed_late(co_request_t *req, int err)
{
    if (!req->res.failed)
        log_error("app %s failed on %s %s after its response started "
                  "(status %d, %llu body bytes sent): %s; closing the "
                  "connection",
                  req->route->name, req->method, req->target, req->res.status,
                  (unsigned long long)req->res.body_out, strerror(err));
    req->res.failed = 1;
}

/* Runs the app for one parsed request. Returns non-zero if the connection
 * can serve another request. */
static int conn_run_request(struct conn *c, co_request_t *req)
{
    struct http_server *srv = c->srv;
    struct co *self = c->co;
    req->res.head_only = strcmp(req->method, "HEAD") == 0;
    conn_route(req);
    self->describe = conn_describe;
    self->describe_arg = req;
    srv->active++;
    watchdog__requests(&srv->hub->watchdog, srv->active);
    if (!req->route) {
        response__error(req, 404, "no app or file for this path");
    } else {
        co_set_name(self, req->route->name);
        if (srv->cfg.limits.request_timeout_ms > 0)
            conn_timer_set(c, srv->cfg.limits.request_timeout_ms);
        guard__begin(req, self);
        int rc = req->route->handler(req, &req->res);
        int err = errno;
        if (req->ws) /* a WebSocket: the close handshake, then close */
            ws__end(req->ws, rc);
        req->live = 0; /* from here on only this coroutine may use req */
        conn_timer_clear(c);
        if (req->timed_out) {
            req->keep_alive = 0;
            if (!req->res.started)
                response__error(req, 504, "the app did not answer in time");
            else
                req->res.failed = 1;
        } else if (req->client_gone) {
            req->keep_alive = 0;
            req->res.failed = 1; /* nobody to answer */
            if (!req->res.started)
                req->res.status = 499; /* for the log, as nginx says it */
        } else if (rc < 0 && !req->res.started && !req->res.failed) {
            conn_app_failed(req, err);
        } else if (rc < 0) {
            conn_app_failed_late(req, err);
        } else if (response__finish(req) < 0) {
            req->res.failed = 1;
        }
    }
    int again = req->keep_alive && !req->res.failed && !srv->draining &&
                !self->cancelled;
    if (again && body__drain(req) < 0)
        again = 0;
    accesslog__request(req);
    stats__count(req);
    self->describe = NULL;
    srv->active--;
    watchdog__requests(&srv->hub->watchdog, srv->active);
    if (srv->cfg.on_request_done)
        srv->cfg.on_request_done(srv->cfg.hooks_ctx);
    return again;
}

/* Closing with request bytes still unread makes the kernel send a RST,
 * which can destroy the response in flight before the client reads it. So
 * after a refusal or an undrained body: half-close, read and drop what the
 * client still sends (bounded in bytes and time), then close (nginx's
 * lingering close). The hub does the reading (conn_linger), so the
 * coroutine and its stack are free at once: a crowd of slow clients cut
 * at the header timeout costs structs, not stacks, while they linger. */
#define CONN_LINGER_MS 2000
#define CONN_LINGER_BYTES (1024 * 1024)

static void conn_close_lingering(struct conn *c, int unread)
{
    if (!unread || c->closing) {
        conn__close(c);
        return;
    }
    struct http_server *srv = c->srv;
    c->closing = 1;
    shutdown(c->fd, SHUT_WR);
    if (c->held)
        bufpool__put(&srv->buf_pool, c->held);
    c->held = NULL;
    c->held_len = 0;
    if (c->req)
        conn_req_put(srv, c->req);
    c->req = NULL;
    if (c->buf)
        bufpool__put(&srv->buf_pool, c->buf);
    c->buf = NULL;
    c->len = c->pos = 0;
    c->drained = 0;
    c->busy = 0;
    c->co = NULL;
    ev_io_start(srv->hub->loop, &c->io);
    conn_wait(c);
    conn_timer_set(c, CONN_LINGER_MS);
}

/* The hub's half of a lingering close: drop what arrived; close at the
 * client's EOF, an error, or too many bytes (the timer closes it at the
 * latest). */
static void conn_linger(struct conn *c)
{
    char sink[4096];
    for (;;) {
        ssize_t r = read(c->fd, sink, sizeof sink);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            return;
        if (r <= 0 || (c->drained += (uint32_t)r) >= CONN_LINGER_BYTES) {
            conn__close(c);
            return;
        }
    }
}

static void *conn_serve(void *arg)
{
    struct conn *c = arg;
    struct http_server *srv = c->srv;
    for (;;) {
        co_request_t *req = c->req;
        /* the coroutine the guard's one compare expects (guard.c) */
        req->owner = c->co;
        if (req->res.status >= 400) { /* refused by the front end */
            req->keep_alive = 0;
            if (!req->method)
                req->method = "-";
            response__error(req, req->res.status, req->error_reason);
            accesslog__request(req);
            stats__count(req);
            conn_close_lingering(c, 1);
            return NULL;
        }
        if (!conn_run_request(c, req)) {
            /* the batch before it still goes out, best effort */
            if (c->held_len && response__flush(c) < 0)
                req->res.failed = 1;
            int unread = (req->body_mode != BODY_NONE && !req->body_done) ||
                         c->pos < c->len;
            conn_close_lingering(c, unread && !req->res.failed);
            return NULL;
        }
        conn_req_put(srv, req);
        c->req = NULL;
        c->served = 1;
        /* Pipelined bytes: move them to the front and parse the next head
         * right here, without a trip through the hub. */
        if (c->pos < c->len) {
            memmove(c->buf, c->buf + c->pos, c->len - c->pos);
            c->len -= c->pos;
            c->pos = 0;
            req = conn_begin_request(c);
            if (!req) {
                conn__close(c);
                return NULL;
            }
            int rc = head__parse(c);
            if (rc == 1)
                continue;
            if (rc > 1) {
                req->res.status = rc;
                continue;
            }
        } else {
            c->len = c->pos = 0;
        }
        /* the batch is over: the rest of a head is still on its way */
        if (c->held_len && response__flush(c) < 0) {
            conn__close(c);
            return NULL;
        }
        conn_idle(c);
        return NULL;
    }
}

/* ---- the hub's side ------------------------------------------------- */

/* The read watcher fired while a handler runs. Once the body is all read,
 * a byte now is a pipelined request, but an end of stream or an error
 * means the client is gone (nginx: "client prematurely closed
 * connection"): the handler is cancelled, so whatever it waits for, even
 * a plain blocking call made cooperative by the hooks, ends with
 * ECANCELED instead of working for nobody. */
static void conn_check_gone(struct conn *c)
{
    co_request_t *req = c->req;
    if (!req || !c->co || (req->body_mode != BODY_NONE && !req->body_done))
        return;
    char b;
    ssize_t r = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (r > 0 || (r < 0 && (errno == EAGAIN || errno == EINTR)))
        return;
    req->client_gone = 1;
    co_cancel(c->co);
}

static void conn_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    struct conn *c = list_entry(w, struct conn, io);
    struct http_server *srv = c->srv;
    if (c->busy) { /* the request's coroutine reads for itself */
        ev_io_stop(loop, w);
        conn_check_gone(c);
        return;
    }
    if (c->closing) {
        conn_linger(c);
        return;
    }
    if (!c->buf && !(c->buf = bufpool__get(&srv->buf_pool))) {
        conn__close(c);
        return;
    }
    ssize_t r =
        hook__libc.recv(c->fd, c->buf + c->len, HTTP_BUF_SIZE - c->len, 0);
    if (r <= 0) {
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        conn__close(c); /* the client left, or reset */
        return;
    }
    if (!c->req) {
        /* even while draining: these bytes are a request its client sent
         * before it could know, and it is answered (Connection: close) */
        if (!conn_begin_request(c)) {
            conn__close(c);
            return;
        }
        /* on a kept-alive connection the head must be complete within the
         * header timeout from its first byte, however slowly the rest
         * drips in (a new connection's clock started at the accept) */
        if (c->served)
            conn_timer_spread(c, srv->cfg.limits.header_timeout_ms);
    }
    c->len += (uint32_t)r;
    if (srv->stats)
        stats__add(&srv->stats->bytes_in, (uint64_t)r);
    int rc = head__parse(c);
    if (rc == 0)
        return;
    if (rc > 1)
        c->req->res.status = rc;
    conn_dispatch(c);
}

static void conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct conn *c = list_entry(w, struct conn, timer);
    if (!c->due)
        return; /* cleared since it was set: nothing to do */
    int64_t now = co_now();
    if (now < c->due) { /* moved later since it was set */
        conn_timer_start(c, now);
        return;
    }
    c->due = 0;
    if (c->busy) { /* --request-timeout: the handler took too long */
        if (c->req && c->co) {
            log_warn("request %s %s timed out: cancelling it", c->req->method,
                     c->req->target);
            c->req->timed_out = 1;
            co_cancel(c->co);
        }
        return;
    }
    if (c->closing || !c->req || c->len == 0) { /* idle: just close */
        conn__close(c);
        return;
    }
    c->req->res.status = 408;
    c->req->error_reason = "request head not received in time";
    conn_dispatch(c);
}
