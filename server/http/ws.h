/*
 * ws.h - WebSocket connections (RFC 6455) and permessage-deflate (RFC
 * 7692), shared by ws_handshake.c, ws_frame.c, ws_deflate.c and ws.c.
 *
 * A WebSocket lives in the coroutine of the request that upgraded: the
 * handler calls co_ws_recv/co_ws_send until it returns, and the server
 * then finishes the close handshake and closes the connection. What an
 * idle connection holds is kept small: at the 101 the head moves into the
 * request's arena and the connection's read buffer goes back to the pool,
 * as do the coroutine's stack pages the handshake touched; the frame
 * buffer goes back whenever no byte is pending, a received message is
 * freed at the next co_ws_recv, and the zlib streams exist only while a
 * compressed message is in flight unless context takeover keeps them.
 */
#ifndef COSERVE_HTTP_WS_H
#define COSERVE_HTTP_WS_H

#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

#include "http/http.h"

/* opcodes (RFC 6455 5.2) */
enum {
    WS_CONT = 0x0,
    WS_TEXT = 0x1,
    WS_BINARY = 0x2,
    WS_CLOSE = 0x8,
    WS_PING = 0x9,
    WS_PONG = 0xA,
};

/* close codes the server sends (RFC 6455 7.4.1) */
enum {
    WS_NORMAL = 1000,
    WS_GOING_AWAY = 1001,
    WS_PROTOCOL_ERROR = 1002,
    WS_NO_STATUS = 1005,
    WS_ABNORMAL = 1006,
    WS_BAD_DATA = 1007,
    WS_TOO_BIG = 1009,
    WS_INTERNAL = 1011,
};

/* Defaults, unless the server's flags or co_ws_set_limits say otherwise. */
#define WS_MAX_MESSAGE (1024 * 1024)
#define WS_PING_MS (30 * 1000)
#define WS_IDLE_MS (75 * 1000)
/* How long the server waits for the peer's close frame after sending its
 * own, when the app does not say (the handler returned, or a stop). */
#define WS_CLOSE_WAIT_MS 2000
/* A frame header is at most 14 bytes; a control payload at most 125. */
#define WS_HEAD_MAX 14
#define WS_CONTROL_MAX 125

enum ws_state { WS_OPEN, WS_CLOSE_SENT, WS_CLOSED };

/* Where a UTF-8 check stands between fragments (ws_frame.c). */
struct ws_utf8 {
    uint8_t need;   /* continuation bytes still expected */
    uint8_t lo, hi; /* the range the next one must be in */
};

/* The frame being read: its header once parsed, and how much of its
 * payload is still to come (a recv cut by its deadline resumes here). */
struct ws_frame {
    uint8_t have; /* the header is parsed */
    uint8_t fin, rsv1, opcode;
    uint8_t mask[4];
    uint64_t len;  /* payload bytes */
    uint64_t left; /* not yet taken */
};

struct co_ws {
    co_request_t *req;
    int fd;
    uint8_t state;    /* enum ws_state */
    uint8_t in_msg;   /* a fragmented message is being assembled */
    uint8_t msg_type; /* its opcode (WS_TEXT or WS_BINARY) */
    uint8_t msg_z;    /* it is compressed (RSV1 on its first frame) */
    uint8_t going;    /* a stop began: 1001 sent or to send */
    uint8_t ping_out; /* a ping went out since the last byte came in */
    uint8_t writing;  /* a frame is being written (wlock is held) */
    uint8_t deflate;  /* permessage-deflate was negotiated */
    uint8_t srv_no_ctx, cli_no_ctx; /* no context takeover, each way */
    uint8_t srv_bits;               /* our compressor's window */
    uint16_t close_code;            /* the peer's, once its close came */
    int err;                        /* why the connection failed (errno) */
    size_t max_message;
    int64_t ping_ms, idle_ms;
    int64_t last_rx; /* co_now() when a byte last arrived */
    int64_t last_tx; /* co_now() when a frame last went out */
    /* the read buffer: from the server's pool while bytes are pending */
    char *rbuf;
    uint32_t rlen, rpos;
    struct ws_frame frame;
    struct ws_utf8 utf8;
    /* the message being assembled (raw or compressed), then handed out */
    char *msg;
    size_t msg_len, msg_cap;
    char *out; /* an inflated message handed out (freed at the next recv) */
    z_stream *zin, *zout;
    co_sem_t *wlock; /* one frame written at a time */
    char protocol[64];
    char close_reason[WS_CONTROL_MAX];
};

/* ---- ws_frame.c ---- */
/* Checks p[0..n) as a continuation of u's text. Returns 0, or -1 on a
 * byte no UTF-8 text can have there. */
int ws_frame__utf8(struct ws_utf8 *u, const uint8_t *p, size_t n);
/* Whether a close frame may carry code (RFC 6455 7.4). */
int ws_frame__close_code_ok(unsigned code);
/* Writes a server frame header (unmasked) into h; returns its length. */
size_t ws_frame__head(uint8_t h[WS_HEAD_MAX], int opcode, int rsv1,
                      uint64_t len);
/* Parses a client frame header from p[0..n). Returns its length, 0 if
 * more bytes are needed, or -1 with the close code to fail with in *code. */
int ws_frame__parse(struct ws_frame *f, const uint8_t *p, size_t n,
                    unsigned *code);
/* Unmasks p[0..n), which starts `at` bytes into the frame's payload. */
void ws_frame__unmask(const struct ws_frame *f, uint64_t at, uint8_t *p,
                      size_t n);

/* ---- ws_deflate.c ---- */
/* Picks the first acceptable permessage-deflate offer of the request's
 * Sec-WebSocket-Extensions, sets ws's parameters and writes the answer's
 * header value into ans (room bytes). Returns 1 if one was accepted. */
int ws_deflate__negotiate(co_ws_t *ws, const char *offers, char *ans,
                          size_t room);
/* Inflates the message in ws->msg into ws->out, at most ws->max_message
 * bytes. Returns the length, or -1 with EMSGSIZE or EPROTO. */
ssize_t ws_deflate__inflate(co_ws_t *ws);
/* Compresses data into a malloc'd buffer (*out, the caller frees). Returns
 * its length, or -1 with ENOMEM. */
ssize_t ws_deflate__deflate(co_ws_t *ws, const void *data, size_t len,
                            uint8_t **out);
/* Frees the zlib streams. */
void ws_deflate__free(co_ws_t *ws);

/* ---- ws.c ---- */
/* The handler of a request that upgraded returned (rc its result):
 * finishes the close handshake and frees ws (conn.c calls it). */
void ws__end(co_ws_t *ws, int rc);

/* ---- ws_handshake.c ---- */
/* Sends the 101 head with the given extra lines (each "Name: value\r\n")
 * and the app's headers, and takes the connection out of HTTP: no
 * keep-alive, no request timeout, no read watcher. Returns 0 or -1. */
int ws_handshake__switch(co_request_t *req, const char *protocol,
                         const char *extra);

#endif
