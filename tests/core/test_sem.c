/*
 * test_sem.c - co_sem_t: a counting semaphore with first-come-first-served
 * handoff, and the bounded one (gevent's BoundedSemaphore).
 *
 * Bodies run inside co_run() and record what they saw; the assertions run
 * after co_run() returned. Nothing asserts on elapsed time.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "coserve.h"
#include "util.h"

/* ---- counting ------------------------------------------------------------ */

struct count_st {
    int made;
    int take_rc[3];
    int fourth_rc, fourth_err;
    int after_release_rc;
    int again_rc, again_err;
    int zero_rc, zero_err;
};

static void *count_main(void *arg)
{
    struct count_st *st = arg;
    co_sem_t *sem = co_sem_new(3);
    co_sem_t *zero = co_sem_new(0);
    if (!sem || !zero)
        return NULL;
    st->made = 1;
    for (int i = 0; i < 3; i++)
        st->take_rc[i] = co_sem_acquire(sem, -1);
    errno = 0;
    st->fourth_rc = co_sem_acquire(sem, co_deadline(10));
    st->fourth_err = errno;
    co_sem_release(sem);
    st->after_release_rc = co_sem_acquire(sem, co_deadline(SAFETY_MS));
    errno = 0;
    st->again_rc = co_sem_acquire(sem, co_deadline(10));
    st->again_err = errno;
    for (int i = 0; i < 3; i++)
        co_sem_release(sem);
    errno = 0;
    st->zero_rc = co_sem_acquire(zero, co_deadline(10));
    st->zero_err = errno;
    co_sem_free(sem);
    co_sem_free(zero);
    return NULL;
}

Test(sem, permits_are_counted)
{
    struct count_st st;
    memset(&st, 0, sizeof st);
    st.fourth_rc = st.after_release_rc = st.again_rc = st.zero_rc = -2;
    run(count_main, &st);
    cr_assert(st.made, "co_sem_new failed");
    for (int i = 0; i < 3; i++)
        cr_assert_eq(st.take_rc[i], 0, "permit %d", i);
    cr_assert_eq(st.fourth_rc, -1, "a 4th permit out of 3");
    cr_assert_eq(st.fourth_err, ETIMEDOUT, "errno %s", strerror(st.fourth_err));
    cr_assert_eq(st.after_release_rc, 0);
    cr_assert_eq(st.again_rc, -1, "a released permit was counted twice");
    cr_assert_eq(st.again_err, ETIMEDOUT);
    cr_assert_eq(st.zero_rc, -1);
    cr_assert_eq(st.zero_err, ETIMEDOUT);
}

static void *release_first_main(void *arg)
{
    int *rc = arg;
    co_sem_t *sem = co_sem_new(0);
    if (!sem)
        return NULL;
    for (int i = 0; i < 5; i++)
        co_sem_release(sem); /* permits pile up with nobody waiting */
    for (int i = 0; i < 5; i++)
        rc[i] = co_sem_acquire(sem, co_deadline(SAFETY_MS));
    errno = 0;
    rc[5] = co_sem_acquire(sem, co_deadline(10));
    rc[6] = errno;
    co_sem_free(sem);
    return NULL;
}

Test(sem, releases_without_waiters_add_permits)
{
    int rc[7] = {-2, -2, -2, -2, -2, -2, 0};
    run(release_first_main, rc);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(rc[i], 0, "acquire %d", i);
    cr_assert_eq(rc[5], -1);
    cr_assert_eq(rc[6], ETIMEDOUT);
}

/* ---- FIFO handoff ----------------------------------------------------------
 */

#define NWAIT 5
#define MAIN_ID 99

struct fifo_st {
    co_sem_t *sem;
    int order[NWAIT + 1];
    int n;
    int rc[NWAIT];
    int main_rc;
    int join_rc;
};

struct waiter_arg {
    struct fifo_st *st;
    int id;
};

