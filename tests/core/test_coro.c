/*
 * test_coro.c - coroutines: spawn, join, detach, cancel, names, scheduling
 * order, sleeping, structured concurrency, stack pooling, and the two crash
 * reports (stack overflow, cooperative call off the hub thread).
 *
 * Bodies run inside co_run(); they record what they saw into plain variables
 * and the assertions run after co_run() returned, on the thread's own stack.
 * Nothing asserts on elapsed time: only on order and on errno values.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "coserve.h"

#define LONG_MS 10000  /* a wait that only a cancel should end */
#define SAFETY_MS 5000 /* a deadline that only a bug should reach */

/* Runs fn(arg) as a hub's main coroutine and returns its result. */
static void *run(co_fn fn, void *arg)
{
    void *result = (void *)(intptr_t)-12345;
    errno = 0;
    int rc = co_run(fn, arg, &result);
    cr_assert_eq(rc, 0, "co_run failed: %s", strerror(errno));
    return result;
}

#define IPTR(i) ((void *)(intptr_t)(i))
#define PINT(p) ((int)(intptr_t)(p))

/* ---- spawn / join ------------------------------------------------------ */

static void *double_it(void *arg)
{
    return IPTR(PINT(arg) * 2);
}

static void *main_returns_arg(void *arg)
{
    return arg;
}

Test(coro, co_run_hands_back_the_main_result)
{
    cr_assert_eq(PINT(run(main_returns_arg, IPTR(77))), 77);
    /* and a NULL result pointer is allowed */
    cr_assert_eq(co_run(main_returns_arg, NULL, NULL), 0);
}

struct join_st {
    int rc, err;
    void *result;
};

static void *join_main(void *arg)
{
    struct join_st *st = arg;
    co_t *co = co_spawn(double_it, IPTR(21));
    if (!co)
        return NULL;
    errno = 0;
    st->rc = co_join(co, &st->result, co_deadline(SAFETY_MS));
    st->err = errno;
    return NULL;
}

Test(coro, join_passes_the_result_back)
{
    struct join_st st = {-2, 0, NULL};
    run(join_main, &st);
    cr_assert_eq(st.rc, 0, "co_join: rc %d errno %s", st.rc, strerror(st.err));
    cr_assert_eq(PINT(st.result), 42);
}

static void *join_null_main(void *arg)
{
    int *rc = arg;
    co_t *co = co_spawn(double_it, IPTR(1));
    *rc = co ? co_join(co, NULL, -1) : -2;
    return NULL;
}

Test(coro, join_accepts_a_null_result_pointer)
{
    int rc = -2;
    run(join_null_main, &rc);
    cr_assert_eq(rc, 0);
}

/* ---- join_all ---------------------------------------------------------- */

struct ja_st {
    int ran[5];
    int rc, err;
    int all_null;
};

struct ja_arg {
    struct ja_st *st;
    int i;
};

static void *ja_child(void *arg)
{
    struct ja_arg *a = arg;
    for (int k = 0; k < a->i; k++) /* finish in a different order */
        co_yield_now();
    a->st->ran[a->i]++;
    return NULL;
}

static void *join_all_main(void *arg)
{
    struct ja_st *st = arg;
    struct ja_arg args[5];
    co_t *cos[5];
    for (int i = 4; i >= 0; i--) {
        args[i] = (struct ja_arg){st, i};
        cos[i] = co_spawn(ja_child, &args[i]);
    }
    errno = 0;
    st->rc = co_join_all(cos, 5, co_deadline(SAFETY_MS));
    st->err = errno;
    st->all_null = 1;
    for (int i = 0; i < 5; i++)
        if (cos[i])
            st->all_null = 0;
    return NULL;
}

Test(coro, join_all_joins_every_coroutine_and_clears_the_slots)
{
    struct ja_st st = {{0}, -2, 0, 0};
    run(join_all_main, &st);
    cr_assert_eq(st.rc, 0, "co_join_all: errno %s", strerror(st.err));
    for (int i = 0; i < 5; i++)
        cr_assert_eq(st.ran[i], 1, "child %d ran %d times", i, st.ran[i]);
    cr_assert(st.all_null, "joined slots were not set to NULL");
}

struct jat_st {
    int rc1, err1, rc2, err2;
    int fast_null, slow_null_after_timeout, all_null;
    int slow_rc, slow_err;
};

static void *quick(void *arg)
{
    (void)arg;
    return NULL;
}

static void *sleep_long_record(void *arg)
{
    int *rec = arg; /* rec[0] = rc, rec[1] = errno */
    errno = 0;
    rec[0] = co_sleep(co_deadline(LONG_MS));
    rec[1] = errno;
    return NULL;
}

