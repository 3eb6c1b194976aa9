/* co_sem: a counting semaphore with first-come, first-served hand-off. */
#include <errno.h>
#include <stdlib.h>

#include "core/coro.h"
#include "core/log.h"
#include "core/wait.h"

struct co_sem {
    unsigned value;
    struct list waiters;
    struct list watchers; /* co_wait_any nodes (wait.h) */
};

co_sem_t *co_sem_new(unsigned value)
{
    co_sem_t *sem = malloc(sizeof *sem);
    if (!sem)
        return NULL;
    sem->value = value;
    list_init(&sem->waiters);
    list_init(&sem->watchers);
    return sem;
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

void co_sem_release(co_sem_t *sem)
{
    hub__require("co_sem_release");
    if (!coro__wake_first(&sem->waiters, 0)) {
        sem->value++;
        wait__notify(&sem->watchers);
    }
}

int sem__ready(co_sem_t *sem)
{
    return sem->value > 0 && list_empty(&sem->waiters) ? CO_READABLE : 0;
}

struct list *sem__watchers(co_sem_t *sem)
{
    return &sem->watchers;
}
