/*
 * test_offload.c - co_offload and its thread pool: results, deadlines,
 * cancellation and abandon, per-thread hooks, co_offload_set_threads, and
 * the hub serving other coroutines while work runs.
 *
 * Each Criterion test runs in its own process, so each may size the pool
 * before its first co_offload(). Coroutines record, the test body asserts
 * after co_run() returns. No timing thresholds: sleeps in work functions
 * only make the interesting interleaving likely, and every wait for an
 * asynchronous effect is a bounded loop, asserted afterwards.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "coserve.h"

#ifdef COSERVE_ASAN
#include <sanitizer/lsan_interface.h>
#endif

/* Criterion ignores a test process's exit status once the test has passed,
 * so LeakSanitizer's report at exit would go unnoticed: check here, at the
 * end of the test, once everything the test allocated should be freed. */
static void assert_no_leaks(void)
{
#ifdef COSERVE_ASAN
    cr_assert_eq(__lsan_do_recoverable_leak_check(), 0,
                 "LeakSanitizer found leaks (see its report above)");
#endif
}

/* Sleeps the calling coroutine in 1 ms steps until *flag is non-zero or
 * about limit_ms passed. Returns the flag's value. */
static int wait_for_flag(atomic_int *flag, int limit_ms)
{
    int64_t end = co_deadline(limit_ms);
    while (!atomic_load(flag) && co_now() < end)
        if (co_sleep(co_deadline(1)) != 0)
            break;
    return atomic_load(flag);
}

static uint64_t mix(uint64_t x)
{
    /* splitmix64, iterated: enough work to be worth a thread. */
    for (int i = 0; i < 1000; i++) {
        x += 0x9e3779b97f4a7c15ull;
        uint64_t z = x;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        x = z ^ (z >> 31);
    }
    return x;
}

/* ===================================================================== */

#define MANY 1000

struct many_job {
    uint64_t in, out;
    pthread_t hub, ran_on;
};

static struct {
    struct many_job jobs[MANY];
    int rc[MANY], err[MANY];
    atomic_int abandons;
    int finished;
} many;

static void many_work(void *arg)
{
    struct many_job *j = arg;
    j->out = mix(j->in);
    j->ran_on = pthread_self();
}

static void many_abandon(void *arg)
{
    (void)arg;
    atomic_fetch_add(&many.abandons, 1);
}

static void *many_co(void *arg)
{
    size_t i = (size_t)(uintptr_t)arg;
    many.jobs[i].in = i * 7919u + 1;
    many.rc[i] = co_offload(many_work, &many.jobs[i], many_abandon, -1);
    many.err[i] = errno;
    many.finished++;
    return NULL;
}

static void *many_main(void *arg)
{
    (void)arg;
    co_t *cos[MANY];
    for (size_t i = 0; i < MANY; i++) {
        cos[i] = co_spawn(many_co, (void *)(uintptr_t)i);
        if (!cos[i])
            return (void *)"co_spawn failed";
    }
    if (co_join_all(cos, MANY, co_deadline(60000)) != 0)
        return (void *)"co_join_all failed";
    return NULL;
}

Test(offload, thousand_concurrent_offloads_return_correct_results)
{
    cr_assert_eq(co_offload_set_threads(4), 0);
    memset(&many, 0, sizeof many);
    void *res = (void *)"not run";
    cr_assert_eq(co_run(many_main, NULL, &res), 0);
    cr_assert_null(res, "%s", (char *)res);
    cr_assert_eq(many.finished, MANY);
    pthread_t self = pthread_self();
    for (size_t i = 0; i < MANY; i++) {
        cr_assert_eq(many.rc[i], 0, "job %zu: %s", i, strerror(many.err[i]));
        cr_assert_eq(many.jobs[i].out, mix(i * 7919u + 1), "job %zu: wrong", i);
        cr_assert(!pthread_equal(many.jobs[i].ran_on, self),
                  "job %zu ran on the hub thread", i);
    }
    cr_assert_eq(atomic_load(&many.abandons), 0,
                 "abandon called after work that completed");
    assert_no_leaks();
}

/* ===================================================================== */

/* Shared by the deadline and cancel tests: heap args freed by abandon. */
static atomic_int work_started, work_done, abandon_calls;
static atomic_int done_when_abandoned = -1;
static pthread_t hub_thread, abandon_thread;

