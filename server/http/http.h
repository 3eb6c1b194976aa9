/*
 * http.h - the HTTP/1.x front end's shared structs.
 *
 * A connection (struct conn) is small and pooled: an fd, its watcher and
 * timer, a pointer to a read buffer it holds only while bytes are pending,
 * and a pointer to a request record it holds only while a request is being
 * parsed or served. So an idle keep-alive connection costs a few hundred
 * bytes and no coroutine. Heads are parsed in the hub (llhttp, paused at
 * headers-complete); the body framing (Content-Length or our own strict
 * chunked decoder) and everything after run in the request's coroutine.
 */
#ifndef COSERVE_HTTP_HTTP_H
#define COSERVE_HTTP_HTTP_H

#include <ev.h>
#include <llhttp.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>

#include "core/coro.h"
#include "core/list.h"
#include "coserve.h"
#include "http/stats.h"

/* Read buffers: a head must fit in one (with --max-header-bytes below it). */
#define HTTP_BUF_SIZE (16 * 1024)
/* A response body up to this size is sent with a Content-Length. */
#define HTTP_OUT_SIZE (16 * 1024)
/* Per-request scratch: decoded path, address strings, response headers. */
#define HTTP_ARENA_SIZE (8 * 1024)
#define HTTP_MAX_HEADERS_CAP 256

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

struct http_config {
    size_t max_url;               /* request target bytes: 414 */
    size_t max_head;              /* request line + headers bytes: 431 */
    unsigned max_headers;         /* header lines: 431 */
    uint64_t max_body;            /* body bytes: 413 */
    int64_t header_timeout_ms;    /* a whole head must arrive within: 408 */
    int64_t body_timeout_ms;      /* each body read waits at most */
    int64_t keepalive_timeout_ms; /* idle connection kept open */
    int64_t write_timeout_ms;     /* a response waits this long for progress */
    int64_t grace_ms;             /* in-flight requests get this at shutdown */
    unsigned max_conns;           /* open connections; more wait in backlog */
    http_router_fn route;
    void *route_ctx;
    const struct http_route *fallback; /* static files: when route says none */
    FILE *access_log;                  /* NULL: off */
    struct http_net trusted[HTTP_MAX_TRUSTED]; /* --forwarded-allow-ips */
    unsigned ntrusted;
    int trust_unix, trust_all;
    int64_t request_timeout_ms;   /* handler cancelled after: 504 (0: none) */
    uint64_t max_requests;        /* stop gracefully after (0: never) */
    uint64_t max_requests_jitter; /* plus a random 0..jitter, per worker */
    const char *access_log_path;  /* reopened on SIGUSR1 (NULL: stdout) */
    int access_log_json;          /* JSON lines, else combined */
    /* Run in the hub's main coroutine: before accepting, after draining. */
    void (*on_start)(void *ctx);
    void (*on_stop)(void *ctx);
    /* Run when a stop begins, before the HTTP drain, with the grace it
     * gets (0 at a fast stop): other listeners (stream apps) drain in the
     * same grace, not after it. NULL: none. */
    void (*on_drain)(void *ctx, int64_t grace_ms);
    void *hooks_ctx;
    /* --metrics-listen: this worker's shared counters (stats.h), or NULL */
    struct http_stats *stats;
};

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

struct conn;

struct co_response {
    int status;
    unsigned started : 1;    /* head sent */
    unsigned chunked : 1;    /* streaming with chunked encoding */
    unsigned has_length : 1; /* app set Content-Length */
    unsigned head_only : 1;  /* HEAD request: no body bytes */
    unsigned failed : 1;     /* a write failed: close the connection */
    unsigned fixed : 1;      /* co_res_send fixed the head (not yet sent) */
    unsigned warned : 1;     /* a misuse of it was logged */
    uint64_t length;         /* the app's Content-Length */
    uint64_t sent;           /* body bytes written (for HEAD: would be) */
    uint64_t body_out;       /* body bytes the kernel took: the access log */
    size_t unpolled;         /* bytes sent since the hub last polled */
    size_t hdr_len;          /* app header text in req->arena */
    char *out;               /* gathered body (a pooled buffer) */
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
    struct http_header headers[HTTP_MAX_HEADERS_CAP];
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
    size_t arena_used;
    char arena[HTTP_ARENA_SIZE];
};

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

/* Idle blocks of one size kept for reuse; an idle block's first bytes hold
 * the link. `low` is the fewest idle since the last trim: blocks nobody
 * needed for a whole period, which the trim gives back. */
struct http_pool {
    void *head;
    size_t size;  /* bytes per block */
    size_t count; /* idle blocks */
    size_t low;
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
    struct http_pool conn_pool, req_pool, buf_pool;
    /* the access log: lines gather here and go out once per loop turn */
    char *log_buf;
    size_t log_len;
    ev_prepare log_flush;
    struct logbuf *log_sink; /* writes log_buf's lines off the hub */
    ev_timer pool_trim;     /* gives idle pool memory back, once a second */
    co_event_t *idle_event; /* set when active drops to 0 while draining */
    co_event_t *stop_event; /* set to begin a graceful stop */
    uint64_t served;        /* requests, for --max-requests */
    uint64_t max_served;    /* --max-requests plus this worker's jitter */

