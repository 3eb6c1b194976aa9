/*
 * test_result.c - co_result_t: gevent's AsyncResult, a value or an error
 * set once for many waiters.
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

#define NWAIT 4

struct waiters_st {
    co_result_t *r;
    int rc[NWAIT], err[NWAIT];
    void *got[NWAIT];
    int order[NWAIT], n; /* the order waiters resumed in */
    int ready_before, successful_before;
    int set_rc;
    int second_rc, second_err;
    int error_after_rc, error_after_err;
    int ready, successful;
    const char *msg;
    int late_rc;
    void *late;
    int nowait_rc;
    void *nowait;
};

struct waiter_arg {
    struct waiters_st *st;
    int id;
};

static void *result_waiter(void *arg)
{
    struct waiter_arg *a = arg;
    struct waiters_st *st = a->st;
    errno = 0;
    st->rc[a->id] =
        co_result_get(st->r, &st->got[a->id], co_deadline(SAFETY_MS));
    st->err[a->id] = errno;
    st->order[st->n++] = a->id;
    return NULL;
}

static int value_of_all;

static void *value_main(void *arg)
{
    struct waiters_st *st = arg;
    if (!(st->r = co_result_new()))
        return NULL;
    struct waiter_arg args[NWAIT];
    co_t *cos[NWAIT];
    for (int i = 0; i < NWAIT; i++) {
        args[i] = (struct waiter_arg){st, i};
        cos[i] = co_spawn(result_waiter, &args[i]);
    }
    co_yield_now(); /* every waiter waits, in spawn order */
    st->ready_before = co_result_ready(st->r);
    st->successful_before = co_result_successful(st->r);
    st->set_rc = co_result_set(st->r, &value_of_all);
    errno = 0;
    st->second_rc = co_result_set(st->r, NULL);
    st->second_err = errno;
    errno = 0;
    st->error_after_rc = co_result_set_error(st->r, EIO, "late");
    st->error_after_err = errno;
    st->ready = co_result_ready(st->r);
    st->successful = co_result_successful(st->r);
    st->msg = co_result_message(st->r);
    co_join_all(cos, NWAIT, co_deadline(SAFETY_MS));
    /* a get after the set returns at once */
    st->late_rc = co_result_get(st->r, &st->late, co_now() - 1);
    st->nowait_rc = co_result_get_nowait(st->r, &st->nowait);
    co_result_free(st->r);
    return NULL;
}

Test(result, a_value_reaches_every_waiter_in_the_order_they_came)
{
    struct waiters_st st;
    memset(&st, 0, sizeof st);
    st.set_rc = st.late_rc = st.nowait_rc = -2;
    run(value_main, &st);
    cr_assert_not(st.ready_before);
    cr_assert_not(st.successful_before);
    cr_assert_eq(st.set_rc, 0);
    for (int i = 0; i < NWAIT; i++) {
        cr_assert_eq(st.rc[i], 0, "waiter %d: errno %s", i,
                     strerror(st.err[i]));
        cr_assert_eq(st.got[i], &value_of_all, "waiter %d", i);
        cr_assert_eq(st.order[i], i, "resumed %d-th: waiter %d", i,
                     st.order[i]);
    }
    cr_assert_eq(st.second_rc, -1, "a second set succeeded");
    cr_assert_eq(st.second_err, EALREADY, "errno %s", strerror(st.second_err));
    cr_assert_eq(st.error_after_rc, -1, "an error after a value succeeded");
    cr_assert_eq(st.error_after_err, EALREADY);
    cr_assert(st.ready);
    cr_assert(st.successful);
    cr_assert_null(st.msg);
    cr_assert_eq(st.late_rc, 0);
    cr_assert_eq(st.late, &value_of_all);
    cr_assert_eq(st.nowait_rc, 0);
    cr_assert_eq(st.nowait, &value_of_all);
}

/* ---- errors ----------------------------------------------------------- */

