/*
 * permessage-deflate (RFC 7692) on Debian's zlib: the negotiation, and
 * raw DEFLATE each way with the 00 00 FF FF tail the RFC strips.
 *
 * A compressor with its window costs about 256 KiB and an inflater about
 * 40 KiB, far more than the rest of a connection, so streams are made on
 * the first compressed message, not at the handshake, and freed after each
 * message when that direction has no context takeover. With context
 * takeover (the RFC's default) they live as long as the connection: that
 * is the price of the better ratio, and a client can decline it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/ws.h"

/* One offer's parameters as parsed. */
struct ws_offer {
    int srv_no_ctx, cli_no_ctx;
    int srv_bits; /* 0: not given */
    int cli_bits; /* -1: not given, 0: given without a value */
};

static const char *ws_skip(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

static int ws_tchar(char ch)
{
    return ch > ' ' && ch < 127 && !strchr("()<>@,;:\\\"/[]?={}", ch);
}

/* Reads a token or quoted string at *pp into out (size room); returns its
 * length or -1. */
static int ws_word(const char **pp, char *out, size_t room)
{
    const char *p = *pp;
    size_t n = 0;
    if (*p == '"') {
        for (p++; *p && *p != '"'; p++) {
            if (*p == '\\' && p[1])
                p++;
            if (n + 1 >= room)
                return -1;
            out[n++] = *p;
        }
        if (*p != '"')
            return -1;
        p++;
    } else {
        for (; ws_tchar(*p); p++) {
            if (n + 1 >= room)
                return -1;
            out[n++] = *p;
        }
    }
    out[n] = '\0';
    *pp = p;
    return (int)n;
}

/* A window size: 8..15 in plain digits. */
static int ws_bits(const char *v)
{
    if (strlen(v) == 1 && v[0] >= '8' && v[0] <= '9')
        return v[0] - '0';
    if (strlen(v) == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5')
        return 10 + v[1] - '0';
    return -1;
}

/* Parses one offer's parameters (at *pp, just past its name) up to the
 * next ',' or the end. Returns 0 if they are valid, -1 if not; *pp ends
 * past the offer either way (or at a syntax error's place: -1). */
static int ws_offer_params(const char **pp, struct ws_offer *o)
{
    const char *p = *pp;
    int bad = 0;
    memset(o, 0, sizeof *o);
    o->cli_bits = -1;
    for (;;) {
        p = ws_skip(p);
        if (*p != ';')
            break;
        p = ws_skip(p + 1);
        char name[48], value[16] = "";
        int has_value = 0;
        if (ws_word(&p, name, sizeof name) <= 0)
            return *pp = p, -1;
        p = ws_skip(p);
        if (*p == '=') {
            p = ws_skip(p + 1);
            if (ws_word(&p, value, sizeof value) < 0)
                return *pp = p, -1;
            has_value = 1;
        }
        if (!strcasecmp(name, "server_no_context_takeover")) {
            bad |= has_value || o->srv_no_ctx;
            o->srv_no_ctx = 1;
        } else if (!strcasecmp(name, "client_no_context_takeover")) {
            bad |= has_value || o->cli_no_ctx;
            o->cli_no_ctx = 1;
        } else if (!strcasecmp(name, "server_max_window_bits")) {
            int b = has_value ? ws_bits(value) : -1;
            bad |= b < 0 || o->srv_bits;
            o->srv_bits = b;
        } else if (!strcasecmp(name, "client_max_window_bits")) {
            int b = has_value ? ws_bits(value) : 0;
            bad |= b < 0 || o->cli_bits >= 0;
            o->cli_bits = b;
        } else {
            bad = 1; /* a parameter we do not know: decline the offer */
        }
    }
    if (*p && *p != ',')
        return *pp = p, -1;
    *pp = p;
    return bad ? -1 : 0;
}

int ws_deflate__negotiate(co_ws_t *ws, const char *offers, char *ans,
                          size_t room)
{
    const char *p = offers;
    while (*p) {
        p = ws_skip(p);
        if (*p == ',') {
            p++;
            continue;
        }
        char name[48];
        if (ws_word(&p, name, sizeof name) <= 0)
            return 0; /* not a list we can read: no compression */
        struct ws_offer o;
        int ok = ws_offer_params(&p, &o) == 0;
        if (*p && *p != ',')
            return 0;
        /* zlib cannot make a raw stream with a 256-byte window (it turns 8
         * into 9, which the client could not read): decline such offers */
        if (!ok || strcasecmp(name, "permessage-deflate") || o.srv_bits == 8)
            continue;
        ws->deflate = 1;
        ws->srv_no_ctx = (uint8_t)o.srv_no_ctx;
        ws->cli_no_ctx = (uint8_t)o.cli_no_ctx;
        ws->srv_bits = (uint8_t)(o.srv_bits ? o.srv_bits : 15);
        snprintf(ans, room, "permessage-deflate%s%s",
                 o.srv_no_ctx ? "; server_no_context_takeover" : "",
                 o.cli_no_ctx ? "; client_no_context_takeover" : "");
        if (o.srv_bits) {
            size_t n = strlen(ans);
            snprintf(ans + n, room - n, "; server_max_window_bits=%d",
                     o.srv_bits);
        }
        return 1;
    }
    return 0;
}

static void ws_inflater_free(co_ws_t *ws)
{
    if (ws->zin) {
        inflateEnd(ws->zin);
        free(ws->zin);
        ws->zin = NULL;
    }
}

static void ws_deflater_free(co_ws_t *ws)
{
    if (ws->zout) {
        deflateEnd(ws->zout);
        free(ws->zout);
        ws->zout = NULL;
    }
}

void ws_deflate__free(co_ws_t *ws)
{
    ws_inflater_free(ws);
    ws_deflater_free(ws);
}

ssize_t ws_deflate__inflate(co_ws_t *ws)
{
    if (!ws->zin) {
        ws->zin = calloc(1, sizeof *ws->zin);
        /* 15 bits reads whatever window the client used */
        if (!ws->zin || inflateInit2(ws->zin, -15) != Z_OK) {
            free(ws->zin);
            ws->zin = NULL;
            errno = ENOMEM;
            return -1;
        }
    }
    /* the tail the sender stripped (RFC 7692 7.2.2); msg has room for it */
    memcpy(ws->msg + ws->msg_len, "\x00\x00\xff\xff", 4);
    z_stream *z = ws->zin;
    z->next_in = (Bytef *)ws->msg;
    z->avail_in = (uInt)(ws->msg_len + 4);
    size_t cap = ws->msg_len * 4 + 256, len = 0;
    if (cap > ws->max_message + 1)
        cap = ws->max_message + 1;
    char *out = malloc(cap);
    if (!out) {
        errno = ENOMEM;
        return -1;
    }
    int rc = Z_OK, err = 0;
    while (z->avail_in > 0 || len == cap) {
        if (len == cap) {
            if (cap > ws->max_message) {
                err = EMSGSIZE;
                break;
            }
            size_t ncap =
                cap * 2 > ws->max_message + 1 ? ws->max_message + 1 : cap * 2;
            char *n = realloc(out, ncap);
            if (!n) {
                err = ENOMEM;
                break;
            }
            out = n, cap = ncap;
        }
        z->next_out = (Bytef *)out + len;
        z->avail_out = (uInt)(cap - len);
        rc = inflate(z, Z_SYNC_FLUSH);
        len = cap - z->avail_out;
        if (rc == Z_STREAM_END) {
            /* a final block: only what follows inside this message is
             * wrong; the next message starts a new stream */
            inflateReset(z);
            if (z->avail_in > 4) {
                err = EILSEQ;
                break;
            }
            break;
        }
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            err = EILSEQ;
            break;
        }
        if (rc == Z_BUF_ERROR && z->avail_out)
            break; /* no progress possible: input used up */
    }
    if (!err && len > ws->max_message)
        err = EMSGSIZE;
    if (ws->cli_no_ctx || err)
        ws_inflater_free(ws);
    if (err) {
        free(out);
        errno = err;
        return -1;
    }
    free(ws->out);
    ws->out = out;
    return (ssize_t)len;
}

ssize_t ws_deflate__deflate(co_ws_t *ws, const void *data, size_t len,
                            uint8_t **outp)
{
    if (!ws->zout) {
        ws->zout = calloc(1, sizeof *ws->zout);
        if (!ws->zout ||
            deflateInit2(ws->zout, Z_DEFAULT_COMPRESSION, Z_DEFLATED,
                         -(int)ws->srv_bits, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
            free(ws->zout);
            ws->zout = NULL;
            errno = ENOMEM;
            return -1;
        }
    }
    z_stream *z = ws->zout;
    size_t cap = deflateBound(z, len) + 16;
    uint8_t *out = malloc(cap);
    if (!out) {
        errno = ENOMEM;
        return -1;
    }
    z->next_in = (Bytef *)data;
    z->avail_in = (uInt)len;
    z->next_out = out;
    z->avail_out = (uInt)cap;
    int rc = deflate(z, Z_SYNC_FLUSH);
    size_t n = cap - z->avail_out;
    if (rc != Z_OK || z->avail_in || n < 4) {
        free(out);
        ws_deflater_free(ws);
        errno = ENOMEM;
        return -1;
    }
    if (ws->srv_no_ctx)
        ws_deflater_free(ws);
    *outp = out;
    return (ssize_t)(n - 4); /* without the 00 00 FF FF tail */
}
