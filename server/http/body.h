/*
 * body.h - reading a request body as the app asks: Content-Length, or the
 * strict chunked decoder (body.c).
 */
#ifndef COSERVE_HTTP_BODY_H
#define COSERVE_HTTP_BODY_H

#include <stddef.h>
#include <sys/types.h>

#include "coserve.h"

/* Decodes chunked input from in[0..*avail) into out[0..n), carrying its
 * state in req->chunk (zeroed for a new body) and the limit from the
 * connection's cfg.limits.max_body. Returns the bytes produced; *avail is
 * decreased by the input consumed; req->body_done is set after the last
 * chunk and its trailers. -1 with EPROTO on a framing error (anything but
 * CRLF after chunk data, a bad size line or trailer), EMSGSIZE over the
 * limit. */
ssize_t body__dechunk(co_request_t *req, const char *in, size_t *avail,
                      char *out, size_t n);

/* Discards what is left of the body so the connection can be reused.
 * Returns 0, or -1 if it cannot (too much, too slow, malformed). */
int body__drain(co_request_t *req);

#endif
