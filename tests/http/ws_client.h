/*
 * ws_client.h - a raw WebSocket client over harness.h's connections, for
 * the suites that check the server's framing byte by byte: it writes any
 * frame, right or wrong (unmasked, reserved bits, bad lengths), and reads
 * the server's frames as they are on the wire.
 */
#ifndef COSERVE_TESTS_HTTP_WS_CLIENT_H
#define COSERVE_TESTS_HTTP_WS_CLIENT_H

#include <zlib.h>

#include "harness.h"

#define WSC_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define WSC_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

/* A frame as the server sent it. */
struct wsc_frame {
    int fin, rsv1, opcode;
    unsigned char *data; /* malloc'd, NUL-terminated; free it */
    size_t len;
};

/* Sends an opening handshake for target with extra header lines and
 * returns the response (101 or not); leftover bytes stay in c. */
static inline struct h_resp *wsc_handshake(struct h_conn *c, const char *target,
                                           const char *extra)
{
    char *req = h_fmt("GET %s HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Key: " WSC_KEY
                      "\r\nSec-WebSocket-Version: 13\r\n%s\r\n",
                      target, extra ? extra : "");
    h_sends(c, req);
    free(req);
    struct h_resp *r = calloc(1, sizeof *r);
    /* a 101 has no body: read the head alone */
    int64_t end = h_now_ms() + H_GUARD_MS;
    const char *e;
    while (!(e = c->buf ? h_memmem(c->buf, c->len, "\r\n\r\n") : NULL))
        cr_assert_eq(h_fill(c, end), 1, "no handshake answer");
    size_t hl = (size_t)(e - c->buf) + 4;
    char why[128] = "";
    cr_assert_eq(h_parse_head(c->buf, hl, r, why, sizeof why), 0,
                 "bad head: %s", why);
    if (r->status == 101) {
        memmove(c->buf, c->buf + hl, c->len - hl);
        c->len -= hl;
    } else {
        h_resp_free(r);
        r = h_response(c, 0);
    }
    return r;
}

/* Connects and upgrades (asserting a 101 with the right accept key). */
static inline struct h_conn *wsc_open(const char *target, const char *extra)
{
    struct h_conn *c = h_connect();
    struct h_resp *r = wsc_handshake(c, target, extra);
    cr_assert_eq(r->status, 101, "handshake for %s: status %d: %s", target,
                 r->status, r->body ? r->body : "");
    cr_assert_str_eq(h_header(r, "Sec-WebSocket-Accept"), WSC_ACCEPT);
    h_resp_free(r);
    return c;
}

/* Builds a client frame: first byte b0 (FIN, RSV, opcode as given), a
 * mask unless unmasked. Returns its length in out (malloc'd). */
static inline size_t wsc_build(unsigned char **out, int b0, const void *p,
                               size_t n, int masked)
{
    unsigned char *f = malloc(n + 14);
    size_t k = 0;
    f[k++] = (unsigned char)b0;
    unsigned char mbit = masked ? 0x80 : 0;
    if (n < 126) {
        f[k++] = (unsigned char)(mbit | n);
    } else if (n <= 0xFFFF) {
        f[k++] = mbit | 126;
        f[k++] = (unsigned char)(n >> 8);
        f[k++] = (unsigned char)n;
    } else {
        f[k++] = mbit | 127;
        for (int i = 7; i >= 0; i--)
            f[k++] = (unsigned char)((uint64_t)n >> (8 * i));
    }
    unsigned char mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    if (masked) {
        memcpy(f + k, mask, 4);
        k += 4;
    }
    for (size_t i = 0; i < n; i++)
        f[k + i] = ((const unsigned char *)p)[i] ^ (masked ? mask[i & 3] : 0);
    *out = f;
    return k + n;
}

/* Sends one masked frame: fin, opcode, payload. */
static inline void wsc_send_raw(struct h_conn *c, int b0, const void *p,
                                size_t n)
{
    unsigned char *f;
    size_t len = wsc_build(&f, b0, p, n, 1);
    h_send(c, f, len);
    free(f);
}

static inline void wsc_send(struct h_conn *c, int opcode, const void *p,
                            size_t n)
{
    wsc_send_raw(c, 0x80 | opcode, p, n);
}