static void *join_all_timeout_main(void *arg)
{
    struct jat_st *st = arg;
    int rec[2] = {-2, 0};
    co_t *cos[3] = {co_spawn(quick, NULL), NULL,
                    co_spawn(sleep_long_record, rec)};
    errno = 0;
    st->rc1 = co_join_all(cos, 3, co_deadline(20));
    st->err1 = errno;
    st->fast_null = cos[0] == NULL;
    st->slow_null_after_timeout = cos[2] == NULL;
    if (cos[2])
        co_cancel(cos[2]);
    errno = 0;
    st->rc2 = co_join_all(cos, 3, co_deadline(SAFETY_MS));
    st->err2 = errno;
    st->all_null = !cos[0] && !cos[1] && !cos[2];
    st->slow_rc = rec[0];
    st->slow_err = rec[1];
    return NULL;
}

Test(coro, join_all_times_out_and_can_be_repeated)
{
    struct jat_st st = {-2, 0, -2, 0, 0, 1, 0, 0, 0};
    run(join_all_timeout_main, &st);
    cr_assert_eq(st.rc1, -1);
    cr_assert_eq(st.err1, ETIMEDOUT, "errno %s", strerror(st.err1));
    cr_assert(st.fast_null, "the finished coroutine was not joined");
    cr_assert_not(st.slow_null_after_timeout,
                  "the still running coroutine was cleared");
    cr_assert_eq(st.rc2, 0, "second co_join_all: errno %s", strerror(st.err2));
    cr_assert(st.all_null);
    cr_assert_eq(st.slow_rc, -1);
    cr_assert_eq(st.slow_err, ECANCELED);
}

/* ---- detach ------------------------------------------------------------ */

static void *detached_child(void *arg)
{
    int *done = arg;
    for (int i = 0; i < 3; i++)
        co_yield_now();
    *done = 1;
    return IPTR(1);
}

static void *detach_main(void *arg)
{
    int *done = arg;
    co_t *co = co_spawn(detached_child, done);
    if (!co)
        return NULL;
    co_detach(co);
    for (int i = 0; i < 100 && !*done; i++)
        co_yield_now();
    return NULL;
}

Test(coro, detached_coroutine_runs_to_its_end_and_frees_itself)
{
    int done = 0;
    run(detach_main, &done); /* ASan's leak check covers "frees itself" */
    cr_assert_eq(done, 1);
}

struct dl_st {
    int rec[2];
    int finished;
};

static void *detached_sleeper(void *arg)
{
    struct dl_st *st = arg;
    errno = 0;
    st->rec[0] = co_sleep(co_deadline(LONG_MS));
    st->rec[1] = errno;
    st->finished = 1;
    return NULL;
}

static void *detach_and_leave_main(void *arg)
{
    co_t *co = co_spawn(detached_sleeper, arg);
    if (co)
        co_detach(co);
    co_yield_now(); /* let it start sleeping */
    return NULL;
}

Test(coro, co_run_cancels_and_waits_for_detached_coroutines_at_the_end)
{
    struct dl_st st = {{-2, 0}, 0};
    run(detach_and_leave_main, &st);
    cr_assert_eq(st.finished, 1, "co_run returned before the detached one");
    cr_assert_eq(st.rec[0], -1);
    cr_assert_eq(st.rec[1], ECANCELED, "errno %s", strerror(st.rec[1]));
}

/* ---- cancel ------------------------------------------------------------ */

struct cancel_st {
    int started_cancelled;
    int sleep_rc, sleep_err;
    int sleep2_rc, sleep2_err;
    int yield_rc, yield_err;
    int cancelled_flag;
    int join_rc, join_err;
    void *result;
};

static void *cancellable(void *arg)
{
    struct cancel_st *st = arg;
    st->started_cancelled = co_cancelled();
    errno = 0;
    st->sleep_rc = co_sleep(co_deadline(LONG_MS));
    st->sleep_err = errno;
    errno = 0;
    st->sleep2_rc = co_sleep(co_deadline(1));
    st->sleep2_err = errno;
    errno = 0;
    st->yield_rc = co_yield_now();
    st->yield_err = errno;
    st->cancelled_flag = co_cancelled();
    return IPTR(99);
}

static void *cancel_main(void *arg)
{
    struct cancel_st *st = arg;
    co_t *co = co_spawn(cancellable, st);
    if (!co)
        return NULL;
    co_yield_now(); /* it starts and goes to sleep */
    co_cancel(co);
    errno = 0;
    st->join_rc = co_join(co, &st->result, co_deadline(SAFETY_MS));
    st->join_err = errno;
    return NULL;
}

