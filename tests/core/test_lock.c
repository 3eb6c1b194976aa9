/*
 * test_lock.c - co_lock_t: gevent.lock's Lock and RLock, mutexes owned by
 * the coroutine that took them, handed over first come, first served.
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

/* ---- ownership --------------------------------------------------------- */

struct own_st {
    co_lock_t *lock;
    int acquire_rc, locked_held;
    int again_rc, again_err;
    int other_release_rc, other_release_err;
    int other_acquire_rc, other_acquire_err;
    int release_rc, locked_free;
    int second_release_rc, second_release_err;
};

static void *intruder(void *arg)
{
    struct own_st *st = arg;
    errno = 0;
    st->other_release_rc = co_lock_release(st->lock);
    st->other_release_err = errno;
    errno = 0;
    st->other_acquire_rc = co_lock_acquire(st->lock, co_deadline(10));
    st->other_acquire_err = errno;
    return NULL;
}

static void *own_main(void *arg)
{
    struct own_st *st = arg;
    if (!(st->lock = co_lock_new()))
        return NULL;
    st->acquire_rc = co_lock_acquire(st->lock, -1);
    st->locked_held = co_lock_locked(st->lock);
    errno = 0;
    st->again_rc = co_lock_acquire(st->lock, co_deadline(SAFETY_MS));
    st->again_err = errno;
    co_t *co = co_spawn(intruder, st);
    co_join(co, NULL, co_deadline(SAFETY_MS));
    st->release_rc = co_lock_release(st->lock);
    st->locked_free = co_lock_locked(st->lock);
    errno = 0;
    st->second_release_rc = co_lock_release(st->lock);
    st->second_release_err = errno;
    co_lock_free(st->lock);
    return NULL;
}

Test(lock, only_its_owner_releases_a_lock_and_may_not_take_it_twice)
{
    struct own_st st;
    memset(&st, 0, sizeof st);
    st.acquire_rc = st.release_rc = -2;
    run(own_main, &st);
    cr_assert_eq(st.acquire_rc, 0);
    cr_assert(st.locked_held);
    cr_assert_eq(st.again_rc, -1, "a Lock was taken twice by its owner");
    cr_assert_eq(st.again_err, EDEADLK, "errno %s", strerror(st.again_err));
    cr_assert_eq(st.other_release_rc, -1, "a non-owner released the lock");
    cr_assert_eq(st.other_release_err, EPERM, "errno %s",
                 strerror(st.other_release_err));
    cr_assert_eq(st.other_acquire_rc, -1);
    cr_assert_eq(st.other_acquire_err, ETIMEDOUT);
    cr_assert_eq(st.release_rc, 0);
    cr_assert_not(st.locked_free);
    cr_assert_eq(st.second_release_rc, -1);
    cr_assert_eq(st.second_release_err, EPERM);
}

/* A coroutine that returned holding the lock keeps it: the next coroutine,
 * built in the same recycled struct, is not its owner. */
struct dead_st {
    co_lock_t *lock;
    int holder_rc;
    int heir_release_rc, heir_release_err;
    int heir_acquire_rc, heir_acquire_err;
};

static void *holder(void *arg)
{
    struct dead_st *st = arg;
    st->holder_rc = co_lock_acquire(st->lock, -1);
    return NULL; /* still holding it */
}

static void *heir(void *arg)
{
    struct dead_st *st = arg;
    errno = 0;
    st->heir_release_rc = co_lock_release(st->lock);
    st->heir_release_err = errno;
    errno = 0;
    st->heir_acquire_rc = co_lock_acquire(st->lock, co_deadline(10));
    st->heir_acquire_err = errno;
    return NULL;
}

static void *dead_main(void *arg)
{
    struct dead_st *st = arg;
    if (!(st->lock = co_lock_new()))
        return NULL;
    co_join(co_spawn(holder, st), NULL, co_deadline(SAFETY_MS));
    co_join(co_spawn(heir, st), NULL, co_deadline(SAFETY_MS));
    co_lock_free(st->lock); /* held, nobody waiting: allowed */
    return NULL;
}

Test(lock, a_coroutine_in_a_recycled_struct_does_not_inherit_a_lock)
{
    struct dead_st st;
    memset(&st, 0, sizeof st);
    st.holder_rc = -2;
    run(dead_main, &st);
    cr_assert_eq(st.holder_rc, 0);
    cr_assert_eq(st.heir_release_rc, -1);
    cr_assert_eq(st.heir_release_err, EPERM);
    cr_assert_eq(st.heir_acquire_rc, -1);
    cr_assert_eq(st.heir_acquire_err, ETIMEDOUT);
}