/* Reads the next server frame. Returns 1, or 0 at end of stream. */
static inline int wsc_read(struct h_conn *c, struct wsc_frame *f)
{
    int64_t end = h_now_ms() + H_GUARD_MS;
    for (;;) {
        const unsigned char *b = (const unsigned char *)c->buf;
        if (c->len >= 2) {
            cr_assert_eq(b[1] & 0x80, 0, "a server frame is masked");
            size_t hl = 2;
            uint64_t n = b[1] & 0x7F;
            if (n == 126)
                hl = 4;
            else if (n == 127)
                hl = 10;
            if (c->len >= hl) {
                if (n == 126)
                    n = (uint64_t)b[2] << 8 | b[3];
                else if (n == 127)
                    for (int i = 0, j = (n = 0, 2); i < 8; i++, j++)
                        n = n << 8 | b[j];
                if (c->len >= hl + n) {
                    f->fin = b[0] >> 7;
                    f->rsv1 = b[0] >> 6 & 1;
                    f->opcode = b[0] & 0x0F;
                    cr_assert_eq(b[0] & 0x30, 0, "RSV2/RSV3 set by the server");
                    f->len = (size_t)n;
                    f->data = malloc(n + 1);
                    memcpy(f->data, b + hl, n);
                    f->data[n] = 0;
                    memmove(c->buf, c->buf + hl + n, c->len - hl - n);
                    c->len -= hl + n;
                    return 1;
                }
            }
        }
        int r = h_fill(c, end);
        cr_assert_neq(r, -1, "no frame from the server within %d ms",
                      H_GUARD_MS);
        if (r == 0)
            return 0;
    }
}

/* Reads the next frame, which must be a close; returns its code (1005
 * for none) and checks the connection then ends. */
static inline int wsc_expect_close(struct h_conn *c)
{
    struct wsc_frame f;
    cr_assert_eq(wsc_read(c, &f), 1,
                 "the connection ended with no close "
                 "frame");
    while (f.opcode == 0x9 || f.opcode == 0xA) { /* pings may come first */
        free(f.data);
        cr_assert_eq(wsc_read(c, &f), 1, "ended with no close frame");
    }
    cr_assert_eq(f.opcode, 0x8, "expected a close frame, got opcode %d",
                 f.opcode);
    int code = f.len >= 2 ? f.data[0] << 8 | f.data[1] : 1005;
    free(f.data);
    /* the server closes the TCP connection after its close frame */
    cr_assert_eq(h_wait_eof(c, H_GUARD_MS), 1,
                 "the server kept the connection after closing");
    return code;
}

/* Reads the next data message, whole (one frame from this server). */
static inline void wsc_expect_msg(struct h_conn *c, int opcode, const void *p,
                                  size_t n)
{
    struct wsc_frame f;
    cr_assert_eq(wsc_read(c, &f), 1, "ended instead of a message");
    cr_assert_eq(f.opcode, opcode, "opcode %d, expected %d", f.opcode, opcode);
    cr_assert(f.fin, "the server fragmented a message");
    cr_assert_eq(f.rsv1, 0, "compressed without deflate asked");
    cr_assert_eq(f.len, n, "length %zu, expected %zu", f.len, n);
    cr_assert(memcmp(f.data, p, n) == 0, "the message came back changed");
    free(f.data);
}

/* Raw DEFLATE of p with the RFC 7692 tail stripped, by a stream the
 * caller keeps (context takeover) or resets. */
static inline size_t wsc_deflate(z_stream *z, const void *p, size_t n,
                                 unsigned char *out, size_t cap)
{
    z->next_in = (Bytef *)p;
    z->avail_in = (uInt)n;
    z->next_out = out;
    z->avail_out = (uInt)cap;
    cr_assert_eq(deflate(z, Z_SYNC_FLUSH), Z_OK);
    size_t len = cap - z->avail_out;
    cr_assert(len >= 4 && !memcmp(out + len - 4, "\0\0\xff\xff", 4));
    return len - 4;
}

static inline size_t wsc_inflate(z_stream *z, const void *p, size_t n,
                                 unsigned char *out, size_t cap)
{
    unsigned char *in = malloc(n + 4);
    memcpy(in, p, n);
    memcpy(in + n, "\0\0\xff\xff", 4);
    z->next_in = in;
    z->avail_in = (uInt)(n + 4);
    z->next_out = out;
    z->avail_out = (uInt)cap;
    int rc = inflate(z, Z_SYNC_FLUSH);
    cr_assert(rc == Z_OK || rc == Z_BUF_ERROR, "inflate: %d", rc);
    cr_assert_eq(z->avail_in, 0, "inflate left input");
    free(in);
    return cap - z->avail_out;
}

#endif
