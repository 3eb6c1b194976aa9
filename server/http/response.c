/*
 * Responses: the head, gathered small bodies, chunked or close-delimited
 * streaming, sendfile, and the error pages of the front end.
 *
 * A handler's writes gather in a pooled buffer; if the handler returns with
 * the body still there, head and body leave in one writev with a
 * Content-Length. Only a body that outgrows the buffer, or an explicit
 * flush, commits to streaming. The head is built in one go from the status
 * line, the server's headers and the app's header text (kept in the
 * request's arena as "Name: value\r\n" lines).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/sendfile.h>
#include <sys/uio.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/coro.h"
#include "core/fdio.h"
#include "core/hook_libc.h"
#include "core/log.h"
#include "http/bufpool.h"
#include "http/date.h"
#include "http/guard.h"
#include "http/http.h"
#include "http/request.h"
#include "http/response.h"
#include "http/stats.h"

const char *response__reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 416:
        return "Range Not Satisfiable";
    case 417:
        return "Expectation Failed";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

/* ---- sending ----------------------------------------------------------- */

/* The most iovecs one response write gathers (response_send_head's). */
#define RESPONSE_IOV 8

/* Waits until the client's socket takes bytes again. The write timeout
 * bounds each such wait, not the whole response (nginx's send_timeout): a
 * download that keeps moving is never cut, a client that stops reading for
 * the whole timeout is. */
static int response_wait(co_request_t *req)
{
    struct conn *c = req->conn;
    req->res.unpolled = 0;
    return fdio__wait(coro__self("response"), c->fd, CO_WRITABLE,
                      co_deadline(c->srv->cfg.limits.write_timeout_ms));
}

/* Counts n bytes the kernel took. A client reading as fast as we write
 * never fills the socket, so no write would ever wait: after a chunk's
 * worth (--sendfile-max-chunk) the sender waits for writability anyway,
 * which goes through the loop's poll and lets other connections in.
 * Returns 0 or -1. */
static int response_took(co_request_t *req, size_t n, int more)
{
    struct co_response *res = &req->res;
    res->unpolled += n;
    if (req->conn->srv->stats)
        stats__add(&req->conn->srv->stats->bytes_out, n);
    if (more && res->unpolled >= fdio__sendfile_chunk())
        return response_wait(req);
    return 0;
}

/* ---- pipelined batches ----------------------------------------------- */

/* When one read brought several requests, a complete response (the head
 * and its gathered body) is copied into the connection's held buffer
 * instead of being written, as long as more request bytes wait: the next
 * write carries the whole batch. 16 pipelined /hello requests then cost
 * one writev instead of 16. Held bytes go out at the latest when the
 * connection's coroutine is about to wait for anything (its before_wait
 * hook: a slow handler never holds back the responses before it), when
 * the batch is full, before any other write, and before the connection
 * goes idle or closes. The access log counts held body bytes as sent. */
static void response_held_cb(void *arg);

/* Whether req's complete response may be held rather than written. */
static int response_may_hold(co_request_t *req, size_t len)
{
    struct conn *c = req->conn;
    return req->res.may_hold && req->keep_alive && c->pos < c->len &&
           !c->srv->draining && c->co && c->held_len + len <= HTTP_BUF_SIZE;
}

/* Copies iov[0..n) after the held bytes. Returns 0, or -1 (no buffer:
 * the caller writes them). */
static int response_hold(co_request_t *req, const struct iovec *iov, int n,
                         unsigned body_mask)
{
    struct conn *c = req->conn;
    if (!c->held && !(c->held = bufpool__get(&c->srv->buf_pool)))
        return -1;
    for (int i = 0; i < n; i++) {
        memcpy(c->held + c->held_len, iov[i].iov_base, iov[i].iov_len);
        c->held_len += (uint32_t)iov[i].iov_len;
        if (body_mask >> i & 1)
            req->res.body_out += iov[i].iov_len;
    }
    c->co->before_wait = response_held_cb;
    c->co->before_wait_arg = c;
    return 0;
}

/* Moves win[wi..wn) past n bytes the kernel took, counting those of the
 * entries whose bit is set in mask as body bytes out. Returns the first
 * entry with bytes left (wn: none). */
static int response_advance(struct co_response *res, struct iovec *win, int wn,
                            int wi, unsigned mask, size_t n)
{
    while (wi < wn && n) {
        size_t take = n < win[wi].iov_len ? n : win[wi].iov_len;
        if (mask >> wi & 1)
            res->body_out += take;
        win[wi].iov_base = (char *)win[wi].iov_base + take;
        win[wi].iov_len -= take;
        n -= take;
        if (!win[wi].iov_len)
            wi++;
    }
    return wi;
}

