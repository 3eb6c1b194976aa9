/*
 * Request bodies: Content-Length counting and a strict chunked decoder.
 *
 * llhttp stops at the end of the head, and the body is framed here, in the
 * request's coroutine, as the app reads. The chunked decoder insists on CRLF
 * exactly where RFC 9112 puts it (llhttp 8.1 accepts any two bytes after
 * chunk data, which lets a second request be smuggled), bounds every line,
 * and skips extensions and trailers. Decoded bytes come out of conn->buf
 * behind the head, which stays intact for the handler's header slices.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "core/coro.h"
#include "http/body.h"
#include "http/guard.h"
#include "http/http.h"
#include "http/request.h"
#include "http/response.h"
#include "http/stats.h"

enum {
    CH_SIZE,
    CH_EXT,
    CH_SIZE_LF,
    CH_DATA,
    CH_DATA_CR,
    CH_DATA_LF,
    CH_TRAILER,
    CH_TRAILER_LINE,
    CH_TRAILER_LINE_LF,
    CH_END_LF,
    CH_DONE
};

#define BODY_LINE_MAX 4096 /* a chunk-size line with its extensions */
#define BODY_TRAILERS_MAX 8192
#define BODY_DRAIN_MAX (1024 * 1024)

static int body_hex(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch |= 0x20;
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* The strict chunked decoder (body.h): one pass of its state machine. */
ssize_t body__dechunk(co_request_t *req, const char *in, size_t *avail,
                      char *out, size_t n)
{
    struct chunk_state *s = &req->chunk;
    uint64_t max = req->conn->srv->cfg.limits.max_body;
    size_t i = 0, produced = 0;
    while (i < *avail && s->phase != CH_DONE) {
        unsigned char ch = (unsigned char)in[i];
        switch (s->phase) {
        case CH_SIZE: {
            int d = body_hex(ch);
            if (d >= 0) {
                if (s->left > (max >> 4))
                    goto too_big;
                s->left = s->left * 16 + (unsigned)d;
                s->seen_digit = 1;
            } else if (!s->seen_digit) {
                goto bad;
            } else if (ch == ';' || ch == ' ' || ch == '\t') {
                s->phase = CH_EXT;
            } else if (ch == '\r') {
                s->phase = CH_SIZE_LF;
            } else {
                goto bad;
            }
            if (++s->line > BODY_LINE_MAX)
                goto bad;
            i++;
            break;
        }
        case CH_EXT:
            if (ch == '\r')
                s->phase = CH_SIZE_LF;
            else if (ch == '\n' || ch == '\0')
                goto bad;
            if (++s->line > BODY_LINE_MAX)
                goto bad;
            i++;
            break;
        case CH_SIZE_LF:
            if (ch != '\n')
                goto bad;
            s->line = 0;
            s->seen_digit = 0;
            if (s->left == 0) {
                s->phase = CH_TRAILER;
            } else {
                if (req->body_read + produced + s->left > max)
                    goto too_big;
                s->phase = CH_DATA;
            }
            i++;
            break;
        case CH_DATA: {
            size_t k = *avail - i;
            if (k > s->left)
                k = (size_t)s->left;
            if (k > n - produced)
                k = n - produced;
            if (k == 0)
                goto out; /* the caller's buffer is full */
            memmove(out + produced, in + i, k);
            produced += k;
            s->left -= k;
            i += k;
            if (s->left == 0)
                s->phase = CH_DATA_CR;
            break;
        }
        case CH_DATA_CR:
            if (ch != '\r')
                goto bad;
            s->phase = CH_DATA_LF;
            i++;
            break;
        case CH_DATA_LF:
            if (ch != '\n')
                goto bad;
            s->phase = CH_SIZE;
            i++;
            break;
        case CH_TRAILER:
            s->phase = ch == '\r' ? CH_END_LF : CH_TRAILER_LINE;
            if (s->phase == CH_TRAILER_LINE &&
                (ch == '\n' || ch == ' ' || ch == '\t' || ch == ':'))
                goto bad;
            if (++s->trailers > BODY_TRAILERS_MAX)
                goto bad;
            i++;
            break;
        case CH_TRAILER_LINE:
            if (ch == '\r')
                s->phase = CH_TRAILER_LINE_LF;
            else if (ch == '\n' || ch == '\0')
                goto bad;
            if (++s->trailers > BODY_TRAILERS_MAX)
                goto bad;
            i++;
            break;
        case CH_TRAILER_LINE_LF:
            if (ch != '\n')
                goto bad;
            s->phase = CH_TRAILER;
            i++;
            break;
        case CH_END_LF:
            if (ch != '\n')
                goto bad;
            s->phase = CH_DONE;
            i++;
            break;
        }
    }
out:
    *avail -= i;
    if (s->phase == CH_DONE)
        req->body_done = 1;
    return (ssize_t)produced;
bad:
    errno = EPROTO;
    return -1;
too_big:
    errno = EMSGSIZE;
    return -1;
}

/* Produces decoded body bytes from what is already buffered. */
static ssize_t body_take(co_request_t *req, char *out, size_t n)
{
    struct conn *c = req->conn;
    size_t avail = c->len - c->pos;
    if (req->body_mode == BODY_LENGTH) {
        size_t k = avail < n ? avail : n;
        if (k > req->body_left)
            k = (size_t)req->body_left;
        memcpy(out, c->buf + c->pos, k);
        c->pos += (uint32_t)k;
        req->body_left -= k;
        if (req->body_left == 0)
            req->body_done = 1;
        return (ssize_t)k;
    }
    size_t before = avail;
    ssize_t r = body__dechunk(req, c->buf + c->pos, &avail, out, n);
    if (r >= 0)
        c->pos += (uint32_t)(before - avail);
    return r;
}

/* The body timeout bounds each read, whatever the app asked. */
static int64_t body_deadline(const struct conn *c, int64_t deadline)
{
    int64_t limit = co_deadline(c->srv->cfg.limits.body_timeout_ms);
    if (deadline < 0 || (limit >= 0 && limit < deadline))
        deadline = limit;
    return deadline;
}

/* Reads up to n raw bytes from c's socket into out, the body timeout
 * bounding the wait, and counts them. Returns how many (> 0), or -1 with
 * errno (ECONNRESET: the client closed before the body's end). */
static ssize_t body_recv(struct conn *c, char *out, size_t n, int64_t deadline)
{
    ssize_t r = co_read(c->fd, out, n, body_deadline(c, deadline));
    if (r == 0)
        errno = ECONNRESET;
    if (r <= 0)
        return -1;
    if (c->srv->stats)
        stats__add(&c->srv->stats->bytes_in, (uint64_t)r);
    return r;
}

/* Reads a Content-Length body straight into the app's buffer once nothing
 * is buffered: no copy through the connection's buffer, and reads as large
 * as the app's buffer (a 1 MiB body took 64 reads of 16 KiB and a memcpy
 * each). Never past the body's end: what follows is the next request. */
static ssize_t body_read_direct(co_request_t *req, char *out, size_t n,
                                int64_t deadline)
{
    if (n > req->body_left)
        n = (size_t)req->body_left;
    ssize_t r = body_recv(req->conn, out, n, deadline);
    if (r < 0)
        return -1;
    req->body_left -= (uint64_t)r;
    if (req->body_left == 0)
        req->body_done = 1;
    return r;
}

/* Below this, a read goes through the connection's buffer: one large read
 * then serves many small co_req_read calls. */
#define BODY_DIRECT_MIN 4096

/* Reads more raw bytes behind the head. Returns 0, or -1 with errno. */
static int body_fill(co_request_t *req, int64_t deadline)
{
    struct conn *c = req->conn;
    if (c->pos == c->len) /* everything behind the head was consumed */
        c->pos = c->len = c->head_end;
    size_t room = HTTP_BUF_SIZE - c->len;
    if (room == 0) { /* unconsumed bytes fill the buffer: move them down */
        memmove(c->buf + c->head_end, c->buf + c->pos, c->len - c->pos);
        c->len -= c->pos - c->head_end;
        c->pos = c->head_end;
        room = HTTP_BUF_SIZE - c->len;
    }
    ssize_t r = body_recv(c, c->buf + c->len, room, deadline);
    if (r < 0)
        return -1;
    c->len += (uint32_t)r;
    return 0;
}

static void body_send_continue(co_request_t *req)
{
    req->expect_continue = 0;
    if (req->res.started)
        return;
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    struct iovec iov = {(void *)cont, sizeof cont - 1};
    if (response__write(req, &iov, 1) < 0)
        req->res.failed = 1;
}

ssize_t co_req_read(co_request_t *req, void *buf, size_t n, int64_t deadline)
{
    guard__check(req, "co_req_read");
    if (req->body_error) {
        errno = req->body_error;
        return -1;
    }
    if (req->body_mode == BODY_NONE || req->body_done || n == 0)
        return 0;
    if (req->expect_continue)
        body_send_continue(req);
    for (;;) {
        ssize_t r = 0;
        if (req->conn->pos < req->conn->len)
            r = body_take(req, buf, n);
        if (r == 0 && !req->body_done) { /* nothing buffered produced */
            if (req->body_mode == BODY_LENGTH && n >= BODY_DIRECT_MIN)
                r = body_read_direct(req, buf, n, deadline);
            else if (body_fill(req, deadline) < 0)
                r = -1;
            else
                continue;
        }
        if (r < 0) {
            req->body_error = errno;
            return -1;
        }
        req->body_read += (uint64_t)r;
        return r;
    }
}

int body__drain(co_request_t *req)
{
    if (req->body_mode == BODY_NONE || req->body_done)
        return 0;
    if (req->body_error || req->expect_continue)
        return -1; /* the client may be waiting for 100 before sending */
    char scratch[4096];
    uint64_t drained = 0;
    while (!req->body_done) {
        ssize_t r = co_req_read(req, scratch, sizeof scratch, -1);
        if (r < 0)
            return -1;
        drained += (uint64_t)r;
        if (drained > BODY_DRAIN_MAX)
            return -1;
    }
    return 0;
}
