/*
 * Taking a connection out of HTTP: the WebSocket opening handshake (RFC
 * 6455 4.2) and the generic Upgrade (RFC 9110 7.8) that hands the socket
 * to the app for another protocol.
 *
 * Both end the same way (ws_handshake__switch): a 101 head, and the
 * connection leaves the HTTP machinery: no keep-alive, no request timeout
 * (a WebSocket lives for hours), no read watcher (the app's coroutine is
 * now the only reader, and an end of stream is its news, not a reason to
 * cancel it). The connection is closed when the handler returns.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>

#include "core/coro.h"
#include "core/hub.h"
#include "core/log.h"
#include "http/bufpool.h"
#include "http/guard.h"
#include "http/request.h"
#include "http/response.h"
#include "http/sha1.h"
#include "http/ws.h"

/* Whether the comma-separated header value v has token tok (any case). */
static int ws_has_token(const char *v, const char *tok)
{
    size_t tl = strlen(tok);
    while (v && *v) {
        while (*v == ' ' || *v == '\t' || *v == ',')
            v++;
        const char *end = v;
        while (*end && *end != ',')
            end++;
        const char *e = end;
        while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if ((size_t)(e - v) == tl && !strncasecmp(v, tok, tl))
            return 1;
        v = end;
    }
    return 0;
}

/* Whether the request asks to switch to protocol: GET, HTTP/1.1, an
 * Upgrade header naming it, and Connection naming upgrade. */
static int ws_asks_upgrade(const co_request_t *req, const char *protocol)
{
    return req->version >= 11 && !strcmp(req->method, "GET") &&
           ws_has_token(request__header(req, "Upgrade"), protocol) &&
           ws_has_token(request__header(req, "Connection"), "upgrade");
}

int co_ws_is_upgrade(const co_request_t *req)
{
    guard__check(req, "co_ws_is_upgrade");
    return ws_asks_upgrade(req, "websocket");
}

int ws_handshake__switch(co_request_t *req, const char *protocol,
                         const char *extra)
{
    struct co_response *res = &req->res;
    struct conn *c = req->conn;
    char head[1024];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: %s\r\n"
                     "Connection: Upgrade\r\n%s",
                     protocol, extra);
    if (n < 0 || (size_t)n >= sizeof head) {
        errno = EINVAL;
        return -1;
    }
    struct iovec iov[3] = {
        {head, (size_t)n},
        {req->arena + req->arena_size - res->hdr_len, res->hdr_len},
        {"\r\n", 2}};
    res->status = 101;
    res->started = 1;
    req->keep_alive = 0;
    struct ev_loop *loop = c->srv->hub->loop;
    ev_io_stop(loop, &c->io);
    ev_timer_stop(loop, &c->timer);
    return response__write(req, iov, 3);
}

int co_upgrade(co_request_t *req, co_response_t *res, const char *protocol,
               void *early, size_t *early_len)
{
    guard__check(req, "co_upgrade");
    (void)res; /* the request's own: one handle per call, as elsewhere */
    struct conn *c = req->conn;
    if (req->res.started || req->res.fixed) {
        errno = EALREADY;
        return -1;
    }
    if (!protocol || !*protocol || strpbrk(protocol, "\r\n,") ||
        (!early_len && c->len > c->pos)) {
        errno = EINVAL;
        return -1;
    }
    if (!ws_asks_upgrade(req, protocol) || req->body_mode != BODY_NONE) {
        errno = EPROTO;
        return -1;
    }
    size_t pending = c->len - c->pos;
    if (early_len && pending > *early_len) {
        errno = EMSGSIZE;
        return -1;
    }
    if (ws_handshake__switch(req, protocol, "") < 0)
        return -1;
    if (early_len) {
        if (pending)
            memcpy(early, c->buf + c->pos, pending);
        *early_len = pending;
    }
    c->pos = c->len;
    return c->fd;
}

/* Refuses a handshake: 400, or 426 naming the version we speak. The
 * handler returns and the server sends it. Returns NULL with EPROTO. */
static co_ws_t *ws_refuse(co_request_t *req, int status, const char *why)
{
    if (status == 426)
        co_res_header(&req->res, "Sec-WebSocket-Version", "13");
    co_res_send(&req->res, status, "text/plain; charset=utf-8", why,
                strlen(why));
    errno = EPROTO;
    return NULL;
}

/* The server's preferred subprotocol among those the client offers. */
static const char *ws_pick_protocol(const co_request_t *req,
                                    const char *const *protocols)
{
    const char *offered = request__header(req, "Sec-WebSocket-Protocol");
    if (!offered || !protocols)
        return NULL;
    for (size_t i = 0; protocols[i]; i++)
        if (ws_has_token(offered, protocols[i]))
            return protocols[i];
    return NULL;
}