/* Most responses are a few hundred bytes in three or four pieces (head,
 * app headers, blank line, body). Copied into one buffer they go out in
 * one send(): the kernel then copies one segment instead of four, and
 * skips writev's file layer (fdget_pos, rw_verify_area, fsnotify), which
 * costs more than the copy. Larger writes go out with sendmsg, not
 * writev, for that layer too. MSG_NOSIGNAL: a gone client is EPIPE, not
 * a SIGPIPE, even in a program that embeds the runtime and keeps it. */
#define RESPONSE_GATHER 1024

static ssize_t response_write(int fd, const struct iovec *iov, int n)
{
    if (n == 1)
        return hook__libc.send(fd, iov[0].iov_base, iov[0].iov_len,
                               MSG_NOSIGNAL);
    char flat[RESPONSE_GATHER];
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        if (iov[i].iov_len > sizeof flat - len) {
            struct msghdr m = {.msg_iov = (struct iovec *)iov,
                               .msg_iovlen = (size_t)n};
            return hook__libc.sendmsg(fd, &m, MSG_NOSIGNAL);
        }
        memcpy(flat + len, iov[i].iov_base, iov[i].iov_len);
        len += iov[i].iov_len;
    }
    return hook__libc.send(fd, flat, len, MSG_NOSIGNAL);
}

/* Writes iov[0..n) whole (n <= RESPONSE_IOV), after the bytes held for a
 * batch, if any. Bytes of the entries whose bit is set in body_mask count
 * in res->body_out as the kernel takes them, so the access log says what
 * left even when a write fails half-way. */
static int response_send(co_request_t *req, const struct iovec *iov, int n,
                         unsigned body_mask)
{
    struct co_response *res = &req->res;
    struct conn *c = req->conn;
    if (res->failed) {
        errno = EPIPE;
        return -1;
    }
    struct iovec win[RESPONSE_IOV + 1];
    unsigned mask = 0;
    int wn = 0, wi = 0;
    size_t total = 0;
    for (int i = 0; i < n && wn < RESPONSE_IOV; i++) {
        if (!iov[i].iov_len)
            continue;
        if (body_mask >> i & 1)
            mask |= 1u << wn;
        total += iov[i].iov_len;
        win[wn++] = iov[i];
    }
    if (response_may_hold(req, total) && response_hold(req, win, wn, mask) == 0)
        return 0;
    if (c->held_len) { /* the batch goes first, in the same write */
        memmove(win + 1, win, (size_t)wn * sizeof *win);
        win[0] = (struct iovec){c->held, c->held_len};
        mask <<= 1;
        wn++;
        c->held_len = 0;
        if (c->co)
            c->co->before_wait = NULL;
    }
    while (wi < wn) {
        ssize_t w = response_write(c->fd, win + wi, wn - wi);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if ((errno == EAGAIN || errno == EWOULDBLOCK) &&
                response_wait(req) == 0)
                continue;
            res->failed = 1;
            return -1;
        }
        wi = response_advance(res, win, wn, wi, mask, (size_t)w);
        if (response_took(req, (size_t)w, wi < wn) < 0) {
            res->failed = 1;
            return -1;
        }
    }
    return 0;
}

int response__flush(struct conn *c)
{
    struct co *self = coro__self("response__flush");
    if (self->before_wait == response_held_cb)
        self->before_wait = NULL;
    uint32_t n = c->held_len;
    c->held_len = 0;
    /* a batch is at most 16 KiB: the write timeout bounds it whole */
    if (co_write_all(c->fd, c->held, n,
                     co_deadline(c->srv->cfg.limits.write_timeout_ms)) < 0)
        return -1;
    if (c->srv->stats)
        stats__add(&c->srv->stats->bytes_out, n);
    return 0;
}

/* The connection's coroutine is about to wait: the batch cannot wait with
 * it. A failed write fails the request being served, so it closes. */
static void response_held_cb(void *arg)
{
    struct conn *c = arg;
    if (response__flush(c) < 0 && c->req)
        c->req->res.failed = 1;
}

int response__write(co_request_t *req, const struct iovec *iov, int n)
{
    return response_send(req, iov, n, 0);
}

/* Sends len bytes of fd from offset, each sendfile() capped at the chunk
 * (a whole 10 GB file asked at once held the hub for a second per call). */
