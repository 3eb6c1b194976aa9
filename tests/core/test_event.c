/*
 * test_event.c - co_event_t: a flag coroutines wait for.
 *
 * Bodies run inside co_run() and record what they saw; the assertions run
 * after co_run() returned. Nothing asserts on elapsed time.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "coserve.h"
#include "util.h"

/* ---- set / clear / is_set ---------------------------------------------- */

struct flag_st {
    int made;
    int fresh, after_set, after_set_twice, after_clear, after_clear_twice;
};

static void *flag_main(void *arg)
{
    struct flag_st *st = arg;
    co_event_t *ev = co_event_new();
    if (!ev)
        return NULL;
    st->made = 1;
    st->fresh = co_event_is_set(ev);
    co_event_set(ev);
    st->after_set = co_event_is_set(ev);
    co_event_set(ev);
    st->after_set_twice = co_event_is_set(ev);
    co_event_clear(ev);
    st->after_clear = co_event_is_set(ev);
    co_event_clear(ev);
    st->after_clear_twice = co_event_is_set(ev);
    co_event_free(ev);
    return NULL;
}

Test(event, set_clear_and_is_set)
{
    struct flag_st st = {0, -1, 0, 0, -1, -1};
    run(flag_main, &st);
    cr_assert(st.made, "co_event_new failed");
    cr_assert_eq(st.fresh, 0, "a new event is set");
    cr_assert_neq(st.after_set, 0);
    cr_assert_neq(st.after_set_twice, 0);
    cr_assert_eq(st.after_clear, 0);
    cr_assert_eq(st.after_clear_twice, 0);
}

/* ---- wait when already set ---------------------------------------------- */

struct ready_st {
    int rc_none, rc_past, err_past;
    int rc_again;
    int still_set;
};

static void *ready_main(void *arg)
{
    struct ready_st *st = arg;
    co_event_t *ev = co_event_new();
    if (!ev)
        return NULL;
    co_event_set(ev);
    st->rc_none = co_event_wait(ev, -1);
    errno = 0;
    /* already set: returns 0 even though the deadline is long gone */
    st->rc_past = co_event_wait(ev, co_now() - 1000);
    st->err_past = errno;
    st->rc_again = co_event_wait(ev, co_deadline(10));
    st->still_set = co_event_is_set(ev); /* waiting does not consume it */
    co_event_free(ev);
    return NULL;
}

Test(event, wait_returns_at_once_when_set)
{
    struct ready_st st = {-2, -2, 0, -2, 0};
    run(ready_main, &st);
    cr_assert_eq(st.rc_none, 0);
    cr_assert_eq(st.rc_past, 0,
                 "wait on a set event with a past deadline: "
                 "errno %s",
                 strerror(st.err_past));
    cr_assert_eq(st.rc_again, 0);
    cr_assert_neq(st.still_set, 0);
}

/* ---- set wakes every waiter -------------------------------------------- */

#define WAITERS 5

struct all_st {
    co_event_t *ev;
    int rc[WAITERS], err[WAITERS];
    int woken;
    int woken_before_set;
    int order[WAITERS];
    int join_rc;
    int set_after;
};

struct waiter_arg {
    struct all_st *st;
    int i;
};

static void *waiter(void *arg)
{
    struct waiter_arg *a = arg;
    errno = 0;
    a->st->rc[a->i] = co_event_wait(a->st->ev, co_deadline(SAFETY_MS));
    a->st->err[a->i] = errno;
    a->st->order[a->st->woken++] = a->i;
    return NULL;
}

static void *all_main(void *arg)
{
    struct all_st *st = arg;
    struct waiter_arg args[WAITERS];
    co_t *cos[WAITERS];
    st->ev = co_event_new();
    if (!st->ev)
        return NULL;
    for (int i = 0; i < WAITERS; i++) {
        args[i] = (struct waiter_arg){st, i};
        cos[i] = co_spawn(waiter, &args[i]);
    }
    for (int i = 0; i < 3; i++)
        co_yield_now(); /* all of them wait now */
    st->woken_before_set = st->woken;
    co_event_set(st->ev);
    st->join_rc = co_join_all(cos, WAITERS, co_deadline(SAFETY_MS));
    st->set_after = co_event_is_set(st->ev);
    co_event_free(st->ev);
    return NULL;
}

Test(event, set_wakes_every_waiter)
{
    struct all_st st;
    memset(&st, 0, sizeof st);
    for (int i = 0; i < WAITERS; i++)
        st.rc[i] = -2;
    st.join_rc = -2;
    run(all_main, &st);
    cr_assert_eq(st.woken_before_set, 0, "a waiter woke before the set");
    cr_assert_eq(st.join_rc, 0);
    cr_assert_eq(st.woken, WAITERS);
    for (int i = 0; i < WAITERS; i++)
        cr_assert_eq(st.rc[i], 0, "waiter %d: rc %d errno %s", i, st.rc[i],
                     strerror(st.err[i]));
    cr_assert_neq(st.set_after, 0);
}

/* ---- set then clear before the waiters ran ------------------------------ */

