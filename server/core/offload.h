/*
 * offload.h - the thread pool that runs blocking work for coroutines.
 *
 * One pool per process (started at the first co_offload), shared by every
 * hub. A task is a small record from the submitting hub's free list: queued
 * under the pool lock, run by a worker, then pushed on its hub's done list,
 * and the hub is woken through its ev_async. The record outlives the waiting
 * coroutine's stack frame, so a wait that ends early (deadline, cancel) can
 * leave the work running safely.
 */
#ifndef COSERVE_CORE_OFFLOAD_H
#define COSERVE_CORE_OFFLOAD_H

struct hub;

/* Sets up a hub's completion path (its ev_async, done list). */
void offload__hub_init(struct hub *hub);
/* Called by an idle hub with offloads in flight, before it blocks in the
 * loop: watches for completions for a few microseconds, which saves both
 * the worker's eventfd write and the hub's wake-up when work is short.
 * Returns non-zero if it delivered some. */
int offload__spin(struct hub *hub);

/* Stops the pool: queued work runs first, then every thread runs its fini
 * hooks and exits; the hooks are forgotten. Call it before unloading the
 * code of any hook. Also run at exit. The pool restarts on next use. */
void offload__shutdown(void);

/* Frees the hub's task records; no offload may be in flight. */
void offload__hub_destroy(struct hub *hub);

#endif
