/*
 * co_sem: a counting semaphore with first-come, first-served hand-off, and
 * gevent's BoundedSemaphore (a release above the initial count fails).
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#include "core/coro.h"
#include "core/log.h"
#include "core/wait.h"

struct co_sem {
    unsigned value;
    unsigned bound; /* the most value may reach: UINT_MAX unless bounded */
    struct list waiters;
    struct list watchers; /* co_wait_any nodes (wait.h) */
};

static co_sem_t *sem_new(unsigned value, unsigned bound)
{
    co_sem_t *sem = malloc(sizeof *sem);
    if (!sem)
        return NULL;
    sem->value = value;
    sem->bound = bound;
    list_init(&sem->waiters);
    list_init(&sem->watchers);
    return sem;
}

co_sem_t *co_sem_new(unsigned value)
{
    return sem_new(value, UINT_MAX);
}

co_sem_t *co_sem_new_bounded(unsigned value)
{
    return sem_new(value, value);
}

void co_sem_free(co_sem_t *sem)
{
    if (!sem)
        return;
    if (!list_empty(&sem->waiters) || !list_empty(&sem->watchers))
        log__fatal("co_sem_free: coroutines still wait on the semaphore");
    free(sem);
}

int co_sem_acquire(co_sem_t *sem, int64_t deadline)
{
    struct co *self = coro__self("co_sem_acquire");
    if (coro__cancel_pending(self)) {
        errno = ECANCELED;
        return -1;
    }
    /* Waiters first: a newcomer must not overtake them. */
    if (sem->value > 0 && list_empty(&sem->waiters)) {
        sem->value--;
        return 0;
    }
    /* A release hands its permit straight to us (the value stays 0), so a
     * successful wake means we hold one. */
    return coro__wait_on(self, &sem->waiters, deadline);
}

int co_sem_release(co_sem_t *sem)
{
    hub__require("co_sem_release");
    if (coro__wake_first(&sem->waiters, 0))
        return 0;
    /* Waiters mean value 0, so a hand-off never breaks the bound. */
    if (sem->value >= sem->bound) {
        errno = EOVERFLOW;
        return -1;
    }
    sem->value++;
    wait__notify(&sem->watchers);
    return 0;
}

int sem__ready(co_sem_t *sem)
{
    return sem->value > 0 && list_empty(&sem->waiters) ? CO_READABLE : 0;
}

struct list *sem__watchers(co_sem_t *sem)
{
    return &sem->watchers;
}
