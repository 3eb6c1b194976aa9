/*
 * request.h - a request record (struct co_request, the app's co_request_t)
 * and its response (struct co_response).
 *
 * Records are pooled per worker. The head is kept as slices of the
 * connection's read buffer, NUL-terminated in place; what the server
 * formats for a request (decoded path, address strings, response headers)
 * goes in its arena. The body framing state lives here too (body.c).
 */
#ifndef COSERVE_HTTP_REQUEST_H
#define COSERVE_HTTP_REQUEST_H

#include <llhttp.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "coserve.h"

/* Per-request scratch: decoded path, address strings, response headers. */
#define HTTP_ARENA_SIZE (8 * 1024)
#define HTTP_MAX_HEADERS_CAP 256

struct co;
struct conn;
struct http_route;

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
    struct co_ws *ws; /* after co_ws_accept, until the handler returned */
    size_t arena_used;
    char arena[HTTP_ARENA_SIZE];
};

/* Copies s (len bytes) into the request's arena, NUL-terminated; NULL when
 * the arena is full. */
char *request__arena_strdup(co_request_t *req, const char *s, size_t len);
/* co_req_header without the guard, for the server's own code (the head
 * parser runs in the hub, outside any coroutine). */
const char *request__header(const co_request_t *req, const char *name);
/* The value of a hex digit, or -1. */
int request__hex(int ch);

#endif
