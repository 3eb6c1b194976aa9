/*
 * coro.h - coroutines: the struct behind co_t and the wait protocol.
 *
 * Every wait in core/ is the same three steps: link the coroutine where a
 * waker will find it (a wait queue, an ev_io, an offload task), coro__park()
 * with the deadline, then undo whatever the wake did not. coro__wake() is the
 * only way back to ready, and it ignores a coroutine that is not waiting, so
 * a timer, a cancel and a real wake racing in one loop turn are harmless.
 *
 * Module: core/sched. hub, coro, deadline, wait and outcome are one module
 * in five files, the scheduler: a coroutine parks (coro) with a deadline
 * (deadline) or on several objects (wait), the hub wakes and resumes it,
 * and its end runs its links (outcome); they call one another.
 * scripts/include_cycles.sh treats them as one.
 */
#ifndef COSERVE_CORE_CORO_H
#define COSERVE_CORE_CORO_H

#include <ev.h>
#include <stddef.h>
#include <stdint.h>

#include "coserve.h"
#include "core/hub.h"
#include "core/list.h"
#include "core/stack.h"
#include "core/switch.h"

enum coro_state { CORO_READY, CORO_RUNNING, CORO_WAITING, CORO_DONE };

/* Writes what a coroutine is doing ("app hello: GET /hello") into buf, at
 * most len - 1 bytes and a NUL; returns the length. Runs in a signal
 * handler on the coroutine's thread while the coroutine is stopped
 * (watchdog.c): it may only read memory and copy bytes. */
typedef size_t (*coro_describe_fn)(void *arg, char *buf, size_t len);

/* coro__park() flags */
/* Neither cancellation nor a co_timeout scope ends this wait (reaping
 * children, draining a pool: waits that must see their end). */
#define CORO_PARK_NOCANCEL 1

/* A co_link() callback, run by the hub when the coroutine finished. */
struct coro_link {
    co_link_fn fn;
    void *arg;
    struct coro_link *next;
};

struct co {
    struct switch_ctx ctx;
    struct hub *hub;
    enum coro_state state;
    unsigned cancelled : 1;
    unsigned detached : 1;
    unsigned reaping : 1; /* its parent's end reaps it: the parent frees it */
    unsigned park_flags : 2;
    int wait_err; /* why the last wait ended: 0 or an errno */
    co_fn fn;
    void *arg;
    void *result;
    struct list run_link;   /* on hub->runq while ready */
    struct list wait_link;  /* on a wait queue while waiting */
    struct list all_link;   /* on hub->all while alive */
    struct list child_link; /* on parent->children until joined/detached */
    struct list children;
    struct co *parent;
    struct co *joiner; /* waiting in co_join() */
    void *wait_data;   /* per-wait payload (a channel's message) */
    int64_t deadline;  /* of the current wait */
    uint32_t dl_slot;  /* its index in hub->dl_where, for the struct's life */
    ev_io io;
    /* How it finished (co_fail, or ECANCELED), what runs then (co_link),
     * and co_wait_any's waiters for its end (wait.h nodes). */
    int exit_err;
    char exit_msg[CO_MSG_MAX];
    struct coro_link *links;
    struct list done_watchers;
    /* co_timeout / co_shield scopes, innermost first, and how many of them
     * are shields (cancellation is held back while one is). */
    struct co_timeout *scopes;
    unsigned shields;
    struct stack stack;
    void *asan_fake;
    uint64_t id;
    char name[32];
    /* Set by the layer that runs the coroutine (http: the request it
     * serves), for the watchdog's reports; NULL otherwise. */
    coro_describe_fn describe;
    void *describe_arg;
    /* Called once, then cleared, when this coroutine is about to give the
     * hub its turn (a park or a yield): the http layer sends responses it
     * held back to batch them (pipelining), so nothing waits behind a
     * handler that waits. It may itself wait. NULL: none. */
    void (*before_wait)(void *arg);
    void *before_wait_arg;
    struct co *next_free;
};

/* The running coroutine; aborts naming `call` outside one or off the hub. */
struct co *coro__self(const char *call);

/* Creates a coroutine of hub running fn(arg), ready to run, with parent as
 * its parent (NULL: none). Returns NULL with errno ENOMEM. */
struct co *coro__spawn(struct hub *hub, struct co *parent, co_fn fn, void *arg);

/* Suspends the running coroutine until coro__wake() or the deadline.
 * Returns 0 when woken with 0; -1 with errno: ETIMEDOUT at the deadline,
 * ECANCELED on cancel (unless CORO_PARK_NOCANCEL), or the waker's error. */
int coro__park(struct co *self, int64_t deadline, int flags);

/* Makes a waiting co ready with err (0 or an errno) as its wait's result,
 * unlinking it from its wait queue. Does nothing if co is not waiting. */
void coro__wake(struct co *co, int err);

/* Non-zero if a cancel should end co's waits now: it was cancelled and no
 * co_shield scope holds the cancel back. Every cancellation check in core
 * (and the hooks) goes through here. */
static inline int coro__cancel_pending(const struct co *co)
{
    return co->cancelled && !co->shields;
}

/* The deadline a wait of co with its own `deadline` really has: the
 * earliest of it and co's timeout scopes, up to the innermost shield
 * (a shield's deadline replaces the scopes outside it). */
int64_t coro__bound(const struct co *co, int64_t deadline);

/* Parks self on a wait queue (see coro__park). */
int coro__wait_on(struct co *self, struct list *queue, int64_t deadline);

/* Wakes the longest waiter of queue with err. Returns it, or NULL. */
struct co *coro__wake_first(struct list *queue, int err);

/* Frees a finished coroutine's struct (it is done and nobody will join). */
void coro__free(struct co *co);

/* Called by the hub when co finished: releases its stack, frees it if it
 * was detached. */
void coro__finished(struct co *co);

/* Called periodically (once a second): gives back part of the idle
 * coroutine structs and pooled stacks beyond a small reserve, so a burst
 * does not pin its peak. Returns the bytes of structs freed. */
size_t coro__trim(struct hub *hub);

#endif
