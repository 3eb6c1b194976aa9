/*
 * head.h - checking a request head in the hub: llhttp, paused at
 * headers-complete, then what llhttp 8.1 lets through refused (head.c).
 */
#ifndef COSERVE_HTTP_HEAD_H
#define COSERVE_HTTP_HEAD_H

#include "coserve.h"

struct conn;

/* Resets the parser for a new head. */
void head__init(co_request_t *req);
/* Feeds conn->buf[pos..len) to the parser. Returns 1 when the head is
 * complete (conn->pos is then the body's first byte), 0 when more bytes are
 * needed, or an HTTP status (400, 414, 431, 501...) to refuse with, the
 * reason in req->error_reason. */
int head__parse(struct conn *c);

#endif
