/*
 * test_queue.c - co_queue_t: gevent's Queue and JoinableQueue, a FIFO of
 * pointers, unbounded or bounded.
 *
 * Bodies run inside co_run() and record what they saw; the assertions run
 * after co_run() returned. Nothing asserts on elapsed time.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>

#include "coserve.h"
#include "util.h"

#define P(i) ((void *)(uintptr_t)(i))
#define I(p) ((int)(uintptr_t)(p))

/* ---- order, size, empty ------------------------------------------------ */

struct fifo_st {
    int made;
    size_t size_after_puts, size_after_gets;
    int put_rc[5], get_rc[5];
    int got[5];
    int empty_rc, empty_err;
    int past_rc, past_err;
    int nowait_rc, nowait_err;
    int past_put_rc;
    int past_get_rc, past_got;
};

static void *fifo_main(void *arg)
{
    struct fifo_st *st = arg;
    co_queue_t *q = co_queue_new(0);
    if (!q)
        return NULL;
    st->made = 1;
    for (int i = 0; i < 5; i++)
        st->put_rc[i] = co_queue_put(q, P(i + 1), co_deadline(SAFETY_MS));
    st->size_after_puts = co_queue_qsize(q);
    for (int i = 0; i < 5; i++) {
        void *item = NULL;
        st->get_rc[i] = co_queue_get(q, &item, co_deadline(SAFETY_MS));
        st->got[i] = I(item);
    }
    st->size_after_gets = co_queue_qsize(q);
    errno = 0;
    st->empty_rc = co_queue_get(q, NULL, co_deadline(10));
    st->empty_err = errno;
    errno = 0;
    st->past_rc = co_queue_get(q, NULL, 0); /* get_nowait by deadline */
    st->past_err = errno;
    errno = 0;
    st->nowait_rc = co_queue_get_nowait(q, NULL);
    st->nowait_err = errno;
    /* a past deadline only matters when the call would wait */
    st->past_put_rc = co_queue_put(q, P(7), 0);
    void *item = NULL;
    st->past_get_rc = co_queue_get(q, &item, 0);
    st->past_got = I(item);
    co_queue_free(q);
    return NULL;
}

Test(queue, items_come_out_in_the_order_they_went_in)
{
    struct fifo_st st;
    memset(&st, 0, sizeof st);
    run(fifo_main, &st);
    cr_assert(st.made);
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(st.put_rc[i], 0, "put %d", i);
        cr_assert_eq(st.get_rc[i], 0, "get %d", i);
        cr_assert_eq(st.got[i], i + 1, "get %d gave item %d", i, st.got[i]);
    }
    cr_assert_eq(st.size_after_puts, 5);
    cr_assert_eq(st.size_after_gets, 0);
    cr_assert_eq(st.empty_rc, -1, "a get from an empty queue succeeded");
    cr_assert_eq(st.empty_err, ETIMEDOUT, "errno %s", strerror(st.empty_err));
    cr_assert_eq(st.past_rc, -1);
    cr_assert_eq(st.past_err, ETIMEDOUT);
    cr_assert_eq(st.nowait_rc, -1);
    cr_assert_eq(st.nowait_err, EAGAIN, "errno %s", strerror(st.nowait_err));
    cr_assert_eq(st.past_put_rc, 0);
    cr_assert_eq(st.past_get_rc, 0);
    cr_assert_eq(st.past_got, 7);
}

/* An unbounded queue grows and shrinks its ring; the order survives the
 * ring wrapping around at every size. */
#define MANY 5000

struct grow_st {
    int ok, bad_at, max_size;
};