/* The handshake's answer: base64(SHA-1(key + the RFC's GUID)). */
static void ws_accept_key(const char *key, char out[29])
{
    char buf[128];
    int n = snprintf(buf, sizeof buf, "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11",
                     key);
    uint8_t d[20];
    sha1__digest(buf, (size_t)n, d);
    sha1__base64(d, 20, out);
}

/* The handshake (snprintf, the 101's write) ran deeper in the coroutine's
 * stack than a WebSocket waiting for its next frame does, and those pages
 * would stay resident for the connection's life: an idle WebSocket keeps
 * them for hours. They are dead once the handshake is done, so they go
 * back to the kernel (one madvise per connection); a deeper call later
 * faults fresh zero pages in. Not inlined: its own frame lies below every
 * live frame of its callers, and the slack keeps the page of madvise's
 * own call. */
#define WS_TRIM_SLACK 1024

static __attribute__((noinline)) void ws_stack_trim(void)
{
    struct co *self = coro__self("co_ws_accept");
    uintptr_t lo = (uintptr_t)self->stack.lo;
    uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
    if (sp < lo + WS_TRIM_SLACK || sp >= lo + self->stack.size)
        return; /* not on its own stack (a sanitizer's fake frame) */
    uintptr_t end = (sp - WS_TRIM_SLACK) & ~(uintptr_t)(stack__page() - 1);
    if (end > lo)
        madvise((void *)lo, end - lo, MADV_DONTNEED);
}

/* Whether p points into [lo, hi). */
static int ws_within(const char *p, const char *lo, const char *hi)
{
    return p && (uintptr_t)p >= (uintptr_t)lo && (uintptr_t)p < (uintptr_t)hi;
}

/* The head's slices (target, header lines) lie in the connection's read
 * buffer, a pooled 16 KiB block that an HTTP connection gives back between
 * requests; a WebSocket would hold it, and the page its head was read
 * into, for hours. So once its frames are taken from it, the slices move
 * into the request's arena (a few hundred bytes, on a page the request
 * already touched) and the buffer goes back to the pool, where the next
 * head to arrive reuses it. A head too big for what is left of the arena
 * stays where it is. Nothing else holds pointers into the buffer: the path
 * and the strings the server formats live in the arena already. */
static void ws_head_move(co_request_t *req)
{
    struct conn *c = req->conn;
    if (!c->buf || c->pos != c->len)
        return;
    const char *lo = c->buf + c->head_end, *hi = c->buf;
    if (ws_within(req->target, c->buf, c->buf + c->len)) {
        lo = req->target;
        hi = req->target + req->target_len + 1;
    }
    for (unsigned i = 0; i < req->nheaders; i++) {
        const struct http_header *h = &req->headers[i];
        if ((uintptr_t)h->name < (uintptr_t)lo)
            lo = h->name;
        if ((uintptr_t)(h->value + h->value_len + 1) > (uintptr_t)hi)
            hi = h->value + h->value_len + 1;
    }
    const char *end = c->buf + c->len;
    if ((uintptr_t)lo > (uintptr_t)hi || !ws_within(lo, c->buf, end) ||
        (uintptr_t)hi > (uintptr_t)end)
        return; /* no slices, or not all in the buffer */
    char *to = request__arena_strdup(req, lo, (size_t)(hi - lo));
    if (!to)
        return;
    ptrdiff_t d = to - lo;
    if (ws_within(req->target, lo, hi)) {
        if (ws_within(req->query, lo, hi))
            req->query += d;
        req->target += d;
    }
    for (unsigned i = 0; i < req->nheaders; i++) {
        req->headers[i].name += d;
        req->headers[i].value += d;
    }
    if (ws_within(req->remote_text, lo, hi))
        req->remote_text += d;
    bufpool__put(&c->srv->buf_pool, c->buf);
    c->buf = NULL;
    c->len = c->pos = c->head_end = 0;
}

#define WS_REBASE(p, lo, hi, d)                                                \
    do {                                                                       \
        if (ws_within((const char *)(p), lo, hi))                              \
            (p) += (d);                                                        \
    } while (0)

/* Gives the request's big store (header table and arena, 14 KiB) back to
 * its pool, keeping a copy of only what is used: an idle WebSocket then
 * holds a few hundred bytes of head instead of two resident pages. Every
 * slice into the arena moves with it; the app's strings from before
 * co_ws_accept do not (coserve.h says so). Without memory, nothing moves. */
