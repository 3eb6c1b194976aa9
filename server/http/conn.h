/*
 * conn.h - a client connection (struct conn): reading heads in the hub,
 * serving requests in coroutines (conn.c).
 *
 * A connection is small and pooled: an fd, its watcher and timer, a
 * pointer to a read buffer it holds only while bytes are pending, and a
 * pointer to a request record it holds only while a request is being
 * parsed or served. So an idle keep-alive connection costs a few hundred
 * bytes and no coroutine.
 */
#ifndef COSERVE_HTTP_CONN_H
#define COSERVE_HTTP_CONN_H

#include <ev.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/list.h"
#include "coserve.h"

struct co;
struct http_listener;
struct http_server;

struct conn {
    struct http_server *srv;
    const struct http_listener *lst; /* accepted there (NULL: handed in) */
    int fd;
    uint8_t busy; /* a coroutine serves a request on it */
    uint8_t closing;
    uint8_t served;      /* has answered at least one request */
    uint8_t peer_family; /* AF_INET, AF_INET6 or AF_UNIX */
    uint16_t peer_port;
    uint8_t peer_addr[16];
    ev_io io;          /* readable, while in the hub's hands */
    ev_timer timer;    /* header or keep-alive timeout */
    char *buf;         /* pooled, HTTP_BUF_SIZE bytes, or NULL */
    uint32_t len;      /* bytes in buf */
    uint32_t pos;      /* first byte not yet consumed */
    uint32_t head_end; /* end of the current request's head */
    co_request_t *req;
    struct co *co;
    struct list link;      /* srv->conns */
    struct list wait_link; /* srv->waiting, while in the hub's hands */
    double since;          /* loop time it joined srv->waiting */
    uint32_t drained;      /* lingering close: bytes read and dropped */
};

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