struct slow_arg {
    useconds_t us;
    char *payload; /* a second allocation, so a leak is a clear leak */
};

static void slow_work(void *arg)
{
    struct slow_arg *a = arg;
    atomic_store(&work_started, 1);
    usleep(a->us);
    a->payload[0] = 'x';
    atomic_store(&work_done, 1);
}

static void slow_abandon(void *arg)
{
    struct slow_arg *a = arg;
    atomic_store(&done_when_abandoned, atomic_load(&work_done));
    abandon_thread = pthread_self();
    atomic_fetch_add(&abandon_calls, 1);
    free(a->payload);
    free(a);
}

static struct slow_arg *slow_arg_new(useconds_t us)
{
    struct slow_arg *a = malloc(sizeof *a);
    if (a) {
        a->us = us;
        a->payload = malloc(64);
    }
    return a;
}

struct deadline_case {
    int rc, err;
    int done_at_return;
    int abandoned_seen;
};

static void *deadline_main(void *arg)
{
    struct deadline_case *c = arg;
    struct slow_arg *a = slow_arg_new(200000);
    if (!a || !a->payload)
        return (void *)"malloc failed";
    c->rc = co_offload(slow_work, a, slow_abandon, co_deadline(20));
    c->err = errno;
    c->done_at_return = atomic_load(&work_done);
    /* abandon runs on this hub once the work ends: keep the hub alive. */
    c->abandoned_seen = wait_for_flag(&abandon_calls, 10000);
    co_sleep(co_deadline(20)); /* room for a wrong second call */
    return NULL;
}

Test(offload, deadline_shorter_than_the_work_times_out_then_abandons_after_it)
{
    cr_assert_eq(co_offload_set_threads(2), 0);
    hub_thread = pthread_self();
    struct deadline_case c = {0};
    void *res = (void *)"not run";
    cr_assert_eq(co_run(deadline_main, &c, &res), 0);
    cr_assert_null(res, "%s", (char *)res);
    cr_assert_eq(c.rc, -1);
    cr_assert_eq(c.err, ETIMEDOUT, "errno %d (%s)", c.err, strerror(c.err));
    cr_assert(c.abandoned_seen, "abandon was never called");
    cr_assert_eq(atomic_load(&abandon_calls), 1);
    cr_assert_eq(atomic_load(&done_when_abandoned), 1,
                 "abandon ran before the work had finished");
    cr_assert(pthread_equal(abandon_thread, hub_thread),
              "abandon did not run on the hub's thread");
    cr_assert_eq(atomic_load(&work_done), 1);
    cr_log_info("work done when co_offload returned: %d", c.done_at_return);
    assert_no_leaks();
}

/* ===================================================================== */

struct cancel_case {
    co_t *waiter;
    int waiter_started;
    int rc, err;
    int abandoned_seen;
};

static void *cancel_waiter(void *arg)
{
    struct cancel_case *c = arg;
    struct slow_arg *a = slow_arg_new(100000);
    if (!a || !a->payload)
        return NULL;
    c->waiter_started = 1;
    c->rc = co_offload(slow_work, a, slow_abandon, -1);
    c->err = errno;
    return NULL;
}

static void *cancel_main(void *arg)
{
    struct cancel_case *c = arg;
    c->waiter = co_spawn(cancel_waiter, c);
    if (!c->waiter)
        return (void *)"co_spawn failed";
    /* Cancel once the work is really running on a thread. */
    if (!wait_for_flag(&work_started, 10000))
        return (void *)"the work never started";
    co_cancel(c->waiter);
    if (co_join(c->waiter, NULL, co_deadline(10000)) != 0)
        return (void *)"co_join of the cancelled waiter failed";
    c->abandoned_seen = wait_for_flag(&abandon_calls, 10000);
    co_sleep(co_deadline(20)); /* room for a wrong second call */
    return NULL;
}

