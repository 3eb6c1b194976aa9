/*
 * watchdog.h - noticing a hub that does not come back to its loop.
 *
 * A coroutine that spins in a CPU loop, or calls something that blocks the
 * thread (a syscall no hook made cooperative), stalls every other request
 * of its worker. gevent's answer is a monitor thread; this is ours.
 *
 * The hub keeps a heartbeat: a counter it bumps when it switches into a
 * coroutine, when a coroutine switches out, and around the loop's poll
 * (an ev_prepare / ev_check pair). An odd value means "asleep in the poll",
 * which is not blocking. One watchdog thread per process samples every
 * hub's counter a few times per threshold; a value that stays even and
 * unchanged past the threshold is a blocked episode. The watchdog then
 * signals the hub's thread (SIGURG, on the alternate signal stack
 * overflow.c sets up), whose handler, doing only async-signal-safe work,
 * takes backtrace() of the interrupted code and a description of the
 * running coroutine into this struct. The watchdog thread names the
 * frames (symtab.c) and logs one warning, then one line when the hub moves
 * on. At most one warning per second per hub: further episodes are counted
 * and the next warning says how many were not logged.
 *
 * The signal interrupts the blocked call: a nanosleep or poll that it
 * interrupts returns EINTR early, once per episode, as with any signal.
 */
#ifndef COSERVE_CORE_WATCHDOG_H
#define COSERVE_CORE_WATCHDOG_H

#include <ev.h>
#include <pthread.h>
#include <stdint.h>

#define WATCHDOG_FRAMES 64
#define WATCHDOG_WHAT 256

struct hub;

/* The watchdog's part of a hub (embedded in struct hub). */
struct watchdog_hub {
    uint64_t beat; /* the heartbeat: odd while the loop polls */
    int on;        /* registered with the watchdog thread */
    pthread_t thread;
    ev_prepare prepare;
    ev_check check;
    /* A capture: requested by the watchdog, filled by the signal handler
     * on the hub's thread (state guards the rest). */
    int state;
    uint64_t capture_beat; /* the stalled beat the watchdog saw */
    int stale;             /* the hub had moved on when the signal came */
    int depth;
    void *pc; /* the interrupted instruction, or NULL if unknown */
    void *frames[WATCHDOG_FRAMES];
    char what[WATCHDOG_WHAT];
    /* Only the watchdog thread touches these. */
    uint64_t seen_beat;
    int64_t seen_at; /* when seen_beat was first seen (monotonic ms) */
    int episode;     /* 0, or how the current episode was reported */
    int warned;      /* a warning was logged, at warned_at */
    int64_t warned_at;
    uint64_t quiet; /* episodes not logged since the last warning */
    char episode_what[WATCHDOG_WHAT];
    struct watchdog_hub *next; /* the watchdog's list */
    /* Counters, for metrics: read with __atomic_load_n. */
    uint64_t episodes; /* blocked episodes seen */
    uint64_t unlogged; /* of which past the rate limit */
};

/* Sets the threshold in ms for hubs created from now on; 0 (the library's
 * default) turns the watchdog off. */
void watchdog__set_threshold(int64_t ms);

/* Called by hub__create on the hub's thread: starts the heartbeat watchers
 * and registers the hub with the watchdog thread (started on first use).
 * Does nothing when the watchdog is off. Returns 0, or -1 with errno. */
int watchdog__hub_init(struct hub *hub);

/* Unregisters the hub (waiting for a report in progress) and stops its
 * watchers; the last hub out stops the watchdog thread. Logs how many
 * blocked episodes the hub had, if any. */
void watchdog__hub_fini(struct hub *hub);

/* One step of the heartbeat: the hub switches into or out of a coroutine.
 * Only the hub's thread writes beat; the watchdog reads it. */
static inline void watchdog__beat(struct watchdog_hub *w, uint64_t step)
{
    __atomic_store_n(&w->beat, w->beat + step, __ATOMIC_RELAXED);
}

#endif
