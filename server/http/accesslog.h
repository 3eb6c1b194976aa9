/*
 * accesslog.h - the access log: lines gather per worker and go out once per
 * loop turn through a writer thread (accesslog.c, accesslog_json.c).
 */
#ifndef COSERVE_HTTP_ACCESSLOG_H
#define COSERVE_HTTP_ACCESSLOG_H

#include <stddef.h>

#include "coserve.h"

struct http_server;

/* The request's JSON line (with its newline) in out, at most room bytes,
 * secs its duration. Returns its length. */
size_t accesslog__json(co_request_t *req, char *out, size_t room, double secs);
void accesslog__init(struct http_server *srv);
void accesslog__request(co_request_t *req);
void accesslog__flush(struct http_server *srv);
/* Flushes, waits a moment for the writer, frees the log's buffers. */
void accesslog__fini(struct http_server *srv);

#endif