static int response_sendfile(co_request_t *req, int fd, off_t offset,
                             size_t len)
{
    struct co_response *res = &req->res;
    size_t chunk = fdio__sendfile_chunk();
    while (len) {
        ssize_t w =
            sendfile(req->conn->fd, fd, &offset, len < chunk ? len : chunk);
        if (w > 0) {
            res->body_out += (size_t)w;
            len -= (size_t)w;
            if (response_took(req, (size_t)w, len > 0) < 0)
                break;
            continue;
        }
        if (w == 0) {
            errno = EIO; /* the file shrank under us */
            break;
        }
        if (errno == EINTR)
            continue;
        if ((errno != EAGAIN && errno != EWOULDBLOCK) || response_wait(req) < 0)
            break;
    }
    if (len) {
        res->failed = 1;
        return -1;
    }
    return 0;
}

static int response_no_body(int status)
{
    return status < 200 || status == 204 || status == 304;
}

/* The head is built on every response: plain appends, no printf. Every
 * piece is bounded (a status, a reason, a date, a number, fixed lines), so
 * 512 bytes always suffice. */
struct head_buf {
    char *p;
    size_t len;
};

static void head_str(struct head_buf *h, const char *s)
{
    size_t n = strlen(s);
    memcpy(h->p + h->len, s, n);
    h->len += n;
}

static void head_uint(struct head_buf *h, uint64_t v)
{
    char tmp[24];
    int i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    memcpy(h->p + h->len, tmp + i, sizeof tmp - (size_t)i);
    h->len += sizeof tmp - (size_t)i;
}

/* Builds and sends the head (with `extra` iovecs of body after it).
 * length < 0: the body is streamed (chunked, or until close). */
static int response_send_head(co_request_t *req, int64_t length,
                              const struct iovec *extra, int nextra)
{
    struct co_response *res = &req->res;
    struct http_server *srv = req->conn->srv;
    char head[512];
    struct head_buf h = {head, 0};
    head_str(&h, "HTTP/1.1 ");
    head_uint(&h, (uint64_t)res->status);
    head_str(&h, " ");
    head_str(&h, response__reason(res->status));
    head_str(&h, "\r\nServer: coserve\r\nDate: ");
    head_str(&h, date__http());
    head_str(&h, "\r\n");
    if (srv->draining)
        req->keep_alive = 0;
    if (length >= 0) {
        if (!response_no_body(res->status) && !res->has_length) {
            head_str(&h, "Content-Length: ");
            head_uint(&h, (uint64_t)length);
            head_str(&h, "\r\n");
        }
    } else if (!response_no_body(res->status)) {
        if (req->version >= 11) {
            res->chunked = 1;
            head_str(&h, "Transfer-Encoding: chunked\r\n");
        } else {
            req->keep_alive = 0; /* HTTP/1.0: the body ends at close */
        }
    }
    if (!req->keep_alive)
        head_str(&h, "Connection: close\r\n");
    else if (req->version == 10)
        head_str(&h, "Connection: keep-alive\r\n");
    int n = (int)h.len;
    struct iovec iov[RESPONSE_IOV];
    int k = 0;
    iov[k++] = (struct iovec){head, (size_t)n};
    if (res->hdr_len)
        iov[k++] = (struct iovec){req->arena + req->arena_size - res->hdr_len,
                                  res->hdr_len};
    iov[k++] = (struct iovec){"\r\n", 2};
    unsigned body = 0;
    for (int i = 0; i < nextra && k < RESPONSE_IOV; i++)
        if (extra[i].iov_len && !res->head_only) {
            body |= 1u << k;
            iov[k++] = extra[i];
        }
    res->started = 1;
    return response_send(req, iov, k, body);
}

static co_request_t *response_req(co_response_t *res)
{
    return (co_request_t *)((char *)res - offsetof(co_request_t, res));
}

int co_res_status(co_response_t *res, int status)
{
    guard__check(response_req(res), "co_res_status");
    if (res->started || res->fixed) {
        errno = EALREADY;
        return -1;
    }
    if (status < 100 || status > 999) {
        errno = EINVAL;
        return -1;
    }
    res->status = status;
    return 0;
}

static int response_valid_text(const char *s, int is_name)
{
    if (!*s && is_name)
        return 0;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '\r' || ch == '\n' || (is_name && (ch <= ' ' || ch == ':')))
            return 0;
    }
    return 1;
}

/* Adds a line to the head not yet sent: the app's (co_res_header), or the
 * server's own (a sendfile's length, an error page's type), which may come
 * after co_res_send fixed the app's part. */
