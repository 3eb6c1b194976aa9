/*
 * test_pool_map.c - co_pool_map and co_pool_imap_unordered: gevent's
 * Pool.map and Pool.imap_unordered, with results and errors per item.
 *
 * Bodies run inside co_run() and record what they saw; the assertions run
 * after co_run() returned. Concurrency is counted, never timed.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "coserve.h"
#include "util.h"

#define P(i) ((void *)(uintptr_t)(i))
#define I(p) ((int)(uintptr_t)(p))

/* What the items share: how many run now, the most that ever did, which
 * started, and the order they finished in. */
static struct {
    int running, max_running;
    int started[64];
    int finished[64], nfinished;
} g;

static void g_reset(void)
{
    memset(&g, 0, sizeof g);
}

static void item_enter(int i)
{
    g.started[i]++;
    if (++g.running > g.max_running)
        g.max_running = g.running;
}

static void item_leave(int i)
{
    g.running--;
    g.finished[g.nfinished++] = i;
}

/* Doubles its index, after a few yields and a short sleep. Fails with EDOM
 * for indexes divisible by 5 when asked to, and with -1 but errno 0 for 7. */
static int fail_some;

static int doubler(void *arg, void **result)
{
    int i = I(arg);
    item_enter(i);
    for (int k = 0; k < i % 4; k++)
        co_yield_now();
    co_sleep(co_deadline(i % 3));
    item_leave(i);
    if (fail_some && i % 5 == 0) {
        errno = EDOM;
        return -1;
    }
    if (fail_some && i == 7) {
        errno = 0;
        return -1;
    }
    *result = P(2 * i);
    return 0;
}

/* ---- map ---------------------------------------------------------------- */

#define N 20
#define LIMIT 3

struct map_st {
    int rc, err;
    void *results[N];
    int errs[N];
    int running_after;
};

static void *map_main(void *arg)
{
    struct map_st *st = arg;
    co_pool_t *pool = co_pool_new(LIMIT);
    if (!pool)
        return NULL;
    void *args[N];
    for (int i = 0; i < N; i++)
        args[i] = P(i);
    errno = 0;
    st->rc = co_pool_map(pool, doubler, args, N, st->results, st->errs,
                         co_deadline(SAFETY_MS));
    st->err = errno;
    st->running_after = g.running;
    co_pool_free(pool);
    return NULL;
}

Test(pool_map, map_keeps_order_and_never_runs_more_than_the_limit)
{
    struct map_st st;
    memset(&st, 0, sizeof st);
    g_reset();
    fail_some = 0;
    run(map_main, &st);
    cr_assert_eq(st.rc, 0, "map: %d, errno %s", st.rc, strerror(st.err));
    for (int i = 0; i < N; i++) {
        cr_assert_eq(st.errs[i], 0, "item %d: %s", i, strerror(st.errs[i]));
        cr_assert_eq(I(st.results[i]), 2 * i, "results[%d] = %d", i,
                     I(st.results[i]));
        cr_assert_eq(g.started[i], 1, "item %d ran %d times", i, g.started[i]);
    }
    cr_assert(g.max_running <= LIMIT, "%d ran at once, limit %d", g.max_running,
              LIMIT);
    cr_assert_eq(g.max_running, LIMIT, "the pool never filled up");
    cr_assert_eq(st.running_after, 0, "map returned with items running");
    /* they did not all finish in index order: order is the map's doing */
    int in_order = 1;
    for (int i = 0; i < N; i++)
        in_order &= g.finished[i] == i;
    cr_assert_not(in_order, "items finished in index order: a weak test");
}