/* ---- RLock ------------------------------------------------------------- */

struct rlock_st {
    co_lock_t *lock;
    int rc[3];
    int rel_rc[3];
    int locked_after[3]; /* after each release */
    int waiter_rc;
    int releases_before_waiter; /* main's releases when the waiter got it */
    int releases;
    int extra_rc, extra_err;
    int other_release_rc, other_release_err;
};

static void *rlock_waiter(void *arg)
{
    struct rlock_st *st = arg;
    errno = 0;
    st->other_release_rc = co_lock_release(st->lock);
    st->other_release_err = errno;
    st->waiter_rc = co_lock_acquire(st->lock, co_deadline(SAFETY_MS));
    st->releases_before_waiter = st->releases;
    if (st->waiter_rc == 0)
        co_lock_release(st->lock);
    return NULL;
}

static void *rlock_main(void *arg)
{
    struct rlock_st *st = arg;
    if (!(st->lock = co_rlock_new()))
        return NULL;
    for (int i = 0; i < 3; i++)
        st->rc[i] = co_lock_acquire(st->lock, co_deadline(SAFETY_MS));
    co_t *co = co_spawn(rlock_waiter, st);
    co_yield_now(); /* it waits */
    for (int i = 0; i < 3; i++) {
        st->rel_rc[i] = co_lock_release(st->lock);
        st->releases++;
        st->locked_after[i] = co_lock_locked(st->lock);
        co_yield_now(); /* the waiter runs only once it owns the lock */
    }
    co_join(co, NULL, co_deadline(SAFETY_MS));
    errno = 0;
    st->extra_rc = co_lock_release(st->lock); /* a 4th release of 3 */
    st->extra_err = errno;
    co_lock_free(st->lock);
    return NULL;
}

Test(lock, an_rlock_is_taken_again_by_its_owner_and_freed_by_as_many_releases)
{
    struct rlock_st st;
    memset(&st, 0, sizeof st);
    st.waiter_rc = -2;
    run(rlock_main, &st);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(st.rc[i], 0, "acquire %d", i);
        cr_assert_eq(st.rel_rc[i], 0, "release %d", i);
    }
    cr_assert_eq(st.other_release_rc, -1);
    cr_assert_eq(st.other_release_err, EPERM);
    cr_assert(st.locked_after[0]);
    cr_assert(st.locked_after[1]);
    cr_assert(st.locked_after[2], "the waiter should own it at once");
    cr_assert_eq(st.waiter_rc, 0);
    cr_assert_eq(st.releases_before_waiter, 3,
                 "the waiter got it after %d of 3 releases",
                 st.releases_before_waiter);
    cr_assert_eq(st.extra_rc, -1);
    cr_assert_eq(st.extra_err, EPERM);
}

/* ---- fairness ---------------------------------------------------------- */

#define NWAIT 5
#define MAIN_ID 99

struct fair_st {
    co_lock_t *lock;
    int order[NWAIT + 1], n;
    int rc[NWAIT];
    int main_rc;
};

struct fair_arg {
    struct fair_st *st;
    int id;
};

static void *fair_waiter(void *arg)
{
    struct fair_arg *a = arg;
    a->st->rc[a->id] = co_lock_acquire(a->st->lock, co_deadline(SAFETY_MS));
    if (a->st->rc[a->id] == 0) {
        a->st->order[a->st->n++] = a->id;
        co_yield_now(); /* hold it a moment */
        co_lock_release(a->st->lock);
    }
    return NULL;
}

static void *fair_main(void *arg)
{
    struct fair_st *st = arg;
    if (!(st->lock = co_lock_new()))
        return NULL;
    co_lock_acquire(st->lock, -1);
    struct fair_arg args[NWAIT];
    co_t *cos[NWAIT];
    for (int i = 0; i < NWAIT; i++) {
        args[i] = (struct fair_arg){st, i};
        cos[i] = co_spawn(fair_waiter, &args[i]);
    }
    co_yield_now(); /* they queue up in spawn order */
    co_lock_release(st->lock);
    /* taking it back at once queues behind every waiter */
    st->main_rc = co_lock_acquire(st->lock, co_deadline(SAFETY_MS));
    if (st->main_rc == 0) {
        st->order[st->n++] = MAIN_ID;
        co_lock_release(st->lock);
    }
    co_join_all(cos, NWAIT, co_deadline(SAFETY_MS));
    co_lock_free(st->lock);
    return NULL;
}

