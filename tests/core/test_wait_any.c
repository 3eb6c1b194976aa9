/*
 * test_wait_any.c - co_wait_any / co_wait_next (server/core/wait.c): which
 * entry of a mixed set became ready, deadline expiry, cancel, the iterator
 * form, bad arguments, and more entries than fit on the stack.
 */
#include <fcntl.h>
#include <stdint.h>
#include <unistd.h>

#include "util.h"

#define IPTR(i) ((void *)(intptr_t)(i))

struct st {
    int rc, err;
    int revents;
    int order[8], n;
    int extra[4];
};

static void *finishes_after_yields(void *arg)
{
    for (int i = 0; i < (int)(intptr_t)arg; i++)
        co_yield_now();
    return NULL;
}

static co_event_t *setter_ev;
static void *sets_event_later(void *arg)
{
    co_sleep(co_deadline((int)(intptr_t)arg));
    co_event_set(setter_ev);
    return NULL;
}

/* Already ready at the call: the lowest ready index wins, no wait. */
static void *ready_main(void *arg)
{
    struct st *s = arg;
    co_event_t *e0 = co_event_new(), *e1 = co_event_new();
    co_sem_t *sem = co_sem_new(1);
    co_event_set(e1);
    struct co_waitable w[3] = {
        {.kind = CO_WAIT_EVENT, .event = e0},
        {.kind = CO_WAIT_EVENT, .event = e1},
        {.kind = CO_WAIT_SEM, .sem = sem},
    };
    s->rc = co_wait_any(w, 3, co_deadline(SAFETY_MS));
    s->revents = w[1].revents;
    s->extra[0] = w[0].revents;
    s->extra[1] = w[2].revents;
    co_event_free(e0);
    co_event_free(e1);
    co_sem_free(sem);
    return NULL;
}

Test(wait_any, returns_the_lowest_entry_already_ready)
{
    struct st s = {.rc = -2};
    run(ready_main, &s);
    cr_assert_eq(s.rc, 1);
    cr_assert_eq(s.revents, CO_READABLE);
    cr_assert_eq(s.extra[0], 0);
    cr_assert_eq(s.extra[1], CO_READABLE); /* what it saw, for every entry */
}

/* Nothing ready at first: each kind in turn is the one that wakes it. */
struct mixed {
    int idx[5], rev[5];
};

static co_chan_t *mx_ch;
static int mx_pipe[2];

static void *mx_sender(void *arg)
{
    (void)arg;
    co_yield_now();
    int v = 42;
    co_chan_send(mx_ch, &v, co_deadline(SAFETY_MS)); /* waits: unbuffered */
    return NULL;
}

static void *mx_writer(void *arg)
{
    (void)arg;
    co_yield_now();
    co_write_all(mx_pipe[1], "x", 1, co_deadline(SAFETY_MS));
    return NULL;
}

static void *mx_releaser(void *arg)
{
    co_yield_now();
    co_sem_release(arg);
    return NULL;
}

static void *mixed_main(void *arg)
{
    struct mixed *m = arg;
    co_event_t *ev = co_event_new();
    co_sem_t *sem = co_sem_new(0);
    mx_ch = co_chan_new(sizeof(int), 0);
    cr_assert_eq(pipe2(mx_pipe, O_NONBLOCK | O_CLOEXEC), 0);
    co_t *child = co_spawn(finishes_after_yields, IPTR(3));
    struct co_waitable w[5] = {
        {.kind = CO_WAIT_EVENT, .event = ev},
        {.kind = CO_WAIT_CHAN, .chan = mx_ch, .events = CO_READABLE},
        {.kind = CO_WAIT_SEM, .sem = sem},
        {.kind = CO_WAIT_FD, .fd = mx_pipe[0], .events = CO_READABLE},
        {.kind = CO_WAIT_CO, .co = child},
    };
    /* 1: the coroutine finishes (nothing else happens) */
    m->idx[0] = co_wait_any(w, 5, co_deadline(SAFETY_MS));
    m->rev[0] = w[4].revents;
    co_join(child, NULL, -1);
    w[4].kind = CO_WAIT_NONE;
    /* 2: a sender blocks on the unbuffered channel: readable */
    co_t *s = co_spawn(mx_sender, NULL);
    m->idx[1] = co_wait_any(w, 5, co_deadline(SAFETY_MS));
    m->rev[1] = w[1].revents;
    int v = 0;
    co_chan_recv(mx_ch, &v, co_deadline(SAFETY_MS));
    co_join(s, NULL, -1);
    /* 3: a permit is released */
    s = co_spawn(mx_releaser, sem);
    m->idx[2] = co_wait_any(w, 5, co_deadline(SAFETY_MS));
    m->rev[2] = w[2].revents;
    co_sem_acquire(sem, co_deadline(SAFETY_MS));
    co_join(s, NULL, -1);
    /* 4: the pipe gets a byte */
    s = co_spawn(mx_writer, NULL);
    m->idx[3] = co_wait_any(w, 5, co_deadline(SAFETY_MS));
    m->rev[3] = w[3].revents;
    char c;
    read(mx_pipe[0], &c, 1);
    co_join(s, NULL, -1);
    /* 5: the event is set, after a real sleep */
    setter_ev = ev;
    s = co_spawn(sets_event_later, IPTR(20));
    m->idx[4] = co_wait_any(w, 5, co_deadline(SAFETY_MS));
    m->rev[4] = w[0].revents;
    co_join(s, NULL, -1);
    cr_assert_eq(v, 42);
    close(mx_pipe[0]);
    close(mx_pipe[1]);
    co_chan_free(mx_ch); /* would abort if a watcher were left on it */
    co_sem_free(sem);
    co_event_free(ev);
    return NULL;
}

