/*
 * forwarded.h - X-Forwarded-For / -Proto, believed only from trusted proxies
 * (--forwarded-allow-ips; forwarded.c).
 */
#ifndef COSERVE_HTTP_FORWARDED_H
#define COSERVE_HTTP_FORWARDED_H

#include "coserve.h"

struct conn;
struct http_routing;

/* Parses "127.0.0.1,::1,10.0.0.0/8,unix" or "*". Returns 0 or -1. */
int forwarded__parse(struct http_routing *r, const char *spec);
/* Whether the connection's peer is a trusted proxy. */
int forwarded__trusted(const struct conn *c);
/* The client address a trusted proxy reported (in the arena), or NULL. */
const char *forwarded__client(co_request_t *req);
/* "https" when a trusted proxy says so, else "http". */
const char *forwarded__scheme(const co_request_t *req);

#endif