Test(coro, cancel_wakes_sleep_and_fails_every_later_wait)
{
    struct cancel_st st;
    memset(&st, 0, sizeof st);
    st.sleep_rc = st.sleep2_rc = st.yield_rc = st.join_rc = -2;
    run(cancel_main, &st);
    cr_assert_eq(st.started_cancelled, 0);
    cr_assert_eq(st.join_rc, 0, "join: errno %s", strerror(st.join_err));
    cr_assert_eq(PINT(st.result), 99);
    cr_assert_eq(st.sleep_rc, -1);
    cr_assert_eq(st.sleep_err, ECANCELED, "sleep errno %s",
                 strerror(st.sleep_err));
    cr_assert_eq(st.sleep2_rc, -1);
    cr_assert_eq(st.sleep2_err, ECANCELED, "second sleep errno %s",
                 strerror(st.sleep2_err));
    cr_assert_eq(st.yield_rc, -1);
    cr_assert_eq(st.yield_err, ECANCELED, "yield errno %s",
                 strerror(st.yield_err));
    cr_assert_neq(st.cancelled_flag, 0);
}

static void *cancel_before_start_main(void *arg)
{
    struct cancel_st *st = arg;
    co_t *co = co_spawn(cancellable, st);
    if (!co)
        return NULL;
    co_cancel(co); /* before it ever ran */
    errno = 0;
    st->join_rc = co_join(co, &st->result, co_deadline(SAFETY_MS));
    st->join_err = errno;
    return NULL;
}

Test(coro, coroutine_cancelled_before_it_starts_still_runs_and_sees_it)
{
    struct cancel_st st;
    memset(&st, 0, sizeof st);
    st.sleep_rc = st.join_rc = -2;
    run(cancel_before_start_main, &st);
    cr_assert_eq(st.join_rc, 0, "join: errno %s", strerror(st.join_err));
    cr_assert_eq(PINT(st.result), 99);
    cr_assert_neq(st.started_cancelled, 0);
    cr_assert_eq(st.sleep_rc, -1);
    cr_assert_eq(st.sleep_err, ECANCELED);
}

struct cf_st {
    int ran;
    int join_rc, join_err;
    void *result;
};

static void *finish_now(void *arg)
{
    struct cf_st *st = arg;
    st->ran = 1;
    return IPTR(5);
}

static void *cancel_finished_main(void *arg)
{
    struct cf_st *st = arg;
    co_t *co = co_spawn(finish_now, st);
    if (!co)
        return NULL;
    for (int i = 0; i < 3; i++)
        co_yield_now(); /* it runs to its end */
    co_cancel(co);      /* harmless */
    co_cancel(co);
    errno = 0;
    st->join_rc = co_join(co, &st->result, co_deadline(SAFETY_MS));
    st->join_err = errno;
    return NULL;
}

Test(coro, cancelling_a_finished_coroutine_is_harmless)
{
    struct cf_st st = {0, -2, 0, NULL};
    run(cancel_finished_main, &st);
    cr_assert_eq(st.ran, 1);
    cr_assert_eq(st.join_rc, 0, "join: errno %s", strerror(st.join_err));
    cr_assert_eq(PINT(st.result), 5);
}

static void *sleep_forever_record(void *arg)
{
    int *rec = arg;
    errno = 0;
    rec[0] = co_sleep(-1);
    rec[1] = errno;
    return NULL;
}

static void *sleep_forever_main(void *arg)
{
    int *rec = arg;
    co_t *co = co_spawn(sleep_forever_record, rec);
    if (!co)
        return NULL;
    for (int i = 0; i < 3; i++)
        co_yield_now();
    rec[2] = rec[0]; /* still -2: it has not woken */
    co_cancel(co);
    rec[3] = co_join(co, NULL, co_deadline(SAFETY_MS));
    return NULL;
}

Test(coro, sleep_without_deadline_lasts_until_cancelled)
{
    int rec[4] = {-2, 0, 0, -2};
    run(sleep_forever_main, rec);
    cr_assert_eq(rec[2], -2, "co_sleep(-1) returned before the cancel");
    cr_assert_eq(rec[3], 0);
    cr_assert_eq(rec[0], -1);
    cr_assert_eq(rec[1], ECANCELED);
}

/* ---- current / names --------------------------------------------------- */

struct name_st {
    int cur_not_null;
    char main_name[64];
    char child_default[64];
    int child_saw_itself;
    char child_named[64];
    char long_named[64];
    char self_named[64];
};

static void *name_child(void *arg)
{
    co_t **self = arg;
    *self = co_current();
    return NULL;
}