/* Headers the server writes itself, which an app may not add. One length
 * switch, then at most one compare: this runs for every header an app
 * sets (four compares each before). */
static int response_reserved(const char *name)
{
    switch (strlen(name)) {
    case 4:
        return !strcasecmp(name, "date");
    case 6:
        return !strcasecmp(name, "server");
    case 10:
        return !strcasecmp(name, "connection");
    case 17:
        return !strcasecmp(name, "transfer-encoding");
    default:
        return 0;
    }
}

static int response_add_header(co_request_t *req, const char *name,
                               const char *value)
{
    struct co_response *res = &req->res;
    if (!response_valid_text(name, 1) || !response_valid_text(value, 0) ||
        response_reserved(name)) {
        errno = EINVAL;
        return -1;
    }
    int is_length = !strcasecmp(name, "content-length");
    uint64_t length = 0;
    if (is_length) {
        char *end;
        if (!*value || *value == '-' || res->has_length)
            goto invalid;
        errno = 0;
        length = strtoull(value, &end, 10);
        if (*end || errno)
            goto invalid;
    }
    /* App header lines grow down from the arena's end; request strings grow
     * up from its start. */
    size_t nl = strlen(name), vl = strlen(value), need = nl + vl + 4;
    if (req->arena_used + res->hdr_len + need > req->arena_size) {
        errno = ENOSPC;
        return -1;
    }
    char *end = req->arena + req->arena_size - res->hdr_len;
    /* keep the order the app added them: move the existing text down */
    memmove(end - need, end, res->hdr_len);
    char *p = req->arena + req->arena_size - need;
    memcpy(p, name, nl);
    memcpy(p + nl, ": ", 2);
    memcpy(p + nl + 2, value, vl);
    memcpy(p + nl + 2 + vl, "\r\n", 2);
    res->hdr_len += need;
    if (is_length) {
        res->has_length = 1;
        res->length = length;
    }
    return 0;
invalid:
    errno = EINVAL;
    return -1;
}

int co_res_header(co_response_t *res, const char *name, const char *value)
{
    co_request_t *req = response_req(res);
    guard__check(req, "co_res_header");
    if (res->started || res->fixed) {
        errno = EALREADY;
        return -1;
    }
    return response_add_header(req, name, value);
}

/* Sends body bytes on a committed response, framing them as needed. */
static int response_stream(co_request_t *req, const void *buf, size_t n)
{
    struct co_response *res = &req->res;
    if (n == 0)
        return 0;
    if (res->has_length && res->sent + n > res->length) {
        errno = EMSGSIZE;
        return -1;
    }
    res->sent += n; /* for HEAD: what GET would have sent */
    if (res->head_only || response_no_body(res->status))
        return 0;
    if (!res->chunked) {
        struct iovec iov = {(void *)buf, n};
        return response_send(req, &iov, 1, 1);
    }
    char size[24];
    int sl = snprintf(size, sizeof size, "%zx\r\n", n);
    struct iovec iov[3] = {{size, (size_t)sl}, {(void *)buf, n}, {"\r\n", 2}};
    return response_send(req, iov, 3, 2); /* the data, not the framing */
}

/* Sends the head plus what was gathered, committing to streaming. */
static int response_commit(co_request_t *req)
{
    struct co_response *res = &req->res;
    int64_t length = res->has_length ? (int64_t)res->length : -1;
    if (response_send_head(req, length, NULL, 0) < 0)
        return -1;
    size_t n = res->out_len;
    res->out_len = 0;
    return response_stream(req, res->out, n);
}

int co_res_write(co_response_t *res, const void *buf, size_t n)
{
    co_request_t *req = response_req(res);
    guard__check(req, "co_res_write");
    if (n == 0) /* co_res_send(res, 204, NULL, NULL, 0) is fine */
        return res->failed ? (errno = EPIPE, -1) : 0;
    if (res->failed) {
        errno = EPIPE;
        return -1;
    }
    if (res->started)
        return response_stream(req, buf, n);
    if (res->has_length && res->out_len + n > res->length) {
        errno = EMSGSIZE;
        return -1;
    }
    if (!res->out) {
        res->out = bufpool__get(&req->conn->srv->buf_pool);
        if (!res->out) {
            errno = ENOMEM;
            return -1;
        }
    }
    if (res->out_len + n <= HTTP_OUT_SIZE) {
        memcpy(res->out + res->out_len, buf, n);
        res->out_len += n;
        return 0;
    }
    if (response_commit(req) < 0)
        return -1;
    return response_stream(req, buf, n);
}