Test(offload, cancelled_waiter_gets_ecanceled_and_the_work_still_finishes)
{
    cr_assert_eq(co_offload_set_threads(2), 0);
    hub_thread = pthread_self();
    struct cancel_case c = {0};
    void *res = (void *)"not run";
    cr_assert_eq(co_run(cancel_main, &c, &res), 0);
    cr_assert_null(res, "%s", (char *)res);
    cr_assert(c.waiter_started);
    cr_assert_eq(c.rc, -1);
    cr_assert_eq(c.err, ECANCELED, "errno %d (%s)", c.err, strerror(c.err));
    cr_assert_eq(atomic_load(&work_done), 1, "the work did not finish");
    cr_assert(c.abandoned_seen, "abandon was never called");
    cr_assert_eq(atomic_load(&abandon_calls), 1);
    cr_assert_eq(atomic_load(&done_when_abandoned), 1,
                 "abandon ran before the work had finished");
    cr_assert(pthread_equal(abandon_thread, hub_thread),
              "abandon did not run on the hub's thread");
    assert_no_leaks();
}

/* ===================================================================== */

/* One thread, busy with a blocker: a second job is still queued when its
 * waiter is cancelled, so it must be skipped and only abandoned. */
static atomic_int blocker_started, blocker_may_end, queued_ran;

static void blocker_work(void *arg)
{
    (void)arg;
    atomic_store(&blocker_started, 1);
    while (!atomic_load(&blocker_may_end))
        usleep(1000);
}

static void queued_work(void *arg)
{
    (void)arg;
    atomic_store(&queued_ran, 1);
}

static void queued_abandon(void *arg)
{
    atomic_fetch_add(&abandon_calls, 1);
    free(arg);
}

struct queued_case {
    int blocker_rc, blocker_err;
    int queued_started;
    int queued_rc, queued_err;
    int abandoned_seen;
};

static void *blocker_co(void *arg)
{
    struct queued_case *c = arg;
    c->blocker_rc = co_offload(blocker_work, NULL, NULL, -1);
    c->blocker_err = errno;
    return NULL;
}

static void *queued_co(void *arg)
{
    struct queued_case *c = arg;
    void *heap = malloc(32);
    c->queued_started = 1;
    c->queued_rc = co_offload(queued_work, heap, queued_abandon, -1);
    c->queued_err = errno;
    if (c->queued_rc == 0)
        free(heap);
    return NULL;
}

static void *queued_main(void *arg)
{
    struct queued_case *c = arg;
    co_t *b = co_spawn(blocker_co, c);
    if (!b)
        return (void *)"co_spawn failed";
    if (!wait_for_flag(&blocker_started, 10000))
        return (void *)"blocker never started";
    co_t *q = co_spawn(queued_co, c);
    if (!q)
        return (void *)"co_spawn failed";
    while (!c->queued_started)
        co_yield_now();
    co_yield_now();
    co_cancel(q);
    if (co_join(q, NULL, co_deadline(10000)) != 0)
        return (void *)"co_join of the cancelled waiter failed";
    atomic_store(&blocker_may_end, 1);
    if (co_join(b, NULL, co_deadline(10000)) != 0)
        return (void *)"co_join of the blocker failed";
    c->abandoned_seen = wait_for_flag(&abandon_calls, 10000);
    co_sleep(co_deadline(20));
    return NULL;
}

Test(offload, cancelled_work_that_no_thread_took_is_skipped_and_abandoned)
{
    cr_assert_eq(co_offload_set_threads(1), 0);
    struct queued_case c = {0};
    void *res = (void *)"not run";
    cr_assert_eq(co_run(queued_main, &c, &res), 0);
    cr_assert_null(res, "%s", (char *)res);
    cr_assert_eq(c.blocker_rc, 0, "blocker: %s", strerror(c.blocker_err));
    cr_assert_eq(c.queued_rc, -1);
    cr_assert_eq(c.queued_err, ECANCELED, "errno %d (%s)", c.queued_err,
                 strerror(c.queued_err));
    cr_assert(c.abandoned_seen, "abandon was never called");
    cr_assert_eq(atomic_load(&abandon_calls), 1);
    cr_assert_not(atomic_load(&queued_ran),
                  "work queued behind a busy thread ran after its cancel");
    assert_no_leaks();
}

/* ===================================================================== */

/* A coroutine cancelled before it ever waits: co_offload fails at once, the
 * work is never taken, and abandon still frees the heap arg. */
struct precancel_case {
    co_t *child;
    int rc, err;
    int abandoned_seen;
};

static void *precancel_child(void *arg)
{
    struct precancel_case *c = arg;
    struct slow_arg *a = slow_arg_new(1000);
    if (!a || !a->payload)
        return NULL;
    c->rc = co_offload(slow_work, a, slow_abandon, -1);
    c->err = errno;
    return NULL;
}

