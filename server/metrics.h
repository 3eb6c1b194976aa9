/*
 * metrics.h - the master's view of what every worker counts.
 *
 * --metrics-listen is served by the master (metrics_http.c): it outlives
 * every worker and every reload, and it already holds each worker slot's
 * shared memory. Before it forks a worker into a slot, the master zeroes
 * that slot's struct http_stats (http/stats.h), which only the worker
 * writes from then on. A scrape adds up the slots of the workers alive and
 * the "retired" totals: when the master reaps a worker, it folds the
 * worker's final counters into them (before the slot can be reused), so
 * no counter ever goes backwards, across reloads, recycles and crashes.
 *
 * Apps are matched by name across workers and generations (a worker's app
 * index is its own); past METRICS_APPS names the rest count as "other".
 *
 * The master's own events (worker starts, exits by cause, reloads) are
 * counted here too, always: a few integers, metrics listener or not.
 */
#ifndef COSERVE_METRICS_H
#define COSERVE_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/watchdog.h"
#include "http/stats.h"

/* Why a worker exited (coserve_worker_exits_total's cause label). */
enum metrics_cause {
    METRICS_STOPPED,      /* asked to (stop, reload, TTOU), exited 0 */
    METRICS_RECYCLED,     /* exited 0 unasked: --max-requests */
    METRICS_ERROR,        /* exited with a non-zero status */
    METRICS_SIGNAL,       /* killed by a signal: a crash, or SIGKILL */
    METRICS_TIMEOUT,      /* killed by the master for --timeout */
    METRICS_START_FAILED, /* died before it was ready */
    METRICS_CAUSES
};

/* A live worker as the master sees it, for a scrape. */
struct metrics_worker {
    unsigned slot;
    pid_t pid;
    const char *state; /* "starting", "ready", "stopping" */
    unsigned generation;
    int64_t started_ms; /* monotonic */
    const struct watchdog_shared *wd;
};

/* What a scrape shows of the master. */
struct metrics_view {
    pid_t pid;
    unsigned generation;
    unsigned target; /* workers wanted */
    int stopping;
    const struct metrics_worker *workers;
    unsigned nworkers;
};

/* A growing text buffer; `failed` once an allocation failed. */
struct metrics_buf {
    char *p;
    size_t len, cap;
    int failed;
};

/* Maps nslots zeroed struct http_stats, shared with the children to come.
 * Returns 0, or -1 with errno. Without it, metrics__slot is NULL. */
int metrics__init(unsigned nslots);

/* Slot i's counters (NULL without metrics__init). */
struct http_stats *metrics__slot(unsigned i);

/* Zeroes slot i for a worker about to be forked into it. */
void metrics__slot_reset(unsigned i);

/* The worker of slot i has exited (reaped): folds its counters, and its
 * blocked episodes from wd, into the retired totals; counts the exit. */
void metrics__retire(unsigned i, const struct watchdog_shared *wd,
                     enum metrics_cause cause);

void metrics__worker_started(void);
void metrics__reloaded(void);
uint64_t metrics__reloads(void);

/* Appends the Prometheus text exposition (format 0.0.4) to out. */
void metrics__prometheus(const struct metrics_view *v, struct metrics_buf *out);

/* Appends /status: a JSON object with the master and a `workers` list. */
void metrics__status(const struct metrics_view *v, struct metrics_buf *out);

/* printf into b, growing it. */
void metrics__printf(struct metrics_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
