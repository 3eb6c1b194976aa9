/*
 * test_timeout_scope.c - co_timeout_begin/end (server/core/timeout.c): a
 * deadline over a block of waits that does not cancel the coroutine, nested
 * scopes, and waits after a scope ended.
 */
#include <fcntl.h>
#include <unistd.h>

#include "util.h"

struct st {
    int rc[8], err[8];
    int expired[4];
    int cancelled;
};

static co_event_t *never;

/* A wait inside an expired scope fails with ETIMEDOUT; after end, waits
 * use their own deadline again, and the coroutine is not cancelled. */
static void *basic_main(void *arg)
{
    struct st *s = arg;
    never = co_event_new();
    co_event_t *set = co_event_new();
    co_event_set(set);
    co_timeout_t t;
    co_timeout_begin(&t, co_deadline(20));
    errno = 0;
    s->rc[0] = co_event_wait(never, co_deadline(LONG_MS));
    s->err[0] = errno;
    s->rc[1] = co_event_wait(set, -1); /* no wait needed: still succeeds */
    errno = 0;
    s->rc[2] = co_sleep(co_deadline(LONG_MS)); /* cut short by the scope */
    s->err[2] = errno;
    s->expired[0] = co_timeout_end(&t);
    /* after the scope: a short own deadline, not an instant failure */
    s->rc[3] = co_sleep(co_deadline(5));
    errno = 0;
    s->rc[4] = co_event_wait(never, co_deadline(5));
    s->err[4] = errno;
    s->cancelled = co_cancelled();
    co_event_free(never);
    co_event_free(set);
    return NULL;
}

Test(timeout_scope, waits_fail_with_etimedout_until_the_scope_ends)
{
    struct st s;
    memset(&s, 0x55, sizeof s);
    run(basic_main, &s);
    cr_assert_eq(s.rc[0], -1);
    cr_assert_eq(s.err[0], ETIMEDOUT);
    cr_assert_eq(s.rc[1], 0);
    cr_assert_eq(s.rc[2], -1);
    cr_assert_eq(s.err[2], ETIMEDOUT);
    cr_assert_neq(s.expired[0], 0);
    cr_assert_eq(s.rc[3], 0); /* slept its own 5 ms */
    cr_assert_eq(s.rc[4], -1);
    cr_assert_eq(s.err[4], ETIMEDOUT);
    cr_assert_eq(s.cancelled, 0);
}

/* Inner expires, outer does not: after the inner end, a wait inside the
 * outer scope succeeds. */
static co_event_t *later_ev;
static void *set_later(void *arg)
{
    (void)arg;
    co_sleep(co_deadline(40));
    co_event_set(later_ev);
    return NULL;
}

static void *inner_main(void *arg)
{
    struct st *s = arg;
    later_ev = co_event_new();
    co_t *setter = co_spawn(set_later, NULL);
    co_timeout_t outer, inner;
    co_timeout_begin(&outer, co_deadline(SAFETY_MS));
    co_timeout_begin(&inner, co_deadline(10));
    errno = 0;
    s->rc[0] = co_event_wait(later_ev, -1);
    s->err[0] = errno;
    s->expired[0] = co_timeout_expired(&inner);
    s->expired[1] = co_timeout_expired(&outer);
    s->expired[2] = co_timeout_end(&inner);
    s->rc[1] = co_event_wait(later_ev, -1); /* the outer allows it */
    s->expired[3] = co_timeout_end(&outer);
    co_join(setter, NULL, -1);
    co_event_free(later_ev);
    return NULL;
}

Test(timeout_scope, an_expired_inner_scope_leaves_the_outer_one_alone)
{
    struct st s;
    memset(&s, 0x55, sizeof s);
    run(inner_main, &s);
    cr_assert_eq(s.rc[0], -1);
    cr_assert_eq(s.err[0], ETIMEDOUT);
    cr_assert_neq(s.expired[0], 0);
    cr_assert_eq(s.expired[1], 0);
    cr_assert_neq(s.expired[2], 0);
    cr_assert_eq(s.rc[1], 0);
    cr_assert_eq(s.expired[3], 0);
}

/* The outer deadline passes inside a longer inner scope: waits fail, and
 * the caller can tell it was the outer one. */
static void *outer_main(void *arg)
{
    struct st *s = arg;
    never = co_event_new();
    int p[2];
    cr_assert_eq(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    co_timeout_t outer, inner;
    co_timeout_begin(&outer, co_deadline(15));
    co_timeout_begin(&inner, co_deadline(SAFETY_MS));
    char c;
    errno = 0;
    s->rc[0] = (int)co_read(p[0], &c, 1, -1); /* fd waits honour it too */
    s->err[0] = errno;
    s->expired[0] = co_timeout_expired(&inner);
    s->expired[1] = co_timeout_expired(&outer);
    s->expired[2] = co_timeout_end(&inner);
    errno = 0;
    s->rc[1] = co_event_wait(never, -1); /* still inside the expired outer */
    s->err[1] = errno;
    s->expired[3] = co_timeout_end(&outer);
    s->rc[2] = co_sleep(co_deadline(1));
    close(p[0]);
    close(p[1]);
    co_event_free(never);
    return NULL;
}

Test(timeout_scope, an_outer_scope_expiring_inside_an_inner_one_ends_its_waits)
{
    struct st s;
    memset(&s, 0x55, sizeof s);
    run(outer_main, &s);
    cr_assert_eq(s.rc[0], -1);
    cr_assert_eq(s.err[0], ETIMEDOUT);
    cr_assert_eq(s.expired[0], 0);
    cr_assert_neq(s.expired[1], 0);
    cr_assert_eq(s.expired[2], 0);
    cr_assert_eq(s.rc[1], -1);
    cr_assert_eq(s.err[1], ETIMEDOUT);
    cr_assert_neq(s.expired[3], 0);
    cr_assert_eq(s.rc[2], 0);
}

/* Ending the outer scope first is allowed; the inner one still applies,
 * and ending a scope twice does nothing. */
static void *order_main(void *arg)
{
    struct st *s = arg;
    never = co_event_new();
    co_timeout_t outer, inner;
    co_timeout_begin(&outer, co_deadline(SAFETY_MS));
    co_timeout_begin(&inner, co_deadline(10));
    s->expired[0] = co_timeout_end(&outer);
    errno = 0;
    s->rc[0] = co_event_wait(never, -1);
    s->err[0] = errno;
    s->expired[1] = co_timeout_end(&inner);
    s->expired[2] = co_timeout_end(&inner);
    s->rc[1] = co_sleep(co_deadline(1));
    co_event_free(never);
    return NULL;
}

Test(timeout_scope, scopes_may_end_out_of_order)
{
    struct st s;
    memset(&s, 0x55, sizeof s);
    run(order_main, &s);
    cr_assert_eq(s.expired[0], 0);
    cr_assert_eq(s.rc[0], -1);
    cr_assert_eq(s.err[0], ETIMEDOUT);
    cr_assert_neq(s.expired[1], 0);
    cr_assert_eq(s.expired[2], 0);
    cr_assert_eq(s.rc[1], 0);
}
