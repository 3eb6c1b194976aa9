/*
 * wait.h - co_wait_any's watchers: how a coroutine waits on several
 * objects at once.
 *
 * A coroutine has one wait_link, so it can sit on one wait queue only.
 * co_wait_any instead puts a wait_node per object on that object's
 * `watchers` list (separate from its queue of coroutines waiting to
 * receive, acquire or join). An object calls wait__notify() whenever it
 * may have become ready; the node's coroutine wakes and checks again, as
 * poll() does. Nodes live on the waiting coroutine's stack.
 *
 * Module: core/sched. hub, coro, deadline, wait and outcome are one module
 * in five files, the scheduler: a coroutine parks (coro) with a deadline
 * (deadline) or on several objects (wait), the hub wakes and resumes it,
 * and its end runs its links (outcome); they call one another.
 * scripts/include_cycles.sh treats them as one.
 */
#ifndef COSERVE_CORE_WAIT_H
#define COSERVE_CORE_WAIT_H

#include <ev.h>

#include "coserve.h"
#include "core/list.h"

struct co;

struct wait_node {
    struct list link; /* on the object's watchers list */
    struct co *co;    /* the coroutine waiting */
    int *first;       /* if not NULL: the index of the first node to fire */
    int index;        /* the entry this node watches */
    int fired;        /* notified (fds: the libev events) */
    ev_io io;         /* fds only */
};

/* co_wait_any, for a caller whose fds all just answered EAGAIN: then
 * their poll() pass before parking is skipped (fds_not_ready non-zero). */
int wait__any(struct co_waitable *w, size_t n, int64_t deadline,
              int fds_not_ready);

/* Wakes the coroutine of every node on watchers (they check again). */
void wait__notify(struct list *watchers);

/* The objects' side, each in its own file: whether a co_wait_any entry
 * would be ready (CO_READABLE / CO_WRITABLE, 0: not ready), and the list
 * its watchers go on. */
int event__ready(co_event_t *ev);
struct list *event__watchers(co_event_t *ev);
int chan__ready(co_chan_t *ch);
struct list *chan__watchers(co_chan_t *ch);
int sem__ready(co_sem_t *sem);
struct list *sem__watchers(co_sem_t *sem);

#endif
