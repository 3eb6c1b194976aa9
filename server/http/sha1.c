/*
 * SHA-1 and base64, for the WebSocket handshake alone: the server answers
 * a key with base64(SHA-1(key + GUID)) (RFC 6455 4.2.2). Linking a crypto
 * library for 20 bytes of one hash would drag it into every worker; this
 * is FIPS 180-4 section 6.1 written out, and it protects nothing (the
 * handshake's hash only proves the server speaks WebSocket).
 */
#include "http/sha1.h"

#include <string.h>

static uint32_t sha1_rol(uint32_t x, int n)
{
    return x << n | x >> (32 - n);
}

/* One 64-byte block into the state h[0..5). */
static void sha1_block(uint32_t h[5], const uint8_t *p)
{
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 80; i++)
        w[i] = sha1_rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20)
            f = (b & c) | (~b & d), k = 0x5A827999;
        else if (i < 40)
            f = b ^ c ^ d, k = 0x6ED9EBA1;
        else if (i < 60)
            f = (b & c) | (b & d) | (c & d), k = 0x8F1BBCDC;
        else
            f = b ^ c ^ d, k = 0xCA62C1D6;
        uint32_t t = sha1_rol(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = sha1_rol(b, 30);
        b = a;
        a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

void sha1__digest(const void *data, size_t len, uint8_t out[20])
{
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476,
                     0xC3D2E1F0};
    const uint8_t *p = data;
    size_t left = len;
    for (; left >= 64; p += 64, left -= 64)
        sha1_block(h, p);
    /* the tail, the 0x80 marker and the bit length: one or two blocks */
    uint8_t last[128] = {0};
    memcpy(last, p, left);
    last[left] = 0x80;
    size_t n = left + 9 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++)
        last[n - 1 - i] = (uint8_t)(bits >> (8 * i));
    sha1_block(h, last);
    if (n == 128)
        sha1_block(h, last + 64);
    for (int i = 0; i < 5; i++) {
        out[4 * i] = (uint8_t)(h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(h[i] >> 8);
        out[4 * i + 3] = (uint8_t)h[i];
    }
}

static const char sha1_b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t sha1__base64(const uint8_t *in, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = sha1_b64[v >> 18 & 63];
        out[o++] = sha1_b64[v >> 12 & 63];
        out[o++] = i + 1 < len ? sha1_b64[v >> 6 & 63] : '=';
        out[o++] = i + 2 < len ? sha1_b64[v & 63] : '=';
    }
    out[o] = '\0';
    return o;
}

int sha1__base64_len(const char *s, size_t len)
{
    if (len % 4)
        return -1;
    size_t pad = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (ch == '=') {
            if (i < len - 2)
                return -1;
            pad++;
        } else if (pad || !ch || !strchr(sha1_b64, ch)) {
            return -1;
        }
    }
    return (int)(len / 4 * 3 - pad);
}