Test(wait_any, reports_which_of_a_mixed_set_became_ready)
{
    struct mixed m;
    memset(&m, 0x55, sizeof m);
    run(mixed_main, &m);
    int want[5] = {4, 1, 2, 3, 0};
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(m.idx[i], want[i], "step %d: index %d", i, m.idx[i]);
        cr_assert_eq(m.rev[i], CO_READABLE, "step %d: revents %d", i, m.rev[i]);
    }
}

static void *writable_main(void *arg)
{
    struct st *s = arg;
    co_chan_t *full = co_chan_new(sizeof(int), 1), *roomy = co_chan_new(4, 2);
    int v = 1;
    co_chan_send(full, &v, -1);
    struct co_waitable w[2] = {
        {.kind = CO_WAIT_CHAN, .chan = full, .events = CO_WRITABLE},
        {.kind = CO_WAIT_CHAN, .chan = roomy, .events = CO_WRITABLE},
    };
    s->rc = co_wait_any(w, 2, co_deadline(SAFETY_MS));
    s->extra[0] = w[0].revents;
    /* only the full one now: it becomes writable when a message leaves */
    w[1].kind = CO_WAIT_NONE;
    s->extra[1] = co_wait_any(w, 2, co_deadline(30));
    s->extra[2] = errno;
    co_chan_recv(full, &v, -1);
    s->extra[3] = co_wait_any(w, 2, co_deadline(SAFETY_MS));
    co_chan_free(full);
    co_chan_free(roomy);
    return NULL;
}

Test(wait_any, channel_writable_means_a_send_would_not_wait)
{
    struct st s = {.rc = -2};
    run(writable_main, &s);
    cr_assert_eq(s.rc, 1);
    cr_assert_eq(s.extra[0], 0);
    cr_assert_eq(s.extra[1], -1);
    cr_assert_eq(s.extra[2], ETIMEDOUT);
    cr_assert_eq(s.extra[3], 0);
}

/* ---- deadline and cancel ---------------------------------------------- */