Test(pool_map, map_reports_each_items_error_on_its_own)
{
    struct map_st st;
    memset(&st, 0, sizeof st);
    g_reset();
    fail_some = 1;
    run(map_main, &st);
    int want_failed = 0;
    for (int i = 0; i < N; i++) {
        int want = i % 5 == 0 ? EDOM : i == 7 ? EIO : 0;
        want_failed += want != 0;
        cr_assert_eq(st.errs[i], want, "item %d: %s, want %s", i,
                     strerror(st.errs[i]), strerror(want));
        if (want)
            cr_assert_null(st.results[i], "failed item %d has a result", i);
        else
            cr_assert_eq(I(st.results[i]), 2 * i);
    }
    cr_assert_eq(st.rc, want_failed, "map returned %d, %d items failed", st.rc,
                 want_failed);
}

/* The map's slots are the pool's: a coroutine spawned in it holds one. */
static int slot_holder_rc;

static void *slot_holder(void *arg)
{
    (void)arg;
    slot_holder_rc = co_sleep(co_deadline(LONG_MS));
    return NULL;
}

static void *shared_main(void *arg)
{
    struct map_st *st = arg;
    co_pool_t *pool = co_pool_new(2);
    if (!pool)
        return NULL;
    co_pool_spawn(pool, slot_holder, NULL, -1);
    void *args[6];
    for (int i = 0; i < 6; i++)
        args[i] = P(i);
    st->rc = co_pool_map(pool, doubler, args, 6, st->results, NULL,
                         co_deadline(SAFETY_MS));
    co_pool_free(pool); /* cancels the holder */
    return NULL;
}

Test(pool_map, map_shares_the_pools_slots_with_spawn)
{
    struct map_st st;
    memset(&st, 0, sizeof st);
    g_reset();
    fail_some = 0;
    run(shared_main, &st);
    cr_assert_eq(st.rc, 0);
    cr_assert_eq(g.max_running, 1, "%d map items ran beside the holder",
                 g.max_running);
    for (int i = 0; i < 6; i++)
        cr_assert_eq(I(st.results[i]), 2 * i);
}

/* ---- a map that ends first ------------------------------------------- */

static int sleeper_item(void *arg, void **result)
{
    int i = I(arg);
    item_enter(i);
    int rc = co_sleep(co_deadline(LONG_MS));
    item_leave(i);
    *result = arg;
    return rc; /* -1 with ECANCELED when the map gives up */
}

struct deadline_st {
    int rc, err;
    void *results[5];
    int errs[5];
    int running_after;
};

static void *deadline_main(void *arg)
{
    struct deadline_st *st = arg;
    co_pool_t *pool = co_pool_new(2);
    if (!pool)
        return NULL;
    void *args[5] = {P(0), P(1), P(2), P(3), P(4)};
    errno = 0;
    st->rc = co_pool_map(pool, sleeper_item, args, 5, st->results, st->errs,
                         co_deadline(20));
    st->err = errno;
    st->running_after = g.running;
    co_pool_free(pool);
    return NULL;
}

Test(pool_map, a_map_past_its_deadline_cancels_its_items_and_times_out)
{
    struct deadline_st st;
    memset(&st, 0, sizeof st);
    g_reset();
    run(deadline_main, &st);
    cr_assert_eq(st.rc, -1);
    cr_assert_eq(st.err, ETIMEDOUT, "errno %s", strerror(st.err));
    cr_assert_eq(st.running_after, 0, "items outlived the map");
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(g.started[i], 1, "item %d", i);
        cr_assert_eq(st.errs[i], ECANCELED, "running item %d: %s", i,
                     strerror(st.errs[i]));
    }
    for (int i = 2; i < 5; i++) {
        cr_assert_eq(g.started[i], 0, "item %d started after the deadline", i);
        cr_assert_eq(st.errs[i], ETIMEDOUT, "item %d not started: %s", i,
                     strerror(st.errs[i]));
        cr_assert_null(st.results[i]);
    }
}

static void *mapper(void *arg)
{
    struct deadline_st *st = arg;
    co_pool_t *pool = co_pool_new(2);
    if (!pool)
        return NULL;
    void *args[5] = {P(0), P(1), P(2), P(3), P(4)};
    errno = 0;
    st->rc =
        co_pool_map(pool, sleeper_item, args, 5, st->results, st->errs, -1);
    st->err = errno;
    st->running_after = g.running;
    co_pool_free(pool);
    return NULL;
}

