/*
 * heartbeat.h - the hub's side of the watchdog (watchdog.h): the beat it
 * bumps at every switch and around every poll, and the watchdog's state
 * embedded in struct hub.
 *
 * Apart from watchdog.h so the scheduler (hub.h, coro.c) can bump its
 * beat without including the watchdog, which reads the scheduler's state:
 * no include cycle. Header only; the watchdog (watchdog.c) owns the rest.
 */
#ifndef COSERVE_CORE_HEARTBEAT_H
#define COSERVE_CORE_HEARTBEAT_H

#include <ev.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define WATCHDOG_FRAMES 64
#define WATCHDOG_WHAT 256
#define WATCHDOG_OTHERS 1024

struct hub;
struct co;

/* Lists the requests a hub's coroutines serve, all but skip's, into buf
 * ("; " between them, cut to fit, NUL-terminated); sets *count to how many
 * there are. Runs in a signal handler on the hub's thread while the hub is
 * stopped: it may only read memory and copy bytes. Returns the length. */
typedef size_t (*watchdog_requests_fn)(void *arg, const struct co *skip,
                                       char *buf, size_t len, unsigned *count);

/* What a hub publishes for a supervisor in another process (a shared
 * mapping): the supervisor reads it, only the hub's process writes it. */
struct watchdog_shared {
    uint64_t beat;     /* the heartbeat: odd while polling, or once gone */
    uint64_t reported; /* the beat whose --timeout report is logged */
    uint32_t requests; /* requests in flight (watchdog__requests) */
    uint64_t episodes; /* blocked episodes seen (watchdog thread only) */
};

/* The watchdog's part of a hub (embedded in struct hub). */
struct watchdog_hub {
    uint64_t *beatp; /* the heartbeat: &beat, or the shared one */
    uint64_t beat;
    /* When the beat last became even (watchdog__clock_ms): the watchdog
     * measures a block from there, not from the look that first saw it. */
    int64_t beat_ms;
    struct watchdog_shared *shared; /* NULL unless published */
    int on;                         /* registered with the watchdog thread */
    pthread_t thread;
    ev_prepare prepare;
    ev_check check;
    watchdog_requests_fn requests; /* the layer above's, or NULL */
    void *requests_arg;
    /* A capture: requested by the watchdog, filled by the signal handler
     * on the hub's thread (state guards the rest). */
    int state;
    uint64_t capture_beat; /* the stalled beat the watchdog saw */
    int stale;             /* the hub had moved on when the signal came */
    int want_others;       /* list the other requests too */
    int depth;
    void *pc; /* the interrupted instruction, or NULL if unknown */
    void *frames[WATCHDOG_FRAMES];
    char what[WATCHDOG_WHAT];
    char others[WATCHDOG_OTHERS];
    unsigned nothers;
    /* Only the watchdog thread touches these. */
    uint64_t seen_beat;
    int64_t seen_at; /* when seen_beat was first seen (monotonic ms) */
    int episode;     /* 0, or how the current episode was reported */
    int warned;      /* a warning was logged, at warned_at */
    int64_t warned_at;
    uint64_t quiet;        /* episodes not logged since the last warning */
    uint64_t timeout_beat; /* the beat last reported at --timeout */
    char episode_what[WATCHDOG_WHAT];
    struct watchdog_hub *next; /* the watchdog's list */
    /* Counters, for metrics: read with __atomic_load_n. */
    uint64_t episodes; /* blocked episodes seen */
    uint64_t unlogged; /* of which past the rate limit */
};

/* The watchdog's clock: CLOCK_MONOTONIC_COARSE in ms. A read is a few ns
 * (no TSC read, unlike CLOCK_MONOTONIC), cheap enough for every switch;
 * its resolution (one kernel tick, 4 ms here) is far below a threshold. */
static inline int64_t watchdog__clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One step of the heartbeat: the hub switches into or out of a coroutine.
 * Only the hub's thread writes the beat; the watchdog reads it. An even
 * beat (awake) is stamped first, then published: a watchdog that reads the
 * new beat reads this stamp or a later one, never an older one, so it can
 * only underestimate how long the hub has been blocked. */
static inline void watchdog__beat(struct watchdog_hub *w, uint64_t step)
{
    uint64_t *b = w->beatp;
    uint64_t next = *b + step;
    if (!(next & 1) && w->on) /* only the watchdog thread reads stamps */
        __atomic_store_n(&w->beat_ms, watchdog__clock_ms(), __ATOMIC_RELAXED);
    __atomic_store_n(b, next, __ATOMIC_RELEASE);
}

/* Publishes how many requests the hub holds (for the supervisor's kill
 * line); nothing when the hub publishes nothing. */
static inline void watchdog__requests(struct watchdog_hub *w, unsigned n)
{
    if (w->shared)
        __atomic_store_n(&w->shared->requests, n, __ATOMIC_RELAXED);
}

#endif