static void *pulse_main(void *arg)
{
    struct all_st *st = arg;
    struct waiter_arg args[2];
    co_t *cos[2];
    st->ev = co_event_new();
    if (!st->ev)
        return NULL;
    for (int i = 0; i < 2; i++) {
        args[i] = (struct waiter_arg){st, i};
        cos[i] = co_spawn(waiter, &args[i]);
    }
    co_yield_now();
    /* the set woke them: a clear before they run does not put them back */
    co_event_set(st->ev);
    co_event_clear(st->ev);
    st->join_rc = co_join_all(cos, 2, co_deadline(SAFETY_MS));
    co_event_free(st->ev);
    return NULL;
}

Test(event, waiters_woken_by_a_set_stay_woken_after_a_clear)
{
    struct all_st st;
    memset(&st, 0, sizeof st);
    st.rc[0] = st.rc[1] = -2;
    st.join_rc = -2;
    run(pulse_main, &st);
    cr_assert_eq(st.join_rc, 0);
    cr_assert_eq(st.woken, 2);
    cr_assert_eq(st.rc[0], 0, "errno %s", strerror(st.err[0]));
    cr_assert_eq(st.rc[1], 0, "errno %s", strerror(st.err[1]));
}

/* ---- timeout ------------------------------------------------------------ */

struct to_st {
    int rc, err;
    int rc_past, err_past;
    int rc_cleared, err_cleared;
    int later_rc[2];
    int join_rc;
};

static void *timeout_main(void *arg)
{
    struct to_st *st = arg;
    co_event_t *ev = co_event_new();
    if (!ev)
        return NULL;
    errno = 0;
    st->rc = co_event_wait(ev, co_deadline(20));
    st->err = errno;
    errno = 0;
    st->rc_past = co_event_wait(ev, co_now() - 1000);
    st->err_past = errno;
    co_event_set(ev);
    co_event_clear(ev);
    errno = 0;
    st->rc_cleared = co_event_wait(ev, co_deadline(10));
    st->err_cleared = errno;

    /* the timed-out waits left nothing behind: a real waiter still works */
    struct all_st all;
    memset(&all, 0, sizeof all);
    all.ev = ev;
    all.rc[0] = -2;
    struct waiter_arg wa = {&all, 0};
    co_t *co = co_spawn(waiter, &wa);
    if (co) {
        co_yield_now();
        co_event_set(ev);
        st->join_rc = co_join(co, NULL, co_deadline(SAFETY_MS));
        st->later_rc[0] = all.rc[0];
        st->later_rc[1] = all.woken;
    }
    co_event_free(ev);
    return NULL;
}

Test(event, wait_times_out_with_etimedout)
{
    struct to_st st;
    memset(&st, 0, sizeof st);
    st.rc = st.rc_past = st.rc_cleared = st.join_rc = -2;
    st.later_rc[0] = -2;
    run(timeout_main, &st);
    cr_assert_eq(st.rc, -1);
    cr_assert_eq(st.err, ETIMEDOUT, "errno %s", strerror(st.err));
    cr_assert_eq(st.rc_past, -1);
    cr_assert_eq(st.err_past, ETIMEDOUT, "errno %s", strerror(st.err_past));
    cr_assert_eq(st.rc_cleared, -1);
    cr_assert_eq(st.err_cleared, ETIMEDOUT, "errno %s",
                 strerror(st.err_cleared));
    cr_assert_eq(st.join_rc, 0);
    cr_assert_eq(st.later_rc[0], 0);
    cr_assert_eq(st.later_rc[1], 1);
}

/* ---- cancel ------------------------------------------------------------- */

struct cancel_st {
    co_event_t *ev;
    int rc, err;
    int join_rc;
    int other_rc, other_err;
};

static void *cancelled_waiter(void *arg)
{
    struct cancel_st *st = arg;
    errno = 0;
    st->rc = co_event_wait(st->ev, co_deadline(LONG_MS));
    st->err = errno;
    return NULL;
}

static void *other_waiter(void *arg)
{
    struct cancel_st *st = arg;
    errno = 0;
    st->other_rc = co_event_wait(st->ev, co_deadline(SAFETY_MS));
    st->other_err = errno;
    return NULL;
}

static void *cancel_main(void *arg)
{
    struct cancel_st *st = arg;
    st->ev = co_event_new();
    if (!st->ev)
        return NULL;
    co_t *co = co_spawn(cancelled_waiter, st);
    co_t *other = co_spawn(other_waiter, st);
    if (!co || !other)
        return NULL;
    co_yield_now(); /* both wait */
    co_cancel(co);
    st->join_rc = co_join(co, NULL, co_deadline(SAFETY_MS));
    /* the other waiter is unaffected and still woken by a set */
    co_event_set(st->ev);
    co_join(other, NULL, co_deadline(SAFETY_MS));
    co_event_free(st->ev);
    return NULL;
}

Test(event, cancel_wakes_a_waiter_with_ecanceled)
{
    struct cancel_st st;
    memset(&st, 0, sizeof st);
    st.rc = st.join_rc = st.other_rc = -2;
    run(cancel_main, &st);
    cr_assert_eq(st.join_rc, 0);
    cr_assert_eq(st.rc, -1);
    cr_assert_eq(st.err, ECANCELED, "errno %s", strerror(st.err));
    cr_assert_eq(st.other_rc, 0, "other waiter: errno %s",
                 strerror(st.other_err));
}
