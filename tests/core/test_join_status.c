/*
 * test_join_status.c - how a coroutine finished (server/core/outcome.c):
 * values and errors through co_join_outcome, ready/successful/error asked
 * without joining, co_link callbacks, and the parent-reaps-while-joined
 * double free (issue 10, defect a).
 */
#include <stdint.h>

#include "util.h"

#define IPTR(i) ((void *)(intptr_t)(i))

static void *returns_7(void *arg)
{
    (void)arg;
    return IPTR(7);
}

static void *fails_enoent(void *arg)
{
    (void)arg;
    co_yield_now();
    return co_fail(ENOENT, "no such user");
}

static void *waits_long(void *arg)
{
    (void)arg;
    co_sleep(co_deadline(LONG_MS));
    return IPTR(1);
}

struct outcomes {
    int rc_ok, rc_fail, rc_cancel;
    struct co_outcome ok, fail, cancel;
};

static void *outcomes_main(void *arg)
{
    struct outcomes *o = arg;
    co_t *a = co_spawn(returns_7, NULL);
    co_t *b = co_spawn(fails_enoent, NULL);
    co_t *c = co_spawn(waits_long, NULL);
    co_yield_now();
    co_cancel(c);
    o->rc_ok = co_join_outcome(a, &o->ok, co_deadline(SAFETY_MS));
    o->rc_fail = co_join_outcome(b, &o->fail, co_deadline(SAFETY_MS));
    o->rc_cancel = co_join_outcome(c, &o->cancel, co_deadline(SAFETY_MS));
    return NULL;
}

Test(join_status, join_outcome_reports_values_errors_and_cancels)
{
    struct outcomes o;
    memset(&o, 0x55, sizeof o);
    run(outcomes_main, &o);
    cr_assert_eq(o.rc_ok, 0);
    cr_assert_eq(o.ok.value, IPTR(7));
    cr_assert_eq(o.ok.err, 0);
    cr_assert_str_eq(o.ok.msg, "");
    cr_assert_eq(o.rc_fail, 0);
    cr_assert_eq(o.fail.err, ENOENT);
    cr_assert_str_eq(o.fail.msg, "no such user");
    cr_assert_null(o.fail.value);
    cr_assert_eq(o.rc_cancel, 0);
    cr_assert_eq(o.cancel.err, ECANCELED);
    cr_assert_eq(o.cancel.value, IPTR(1));
}

struct queries {
    int ready_before, ok_before, err_before;
    int ready_after, ok_after, err_after;
    const char *msg_after;
    char msg_copy[CO_MSG_MAX];
    int join_rc;
    void *join_result;
};

static void *queries_main(void *arg)
{
    struct queries *q = arg;
    co_t *b = co_spawn(fails_enoent, NULL);
    q->ready_before = co_ready(b);
    q->ok_before = co_successful(b);
    q->err_before = co_error(b, NULL);
    co_yield_now();
    co_yield_now();
    q->ready_after = co_ready(b);
    q->ok_after = co_successful(b);
    q->err_after = co_error(b, &q->msg_after);
    strcpy(q->msg_copy, q->msg_after);
    /* plain co_join still works on a failed coroutine (its ABI is kept) */
    q->join_rc = co_join(b, &q->join_result, co_deadline(SAFETY_MS));
    return NULL;
}

Test(join_status, ready_successful_and_error_are_answered_without_joining)
{
    struct queries q;
    memset(&q, 0x55, sizeof q);
    run(queries_main, &q);
    cr_assert_eq(q.ready_before, 0);
    cr_assert_eq(q.ok_before, 0);
    cr_assert_eq(q.err_before, 0);
    cr_assert_neq(q.ready_after, 0);
    cr_assert_eq(q.ok_after, 0);
    cr_assert_eq(q.err_after, ENOENT);
    cr_assert_str_eq(q.msg_copy, "no such user");
    cr_assert_eq(q.join_rc, 0);
    cr_assert_null(q.join_result);
}

static void *fails_twice_long_msg(void *arg)
{
    (void)arg;
    co_fail(EIO, "first");
    char big[200];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    co_fail(-3, big);
    return IPTR(9);
}

static void *fail_rules_main(void *arg)
{
    struct co_outcome *out = arg;
    co_t *c = co_spawn(fails_twice_long_msg, NULL);
    co_join_outcome(c, out, co_deadline(SAFETY_MS));
    return NULL;
}

Test(join_status, the_last_fail_wins_bad_errno_is_einval_and_msg_is_truncated)
{
    struct co_outcome out;
    memset(&out, 0, sizeof out);
    run(fail_rules_main, &out);
    cr_assert_eq(out.err, EINVAL);
    cr_assert_eq(strlen(out.msg), CO_MSG_MAX - 1);
    cr_assert_eq(out.value, IPTR(9)); /* the body's value is kept */
}

/* ---- link ------------------------------------------------------------ */

struct links {
    int order[8], n;
    int in_hub, ready_in_cb, err_in_cb;
    int unlink_rc, unlink_again_rc, late_ran;
};

static struct links *lk;

static void link_a(co_t *co, void *arg)
{
    lk->order[lk->n++] = (int)(intptr_t)arg;
    lk->in_hub = co_current() == NULL;
    lk->ready_in_cb = co_ready(co);
    lk->err_in_cb = co_error(co, NULL);
}

