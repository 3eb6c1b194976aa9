/*
 * sha1.h - the WebSocket handshake's hash and base64 (sha1.c).
 */
#ifndef COSERVE_HTTP_SHA1_H
#define COSERVE_HTTP_SHA1_H

#include <stddef.h>
#include <stdint.h>

/* SHA-1 of data[0..len). */
void sha1__digest(const void *data, size_t len, uint8_t out[20]);
/* base64 of in[0..len) into out (4 * ((len + 2) / 3) + 1 bytes, with the
 * NUL). Returns the length written. */
size_t sha1__base64(const uint8_t *in, size_t len, char *out);
/* How many bytes the base64 text s[0..len) decodes to, or -1 if it is not
 * base64 (padded, standard alphabet). */
int sha1__base64_len(const char *s, size_t len);

#endif