static void *precancel_main(void *arg)
{
    struct precancel_case *c = arg;
    c->child = co_spawn(precancel_child, c);
    if (!c->child)
        return (void *)"co_spawn failed";
    co_cancel(c->child); /* before it first runs */
    if (co_join(c->child, NULL, co_deadline(10000)) != 0)
        return (void *)"co_join failed";
    c->abandoned_seen = wait_for_flag(&abandon_calls, 1000);
    return NULL;
}

Test(offload, offload_from_a_cancelled_coroutine_fails_and_still_abandons)
{
    struct precancel_case c = {0};
    void *res = (void *)"not run";
    cr_assert_eq(co_run(precancel_main, &c, &res), 0);
    cr_assert_null(res, "%s", (char *)res);
    cr_assert_eq(c.rc, -1);
    cr_assert_eq(c.err, ECANCELED, "errno %d (%s)", c.err, strerror(c.err));
    cr_assert_not(atomic_load(&work_started), "the work ran");
    cr_assert_eq(atomic_load(&abandon_calls), 1,
                 "abandon called %d times: the heap arg %s",
                 atomic_load(&abandon_calls),
                 atomic_load(&abandon_calls) ? "was freed twice" : "leaks");
    assert_no_leaks();
}

/* ===================================================================== */

struct past_case {
    int rc, err;
    int abandoned_seen;
};

static void *past_main(void *arg)
{
    struct past_case *c = arg;
    struct slow_arg *a = slow_arg_new(1000);
    if (!a || !a->payload)
        return (void *)"malloc failed";
    c->rc = co_offload(slow_work, a, slow_abandon, co_now() - 1);
    c->err = errno;
    c->abandoned_seen = wait_for_flag(&abandon_calls, 10000);
    co_sleep(co_deadline(20));
    return NULL;
}

Test(offload, deadline_already_passed_times_out_and_abandons_once)
{
    hub_thread = pthread_self();
    struct past_case c = {0};
    void *res = (void *)"not run";
    cr_assert_eq(co_run(past_main, &c, &res), 0);
    cr_assert_null(res, "%s", (char *)res);
    cr_assert_eq(c.rc, -1);
    cr_assert_eq(c.err, ETIMEDOUT, "errno %d (%s)", c.err, strerror(c.err));
    cr_assert(c.abandoned_seen, "abandon was never called");
    cr_assert_eq(atomic_load(&abandon_calls), 1);
    cr_assert(pthread_equal(abandon_thread, hub_thread),
              "abandon did not run on the hub's thread");
    /* If the work ran, abandon came after it. */
    if (atomic_load(&work_started))
        cr_assert_eq(atomic_load(&done_when_abandoned), 1);
    assert_no_leaks();
}

/* ===================================================================== */

/* Two hubs on two threads offload at once: every completion comes back to
 * the hub that asked, and abandon runs on that hub's thread. */
#define MH_HUBS 2
#define MH_CO 100

struct mh_hub {
    pthread_t thread;
    int run_rc;
    void *run_res;
    uint64_t out[MH_CO];
    int rc[MH_CO];
    pthread_t resumed_on[MH_CO];
    int timed_out;
    atomic_int abandons;
    int abandon_wrong_thread;
};

struct mh_job {
    uint64_t in, *out;
};

static void mh_work(void *arg)
{
    struct mh_job *j = arg;
    *j->out = mix(j->in);
}

struct mh_slow {
    struct mh_hub *hub;
    char *payload;
};

static void mh_slow_work(void *arg)
{
    (void)arg;
    usleep(50000);
}

static void mh_slow_abandon(void *arg)
{
    struct mh_slow *a = arg;
    if (!pthread_equal(pthread_self(), a->hub->thread))
        a->hub->abandon_wrong_thread = 1;
    atomic_fetch_add(&a->hub->abandons, 1);
    free(a->payload);
    free(a);
}

static struct mh_hub mh[MH_HUBS];

static void *mh_co(void *arg)
{
    uintptr_t v = (uintptr_t)arg;
    struct mh_hub *h = &mh[v / MH_CO];
    size_t i = v % MH_CO;
    struct mh_job j = {.in = v * 31 + 7, .out = &h->out[i]};
    h->rc[i] = co_offload(mh_work, &j, NULL, -1);
    h->resumed_on[i] = pthread_self();
    return NULL;
}

