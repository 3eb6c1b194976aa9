/*
 * stats.h - a worker's counters, in a fixed layout its master can read.
 *
 * A worker is a separate process, so what --metrics-listen shows lives in
 * shared memory: one struct http_stats per worker slot, mapped by the
 * master before it forks (server/metrics.c), written only by the worker's
 * hub thread and read by the master at a scrape. One writer means no
 * locks and no locked instructions: a counter is bumped with a relaxed
 * load and store (stats__add), which the reader sees whole (8-byte
 * aligned), so a request costs a handful of plain increments.
 *
 * Label sets are bounded so the layout is: apps are indexed when the
 * worker loads them (stats__app; index 0 is "-", requests that reached no
 * app; past STATS_APPS - 2 names the rest share "other"); a status is
 * counted by its exact code when it is one of a fixed common set, else by
 * its class ("2xx"... "5xx"); durations fall in fixed buckets.
 *
 * Gauges (connections, coroutines, stacks, offload) are published once per
 * loop turn, just before the hub polls (an ev_prepare): a scrape sees the
 * worker as it was when it last went idle, at no cost per request.
 */
#ifndef COSERVE_HTTP_STATS_H
#define COSERVE_HTTP_STATS_H

#include <stdint.h>

#include "core/offload.h"
#include "coserve.h"

/* App label values per worker: "-", the apps, "other". */
#define STATS_APPS 64
#define STATS_NO_APP 0
#define STATS_OTHER (STATS_APPS - 1)
#define STATS_APP_NAME 48
/* Statuses counted by exact code, then one per class 1xx..5xx, then the
 * impossible ones (outside 100..599). */
#define STATS_CODES 35
/* Histogram buckets of request durations: STATS_BUCKETS - 1 bounds, and
 * +Inf last. */
#define STATS_BUCKETS 14

/* One app's requests in one worker. Buckets are not cumulative here (one
 * increment per request); the exposition sums them. */
struct stats_app {
    uint64_t requests[STATS_CODES];
    uint64_t buckets[STATS_BUCKETS];
    uint64_t sum_us; /* total duration, microseconds */
};

/* A worker slot's layout (shared; zeroed by the master before the fork). */
struct http_stats {
    uint32_t napps; /* names[0..napps) are set (store-release) */
    char names[STATS_APPS][STATS_APP_NAME];
    struct stats_app apps[STATS_APPS];
    uint64_t bytes_in, bytes_out; /* on client connections, as the kernel
                                     took them */
    uint64_t accepted;            /* connections accepted */
    /* gauges, published once per loop turn */
    uint32_t connections, active; /* open; with a request in flight */
    uint32_t coroutines;          /* alive on the hub */
    uint32_t stacks_pooled;       /* idle stacks kept for reuse */
    uint32_t offload_queued[OFFLOAD_POOLS];
    uint32_t offload_busy[OFFLOAD_POOLS];
    uint32_t offload_threads[OFFLOAD_POOLS];
    int64_t loop_ms; /* monotonic ms of the last loop turn published */
};

struct http_server;

/* Names and label values, for the master's exposition. */
extern const int stats__codes[STATS_CODES]; /* 0 for a class bucket */
extern const char *const stats__code_names[STATS_CODES];
extern const double stats__bounds[STATS_BUCKETS - 1]; /* seconds */
extern const char *const stats__bound_names[STATS_BUCKETS];

/* Sets up a fresh slot: names[0] = "-". The worker calls it first. */
void stats__init(struct http_stats *s);

/* The index of app `name` in s, added if new (by the worker, before it
 * serves); STATS_OTHER once the table is full. */
unsigned stats__app(struct http_stats *s, const char *name);

/* Counts one answered request: its app index, status and duration. */
void stats__request(struct http_stats *s, unsigned app, int status,
                    uint64_t us);

/* Counts req, answered (or refused) on its server, if it keeps stats:
 * where the access log line is written, so both agree. */
void stats__count(co_request_t *req);

/* Starts and stops srv's gauge publisher (nothing without srv->stats). */
void stats__start(struct http_server *srv);
void stats__stop(struct http_server *srv);

/* Bumps a counter only this thread writes: no locked instruction. */
static inline void stats__add(uint64_t *p, uint64_t n)
{
    __atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + n,
                     __ATOMIC_RELAXED);
}

/* A counter or gauge as the reader sees it. */
static inline uint64_t stats__get(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline uint32_t stats__get32(const uint32_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

#endif