static void *fifo_waiter(void *arg)
{
    struct waiter_arg *a = arg;
    a->st->rc[a->id] = co_sem_acquire(a->st->sem, co_deadline(SAFETY_MS));
    if (a->st->rc[a->id] == 0) {
        a->st->order[a->st->n++] = a->id;
        co_yield_now(); /* hold it a moment */
        co_sem_release(a->st->sem);
    }
    return NULL;
}

static void *fifo_main(void *arg)
{
    struct fifo_st *st = arg;
    st->sem = co_sem_new(1);
    if (!st->sem)
        return NULL;
    co_sem_acquire(st->sem, -1); /* main holds the only permit */
    struct waiter_arg args[NWAIT];
    co_t *cos[NWAIT];
    for (int i = 0; i < NWAIT; i++) {
        args[i] = (struct waiter_arg){st, i};
        cos[i] = co_spawn(fifo_waiter, &args[i]);
    }
    co_yield_now(); /* they queue up, in spawn order */
    /* hand the permit to waiter 0; taking it back at once must queue behind
     * every waiter, not barge in front of them */
    co_sem_release(st->sem);
    st->main_rc = co_sem_acquire(st->sem, co_deadline(SAFETY_MS));
    if (st->main_rc == 0) {
        st->order[st->n++] = MAIN_ID;
        co_sem_release(st->sem);
    }
    st->join_rc = co_join_all(cos, NWAIT, co_deadline(SAFETY_MS));
    co_sem_free(st->sem);
    return NULL;
}

Test(sem, permits_are_handed_to_waiters_first_come_first_served)
{
    struct fifo_st st;
    memset(&st, 0, sizeof st);
    st.main_rc = st.join_rc = -2;
    run(fifo_main, &st);
    cr_assert_eq(st.main_rc, 0);
    cr_assert_eq(st.join_rc, 0);
    for (int i = 0; i < NWAIT; i++)
        cr_assert_eq(st.rc[i], 0, "waiter %d", i);
    int want[NWAIT + 1] = {0, 1, 2, 3, 4, MAIN_ID};
    cr_assert_eq(st.n, NWAIT + 1);
    for (int i = 0; i < NWAIT + 1; i++)
        cr_assert_eq(st.order[i], want[i], "turn %d went to %d, want %d", i,
                     st.order[i], want[i]);
}

/* ---- timeout ----------------------------------------------------------------
 */

struct to_st {
    co_sem_t *sem;
    int rc, err;
    int child_rc, child_err;
    int later_rc;
    int join_rc;
};

static void *short_waiter(void *arg)
{
    struct to_st *st = arg;
    errno = 0;
    st->child_rc = co_sem_acquire(st->sem, co_deadline(10));
    st->child_err = errno;
    return NULL;
}

static void *timeout_main(void *arg)
{
    struct to_st *st = arg;
    st->sem = co_sem_new(0);
    if (!st->sem)
        return NULL;
    errno = 0;
    st->rc = co_sem_acquire(st->sem, co_deadline(20));
    st->err = errno;
    co_t *co = co_spawn(short_waiter, st);
    if (!co)
        return NULL;
    st->join_rc = co_join(co, NULL, co_deadline(SAFETY_MS));
    /* the timed-out waiter is gone: this release is not handed to it */
    co_sem_release(st->sem);
    st->later_rc = co_sem_acquire(st->sem, co_deadline(SAFETY_MS));
    co_sem_free(st->sem);
    return NULL;
}

Test(sem, acquire_times_out_with_etimedout)
{
    struct to_st st;
    memset(&st, 0, sizeof st);
    st.rc = st.child_rc = st.later_rc = st.join_rc = -2;
    run(timeout_main, &st);
    cr_assert_eq(st.rc, -1);
    cr_assert_eq(st.err, ETIMEDOUT, "errno %s", strerror(st.err));
    cr_assert_eq(st.join_rc, 0);
    cr_assert_eq(st.child_rc, -1);
    cr_assert_eq(st.child_err, ETIMEDOUT);
    cr_assert_eq(st.later_rc, 0, "the permit went to a timed-out waiter");
}