    /* --metrics-listen (stats.c): cfg.stats, or NULL */
    struct http_stats *stats;
    unsigned fallback_stats;  /* the fallback route's app index there */
    ev_prepare stats_publish; /* publishes the gauges once per loop turn */
};

/* ---- server.c ---- */
/* A block from the pool, or a new one (NULL with ENOMEM). */
void *http__pool_get(struct http_pool *pool);
/* Keeps an unused block for reuse (the periodic trim frees the excess). */
void http__pool_put(struct http_pool *pool, void *block);
char *http__buf_get(struct http_server *srv);
void http__buf_put(struct http_server *srv, char *buf);
/* Starts accepting again on every listener, unless draining or full (a
 * closed connection freed a slot and an fd). */
void http__accept_resume(struct http_server *srv);

/* ---- conn.c ---- */
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

/* ---- guard.c ---- */
/* What req->owner holds while no coroutine serves the record. */
extern struct co *const guard__none;
/* The rest of guard__check: returns for a coroutine the handler started
 * while it runs; aborts, naming the app and `call`, for every other. */
void guard__slow(const co_request_t *req, const char *call);
/* The handler is about to run in self: from now until req->live is
 * cleared, self and the coroutines started after may use req. */
void guard__begin(co_request_t *req, struct co *self);

/* The check at the top of every co_req_* and co_res_* call: the caller is
 * the coroutine serving req (one compare), else see guard__slow. */
static inline void guard__check(const co_request_t *req, const char *call)
{
    struct hub *hub = hub__self;
    if (__builtin_expect(!hub || hub->current != req->owner, 0))
        guard__slow(req, call);
}

/* ---- head.c ---- */
/* Resets the parser for a new head. */
void head__init(co_request_t *req);
/* Feeds conn->buf[pos..len) to the parser. Returns 1 when the head is
 * complete (conn->pos is then the body's first byte), 0 when more bytes are
 * needed, or an HTTP status (400, 414, 431, 501...) to refuse with, the
 * reason in req->error_reason. */
int head__parse(struct conn *c);

/* ---- body.c ---- */
/* Discards what is left of the body so the connection can be reused.
 * Returns 0, or -1 if it cannot (too much, too slow, malformed). */
int body__drain(co_request_t *req);

/* ---- response.c ---- */
/* Completes the response after the handler returned: sends the gathered
 * body with a Content-Length, or the last chunk. Returns 0 or -1. */
int response__finish(co_request_t *req);
/* Sends a complete error response (text/plain, reason in the body). */
int response__error(co_request_t *req, int status, const char *reason);
const char *response__reason(int status);
/* Writes bytes to the client; the write timeout bounds each wait for the
 * socket (time without progress), not the whole write. */
int response__write(co_request_t *req, const struct iovec *iov, int n);

/* ---- date.c ---- */
/* "Sun, 06 Nov 1994 08:49:37 GMT", recomputed at most once a second. */
const char *date__http(void);
/* "23/Nov/2026:09:00:00 +0000" for the access log. */
const char *date__log(void);

/* ---- accesslog.c, accesslog_json.c ---- */
/* The request's JSON line (with its newline) in out, at most room bytes,
 * secs its duration. Returns its length. */
size_t accesslog__json(co_request_t *req, char *out, size_t room, double secs);
void accesslog__init(struct http_server *srv);
void accesslog__request(co_request_t *req);
void accesslog__flush(struct http_server *srv);
/* Flushes, waits a moment for the writer, frees the log's buffers. */
void accesslog__fini(struct http_server *srv);

/* ---- forwarded.c ---- */
/* Parses "127.0.0.1,::1,10.0.0.0/8,unix" or "*". Returns 0 or -1. */
int forwarded__parse(struct http_config *cfg, const char *spec);
/* Whether the connection's peer is a trusted proxy. */
int forwarded__trusted(const struct conn *c);
/* The client address a trusted proxy reported (in the arena), or NULL. */
const char *forwarded__client(co_request_t *req);
/* "https" when a trusted proxy says so, else "http". */
const char *forwarded__scheme(const co_request_t *req);

/* ---- request.c ---- */
/* Copies s (len bytes) into the request's arena, NUL-terminated; NULL when
 * the arena is full. */
char *request__arena_strdup(co_request_t *req, const char *s, size_t len);
/* co_req_header without the guard, for the server's own code (the head
 * parser runs in the hub, outside any coroutine). */
const char *request__header(const co_request_t *req, const char *name);
/* The value of a hex digit, or -1. */
int request__hex(int ch);

#endif
