/*
 * request.h - the request record's own helpers (request.c, with the app's
 * co_req_* accessors); the record itself (struct co_request) is in http.h.
 */
#ifndef COSERVE_HTTP_REQUEST_H
#define COSERVE_HTTP_REQUEST_H

#include <stddef.h>

#include "http/http.h"

/* Points req's header table and arena into store (a pooled struct
 * req_store, or the unit tests' own). */
void request__attach_store(co_request_t *req, struct req_store *store);

/* Copies s (len bytes) into the request's arena, NUL-terminated; NULL when
 * the arena is full. */
char *request__arena_strdup(co_request_t *req, const char *s, size_t len);
/* co_req_header without the guard, for the server's own code (the head
 * parser runs in the hub, outside any coroutine). */
const char *request__header(const co_request_t *req, const char *name);
/* The value of a hex digit, or -1. */
int request__hex(int ch);
/* The connection's peer (local 0) or local (1) address as text, in the
 * arena (formatted once); forwarded.c's co_req_remote_addr falls back on
 * it when no trusted proxy names the client. */
const char *request__addr(co_request_t *req, int local);

#endif