static void *mh_main(void *arg)
{
    struct mh_hub *h = arg;
    size_t hub_index = (size_t)(h - mh);
    co_t *cos[MH_CO];
    for (size_t i = 0; i < MH_CO; i++)
        if (!(cos[i] =
                  co_spawn(mh_co, (void *)(uintptr_t)(hub_index * MH_CO + i))))
            return (void *)"co_spawn failed";
    /* One abandoned task per hub as well. */
    struct mh_slow *a = malloc(sizeof *a);
    if (!a || !(a->payload = malloc(16)))
        return (void *)"malloc failed";
    a->hub = h;
    if (co_offload(mh_slow_work, a, mh_slow_abandon, co_deadline(5)) == 0) {
        free(a->payload); /* finished in time after all: ours to free */
        free(a);
    } else if (errno == ETIMEDOUT) {
        h->timed_out = 1;
    }
    if (co_join_all(cos, MH_CO, co_deadline(30000)) != 0)
        return (void *)"co_join_all failed";
    return NULL;
}

static void *mh_thread(void *arg)
{
    struct mh_hub *h = arg;
    h->run_res = (void *)"not run";
    h->run_rc = co_run(mh_main, h, &h->run_res);
    return NULL;
}

Test(offload, offloads_from_two_hub_threads_come_back_to_their_own_hub)
{
    cr_assert_eq(co_offload_set_threads(3), 0);
    memset(mh, 0, sizeof mh);
    for (int k = 0; k < MH_HUBS; k++)
        cr_assert_eq(pthread_create(&mh[k].thread, NULL, mh_thread, &mh[k]), 0);
    for (int k = 0; k < MH_HUBS; k++)
        pthread_join(mh[k].thread, NULL);
    for (int k = 0; k < MH_HUBS; k++) {
        struct mh_hub *h = &mh[k];
        cr_assert_eq(h->run_rc, 0, "hub %d: co_run failed", k);
        cr_assert_null(h->run_res, "hub %d: %s", k, (char *)h->run_res);
        for (size_t i = 0; i < MH_CO; i++) {
            uint64_t v = (uint64_t)(k * MH_CO + i);
            cr_assert_eq(h->rc[i], 0, "hub %d job %zu failed", k, i);
            cr_assert_eq(h->out[i], mix(v * 31 + 7), "hub %d job %zu wrong", k,
                         i);
            cr_assert(pthread_equal(h->resumed_on[i], h->thread),
                      "hub %d job %zu resumed on another thread", k, i);
        }
        /* The 5 ms deadline against 50 ms of work: a timeout, unless the
         * machine stalled the hub for that long. Either way abandon runs
         * once per timeout, on this hub's thread, before co_run returns. */
        cr_assert_eq(atomic_load(&h->abandons), h->timed_out,
                     "hub %d: %d abandons for %d timeouts", k,
                     atomic_load(&h->abandons), h->timed_out);
        cr_assert_not(h->abandon_wrong_thread,
                      "hub %d: abandon ran on another thread", k);
    }
    assert_no_leaks();
}

/* ===================================================================== */

#define HOOK_THREADS 3
#define HOOK_CO 30
#define HOOK_JOBS_PER_CO 4

static int hook_token;
static __thread int tls_init_done;
static __thread int tls_init_runs;
static atomic_int init_calls, fini_calls, bad_arg, task_without_init,
    init_twice, tasks_run;

static void hook_init(void *arg)
{
    if (arg != &hook_token)
        atomic_store(&bad_arg, 1);
    if (++tls_init_runs > 1)
        atomic_store(&init_twice, 1);
    tls_init_done = 1;
    atomic_fetch_add(&init_calls, 1);
}

static void hook_fini(void *arg)
{
    if (arg != &hook_token)
        atomic_store(&bad_arg, 1);
    atomic_fetch_add(&fini_calls, 1);
}

static void hook_task(void *arg)
{
    (void)arg;
    if (!tls_init_done)
        atomic_store(&task_without_init, 1);
    atomic_fetch_add(&tasks_run, 1);
    usleep(500); /* let the tasks spread over the threads */
}

static void plain_task(void *arg)
{
    (void)arg;
    atomic_fetch_add(&tasks_run, 1);
}

static int hook_rc[HOOK_CO];