/* ---- cancel
 * ------------------------------------------------------------------ */

struct cancel_st {
    co_sem_t *sem;
    int rc, err;
    int join_rc;
    int later_rc;
    int second_rc, second_err;
};

static void *long_waiter(void *arg)
{
    struct cancel_st *st = arg;
    errno = 0;
    st->rc = co_sem_acquire(st->sem, co_deadline(LONG_MS));
    st->err = errno;
    return NULL;
}

static void *cancel_main(void *arg)
{
    struct cancel_st *st = arg;
    st->sem = co_sem_new(0);
    if (!st->sem)
        return NULL;
    co_t *co = co_spawn(long_waiter, st);
    if (!co)
        return NULL;
    co_yield_now(); /* it waits */
    co_cancel(co);
    st->join_rc = co_join(co, NULL, co_deadline(SAFETY_MS));
    /* the cancelled waiter is gone: one release, one permit for us */
    co_sem_release(st->sem);
    st->later_rc = co_sem_acquire(st->sem, co_deadline(SAFETY_MS));
    errno = 0;
    st->second_rc = co_sem_acquire(st->sem, co_deadline(10));
    st->second_err = errno;
    co_sem_free(st->sem);
    return NULL;
}

Test(sem, cancel_wakes_acquire_with_ecanceled)
{
    struct cancel_st st;
    memset(&st, 0, sizeof st);
    st.rc = st.join_rc = st.later_rc = st.second_rc = -2;
    run(cancel_main, &st);
    cr_assert_eq(st.join_rc, 0);
    cr_assert_eq(st.rc, -1);
    cr_assert_eq(st.err, ECANCELED, "errno %s", strerror(st.err));
    cr_assert_eq(st.later_rc, 0, "the permit went to a cancelled waiter");
    cr_assert_eq(st.second_rc, -1);
    cr_assert_eq(st.second_err, ETIMEDOUT);
}

/* A waiter cancelled after the permit was handed to it but before it ran:
 * the permit must not be lost. */
static void *cancel_after_handoff_main(void *arg)
{
    struct cancel_st *st = arg;
    st->sem = co_sem_new(0);
    if (!st->sem)
        return NULL;
    co_t *co = co_spawn(long_waiter, st);
    if (!co)
        return NULL;
    co_yield_now();
    co_sem_release(st->sem); /* handed to the waiter, which has not run */
    co_cancel(co);
    st->join_rc = co_join(co, NULL, co_deadline(SAFETY_MS));
    if (st->rc == 0)
        co_sem_release(st->sem); /* it got the permit: give it back */
    st->later_rc = co_sem_acquire(st->sem, co_deadline(SAFETY_MS));
    co_sem_free(st->sem);
    return NULL;
}

Test(sem, a_permit_handed_to_a_waiter_cancelled_before_it_ran_is_not_lost)
{
    struct cancel_st st;
    memset(&st, 0, sizeof st);
    st.rc = st.join_rc = st.later_rc = -2;
    run(cancel_after_handoff_main, &st);
    cr_assert_eq(st.join_rc, 0);
    /* either outcome is fine for the waiter... */
    cr_assert(st.rc == 0 || (st.rc == -1 && st.err == ECANCELED),
              "waiter: rc %d errno %s", st.rc, strerror(st.err));
    /* ...but the permit exists exactly once */
    cr_assert_eq(st.later_rc, 0, "the permit was lost");
}

/* ---- bounded ---------------------------------------------------------- */

struct bounded_st {
    co_sem_t *sem;
    int made;
    int over_rc, over_err; /* a release with all permits in */
    int take_rc[2];
    int back_rc[2];
    int again_rc, again_err; /* released once more than acquired */
    int waiter_rc;
    int handoff_rc; /* a release to a waiter of a bounded 0 */
    int zero_over_rc, zero_over_err;
    int plain_rc; /* an unbounded semaphore never refuses */
};

