/*
 * deadline.h - the hub's deadlines: one timer per hub over a heap of the
 * coroutines parked with a deadline, ordered by (deadline, park order).
 *
 * libev's timer heap does not keep insertion order among equal times, and
 * a relative timer started in different loop turns lands on different
 * times for one absolute deadline: coroutines sleeping until the same
 * deadline woke in any order. Here every coroutine whose deadline has
 * passed is woken in one pass, in the order it parked (gevent's order).
 *
 * Module: core/sched. hub, coro, deadline, wait and outcome are one module
 * in five files, the scheduler: a coroutine parks (coro) with a deadline
 * (deadline) or on several objects (wait), the hub wakes and resumes it,
 * and its end runs its links (outcome); they call one another.
 * scripts/include_cycles.sh treats them as one.
 */
#ifndef COSERVE_CORE_DEADLINE_H
#define COSERVE_CORE_DEADLINE_H

#include <stddef.h>
#include <stdint.h>

struct hub;
struct co;

/* A heap entry: the key beside its coroutine (deadline.c says why). */
struct dl_entry {
    int64_t deadline;
    uint64_t seq; /* park order */
    struct co *co;
    uint32_t slot; /* co->dl_slot */
};

void deadline__hub_init(struct hub *hub);
void deadline__hub_destroy(struct hub *hub);

/* Makes room for n parked coroutines, so that parking never allocates
 * (called at spawn: a hub never parks more coroutines than it has alive).
 * Returns 0, or -1 with ENOMEM. */
int deadline__reserve(struct hub *hub, size_t n);

/* Gives a new coroutine struct its slot in the hub's table of heap
 * positions, for as long as the struct lives. Returns 0, or -1 with
 * ENOMEM. */
int deadline__slot_new(struct hub *hub, uint32_t *slot);

/* Gives back the slot of a struct about to be freed (not on the heap). */
void deadline__slot_free(struct hub *hub, uint32_t slot);

/* co parks until deadline (>= 0): it is woken with ETIMEDOUT by
 * deadline__expire once the deadline has passed, unless removed first. */
void deadline__add(struct hub *hub, struct co *co, int64_t deadline);

/* Takes co off the heap if it is there (its wait ended otherwise). */
void deadline__remove(struct hub *hub, struct co *co);

/* Before the loop polls: points the hub's timer at the earliest deadline. */
void deadline__arm(struct hub *hub);

/* After the loop polled: wakes every coroutine whose deadline has passed,
 * earliest deadline first, equal deadlines in park order. */
void deadline__expire(struct hub *hub);

#endif
