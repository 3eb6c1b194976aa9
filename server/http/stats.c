/* A worker's counters in its shared slot (see stats.h). */
#include "http/stats.h"

#include <string.h>
#include <time.h>

#include "core/hub.h"
#include "http/http.h"
#include "http/request.h"

/* The codes worth a series of their own; anything else counts by class. */
const int stats__codes[STATS_CODES] = {
    200, 201, 202, 204, 206, 301, 302, 303, 304, 307, 308, 400,
    401, 403, 404, 405, 408, 409, 413, 414, 415, 429, 431, 499,
    500, 501, 502, 503, 504, 0,   0,   0,   0,   0,   0};
const char *const stats__code_names[STATS_CODES] = {
    "200", "201", "202", "204", "206", "301", "302", "303",  "304",
    "307", "308", "400", "401", "403", "404", "405", "408",  "409",
    "413", "414", "415", "429", "431", "499", "500", "501",  "502",
    "503", "504", "1xx", "2xx", "3xx", "4xx", "5xx", "other"};
#define STATS_CLASS0 29 /* index of "1xx" */

/* Prometheus's default buckets, with 1 ms and 2.5 ms in front: most
 * requests here take less than 5 ms. */
const double stats__bounds[STATS_BUCKETS - 1] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
const char *const stats__bound_names[STATS_BUCKETS] = {
    "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
    "0.25",  "0.5",    "1",     "2.5",  "5",     "10",   "+Inf"};
static const uint64_t stats_bounds_us[STATS_BUCKETS - 1] = {
    1000,   2500,   5000,    10000,   25000,   50000,   100000,
    250000, 500000, 1000000, 2500000, 5000000, 10000000};

/* status -> index in stats__codes, built once: one load per request. */
static uint8_t stats_code_index[600];

static void stats_build_index(void)
{
    for (int code = 0; code < 600; code++) {
        unsigned idx = code < 100 ? STATS_CODES - 1
                                  : STATS_CLASS0 + (unsigned)(code / 100 - 1);
        for (unsigned i = 0; i < STATS_CLASS0; i++)
            if (stats__codes[i] == code)
                idx = i;
        stats_code_index[code] = (uint8_t)idx;
    }
}

void stats__init(struct http_stats *s)
{
    if (!stats_code_index[200] && !stats_code_index[201])
        stats_build_index();
    memcpy(s->names[STATS_NO_APP], "-", 2);
    memcpy(s->names[STATS_OTHER], "other", 6);
    __atomic_store_n(&s->napps, 1, __ATOMIC_RELEASE);
}

unsigned stats__app(struct http_stats *s, const char *name)
{
    uint32_t n = s->napps;
    for (uint32_t i = 1; i < n; i++)
        if (strncmp(s->names[i], name, STATS_APP_NAME - 1) == 0)
            return i;
    if (n >= STATS_OTHER)
        return STATS_OTHER;
    snprintf(s->names[n], STATS_APP_NAME, "%s", name);
    /* the name is whole before the master may read it */
    __atomic_store_n(&s->napps, n + 1, __ATOMIC_RELEASE);
    return n;
}

void stats__request(struct http_stats *s, unsigned app, int status, uint64_t us)
{
    struct stats_app *a = &s->apps[app < STATS_APPS ? app : STATS_OTHER];
    unsigned code = status >= 0 && status < 600 ? stats_code_index[status]
                                                : STATS_CODES - 1;
    unsigned b = 0;
    while (b < STATS_BUCKETS - 1 && us > stats_bounds_us[b])
        b++;
    stats__add(&a->requests[code], 1);
    stats__add(&a->buckets[b], 1);
    stats__add(&a->sum_us, us);
}

void stats__count(co_request_t *req)
{
    struct http_server *srv = req->conn->srv;
    if (!srv->stats)
        return;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t us = (int64_t)(now.tv_sec - req->start_ts.tv_sec) * 1000000 +
                 (now.tv_nsec - req->start_ts.tv_nsec) / 1000;
    const struct http_route *r = req->route;
    unsigned app = !r                               ? STATS_NO_APP
                   : r == srv->cfg.routing.fallback ? srv->fallback_stats
                                                    : r->stats_id;
    stats__request(srv->stats, app, req->res.status, us > 0 ? (uint64_t)us : 0);
}

/* Before the hub polls: the gauges, as they are now the hub is idle. */
static void stats_publish_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)revents;
    struct http_server *srv = list_entry(w, struct http_server, stats_publish);
    struct http_stats *s = srv->stats;
    struct hub *hub = srv->hub;
    __atomic_store_n(&s->connections, srv->open, __ATOMIC_RELAXED);
    __atomic_store_n(&s->active, srv->active, __ATOMIC_RELAXED);
    __atomic_store_n(&s->coroutines, (uint32_t)hub->live, __ATOMIC_RELAXED);
    __atomic_store_n(&s->stacks_pooled, (uint32_t)hub->stacks.count,
                     __ATOMIC_RELAXED);
    for (int p = 0; p < OFFLOAD_POOLS; p++) {
        unsigned q, busy, threads;
        offload__stats((enum offload_pool_id)p, &q, &busy, &threads);
        __atomic_store_n(&s->offload_queued[p], q, __ATOMIC_RELAXED);
        __atomic_store_n(&s->offload_busy[p], busy, __ATOMIC_RELAXED);
        __atomic_store_n(&s->offload_threads[p], threads, __ATOMIC_RELAXED);
    }
    (void)loop;
    __atomic_store_n(&s->loop_ms, co_now(), __ATOMIC_RELAXED);
}

void stats__start(struct http_server *srv)
{
    if (!srv->stats)
        return;
    srv->fallback_stats =
        srv->cfg.routing.fallback
            ? stats__app(srv->stats, srv->cfg.routing.fallback->name)
            : STATS_NO_APP;
    ev_prepare_init(&srv->stats_publish, stats_publish_cb);
    ev_prepare_start(srv->hub->loop, &srv->stats_publish);
    ev_unref(srv->hub->loop); /* it must not keep the loop alive */
}

void stats__stop(struct http_server *srv)
{
    if (!srv->stats)
        return;
    ev_ref(srv->hub->loop);
    ev_prepare_stop(srv->hub->loop, &srv->stats_publish);
    /* the last word: nothing open, nothing running */
    __atomic_store_n(&srv->stats->connections, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&srv->stats->active, 0, __ATOMIC_RELAXED);
}
