/*
 * response.h - writing a response: gathered with a Content-Length, or streamed
 * (response.c).
 */
#ifndef COSERVE_HTTP_RESPONSE_H
#define COSERVE_HTTP_RESPONSE_H

#include <sys/uio.h>

#include "coserve.h"

struct conn;

/* Completes the response after the handler returned: sends the gathered
 * body with a Content-Length, or the last chunk. Returns 0 or -1. */
int response__finish(co_request_t *req);
/* Sends a complete error response (text/plain, reason in the body). */
int response__error(co_request_t *req, int status, const char *reason);
const char *response__reason(int status);
/* Writes bytes to the client; the write timeout bounds each wait for the
 * socket (time without progress), not the whole write. */
int response__write(co_request_t *req, const struct iovec *iov, int n);

/* Sends the responses c held back to write a pipelined batch at once (see
 * response.c), from c's coroutine, waiting for the socket as a response
 * write does. Returns 0 (nothing held, or all sent) or -1 with errno. */
int response__flush(struct conn *c);

#endif