static void *name_main(void *arg)
{
    struct name_st *st = arg;
    co_t *me = co_current();
    st->cur_not_null = me != NULL;
    if (!me)
        return NULL;
    snprintf(st->main_name, sizeof st->main_name, "%s", co_name(me));

    co_t *seen = NULL;
    co_t *co = co_spawn(name_child, &seen);
    if (!co)
        return NULL;
    snprintf(st->child_default, sizeof st->child_default, "%s", co_name(co));
    co_set_name(co, "worker");
    snprintf(st->child_named, sizeof st->child_named, "%s", co_name(co));
    co_set_name(co, "0123456789abcdefghijklmnopqrstuvwxyz-40-bytes");
    snprintf(st->long_named, sizeof st->long_named, "%s", co_name(co));
    co_yield_now();
    st->child_saw_itself = seen == co;
    co_join(co, NULL, -1);

    co_set_name(me, "renamed-main");
    snprintf(st->self_named, sizeof st->self_named, "%s",
             co_name(co_current()));
    return NULL;
}

Test(coro, current_and_names)
{
    struct name_st st;
    memset(&st, 0, sizeof st);
    run(name_main, &st);
    cr_assert(st.cur_not_null, "co_current() is NULL in co_run's coroutine");
    cr_assert_str_eq(st.main_name, "main");
    cr_assert_eq(strncmp(st.child_default, "co-", 3), 0, "default name \"%s\"",
                 st.child_default);
    cr_assert(strlen(st.child_default) > 3);
    for (const char *p = st.child_default + 3; *p; p++)
        cr_assert(*p >= '0' && *p <= '9', "default name \"%s\"",
                  st.child_default);
    cr_assert_str_eq(st.child_named, "worker");
    cr_assert_str_eq(st.long_named, "0123456789abcdefghijklmnopqrstu");
    cr_assert(st.child_saw_itself, "co_current() in a child is not its handle");
    cr_assert_str_eq(st.self_named, "renamed-main");
}

struct names_st {
    char a[32], b[32];
};

static void *two_names_main(void *arg)
{
    struct names_st *st = arg;
    co_t *a = co_spawn(quick, NULL);
    co_t *b = co_spawn(quick, NULL);
    if (!a || !b)
        return NULL;
    snprintf(st->a, sizeof st->a, "%s", co_name(a));
    snprintf(st->b, sizeof st->b, "%s", co_name(b));
    co_join(a, NULL, -1);
    co_join(b, NULL, -1);
    return NULL;
}

Test(coro, default_names_differ)
{
    struct names_st st;
    memset(&st, 0, sizeof st);
    run(two_names_main, &st);
    cr_assert_str_neq(st.a, st.b);
}

/* ---- scheduling order -------------------------------------------------- */

struct rr_st {
    int log[64];
    int n;
};

struct rr_arg {
    struct rr_st *st;
    int id;
};

static void *rr_child(void *arg)
{
    struct rr_arg *a = arg;
    for (int i = 0; i < 4; i++) {
        if (a->st->n < 64)
            a->st->log[a->st->n++] = a->id;
        co_yield_now();
    }
    return NULL;
}

static void *rr_main(void *arg)
{
    struct rr_st *st = arg;
    struct rr_arg args[3];
    co_t *cos[3];
    for (int i = 0; i < 3; i++) {
        args[i] = (struct rr_arg){st, i};
        cos[i] = co_spawn(rr_child, &args[i]);
    }
    co_join_all(cos, 3, co_deadline(SAFETY_MS));
    return NULL;
}

Test(coro, yield_round_robins_between_ready_coroutines)
{
    struct rr_st st;
    memset(&st, 0, sizeof st);
    run(rr_main, &st);
    int want[12] = {0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2};
    cr_assert_eq(st.n, 12);
    for (int i = 0; i < 12; i++)
        cr_assert_eq(st.log[i], want[i], "step %d: got %d, want %d", i,
                     st.log[i], want[i]);
}

struct spawn_order_st {
    int log[8];
    int n;
};

static void *log_id(void *arg)
{
    struct rr_arg *a = arg;
    a->st->log[a->st->n++] = a->id;
    return NULL;
}

static void *spawn_order_main(void *arg)
{
    struct rr_st *st = arg;
    struct rr_arg args[3];
    co_t *cos[3];
    for (int i = 0; i < 3; i++) {
        args[i] = (struct rr_arg){st, i};
        cos[i] = co_spawn(log_id, &args[i]);
    }
    st->log[st->n++] = 100; /* nothing ran yet: spawn does not switch */
    co_yield_now();
    st->log[st->n++] = 101;
    co_join_all(cos, 3, co_deadline(SAFETY_MS));
    return NULL;
}

