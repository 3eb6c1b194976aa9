/*
 * Parsing a request head with llhttp, plus the checks llhttp 8.1 skips.
 *
 * llhttp runs only until headers-complete (the callback pauses it); the
 * body is framed by body.c. Spans are recorded as slices of conn->buf, which
 * never moves while a head is parsed. Debian's llhttp 8.1 lets through
 * empty header names, a space before the colon, obs-fold lines, a head that
 * ends "\r\n\r" plus any byte, a missing or duplicate Host: each is refused
 * here with 400, so no second request can hide inside the first.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/head.h"
#include "http/http.h"
#include "http/request.h"

#define HEAD_FAIL(req, code, why)                                              \
    do {                                                                       \
        (req)->error_reason = (why);                                           \
        (req)->res.status = (code);                                            \
        return -1;                                                             \
    } while (0)

static co_request_t *head_req(llhttp_t *p)
{
    return (co_request_t *)((char *)p - offsetof(co_request_t, parser));
}

static int head_on_url(llhttp_t *p, const char *at, size_t len)
{
    co_request_t *req = head_req(p);
    if (!req->target)
        req->target = (char *)at;
    req->target_len += len;
    if (req->target_len > req->conn->srv->cfg.limits.max_url)
        HEAD_FAIL(req, 414, "request target too long");
    return 0;
}

static int head_on_url_complete(llhttp_t *p)
{
    head_req(p)->url_done = 1;
    return 0;
}

static int head_on_field(llhttp_t *p, const char *at, size_t len)
{
    co_request_t *req = head_req(p);
    if (req->in_value || req->nheaders == 0 ||
        req->headers[req->nheaders - 1].value) {
        /* a new header line */
        if (req->nheaders == req->conn->srv->cfg.limits.max_headers)
            HEAD_FAIL(req, 431, "too many header lines");
        struct http_header *h = &req->headers[req->nheaders++];
        h->name = at;
        h->name_len = 0;
        h->value = NULL;
        h->value_len = 0;
        req->in_value = 0;
    }
    req->headers[req->nheaders - 1].name_len += (uint32_t)len;
    return 0;
}

static int head_on_value(llhttp_t *p, const char *at, size_t len)
{
    co_request_t *req = head_req(p);
    struct http_header *h = &req->headers[req->nheaders - 1];
    if (!h->value)
        h->value = at;
    h->value_len += (uint32_t)len;
    req->in_value = 1;
    return 0;
}

static int head_on_value_complete(llhttp_t *p)
{
    co_request_t *req = head_req(p);
    struct http_header *h = &req->headers[req->nheaders - 1];
    if (!h->value) { /* empty value: point at an empty slice */
        h->value = h->name + h->name_len;
        h->value_len = 0;
    }
    req->in_value = 1;
    return 0;
}

static int head_on_headers_complete(llhttp_t *p)
{
    (void)p;
    return HPE_PAUSED;
}

static const llhttp_settings_t head_settings = {
    .on_url = head_on_url,
    .on_url_complete = head_on_url_complete,
    .on_header_field = head_on_field,
    .on_header_value = head_on_value,
    .on_header_value_complete = head_on_value_complete,
    .on_headers_complete = head_on_headers_complete,
};

void head__init(co_request_t *req)
{
    llhttp_init(&req->parser, HTTP_REQUEST, &head_settings);
    req->target = NULL;
    req->target_len = 0;
    req->nheaders = 0;
    req->in_value = 0;
    req->url_done = 0;
    req->error_reason = NULL;
}

/* RFC 9110 token characters: a header name is nothing else. A table:
 * this runs for every byte of every header name. */
static const uint8_t head_tchar[256] = {
    ['!'] = 1,         ['#'] = 1,         ['$'] = 1, ['%'] = 1,
    ['&'] = 1,         ['\''] = 1,        ['*'] = 1, ['+'] = 1,
    ['-'] = 1,         ['.'] = 1,         ['^'] = 1, ['_'] = 1,
    ['`'] = 1,         ['|'] = 1,         ['~'] = 1, ['0' ... '9'] = 1,
    ['A' ... 'Z'] = 1, ['a' ... 'z'] = 1,
};

static int head_is_tchar(unsigned char ch)
{
    return head_tchar[ch];
}

static int head_name_is(const struct http_header *h, const char *name)
{
    return h->name_len == strlen(name) &&
           strncasecmp(h->name, name, h->name_len) == 0;
}

/* Decodes %XX escapes of the target's path into the arena (a copy decoded
 * in place: decoding only shrinks it). NUL, or a bad escape, makes the
 * request malformed. */