static void *hook_co(void *arg)
{
    size_t i = (size_t)(uintptr_t)arg;
    for (int j = 0; j < HOOK_JOBS_PER_CO; j++)
        if (co_offload(hook_task, NULL, NULL, -1) != 0)
            hook_rc[i] = errno;
    return NULL;
}

static void *hook_main(void *arg)
{
    int register_late = *(int *)arg;
    if (register_late) {
        /* Start the pool first: hooks then apply before each existing
         * thread's next task. */
        if (co_offload(plain_task, NULL, NULL, -1) != 0)
            return (void *)"first co_offload failed";
        if (co_offload_hook(hook_init, hook_fini, &hook_token) != 0)
            return (void *)"co_offload_hook failed";
    }
    co_t *cos[HOOK_CO];
    for (size_t i = 0; i < HOOK_CO; i++)
        if (!(cos[i] = co_spawn(hook_co, (void *)(uintptr_t)i)))
            return (void *)"co_spawn failed";
    if (co_join_all(cos, HOOK_CO, co_deadline(30000)) != 0)
        return (void *)"co_join_all failed";
    return NULL;
}

static void check_hooks(void)
{
    for (int i = 0; i < HOOK_CO; i++)
        cr_assert_eq(hook_rc[i], 0, "co %d: %s", i, strerror(hook_rc[i]));
    cr_assert_not(atomic_load(&task_without_init),
                  "a task ran on a thread whose init had not run");
    cr_assert_not(atomic_load(&bad_arg), "a hook got the wrong arg");
    cr_assert_not(atomic_load(&init_twice), "init ran twice on one thread");
    cr_assert_geq(atomic_load(&init_calls), 1);
    cr_assert_leq(atomic_load(&init_calls), HOOK_THREADS);
    /* fini runs when a thread stops; if the pool outlives co_run that is
     * not observable here, and only a count larger than init's is wrong. */
    int fini = atomic_load(&fini_calls);
    cr_assert_leq(fini, atomic_load(&init_calls));
    cr_log_info("init calls %d, fini calls seen after co_run %d",
                atomic_load(&init_calls), fini);
}

Test(offload, init_hook_runs_on_each_thread_before_its_tasks)
{
    cr_assert_eq(co_offload_set_threads(HOOK_THREADS), 0);
    cr_assert_eq(co_offload_hook(hook_init, hook_fini, &hook_token), 0);
    int late = 0;
    void *res = (void *)"not run";
    cr_assert_eq(co_run(hook_main, &late, &res), 0);
    cr_assert_null(res, "%s", (char *)res);
    cr_assert_eq(atomic_load(&tasks_run), HOOK_CO * HOOK_JOBS_PER_CO);
    check_hooks();
    assert_no_leaks();
}

Test(offload, hook_registered_after_the_pool_started_runs_before_next_tasks)
{
    cr_assert_eq(co_offload_set_threads(HOOK_THREADS), 0);
    int late = 1;
    void *res = (void *)"not run";
    cr_assert_eq(co_run(hook_main, &late, &res), 0);
    cr_assert_null(res, "%s", (char *)res);
    cr_assert_eq(atomic_load(&tasks_run), HOOK_CO * HOOK_JOBS_PER_CO + 1);
    check_hooks();
    assert_no_leaks();
}

/* fini runs when the pool stops, at exit. Observed in a forked child: its
 * own atexit handler, registered before the pool started (so it runs after
 * the pool's), reports through the exit status. */
static void fini_check_at_exit(void)
{
    int init = atomic_load(&init_calls), fini = atomic_load(&fini_calls);
    if (init < 1)
        _exit(20);
    if (fini != init)
        _exit(fini < init ? 21 : 22);
    if (atomic_load(&task_without_init) || atomic_load(&bad_arg))
        _exit(23);
    _exit(0);
}

Test(offload, fini_hook_runs_on_every_thread_when_the_process_exits)
{
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        /* Child: no Criterion assertions here. */
        if (co_offload_set_threads(HOOK_THREADS) != 0 ||
            co_offload_hook(hook_init, hook_fini, &hook_token) != 0)
            _exit(30);
        atexit(fini_check_at_exit);
        int late = 0;
        void *res = (void *)"not run";
        if (co_run(hook_main, &late, &res) != 0 || res != NULL)
            _exit(31);
        if (atomic_load(&fini_calls) != 0)
            _exit(32); /* the pool stopped before exit */
        exit(0);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status), "child died (signal %d)",
              WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    int code = WEXITSTATUS(status);
    cr_assert_neq(code, 20, "init never ran");
    cr_assert_neq(code, 21, "fini ran on fewer threads than init");
    cr_assert_neq(code, 22, "fini ran more often than init");
    cr_assert_neq(code, 23, "a task ran before init, or a hook got a bad arg");
    cr_assert_eq(code, 0, "child failed with exit code %d", code);
}