Test(coro, spawned_coroutines_start_in_order_when_the_parent_yields)
{
    struct rr_st st;
    memset(&st, 0, sizeof st);
    run(spawn_order_main, &st);
    int want[5] = {100, 0, 1, 2, 101};
    cr_assert_eq(st.n, 5);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(st.log[i], want[i], "step %d: got %d, want %d", i,
                     st.log[i], want[i]);
}

/* ---- sleep ------------------------------------------------------------- */

struct sleep_st {
    int64_t base;
    int order[3];
    int n;
    int rc[3];
};

struct sleep_arg {
    struct sleep_st *st;
    int ms, idx;
};

static void *sleeper(void *arg)
{
    struct sleep_arg *a = arg;
    a->st->rc[a->idx] = co_sleep(a->st->base + a->ms);
    a->st->order[a->st->n++] = a->ms;
    return NULL;
}

static void *sleep_order_main(void *arg)
{
    struct sleep_st *st = arg;
    static const int ms[3] = {30, 10, 20};
    struct sleep_arg args[3];
    co_t *cos[3];
    st->base = co_now();
    for (int i = 0; i < 3; i++) {
        args[i] = (struct sleep_arg){st, ms[i], i};
        cos[i] = co_spawn(sleeper, &args[i]);
    }
    co_join_all(cos, 3, co_deadline(SAFETY_MS));
    return NULL;
}

Test(coro, sleepers_wake_in_deadline_order)
{
    struct sleep_st st;
    memset(&st, 0, sizeof st);
    for (int i = 0; i < 3; i++)
        st.rc[i] = -2;
    run(sleep_order_main, &st);
    cr_assert_eq(st.n, 3);
    cr_assert_eq(st.order[0], 10);
    cr_assert_eq(st.order[1], 20);
    cr_assert_eq(st.order[2], 30);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(st.rc[i], 0);
}

struct early_st {
    int early, fails;
};

static void *sleep_deadline_main(void *arg)
{
    struct early_st *st = arg;
    for (int i = 0; i < 20; i++) {
        int64_t d = co_deadline(1 + i % 4);
        if (co_sleep(d) != 0)
            st->fails++;
        if (co_now() < d)
            st->early++;
    }
    /* a deadline already passed returns at once, with 0 */
    if (co_sleep(co_now() - 1000) != 0)
        st->fails++;
    return NULL;
}

Test(coro, sleep_never_returns_before_its_deadline)
{
    struct early_st st = {0, 0};
    run(sleep_deadline_main, &st);
    cr_assert_eq(st.fails, 0);
    cr_assert_eq(st.early, 0, "%d sleeps returned before the deadline",
                 st.early);
}

Test(coro, deadline_helpers)
{
    int64_t now = co_now();
    cr_assert(now >= 0);
    cr_assert_eq(co_deadline(-1), -1);
    cr_assert_eq(co_deadline(-50), -1);
    int64_t d = co_deadline(1000);
    cr_assert(d >= now + 1000);
    cr_assert(co_now() >= now, "co_now() went backwards");
}

/* ---- join: deadline, self ---------------------------------------------- */

struct jt_st {
    int rc1, err1;
    int rc2, err2;
    void *result;
    int child[2];
};

static void *sleep_then_return(void *arg)
{
    int *rec = arg;
    errno = 0;
    rec[0] = co_sleep(co_deadline(LONG_MS));
    rec[1] = errno;
    return IPTR(7);
}

static void *join_timeout_main(void *arg)
{
    struct jt_st *st = arg;
    co_t *co = co_spawn(sleep_then_return, st->child);
    if (!co)
        return NULL;
    errno = 0;
    st->rc1 = co_join(co, &st->result, co_deadline(20));
    st->err1 = errno;
    co_cancel(co); /* end its sleep */
    errno = 0;
    st->rc2 = co_join(co, &st->result, co_deadline(SAFETY_MS));
    st->err2 = errno;
    return NULL;
}

Test(coro, join_times_out_and_the_coroutine_stays_joinable)
{
    struct jt_st st = {-2, 0, -2, 0, NULL, {-2, 0}};
    run(join_timeout_main, &st);
    cr_assert_eq(st.rc1, -1);
    cr_assert_eq(st.err1, ETIMEDOUT, "errno %s", strerror(st.err1));
    cr_assert_eq(st.rc2, 0, "second join: errno %s", strerror(st.err2));
    cr_assert_eq(PINT(st.result), 7);
    cr_assert_eq(st.child[0], -1);
    cr_assert_eq(st.child[1], ECANCELED);
}

struct js_st {
    int main_rc, main_err;
    int child_rc, child_err;
};

static void *join_self_child(void *arg)
{
    struct js_st *st = arg;
    errno = 0;
    st->child_rc = co_join(co_current(), NULL, co_deadline(20));
    st->child_err = errno;
    return NULL;
}

