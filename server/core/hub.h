/*
 * hub.h - one scheduler per thread: a libev loop and a run queue.
 *
 * The hub runs on the thread's own stack. It resumes every ready coroutine
 * (up to a budget, so I/O is polled even under co_yield_now() storms), then
 * runs the libev loop once, whose callbacks only mark coroutines ready.
 * Coroutines switch to the hub and back, never directly to each other: one
 * place to keep the sanitizer annotations, errno and the current pointer right.
 *
 * Module: core/sched. hub, coro, deadline, wait and outcome are one module
 * in five files, the scheduler: a coroutine parks (coro) with a deadline
 * (deadline) or on several objects (wait), the hub wakes and resumes it,
 * and its end runs its links (outcome); they call one another.
 * scripts/include_cycles.sh treats them as one.
 */
#ifndef COSERVE_CORE_HUB_H
#define COSERVE_CORE_HUB_H

#include <ev.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "core/list.h"
#include "core/stack.h"
#include "core/switch.h"
#include "core/heartbeat.h"

struct co;

struct hub {
    struct ev_loop *loop;
    struct switch_ctx ctx; /* the hub's own context while a coroutine runs */
    struct co *current;    /* running coroutine, NULL in the hub */
    struct list runq;      /* ready coroutines, in wake order */
    struct list all;       /* every live coroutine (for shutdown) */
    size_t live;           /* coroutines not yet finished */
    struct stack_pool stacks;
    struct co *free_cos; /* recycled coroutine structs */
    uint64_t next_id;
    int64_t turn_now; /* hub__now's reading, and the loop turn of it */
    unsigned turn_polled;

    /* Coroutines parked with a deadline, a heap ordered by (deadline, park
     * order), and the one timer set for its top (deadline.c). */
    struct dl_entry *dl_heap; /* deadline.c's heap */
    size_t dl_len, dl_cap;
    /* Where each coroutine struct's entry is: 1 + its heap slot, 0: not
     * there; indexed by the struct's co->dl_slot. Spare slots (of freed
     * structs) are stacked in dl_spare. */
    uint32_t *dl_where, *dl_spare;
    size_t dl_slots, dl_slots_cap, dl_nspare;
    uint64_t dl_seq;
    ev_timer dl_timer;
    int64_t dl_armed; /* the deadline dl_timer waits for; -1: stopped */

    /* Offload completions arrive from other threads through done_list. */
    ev_async wake;
    pthread_mutex_t done_lock;
    struct list done_list;
    int done_spinning;        /* hub polls done_list itself: no wake needed */
    int done_ready;           /* atomic: done_list may be non-empty */
    size_t offloads;          /* in flight; while > 0 the loop holds a ref */
    struct list offload_free; /* recycled task records */
    /* Asked before an idle hub blocks in the loop (offload's spin, set by
     * offload__hub_init): non-zero if it may have made coroutines ready,
     * so the hub runs them instead of polling. NULL: none. */
    int (*on_idle)(struct hub *hub);

    /* The heartbeat the watchdog thread reads, and what it captured. */
    struct watchdog_hub watchdog;

    /* The hub stack's bounds, as AddressSanitizer reports them. */
    const void *asan_bottom;
    size_t asan_size;
    void *asan_fake;
};

/* The calling thread's hub, or NULL. */
extern __thread struct hub *hub__self;

/* The running coroutine when hooks are on and the thread is a hub running
 * a coroutine; NULL everywhere else (the hub's own context, offload
 * threads, app threads, the master). Set by hub__resume; every hook asks
 * it (hook.h). */
extern __thread struct co *hook__co;

/* Whether hub__resume sets hook__co at all: the --no-hooks switch. Off by
 * default in the runtime library; the server turns it on at start. */
extern int hook__enabled;

/* Makes the calling thread a hub: its loop and run queue. The services
 * beside the scheduler in every hub (the alternate signal stack of
 * overflow.c, offload's completions, the watchdog's heartbeat) are wired
 * in by co_run (run.c), so the scheduler includes none of them. Returns
 * the hub, or NULL with errno (EBUSY: the thread already has one;
 * ENOMEM). */
struct hub *hub__create(void);

/* Frees the hub of the calling thread; no coroutine may be alive. */
void hub__destroy(struct hub *hub);

/* Runs ready coroutines and the loop until done(arg) returns non-zero.
 * Aborts on deadlock: nothing ready, nothing that could wake anyone. */
void hub__run(struct hub *hub, int (*done)(struct hub *, void *), void *arg);

/* Resumes co (which must be ready) until it waits, yields or finishes. */
void hub__resume(struct hub *hub, struct co *co);

/* co_now() as read once per loop turn: what a timeout that may start up
 * to one turn early is set from (libev's ev_now makes the same trade). A
 * kept-alive request set its connection's timer twice, and the two clock
 * reads were 7% of the worker's user time at 100 connections. */
int64_t hub__now(struct hub *hub);

/* The calling thread's hub; aborts naming `call` if the thread has none
 * (an offload thread, or a plain thread using the cooperative API). */
struct hub *hub__require(const char *call);

#endif
