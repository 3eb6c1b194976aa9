/*
 * co_queue: gevent's Queue and JoinableQueue, a FIFO of pointers.
 *
 * Items sit in a ring of pointers: allocated whole for a bounded queue,
 * grown by doubling (and halved when mostly empty) for an unbounded one.
 * As in chan.c, a wake completes the woken coroutine's operation: a put
 * hands its item straight to the longest-waiting getter, and a get that
 * makes room moves the longest-waiting putter's item into the ring. So
 * nobody can overtake a waiter between its wake and its turn to run, and a
 * woken coroutine never touches the queue again (it may be freed).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/coro.h"
#include "core/log.h"

/* The smallest ring of an unbounded queue, and the size it never shrinks
 * below. */
#define QUEUE_MIN_CAP 16

struct co_queue {
    size_t maxsize;          /* 0: unbounded */
    size_t cap, head, count; /* ring of cap slots, count of them used */
    void **ring;
    size_t unfinished; /* items put and not yet marked done */
    int closed;
    struct list getters; /* waiting, wait_data = where the item goes */
    struct list putters; /* waiting, wait_data = their item */
    struct list joiners; /* in co_queue_join() */
};

co_queue_t *co_queue_new(size_t maxsize)
{
    if (maxsize > SIZE_MAX / sizeof(void *)) {
        errno = ENOMEM;
        return NULL;
    }
    co_queue_t *q = malloc(sizeof *q);
    if (!q)
        return NULL;
    q->ring = NULL;
    q->cap = 0;
    if (maxsize) { /* bounded: never grows, so a put never fails for memory */
        if (!(q->ring = malloc(maxsize * sizeof *q->ring))) {
            free(q);
            return NULL;
        }
        q->cap = maxsize;
    }
    q->maxsize = maxsize;
    q->head = q->count = 0;
    q->unfinished = 0;
    q->closed = 0;
    list_init(&q->getters);
    list_init(&q->putters);
    list_init(&q->joiners);
    return q;
}

void co_queue_free(co_queue_t *q)
{
    if (!q)
        return;
    if (!list_empty(&q->getters) || !list_empty(&q->putters) ||
        !list_empty(&q->joiners))
        log__fatal("co_queue_free: coroutines still wait on the queue");
    free(q->ring);
    free(q);
}

/* Copies the ring into one of new_cap slots, oldest first. */
static int queue_resize(co_queue_t *q, size_t new_cap)
{
    if (new_cap > SIZE_MAX / sizeof(void *)) {
        errno = ENOMEM;
        return -1;
    }
    void **ring = malloc(new_cap * sizeof *ring);
    if (!ring)
        return -1;
    size_t first = q->cap - q->head; /* slots from head to the ring's end */
    if (first > q->count)
        first = q->count;
    if (q->count) {
        memcpy(ring, q->ring + q->head, first * sizeof *ring);
        memcpy(ring + first, q->ring, (q->count - first) * sizeof *ring);
    }
    free(q->ring);
    q->ring = ring;
    q->cap = new_cap;
    q->head = 0;
    return 0;
}

/* Appends item to the ring (room is the caller's check for a bounded
 * queue). Returns 0, or -1 with ENOMEM. */
static int queue_push(co_queue_t *q, void *item)
{
    if (q->count == q->cap &&
        queue_resize(q, q->cap ? q->cap * 2 : QUEUE_MIN_CAP) < 0)
        return -1;
    size_t tail = q->head + q->count;
    q->ring[tail < q->cap ? tail : tail - q->cap] = item;
    q->count++;
    q->unfinished++;
    return 0;
}

static void *queue_pop(co_queue_t *q)
{
    void *item = q->ring[q->head];
    q->head = q->head + 1 == q->cap ? 0 : q->head + 1;
    q->count--;
    /* an unbounded queue gives back a burst's memory; a failed shrink
     * just keeps the bigger ring */
    if (!q->maxsize && q->cap > QUEUE_MIN_CAP && q->count < q->cap / 4)
        queue_resize(q, q->cap / 2);
    return item;
}

