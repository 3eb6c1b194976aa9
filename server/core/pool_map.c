/*
 * co_pool_map, co_pool_imap_unordered: gevent's Pool.map and
 * Pool.imap_unordered, tasks over an array with results kept per item.
 *
 * An iterator owns one record per item and a feeder coroutine that starts
 * the items in order with co_pool_spawn(), so they share the pool's slots
 * (first come, first served) with everything else spawned there. Each item
 * runs as an ordinary pool member, writes its outcome into its record and
 * puts the record on a queue in the order items finish; next() reads that
 * queue, and map() waits for all n and then reads the records in index
 * order. Every item ends up on the queue, started or not (a feeder that
 * stops early fails the rest), so a reader always reaches the end.
 *
 * Items and the feeder point at the iterator, so it is freed only after
 * all of them have ended: co_pool_iter_free() stops them and waits.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/coro.h"
#include "core/log.h"

enum task_state { TASK_PENDING, TASK_RUNNING, TASK_DONE };

struct task_rec {
    co_pool_iter_t *it;
    size_t index;
    enum task_state state;
    int err;
    void *result;
    struct co *co; /* while TASK_RUNNING, for a stop to cancel */
};

struct co_pool_iter {
    co_pool_t *pool;
    co_task_fn fn;
    void *const *args;
    size_t n;
    size_t live;    /* items spawned and not yet ended */
    int feeding;    /* the feeder has not returned */
    int stopping;   /* co_pool_iter_free or a failed map: start no more */
    int stop_err;   /* what items stopped before they started report */
    size_t handed;  /* items co_pool_iter_next returned */
    size_t readers; /* coroutines in co_pool_iter_next */
    struct co *feeder;
    co_queue_t *done;         /* struct task_rec *, in the order items finish */
    struct list idle_waiters; /* waiting for live == 0 && !feeding */
    struct task_rec recs[];
};

static void iter_maybe_idle(co_pool_iter_t *it)
{
    if (!it->live && !it->feeding)
        while (coro__wake_first(&it->idle_waiters, 0))
            ;
}

/* Records an item's outcome and queues it for readers. The queue holds n
 * records and each is put once: the put cannot fail for room or memory. */
static void iter_finish(co_pool_iter_t *it, struct task_rec *rec, int err)
{
    rec->state = TASK_DONE;
    rec->err = err;
    if (err)
        rec->result = NULL;
    rec->co = NULL;
    co_queue_put_nowait(it->done, rec);
}

/* One item, as a member of the pool. */
static void *task_run(void *p)
{
    struct task_rec *rec = p;
    co_pool_iter_t *it = rec->it;
    int err = 0;
    if (it->stopping || co_cancelled()) { /* fn never runs */
        err = it->stopping ? it->stop_err : ECANCELED;
    } else {
        rec->state = TASK_RUNNING;
        rec->co = co_current();
        void *result = NULL;
        errno = 0;
        if (it->fn(it->args[rec->index], &result) < 0)
            err = errno ? errno : EIO;
        rec->result = result;
    }
    iter_finish(it, rec, err);
    it->live--;
    iter_maybe_idle(it);
    return NULL;
}

/* Starts the items in order, each as soon as the pool has a slot. */
static void *iter_feed(void *p)
{
    co_pool_iter_t *it = p;
    size_t i = 0;
    int err = 0;
    for (; i < it->n && !it->stopping; i++) {
        it->live++; /* task_run counts it down */
        if (co_pool_spawn(it->pool, task_run, &it->recs[i], -1) == 0)
            continue;
        it->live--;
        if (errno != ENOMEM) { /* cancelled: the rest fail alike */
            err = it->stopping ? it->stop_err : errno;
            break;
        }
        iter_finish(it, &it->recs[i], ENOMEM); /* this item alone */
    }
    if (!err) /* stopped between two spawns */
        err = it->stop_err;
    for (; i < it->n; i++)
        iter_finish(it, &it->recs[i], err);
    it->feeding = 0;
    iter_maybe_idle(it);
    return NULL;
}