/* ===================================================================== */

struct busy_case {
    int set_rc, set_err;
};

static void *busy_main(void *arg)
{
    struct busy_case *c = arg;
    if (co_offload(plain_task, NULL, NULL, -1) != 0)
        return (void *)"co_offload failed";
    errno = 0;
    c->set_rc = co_offload_set_threads(3);
    c->set_err = errno;
    return NULL;
}

Test(offload, set_threads_rejects_zero_and_too_many_then_busy_once_started)
{
    errno = 0;
    cr_assert_eq(co_offload_set_threads(0), -1);
    cr_assert_eq(errno, EINVAL, "n=0: errno %d", errno);
    errno = 0;
    cr_assert_eq(co_offload_set_threads(1025), -1);
    cr_assert_eq(errno, EINVAL, "n=1025: errno %d", errno);
    cr_assert_eq(co_offload_set_threads(1024), 0);
    cr_assert_eq(co_offload_set_threads(2), 0);

    struct busy_case c = {0};
    void *res = (void *)"not run";
    cr_assert_eq(co_run(busy_main, &c, &res), 0);
    cr_assert_null(res, "%s", (char *)res);
    cr_assert_eq(c.set_rc, -1);
    cr_assert_eq(c.set_err, EBUSY, "errno %d (%s)", c.set_err,
                 strerror(c.set_err));
    assert_no_leaks();
}

/* ===================================================================== */

struct progress_case {
    int stop;
    long ticks;
    long ticks_at_return;
    int rc, err;
    int by_yield;
};

static void sleep_100ms(void *arg)
{
    (void)arg;
    usleep(100000);
}

static void *ticker(void *arg)
{
    struct progress_case *c = arg;
    while (!c->stop) {
        c->ticks++;
        int rc = c->by_yield ? co_yield_now() : co_sleep(co_deadline(1));
        if (rc != 0)
            break;
    }
    return NULL;
}

static void *progress_main(void *arg)
{
    struct progress_case *c = arg;
    co_t *t = co_spawn(ticker, c);
    if (!t)
        return (void *)"co_spawn failed";
    c->rc = co_offload(sleep_100ms, NULL, NULL, -1);
    c->err = errno;
    c->ticks_at_return = c->ticks;
    c->stop = 1;
    if (co_join(t, NULL, co_deadline(10000)) != 0)
        return (void *)"co_join failed";
    return NULL;
}

Test(offload, other_coroutines_keep_sleeping_and_waking_while_work_runs)
{
    struct progress_case c = {0};
    void *res = (void *)"not run";
    cr_assert_eq(co_run(progress_main, &c, &res), 0);
    cr_assert_null(res, "%s", (char *)res);
    cr_assert_eq(c.rc, 0, "co_offload: %s", strerror(c.err));
    cr_assert_gt(c.ticks_at_return, 1,
                 "the ticker did not run while the offload was in flight");
    assert_no_leaks();
}

Test(offload, work_completes_while_another_coroutine_yields_in_a_loop)
{
    /* The completion must get through even though the ready queue is never
     * empty. */
    struct progress_case c = {.by_yield = 1};
    void *res = (void *)"not run";
    cr_assert_eq(co_run(progress_main, &c, &res), 0);
    cr_assert_null(res, "%s", (char *)res);
    cr_assert_eq(c.rc, 0, "co_offload: %s", strerror(c.err));
    cr_assert_gt(c.ticks_at_return, 1,
                 "the ticker did not run while the offload was in flight");
    assert_no_leaks();
}

/* ===================================================================== */

static void calls_the_api(void *arg)
{
    (void)arg;
    co_yield_now(); /* a cooperative call from a worker thread: must abort */
}

static void *api_main(void *arg)
{
    (void)arg;
    co_offload(calls_the_api, NULL, NULL, -1);
    return NULL;
}

Test(offload, cooperative_call_from_an_offload_thread_aborts, .signal = SIGABRT)
{
    co_run(api_main, NULL, NULL);
}
