/*
 * Server-Sent Events: the event-stream framing over a streamed response.
 *
 * Each event is built whole and written with one co_res_write and a
 * flush, so it leaves as one chunk: a proxy or a browser never sees half
 * an event. The head asks nginx not to buffer (X-Accel-Buffering: no);
 * the deployment's config still sets what nginx needs for the location
 * (deploy/nginx/coserve.conf), and comments keep its read timeout fed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hub.h"
#include "http/guard.h"
#include "http/http.h"
#include "http/request.h"

static co_request_t *sse_req(co_response_t *res)
{
    return (co_request_t *)((char *)res - offsetof(co_request_t, res));
}

int co_sse_start(co_request_t *req, co_response_t *res, int64_t retry_ms)
{
    guard__check(req, "co_sse_start");
    if (res->started || res->fixed) {
        errno = EALREADY;
        return -1;
    }
    if (co_res_status(res, 200) < 0 ||
        co_res_header(res, "Content-Type", "text/event-stream; charset=utf-8") <
            0 ||
        co_res_header(res, "Cache-Control", "no-cache") < 0 ||
        co_res_header(res, "X-Accel-Buffering", "no") < 0)
        return -1;
    /* an event stream lives until the client leaves: no request timeout;
     * a stop ends it at once (the browser reconnects to the new workers) */
    ev_timer_stop(req->conn->srv->hub->loop, &req->conn->timer);
    res->event_stream = 1;
    if (retry_ms >= 0) {
        char line[40];
        int n =
            snprintf(line, sizeof line, "retry: %lld\n\n", (long long)retry_ms);
        if (co_res_write(res, line, (size_t)n) < 0)
            return -1;
    }
    int rc = co_res_flush(res);
    /* a stop that began before this request became a stream did not see
     * it (server.c cancels the streams open then): it ends at its first
     * wait, and the browser reconnects to the new workers */
    if (req->conn->srv->draining)
        co_cancel(co_current());
    return rc;
}

/* Whether s has no CR, LF (or is NULL). */
static int sse_field_ok(const char *s)
{
    return !s || !strpbrk(s, "\r\n");
}

int co_sse_send(co_response_t *res, const char *event, const char *id,
                const char *data, size_t len)
{
    co_request_t *req = sse_req(res);
    guard__check(req, "co_sse_send");
    if (!res->started || !sse_field_ok(event) || !sse_field_ok(id) ||
        (len && !data)) {
        errno = EINVAL;
        return -1;
    }
    /* each line of data gets "data: " and a newline; a CR LF or a lone
     * CR in data ends a line too, as the EventSource parser reads it */
    size_t lines = 1;
    for (size_t i = 0; i < len; i++)
        lines += data[i] == '\n' || data[i] == '\r';
    size_t cap = len + lines * 7 + 16 + (event ? strlen(event) + 8 : 0) +
                 (id ? strlen(id) + 5 : 0);
    char stackbuf[1024];
    char *buf = cap <= sizeof stackbuf ? stackbuf : malloc(cap);
    if (!buf) {
        errno = ENOMEM;
        return -1;
    }
    size_t n = 0;
    if (event)
        n += (size_t)sprintf(buf + n, "event: %s\n", event);
    if (id)
        n += (size_t)sprintf(buf + n, "id: %s\n", id);
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && data[i] != '\n' && data[i] != '\r')
            continue;
        memcpy(buf + n, "data: ", 6);
        n += 6;
        if (i > start)
            memcpy(buf + n, data + start, i - start);
        n += i - start;
        buf[n++] = '\n';
        if (i + 1 < len && data[i] == '\r' && data[i + 1] == '\n')
            i++;
        start = i + 1;
    }
    buf[n++] = '\n';
    int rc = co_res_write(res, buf, n);
    if (buf != stackbuf)
        free(buf);
    return rc < 0 ? -1 : co_res_flush(res);
}

int co_sse_comment(co_response_t *res, const char *text)
{
    co_request_t *req = sse_req(res);
    guard__check(req, "co_sse_comment");
    if (!res->started || !sse_field_ok(text)) {
        errno = EINVAL;
        return -1;
    }
    char line[256];
    int n = snprintf(line, sizeof line, ": %.240s\n\n", text ? text : "");
    if (co_res_write(res, line, (size_t)n) < 0)
        return -1;
    return co_res_flush(res);
}