static void *deadline_main(void *arg)
{
    struct st *s = arg;
    co_event_t *ev = co_event_new();
    int p[2];
    cr_assert_eq(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    struct co_waitable w[2] = {
        {.kind = CO_WAIT_EVENT, .event = ev},
        {.kind = CO_WAIT_FD, .fd = p[0], .events = CO_READABLE},
    };
    errno = 0;
    s->rc = co_wait_any(w, 2, co_deadline(20));
    s->err = errno;
    /* the watchers are gone: a set now wakes nobody, and the event frees */
    co_event_set(ev);
    co_event_free(ev);
    close(p[0]);
    close(p[1]);
    return NULL;
}

Test(wait_any, fails_with_etimedout_at_the_deadline)
{
    struct st s = {.rc = -2};
    run(deadline_main, &s);
    cr_assert_eq(s.rc, -1);
    cr_assert_eq(s.err, ETIMEDOUT);
}

static co_event_t *cancel_ev;
static void *cancel_waiter(void *arg)
{
    struct st *s = arg;
    struct co_waitable w[1] = {{.kind = CO_WAIT_EVENT, .event = cancel_ev}};
    errno = 0;
    s->rc = co_wait_any(w, 1, co_deadline(LONG_MS));
    s->err = errno;
    return NULL;
}

static void *cancel_main(void *arg)
{
    cancel_ev = co_event_new();
    co_t *c = co_spawn(cancel_waiter, arg);
    co_yield_now();
    co_cancel(c);
    co_join(c, NULL, co_deadline(SAFETY_MS));
    co_event_free(cancel_ev);
    return NULL;
}

Test(wait_any, a_cancel_ends_the_wait_with_ecanceled)
{
    struct st s = {.rc = -2};
    run(cancel_main, &s);
    cr_assert_eq(s.rc, -1);
    cr_assert_eq(s.err, ECANCELED);
}

/* ---- iwait ------------------------------------------------------------ */

static void *iwait_main(void *arg)
{
    struct st *s = arg;
    /* coroutines that finish in the order 2, 0, 3, 1 */
    int yields[4] = {6, 12, 2, 9};
    struct co_waitable w[4];
    co_t *cos[4];
    for (int i = 0; i < 4; i++) {
        cos[i] = co_spawn(finishes_after_yields, IPTR(yields[i]));
        w[i] = (struct co_waitable){.kind = CO_WAIT_CO, .co = cos[i]};
    }
    int i;
    while ((i = co_wait_next(w, 4, co_deadline(SAFETY_MS))) >= 0)
        s->order[s->n++] = i;
    s->err = errno;
    co_join_all(cos, 4, -1);
    return NULL;
}

Test(wait_any, wait_next_reports_each_entry_once_as_it_becomes_ready)
{
    struct st s = {.rc = -2};
    run(iwait_main, &s);
    cr_assert_eq(s.n, 4);
    int want[4] = {2, 0, 3, 1};
    for (int i = 0; i < 4; i++)
        cr_assert_eq(s.order[i], want[i], "position %d: %d", i, s.order[i]);
    cr_assert_eq(s.err, ENOENT);
}

/* ---- arguments -------------------------------------------------------- */

static void *args_main(void *arg)
{
    struct st *s = arg;
    struct co_waitable w[2] = {{.kind = CO_WAIT_NONE}, {.kind = CO_WAIT_NONE}};
    s->extra[0] = co_wait_any(w, 2, -1) < 0 ? errno : 0;
    w[0] = (struct co_waitable){.kind = 77};
    s->extra[1] = co_wait_any(w, 2, -1) < 0 ? errno : 0;
    w[0] = (struct co_waitable){.kind = CO_WAIT_FD, .fd = 0, .events = 0};
    s->extra[2] = co_wait_any(w, 2, -1) < 0 ? errno : 0;
    w[0] = (struct co_waitable){.kind = CO_WAIT_CO, .co = co_current()};
    s->extra[3] = co_wait_any(w, 2, -1) < 0 ? errno : 0;
    return NULL;
}

Test(wait_any, refuses_bad_arguments)
{
    struct st s;
    memset(&s, 0, sizeof s);
    run(args_main, &s);
    cr_assert_eq(s.extra[0], ENOENT);
    cr_assert_eq(s.extra[1], EINVAL);
    cr_assert_eq(s.extra[2], EINVAL);
    cr_assert_eq(s.extra[3], EDEADLK);
}

/* More entries than CO_WAIT_STACK: the watchers come from the heap. */
#define MANY 100

static co_event_t *many_ev[MANY];
static void *sets_last(void *arg)
{
    (void)arg;
    co_sleep(co_deadline(10));
    co_event_set(many_ev[MANY - 3]);
    return NULL;
}

static void *many_main(void *arg)
{
    struct st *s = arg;
    static struct co_waitable w[MANY];
    for (int i = 0; i < MANY; i++) {
        many_ev[i] = co_event_new();
        w[i] = (struct co_waitable){.kind = CO_WAIT_EVENT, .event = many_ev[i]};
    }
    co_t *c = co_spawn(sets_last, NULL);
    s->rc = co_wait_any(w, MANY, co_deadline(SAFETY_MS));
    co_join(c, NULL, -1);
    for (int i = 0; i < MANY; i++)
        co_event_free(many_ev[i]);
    return NULL;
}

Test(wait_any, watches_more_entries_than_fit_on_the_stack)
{
    struct st s = {.rc = -2};
    run(many_main, &s);
    cr_assert_eq(s.rc, MANY - 3);
}
