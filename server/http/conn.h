/*
 * conn.h - a client connection (struct conn, in http.h): reading heads in
 * the hub, serving requests in coroutines (conn.c).
 *
 * A connection is small and pooled: an fd, its watcher and timer, a
 * pointer to a read buffer it holds only while bytes are pending, and a
 * pointer to a request record it holds only while a request is being
 * parsed or served. So an idle keep-alive connection costs a few hundred
 * bytes and no coroutine.
 */
#ifndef COSERVE_HTTP_CONN_H
#define COSERVE_HTTP_CONN_H

#include <stddef.h>
#include <sys/socket.h>

#include "http/http.h"

void conn__accept(struct http_server *srv, int fd, const struct sockaddr *peer,
                  socklen_t peer_len);
void conn__close(struct conn *c);

/* Lists the requests in flight on srv (a struct http_server) but skip's,
 * for the watchdog's reports (a watchdog_requests_fn: async-signal-safe). */
size_t conn__list_requests(void *srv, const struct co *skip, char *buf,
                           size_t len, unsigned *count);
/* At --max-connections: whether the connection waiting longest for a head
 * may be closed to make room for a new one. Returns 1 if so; else 0, with
 * *wait_s the seconds until it may (-1: none waiting, all are busy). */
int conn__evictable(struct http_server *srv, double *wait_s);
/* Closes that connection (a 408 first if part of a head had come). */
void conn__evict(struct http_server *srv);
/* At a graceful stop: gives an idle kept-alive connection a last moment
 * for a request already on its way, then closes it as idle. Connections
 * with a request in flight, or not yet served, are left alone. */
void conn__drain(struct conn *c);

#endif