co_pool_iter_t *co_pool_imap_unordered(co_pool_t *pool, co_task_fn fn,
                                       void *const *args, size_t n)
{
    struct co *self = coro__self("co_pool_imap_unordered");
    if (coro__cancel_pending(self)) {
        errno = ECANCELED;
        return NULL;
    }
    if (!fn || (n && !args)) {
        errno = EINVAL;
        return NULL;
    }
    if (n > (SIZE_MAX - sizeof(co_pool_iter_t)) / sizeof(struct task_rec)) {
        errno = ENOMEM;
        return NULL;
    }
    co_pool_iter_t *it = malloc(sizeof *it + n * sizeof it->recs[0]);
    if (!it)
        return NULL;
    /* bounded by n: the ring is allocated here, puts never allocate */
    if (!(it->done = co_queue_new(n ? n : 1))) {
        free(it);
        return NULL;
    }
    it->pool = pool;
    it->fn = fn;
    it->args = args;
    it->n = n;
    it->live = 0;
    it->feeding = 1;
    it->stopping = 0;
    it->stop_err = ECANCELED;
    it->handed = 0;
    it->readers = 0;
    list_init(&it->idle_waiters);
    for (size_t i = 0; i < n; i++)
        it->recs[i] = (struct task_rec){.it = it, .index = i};
    /* detached: the iterator, not the caller's end, decides when it stops */
    if (!(it->feeder = co_spawn(iter_feed, it))) {
        co_queue_free(it->done);
        free(it);
        errno = ENOMEM;
        return NULL;
    }
    co_detach(it->feeder);
    return it;
}

int co_pool_iter_next(co_pool_iter_t *it, size_t *index, void **result,
                      int *err, int64_t deadline)
{
    struct co *self = coro__self("co_pool_iter_next");
    if (coro__cancel_pending(self)) {
        errno = ECANCELED;
        return -1;
    }
    if (it->handed == it->n) {
        errno = EPIPE;
        return -1;
    }
    struct task_rec *rec = NULL;
    it->readers++;
    int rc = co_queue_get(it->done, (void **)&rec, deadline);
    it->readers--;
    if (rc < 0)
        return -1; /* EPIPE: another reader took the last one */
    if (++it->handed == it->n)
        co_queue_close(it->done); /* other readers: the end */
    if (index)
        *index = rec->index;
    if (result)
        *result = rec->result;
    if (err)
        *err = rec->err;
    return 0;
}

/* Starts no more items, cancels the running ones and waits until every
 * item and the feeder have ended. err is what items that never started
 * report. The wait ignores the caller's own cancellation: returning early
 * would leave items writing into freed records. */
static void iter_stop(co_pool_iter_t *it, struct co *self, int err)
{
    if (!it->stopping) {
        it->stopping = 1;
        it->stop_err = err;
    }
    if (it->feeding)
        co_cancel(it->feeder);
    for (size_t i = 0; i < it->n; i++)
        if (it->recs[i].state == TASK_RUNNING)
            co_cancel(it->recs[i].co);
    while (it->live || it->feeding) {
        list_push_back(&it->idle_waiters, &self->wait_link);
        coro__park(self, -1, CORO_PARK_NOCANCEL);
    }
}

void co_pool_iter_free(co_pool_iter_t *it)
{
    if (!it)
        return;
    struct co *self = coro__self("co_pool_iter_free");
    if (it->readers)
        log__fatal("co_pool_iter_free: coroutines are still in "
                   "co_pool_iter_next on the iterator");
    iter_stop(it, self, ECANCELED);
    co_queue_free(it->done);
    free(it);
}

int co_pool_map(co_pool_t *pool, co_task_fn fn, void *const *args, size_t n,
                void **results, int *errs, int64_t deadline)
{
    struct co *self = coro__self("co_pool_map");
    if (n == 0 && !coro__cancel_pending(self))
        return 0;
    co_pool_iter_t *it = co_pool_imap_unordered(pool, fn, args, n);
    if (!it)
        return -1;
    int err = 0;
    for (size_t got = 0; got < n; got++)
        if (co_pool_iter_next(it, NULL, NULL, NULL, deadline) < 0) {
            err = errno;
            break;
        }
    /* after a failure: cancel what still runs; else nothing is left */
    iter_stop(it, self, err ? err : ECANCELED);
    size_t failed = 0;
    for (size_t i = 0; i < n; i++) {
        struct task_rec *rec = &it->recs[i];
        if (results)
            results[i] = rec->result;
        if (errs)
            errs[i] = rec->err;
        failed += rec->err != 0;
    }
    co_pool_iter_free(it);
    if (err) {
        errno = err;
        return -1;
    }
    return failed > INT_MAX ? INT_MAX : (int)failed;
}
