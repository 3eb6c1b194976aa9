/*
 * Trusting a front proxy: X-Forwarded-For and X-Forwarded-Proto are
 * believed only from peers listed in --forwarded-allow-ips (by default
 * loopback and unix sockets, where nginx sits in the usual deployment).
 * From anyone else they are ignored, so a client cannot pick its own
 * address. The rightmost X-Forwarded-For entry is the one our proxy saw.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/forwarded.h"
#include "http/guard.h"
#include "http/http.h"
#include "http/request.h"

int forwarded__parse(struct http_routing *r, const char *spec)
{
    r->ntrusted = 0;
    r->trust_unix = 0;
    r->trust_all = 0;
    char copy[1024];
    if (strlen(spec) >= sizeof copy)
        return -1;
    strcpy(copy, spec);
    for (char *save, *tok = strtok_r(copy, ", ", &save); tok;
         tok = strtok_r(NULL, ", ", &save)) {
        if (strcmp(tok, "*") == 0) {
            r->trust_all = 1;
            continue;
        }
        if (strcmp(tok, "unix") == 0) {
            r->trust_unix = 1;
            continue;
        }
        if (r->ntrusted == HTTP_MAX_TRUSTED)
            return -1;
        struct http_net *net = &r->trusted[r->ntrusted];
        char *slash = strchr(tok, '/');
        int bits = -1;
        if (slash) {
            *slash = '\0';
            char *end;
            bits = (int)strtol(slash + 1, &end, 10);
            if (*end || slash[1] == '\0')
                return -1;
        }
        if (inet_pton(AF_INET, tok, net->addr) == 1) {
            net->family = AF_INET;
            net->bits = bits < 0 ? 32 : bits;
            if (net->bits > 32)
                return -1;
        } else if (inet_pton(AF_INET6, tok, net->addr) == 1) {
            net->family = AF_INET6;
            net->bits = bits < 0 ? 128 : bits;
            if (net->bits > 128)
                return -1;
        } else {
            return -1;
        }
        r->ntrusted++;
    }
    return 0;
}

static int forwarded_match(const struct http_net *net, const uint8_t *addr)
{
    int full = net->bits / 8, rest = net->bits % 8;
    if (memcmp(net->addr, addr, (size_t)full) != 0)
        return 0;
    if (!rest)
        return 1;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (net->addr[full] & mask) == (addr[full] & mask);
}

int forwarded__trusted(const struct conn *c)
{
    const struct http_routing *r = &c->srv->cfg.routing;
    if (r->trust_all)
        return 1;
    if (c->peer_family == AF_UNIX)
        return r->trust_unix;
    for (unsigned i = 0; i < r->ntrusted; i++)
        if (r->trusted[i].family == c->peer_family &&
            forwarded_match(&r->trusted[i], c->peer_addr))
            return 1;
    return 0;
}

const char *forwarded__client(co_request_t *req)
{
    const char *xff = request__header(req, "x-forwarded-for");
    if (!xff || !forwarded__trusted(req->conn))
        return NULL;
    const char *last = strrchr(xff, ',');
    last = last ? last + 1 : xff;
    while (*last == ' ' || *last == '\t')
        last++;
    size_t len = strlen(last);
    while (len && (last[len - 1] == ' ' || last[len - 1] == '\t'))
        len--;
    char text[INET6_ADDRSTRLEN];
    uint8_t buf[16];
    if (len == 0 || len >= sizeof text)
        return NULL;
    memcpy(text, last, len);
    text[len] = '\0';
    if (inet_pton(AF_INET, text, buf) != 1 &&
        inet_pton(AF_INET6, text, buf) != 1)
        return NULL; /* not an address: ignore it rather than log garbage */
    return request__arena_strdup(req, text, len);
}

const char *forwarded__scheme(const co_request_t *req)
{
    const char *proto = request__header(req, "x-forwarded-proto");
    if (proto && forwarded__trusted(req->conn)) {
        if (strcasecmp(proto, "https") == 0)
            return "https";
        if (strcasecmp(proto, "http") == 0)
            return "http";
    }
    return "http";
}

/* The app's view: co_req_scheme and co_req_remote_addr are what a trusted
 * proxy says, else what the socket says. */
const char *co_req_scheme(const co_request_t *req)
{
    guard__check(req, "co_req_scheme");
    return forwarded__scheme(req);
}

const char *co_req_remote_addr(const co_request_t *req)
{
    guard__check(req, "co_req_remote_addr");
    co_request_t *r = (co_request_t *)req;
    if (!r->remote_text)
        r->remote_text = forwarded__client(r);
    if (!r->remote_text)
        r->remote_text = request__addr(r, 0);
    return r->remote_text;
}