Test(lock, waiters_get_the_lock_first_come_first_served)
{
    struct fair_st st;
    memset(&st, 0, sizeof st);
    st.main_rc = -2;
    run(fair_main, &st);
    cr_assert_eq(st.main_rc, 0);
    int want[NWAIT + 1] = {0, 1, 2, 3, 4, MAIN_ID};
    cr_assert_eq(st.n, NWAIT + 1);
    for (int i = 0; i < NWAIT + 1; i++)
        cr_assert_eq(st.order[i], want[i], "turn %d went to %d, want %d", i,
                     st.order[i], want[i]);
}

/* ---- deadlines and cancel --------------------------------------------- */

struct wait_st {
    co_lock_t *lock;
    int to_rc, to_err;
    int cancel_rc, cancel_err;
    int handed_rc, handed_err;
    int cancelled_acquire_rc, cancelled_acquire_err;
    int later_rc;
};

static void *timed_waiter(void *arg)
{
    struct wait_st *st = arg;
    errno = 0;
    st->to_rc = co_lock_acquire(st->lock, co_deadline(10));
    st->to_err = errno;
    return NULL;
}

static void *cancelled_waiter(void *arg)
{
    struct wait_st *st = arg;
    errno = 0;
    st->cancel_rc = co_lock_acquire(st->lock, co_deadline(LONG_MS));
    st->cancel_err = errno;
    return NULL;
}

static void *handed_waiter(void *arg)
{
    struct wait_st *st = arg;
    errno = 0;
    st->handed_rc = co_lock_acquire(st->lock, co_deadline(LONG_MS));
    st->handed_err = errno;
    if (st->handed_rc == 0) {
        /* it owns the lock although cancelled: a later acquire fails, the
         * release works */
        errno = 0;
        st->cancelled_acquire_rc = co_lock_acquire(st->lock, -1);
        st->cancelled_acquire_err = errno;
        co_lock_release(st->lock);
    }
    return NULL;
}

static void *wait_main(void *arg)
{
    struct wait_st *st = arg;
    if (!(st->lock = co_lock_new()))
        return NULL;
    co_lock_acquire(st->lock, -1);
    co_join(co_spawn(timed_waiter, st), NULL, co_deadline(SAFETY_MS));
    co_t *c = co_spawn(cancelled_waiter, st);
    co_yield_now();
    co_cancel(c);
    co_join(c, NULL, co_deadline(SAFETY_MS));
    /* handed over, then cancelled before it ran */
    co_t *h = co_spawn(handed_waiter, st);
    co_yield_now();
    co_lock_release(st->lock);
    co_cancel(h);
    co_join(h, NULL, co_deadline(SAFETY_MS));
    /* whoever had it gave it back: free now */
    st->later_rc = co_lock_acquire(st->lock, co_now() - 1);
    co_lock_release(st->lock);
    co_lock_free(st->lock);
    return NULL;
}

Test(lock, acquire_times_out_and_is_cancelled_without_losing_the_lock)
{
    struct wait_st st;
    memset(&st, 0, sizeof st);
    st.later_rc = -2;
    run(wait_main, &st);
    cr_assert_eq(st.to_rc, -1);
    cr_assert_eq(st.to_err, ETIMEDOUT, "errno %s", strerror(st.to_err));
    cr_assert_eq(st.cancel_rc, -1);
    cr_assert_eq(st.cancel_err, ECANCELED, "errno %s", strerror(st.cancel_err));
    cr_assert_eq(st.handed_rc, 0, "a lock handed over is held");
    cr_assert_eq(st.cancelled_acquire_rc, -1);
    cr_assert_eq(st.cancelled_acquire_err, ECANCELED);
    cr_assert_eq(st.later_rc, 0, "the lock was lost");
}

/* ---- misuse ----------------------------------------------------------- */

static struct wait_st abort_st;

static void *abort_main(void *arg)
{
    (void)arg;
    abort_st.lock = co_lock_new();
    co_lock_acquire(abort_st.lock, -1);
    co_t *co = co_spawn(cancelled_waiter, &abort_st);
    co_yield_now();
    co_lock_free(abort_st.lock); /* it waits: a bug */
    co_cancel(co);
    return NULL;
}

Test(lock, freeing_it_under_a_waiter_aborts, .signal = SIGABRT)
{
    run(abort_main, NULL);
}
