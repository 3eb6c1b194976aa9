/*
 * http.h - the HTTP/1.x front end's shared state: its configuration, its
 * listeners and the per-hub server (struct http_server) every module of
 * http/ reads.
 *
 * Heads are parsed in the hub (llhttp, paused at headers-complete); the
 * body framing (Content-Length or our own strict chunked decoder) and
 * everything after run in the request's coroutine. Each module declares
 * its own functions in its own header (conn.h, request.h, head.h, body.h,
 * response.h, ...); this one holds only the structs they share (the
 * configuration, the server, a connection, a request record and its
 * response), so a module includes another's header only to call it, and
 * no two modules include each other (scripts/include_cycles.sh).
 */
#ifndef COSERVE_HTTP_HTTP_H
#define COSERVE_HTTP_HTTP_H

#include <ev.h>
#include <llhttp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "core/list.h"
#include "coserve.h"
#include "http/bufpool.h"

/* Read buffers: a head must fit in one (with --max-header-bytes below it). */
#define HTTP_BUF_SIZE (16 * 1024)
/* A response body up to this size is sent with a Content-Length. */
#define HTTP_OUT_SIZE (16 * 1024)

struct co;
struct co_ws;
struct hub;
struct http_listener;
struct http_server;
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

/* ---- a request record and its response ------------------------------
 *
 * Records are pooled per worker. The head is kept as slices of the
 * connection's read buffer, NUL-terminated in place; what the server
 * formats for a request (decoded path, address strings, response headers)
 * goes in its arena. The body framing state lives here too (body.c). */

/* Per-request scratch: decoded path, address strings, response headers. */
#define HTTP_ARENA_SIZE (8 * 1024)
#define HTTP_MAX_HEADERS_CAP 256

/* One header line: slices of the connection's buffer, NUL-terminated in
 * place once the head is complete. */
struct http_header {
    const char *name, *value;
    uint32_t name_len, value_len;
};

enum body_mode { BODY_NONE, BODY_LENGTH, BODY_CHUNKED };

/* The strict chunked decoder's state (see body.c). */
struct chunk_state {
    uint8_t phase;
    uint8_t seen_digit;
    uint16_t line;     /* bytes in the current size/trailer line */
    uint32_t trailers; /* trailer bytes so far */
    uint64_t left;     /* data bytes left in this chunk */
};

struct co_response {
    int status;
    unsigned started : 1;      /* head sent */
    unsigned chunked : 1;      /* streaming with chunked encoding */
    unsigned has_length : 1;   /* app set Content-Length */
    unsigned head_only : 1;    /* HEAD request: no body bytes */
    unsigned failed : 1;       /* a write failed: close the connection */
    unsigned fixed : 1;        /* co_res_send fixed the head (not yet sent) */
    unsigned warned : 1;       /* a misuse of it was logged */
    unsigned event_stream : 1; /* co_sse_start ran: a stop cancels it */
    unsigned may_hold : 1;     /* complete: may wait for a pipelined batch */
    uint64_t length;           /* the app's Content-Length */
    uint64_t sent;             /* body bytes written (for HEAD: would be) */
    uint64_t body_out;         /* body bytes the kernel took: the access log */
    size_t unpolled;           /* bytes sent since the hub last polled */
    size_t hdr_len;            /* app header text in req->arena */
    char *out;                 /* gathered body (a pooled buffer) */
    size_t out_len;
};

struct co_request {
    struct conn *conn;
    llhttp_t parser;
    /* head, as slices of conn->buf */
    const char *method;
    char *target;
    size_t target_len;
    const char *path, *path_info, *query;
    const char *script_name;
    struct http_header *headers; /* store->headers, or the compact copy */
    unsigned nheaders;
    uint8_t in_value; /* parser is inside a header value */
    uint8_t url_done;
    uint8_t timed_out;   /* --request-timeout cancelled the handler */
    uint8_t client_gone; /* the client closed: the handler was cancelled */
    int version;         /* 10 or 11 */
    int keep_alive;
    int expect_continue; /* 100-continue not yet answered */
    const struct http_route *route;
    /* the guard (guard.c): who may use the record */
    struct co *owner;  /* the coroutine serving it, else guard__none */
    uint64_t first_id; /* coroutines with higher ids started since the
                          handler did */
    uint8_t live;      /* its handler has not returned */
    /* body */
    enum body_mode body_mode;
    int64_t content_length; /* -1 unless BODY_LENGTH */
    uint64_t body_left;     /* BODY_LENGTH: bytes not yet read */
    uint64_t body_read;     /* decoded bytes handed to the app */
    int body_done;
    int body_error; /* errno the body reader failed with */
    struct chunk_state chunk;
    /* timing and logging */
    struct timespec start_ts;
    const char *error_reason; /* why the front end refused it */
    const char *remote_text;  /* peer address, formatted on first use */
    struct co_response res;
    struct co_ws *ws; /* after co_ws_accept, until the handler returned */
    size_t arena_used;
    char *arena;             /* store->arena, or the compact copy */
    size_t arena_size;       /* HTTP_ARENA_SIZE, or the compact copy's */
    struct req_store *store; /* pooled head storage; NULL once compacted */
    void *compact;           /* a WebSocket's compact copy (malloc), or NULL */
};

/* The big part of a request record, pooled apart from it: an idle
 * WebSocket gives it back (ws_handshake.c keeps a compact copy of what is
 * used), the rest of the record stays small. */
struct req_store {
    struct http_header headers[HTTP_MAX_HEADERS_CAP];
    char arena[HTTP_ARENA_SIZE];
};

/* ---- a connection (conn.c) -------------------------------------------
 *
 * Small and pooled: an fd, its watcher and timer, a read buffer it holds
 * only while bytes are pending, a request record it holds only while a
 * request is parsed or served. */

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
    ev_timer timer;    /* header or keep-alive timeout (lazy: conn.c) */
    int64_t due;       /* when the timer must act (co_now() ms; 0: never) */
    int64_t fires;     /* when the ev_timer is set to fire */
    char *buf;         /* pooled, HTTP_BUF_SIZE bytes, or NULL */
    uint32_t len;      /* bytes in buf */
    uint32_t pos;      /* first byte not yet consumed */
    uint32_t head_end; /* end of the current request's head */
    char *held;        /* responses held for one write (pipelining), or NULL */
    uint32_t held_len; /* bytes in held */
    co_request_t *req;
    struct co *co;
    struct list link;      /* srv->conns */
    struct list wait_link; /* srv->waiting, while in the hub's hands */
    double since;          /* loop time it joined srv->waiting */
    uint32_t drained;      /* lingering close: bytes read and dropped */
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
    struct bufpool conn_pool, req_pool, store_pool, buf_pool;
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
