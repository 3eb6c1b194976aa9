/*
 * The hub's deadline heap (see deadline.h): a binary min-heap of parked
 * coroutines keyed by (deadline, sequence number), and one ev_timer set
 * for its top before each poll.
 */
#include "core/deadline.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "core/coro.h"
#include "core/log.h"

/* The heap keeps each entry's key (deadline, park order) beside its
 * coroutine, and has 4 children a node: a sift compares keys in one
 * contiguous array. With 1,000 sleepers, a binary heap of bare pointers
 * read two coroutines' structs per level (10 levels) for its compares,
 * each a likely cache miss: deadline__remove stood out in the profile of
 * /sleep. Where an entry moved is kept in a dense table (hub->dl_where,
 * 4 bytes a coroutine) rather than in its coroutine: a sift wrote into
 * the structs of the sleepers it moved, cold ones, and deadline__remove
 * still took 3% of the worker's CPU at 1,000 sleepers; with the table,
 * 1.8%, mostly the read of the woken coroutine's slot, a line its wake
 * reads anyway (perf, 1,000 connections on /sleep?ms=1000). */
#define DL_ARITY 4

/* Earlier deadline first; the same deadline: parked first, woken first. */
static int deadline_before(const struct dl_entry *a, const struct dl_entry *b)
{
    return a->deadline < b->deadline ||
           (a->deadline == b->deadline && a->seq < b->seq);
}

/* Heap slots are 0-based, dl_where holds slot + 1 (0: not on the heap). */
static void deadline_place(struct hub *hub, size_t i, struct dl_entry e)
{
    hub->dl_heap[i] = e;
    hub->dl_where[e.slot] = (uint32_t)i + 1;
}

static void deadline_up(struct hub *hub, size_t i)
{
    struct dl_entry e = hub->dl_heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / DL_ARITY;
        if (!deadline_before(&e, &hub->dl_heap[parent]))
            break;
        deadline_place(hub, i, hub->dl_heap[parent]);
        i = parent;
    }
    deadline_place(hub, i, e);
}

static void deadline_down(struct hub *hub, size_t i)
{
    struct dl_entry e = hub->dl_heap[i];
    for (;;) {
        size_t first = DL_ARITY * i + 1;
        if (first >= hub->dl_len)
            break;
        size_t last =
            first + DL_ARITY < hub->dl_len ? first + DL_ARITY : hub->dl_len;
        size_t c = first;
        for (size_t k = first + 1; k < last; k++)
            if (deadline_before(&hub->dl_heap[k], &hub->dl_heap[c]))
                c = k;
        if (!deadline_before(&hub->dl_heap[c], &e))
            break;
        deadline_place(hub, i, hub->dl_heap[c]);
        i = c;
    }
    deadline_place(hub, i, e);
}

static void deadline_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop, (void)revents;
    /* nothing to do here: hub__run calls deadline__expire after the poll */
    struct hub *hub =
        (struct hub *)((char *)w - offsetof(struct hub, dl_timer));
    hub->dl_armed = -1;
}

void deadline__hub_init(struct hub *hub)
{
    hub->dl_heap = NULL;
    hub->dl_len = hub->dl_cap = 0;
    hub->dl_where = hub->dl_spare = NULL;
    hub->dl_slots = hub->dl_slots_cap = hub->dl_nspare = 0;
    hub->dl_seq = 0;
    hub->dl_armed = -1;
    ev_init(&hub->dl_timer, deadline_timer_cb);
}

void deadline__hub_destroy(struct hub *hub)
{
    ev_timer_stop(hub->loop, &hub->dl_timer);
    free(hub->dl_heap);
    hub->dl_heap = NULL;
    hub->dl_cap = hub->dl_len = 0;
    free(hub->dl_where);
    free(hub->dl_spare);
    hub->dl_where = hub->dl_spare = NULL;
    hub->dl_slots = hub->dl_slots_cap = hub->dl_nspare = 0;
}

