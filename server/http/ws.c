/*
 * WebSocket messages (RFC 6455 5-7): reading frames into messages,
 * answering control frames, sending, and the close handshake, all in the
 * coroutine of the request that upgraded (ws_handshake.c).
 *
 * The reader keeps its place in the connection (the frame header parsed,
 * the payload still to come, the message so far), so a co_ws_recv cut by
 * its deadline loses nothing and the next call goes on. While it waits for
 * bytes it also keeps the connection alive and honest: a ping when the
 * peer has been quiet for ping_ms, a close when it stayed silent for
 * idle_ms, and a 1001 close as soon as the server begins to stop.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/coro.h"
#include "core/hook_libc.h"
#include "core/log.h"
#include "core/hub.h"
#include "core/wait.h"
#include "http/bufpool.h"
#include "http/guard.h"
#include "http/stats.h"
#include "http/ws.h"

/* Messages shorter than this go out uncompressed: deflate's framing would
 * make them longer, not shorter. */
#define WS_DEFLATE_MIN 32

static int64_t ws_min(int64_t a, int64_t b)
{
    if (a < 0)
        return b;
    if (b < 0)
        return a;
    return a < b ? a : b;
}

static struct http_server *ws_srv(const co_ws_t *ws)
{
    return ws->req->conn->srv;
}

/* ---- writing ------------------------------------------------------------ */

/* Writes iov[0..n) whole (it is modified). A wait for the socket lasts at
 * most the server's write timeout, and never past deadline. A frame cut
 * half-way leaves the stream unusable: the connection is then closed. */
static int ws_writev(co_ws_t *ws, struct iovec *iov, int n, int64_t deadline)
{
    struct http_server *srv = ws_srv(ws);
    int64_t wt = srv->cfg.limits.write_timeout_ms > 0
                     ? srv->cfg.limits.write_timeout_ms
                     : 30 * 1000;
    size_t done = 0;
    int i = 0;
    while (i < n) {
        ssize_t w = hook__libc.writev(ws->fd, iov + i, n - i);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if ((errno == EAGAIN || errno == EWOULDBLOCK) &&
                fdio__wait(coro__self("co_ws_send"), ws->fd, CO_WRITABLE,
                           ws_min(deadline, co_deadline(wt))) == 0)
                continue;
            goto failed;
        }
        done += (size_t)w;
        if (srv->stats)
            stats__add(&srv->stats->bytes_out, (uint64_t)w);
        for (size_t left = (size_t)w; i < n && left;) {
            size_t take = left < iov[i].iov_len ? left : iov[i].iov_len;
            iov[i].iov_base = (char *)iov[i].iov_base + take;
            iov[i].iov_len -= take;
            left -= take;
            if (!iov[i].iov_len)
                i++;
        }
        while (i < n && !iov[i].iov_len)
            i++;
    }
    return 0;
failed:
    if (done) {
        int err = errno;
        ws->state = WS_CLOSED;
        ws->err = EPIPE;
        errno = err;
    }
    return -1;
}

/* Sends one whole frame, one writer at a time (the reader answering a
 * ping and the app's senders share the socket). */
static int ws_write(co_ws_t *ws, int opcode, int rsv1, const void *p, size_t n,
                    int64_t deadline)
{
    if (co_sem_acquire(ws->wlock, deadline) < 0)
        return -1;
    ws->writing = 1;
    int rc = -1;
    if (ws->state == WS_CLOSED) {
        errno = ws->err ? ws->err : EPIPE;
    } else {
        uint8_t h[WS_HEAD_MAX];
        struct iovec iov[2] = {{h, ws_frame__head(h, opcode, rsv1, n)},
                               {(void *)p, n}};
        rc = ws_writev(ws, iov, n ? 2 : 1, deadline);
        if (rc == 0)
            ws->last_tx = co_now();
    }
    ws->writing = 0;
    co_sem_release(ws->wlock);
    return rc;
}

/* A close frame's payload: the code, then the reason. Returns its size. */
static size_t ws_close_payload(uint8_t *p, unsigned code, const char *reason)
{
    if (!code)
        return 0;
    size_t rl = reason ? strlen(reason) : 0;
    if (rl > WS_CONTROL_MAX - 2)
        rl = WS_CONTROL_MAX - 2;
    p[0] = (uint8_t)(code >> 8);
    p[1] = (uint8_t)code;
    if (rl)
        memcpy(p + 2, reason, rl);
    return 2 + rl;
}