static void *grow_main(void *arg)
{
    struct grow_st *st = arg;
    co_queue_t *q = co_queue_new(0);
    if (!q)
        return NULL;
    st->bad_at = -1;
    int next_put = 0, next_get = 0;
    /* rounds of "put k, get k/2 + 1": the head walks around the ring */
    for (int k = 3; next_put < MANY; k = k * 3 / 2 + 1) {
        for (int i = 0; i < k && next_put < MANY; i++)
            if (co_queue_put_nowait(q, P(next_put++)) < 0)
                return NULL;
        if ((int)co_queue_qsize(q) > st->max_size)
            st->max_size = (int)co_queue_qsize(q);
        for (int i = 0; i < k / 2 + 1 && co_queue_qsize(q); i++) {
            void *item;
            if (co_queue_get_nowait(q, &item) < 0 || I(item) != next_get++) {
                st->bad_at = next_get - 1;
                return NULL;
            }
        }
    }
    void *item;
    while (co_queue_get_nowait(q, &item) == 0) /* shrinking as it empties */
        if (I(item) != next_get++) {
            st->bad_at = next_get - 1;
            return NULL;
        }
    st->ok = next_get == MANY && errno == EAGAIN && co_queue_qsize(q) == 0;
    co_queue_free(q);
    return NULL;
}

Test(queue, an_unbounded_queue_keeps_order_as_it_grows_and_shrinks)
{
    struct grow_st st = {0, 0, 0};
    run(grow_main, &st);
    cr_assert_eq(st.bad_at, -1, "item %d came out of order", st.bad_at);
    cr_assert(st.ok);
    cr_assert_gt(st.max_size, 1000);
}

/* ---- bounded ---------------------------------------------------------- */

#define NPUT 3

struct bounded_st {
    co_queue_t *q;
    int full_rc, full_err;
    int nowait_rc, nowait_err;
    size_t size_full, size_with_putters;
    int putter_rc[NPUT];
    int got[2 + NPUT];
    size_t size_end;
};

struct putter_arg {
    struct bounded_st *st;
    int id;
};

static void *blocked_putter(void *arg)
{
    struct putter_arg *a = arg;
    a->st->putter_rc[a->id] =
        co_queue_put(a->st->q, P(100 + a->id), co_deadline(SAFETY_MS));
    return NULL;
}

static void *bounded_main(void *arg)
{
    struct bounded_st *st = arg;
    if (!(st->q = co_queue_new(2)))
        return NULL;
    co_queue_put(st->q, P(1), -1);
    co_queue_put(st->q, P(2), -1);
    st->size_full = co_queue_qsize(st->q);
    errno = 0;
    st->full_rc = co_queue_put(st->q, P(3), co_deadline(10));
    st->full_err = errno;
    errno = 0;
    st->nowait_rc = co_queue_put_nowait(st->q, P(3));
    st->nowait_err = errno;
    struct putter_arg args[NPUT];
    co_t *cos[NPUT];
    for (int i = 0; i < NPUT; i++) {
        args[i] = (struct putter_arg){st, i};
        cos[i] = co_spawn(blocked_putter, &args[i]);
    }
    co_yield_now(); /* they wait for room, in spawn order */
    st->size_with_putters = co_queue_qsize(st->q);
    for (int i = 0; i < 2 + NPUT; i++) {
        void *item = NULL;
        /* each get lets the longest putter in: no wait needed */
        co_queue_get_nowait(st->q, &item);
        st->got[i] = I(item);
    }
    st->size_end = co_queue_qsize(st->q);
    co_join_all(cos, NPUT, co_deadline(SAFETY_MS));
    co_queue_free(st->q);
    return NULL;
}