int deadline__slot_new(struct hub *hub, uint32_t *slot)
{
    if (hub->dl_nspare) {
        *slot = hub->dl_spare[--hub->dl_nspare];
        return 0;
    }
    if (hub->dl_slots == hub->dl_slots_cap) {
        /* both grow together: there are never more spares than slots */
        size_t cap = hub->dl_slots_cap ? hub->dl_slots_cap * 2 : 64;
        uint32_t *where = realloc(hub->dl_where, cap * sizeof *where);
        if (!where)
            goto nomem;
        hub->dl_where = where;
        uint32_t *spare = realloc(hub->dl_spare, cap * sizeof *spare);
        if (!spare)
            goto nomem;
        hub->dl_spare = spare;
        hub->dl_slots_cap = cap;
    }
    hub->dl_where[hub->dl_slots] = 0;
    *slot = (uint32_t)hub->dl_slots++;
    return 0;
nomem:
    errno = ENOMEM;
    return -1;
}

void deadline__slot_free(struct hub *hub, uint32_t slot)
{
    hub->dl_spare[hub->dl_nspare++] = slot;
}

int deadline__reserve(struct hub *hub, size_t n)
{
    if (n <= hub->dl_cap)
        return 0;
    size_t cap = hub->dl_cap ? hub->dl_cap : 64;
    while (cap < n)
        cap *= 2;
    struct dl_entry *heap = realloc(hub->dl_heap, cap * sizeof *heap);
    if (!heap) {
        errno = ENOMEM;
        return -1;
    }
    hub->dl_heap = heap;
    hub->dl_cap = cap;
    return 0;
}

void deadline__add(struct hub *hub, struct co *co, int64_t deadline)
{
    if (hub->dl_len == hub->dl_cap && deadline__reserve(hub, hub->dl_len + 1))
        log__fatal("deadline heap: no memory for %zu parked coroutines",
                   hub->dl_len + 1);
    co->deadline = deadline;
    hub->dl_heap[hub->dl_len++] = (struct dl_entry){.deadline = deadline,
                                                    .seq = hub->dl_seq++,
                                                    .co = co,
                                                    .slot = co->dl_slot};
    deadline_up(hub, hub->dl_len - 1);
}

void deadline__remove(struct hub *hub, struct co *co)
{
    uint32_t *where = &hub->dl_where[co->dl_slot];
    if (!*where)
        return;
    size_t i = *where - 1;
    *where = 0;
    struct dl_entry last = hub->dl_heap[--hub->dl_len];
    if (i == hub->dl_len)
        return;
    hub->dl_heap[i] = last;
    if (i > 0 && deadline_before(&last, &hub->dl_heap[(i - 1) / DL_ARITY]))
        deadline_up(hub, i);
    else
        deadline_down(hub, i);
}

void deadline__arm(struct hub *hub)
{
    if (!hub->dl_len) {
        if (hub->dl_armed >= 0) {
            ev_timer_stop(hub->loop, &hub->dl_timer);
            hub->dl_armed = -1;
        }
        return;
    }
    int64_t d = hub->dl_heap[0].deadline;
    if (d == hub->dl_armed)
        return;
    /* Measured in ns against the clock co_now() reads, so the timer does
     * not fire a whole millisecond early; libev's cached loop time may
     * still make it a little early, and then the next turn re-arms it. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t left_ns =
        d * 1000000 - ((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec);
    ev_timer_stop(hub->loop, &hub->dl_timer);
    ev_timer_set(&hub->dl_timer, left_ns > 0 ? (double)left_ns / 1e9 : 0., 0.);
    ev_timer_start(hub->loop, &hub->dl_timer);
    hub->dl_armed = d;
}

void deadline__expire(struct hub *hub)
{
    if (!hub->dl_len)
        return;
    int64_t now = co_now();
    while (hub->dl_len && hub->dl_heap[0].deadline <= now) {
        struct co *co = hub->dl_heap[0].co;
        deadline__remove(hub, co);
        coro__wake(co, ETIMEDOUT);
    }
}