static void *cancel_main(void *arg)
{
    co_t *co = co_spawn(mapper, arg);
    co_yield_now(); /* the map waits, two items sleep */
    co_yield_now();
    co_cancel(co);
    co_join(co, NULL, co_deadline(SAFETY_MS));
    return NULL;
}

Test(pool_map, cancelling_a_map_cancels_its_items)
{
    struct deadline_st st;
    memset(&st, 0, sizeof st);
    g_reset();
    run(cancel_main, &st);
    cr_assert_eq(st.rc, -1);
    cr_assert_eq(st.err, ECANCELED, "errno %s", strerror(st.err));
    cr_assert_eq(st.running_after, 0);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(st.errs[i], ECANCELED, "item %d: %s", i,
                     strerror(st.errs[i]));
    cr_assert_eq(g.started[2] + g.started[3] + g.started[4], 0);
}

static void *empty_main(void *arg)
{
    int *rc = arg;
    co_pool_t *pool = co_pool_new(1);
    if (!pool)
        return NULL;
    rc[0] = co_pool_map(pool, doubler, NULL, 0, NULL, NULL, -1);
    co_pool_iter_t *it = co_pool_imap_unordered(pool, doubler, NULL, 0);
    if (it) {
        errno = 0;
        rc[1] = co_pool_iter_next(it, NULL, NULL, NULL, -1);
        rc[2] = errno;
        co_pool_iter_free(it);
    }
    errno = 0;
    rc[3] = co_pool_imap_unordered(pool, NULL, NULL, 0) == NULL;
    rc[4] = errno;
    co_pool_free(pool);
    return NULL;
}

Test(pool_map, nothing_to_map_is_done_at_once)
{
    int rc[5] = {-2, -2, 0, 0, 0};
    run(empty_main, rc);
    cr_assert_eq(rc[0], 0);
    cr_assert_eq(rc[1], -1);
    cr_assert_eq(rc[2], EPIPE);
    cr_assert(rc[3]);
    cr_assert_eq(rc[4], EINVAL);
}

/* ---- imap_unordered ---------------------------------------------------- */

/* Item i yields (N_UN - i) times: with room for all, the last finishes
 * first. */
#define N_UN 6

static int countdown(void *arg, void **result)
{
    int i = I(arg);
    item_enter(i);
    for (int k = 0; k < N_UN - i; k++)
        co_yield_now();
    item_leave(i);
    if (i == 2) {
        errno = ENOENT;
        return -1;
    }
    *result = P(100 + i);
    return 0;
}

struct imap_st {
    int nrc;
    int index[N_UN], err[N_UN];
    void *result[N_UN];
    int n;
    int end_rc, end_err;
    int again_rc, again_err;
};

static void *imap_main(void *arg)
{
    struct imap_st *st = arg;
    co_pool_t *pool = co_pool_new(N_UN);
    if (!pool)
        return NULL;
    void *args[N_UN];
    for (int i = 0; i < N_UN; i++)
        args[i] = P(i);
    co_pool_iter_t *it = co_pool_imap_unordered(pool, countdown, args, N_UN);
    if (!it)
        return NULL;
    size_t index;
    while (co_pool_iter_next(it, &index, &st->result[st->n], &st->err[st->n],
                             co_deadline(SAFETY_MS)) == 0)
        st->index[st->n++] = (int)index;
    st->end_err = errno;
    errno = 0;
    st->again_rc = co_pool_iter_next(it, NULL, NULL, NULL, -1);
    st->again_err = errno;
    co_pool_iter_free(it);
    co_pool_free(pool);
    return NULL;
}

