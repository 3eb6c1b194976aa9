/*
 * test_wake_order.c - coroutines waiting until the same deadline wake in
 * the order they began to wait (server/core/deadline.c), as in gevent:
 * every round, whatever loop turn each one parked in.
 */
#include <stdint.h>

#include "core/coro.h"
#include "core/hub.h"
#include "util.h"

#define N 10
#define ROUNDS 5
/* Far enough for every sleeper to park before it: only an order is
 * asserted, never a duration. */
#define MARGIN_MS 300

static struct {
    int64_t deadline[ROUNDS];
    int parked[ROUNDS][N], woke[ROUNDS][N];
    int np[ROUNDS], nw[ROUNDS];
    int rc_bad;
} wo;

static void *sleeper(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int r = 0; r < ROUNDS; r++) {
        if (r % 2) /* odd rounds: park in different loop turns first */
            co_sleep(co_deadline((id * 7) % 5));
        if (!wo.deadline[r])
            wo.deadline[r] = co_deadline(MARGIN_MS);
        wo.parked[r][wo.np[r]++] = id;
        if (co_sleep(wo.deadline[r]) < 0)
            wo.rc_bad++;
        wo.woke[r][wo.nw[r]++] = id;
    }
    return NULL;
}

static void *order_main(void *arg)
{
    (void)arg;
    co_t *cos[N];
    for (int i = 0; i < N; i++)
        cos[i] = co_spawn(sleeper, (void *)(intptr_t)i);
    co_join_all(cos, N, -1);
    return NULL;
}

Test(wake_order, equal_deadlines_wake_in_the_order_they_slept_every_round)
{
    memset(&wo, 0, sizeof wo);
    run(order_main, NULL);
    cr_assert_eq(wo.rc_bad, 0);
    for (int r = 0; r < ROUNDS; r++) {
        cr_assert_eq(wo.np[r], N);
        cr_assert_eq(wo.nw[r], N);
        for (int i = 0; i < N; i++)
            cr_assert_eq(wo.woke[r][i], wo.parked[r][i],
                         "round %d, position %d: woke %d, parked %d", r, i,
                         wo.woke[r][i], wo.parked[r][i]);
    }
    for (int i = 0; i < N; i++) /* round 0 parks in spawn order */
        cr_assert_eq(wo.parked[0][i], i);
}

/* Different deadlines still wake earliest first, whatever the park order. */
static int dd_woke[4], dd_n;
static int64_t dd_base;

static void *dd_sleeper(void *arg)
{
    int k = (int)(intptr_t)arg;
    co_sleep(dd_base + k * 10);
    dd_woke[dd_n++] = k;
    return NULL;
}

static void *dd_main(void *arg)
{
    (void)arg;
    dd_base = co_deadline(MARGIN_MS);
    int ks[4] = {3, 1, 2, 0};
    co_t *cos[4];
    for (int i = 0; i < 4; i++)
        cos[i] = co_spawn(dd_sleeper, (void *)(intptr_t)ks[i]);
    co_join_all(cos, 4, -1);
    return NULL;
}

Test(wake_order, earlier_deadlines_wake_first)
{
    dd_n = 0;
    run(dd_main, NULL);
    cr_assert_eq(dd_n, 4);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(dd_woke[i], i);
}

/* Where each sleeper is in the heap lives in a table indexed by a slot its
 * coroutine struct keeps (deadline.c); a freed struct gives its slot back
 * and a new one takes it. Sleepers taken off the middle of the heap
 * (cancelled), structs freed by a trim, then new structs on the recycled
 * slots: deadlines still wake in order. */
#define CHURN 300
static int churn_woke[CHURN], churn_n, churn_join_failed;
static int64_t churn_base; /* one base: no deadline depends on when its
                               coroutine got to run */

static void *churn_sleeper(void *arg)
{
    int k = (int)(intptr_t)arg;
    if (k < 0) { /* the first crowd: cancelled, never woken by time */
        co_sleep(co_deadline(LONG_MS));
        return NULL;
    }
    co_sleep(churn_base + k); /* distinct deadlines, k ms apart */
    churn_woke[churn_n++] = k;
    return NULL;
}

static void *churn_main(void *arg)
{
    (void)arg;
    static co_t *cos[CHURN];
    for (int i = 0; i < CHURN; i++)
        cos[i] = co_spawn(churn_sleeper, (void *)(intptr_t)-1);
    co_sleep(co_deadline(5));          /* every one parked */
    for (int i = 0; i < CHURN; i += 2) /* the middle of the heap first */
        co_cancel(cos[i]);
    co_sleep(co_deadline(5));
    for (int i = 1; i < CHURN; i += 2)
        co_cancel(cos[i]);
    if (co_join_all(cos, CHURN, co_deadline(SAFETY_MS)) < 0)
        churn_join_failed++;
    struct hub *hub = hub__self;
    while (coro__trim(hub) > 0) /* structs freed: slots back to spare */
        ;
    /* parked in an order unlike their deadlines' */
    churn_base = co_deadline(MARGIN_MS);
    for (int i = 0; i < CHURN; i++)
        cos[i] = co_spawn(churn_sleeper, (void *)(intptr_t)((i * 7) % CHURN));
    if (co_join_all(cos, CHURN, co_deadline(SAFETY_MS)) < 0)
        churn_join_failed++;
    return NULL;
}

Test(wake_order, recycled_coroutine_structs_keep_deadline_order)
{
    churn_n = churn_join_failed = 0;
    run(churn_main, NULL);
    cr_assert_eq(churn_join_failed, 0);
    cr_assert_eq(churn_n, CHURN);
    for (int i = 0; i < CHURN; i++)
        cr_assert_eq(churn_woke[i], i, "woken %d-th: %d", i, churn_woke[i]);
}