static void ws_compact(co_request_t *req)
{
    if (!req->store)
        return;
    size_t hsz = req->nheaders * sizeof(struct http_header);
    size_t asz = req->arena_used + 256; /* room for strings formatted later */
    char *blk = malloc(hsz + asz);
    if (!blk)
        return;
    struct http_header *h = (struct http_header *)blk;
    memcpy(h, req->headers, hsz);
    char *arena = blk + hsz;
    memcpy(arena, req->arena, req->arena_used);
    const char *lo = req->arena, *hi = req->arena + req->arena_used;
    ptrdiff_t d = arena - req->arena;
    WS_REBASE(req->target, lo, hi, d);
    WS_REBASE(req->query, lo, hi, d);
    WS_REBASE(req->path, lo, hi, d);
    WS_REBASE(req->path_info, lo, hi, d);
    WS_REBASE(req->remote_text, lo, hi, d);
    for (unsigned i = 0; i < req->nheaders; i++) {
        WS_REBASE(h[i].name, lo, hi, d);
        WS_REBASE(h[i].value, lo, hi, d);
    }
    req->res.hdr_len = 0; /* the 101 is out: its header lines are done */
    req->headers = h;
    req->arena = arena;
    req->arena_size = asz;
    req->compact = blk;
    bufpool__put(&req->conn->srv->store_pool, req->store);
    req->store = NULL;
}

/* The limits a new WebSocket starts with: the server's flags, else the
 * defaults (a config left zeroed, as the fuzzer's, gets the defaults). */
static void ws_limits(co_ws_t *ws, const struct http_config *cfg)
{
    ws->max_message = cfg->limits.ws_max_message ? cfg->limits.ws_max_message
                                                 : WS_MAX_MESSAGE;
    ws->ping_ms = cfg->limits.ws_ping_ms ? cfg->limits.ws_ping_ms : WS_PING_MS;
    ws->idle_ms = cfg->limits.ws_idle_ms ? cfg->limits.ws_idle_ms : WS_IDLE_MS;
}

co_ws_t *co_ws_accept(co_request_t *req, co_response_t *res,
                      const char *const *protocols, int flags)
{
    guard__check(req, "co_ws_accept");
    (void)res;
    if (req->res.started || req->res.fixed || req->ws) {
        errno = EALREADY;
        return NULL;
    }
    if (flags & ~CO_WS_NO_DEFLATE) {
        errno = EINVAL;
        return NULL;
    }
    if (!ws_asks_upgrade(req, "websocket"))
        return ws_refuse(req, 400,
                         "a WebSocket handshake is a GET with "
                         "Upgrade: websocket and Connection: "
                         "Upgrade\n");
    const char *version = request__header(req, "Sec-WebSocket-Version");
    if (!version || strcmp(version, "13"))
        return ws_refuse(req, 426, "this server speaks WebSocket version 13\n");
    const char *key = request__header(req, "Sec-WebSocket-Key");
    if (!key || strlen(key) != 24 || sha1__base64_len(key, 24) != 16)
        return ws_refuse(req, 400,
                         "Sec-WebSocket-Key must be 16 bytes in "
                         "base64\n");
    if (req->body_mode != BODY_NONE)
        return ws_refuse(req, 400, "a WebSocket handshake has no body\n");

    co_ws_t *ws = calloc(1, sizeof *ws);
    if (!ws || !(ws->wlock = co_sem_new(1))) {
        free(ws);
        errno = ENOMEM;
        return NULL;
    }
    struct conn *c = req->conn;
    ws->req = req;
    ws->fd = c->fd;
    ws_limits(ws, &c->srv->cfg);

    char accept[29], extra[512], ext[160] = "";
    ws_accept_key(key, accept);
    const char *offers = request__header(req, "Sec-WebSocket-Extensions");
    if (!(flags & CO_WS_NO_DEFLATE) && offers)
        ws_deflate__negotiate(ws, offers, ext, sizeof ext);
    const char *proto = ws_pick_protocol(req, protocols);
    if (proto)
        snprintf(ws->protocol, sizeof ws->protocol, "%s", proto);
    snprintf(extra, sizeof extra, "Sec-WebSocket-Accept: %s\r\n%s%s%s%s%s%s",
             accept, proto ? "Sec-WebSocket-Protocol: " : "",
             proto ? proto : "", proto ? "\r\n" : "",
             *ext ? "Sec-WebSocket-Extensions: " : "", ext, *ext ? "\r\n" : "");
    req->ws = ws;
    if (ws_handshake__switch(req, "websocket", extra) < 0) {
        ws->state = WS_CLOSED;
        ws->err = errno;
        return NULL; /* ws__end frees it when the handler returns */
    }
    ws->last_rx = ws->last_tx = co_now();
    /* frames the client sent right behind its head */
    if (c->len > c->pos) {
        ws->rbuf = bufpool__get(&c->srv->buf_pool);
        if (!ws->rbuf) {
            ws->state = WS_CLOSED;
            errno = ws->err = ENOMEM;
            return NULL;
        }
        ws->rlen = c->len - c->pos;
        memcpy(ws->rbuf, c->buf + c->pos, ws->rlen);
        c->pos = c->len;
    }
    ws_head_move(req);
    ws_compact(req);
    ws_stack_trim();
    return ws;
}

const char *co_ws_protocol(const co_ws_t *ws)
{
    guard__check(ws->req, "co_ws_protocol");
    return ws->protocol[0] ? ws->protocol : NULL;
}