static void *join_self_main(void *arg)
{
    struct js_st *st = arg;
    errno = 0;
    st->main_rc = co_join(co_current(), NULL, co_deadline(20));
    st->main_err = errno;
    co_t *co = co_spawn(join_self_child, st);
    if (co)
        co_join(co, NULL, co_deadline(SAFETY_MS));
    return NULL;
}

Test(coro, joining_oneself_fails_with_edeadlk)
{
    struct js_st st = {-2, 0, -2, 0};
    run(join_self_main, &st);
    cr_assert_eq(st.main_rc, -1);
    cr_assert_eq(st.main_err, EDEADLK, "main: errno %s", strerror(st.main_err));
    cr_assert_eq(st.child_rc, -1);
    cr_assert_eq(st.child_err, EDEADLK, "child: errno %s",
                 strerror(st.child_err));
}

struct jc_st {
    int rc, err;
    int child[2];
};

static void *join_cancelled_main(void *arg)
{
    struct jc_st *st = arg;
    co_t *co = co_spawn(sleep_then_return, st->child);
    if (!co)
        return NULL;
    co_cancel(co_current()); /* the joiner is cancelled, not the child */
    errno = 0;
    st->rc = co_join(co, NULL, co_deadline(SAFETY_MS));
    st->err = errno;
    /* main returns: the child is cancelled and joined by co_run */
    return NULL;
}

Test(coro, join_by_a_cancelled_coroutine_fails_with_ecanceled)
{
    struct jc_st st = {-2, 0, {-2, 0}};
    run(join_cancelled_main, &st);
    cr_assert_eq(st.rc, -1);
    cr_assert_eq(st.err, ECANCELED, "errno %s", strerror(st.err));
    cr_assert_eq(st.child[0], -1);
    cr_assert_eq(st.child[1], ECANCELED);
}

/* ---- structured concurrency -------------------------------------------- */

struct sc_st {
    int child_rc, child_err;
    int child_finished;
    int finished_when_parent_joined;
    int join_rc;
};

static void *sc_child(void *arg)
{
    struct sc_st *st = arg;
    errno = 0;
    st->child_rc = co_sleep(co_deadline(LONG_MS));
    st->child_err = errno;
    co_yield_now(); /* fails at once too, but must not break the teardown */
    st->child_finished = 1;
    return NULL;
}

static void *sc_parent(void *arg)
{
    co_spawn(sc_child, arg); /* neither joined nor detached */
    co_yield_now();
    return NULL;
}

static void *sc_main(void *arg)
{
    struct sc_st *st = arg;
    co_t *p = co_spawn(sc_parent, st);
    if (!p)
        return NULL;
    st->join_rc = co_join(p, NULL, co_deadline(SAFETY_MS));
    st->finished_when_parent_joined = st->child_finished;
    return NULL;
}

Test(coro, parent_returning_cancels_and_joins_its_children)
{
    struct sc_st st = {-2, 0, 0, 0, -2};
    run(sc_main, &st);
    cr_assert_eq(st.join_rc, 0);
    cr_assert_eq(st.finished_when_parent_joined, 1,
                 "the parent's join returned before its child finished");
    cr_assert_eq(st.child_rc, -1);
    cr_assert_eq(st.child_err, ECANCELED, "errno %s", strerror(st.child_err));
}

static void *sc_main_leaves(void *arg)
{
    co_spawn(sc_child, arg); /* main returns without joining */
    co_yield_now();
    return IPTR(3);
}

Test(coro, co_run_returns_only_after_main_s_children_finished)
{
    struct sc_st st = {-2, 0, 0, 0, -2};
    void *r = run(sc_main_leaves, &st);
    cr_assert_eq(PINT(r), 3);
    cr_assert_eq(st.child_finished, 1);
    cr_assert_eq(st.child_rc, -1);
    cr_assert_eq(st.child_err, ECANCELED, "errno %s", strerror(st.child_err));
}

struct gc_st {
    int rec[2];
    int finished;
};

static void *grandchild(void *arg)
{
    struct gc_st *st = arg;
    errno = 0;
    st->rec[0] = co_sleep(co_deadline(LONG_MS));
    st->rec[1] = errno;
    st->finished = 1;
    return NULL;
}

static void *middle(void *arg)
{
    co_spawn(grandchild, arg);
    /* sleeps until main returns and co_run cancels everyone */
    co_sleep(co_deadline(LONG_MS));
    return NULL;
}

static void *gc_main(void *arg)
{
    co_spawn(middle, arg);
    co_yield_now();
    co_yield_now();
    return NULL;
}

