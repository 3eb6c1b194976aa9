/*
 * WebSocket framing rules (RFC 6455 5): client frame headers, server frame
 * headers, unmasking, close codes, and UTF-8 checked across fragments.
 * Pure functions over bytes, no I/O: ws.c reads and writes, this decides.
 */
#include <string.h>

#include "http/ws.h"

int ws_frame__utf8(struct ws_utf8 *u, const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t b = p[i];
        if (u->need == 0) {
            /* ASCII runs: the common case, eight bytes per test */
            if (b < 0x80) {
                while (i + 8 <= n) {
                    uint64_t w;
                    memcpy(&w, p + i, 8);
                    if (w & 0x8080808080808080ull)
                        break;
                    i += 8;
                }
                if (i < n && p[i] < 0x80)
                    i++;
                continue;
            }
            /* the lead byte fixes how many follow and, for E0, ED, F0 and
             * F4, a narrower range for the next one: no overlong forms,
             * no surrogates, nothing above U+10FFFF (RFC 3629 4) */
            u->lo = 0x80, u->hi = 0xBF;
            if (b >= 0xC2 && b <= 0xDF)
                u->need = 1;
            else if (b == 0xE0)
                u->need = 2, u->lo = 0xA0;
            else if (b == 0xED)
                u->need = 2, u->hi = 0x9F;
            else if (b >= 0xE1 && b <= 0xEF)
                u->need = 2;
            else if (b == 0xF0)
                u->need = 3, u->lo = 0x90;
            else if (b >= 0xF1 && b <= 0xF3)
                u->need = 3;
            else if (b == 0xF4)
                u->need = 3, u->hi = 0x8F;
            else
                return -1;
        } else {
            if (b < u->lo || b > u->hi)
                return -1;
            u->need--;
            u->lo = 0x80, u->hi = 0xBF;
        }
        i++;
    }
    return 0;
}

int ws_frame__close_code_ok(unsigned code)
{
    /* 1004-1006 and 1015 are for reports, never for the wire; 1012-1014
     * were registered after RFC 6455 (IANA) */
    if (code >= 1000 && code <= 1003)
        return 1;
    if (code >= 1007 && code <= 1014)
        return 1;
    return code >= 3000 && code <= 4999;
}

size_t ws_frame__head(uint8_t h[WS_HEAD_MAX], int opcode, int rsv1,
                      uint64_t len)
{
    size_t n = 2;
    h[0] = (uint8_t)(0x80 | (rsv1 ? 0x40 : 0) | opcode);
    if (len < 126) {
        h[1] = (uint8_t)len;
    } else if (len <= 0xFFFF) {
        h[1] = 126;
        h[2] = (uint8_t)(len >> 8);
        h[3] = (uint8_t)len;
        n = 4;
    } else {
        h[1] = 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (uint8_t)(len >> (56 - 8 * i));
        n = 10;
    }
    return n;
}

int ws_frame__parse(struct ws_frame *f, const uint8_t *p, size_t n,
                    unsigned *code)
{
    if (n < 2)
        return 0;
    *code = WS_PROTOCOL_ERROR;
    f->fin = p[0] >> 7;
    f->rsv1 = p[0] >> 6 & 1;
    f->opcode = p[0] & 0x0F;
    if (p[0] & 0x30) /* RSV2, RSV3: no extension we speak defines them */
        return -1;
    if (!(p[1] & 0x80)) /* a client must mask every frame (5.1) */
        return -1;
    uint64_t len = p[1] & 0x7F;
    size_t need = 2 + 4;
    if (len == 126)
        need += 2;
    else if (len == 127)
        need += 8;
    if (n < need)
        return 0;
    if (len == 126) {
        len = (uint64_t)p[2] << 8 | p[3];
    } else if (len == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | p[2 + i];
        if (len >> 63) /* the most significant bit must be 0 (5.2) */
            return -1;
    }
    if (f->opcode >= WS_CLOSE) {
        if (f->opcode > WS_PONG)
            return -1;
        /* control frames are whole and short (5.5) */
        if (!f->fin || len > WS_CONTROL_MAX)
            return -1;
    } else if (f->opcode > WS_BINARY) {
        return -1; /* reserved data opcodes */
    }
    memcpy(f->mask, p + need - 4, 4);
    f->len = f->left = len;
    f->have = 1;
    return (int)need;
}

void ws_frame__unmask(const struct ws_frame *f, uint64_t at, uint8_t *p,
                      size_t n)
{
    size_t i = 0;
    unsigned k = (unsigned)(at & 3);
    /* byte by byte up to a mask boundary, then eight bytes at a time */
    for (; i < n && k; i++, k = (k + 1) & 3)
        p[i] ^= f->mask[k];
    uint8_t m8[8];
    for (int j = 0; j < 8; j++)
        m8[j] = f->mask[j & 3];
    uint64_t m;
    memcpy(&m, m8, 8);
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        w ^= m;
        memcpy(p + i, &w, 8);
    }
    for (; i < n; i++)
        p[i] ^= f->mask[(at + i) & 3];
}
