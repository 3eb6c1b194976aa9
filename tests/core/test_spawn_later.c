/*
 * test_spawn_later.c - co_spawn_later: gevent.spawn_later, a child
 * coroutine whose function starts after a delay.
 *
 * Bodies run inside co_run() and record what they saw; the assertions run
 * after co_run() returned. Order is asserted against other coroutines'
 * deadlines, never against elapsed time.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "coserve.h"
#include "util.h"

struct log_st {
    char log[16];
    int n;
    int ran;
};

struct log_arg {
    struct log_st *st;
    char mark;
};

static void *log_mark(void *arg)
{
    struct log_arg *a = arg;
    a->st->log[a->st->n++] = a->mark;
    a->st->ran++;
    return a;
}

static void *sleep_then_mark(void *arg)
{
    struct log_arg *a = arg;
    co_sleep(co_deadline(1));
    return log_mark(a);
}

/* ---- it runs, after its delay ------------------------------------------ */

struct later_st {
    struct log_st l;
    int spawned;
    int ran_after_yields;
    int join_rc;
    void *result;
    struct log_arg later_arg, sleeper_arg;
};

static void *later_main(void *arg)
{
    struct later_st *st = arg;
    st->later_arg = (struct log_arg){&st->l, 'L'};
    st->sleeper_arg = (struct log_arg){&st->l, 'S'};
    co_t *later = co_spawn_later(100, log_mark, &st->later_arg);
    co_t *sleeper = co_spawn(sleep_then_mark, &st->sleeper_arg);
    if (!later || !sleeper)
        return NULL;
    st->spawned = 1;
    for (int i = 0; i < 10; i++)
        co_yield_now(); /* the delayed one is parked, not ready */
    st->ran_after_yields = st->l.ran;
    /* the sleeper's deadline (1 ms) comes before the delayed start */
    co_join(sleeper, NULL, co_deadline(SAFETY_MS));
    st->join_rc = co_join(later, &st->result, co_deadline(SAFETY_MS));
    return NULL;
}

Test(spawn_later, runs_after_its_delay_behind_an_earlier_deadline)
{
    struct later_st st;
    memset(&st, 0, sizeof st);
    st.join_rc = -2;
    run(later_main, &st);
    cr_assert(st.spawned);
    cr_assert_eq(st.ran_after_yields, 0, "it ran before its delay");
    cr_assert_eq(st.join_rc, 0);
    cr_assert_eq(st.result, &st.later_arg, "co_join's result is fn's");
    cr_assert_eq(st.l.n, 2);
    cr_assert_eq(st.l.log[0], 'S', "order %.2s", st.l.log);
    cr_assert_eq(st.l.log[1], 'L', "order %.2s", st.l.log);
}

/* A delay of 0 still starts fn on a later turn, as co_spawn() does. */
static void *zero_main(void *arg)
{
    struct later_st *st = arg;
    st->later_arg = (struct log_arg){&st->l, 'Z'};
    co_t *co = co_spawn_later(0, log_mark, &st->later_arg);
    if (!co)
        return NULL;
    st->spawned = 1;
    st->ran_after_yields = st->l.ran; /* before any yield: not yet */
    st->join_rc = co_join(co, &st->result, co_deadline(SAFETY_MS));
    return NULL;
}

Test(spawn_later, a_zero_delay_starts_on_the_next_turn)
{
    struct later_st st;
    memset(&st, 0, sizeof st);
    st.join_rc = -2;
    run(zero_main, &st);
    cr_assert(st.spawned);
    cr_assert_eq(st.ran_after_yields, 0);
    cr_assert_eq(st.join_rc, 0);
    cr_assert_eq(st.l.ran, 1);
    cr_assert_eq(st.result, &st.later_arg);
}

/* ---- cancelled before it fires: fn never runs --------------------------- */

struct cancel_st {
    struct log_st l;
    int spawned;
    int join_rc[2];
    void *result[2];
    struct log_arg arg;
};

static void *cancel_main(void *arg)
{
    struct cancel_st *st = arg;
    st->arg = (struct log_arg){&st->l, 'X'};
    /* cancelled before it ever ran, even with no delay */
    co_t *a = co_spawn_later(0, log_mark, &st->arg);
    /* cancelled while it waits for its start */
    co_t *b = co_spawn_later(LONG_MS, log_mark, &st->arg);
    if (!a || !b)
        return NULL;
    st->spawned = 1;
    co_cancel(a);
    co_yield_now(); /* b parks */
    co_cancel(b);
    co_t *cos[2] = {a, b};
    for (int i = 0; i < 2; i++) {
        st->result[i] = &st->arg;
        st->join_rc[i] =
            co_join(cos[i], &st->result[i], co_deadline(SAFETY_MS));
    }
    return NULL;
}

