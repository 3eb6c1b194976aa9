/*
 * inflight - a test app that counts its own requests in progress, so a test
 * can prove that outbound requests overlapped without timing anything.
 *
 *   GET /inflight?ms=N&gate=G&wait_ms=W
 *       counts itself in; with gate, waits until G requests have been in
 *       progress at once (at most W ms, default 10000: then 504); sleeps N
 *       ms (default 0); counts itself out; answers "ok\n".
 *   GET /inflight/stats   "now=C max=M total=T\n" for this worker
 *   GET /inflight/reset   zeroes max and total, closes the gate
 *
 * Counts are per worker: tests run one worker. A gate of G can only open
 * if G requests reached this worker's handler before any of them finished,
 * which is what "the requests overlapped" means.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "coserve.h"

#define INFLIGHT_TEXT "text/plain; charset=utf-8"

/* One hub thread per worker runs every handler: plain ints suffice. */
static long inflight_now, inflight_max, inflight_total;
static co_event_t *inflight_gate; /* set once `now` reached the gate */

static int inflight_send(co_response_t *res, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int inflight_send(co_response_t *res, int status, const char *fmt, ...)
{
    char body[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    return co_res_send(res, status, INFLIGHT_TEXT, body, (size_t)n);
}

/* Query parameter name as a non-negative integer (def when absent), or -1. */
static long inflight_param(const co_request_t *req, const char *name, long def)
{
    char buf[16];
    ssize_t len = co_req_query_param(req, name, buf, sizeof buf);
    if (len < 0)
        return errno == ENOENT ? def : -1;
    long v = 0;
    for (ssize_t i = 0; i < len; i++) {
        if (buf[i] < '0' || buf[i] > '9' || v > 100000000)
            return -1;
        v = v * 10 + (buf[i] - '0');
    }
    return len ? v : -1;
}

/* Counted in, held at the gate and asleep, counted out. */
static int inflight_hold(co_request_t *req, co_response_t *res)
{
    long ms = inflight_param(req, "ms", 0);
    long gate = inflight_param(req, "gate", 0);
    long wait_ms = inflight_param(req, "wait_ms", 10000);
    if (ms < 0 || gate < 0 || wait_ms < 0)
        return inflight_send(res, 400, "bad ms, gate or wait_ms\n");
    inflight_now++;
    inflight_total++;
    if (inflight_now > inflight_max)
        inflight_max = inflight_now;
    if (gate && inflight_now >= gate)
        co_event_set(inflight_gate);
    int rc = 0;
    if (gate)
        rc = co_event_wait(inflight_gate, co_deadline(wait_ms));
    if (rc == 0 && ms)
        rc = co_sleep(co_deadline(ms));
    int err = errno;
    /* counted out before the answer leaves (it is sent when we return) */
    inflight_now--;
    if (rc < 0 && err == ETIMEDOUT)
        return inflight_send(res, 504, "gate of %ld never opened (max %ld)\n",
                             gate, inflight_max);
    if (rc < 0)
        return -1; /* cancelled: the server is stopping */
    return inflight_send(res, 200, "ok\n");
}

static int inflight_handler(co_request_t *req, co_response_t *res)
{
    const char *info = co_req_path_info(req);
    if (strcmp(info, "/stats") == 0)
        return inflight_send(res, 200, "now=%ld max=%ld total=%ld\n",
                             inflight_now, inflight_max, inflight_total);
    if (strcmp(info, "/reset") == 0) {
        inflight_max = inflight_now;
        inflight_total = 0;
        co_event_clear(inflight_gate);
        return inflight_send(res, 200, "reset\n");
    }
    return inflight_hold(req, res);
}

static int inflight_init(void)
{
    inflight_gate = co_event_new();
    return inflight_gate ? 0 : -1;
}

static void inflight_fini(void)
{
    co_event_free(inflight_gate);
}

COSERVE_APP(.name = "inflight", .mount = "/inflight", .init = inflight_init,
            .fini = inflight_fini, .handler = inflight_handler);