struct error_st {
    co_result_t *r;
    int rc[NWAIT], err[NWAIT];
    void *got[NWAIT];
    int set_rc, second_rc, second_err;
    int bad_rc, bad_err;
    int ready, successful;
    char msg[200];
    int nowait_rc, nowait_err;
    int late_rc, late_err;
    int empty_msg_null;
};

struct error_arg {
    struct error_st *st;
    int id;
};

static void *error_waiter(void *arg)
{
    struct error_arg *a = arg;
    a->st->got[a->id] = a->st; /* must stay untouched */
    errno = 0;
    a->st->rc[a->id] =
        co_result_get(a->st->r, &a->st->got[a->id], co_deadline(SAFETY_MS));
    a->st->err[a->id] = errno;
    return NULL;
}

static void *error_main(void *arg)
{
    struct error_st *st = arg;
    if (!(st->r = co_result_new()))
        return NULL;
    errno = 0;
    st->bad_rc = co_result_set_error(st->r, 0, "no error");
    st->bad_err = errno;
    struct error_arg args[NWAIT];
    co_t *cos[NWAIT];
    for (int i = 0; i < NWAIT; i++) {
        args[i] = (struct error_arg){st, i};
        cos[i] = co_spawn(error_waiter, &args[i]);
    }
    co_yield_now();
    char longmsg[300];
    memset(longmsg, 'x', sizeof longmsg - 1);
    longmsg[sizeof longmsg - 1] = '\0';
    memcpy(longmsg, "disk full", 9);
    st->set_rc = co_result_set_error(st->r, ENOSPC, longmsg);
    errno = 0;
    st->second_rc = co_result_set(st->r, NULL);
    st->second_err = errno;
    st->ready = co_result_ready(st->r);
    st->successful = co_result_successful(st->r);
    const char *m = co_result_message(st->r);
    if (m)
        strncpy(st->msg, m, sizeof st->msg - 1);
    co_join_all(cos, NWAIT, co_deadline(SAFETY_MS));
    errno = 0;
    st->late_rc = co_result_get(st->r, NULL, -1);
    st->late_err = errno;
    errno = 0;
    st->nowait_rc = co_result_get_nowait(st->r, NULL);
    st->nowait_err = errno;
    co_result_free(st->r);

    co_result_t *r2 = co_result_new(); /* an error without a message */
    if (r2) {
        co_result_set_error(r2, EPROTO, NULL);
        st->empty_msg_null = co_result_message(r2) == NULL;
        co_result_free(r2);
    }
    return NULL;
}

Test(result, an_error_reaches_every_waiter_with_its_errno_and_message)
{
    struct error_st st;
    memset(&st, 0, sizeof st);
    st.set_rc = st.late_rc = st.nowait_rc = -2;
    run(error_main, &st);
    cr_assert_eq(st.bad_rc, -1, "an error of 0 was stored");
    cr_assert_eq(st.bad_err, EINVAL);
    cr_assert_eq(st.set_rc, 0);
    for (int i = 0; i < NWAIT; i++) {
        cr_assert_eq(st.rc[i], -1, "waiter %d", i);
        cr_assert_eq(st.err[i], ENOSPC, "waiter %d: errno %s", i,
                     strerror(st.err[i]));
        cr_assert_eq(st.got[i], (void *)&st, "waiter %d's value was written",
                     i);
    }
    cr_assert_eq(st.second_rc, -1);
    cr_assert_eq(st.second_err, EALREADY);
    cr_assert(st.ready);
    cr_assert_not(st.successful);
    cr_assert_eq(strncmp(st.msg, "disk full", 9), 0, "message \"%s\"", st.msg);
    cr_assert_eq(strlen(st.msg), 127, "message length %zu", strlen(st.msg));
    cr_assert_eq(st.late_rc, -1);
    cr_assert_eq(st.late_err, ENOSPC);
    cr_assert_eq(st.nowait_rc, -1);
    cr_assert_eq(st.nowait_err, ENOSPC);
    cr_assert(st.empty_msg_null);
}

/* ---- waits that end before the result -------------------------------- */

struct wait_st {
    co_result_t *r;
    int to_rc, to_err, to_ready;
    int nowait_rc, nowait_err;
    int cancel_rc, cancel_err;
    int after_rc;
    void *after;
};

