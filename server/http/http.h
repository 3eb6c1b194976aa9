/*
 * http.h - the HTTP/1.x front end's shared state: its configuration, its
 * listeners and the per-hub server (struct http_server) every module of
 * http/ reads.
 *
 * Heads are parsed in the hub (llhttp, paused at headers-complete); the
 * body framing (Content-Length or our own strict chunked decoder) and
 * everything after run in the request's coroutine. Each module declares
 * its own functions in its own header (conn.h, request.h, head.h, body.h,
 * response.h, ...); this one holds only the structs they share, so no
 * header of http/ includes another's module in a circle.
 */
#ifndef COSERVE_HTTP_HTTP_H
#define COSERVE_HTTP_HTTP_H

#include <ev.h>
#include <stdint.h>
#include <stdio.h>

#include "core/list.h"
#include "coserve.h"
#include "http/bufpool.h"

/* Read buffers: a head must fit in one (with --max-header-bytes below it). */
#define HTTP_BUF_SIZE (16 * 1024)
/* A response body up to this size is sent with a Content-Length. */
#define HTTP_OUT_SIZE (16 * 1024)

struct hub;
struct http_stats;
struct logbuf;

/* What a request is routed to: the http layer knows no more of apps. */
struct http_route {
    const char *name;  /* for logs and coroutine names */
    const char *mount; /* "" for "/" */
    co_handler_fn handler;
    unsigned stats_id; /* its app index in the metrics slot (stats.h) */
};

/* Picks the route for a decoded path; NULL means 404. */
typedef const struct http_route *(*http_router_fn)(void *ctx, const char *path);

#define HTTP_MAX_TRUSTED 16

/* A network whose peers may set X-Forwarded-For / -Proto. */
struct http_net {
    int family;
    int bits;
    uint8_t addr[16];
};

/* What a request may be and how long each step may take: the limits
 * --help lists under "limits" (defaults in http__config_defaults). */
struct http_limits {
    size_t max_url;               /* request target bytes: 414 */
    size_t max_head;              /* request line + headers bytes: 431 */
    unsigned max_headers;         /* header lines: 431 */
    uint64_t max_body;            /* body bytes: 413 */
    int64_t header_timeout_ms;    /* a whole head must arrive within: 408 */
    int64_t body_timeout_ms;      /* each body read waits at most */
    int64_t keepalive_timeout_ms; /* idle connection kept open */
    int64_t write_timeout_ms;     /* a response waits this long for progress */
    int64_t request_timeout_ms;   /* handler cancelled after: 504 (0: none) */
    unsigned max_conns;           /* open connections; more wait in backlog */
    /* WebSocket limits (ws.h's defaults when 0; ping and idle < 0: off) */
    size_t ws_max_message; /* a message's bytes, else close 1009 */
    int64_t ws_ping_ms;    /* a ping after the peer was quiet this long */
    int64_t ws_idle_ms;    /* closed (1001) after silence this long */
};

/* Where a request goes, and whose word about its client is believed. */
struct http_routing {
    http_router_fn route;
    void *route_ctx;
    const struct http_route *fallback; /* static files: when route says none */
    struct http_net trusted[HTTP_MAX_TRUSTED]; /* --forwarded-allow-ips */
    unsigned ntrusted;
    int trust_unix, trust_all;
};

/* The front end's whole configuration. What the process around it decides
 * (signals, the stop's grace, recycling, the apps' start and stop) is the
 * worker's (server/worker.h), not http's. */
struct http_config {
    struct http_limits limits;
    struct http_routing routing;
    FILE *access_log;    /* NULL: off */
    int access_log_json; /* JSON lines, else combined */
    /* --metrics-listen: this worker's shared counters (stats.h), or NULL */
    struct http_stats *stats;
    /* Run in the request's coroutine once its response is done (and
     * logged), whatever became of it: the worker counts requests there for
     * --max-requests. NULL: none. */
    void (*on_request_done)(void *ctx);
    void *hooks_ctx;
};

/* One listening socket (--listen may repeat): each worker accepts on every
 * one, and a connection remembers which, for its local address. */
struct http_listener {
    struct http_server *srv;
    int fd; /* -1 once closed at a stop */
    int family;
    int port;      /* 0 on a unix socket */
    char addr[64]; /* co_req_local_addr */
    ev_io io;
};

struct http_server {
    struct http_config cfg;
    struct hub *hub;
    struct http_listener *listeners; /* nlisteners of them */
    unsigned nlisteners;
    const struct http_listener *accepting_on; /* for conn__accept */
    int accepting;         /* the listeners' watchers are started */
    ev_timer accept_pause; /* out of fds: accepting resumes when it fires */
    int64_t accept_logged; /* when an accept error was last logged (ms) */
    unsigned accept_quiet; /* accept errors since, not logged */
    int draining;          /* shutting down: no new requests */
    unsigned open;         /* connections */
    unsigned active;       /* requests being served */
    struct list conns;
    struct list waiting;  /* waiting for a head (or closing), oldest first */
    int64_t evict_logged; /* when an eviction at the cap was last logged (ms) */
    unsigned evict_quiet; /* evictions since, not logged */
    struct bufpool conn_pool, req_pool, buf_pool;
    /* the access log: lines gather here and go out once per loop turn */
    char *log_buf;
    size_t log_len;
    ev_prepare log_flush;
    struct logbuf *log_sink; /* writes log_buf's lines off the hub */
    ev_timer pool_trim;      /* gives idle pool memory back, once a second */
    co_event_t *idle_event;  /* set when active drops to 0 while draining */
    co_event_t *stop_event;  /* set when a stop begins (http__stop) */

    /* --metrics-listen (stats.c): cfg.stats, or NULL */
    struct http_stats *stats;
    unsigned fallback_stats;  /* the fallback route's app index there */
    ev_prepare stats_publish; /* publishes the gauges once per loop turn */
};

#endif
