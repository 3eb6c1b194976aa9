/*
 * wstest - a test app for the WebSocket, Upgrade and SSE suites, at
 * /wstest, steered by the query:
 *
 *   /wstest?max=N&ping=MS&idle=MS   an echo with these limits
 *          &proto=a,b               the subprotocols it accepts, in order
 *          &nodeflate=1             refuse permessage-deflate
 *          &close=CODE              after the first message, close with
 *                                   CODE and reason "bye"; the peer's code
 *                                   is then sent... nowhere: it is logged
 *          &fail=1                  return -1 after the first message
 *                                   (the server closes with 1011)
 *          &sendbad=1               try to send invalid UTF-8 as text and
 *                                   report the errno as a text message
 *   /wstest/info                    the echo, but each reply is
 *                                   "proto=P type=T len=N" (P: the chosen
 *                                   subprotocol or -)
 *   /wstest/head                    each reply is the request's head as
 *                                   read after the 101: "target=T query=Q
 *                                   path=P tag=X-Tag host=Host"
 *   /wstest/upgrade                 Upgrade: x-upper: every byte comes
 *                                   back upper-cased, early bytes too
 *   /wstest/sse?n=N&hold=1          N events (id 1..N, event "tick",
 *                                   data "line1\nline2 #i") and a comment;
 *                                   hold: then stay open for a minute;
 *                                   delay=MS: first says "sse: delay" on
 *                                   stderr and sleeps MS
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coserve.h"

static long query_long(co_request_t *req, const char *name, long dflt)
{
    char buf[32];
    if (co_req_query_param(req, name, buf, sizeof buf) < 0)
        return dflt;
    return strtol(buf, NULL, 10);
}

static int upgrade(co_request_t *req, co_response_t *res)
{
    char early[256];
    size_t elen = sizeof early;
    int fd = co_upgrade(req, res, "x-upper", early, &elen);
    if (fd < 0)
        return co_res_send(res, 400, "text/plain", "no upgrade\n", 11);
    char buf[4096];
    memcpy(buf, early, elen);
    ssize_t n = (ssize_t)elen;
    for (;;) {
        for (ssize_t i = 0; i < n; i++)
            buf[i] = (char)toupper((unsigned char)buf[i]);
        if (n > 0 && co_write_all(fd, buf, (size_t)n, co_deadline(5000)) < 0)
            return 0;
        n = co_read(fd, buf, sizeof buf, co_deadline(10000));
        if (n <= 0)
            return 0;
    }
}

static int sse(co_request_t *req, co_response_t *res)
{
    long n = query_long(req, "n", 3);
    long delay = query_long(req, "delay", 0);
    if (delay) { /* the test stops the server meanwhile */
        fprintf(stderr, "sse: delay\n");
        co_sleep(co_deadline(delay));
    }
    if (co_sse_start(req, res, 1000) < 0)
        return -1;
    for (long i = 1; i <= n; i++) {
        char id[24], data[64];
        snprintf(id, sizeof id, "%ld", i);
        int len = snprintf(data, sizeof data, "line1\nline2 #%ld", i);
        if (co_sse_send(res, "tick", id, data, (size_t)len) < 0)
            return -1;
    }
    if (co_sse_comment(res, "done") < 0)
        return -1;
    /* hold=1: the stream stays open until the client leaves (the handler
     * is then cancelled), so a proxy that buffered would show nothing */
    if (query_long(req, "hold", 0))
        co_sleep(co_deadline(60000));
    return 0;
}

static int wstest(co_request_t *req, co_response_t *res)
{
    const char *pi = co_req_path_info(req);
    if (!strcmp(pi, "/upgrade"))
        return upgrade(req, res);
    if (!strcmp(pi, "/sse"))
        return sse(req, res);
    int info = !strcmp(pi, "/info");
    int head = !strcmp(pi, "/head");
    char protos[128] = "";
    const char *list[8] = {NULL};
    if (co_req_query_param(req, "proto", protos, sizeof protos) > 0) {
        size_t k = 0;
        for (char *s = strtok(protos, ","); s && k < 7; s = strtok(NULL, ","))
            list[k++] = s;
    }
    co_ws_t *ws = co_ws_accept(
        req, res, list, query_long(req, "nodeflate", 0) ? CO_WS_NO_DEFLATE : 0);
    if (!ws)
        return errno == EPROTO ? 0 : -1;
    co_ws_set_limits(ws, (size_t)query_long(req, "max", 0),
                     query_long(req, "ping", 0), query_long(req, "idle", 0));
    long close_code = query_long(req, "close", 0);
    for (;;) {
        void *data;
        int type;
        ssize_t n = co_ws_recv(ws, &data, &type, -1);
        if (n < 0)
            return 0;
        if (query_long(req, "fail", 0))
            return -1;
        if (close_code) {
            co_ws_close(ws, (int)close_code, "bye", co_deadline(5000));
            return 0;
        }
        if (query_long(req, "sendbad", 0)) {
            int rc = co_ws_send(ws, CO_WS_TEXT, "\xff", 1, -1);
            char msg[32];
            int len = snprintf(msg, sizeof msg, "rc=%d errno=%d", rc, errno);
            co_ws_send(ws, CO_WS_TEXT, msg, (size_t)len, co_deadline(5000));
            continue;
        }
        if (head) { /* the head still answers after the 101 */
            char msg[512];
            const char *tag = co_req_header(req, "X-Tag");
            int len = snprintf(
                msg, sizeof msg, "target=%s query=%s path=%s tag=%s host=%s",
                co_req_target(req), co_req_query(req), co_req_path(req),
                tag ? tag : "-", co_req_header(req, "Host"));
            if (co_ws_send(ws, CO_WS_TEXT, msg, (size_t)len,
                           co_deadline(5000)) < 0)
                return 0;
            continue;
        }
        if (info) {
            char msg[128];
            const char *p = co_ws_protocol(ws);
            int len = snprintf(msg, sizeof msg, "proto=%s type=%d len=%zd",
                               p ? p : "-", type, n);
            if (co_ws_send(ws, CO_WS_TEXT, msg, (size_t)len,
                           co_deadline(5000)) < 0)
                return 0;
            continue;
        }
        if (co_ws_send(ws, type, data, (size_t)n, co_deadline(5000)) < 0)
            return 0;
    }
}

COSERVE_APP(.name = "wstest", .mount = "/wstest", .handler = wstest);