static char *head_decode_path(co_request_t *req, const char *raw, size_t len)
{
    char *out = request__arena_strdup(req, raw, len);
    if (!out)
        return NULL;
    char *o = out;
    for (const char *p = out; *p; p++) {
        char ch = *p;
        if (ch == '%') {
            int hi = request__hex(p[1]), lo = hi < 0 ? -1 : request__hex(p[2]);
            if (lo < 0)
                return NULL;
            ch = (char)(hi * 16 + lo);
            p += 2;
        }
        if (ch == '\0')
            return NULL;
        *o++ = ch;
    }
    *o = '\0';
    return out;
}

/* "/./" and "/../" (also at the end) after decoding: clients normalise them
 * away, so one here is an attempt to climb out of a mount or a folder. */
static int head_has_dot_segment(const char *path)
{
    for (const char *p = path; (p = strchr(p, '/')); p++) {
        size_t dots = strspn(p + 1, ".");
        if ((dots == 1 || dots == 2) && (p[1 + dots] == '/' || !p[1 + dots]))
            return 1;
    }
    return 0;
}

/* Everything llhttp accepted but we must not: see the file comment. */
static int head_validate(co_request_t *req)
{
    struct conn *c = req->conn;
    const char *end = c->buf + c->pos;
    if (c->pos < 4 || memcmp(end - 4, "\r\n\r\n", 4) != 0)
        HEAD_FAIL(req, 400, "head does not end with CRLF CRLF");
    int hosts = 0, te = 0;
    const struct http_header *cl = NULL;
    for (unsigned i = 0; i < req->nheaders; i++) {
        struct http_header *h = &req->headers[i];
        if (h->name_len == 0)
            HEAD_FAIL(req, 400, "empty header name");
        for (uint32_t k = 0; k < h->name_len; k++)
            if (!head_is_tchar((unsigned char)h->name[k]))
                HEAD_FAIL(req, 400, "invalid character in header name");
        for (uint32_t k = 0; k < h->value_len; k++) {
            unsigned char ch = (unsigned char)h->value[k];
            if (ch == '\r' || ch == '\n' || ch == '\0')
                HEAD_FAIL(req, 400, "line folding or control byte in header");
        }
        if (head_name_is(h, "host"))
            hosts++;
        else if (head_name_is(h, "transfer-encoding"))
            te++;
        else if (head_name_is(h, "content-length")) {
            if (cl && (cl->value_len != h->value_len ||
                       memcmp(cl->value, h->value, h->value_len) != 0))
                HEAD_FAIL(req, 400, "conflicting Content-Length headers");
            cl = h;
        }
    }
    if (hosts > 1)
        HEAD_FAIL(req, 400, "more than one Host header");
    if (hosts == 0 && req->version >= 11)
        HEAD_FAIL(req, 400, "HTTP/1.1 request without Host");
    if (te && cl)
        HEAD_FAIL(req, 400, "both Content-Length and Transfer-Encoding");
    return 0;
}

/* Trims optional whitespace around a value (llhttp leaves trailing OWS). */
static void head_trim(struct http_header *h)
{
    while (h->value_len && (h->value[h->value_len - 1] == ' ' ||
                            h->value[h->value_len - 1] == '\t'))
        h->value_len--;
}

static int head_body_framing(co_request_t *req)
{
    llhttp_t *p = &req->parser;
    req->body_mode = BODY_NONE;
    req->content_length = -1;
    req->body_left = 0;
    if ((p->flags & F_TRANSFER_ENCODING) && req->version < 11)
        HEAD_FAIL(req, 400, "Transfer-Encoding in an HTTP/1.0 request");
    if (p->flags & F_TRANSFER_ENCODING) {
        const char *te = request__header(req, "transfer-encoding");
        if (!(p->flags & F_CHUNKED) || !te || strcasecmp(te, "chunked") != 0)
            HEAD_FAIL(req, 501, "only Transfer-Encoding: chunked is supported");
        req->body_mode = BODY_CHUNKED;
        memset(&req->chunk, 0, sizeof req->chunk);
    } else if (p->flags & F_CONTENT_LENGTH) {
        req->content_length = (int64_t)p->content_length;
        if (p->content_length > req->conn->srv->cfg.limits.max_body)
            HEAD_FAIL(req, 413, "body larger than the server accepts");
        if (p->content_length) {
            req->body_mode = BODY_LENGTH;
            req->body_left = p->content_length;
        }
    }
    return 0;
}

