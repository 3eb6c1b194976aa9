/*
 * live - the notes page updates by itself when another client adds, edits
 * or deletes a note, whichever worker served it.
 *
 * Server-Sent Events rather than a WebSocket: the updates only flow one
 * way (changes still go through the JSON API, with its status codes), an
 * EventSource reconnects by itself and sends Last-Event-ID, and a proxy
 * passes a plain streamed response without an Upgrade. Changes cross
 * workers on the bus (bus.c, shared with apps/webchat).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus.h"
#include "notes.h"

/* A comment this often keeps proxies' read timeouts (nginx: 60 s) away. */
#define LIVE_KEEPALIVE_MS 15000
/* How long the browser waits before it reconnects. */
#define LIVE_RETRY_MS 1000

int live_init(void)
{
    return bus_init("notes");
}

void live_changed(const char *op, int64_t id)
{
    char msg[96];
    int n =
        snprintf(msg, sizeof msg, "{\"op\":\"%s\",\"id\":%" PRId64 "}", op, id);
    bus_publish(msg, (size_t)n); /* best effort, as bus.h says */
}

/* Where a reconnecting client resumes: after its Last-Event-ID if this
 * worker sent it and still keeps what followed; else UINT64_MAX. */
static uint64_t live_resume(const co_request_t *req)
{
    const char *last = co_req_header(req, "Last-Event-ID");
    long pid;
    uint64_t seq;
    if (!last || sscanf(last, "%ld-%" SCNu64, &pid, &seq) != 2 ||
        pid != (long)getpid() || seq >= bus_next() ||
        bus_next() - (seq + 1) > BUS_RING)
        return UINT64_MAX;
    return seq + 1;
}

int live_events(co_request_t *req, co_response_t *res)
{
    if (strcmp(co_req_method(req), "GET") != 0) {
        if (co_res_header(res, "Allow", "GET") < 0)
            return -1;
        return reply_error(res, 405, "method not allowed; use GET");
    }
    if (bus_start() < 0)
        return reply_error(res, 503, "live updates are unavailable");
    uint64_t seq = bus_next();
    int reset = 0;
    if (co_req_header(req, "Last-Event-ID")) {
        uint64_t from = live_resume(req);
        if (from == UINT64_MAX)
            reset = 1; /* another worker's id, or too old */
        else
            seq = from;
    }
    if (co_sse_start(req, res, LIVE_RETRY_MS) < 0)
        return -1;
    if (reset && co_sse_send(res, "reset", NULL, "{}", 2) < 0)
        return 0;
    for (;;) {
        if (bus_wait(seq, co_deadline(LIVE_KEEPALIVE_MS)) < 0) {
            if (errno != ETIMEDOUT)
                return 0; /* cancelled: the client left or we stop */
            if (co_sse_comment(res, "keep-alive") < 0)
                return 0;
            continue;
        }
        const char *data;
        ssize_t n = bus_get(seq, &data);
        if (n < 0) { /* fell a ring behind: the page must reload */
            seq = bus_next() - BUS_RING;
            if (co_sse_send(res, "reset", NULL, "{}", 2) < 0)
                return 0;
            continue;
        }
        char id[48];
        snprintf(id, sizeof id, "%ld-%" PRIu64, (long)getpid(), seq);
        if (co_sse_send(res, "note", id, data, (size_t)n) < 0)
            return 0;
        seq++;
    }
}