Test(queue, a_full_bounded_queue_makes_putters_wait_in_line)
{
    struct bounded_st st;
    memset(&st, 0, sizeof st);
    for (int i = 0; i < NPUT; i++)
        st.putter_rc[i] = -2;
    run(bounded_main, &st);
    cr_assert_eq(st.size_full, 2);
    cr_assert_eq(st.full_rc, -1);
    cr_assert_eq(st.full_err, ETIMEDOUT, "errno %s", strerror(st.full_err));
    cr_assert_eq(st.nowait_rc, -1);
    cr_assert_eq(st.nowait_err, EAGAIN);
    cr_assert_eq(st.size_with_putters, 2, "waiting putters were counted");
    int want[2 + NPUT] = {1, 2, 100, 101, 102};
    for (int i = 0; i < 2 + NPUT; i++)
        cr_assert_eq(st.got[i], want[i], "get %d gave %d, want %d", i,
                     st.got[i], want[i]);
    for (int i = 0; i < NPUT; i++)
        cr_assert_eq(st.putter_rc[i], 0, "putter %d", i);
    cr_assert_eq(st.size_end, 0);
}

/* ---- getters ------------------------------------------------------------ */

#define NGET 4

struct getters_st {
    co_queue_t *q;
    int rc[NGET], got[NGET];
    int steal_rc, steal_err;
};

struct getter_arg {
    struct getters_st *st;
    int id;
};

static void *waiting_getter(void *arg)
{
    struct getter_arg *a = arg;
    void *item = NULL;
    a->st->rc[a->id] = co_queue_get(a->st->q, &item, co_deadline(SAFETY_MS));
    a->st->got[a->id] = I(item);
    return NULL;
}

static void *getters_main(void *arg)
{
    struct getters_st *st = arg;
    if (!(st->q = co_queue_new(0)))
        return NULL;
    struct getter_arg args[NGET];
    co_t *cos[NGET];
    for (int i = 0; i < NGET; i++) {
        args[i] = (struct getter_arg){st, i};
        cos[i] = co_spawn(waiting_getter, &args[i]);
    }
    co_yield_now(); /* they wait, in spawn order */
    for (int i = 0; i < NGET; i++)
        co_queue_put(st->q, P(10 + i), -1);
    /* every item went to a waiter, none of which has run yet: the queue is
     * empty for a newcomer */
    errno = 0;
    st->steal_rc = co_queue_get_nowait(st->q, NULL);
    st->steal_err = errno;
    co_join_all(cos, NGET, co_deadline(SAFETY_MS));
    co_queue_free(st->q);
    return NULL;
}

Test(queue, items_go_to_waiting_getters_in_the_order_they_came)
{
    struct getters_st st;
    memset(&st, 0, sizeof st);
    run(getters_main, &st);
    for (int i = 0; i < NGET; i++) {
        cr_assert_eq(st.rc[i], 0, "getter %d", i);
        cr_assert_eq(st.got[i], 10 + i, "getter %d got %d", i, st.got[i]);
    }
    cr_assert_eq(st.steal_rc, -1, "a newcomer took a waiter's item");
    cr_assert_eq(st.steal_err, EAGAIN);
}

/* ---- close and cancel ------------------------------------------------- */

struct close_st {
    co_queue_t *q, *full;
    int getter_rc, getter_err;
    int putter_rc, putter_err;
    int put_after_rc, put_after_err;
    int left_rc[2], left[2];
    int end_rc, end_err;
    int cancel_rc, cancel_err;
};

static void *close_getter(void *arg)
{
    struct close_st *st = arg;
    errno = 0;
    st->getter_rc = co_queue_get(st->q, NULL, co_deadline(SAFETY_MS));
    st->getter_err = errno;
    return NULL;
}

static void *close_putter(void *arg)
{
    struct close_st *st = arg;
    errno = 0;
    st->putter_rc = co_queue_put(st->full, P(9), co_deadline(SAFETY_MS));
    st->putter_err = errno;
    return NULL;
}

static void *cancel_getter(void *arg)
{
    struct close_st *st = arg;
    errno = 0;
    st->cancel_rc = co_queue_get(st->q, NULL, co_deadline(LONG_MS));
    st->cancel_err = errno;
    return NULL;
}