/* Keep-alive per RFC 9112 9.3: a "close" token in any Connection header
 * wins; HTTP/1.0 needs an explicit "keep-alive"; 1.1 persists by default.
 * (llhttp's answer lets a 1.0 keep-alive beat a later close.) */
static int head_keep_alive(const co_request_t *req)
{
    int keep = req->version >= 11;
    for (unsigned i = 0; i < req->nheaders; i++) {
        const struct http_header *h = &req->headers[i];
        if (!head_name_is(h, "connection"))
            continue;
        const char *v = h->value;
        while (*v) {
            v += strspn(v, " \t,");
            size_t n = strcspn(v, " \t,");
            if (n == 5 && strncasecmp(v, "close", 5) == 0)
                return 0;
            if (n == 10 && strncasecmp(v, "keep-alive", 10) == 0)
                keep = 1;
            v += n;
        }
    }
    return keep;
}

static int head_finish(co_request_t *req)
{
    llhttp_t *p = &req->parser;
    if (p->http_major != 1)
        HEAD_FAIL(req, 505, "only HTTP/1.0 and HTTP/1.1 are served");
    req->version = p->http_minor == 0 ? 10 : 11;
    if (head_validate(req) < 0)
        return -1;
    req->method = llhttp_method_name((llhttp_method_t)p->method);
    if (p->method == HTTP_CONNECT)
        HEAD_FAIL(req, 501, "CONNECT is not supported");
    /* NUL-terminate every slice in place: the byte after each was a
     * delimiter llhttp has already consumed. */
    req->target[req->target_len] = '\0';
    for (unsigned i = 0; i < req->nheaders; i++) {
        struct http_header *h = &req->headers[i];
        head_trim(h);
        ((char *)h->name)[h->name_len] = '\0';
        ((char *)h->value)[h->value_len] = '\0';
    }
    /* origin-form "/p?q", or absolute-form "http://host/p?q" (RFC 9112
     * 3.2.2: a server must accept it; the path is what we route on). */
    char *origin = req->target;
    if (origin[0] != '/' && (strncasecmp(origin, "http://", 7) == 0 ||
                             strncasecmp(origin, "https://", 8) == 0)) {
        char *authority = strstr(origin, "://") + 3;
        origin = authority + strcspn(authority, "/?");
        if (origin == authority)
            HEAD_FAIL(req, 400, "absolute target without a host");
        if (*origin != '/')
            origin = "/"; /* "http://host" or "http://host?q" */
    } else if (origin[0] != '/') {
        HEAD_FAIL(req, 400, "request target must start with /");
    }
    char *q = strchr(req->target, '?');
    char *end = q ? q : req->target + req->target_len;
    int literal = origin < req->target || origin > end;
    size_t path_len = literal ? 1 : (size_t)(end - origin);
    req->query = q ? q + 1 : "";
    req->path = head_decode_path(req, origin, path_len);
    if (!req->path)
        HEAD_FAIL(req, 400, "malformed percent-encoding or NUL in path");
    if (head_has_dot_segment(req->path))
        HEAD_FAIL(req, 400, "dot segment in path");
    req->keep_alive = head_keep_alive(req);
    const char *expect = request__header(req, "expect");
    req->expect_continue = 0;
    if (expect) {
        if (strcasecmp(expect, "100-continue") != 0)
            HEAD_FAIL(req, 417, "unsupported Expect");
        req->expect_continue = req->version >= 11;
    }
    return head_body_framing(req);
}

int head__parse(struct conn *c)
{
    co_request_t *req = c->req;
    const char *start = c->buf + c->pos;
    llhttp_errno_t err = llhttp_execute(&req->parser, start, c->len - c->pos);
    if (err == HPE_OK) {
        c->pos = c->len;
        if (c->len >= c->srv->cfg.limits.max_head || c->len >= HTTP_BUF_SIZE) {
            req->error_reason = req->url_done ? "request head too large"
                                              : "request target too long";
            return req->url_done ? 431 : 414;
        }
        return 0;
    }
    if (err == HPE_PAUSED) {
        c->pos = (uint32_t)(llhttp_get_error_pos(&req->parser) - c->buf);
        c->head_end = c->pos;
        if (c->pos > c->srv->cfg.limits.max_head) {
            req->error_reason = "request head too large";
            return 431;
        }
        if (head_finish(req) < 0)
            return req->res.status;
        return 1;
    }
    if (req->error_reason) /* one of our callbacks refused */
        return req->res.status;
    req->error_reason = llhttp_get_error_reason(&req->parser);
    if (err == HPE_INVALID_METHOD && !req->error_reason)
        req->error_reason = "invalid method";
    return 400;
}
