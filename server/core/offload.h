/*
 * offload.h - the thread pools that run blocking work for coroutines.
 *
 * Two pools per process (each started at its first use), shared by every
 * hub: the app pool (co_offload) and the name-lookup pool. A task is a small
 * record from the submitting hub's free list: queued under the pool lock, run
 * by a worker, then pushed on its hub's done list, and the hub is woken through
 * its ev_async. The record outlives the waiting coroutine's stack frame, so a
 * wait that ends early (deadline, cancel) can leave the work running safely.
 */
#ifndef COSERVE_CORE_OFFLOAD_H
#define COSERVE_CORE_OFFLOAD_H

#include <stdint.h>

#include "coserve.h"

struct hub;

/* The pools. Name lookups (co_dial, the getaddrinfo hooks) have threads of
 * their own, so slow app work queued on the app pool never delays them,
 * and a slow resolver never holds an app pool thread. Sized by
 * COSERVE_OFFLOAD_THREADS (co_offload_set_threads) and COSERVE_DNS_THREADS
 * (default 4 each); each starts at its first use. */
enum offload_pool_id { OFFLOAD_APP, OFFLOAD_NAMES, OFFLOAD_POOLS };

/* co_offload on the pool `which`; caller names the public call for the
 * wrong-thread abort. Same contract as co_offload (include/coserve.h). */
int offload__run(enum offload_pool_id which, const char *caller, co_work_fn fn,
                 void *arg, co_work_fn abandon, int64_t deadline);

/* Sets up a hub's completion path (its ev_async, done list) and its
 * on_idle hook: an idle hub with offloads in flight watches for their
 * completions a few microseconds before it blocks (co_run calls this). */
void offload__hub_init(struct hub *hub);

/* Stops the pool: queued work runs first, then every thread runs its fini
 * hooks and exits; the hooks are forgotten. Call it before unloading the
 * code of any hook. Also run at exit. The pool restarts on next use. */
void offload__shutdown(void);

/* For metrics, a pool as it is now: tasks waiting for a thread, threads
 * running one, threads started. Any thread may ask (relaxed reads). */
void offload__stats(enum offload_pool_id which, unsigned *queued,
                    unsigned *busy, unsigned *threads);

/* Frees the hub's task records; no offload may be in flight. */
void offload__hub_destroy(struct hub *hub);

#endif