static void *close_main(void *arg)
{
    struct close_st *st = arg;
    st->q = co_queue_new(0);
    st->full = co_queue_new(1);
    if (!st->q || !st->full)
        return NULL;
    co_t *c = co_spawn(cancel_getter, st);
    co_yield_now();
    co_cancel(c);
    co_join(c, NULL, co_deadline(SAFETY_MS));

    co_queue_put(st->full, P(1), -1);
    co_t *g = co_spawn(close_getter, st);
    co_t *p = co_spawn(close_putter, st);
    co_yield_now(); /* the getter waits on q, the putter on full */
    co_queue_close(st->q);
    co_queue_close(st->q); /* twice: nothing */
    co_queue_close(st->full);
    co_join(g, NULL, co_deadline(SAFETY_MS));
    co_join(p, NULL, co_deadline(SAFETY_MS));
    errno = 0;
    st->put_after_rc = co_queue_put(st->full, P(2), -1);
    st->put_after_err = errno;
    /* what was in it still comes out, then the end */
    void *item = NULL;
    st->left_rc[0] = co_queue_get(st->full, &item, -1);
    st->left[0] = I(item);
    errno = 0;
    st->end_rc = co_queue_get(st->full, NULL, -1);
    st->end_err = errno;
    co_queue_free(st->q);
    co_queue_free(st->full);
    return NULL;
}

Test(queue, close_ends_waits_with_epipe_and_leaves_the_items_to_get)
{
    struct close_st st;
    memset(&st, 0, sizeof st);
    run(close_main, &st);
    cr_assert_eq(st.cancel_rc, -1);
    cr_assert_eq(st.cancel_err, ECANCELED, "errno %s", strerror(st.cancel_err));
    cr_assert_eq(st.getter_rc, -1);
    cr_assert_eq(st.getter_err, EPIPE, "errno %s", strerror(st.getter_err));
    cr_assert_eq(st.putter_rc, -1);
    cr_assert_eq(st.putter_err, EPIPE, "errno %s", strerror(st.putter_err));
    cr_assert_eq(st.put_after_rc, -1);
    cr_assert_eq(st.put_after_err, EPIPE);
    cr_assert_eq(st.left_rc[0], 0);
    cr_assert_eq(st.left[0], 1);
    cr_assert_eq(st.end_rc, -1);
    cr_assert_eq(st.end_err, EPIPE);
}

/* ---- JoinableQueue ------------------------------------------------------ */

#define NJOIN 2
#define NTASK 3

struct join_st {
    co_queue_t *q;
    int done; /* task_done calls so far */
    int joined_rc[NJOIN];
    int done_at_join[NJOIN]; /* what each joiner saw when it returned */
    int empty_join_rc;
    int early_rc, early_err;
    int over_rc, over_err;
    int after_over_join_rc;
};

static void *worker(void *arg)
{
    struct join_st *st = arg;
    for (int i = 0; i < NTASK; i++) {
        if (co_queue_get(st->q, NULL, co_deadline(SAFETY_MS)) < 0)
            return NULL;
        co_yield_now(); /* work on it */
        co_yield_now();
        st->done++;
        co_queue_task_done(st->q);
    }
    return NULL;
}

struct joiner_arg {
    struct join_st *st;
    int id;
};

static void *joiner(void *arg)
{
    struct joiner_arg *a = arg;
    a->st->joined_rc[a->id] = co_queue_join(a->st->q, co_deadline(SAFETY_MS));
    a->st->done_at_join[a->id] = a->st->done;
    return NULL;
}