Test(coro, co_run_end_cancels_grandchildren_too)
{
    struct gc_st st = {{-2, 0}, 0};
    run(gc_main, &st);
    cr_assert_eq(st.finished, 1);
    cr_assert_eq(st.rec[0], -1);
    cr_assert_eq(st.rec[1], ECANCELED);
}

/* ---- co_run ------------------------------------------------------------ */

struct busy_st {
    int rc, err;
};

static void *nested_run_main(void *arg)
{
    struct busy_st *st = arg;
    errno = 0;
    st->rc = co_run(quick, NULL, NULL);
    st->err = errno;
    return NULL;
}

Test(coro, co_run_on_a_hub_thread_fails_with_ebusy)
{
    struct busy_st st = {-2, 0};
    run(nested_run_main, &st);
    cr_assert_eq(st.rc, -1);
    cr_assert_eq(st.err, EBUSY, "errno %s", strerror(st.err));
}

Test(coro, co_run_can_run_again_after_it_returned)
{
    for (int i = 0; i < 3; i++) {
        struct join_st st = {-2, 0, NULL};
        run(join_main, &st);
        cr_assert_eq(st.rc, 0);
        cr_assert_eq(PINT(st.result), 42);
    }
}

struct thr_arg {
    int rc;
    struct join_st st;
};

static void *thread_runs_hub(void *arg)
{
    struct thr_arg *t = arg;
    t->rc = co_run(join_main, &t->st, NULL);
    return NULL;
}

Test(coro, hubs_run_on_several_threads_at_once)
{
    pthread_t th[2];
    struct thr_arg args[2];
    for (int i = 0; i < 2; i++) {
        args[i] = (struct thr_arg){-2, {-2, 0, NULL}};
        cr_assert_eq(pthread_create(&th[i], NULL, thread_runs_hub, &args[i]),
                     0);
    }
    struct join_st st = {-2, 0, NULL};
    run(join_main, &st);
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(args[i].rc, 0);
        cr_assert_eq(args[i].st.rc, 0);
        cr_assert_eq(PINT(args[i].st.result), 42);
    }
    cr_assert_eq(st.rc, 0);
}

/* ---- many coroutines ---------------------------------------------------- */

#define MANY 100000
#define BATCH 1000

struct many_st {
    long ran;
    long long sum;
    int spawn_fail, join_fail;
};

static void *many_child(void *arg)
{
    struct many_st *st = *(struct many_st **)arg;
    st->ran++;
    co_yield_now();
    return arg;
}

struct many_slot {
    struct many_st *st;
};

static void *many_main(void *arg)
{
    struct many_st *st = arg;
    static struct many_slot slots[BATCH];
    static co_t *cos[BATCH];
    for (int b = 0; b < MANY / BATCH; b++) {
        for (int i = 0; i < BATCH; i++) {
            slots[i].st = st;
            cos[i] = co_spawn(many_child, &slots[i]);
            if (!cos[i])
                st->spawn_fail++;
        }
        for (int i = 0; i < BATCH; i++) {
            void *r = NULL;
            if (!cos[i])
                continue;
            if (co_join(cos[i], &r, co_deadline(SAFETY_MS)) != 0)
                st->join_fail++;
            else
                st->sum += (struct many_slot *)r - slots;
        }
    }
    return NULL;
}

Test(coro, a_hundred_thousand_coroutines_spawn_and_join)
{
    struct many_st st = {0, 0, 0, 0};
    run(many_main, &st);
    cr_assert_eq(st.spawn_fail, 0);
    cr_assert_eq(st.join_fail, 0);
    cr_assert_eq(st.ran, MANY);
    cr_assert_eq(st.sum, (long long)(MANY / BATCH) * BATCH * (BATCH - 1) / 2);
}

static void *all_at_once_child(void *arg)
{
    long *ran = arg;
    co_sleep(co_deadline(5)); /* everyone is alive at the same time */
    ++*ran;
    return NULL;
}

static void *all_at_once_main(void *arg)
{
    enum { N = 2000 };
    static co_t *cos[N];
    long *ran = arg;
    for (int i = 0; i < N; i++)
        cos[i] = co_spawn(all_at_once_child, ran);
    co_join_all(cos, N, co_deadline(SAFETY_MS));
    return NULL;
}

Test(coro, thousands_of_coroutines_alive_at_once)
{
    long ran = 0;
    run(all_at_once_main, &ran);
    cr_assert_eq(ran, 2000);
}

/* ---- crash reports (in a forked child) ---------------------------------- */

struct child_out {
    int status;
    char err[16384];
};

/* Runs body() in a forked child whose stderr goes into out->err; the child
 * exits 0 if body returns. */