/* Sends our close frame (once); from then on no data frame goes out. */
static int ws_send_close(co_ws_t *ws, unsigned code, const char *reason,
                         int64_t deadline)
{
    uint8_t p[WS_CONTROL_MAX];
    size_t n = ws_close_payload(p, code, reason);
    if (ws->state != WS_OPEN)
        return 0;
    ws->state = WS_CLOSE_SENT;
    return ws_write(ws, WS_CLOSE, 0, p, n, deadline);
}

/* Fails the connection (RFC 6455 7.1.7): a close frame with code, best
 * effort and briefly, then nothing more is read or sent. Returns -1 with
 * errno err. */
static int ws_fail(co_ws_t *ws, unsigned code, int err)
{
    if (ws->state == WS_OPEN)
        ws_send_close(ws, code, NULL, co_deadline(1000));
    ws->state = WS_CLOSED;
    if (!ws->close_code)
        ws->close_code = WS_ABNORMAL;
    ws->err = err;
    errno = err;
    return -1;
}

/* ---- reading ------------------------------------------------------------ */

static int ws_stopping(const co_ws_t *ws)
{
    const struct http_server *srv = ws_srv(ws);
    return srv->draining ||
           (srv->stop_event && co_event_is_set(srv->stop_event));
}

/* When the next ping is due: once nothing moved one way for ping_ms. Not
 * only a quiet peer: a proxy between (nginx's proxy_read_timeout) closes
 * a connection on which the server stays silent, however chatty the
 * client, so a silent server pings too (and the pong feeds the other
 * way). */
static int64_t ws_ping_due(const co_ws_t *ws)
{
    int64_t last = ws->last_rx < ws->last_tx ? ws->last_rx : ws->last_tx;
    return last + ws->ping_ms;
}

/* Waits until the socket is readable. Sends a ping when it is due. Returns 0,
 * or -1 with errno: ETIMEDOUT (the caller's deadline, or a co_timeout scope),
 * ECANCELED, ESHUTDOWN (a stop began), ECONNABORTED (nothing came for idle_ms).
 */
static int ws_wait_readable(co_ws_t *ws, int64_t deadline)
{
    co_event_t *stop = ws_srv(ws)->stop_event;
    for (;;) {
        if (!ws->going && ws_stopping(ws)) {
            errno = ESHUTDOWN;
            return -1;
        }
        int64_t now = co_now();
        if (ws->idle_ms > 0 && now >= ws->last_rx + ws->idle_ms) {
            errno = ECONNABORTED;
            return -1;
        }
        if (ws->ping_ms > 0 && !ws->ping_out && ws->state == WS_OPEN &&
            now >= ws_ping_due(ws)) {
            ws->ping_out = 1;
            if (ws_write(ws, WS_PING, 0, "coserve", 7,
                         ws_min(deadline, co_deadline(WS_CLOSE_WAIT_MS))) < 0)
                return -1;
        }
        int64_t wake = deadline;
        if (ws->idle_ms > 0)
            wake = ws_min(wake, ws->last_rx + ws->idle_ms);
        if (ws->ping_ms > 0 && !ws->ping_out)
            wake = ws_min(wake, ws_ping_due(ws));
        struct co_waitable w[2] = {
            {.kind = CO_WAIT_FD, .events = CO_READABLE, .fd = ws->fd},
            {.kind = stop && !ws->going ? CO_WAIT_EVENT : CO_WAIT_NONE,
             .event = stop}};
        int r = wait__any(w, 2, wake, 1); /* the read said EAGAIN */
        if (r == 0)
            return 0;
        if (r == 1)
            continue;
        if (errno != ETIMEDOUT)
            return -1;
        now = co_now();
        if ((deadline >= 0 && now >= deadline) || (wake >= 0 && now < wake))
            return -1; /* the caller's deadline, or a scope's */
    }
}

/* Gives the read buffer back to the pool when nothing is pending in it:
 * an idle connection then holds none. */
static void ws_rbuf_release(co_ws_t *ws)
{
    if (ws->rbuf && ws->rpos == ws->rlen) {
        bufpool__put(&ws_srv(ws)->buf_pool, ws->rbuf);
        ws->rbuf = NULL;
        ws->rlen = ws->rpos = 0;
    }
}