static void *cancelled_getter(void *arg)
{
    struct wait_st *st = arg;
    errno = 0;
    st->cancel_rc = co_result_get(st->r, NULL, co_deadline(LONG_MS));
    st->cancel_err = errno;
    return NULL;
}

static int after_value;

static void *wait_main(void *arg)
{
    struct wait_st *st = arg;
    if (!(st->r = co_result_new()))
        return NULL;
    errno = 0;
    st->to_rc = co_result_get(st->r, NULL, co_deadline(10));
    st->to_err = errno;
    st->to_ready = co_result_ready(st->r);
    errno = 0;
    st->nowait_rc = co_result_get_nowait(st->r, NULL);
    st->nowait_err = errno;
    co_t *co = co_spawn(cancelled_getter, st);
    co_yield_now();
    co_cancel(co);
    co_join(co, NULL, co_deadline(SAFETY_MS));
    /* the result is still settable after waits that gave up */
    co_result_set(st->r, &after_value);
    st->after_rc = co_result_get(st->r, &st->after, -1);
    co_result_free(st->r);
    return NULL;
}

Test(result, get_times_out_or_is_cancelled_while_empty)
{
    struct wait_st st;
    memset(&st, 0, sizeof st);
    st.after_rc = -2;
    run(wait_main, &st);
    cr_assert_eq(st.to_rc, -1);
    cr_assert_eq(st.to_err, ETIMEDOUT, "errno %s", strerror(st.to_err));
    cr_assert_not(st.to_ready);
    cr_assert_eq(st.nowait_rc, -1);
    cr_assert_eq(st.nowait_err, EAGAIN);
    cr_assert_eq(st.cancel_rc, -1);
    cr_assert_eq(st.cancel_err, ECANCELED, "errno %s", strerror(st.cancel_err));
    cr_assert_eq(st.after_rc, 0);
    cr_assert_eq(st.after, &after_value);
}

/* ---- the setter frees at once ----------------------------------------- */

struct free_st {
    int rc[NWAIT];
    void *got[NWAIT];
};

struct free_arg {
    struct free_st *st;
    co_result_t *r;
    int id;
};

static void *free_waiter(void *arg)
{
    struct free_arg *a = arg;
    a->st->rc[a->id] =
        co_result_get(a->r, &a->st->got[a->id], co_deadline(SAFETY_MS));
    return NULL;
}

static int freed_value;

static void *free_main(void *arg)
{
    struct free_st *st = arg;
    co_result_t *r = co_result_new();
    if (!r)
        return NULL;
    struct free_arg args[NWAIT];
    co_t *cos[NWAIT];
    for (int i = 0; i < NWAIT; i++) {
        args[i] = (struct free_arg){st, r, i};
        cos[i] = co_spawn(free_waiter, &args[i]);
    }
    co_yield_now();
    co_result_set(r, &freed_value);
    co_result_free(r); /* nobody waits any more: the waiters got the value */
    co_join_all(cos, NWAIT, co_deadline(SAFETY_MS));
    return NULL;
}

/* Under ASan this also proves no waiter reads the freed result. */
Test(result, the_setter_may_free_it_before_the_waiters_run)
{
    struct free_st st;
    memset(&st, 0, sizeof st);
    run(free_main, &st);
    for (int i = 0; i < NWAIT; i++) {
        cr_assert_eq(st.rc[i], 0, "waiter %d", i);
        cr_assert_eq(st.got[i], &freed_value, "waiter %d", i);
    }
}

/* ---- misuse ------------------------------------------------------------ */

static void *abort_free_main(void *arg)
{
    (void)arg;
    static struct wait_st st;
    co_result_t *r = st.r = co_result_new();
    co_t *co = co_spawn(cancelled_getter, &st);
    co_yield_now();
    co_result_free(r); /* it waits: a bug */
    co_cancel(co);
    return NULL;
}

Test(result, freeing_it_under_a_waiter_aborts, .signal = SIGABRT)
{
    run(abort_free_main, NULL);
}