int co_res_flush(co_response_t *res)
{
    co_request_t *req = response_req(res);
    guard__check(req, "co_res_flush");
    if (res->started)
        return res->failed ? -1 : 0;
    return response_commit(req);
}

int co_res_sendfile(co_response_t *res, int fd, off_t offset, size_t len)
{
    co_request_t *req = response_req(res);
    guard__check(req, "co_res_sendfile");
    if (!res->started && res->out_len == 0 && !res->has_length) {
        char v[24];
        snprintf(v, sizeof v, "%zu", len);
        if (response_add_header(req, "Content-Length", v) < 0)
            return -1;
    }
    if (!res->started && response_commit(req) < 0)
        return -1;
    if (res->head_only || len == 0) {
        res->sent += len;
        return 0;
    }
    if (res->chunked) { /* a file in the middle of a streamed body */
        char buf[16384];
        while (len) {
            ssize_t r =
                pread(fd, buf, len < sizeof buf ? len : sizeof buf, offset);
            if (r <= 0) {
                errno = r == 0 ? EIO : errno;
                return -1;
            }
            if (response_stream(req, buf, (size_t)r) < 0)
                return -1;
            offset += r;
            len -= (size_t)r;
        }
        return 0;
    }
    if (res->has_length && res->sent + len > res->length) {
        errno = EMSGSIZE;
        return -1;
    }
    if (response_sendfile(req, fd, offset, len) < 0)
        return -1;
    res->sent += len;
    return 0;
}

/* A second co_res_send once the head is sent or fixed: it fails, and the
 * first response stands (it used to go out with both bodies under two
 * Content-Type lines). Logged once per response, naming the app. */
static void response_warn_again(co_request_t *req)
{
    struct co_response *res = &req->res;
    if (res->warned)
        return;
    res->warned = 1;
    log_warn("app %s: co_res_send called again on %s %s after the "
             "response's head was %s: EALREADY, the first response stands",
             req->route ? req->route->name : "(unknown)", req->method,
             req->target, res->started ? "sent" : "fixed by co_res_send");
}

int co_res_send(co_response_t *res, int status, const char *content_type,
                const void *body, size_t len)
{
    co_request_t *req = response_req(res);
    guard__check(req, "co_res_send");
    if (res->started || res->fixed) {
        response_warn_again(req);
        errno = EALREADY;
        return -1;
    }
    if (co_res_status(res, status) < 0)
        return -1;
    if (content_type && co_res_header(res, "Content-Type", content_type) < 0)
        return -1;
    /* the head is whole: whatever the write does, a second send must not
     * add to it */
    res->fixed = 1;
    return co_res_write(res, body, len);
}

int co_res_started(const co_response_t *res)
{
    guard__check(response_req((co_response_t *)res), "co_res_started");
    return res->started || res->fixed;
}

int response__finish(co_request_t *req)
{
    struct co_response *res = &req->res;
    if (res->failed)
        return -1;
    if (!res->started) {
        if (res->has_length && res->out_len != res->length && !res->head_only &&
            !response_no_body(res->status)) {
            /* The app promised more than it wrote: send what we have and
             * close, so the client sees a short body, not a hang. */
            req->keep_alive = 0;
        }
        struct iovec body = {res->out, res->out_len};
        int64_t length =
            res->has_length ? (int64_t)res->length : (int64_t)res->out_len;
        res->sent = res->out_len;
        res->may_hold = 1;
        return response_send_head(req, length, &body, 1);
    }
    if (res->chunked && !res->head_only) {
        struct iovec end = {"0\r\n\r\n", 5};
        return response__write(req, &end, 1);
    }
    /* a short body: the client would wait for the rest, so close */
    if (res->has_length && res->sent != res->length &&
        !response_no_body(res->status))
        req->keep_alive = 0;
    return 0;
}

int response__error(co_request_t *req, int status, const char *reason)
{
    struct co_response *res = &req->res;
    char body[300];
    int n = snprintf(body, sizeof body, "%d %s%s%s\n", status,
                     response__reason(status), reason ? ": " : "",
                     reason ? reason : "");
    if (n >= (int)sizeof body)
        n = (int)sizeof body - 1;
    res->status = status;
    res->hdr_len = 0;
    res->out_len = 0;
    res->has_length = 0;
    res->fixed = 0; /* the app's co_res_send is dropped with its headers */
    response_add_header(req, "Content-Type", "text/plain; charset=utf-8");
    struct iovec iov = {body, (size_t)n};
    res->sent = (uint64_t)n;
    res->may_hold = 1;
    return response_send_head(req, n, &iov, 1);
}