Test(pool_map, imap_unordered_gives_items_back_as_they_finish)
{
    struct imap_st st;
    memset(&st, 0, sizeof st);
    g_reset();
    run(imap_main, &st);
    cr_assert_eq(st.n, N_UN, "%d items came back", st.n);
    cr_assert_eq(st.end_err, EPIPE, "the end: %s", strerror(st.end_err));
    cr_assert_eq(st.again_rc, -1);
    cr_assert_eq(st.again_err, EPIPE);
    cr_assert_eq(g.nfinished, N_UN);
    for (int k = 0; k < N_UN; k++) {
        int i = st.index[k];
        cr_assert_eq(i, g.finished[k],
                     "item %d came back %d-th, finished "
                     "%d-th",
                     i, k, g.finished[k]);
        cr_assert_eq(i, N_UN - 1 - k, "the last one should finish first");
        if (i == 2) {
            cr_assert_eq(st.err[k], ENOENT);
            cr_assert_null(st.result[k]);
        } else {
            cr_assert_eq(st.err[k], 0, "item %d: %s", i, strerror(st.err[k]));
            cr_assert_eq(I(st.result[k]), 100 + i);
        }
    }
}

/* Freeing an iterator early cancels what runs and starts nothing more. */
struct early_st {
    int first_rc;
    int running_after_free;
    int started_total;
    int next_rc, next_err;
};

static void *early_main(void *arg)
{
    struct early_st *st = arg;
    co_pool_t *pool = co_pool_new(2);
    if (!pool)
        return NULL;
    void *args[6] = {P(0), P(1), P(2), P(3), P(4), P(5)};
    co_pool_iter_t *it = co_pool_imap_unordered(pool, sleeper_item, args, 6);
    if (!it)
        return NULL;
    errno = 0;
    st->next_rc = co_pool_iter_next(it, NULL, NULL, NULL, co_deadline(10));
    st->next_err = errno;
    co_pool_iter_free(it);
    st->running_after_free = g.running;
    for (int i = 0; i < 6; i++)
        st->started_total += g.started[i];
    co_yield_now(); /* nothing starts later either */
    co_yield_now();
    for (int i = 0; i < 6; i++)
        st->started_total += g.started[i];
    /* the pool has its slots back */
    st->first_rc = co_pool_join(pool, co_now() - 1);
    co_pool_free(pool);
    return NULL;
}

Test(pool_map, freeing_an_iterator_early_cancels_its_items)
{
    struct early_st st;
    memset(&st, 0, sizeof st);
    st.first_rc = -2;
    g_reset();
    run(early_main, &st);
    cr_assert_eq(st.next_rc, -1);
    cr_assert_eq(st.next_err, ETIMEDOUT);
    cr_assert_eq(st.running_after_free, 0, "items outlived the iterator");
    cr_assert_eq(st.started_total, 4, "2 items ran, counted twice: %d",
                 st.started_total);
    cr_assert_eq(st.first_rc, 0, "the pool still has members");
}

/* Freed from a cancelled coroutine, it still waits for its items. */
static void *cancelled_freer(void *arg)
{
    int *running_after = arg;
    co_pool_t *pool = co_pool_new(3);
    if (!pool)
        return NULL;
    static void *args[3] = {P(0), P(1), P(2)};
    co_pool_iter_t *it = co_pool_imap_unordered(pool, sleeper_item, args, 3);
    if (!it)
        return NULL;
    co_sleep(co_deadline(LONG_MS)); /* until cancelled */
    co_pool_iter_free(it);
    *running_after = g.running;
    co_pool_free(pool);
    return NULL;
}

static void *cancelled_free_main(void *arg)
{
    co_t *co = co_spawn(cancelled_freer, arg);
    co_sleep(co_deadline(5)); /* the items sleep */
    co_cancel(co);
    co_join(co, NULL, co_deadline(SAFETY_MS));
    return NULL;
}

Test(pool_map, a_cancelled_coroutine_freeing_an_iterator_still_waits_for_it)
{
    int running_after = -1;
    g_reset();
    run(cancelled_free_main, &running_after);
    cr_assert_eq(g.started[0] + g.started[1] + g.started[2], 3);
    cr_assert_eq(running_after, 0);
}
