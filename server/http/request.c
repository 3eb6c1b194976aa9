/* The request accessors apps call (see coserve.h). Each one starts with
 * the guard (guard.c): a request used after its handler returned aborts. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http/guard.h"
#include "http/http.h"
#include "http/request.h"

void request__attach_store(co_request_t *req, struct req_store *store)
{
    req->store = store;
    req->headers = store->headers;
    req->arena = store->arena;
    req->arena_size = HTTP_ARENA_SIZE;
    req->compact = NULL;
}

char *request__arena_strdup(co_request_t *req, const char *s, size_t len)
{
    if (req->arena_used + req->res.hdr_len + len + 1 > req->arena_size)
        return NULL;
    char *out = req->arena + req->arena_used;
    memcpy(out, s, len);
    out[len] = '\0';
    req->arena_used += len + 1;
    return out;
}

const char *co_req_method(const co_request_t *req)
{
    guard__check(req, "co_req_method");
    return req->method;
}
const char *co_req_target(const co_request_t *req)
{
    guard__check(req, "co_req_target");
    return req->target;
}
const char *co_req_path(const co_request_t *req)
{
    guard__check(req, "co_req_path");
    return req->path;
}
const char *co_req_script_name(const co_request_t *req)
{
    guard__check(req, "co_req_script_name");
    return req->script_name;
}
const char *co_req_path_info(const co_request_t *req)
{
    guard__check(req, "co_req_path_info");
    return req->path_info;
}
const char *co_req_query(const co_request_t *req)
{
    guard__check(req, "co_req_query");
    return req->query;
}
int co_req_version(const co_request_t *req)
{
    guard__check(req, "co_req_version");
    return req->version;
}
int64_t co_req_content_length(const co_request_t *req)
{
    guard__check(req, "co_req_content_length");
    return req->content_length;
}

const char *request__header(const co_request_t *req, const char *name)
{
    size_t len = strlen(name);
    for (unsigned i = 0; i < req->nheaders; i++) {
        const struct http_header *h = &req->headers[i];
        if (h->name_len == len && strncasecmp(h->name, name, len) == 0)
            return h->value;
    }
    return NULL;
}

const char *co_req_header(const co_request_t *req, const char *name)
{
    guard__check(req, "co_req_header");
    return request__header(req, name);
}

size_t co_req_header_count(const co_request_t *req)
{
    guard__check(req, "co_req_header_count");
    return req->nheaders;
}

int co_req_header_at(const co_request_t *req, size_t i, const char **name,
                     const char **value)
{
    guard__check(req, "co_req_header_at");
    if (i >= req->nheaders) {
        errno = ERANGE;
        return -1;
    }
    *name = req->headers[i].name;
    *value = req->headers[i].value;
    return 0;
}

int request__hex(int ch)
{
    ch = (unsigned char)ch; /* callers pass plain (maybe signed) chars */
    if (isdigit(ch))
        return ch - '0';
    ch = tolower(ch);
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

ssize_t co_req_query_param(const co_request_t *req, const char *name, char *buf,
                           size_t size)
{
    guard__check(req, "co_req_query_param");
    size_t nl = strlen(name);
    const char *p = req->query;
    while (p && *p) {
        const char *amp = strchr(p, '&');
        size_t seg = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', seg);
        size_t klen = eq ? (size_t)(eq - p) : seg;
        if (klen == nl && memcmp(p, name, nl) == 0) {
            const char *v = eq ? eq + 1 : p + seg;
            const char *vend = p + seg;
            size_t o = 0;
            for (; v < vend; v++) {
                int ch = (unsigned char)*v;
                if (ch == '+')
                    ch = ' ';
                else if (ch == '%' && vend - v > 2 && request__hex(v[1]) >= 0 &&
                         request__hex(v[2]) >= 0) {
                    ch = request__hex(v[1]) * 16 + request__hex(v[2]);
                    v += 2;
                }
                if (o + 1 >= size) {
                    errno = ENOSPC;
                    return -1;
                }
                buf[o++] = (char)ch;
            }
            if (size == 0) {
                errno = ENOSPC;
                return -1;
            }
            buf[o] = '\0';
            return (ssize_t)o;
        }
        p = amp ? amp + 1 : NULL;
    }
    errno = ENOENT;
    return -1;
}

/* Address strings are formatted on first use into the arena: most
 * requests never ask (the access log does, once). */
const char *request__addr(co_request_t *req, int local)
{
    struct conn *c = req->conn;
    if (local)
        return !c->lst || c->lst->family == AF_UNIX ? "unix" : c->lst->addr;
    if (c->peer_family == AF_UNIX)
        return "unix";
    char text[INET6_ADDRSTRLEN];
    if (!inet_ntop(c->peer_family, c->peer_addr, text, sizeof text))
        return "-";
    char *s = request__arena_strdup(req, text, strlen(text));
    return s ? s : "-";
}

int co_req_remote_port(const co_request_t *req)
{
    guard__check(req, "co_req_remote_port");
    return req->conn->peer_port;
}

const char *co_req_local_addr(const co_request_t *req)
{
    guard__check(req, "co_req_local_addr");
    return request__addr((co_request_t *)req, 1);
}

int co_req_local_port(const co_request_t *req)
{
    guard__check(req, "co_req_local_port");
    return req->conn->lst ? req->conn->lst->port : 0;
}
