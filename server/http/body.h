/*
 * body.h - reading a request body as the app asks: Content-Length, or the
 * strict chunked decoder (body.c).
 */
#ifndef COSERVE_HTTP_BODY_H
#define COSERVE_HTTP_BODY_H

#include "coserve.h"

/* Discards what is left of the body so the connection can be reused.
 * Returns 0, or -1 if it cannot (too much, too slow, malformed). */
int body__drain(co_request_t *req);

#endif