static void *bounded_waiter(void *arg)
{
    struct bounded_st *st = arg;
    st->waiter_rc = co_sem_acquire(st->sem, co_deadline(SAFETY_MS));
    return NULL;
}

static void *bounded_main(void *arg)
{
    struct bounded_st *st = arg;
    co_sem_t *sem = co_sem_new_bounded(2);
    if (!sem)
        return NULL;
    st->made = 1;
    errno = 0;
    st->over_rc = co_sem_release(sem);
    st->over_err = errno;
    for (int i = 0; i < 2; i++)
        st->take_rc[i] = co_sem_acquire(sem, co_deadline(SAFETY_MS));
    for (int i = 0; i < 2; i++)
        st->back_rc[i] = co_sem_release(sem);
    errno = 0;
    st->again_rc = co_sem_release(sem);
    st->again_err = errno;
    co_sem_free(sem);

    /* bounded at 0: a release may still hand a permit to a waiter (the
     * count stays 0), but never add one */
    if (!(st->sem = co_sem_new_bounded(0)))
        return NULL;
    co_t *co = co_spawn(bounded_waiter, st);
    co_yield_now();
    st->handoff_rc = co_sem_release(st->sem);
    co_join(co, NULL, co_deadline(SAFETY_MS));
    errno = 0;
    st->zero_over_rc = co_sem_release(st->sem);
    st->zero_over_err = errno;
    co_sem_free(st->sem);

    co_sem_t *plain = co_sem_new(0);
    if (plain) {
        st->plain_rc = 0;
        for (int i = 0; i < 10; i++)
            st->plain_rc |= co_sem_release(plain);
        co_sem_free(plain);
    }
    return NULL;
}

Test(sem, a_bounded_semaphore_refuses_a_release_above_its_initial_value)
{
    struct bounded_st st;
    memset(&st, 0, sizeof st);
    st.waiter_rc = st.handoff_rc = st.plain_rc = -2;
    run(bounded_main, &st);
    cr_assert(st.made);
    cr_assert_eq(st.over_rc, -1, "a full bounded semaphore took a release");
    cr_assert_eq(st.over_err, EOVERFLOW, "errno %s", strerror(st.over_err));
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(st.take_rc[i], 0, "acquire %d", i);
        cr_assert_eq(st.back_rc[i], 0, "release %d", i);
    }
    cr_assert_eq(st.again_rc, -1);
    cr_assert_eq(st.again_err, EOVERFLOW);
    cr_assert_eq(st.handoff_rc, 0);
    cr_assert_eq(st.waiter_rc, 0);
    cr_assert_eq(st.zero_over_rc, -1);
    cr_assert_eq(st.zero_over_err, EOVERFLOW);
    cr_assert_eq(st.plain_rc, 0);
}

/* The count of a plain semaphore stops at UINT_MAX instead of wrapping. */
static void *max_main(void *arg)
{
    int *rc = arg;
    co_sem_t *sem = co_sem_new(UINT_MAX - 1);
    if (!sem)
        return NULL;
    rc[0] = co_sem_release(sem);
    errno = 0;
    rc[1] = co_sem_release(sem);
    rc[2] = errno;
    rc[3] = co_sem_acquire(sem, co_now() - 1); /* permits are still there */
    co_sem_free(sem);
    return NULL;
}

Test(sem, a_release_at_uint_max_fails_with_eoverflow)
{
    int rc[4] = {-2, -2, 0, -2};
    run(max_main, rc);
    cr_assert_eq(rc[0], 0);
    cr_assert_eq(rc[1], -1);
    cr_assert_eq(rc[2], EOVERFLOW);
    cr_assert_eq(rc[3], 0);
}
