/*
 * metrics_http.h - the master's tiny HTTP/1.1 responder for
 * --metrics-listen: GET /metrics (Prometheus text) and GET /status (JSON).
 *
 * It runs inside the master's poll loop, which also handles signals and
 * supervises the workers, so it must never block it: every socket is
 * non-blocking, a request is at most METRICS_HTTP_REQ bytes and must
 * arrive within METRICS_HTTP_READ_MS of the accept, a response must be
 * taken within METRICS_HTTP_WRITE_MS, and each connection is closed after
 * its one response. At most METRICS_HTTP_CONNS are open; a new one then
 * takes the place of the oldest still sending its request (so clients
 * that connect and say nothing cannot lock scrapes out), and while every
 * one is busy answering, new ones wait in the listen backlog.
 */
#ifndef COSERVE_METRICS_HTTP_H
#define COSERVE_METRICS_HTTP_H

#include <poll.h>
#include <stdint.h>

#include "metrics.h"

#define METRICS_HTTP_CONNS 8
#define METRICS_HTTP_REQ 2048
#define METRICS_HTTP_READ_MS 2000
#define METRICS_HTTP_WRITE_MS 5000
/* pollfds it may add to the master's set: the listener and the conns */
#define METRICS_HTTP_FDS (1 + METRICS_HTTP_CONNS)

enum metrics_http_page { METRICS_PAGE_METRICS, METRICS_PAGE_STATUS };

/* Appends the page to out (the master's: metrics__prometheus or
 * metrics__status over its workers). */
typedef void (*metrics_http_render_fn)(void *ctx, enum metrics_http_page page,
                                       struct metrics_buf *out);

/* Starts serving on listen_fd (non-blocking; the responder closes it at
 * metrics_http__stop). */
void metrics_http__start(int listen_fd, metrics_http_render_fn render,
                         void *ctx);

/* Adds what to poll to pfd (room for METRICS_HTTP_FDS) and lowers *wake
 * (-1: none) to the next deadline. Returns how many were added. */
int metrics_http__pollfds(struct pollfd *pfd, int64_t now, int64_t *wake);

/* After poll: handles the n entries metrics_http__pollfds added, and
 * closes the connections past their deadline. */
void metrics_http__serve(const struct pollfd *pfd, int n, int64_t now);

/* In a forked worker: closes the master's copies of the sockets (else a
 * worker would hold a scrape's connection open after the master closed
 * it). */
void metrics_http__close_inherited(void);

/* Closes every connection and the listener. */
void metrics_http__stop(void);

#endif
