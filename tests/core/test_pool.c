/*
 * test_pool.c - co_pool_t: spawn with a limit on how many run at once.
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

/* ---- construction -------------------------------------------------------- */

struct new_st {
    int zero_null, zero_err;
    int one_ok;
};

static void *new_main(void *arg)
{
    struct new_st *st = arg;
    errno = 0;
    co_pool_t *p = co_pool_new(0);
    st->zero_null = p == NULL;
    st->zero_err = errno;
    if (p)
        co_pool_free(p);
    p = co_pool_new(1);
    st->one_ok = p != NULL;
    if (p)
        co_pool_free(p); /* an idle pool frees at once */
    return NULL;
}

Test(pool, limit_zero_fails_with_einval)
{
    struct new_st st = {0, 0, 0};
    run(new_main, &st);
    cr_assert(st.zero_null, "co_pool_new(0) returned a pool");
    cr_assert_eq(st.zero_err, EINVAL, "errno %s", strerror(st.zero_err));
    cr_assert(st.one_ok, "co_pool_new(1) failed");
}

/* ---- the limit -------------------------------------------------------------
 */

#define TASKS 20
#define LIMIT 3

struct limit_st {
    int running, max_running;
    int done;
    int ran[TASKS];
    int spawn_rc[TASKS];
    int join_rc, join_err;
    int done_at_join;
};

struct task_arg {
    struct limit_st *st;
    int i;
};

static void *limited_task(void *arg)
{
    struct task_arg *a = arg;
    struct limit_st *st = a->st;
    st->running++;
    if (st->running > st->max_running)
        st->max_running = st->running;
    /* some waiting of both kinds while holding the slot */
    co_yield_now();
    co_sleep(co_deadline(1 + a->i % 3));
    co_yield_now();
    st->ran[a->i]++;
    st->running--;
    st->done++;
    return NULL;
}

static void *limit_main(void *arg)
{
    struct limit_st *st = arg;
    co_pool_t *pool = co_pool_new(LIMIT);
    if (!pool)
        return NULL;
    struct task_arg args[TASKS];
    for (int i = 0; i < TASKS; i++) {
        args[i] = (struct task_arg){st, i};
        st->spawn_rc[i] =
            co_pool_spawn(pool, limited_task, &args[i], co_deadline(SAFETY_MS));
    }
    errno = 0;
    st->join_rc = co_pool_join(pool, co_deadline(SAFETY_MS));
    st->join_err = errno;
    st->done_at_join = st->done;
    co_pool_free(pool);
    return NULL;
}

Test(pool, never_runs_more_than_its_limit_and_join_waits_for_all)
{
    struct limit_st st;
    memset(&st, 0, sizeof st);
    st.join_rc = -2;
    run(limit_main, &st);
    for (int i = 0; i < TASKS; i++) {
        cr_assert_eq(st.spawn_rc[i], 0, "spawn %d", i);
        cr_assert_eq(st.ran[i], 1, "task %d ran %d times", i, st.ran[i]);
    }
    cr_assert_eq(st.join_rc, 0, "co_pool_join: errno %s",
                 strerror(st.join_err));
    cr_assert_eq(st.done_at_join, TASKS,
                 "co_pool_join returned with %d of %d done", st.done_at_join,
                 TASKS);
    cr_assert(st.max_running <= LIMIT, "%d ran at once, limit %d",
              st.max_running, LIMIT);
    cr_assert_eq(st.max_running, LIMIT, "the pool never filled up");
}

static void *join_idle_main(void *arg)
{
    int *rc = arg;
    co_pool_t *pool = co_pool_new(2);
    if (!pool)
        return NULL;
    *rc = co_pool_join(pool, co_now() - 1000); /* nothing to wait for */
    co_pool_free(pool);
    return NULL;
}

Test(pool, join_of_an_idle_pool_returns_at_once)
{
    int rc = -2;
    run(join_idle_main, &rc);
    cr_assert_eq(rc, 0);
}

/* ---- spawn / join deadlines --------------------------------------------- */

struct full_st {
    int first_rc;
    int near_rc, near_err;
    int past_rc, past_err;
    int join_rc, join_err;
    int task_rc[2], task_err[2];
    int ran_extra;
    int finished;
};

struct sleeper_arg {
    struct full_st *st;
    int i;
};

static void *pool_sleeper(void *arg)
{
    struct sleeper_arg *a = arg;
    errno = 0;
    a->st->task_rc[a->i] = co_sleep(co_deadline(LONG_MS));
    a->st->task_err[a->i] = errno;
    a->st->finished++;
    return NULL;
}

static void *extra_task(void *arg)
{
    struct full_st *st = arg;
    st->ran_extra++;
    return NULL;
}

static void *full_main(void *arg)
{
    struct full_st *st = arg;
    co_pool_t *pool = co_pool_new(1);
    if (!pool)
        return NULL;
    struct sleeper_arg a0 = {st, 0};
    st->first_rc = co_pool_spawn(pool, pool_sleeper, &a0, -1);
    errno = 0;
    st->near_rc = co_pool_spawn(pool, extra_task, st, co_deadline(20));
    st->near_err = errno;
    errno = 0;
    st->past_rc = co_pool_spawn(pool, extra_task, st, co_now() - 1000);
    st->past_err = errno;
    errno = 0;
    st->join_rc = co_pool_join(pool, co_deadline(10));
    st->join_err = errno;
    co_pool_free(pool); /* cancels the sleeper */
    return NULL;
}