static void link_never(co_t *co, void *arg)
{
    (void)co, (void)arg;
    lk->order[lk->n++] = 99;
}

static void link_late(co_t *co, void *arg)
{
    (void)co, (void)arg;
    lk->late_ran = 1;
}

static void *link_joiner(void *arg)
{
    co_join((co_t *)arg, NULL, co_deadline(SAFETY_MS));
    lk->order[lk->n++] = 3; /* the joiner resumes after the links ran */
    return NULL;
}

static void *links_main(void *arg)
{
    lk = arg;
    co_t *b = co_spawn(fails_enoent, NULL);
    co_link(b, link_a, IPTR(1));
    co_link(b, link_never, NULL);
    co_link(b, link_a, IPTR(2));
    lk->unlink_rc = co_unlink(b, link_never, NULL);
    lk->unlink_again_rc = co_unlink(b, link_never, NULL) < 0 ? errno : 0;
    co_t *j = co_spawn(link_joiner, b);
    co_join(j, NULL, co_deadline(SAFETY_MS));
    co_t *done = co_spawn(returns_7, NULL);
    co_yield_now();
    co_link(done, link_late, NULL); /* already finished: runs at once */
    co_join(done, NULL, -1);
    return NULL;
}

Test(join_status, links_run_in_the_hub_in_order_before_joiners_resume)
{
    struct links l;
    memset(&l, 0, sizeof l);
    run(links_main, &l);
    cr_assert_eq(l.n, 3);
    cr_assert_eq(l.order[0], 1);
    cr_assert_eq(l.order[1], 2);
    cr_assert_eq(l.order[2], 3);
    cr_assert_eq(l.in_hub, 1);
    cr_assert_eq(l.ready_in_cb, 1);
    cr_assert_eq(l.err_in_cb, ENOENT);
    cr_assert_eq(l.unlink_rc, 0);
    cr_assert_eq(l.unlink_again_rc, ENOENT);
    cr_assert_eq(l.late_ran, 1);
}

/* ---- defect (a): a child joined by another while its parent returns --- */

struct reap {
    co_t *child;
    int join_rc, join_err;
    void *join_result;
    co_t *after[2];
};

static struct reap *rp;

static void *reap_child(void *arg)
{
    (void)arg;
    co_event_t *never = co_event_new();
    co_event_wait(never, co_deadline(LONG_MS)); /* until the reap cancels */
    co_event_free(never);
    return IPTR(5);
}

static void *reap_parent(void *arg)
{
    (void)arg;
    rp->child = co_spawn(reap_child, NULL);
    co_yield_now(); /* let the joiner start its join */
    co_yield_now();
    return NULL; /* the end reaps the child while the joiner waits on it */
}

static void *reap_joiner(void *arg)
{
    (void)arg;
    while (!rp->child)
        co_yield_now();
    errno = 0;
    rp->join_rc = co_join(rp->child, &rp->join_result, co_deadline(SAFETY_MS));
    rp->join_err = errno;
    return NULL;
}

static void *reap_main(void *arg)
{
    rp = arg;
    co_t *j = co_spawn(reap_joiner, NULL);
    co_t *p = co_spawn(reap_parent, NULL);
    co_join(p, NULL, co_deadline(SAFETY_MS));
    co_join(j, NULL, co_deadline(SAFETY_MS));
    /* a struct freed twice would come back twice from the free list */
    rp->after[0] = co_spawn(returns_7, NULL);
    rp->after[1] = co_spawn(returns_7, NULL);
    co_join_all(rp->after, 2, co_deadline(SAFETY_MS));
    return NULL;
}

Test(join_status,
     a_child_joined_by_another_while_its_parent_returns_is_freed_once)
{
    struct reap r;
    memset(&r, 0, sizeof r);
    run(reap_main, &r);
    cr_assert_eq(r.join_rc, 0, "join: %s", strerror(r.join_err));
    cr_assert_eq(r.join_result, IPTR(5));
    cr_assert_null(r.after[0]); /* both joined: distinct structs */
    cr_assert_null(r.after[1]);
}

static void *reap_main_distinct(void *arg)
{
    rp = arg;
    co_t *j = co_spawn(reap_joiner, NULL);
    co_t *p = co_spawn(reap_parent, NULL);
    co_join(p, NULL, co_deadline(SAFETY_MS));
    co_join(j, NULL, co_deadline(SAFETY_MS));
    co_t *a = co_spawn(waits_long, NULL);
    co_t *b = co_spawn(waits_long, NULL);
    rp->after[0] = a;
    rp->after[1] = b;
    co_cancel(a);
    if (a != b)
        co_cancel(b);
    co_join(a, NULL, co_deadline(SAFETY_MS));
    if (a != b)
        co_join(b, NULL, co_deadline(SAFETY_MS));
    return NULL;
}

Test(join_status, after_that_reap_two_new_coroutines_get_distinct_structs)
{
    struct reap r;
    memset(&r, 0, sizeof r);
    run(reap_main_distinct, &r);
    cr_assert_eq(r.join_rc, 0, "join: %s", strerror(r.join_err));
    cr_assert_neq(r.after[0], r.after[1]);
}