static void run_in_child(void (*body)(void), struct child_out *out)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    cr_assert_neq(pid, -1, "fork: %s", strerror(errno));
    if (pid == 0) {
        struct rlimit nocore = {0, 0};
        setrlimit(RLIMIT_CORE, &nocore);
        signal(SIGABRT, SIG_DFL);
        dup2(p[1], 2);
        close(p[0]);
        close(p[1]);
        body();
        _exit(0);
    }
    close(p[1]);
    size_t len = 0;
    for (;;) {
        char scratch[4096];
        char *dst = scratch;
        size_t room = sizeof scratch;
        if (len < sizeof out->err - 1) {
            dst = out->err + len;
            room = sizeof out->err - 1 - len;
        }
        ssize_t n = read(p[0], dst, room);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (dst != scratch)
            len += (size_t)n;
    }
    out->err[len] = '\0';
    close(p[0]);
    while (waitpid(pid, &out->status, 0) < 0)
        cr_assert_eq(errno, EINTR, "waitpid: %s", strerror(errno));
}

static void assert_killed_by(const struct child_out *out, int sig)
{
    if (WIFSIGNALED(out->status))
        cr_assert_eq(WTERMSIG(out->status), sig,
                     "child died by signal %d (%s), want %d (%s); stderr:\n%s",
                     WTERMSIG(out->status), strsignal(WTERMSIG(out->status)),
                     sig, strsignal(sig), out->err);
    else
        cr_assert_fail("child exited with status %d, want signal %d (%s); "
                       "stderr:\n%s",
                       WEXITSTATUS(out->status), sig, strsignal(sig), out->err);
}

static volatile int never; /* always 0: keeps the recursion honest */

__attribute__((noinline)) static int recurse(int depth)
{
    volatile char frame[1024];
    /* touch every cache line, so no page of the frame is skipped over */
    for (size_t i = 0; i < sizeof frame; i += 64)
        frame[i] = (char)depth;
    if (never)
        return frame[depth % 1024];
    return recurse(depth + 1) + frame[depth % 1024];
}

static void *deep_recursion(void *arg)
{
    (void)arg;
    return IPTR(recurse(0));
}

static void *overflow_main(void *arg)
{
    (void)arg;
    co_t *co = co_spawn(deep_recursion, NULL);
    if (!co)
        return NULL;
    co_set_name(co, "deep-recursion");
    co_join(co, NULL, -1);
    return NULL;
}

static void overflow_body(void)
{
    co_run(overflow_main, NULL, NULL);
}

Test(coro, stack_overflow_is_reported_with_the_coroutine_name)
{
    struct child_out out;
    memset(&out, 0, sizeof out);
    run_in_child(overflow_body, &out);
    assert_killed_by(&out, SIGSEGV);
    cr_assert_not_null(strstr(out.err, "deep-recursion"),
                       "stderr does not name the coroutine:\n%s", out.err);
    cr_assert_not_null(strstr(out.err, "overflow"),
                       "stderr does not say \"overflow\":\n%s", out.err);
}

static void sleep_in_offload(void *arg)
{
    (void)arg;
    co_sleep(co_deadline(1)); /* a bug: aborts */
}

static void *offload_misuse_main(void *arg)
{
    (void)arg;
    co_offload(sleep_in_offload, NULL, NULL, -1);
    return NULL;
}

static void offload_misuse_body(void)
{
    co_run(offload_misuse_main, NULL, NULL);
}

Test(coro, cooperative_call_on_an_offload_thread_aborts_naming_the_call)
{
    struct child_out out;
    memset(&out, 0, sizeof out);
    run_in_child(offload_misuse_body, &out);
    assert_killed_by(&out, SIGABRT);
    cr_assert_not_null(strstr(out.err, "co_sleep"),
                       "stderr does not name the call:\n%s", out.err);
    cr_assert_not_null(strstr(out.err, "thread"),
                       "stderr does not mention the thread:\n%s", out.err);
}

static void *plain_thread_sleeps(void *arg)
{
    (void)arg;
    co_sleep(co_deadline(1)); /* a bug: aborts */
    return NULL;
}

static void plain_thread_body(void)
{
    pthread_t th;
    if (pthread_create(&th, NULL, plain_thread_sleeps, NULL) == 0)
        pthread_join(th, NULL);
}

Test(coro, cooperative_call_on_a_plain_thread_aborts_naming_the_call)
{
    struct child_out out;
    memset(&out, 0, sizeof out);
    run_in_child(plain_thread_body, &out);
    assert_killed_by(&out, SIGABRT);
    cr_assert_not_null(strstr(out.err, "co_sleep"),
                       "stderr does not name the call:\n%s", out.err);
    cr_assert_not_null(strstr(out.err, "thread"),
                       "stderr does not mention the thread:\n%s", out.err);
}