Test(pool, spawn_into_a_full_pool_times_out)
{
    struct full_st st;
    memset(&st, 0, sizeof st);
    st.first_rc = st.near_rc = st.past_rc = st.join_rc = -2;
    st.task_rc[0] = -2;
    run(full_main, &st);
    cr_assert_eq(st.first_rc, 0);
    cr_assert_eq(st.near_rc, -1);
    cr_assert_eq(st.near_err, ETIMEDOUT, "errno %s", strerror(st.near_err));
    cr_assert_eq(st.past_rc, -1);
    cr_assert_eq(st.past_err, ETIMEDOUT, "errno %s", strerror(st.past_err));
    cr_assert_eq(st.ran_extra, 0, "a timed-out spawn ran its function");
    cr_assert_eq(st.join_rc, -1);
    cr_assert_eq(st.join_err, ETIMEDOUT, "co_pool_join errno %s",
                 strerror(st.join_err));
    cr_assert_eq(st.finished, 1);
    cr_assert_eq(st.task_rc[0], -1);
    cr_assert_eq(st.task_err[0], ECANCELED);
}

/* ---- free cancels ----------------------------------------------------------
 */

static void *free_main(void *arg)
{
    struct full_st *st = arg;
    co_pool_t *pool = co_pool_new(4);
    if (!pool)
        return NULL;
    struct sleeper_arg a[2] = {{st, 0}, {st, 1}};
    co_pool_spawn(pool, pool_sleeper, &a[0], -1);
    co_pool_spawn(pool, pool_sleeper, &a[1], -1);
    co_yield_now(); /* both sleep */
    co_pool_free(pool);
    st->ran_extra = st->finished; /* how many ended before free returned */
    return NULL;
}

Test(pool, free_cancels_and_joins_running_coroutines)
{
    struct full_st st;
    memset(&st, 0, sizeof st);
    st.task_rc[0] = st.task_rc[1] = -2;
    run(free_main, &st);
    cr_assert_eq(st.ran_extra, 2,
                 "co_pool_free returned before its "
                 "coroutines ended");
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(st.task_rc[i], -1, "task %d", i);
        cr_assert_eq(st.task_err[i], ECANCELED, "task %d: errno %s", i,
                     strerror(st.task_err[i]));
    }
}

/* ---- cancel of a waiting spawner ------------------------------------------
 */

struct spawner_st {
    co_pool_t *pool;
    int rc, err;
    int ran_extra;
};

static void *count_extra(void *arg)
{
    ++*(int *)arg;
    return NULL;
}

static void *spawner(void *arg)
{
    struct spawner_st *st = arg;
    errno = 0;
    st->rc = co_pool_spawn(st->pool, count_extra, &st->ran_extra,
                           co_deadline(LONG_MS));
    st->err = errno;
    return NULL;
}

static void *spawner_main(void *arg)
{
    struct spawner_st *st = arg;
    st->pool = co_pool_new(1);
    if (!st->pool)
        return NULL;
    struct full_st fs;
    memset(&fs, 0, sizeof fs);
    struct sleeper_arg a0 = {&fs, 0};
    co_pool_spawn(st->pool, pool_sleeper, &a0, -1); /* full */
    co_t *co = co_spawn(spawner, st);
    if (!co)
        return NULL;
    co_yield_now(); /* it waits for a slot */
    co_cancel(co);
    co_join(co, NULL, co_deadline(SAFETY_MS));
    co_pool_free(st->pool);
    return NULL;
}

Test(pool, cancel_wakes_a_spawn_waiting_for_a_slot)
{
    struct spawner_st st = {NULL, -2, 0, 0};
    run(spawner_main, &st);
    cr_assert_eq(st.rc, -1);
    cr_assert_eq(st.err, ECANCELED, "errno %s", strerror(st.err));
    cr_assert_eq(st.ran_extra, 0, "the cancelled spawn ran its function");
}

/* ---- slots are handed over as tasks end ------------------------------------
 */

struct order_st {
    int log[16];
    int n;
};

struct order_arg {
    struct order_st *st;
    int id;
};

static void *logging_task(void *arg)
{
    struct order_arg *a = arg;
    a->st->log[a->st->n++] = a->id;
    co_yield_now();
    return NULL;
}

static void *order_main(void *arg)
{
    struct order_st *st = arg;
    co_pool_t *pool = co_pool_new(2);
    if (!pool)
        return NULL;
    struct order_arg args[6];
    for (int i = 0; i < 6; i++) {
        args[i] = (struct order_arg){st, i};
        co_pool_spawn(pool, logging_task, &args[i], co_deadline(SAFETY_MS));
    }
    co_pool_join(pool, co_deadline(SAFETY_MS));
    co_pool_free(pool);
    return NULL;
}

Test(pool, tasks_start_in_spawn_order)
{
    struct order_st st;
    memset(&st, 0, sizeof st);
    run(order_main, &st);
    cr_assert_eq(st.n, 6);
    for (int i = 0; i < 6; i++)
        cr_assert_eq(st.log[i], i, "start %d was task %d", i, st.log[i]);
}
