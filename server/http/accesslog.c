/*
 * The access log, in combined log format plus the request time in seconds
 * (as nginx's $request_time), or as JSON lines (accesslog_json.c). The size is the body bytes the kernel took
 * (nginx's $body_bytes_sent, without chunk framing): for a response cut
 * short, what actually left. Lines gather in a buffer handed on once per
 * loop turn, just before the hub blocks (an ev_prepare watcher), or when it
 * fills, so a busy worker queues many requests' lines at once, and an idle
 * one never sits on a line. The hub never writes them itself: a writer
 * thread does (core/logbuf.c), so a log output that stalls (stdout into a
 * pipe nobody reads) drops lines, counted in the error log, instead of
 * freezing the worker.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/hub.h"
#include "core/log.h"
#include "core/logbuf.h"
#include "http/accesslog.h"
#include "http/date.h"
#include "http/forwarded.h"
#include "http/http.h"
#include "http/request.h"

#define ACCESSLOG_BUF (64 * 1024)
#define ACCESSLOG_LINE 4096
/* What may wait for the writer: a few seconds of lines at full speed. */
#define ACCESSLOG_RING (4 * 1024 * 1024)
/* How long a stopping worker waits for a slow log. */
#define ACCESSLOG_STOP_MS 1000

void accesslog__flush(struct http_server *srv)
{
    if (!srv->log_len || !srv->cfg.access_log)
        return;
    if (srv->log_sink) {
        logbuf__append(srv->log_sink, srv->log_buf, srv->log_len);
        srv->log_len = 0;
        return;
    }
    /* no writer thread could start: write here, as a last resort */
    int fd = fileno(srv->cfg.access_log);
    size_t off = 0;
    while (off < srv->log_len) {
        ssize_t w = write(fd, srv->log_buf + off, srv->log_len - off);
        if (w <= 0)
            break; /* a full disk must not stop the server: drop the lines */
        off += (size_t)w;
    }
    srv->log_len = 0;
}

static void accesslog_prepare_cb(struct ev_loop *loop, ev_prepare *w,
                                 int revents)
{
    (void)loop;
    (void)revents;
    accesslog__flush(list_entry(w, struct http_server, log_flush));
}

void accesslog__init(struct http_server *srv)
{
    srv->log_len = 0;
    srv->log_buf = srv->cfg.access_log ? malloc(ACCESSLOG_BUF) : NULL;
    if (!srv->log_buf)
        return;
    srv->log_sink = logbuf__start(fileno(srv->cfg.access_log), ACCESSLOG_RING,
                                  "access log");
    if (!srv->log_sink)
        log_warn("access log: no writer thread (%s): writing from the hub",
                 strerror(errno));
    ev_prepare_init(&srv->log_flush, accesslog_prepare_cb);
    ev_prepare_start(srv->hub->loop, &srv->log_flush);
    ev_unref(srv->hub->loop);
}

void accesslog__fini(struct http_server *srv)
{
    accesslog__flush(srv);
    if (srv->log_sink)
        logbuf__stop(srv->log_sink, ACCESSLOG_STOP_MS);
    srv->log_sink = NULL;
    if (srv->log_buf) {
        ev_ref(srv->hub->loop);
        ev_prepare_stop(srv->hub->loop, &srv->log_flush);
        free(srv->log_buf);
        srv->log_buf = NULL;
    }
}

/* Copies the len bytes at s into out, escaping quotes, backslashes and
 * control bytes so a client cannot forge log lines. The length is explicit:
 * a refused head is not NUL-terminated, and the pooled buffer behind it
 * holds other clients' bytes. */
static size_t accesslog_escape(char *out, size_t room, const char *s,
                               size_t len)
{
    size_t n = 0;
    if (!s || !len) {
        s = "-";
        len = 1;
    }
    for (size_t i = 0; i < len && n + 5 < room; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\' || ch < 0x20 || ch >= 0x7f)
            n += (size_t)snprintf(out + n, room - n, "\\x%02X", ch);
        else
            out[n++] = (char)ch;
    }
    out[n] = '\0';
    return n;
}

/* A header for the log: only from a head the front end accepted (whose
 * slices are complete and NUL-terminated). */
static const char *accesslog_header(co_request_t *req, const char *name)
{
    return req->error_reason ? NULL : request__header(req, name);
}

static size_t accesslog_len(const char *s)
{
    return s ? strlen(s) : 0;
}

void accesslog__request(co_request_t *req)
{
    struct http_server *srv = req->conn->srv;
    if (!srv->log_buf)
        return;
    if (srv->log_len + ACCESSLOG_LINE > ACCESSLOG_BUF)
        accesslog__flush(srv);
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double secs = (double)(now.tv_sec - req->start_ts.tv_sec) +
                  (double)(now.tv_nsec - req->start_ts.tv_nsec) / 1e9;
    if (srv->cfg.access_log_json) {
        srv->log_len += accesslog__json(req, srv->log_buf + srv->log_len,
                                        ACCESSLOG_LINE, secs);
        return;
    }
    char target[1024], referer[512], agent[512];
    const char *ref = accesslog_header(req, "referer");
    const char *ua = accesslog_header(req, "user-agent");
    accesslog_escape(target, sizeof target, req->target,
                     req->target ? req->target_len : 0);
    accesslog_escape(referer, sizeof referer, ref, accesslog_len(ref));
    accesslog_escape(agent, sizeof agent, ua, accesslog_len(ua));
    char *p = srv->log_buf + srv->log_len;
    int n = snprintf(
        p, ACCESSLOG_LINE,
        "%s - - [%s] \"%s %s HTTP/1.%d\" %d %" PRIu64 " \"%s\" \"%s\" %.3f\n",
        co_req_remote_addr(req), date__log(), req->method ? req->method : "-",
        target, req->version == 10 ? 0 : 1, req->res.status, req->res.body_out,
        referer, agent, secs);
    if (n > 0)
        srv->log_len += n < ACCESSLOG_LINE ? (size_t)n : ACCESSLOG_LINE - 1;
}