static void *join_main(void *arg)
{
    struct join_st *st = arg;
    if (!(st->q = co_queue_new(0)))
        return NULL;
    st->empty_join_rc = co_queue_join(st->q, co_now() - 1); /* nothing put */
    for (int i = 0; i < NTASK; i++)
        co_queue_put(st->q, P(i), -1);
    errno = 0;
    st->early_rc = co_queue_join(st->q, co_deadline(10)); /* none done */
    st->early_err = errno;
    struct joiner_arg args[NJOIN];
    co_t *cos[NJOIN + 1];
    for (int i = 0; i < NJOIN; i++) {
        args[i] = (struct joiner_arg){st, i};
        cos[i] = co_spawn(joiner, &args[i]);
    }
    cos[NJOIN] = co_spawn(worker, st);
    co_join_all(cos, NJOIN + 1, co_deadline(SAFETY_MS));
    errno = 0;
    st->over_rc = co_queue_task_done(st->q); /* a 4th done for 3 items */
    st->over_err = errno;
    st->after_over_join_rc = co_queue_join(st->q, co_now() - 1);
    co_queue_free(st->q);
    return NULL;
}

Test(queue, join_returns_only_after_the_last_task_done)
{
    struct join_st st;
    memset(&st, 0, sizeof st);
    st.empty_join_rc = st.early_rc = st.over_rc = -2;
    run(join_main, &st);
    cr_assert_eq(st.empty_join_rc, 0);
    cr_assert_eq(st.early_rc, -1);
    cr_assert_eq(st.early_err, ETIMEDOUT, "errno %s", strerror(st.early_err));
    for (int i = 0; i < NJOIN; i++) {
        cr_assert_eq(st.joined_rc[i], 0, "joiner %d", i);
        cr_assert_eq(st.done_at_join[i], NTASK,
                     "joiner %d returned after %d of %d task_done", i,
                     st.done_at_join[i], NTASK);
    }
    cr_assert_eq(st.over_rc, -1, "task_done beyond the items put succeeded");
    cr_assert_eq(st.over_err, EOVERFLOW, "errno %s", strerror(st.over_err));
    cr_assert_eq(st.after_over_join_rc, 0);
}

/* An item handed straight to a waiting getter counts as put, and one that
 * waited in a full queue's line counts from when it got in. */
struct count_st {
    co_queue_t *q;
    int join_rc, join_err;
    int done_rc[3];
    int fourth_rc;
};

static void *count_getter(void *arg)
{
    struct count_st *st = arg;
    co_queue_get(st->q, NULL, co_deadline(SAFETY_MS));
    return NULL;
}

static void *count_main(void *arg)
{
    struct count_st *st = arg;
    if (!(st->q = co_queue_new(1)))
        return NULL;
    co_t *g = co_spawn(count_getter, st);
    co_yield_now();
    co_queue_put(st->q, P(1), -1); /* handed to the getter */
    co_join(g, NULL, co_deadline(SAFETY_MS));
    co_queue_put(st->q, P(2), -1); /* in the ring */
    errno = 0;
    st->join_rc = co_queue_join(st->q, co_deadline(10));
    st->join_err = errno;
    for (int i = 0; i < 3; i++)
        st->done_rc[i] = co_queue_task_done(st->q);
    co_queue_free(st->q);
    return NULL;
}

Test(queue, items_handed_to_a_getter_count_for_join)
{
    struct count_st st;
    memset(&st, 0, sizeof st);
    run(count_main, &st);
    cr_assert_eq(st.join_rc, -1);
    cr_assert_eq(st.join_err, ETIMEDOUT);
    cr_assert_eq(st.done_rc[0], 0);
    cr_assert_eq(st.done_rc[1], 0);
    cr_assert_eq(st.done_rc[2], -1, "2 items put, 3 task_done");
}

/* ---- misuse ----------------------------------------------------------- */

static struct close_st abort_st;

static void *abort_main(void *arg)
{
    (void)arg;
    abort_st.q = co_queue_new(0);
    co_t *co = co_spawn(cancel_getter, &abort_st);
    co_yield_now();
    co_queue_free(abort_st.q); /* it waits: a bug */
    co_cancel(co);
    return NULL;
}

Test(queue, freeing_it_under_a_waiter_aborts, .signal = SIGABRT)
{
    run(abort_main, NULL);
}