/* The put that needs no wait, shared by put and put_nowait: hands item to
 * the longest getter or rings it. Returns 0, 1 when q is full, or -1 with
 * errno (EPIPE, ENOMEM). */
static int queue_try_put(co_queue_t *q, void *item)
{
    if (q->closed) {
        errno = EPIPE;
        return -1;
    }
    if (!list_empty(&q->getters)) { /* they wait: the ring is empty */
        struct co *rx = list_entry(q->getters.next, struct co, wait_link);
        *(void **)rx->wait_data = item;
        q->unfinished++;
        coro__wake(rx, 0);
        return 0;
    }
    if (q->maxsize && q->count == q->maxsize)
        return 1;
    return queue_push(q, item);
}

/* The get that needs no wait: takes the oldest item and lets the longest
 * putter's item in behind it. Returns 0, 1 when q is empty and open, or -1
 * with EPIPE (closed and empty). */
static int queue_try_get(co_queue_t *q, void **item)
{
    if (!q->count) {
        if (q->closed) {
            errno = EPIPE;
            return -1;
        }
        return 1;
    }
    void *got = queue_pop(q);
    if (item)
        *item = got;
    if (!list_empty(&q->putters)) { /* room now, and a bounded ring: no
                                       allocation, the push succeeds */
        struct co *tx = list_entry(q->putters.next, struct co, wait_link);
        queue_push(q, tx->wait_data);
        coro__wake(tx, 0);
    }
    return 0;
}

int co_queue_put(co_queue_t *q, void *item, int64_t deadline)
{
    struct co *self = coro__self("co_queue_put");
    if (coro__cancel_pending(self)) {
        errno = ECANCELED;
        return -1;
    }
    int rc = queue_try_put(q, item);
    if (rc <= 0)
        return rc;
    /* full: a getter that makes room moves our item in, then wakes us */
    self->wait_data = item;
    return coro__wait_on(self, &q->putters, deadline);
}

int co_queue_get(co_queue_t *q, void **item, int64_t deadline)
{
    struct co *self = coro__self("co_queue_get");
    if (coro__cancel_pending(self)) {
        errno = ECANCELED;
        return -1;
    }
    int rc = queue_try_get(q, item);
    if (rc <= 0)
        return rc;
    /* empty: a putter hands its item to this stack slot, then wakes us */
    void *got = NULL;
    self->wait_data = &got;
    if (coro__wait_on(self, &q->getters, deadline) < 0)
        return -1;
    if (item)
        *item = got;
    return 0;
}

int co_queue_put_nowait(co_queue_t *q, void *item)
{
    hub__require("co_queue_put_nowait");
    int rc = queue_try_put(q, item);
    if (rc > 0) {
        errno = EAGAIN;
        return -1;
    }
    return rc;
}

int co_queue_get_nowait(co_queue_t *q, void **item)
{
    hub__require("co_queue_get_nowait");
    int rc = queue_try_get(q, item);
    if (rc > 0) {
        errno = EAGAIN;
        return -1;
    }
    return rc;
}

size_t co_queue_qsize(const co_queue_t *q)
{
    return q->count;
}

void co_queue_close(co_queue_t *q)
{
    hub__require("co_queue_close");
    if (q->closed)
        return;
    q->closed = 1;
    while (coro__wake_first(&q->putters, EPIPE))
        ;
    while (coro__wake_first(&q->getters, EPIPE))
        ;
}

int co_queue_task_done(co_queue_t *q)
{
    hub__require("co_queue_task_done");
    if (!q->unfinished) {
        errno = EOVERFLOW;
        return -1;
    }
    if (--q->unfinished == 0)
        while (coro__wake_first(&q->joiners, 0))
            ;
    return 0;
}

int co_queue_join(co_queue_t *q, int64_t deadline)
{
    struct co *self = coro__self("co_queue_join");
    if (coro__cancel_pending(self)) {
        errno = ECANCELED;
        return -1;
    }
    if (!q->unfinished)
        return 0;
    return coro__wait_on(self, &q->joiners, deadline);
}