Test(spawn_later, cancelled_before_it_starts_fn_never_runs)
{
    struct cancel_st st;
    memset(&st, 0, sizeof st);
    run(cancel_main, &st);
    cr_assert(st.spawned);
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(st.join_rc[i], 0, "join %d", i);
        cr_assert_null(st.result[i], "cancelled %d: result not NULL", i);
    }
    cr_assert_eq(st.l.ran, 0, "a cancelled spawn_later ran");
}

/* Cancelled after its start time but before it ran: the start time passes and,
 * in the same loop turn, a coroutine whose deadline came just before it cancels
 * it: the delayed coroutine is ready (its sleep is over) but has not run. */
struct race_st {
    struct log_st l;
    co_t *later;
    int64_t cancel_at;
    int join_rc;
    void *result;
    struct log_arg arg;
};

static void *canceller(void *arg)
{
    struct race_st *st = arg;
    co_sleep(st->cancel_at);
    co_cancel(st->later);
    return NULL;
}

static void *race_main(void *arg)
{
    struct race_st *st = arg;
    st->arg = (struct log_arg){&st->l, 'R'};
    st->cancel_at = co_now() + 2;
    co_t *c = co_spawn(canceller, st);
    st->later = co_spawn_later(3, log_mark, &st->arg); /* after cancel_at */
    if (!c || !st->later)
        return NULL;
    co_yield_now(); /* both park */
    /* hold the hub past both deadlines: their timers fire in one turn, in
     * deadline order, so the canceller runs first */
    int64_t until = co_now() + 10;
    while (co_now() < until)
        ;
    co_join(c, NULL, co_deadline(SAFETY_MS));
    st->result = &st->arg;
    st->join_rc = co_join(st->later, &st->result, co_deadline(SAFETY_MS));
    return NULL;
}

Test(spawn_later, a_cancel_after_its_start_time_but_before_it_ran_wins)
{
    struct race_st st;
    memset(&st, 0, sizeof st);
    st.join_rc = -2;
    run(race_main, &st);
    cr_assert_eq(st.join_rc, 0);
    cr_assert_eq(st.l.ran, 0, "fn ran although cancelled before it ran");
    cr_assert_null(st.result);
}

/* ---- the parent's end ------------------------------------------------- */

struct parent_st {
    struct log_st l;
    int join_rc;
    struct log_arg arg;
};

static void *parent(void *arg)
{
    struct parent_st *st = arg;
    co_spawn_later(LONG_MS, log_mark, &st->arg); /* left to our end */
    return NULL;
}

static void *parent_main(void *arg)
{
    struct parent_st *st = arg;
    st->arg = (struct log_arg){&st->l, 'P'};
    co_t *p = co_spawn(parent, st);
    st->join_rc = co_join(p, NULL, co_deadline(SAFETY_MS));
    return NULL;
}

Test(spawn_later, the_parents_end_cancels_it_before_it_starts)
{
    struct parent_st st;
    memset(&st, 0, sizeof st);
    st.join_rc = -2;
    run(parent_main, &st);
    cr_assert_eq(st.join_rc, 0, "the parent's end waited for the delay");
    cr_assert_eq(st.l.ran, 0);
}

/* ---- detached --------------------------------------------------------- */

struct detach_st {
    co_event_t *ev;
    int wait_rc;
};

static void *set_event(void *arg)
{
    co_event_set(((struct detach_st *)arg)->ev);
    return NULL;
}

static void *detach_main(void *arg)
{
    struct detach_st *st = arg;
    if (!(st->ev = co_event_new()))
        return NULL;
    co_t *co = co_spawn_later(5, set_event, st);
    if (!co)
        return NULL;
    co_detach(co);
    st->wait_rc = co_event_wait(st->ev, co_deadline(SAFETY_MS));
    co_event_free(st->ev);
    return NULL;
}

Test(spawn_later, a_detached_one_runs_on_its_own)
{
    struct detach_st st = {NULL, -2};
    run(detach_main, &st);
    cr_assert_eq(st.wait_rc, 0);
}

/* ---- bad arguments ---------------------------------------------------- */

static void *bad_main(void *arg)
{
    int *r = arg;
    errno = 0;
    r[0] = co_spawn_later(-1, log_mark, NULL) == NULL;
    r[1] = errno;
    errno = 0;
    r[2] = co_spawn_later(10, NULL, NULL) == NULL;
    r[3] = errno;
    return NULL;
}

Test(spawn_later, a_negative_delay_or_no_function_fails_with_einval)
{
    int r[4] = {0, 0, 0, 0};
    run(bad_main, r);
    cr_assert(r[0]);
    cr_assert_eq(r[1], EINVAL);
    cr_assert(r[2]);
    cr_assert_eq(r[3], EINVAL);
}