/* Makes at least need bytes (<= HTTP_BUF_SIZE) available at rbuf + rpos.
 * Returns 0, or -1 with errno (as ws_wait_readable, or ECONNRESET when the
 * peer closed the TCP connection without a close frame). */
static int ws_fill(co_ws_t *ws, size_t need, int64_t deadline)
{
    struct http_server *srv = ws_srv(ws);
    while (ws->rlen - ws->rpos < need) {
        if (!ws->rbuf && !(ws->rbuf = bufpool__get(&srv->buf_pool))) {
            errno = ENOMEM;
            return -1;
        }
        if (ws->rpos && ws->rpos + need > HTTP_BUF_SIZE) {
            memmove(ws->rbuf, ws->rbuf + ws->rpos, ws->rlen - ws->rpos);
            ws->rlen -= ws->rpos;
            ws->rpos = 0;
        }
        ssize_t r = hook__libc.read(ws->fd, ws->rbuf + ws->rlen,
                                    HTTP_BUF_SIZE - ws->rlen);
        if (r > 0) {
            ws->rlen += (uint32_t)r;
            ws->last_rx = co_now();
            ws->ping_out = 0;
            if (srv->stats)
                stats__add(&srv->stats->bytes_in, (uint64_t)r);
            continue;
        }
        if (r == 0) {
            errno = ECONNRESET;
            return -1;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        ws_rbuf_release(ws);
        if (ws_wait_readable(ws, deadline) < 0)
            return -1;
    }
    return 0;
}

/* Makes room for n more message bytes, plus inflate's 4-byte tail. */
static int ws_reserve(co_ws_t *ws, uint64_t n)
{
    size_t need = ws->msg_len + (size_t)n + 4;
    if (need <= ws->msg_cap)
        return 0;
    size_t cap = ws->msg_cap ? ws->msg_cap : 256;
    while (cap < need)
        cap *= 2;
    char *m = realloc(ws->msg, cap);
    if (!m) {
        errno = ENOMEM;
        return -1;
    }
    ws->msg = m;
    ws->msg_cap = cap;
    return 0;
}

/* Acts on a whole control frame. Returns 0 to go on reading, or -1: the
 * connection is closed (EPIPE after a close handshake) or failed. */
static int ws_control(co_ws_t *ws, int opcode, const uint8_t *p, size_t n)
{
    if (opcode == WS_PING) {
        if (ws->state != WS_OPEN)
            return 0; /* after our close frame, nothing more is sent */
        return ws_write(ws, WS_PONG, 0, p, n, co_deadline(WS_CLOSE_WAIT_MS)) < 0
                   ? ws_fail(ws, WS_ABNORMAL, errno)
                   : 0;
    }
    if (opcode == WS_PONG)
        return 0;
    unsigned code = WS_NO_STATUS;
    if (n == 1)
        return ws_fail(ws, WS_PROTOCOL_ERROR, EPROTO);
    if (n >= 2) {
        code = (unsigned)p[0] << 8 | p[1];
        if (!ws_frame__close_code_ok(code))
            return ws_fail(ws, WS_PROTOCOL_ERROR, EPROTO);
        struct ws_utf8 u = {0};
        if (ws_frame__utf8(&u, p + 2, n - 2) < 0 || u.need)
            return ws_fail(ws, WS_BAD_DATA, EILSEQ);
        memcpy(ws->close_reason, p + 2, n - 2);
        ws->close_reason[n - 2] = '\0';
    }
    ws->close_code = (uint16_t)code;
    if (ws->state == WS_OPEN) /* echo the code (RFC 6455 5.5.1) */
        ws_send_close(ws, code == WS_NO_STATUS ? 0 : code, NULL,
                      co_deadline(WS_CLOSE_WAIT_MS));
    ws->state = WS_CLOSED;
    ws->err = EPIPE;
    errno = EPIPE;
    return -1;
}

/* A data frame's header was just parsed: checks it against the message in
 * progress and the size limit. Returns 0 or -1 (the connection failed). */
static int ws_data_begin(co_ws_t *ws, const struct ws_frame *f)
{
    if (f->opcode == WS_CONT ? !ws->in_msg : ws->in_msg)
        return ws_fail(ws, WS_PROTOCOL_ERROR, EPROTO);
    if (f->rsv1 && (!ws->deflate || f->opcode == WS_CONT))
        return ws_fail(ws, WS_PROTOCOL_ERROR, EPROTO);
    if (f->opcode != WS_CONT) {
        ws->in_msg = 1;
        ws->msg_type = f->opcode;
        ws->msg_z = f->rsv1;
        ws->msg_len = 0;
        memset(&ws->utf8, 0, sizeof ws->utf8);
    }
    /* a compressed message's bytes count against the limit as they come
     * (what we buffer stays bounded), and its inflated size again. Data
     * that does not compress comes out of a deflater a little larger
     * (zlib's deflateBound: at most an eighth more, plus block headers):
     * a message within the limit must not be refused for that */
    size_t cap = ws->max_message;
    if (ws->msg_z && cap < SIZE_MAX / 2)
        cap += (cap >> 3) + (cap >> 6) + 64;
    if (f->len > cap - ws->msg_len)
        return ws_fail(ws, WS_TOO_BIG, EMSGSIZE);
    return ws_reserve(ws, f->len) < 0 ? ws_fail(ws, WS_INTERNAL, ENOMEM) : 0;
}

/* Takes the current data frame's payload into the message. Returns 0 when
 * the frame is whole, -1 with errno otherwise. */
static int ws_data_take(co_ws_t *ws, int64_t deadline)
{
    struct ws_frame *f = &ws->frame;
    while (f->left) {
        if (ws->rpos == ws->rlen && ws_fill(ws, 1, deadline) < 0)
            return -1;
        size_t take = ws->rlen - ws->rpos;
        if (take > f->left)
            take = (size_t)f->left;
        uint8_t *dst = (uint8_t *)ws->msg + ws->msg_len;
        memcpy(dst, ws->rbuf + ws->rpos, take);
        ws_frame__unmask(f, f->len - f->left, dst, take);
        ws->rpos += (uint32_t)take;
        ws->msg_len += take;
        f->left -= take;
        /* text fails as soon as a bad byte comes, fragment or not */
        if (ws->msg_type == WS_TEXT && !ws->msg_z &&
            ws_frame__utf8(&ws->utf8, dst, take) < 0)
            return ws_fail(ws, WS_BAD_DATA, EILSEQ);
    }
    return 0;
}

/* The last frame of a message arrived: inflates and checks it. Returns
 * its length (*data set), or -1 (the connection failed). */
static ssize_t ws_data_end(co_ws_t *ws, void **data)
{
    ws->in_msg = 0;
    if (!ws->msg_z) {
        if (ws->msg_type == WS_TEXT && ws->utf8.need)
            return ws_fail(ws, WS_BAD_DATA, EILSEQ);
        *data = ws->msg ? ws->msg : (void *)"";
        return (ssize_t)ws->msg_len;
    }
    ssize_t n = ws_deflate__inflate(ws);
    if (n < 0)
        return ws_fail(ws,
                       errno == EMSGSIZE ? WS_TOO_BIG
                       : errno == ENOMEM ? WS_INTERNAL
                                         : WS_BAD_DATA,
                       errno == ENOMEM ? ENOMEM : errno);
    struct ws_utf8 u = {0};
    if (ws->msg_type == WS_TEXT &&
        (ws_frame__utf8(&u, (uint8_t *)ws->out, (size_t)n) < 0 || u.need))
        return ws_fail(ws, WS_BAD_DATA, EILSEQ);
    *data = ws->out;
    return n;
}

/* Reads frames until a whole data message (returned, *data and *type
 * set), or the close handshake ends (-1, EPIPE). discard: we sent our
 * close and only wait for the peer's; messages are dropped. */
static ssize_t ws_read(co_ws_t *ws, void **data, int *type, int64_t deadline,
                       int discard)
{
    struct ws_frame *f = &ws->frame;
    for (;;) {
        if (!f->have) {
            unsigned code = 0;
            int hl;
            if (ws_fill(ws, 2, deadline) < 0)
                return -1;
            while ((hl = ws_frame__parse(f, (uint8_t *)ws->rbuf + ws->rpos,
                                         ws->rlen - ws->rpos, &code)) == 0)
                if (ws_fill(ws, ws->rlen - ws->rpos + 1, deadline) < 0)
                    return -1;
            if (hl < 0)
                return ws_fail(ws, code, EPROTO);
            ws->rpos += (uint32_t)hl;
            if (f->opcode >= WS_CLOSE && f->rsv1)
                return ws_fail(ws, WS_PROTOCOL_ERROR, EPROTO);
            if (f->opcode < WS_CLOSE && ws_data_begin(ws, f) < 0)
                return -1;
        }
        if (f->opcode >= WS_CLOSE) {
            uint8_t p[WS_CONTROL_MAX];
            size_t n = (size_t)f->len;
            if (ws_fill(ws, n, deadline) < 0)
                return -1;
            if (n)
                memcpy(p, ws->rbuf + ws->rpos, n);
            ws_frame__unmask(f, 0, p, n);
            ws->rpos += (uint32_t)n;
            f->have = 0;
            if (ws_control(ws, f->opcode, p, n) < 0)
                return -1;
            continue;
        }
        if (ws_data_take(ws, deadline) < 0)
            return -1;
        f->have = 0;
        if (!f->fin)
            continue;
        ssize_t n = ws_data_end(ws, data);
        if (n < 0 || !discard) {
            *type = ws->msg_type;
            return n;
        }
    }
}

/* Our close frame is out: reads until the peer's (RFC 6455 7.1.1 lets the
 * server close the TCP connection first, which it does after). Returns
 * 0 once it came, -1 with errno if not by deadline or on an error. */
static int ws_close_wait(co_ws_t *ws, int64_t deadline)
{
    void *data;
    int type;
    ws->going = 1; /* a stop adds nothing now */
    ws->idle_ms = 0;
    while (ws->state == WS_CLOSE_SENT)
        if (ws_read(ws, &data, &type, deadline, 1) < 0)
            break;
    if (ws->state == WS_CLOSED && ws->close_code &&
        ws->close_code != WS_ABNORMAL)
        return 0;
    int err = errno;
    ws->state = WS_CLOSED;
    if (!ws->close_code)
        ws->close_code = WS_ABNORMAL;
    errno = err;
    return -1;
}

/* A read failed: turns what the wait said into what the app is told. */
static ssize_t ws_read_failed(co_ws_t *ws, int64_t deadline)
{
    int err = errno;
    if (ws->state == WS_CLOSED) {
        errno = ws->err ? ws->err : err;
        return -1;
    }
    switch (err) {
    case ETIMEDOUT:
    case ECANCELED:
        return -1;  /* the connection is intact: call again */
    case ESHUTDOWN: /* the server stops: say so, wait for the answer */
        ws->going = 1;
        ws_send_close(ws, WS_GOING_AWAY, "server going away",
                      ws_min(deadline, co_deadline(WS_CLOSE_WAIT_MS)));
        ws_close_wait(ws, ws_min(deadline, co_deadline(WS_CLOSE_WAIT_MS)));
        ws->err = EPIPE;
        break;
    case ECONNABORTED:
        ws_fail(ws, WS_GOING_AWAY, ECONNABORTED);
        break;
    default:
        ws->state = WS_CLOSED;
        ws->close_code = WS_ABNORMAL;
        ws->err = err;
        break;
    }
    ws->state = WS_CLOSED;
    errno = ws->err;
    return -1;
}

/* ---- the API ------------------------------------------------------------ */

ssize_t co_ws_recv(co_ws_t *ws, void **data, int *type, int64_t deadline)
{
    guard__check(ws->req, "co_ws_recv");
    if (ws->state != WS_OPEN) {
        errno = ws->err ? ws->err : EPIPE;
        return -1;
    }
    /* the last message handed out is done with: an idle connection keeps
     * no message memory */
    if (!ws->in_msg) {
        free(ws->msg);
        free(ws->out);
        ws->msg = ws->out = NULL;
        ws->msg_len = ws->msg_cap = 0;
    }
    int t = 0;
    void *d = NULL;
    ssize_t n = ws_read(ws, &d, &t, deadline, 0);
    if (n < 0)
        return ws_read_failed(ws, deadline);
    ws_rbuf_release(ws);
    if (data)
        *data = d;
    if (type)
        *type = t;
    return n;
}

int co_ws_send(co_ws_t *ws, int type, const void *data, size_t len,
               int64_t deadline)
{
    guard__check(ws->req, "co_ws_send");
    if ((type != CO_WS_TEXT && type != CO_WS_BINARY) || (len && !data)) {
        errno = EINVAL;
        return -1;
    }
    if (ws->state != WS_OPEN) {
        errno = ws->err ? ws->err : EPIPE;
        return -1;
    }
    struct ws_utf8 u = {0};
    if (type == CO_WS_TEXT && (ws_frame__utf8(&u, data, len) < 0 || u.need)) {
        errno = EILSEQ;
        return -1;
    }
    if (!ws->deflate || len < WS_DEFLATE_MIN)
        return ws_write(ws, type, 0, data, len, deadline);
    uint8_t *z;
    ssize_t zn = ws_deflate__deflate(ws, data, len, &z);
    if (zn < 0)
        return -1;
    int rc = ws_write(ws, type, 1, z, (size_t)zn, deadline);
    free(z);
    return rc;
}

int co_ws_ping(co_ws_t *ws, const void *data, size_t len, int64_t deadline)
{
    guard__check(ws->req, "co_ws_ping");
    if (len > WS_CONTROL_MAX || (len && !data)) {
        errno = EINVAL;
        return -1;
    }
    if (ws->state != WS_OPEN) {
        errno = ws->err ? ws->err : EPIPE;
        return -1;
    }
    return ws_write(ws, WS_PING, 0, data, len, deadline);
}

int co_ws_close(co_ws_t *ws, int code, const char *reason, int64_t deadline)
{
    guard__check(ws->req, "co_ws_close");
    size_t rl = reason ? strlen(reason) : 0;
    struct ws_utf8 u = {0};
    if ((code && !ws_frame__close_code_ok((unsigned)code)) || (!code && rl) ||
        rl > WS_CONTROL_MAX - 2 ||
        ws_frame__utf8(&u, (const uint8_t *)reason, rl) < 0 || u.need) {
        errno = EINVAL;
        return -1;
    }
    if (ws->state == WS_CLOSED)
        return 0;
    if (ws->state == WS_OPEN &&
        ws_send_close(ws, (unsigned)code, reason, deadline) < 0) {
        ws->state = WS_CLOSED;
        return -1;
    }
    return ws_close_wait(ws, deadline);
}

int co_ws_close_code(const co_ws_t *ws, const char **reason)
{
    guard__check(ws->req, "co_ws_close_code");
    if (reason)
        *reason = ws->close_reason;
    return ws->close_code;
}

int co_ws_set_limits(co_ws_t *ws, size_t max_message, int64_t ping_ms,
                     int64_t idle_ms)
{
    guard__check(ws->req, "co_ws_set_limits");
    if (max_message)
        ws->max_message = max_message;
    if (ping_ms)
        ws->ping_ms = ping_ms;
    if (idle_ms)
        ws->idle_ms = idle_ms;
    return 0;
}

void ws__end(co_ws_t *ws, int rc)
{
    co_request_t *req = ws->req;
    int64_t dl = co_deadline(WS_CLOSE_WAIT_MS);
    if (ws->state != WS_CLOSED && co_cancelled()) {
        /* the grace ran out: one try to say so, without waiting */
        uint8_t fr[WS_HEAD_MAX + 2] = {0x88, 2, WS_GOING_AWAY >> 8,
                                       WS_GOING_AWAY & 0xFF};
        if (ws->state == WS_OPEN && !ws->writing) {
            ssize_t w = send(ws->fd, fr, 4, MSG_DONTWAIT | MSG_NOSIGNAL);
            (void)w;
        }
    } else if (ws->state == WS_OPEN) {
        if (ws_send_close(ws, rc < 0 ? WS_INTERNAL : WS_NORMAL, NULL, dl) == 0)
            ws_close_wait(ws, dl);
    } else if (ws->state == WS_CLOSE_SENT) {
        ws_close_wait(ws, dl);
    }
    if (ws->rbuf)
        bufpool__put(&ws_srv(ws)->buf_pool, ws->rbuf);
    ws_deflate__free(ws);
    free(ws->msg);
    free(ws->out);
    co_sem_free(ws->wlock);
    free(ws);
    req->ws = NULL;
}
