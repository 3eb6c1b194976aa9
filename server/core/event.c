/* co_event: a flag that coroutines wait for. */
#include <errno.h>
#include <stdlib.h>

#include "core/coro.h"
#include "core/log.h"
#include "core/wait.h"

struct co_event {
    int set;
    struct list waiters;
    struct list watchers; /* co_wait_any nodes (wait.h) */
};

co_event_t *co_event_new(void)
{
    co_event_t *ev = malloc(sizeof *ev);
    if (!ev)
        return NULL;
    ev->set = 0;
    list_init(&ev->waiters);
    list_init(&ev->watchers);
    return ev;
}

void co_event_free(co_event_t *ev)
{
    if (!ev)
        return;
    if (!list_empty(&ev->waiters) || !list_empty(&ev->watchers))
        log__fatal("co_event_free: coroutines still wait on the event");
    free(ev);
}

void co_event_set(co_event_t *ev)
{
    ev->set = 1;
    while (coro__wake_first(&ev->waiters, 0))
        ;
    wait__notify(&ev->watchers);
}

void co_event_clear(co_event_t *ev)
{
    ev->set = 0;
}

int co_event_is_set(const co_event_t *ev)
{
    return ev->set;
}

int co_event_wait(co_event_t *ev, int64_t deadline)
{
    struct co *self = coro__self("co_event_wait");
    if (coro__cancel_pending(self)) {
        errno = ECANCELED;
        return -1;
    }
    if (ev->set)
        return 0;
    return coro__wait_on(self, &ev->waiters, deadline);
}

int event__ready(co_event_t *ev)
{
    return ev->set ? CO_READABLE : 0;
}

struct list *event__watchers(co_event_t *ev)
{
    return &ev->watchers;
}
