/* The per-thread scheduler (see hub.h). */
#include "core/hub.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/coro.h"
#include "core/deadline.h"
#include "core/fiber.h"
#include "core/log.h"

__thread struct hub *hub__self;
__thread struct co *hook__co;
int hook__enabled;

/* How many coroutines run between two polls of the loop when some are
 * always ready: bounds how long a yield storm can starve I/O. */
#define HUB_BATCH 256

struct hub *hub__require(const char *call)
{
    struct hub *hub = hub__self;
    if (!hub)
        log__fatal("%s called from a thread that runs no hub: offload threads "
                   "and plain threads must not use the cooperative API",
                   call);
    return hub;
}

struct hub *hub__create(void)
{
    if (hub__self) {
        errno = EBUSY;
        return NULL;
    }
    struct hub *hub = calloc(1, sizeof *hub);
    if (!hub)
        return NULL;
    /* EVFLAG_NOSIGMASK: we never use ev_signal, so libev need not touch the
     * signal mask. The default loop is taken by nobody; each hub owns one. */
    hub->loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOSIGMASK);
    if (!hub->loop)
        hub->loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
    if (!hub->loop) {
        if (hub->loop)
            ev_loop_destroy(hub->loop);
        free(hub);
        errno = ENOMEM;
        return NULL;
    }
    list_init(&hub->runq);
    list_init(&hub->all);
    stack__pool_init(&hub->stacks);
    deadline__hub_init(hub);
    hub__self = hub;
    return hub;
}

void hub__destroy(struct hub *hub)
{
    if (hub->live)
        log__fatal("hub destroyed with %zu coroutines alive", hub->live);
    deadline__hub_destroy(hub);
    while (hub->free_cos) {
        struct co *co = hub->free_cos;
        hub->free_cos = co->next_free;
        free(co);
    }
    stack__pool_destroy(&hub->stacks);
    ev_loop_destroy(hub->loop);
    hub__self = NULL;
    free(hub);
}

void hub__resume(struct hub *hub, struct co *co)
{
    co->state = CORO_RUNNING;
    hub->current = co;
    hook__co = hook__enabled ? co : NULL;
    /* The heartbeat moves before the stack does (coro_switch_out does the
     * same on the way back), so a watchdog signal landing mid-switch sees
     * a new beat and takes no backtrace of a half-switched stack. */
    watchdog__beat(&hub->watchdog, 2);
    fiber_start(&hub->asan_fake, co->stack.lo, co->stack.size);
    switch__jump(&hub->ctx, &co->ctx);
    fiber_finish(hub->asan_fake, NULL, NULL);
    hub->current = NULL;
    hook__co = NULL;
    if (co->state == CORO_DONE)
        coro__finished(co);
}

static void hub_run_ready(struct hub *hub)
{
    for (int budget = HUB_BATCH; budget > 0; budget--) {
        struct list *n = list_pop_front(&hub->runq);
        if (!n)
            return;
        hub__resume(hub, list_entry(n, struct co, run_link));
    }
}

int64_t hub__now(struct hub *hub)
{
    unsigned turn = ev_iteration(hub->loop);
    if (turn != hub->turn_polled || !hub->turn_now) {
        hub->turn_polled = turn;
        hub->turn_now = co_now();
    }
    return hub->turn_now;
}

void hub__run(struct hub *hub, int (*done)(struct hub *, void *), void *arg)
{
    for (;;) {
        hub_run_ready(hub);
        if (done(hub, arg))
            return;
        int idle = list_empty(&hub->runq);
        if (idle && hub->on_idle && hub->on_idle(hub))
            continue;
        deadline__arm(hub);
        int active = ev_run(hub->loop, idle ? EVRUN_ONCE : EVRUN_NOWAIT);
        deadline__expire(hub);
        /* a deadline counts even when its timer fired a little early */
        if (idle && !active && !hub->dl_len && list_empty(&hub->runq) &&
            !done(hub, arg))
            log__fatal("deadlock: %zu coroutines wait with no deadline and "
                       "nothing left that could wake them",
                       hub->live);
    }
}
