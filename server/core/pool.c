/*
 * co_pool: spawn with a cap on how many run at once (gevent's Pool).
 *
 * A semaphore holds the slots. Members run detached and the pool keeps its
 * own list of them, so it can cancel them when freed; the last one to finish
 * wakes whoever waits in co_pool_join().
 */
#include <errno.h>
#include <stdlib.h>

#include "core/coro.h"
#include "core/log.h"

struct co_pool {
    co_sem_t *slots;
    size_t running;
    struct list idle_waiters; /* in co_pool_join / co_pool_free */
    struct list members;      /* pool_member.link */
};

struct pool_member {
    co_pool_t *pool;
    co_fn fn;
    void *arg;
    struct co *co;
    struct list link;
};

co_pool_t *co_pool_new(size_t limit)
{
    if (limit == 0 || limit > 0x7fffffff) {
        errno = EINVAL;
        return NULL;
    }
    co_pool_t *pool = malloc(sizeof *pool);
    if (!pool)
        return NULL;
    pool->slots = co_sem_new((unsigned)limit);
    if (!pool->slots) {
        free(pool);
        errno = ENOMEM;
        return NULL;
    }
    pool->running = 0;
    list_init(&pool->idle_waiters);
    list_init(&pool->members);
    return pool;
}

static void *pool_run(void *p)
{
    struct pool_member *m = p;
    co_pool_t *pool = m->pool;
    m->fn(m->arg);
    list_remove(&m->link);
    free(m);
    co_sem_release(pool->slots);
    if (--pool->running == 0)
        while (coro__wake_first(&pool->idle_waiters, 0))
            ;
    return NULL;
}

int co_pool_spawn(co_pool_t *pool, co_fn fn, void *arg, int64_t deadline)
{
    struct co *self = coro__self("co_pool_spawn");
    (void)self;
    if (co_sem_acquire(pool->slots, deadline) < 0)
        return -1;
    struct pool_member *m = malloc(sizeof *m);
    struct co *co = m ? co_spawn(pool_run, m) : NULL;
    if (!co) {
        free(m);
        co_sem_release(pool->slots);
        errno = ENOMEM;
        return -1;
    }
    *m = (struct pool_member){.pool = pool, .fn = fn, .arg = arg, .co = co};
    list_push_back(&pool->members, &m->link);
    co_detach(co);
    pool->running++;
    return 0;
}

int co_pool_join(co_pool_t *pool, int64_t deadline)
{
    struct co *self = coro__self("co_pool_join");
    if (coro__cancel_pending(self)) {
        errno = ECANCELED;
        return -1;
    }
    if (pool->running == 0)
        return 0;
    return coro__wait_on(self, &pool->idle_waiters, deadline);
}

void co_pool_free(co_pool_t *pool)
{
    if (!pool)
        return;
    struct co *self = coro__self("co_pool_free");
    for (struct list *n = pool->members.next; n != &pool->members; n = n->next)
        co_cancel(list_entry(n, struct pool_member, link)->co);
    /* Like reaping children: wait even if we are cancelled ourselves. */
    while (pool->running) {
        list_push_back(&pool->idle_waiters, &self->wait_link);
        coro__park(self, -1, CORO_PARK_NOCANCEL);
    }
    co_sem_free(pool->slots);
    free(pool);
}
