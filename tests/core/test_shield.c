/*
 * test_shield.c - co_shield_begin/end (server/core/timeout.c): after a
 * cancel, a coroutine's cleanup can still do I/O bounded by the shield's
 * deadline, through the co_* calls and the hooked libc calls alike.
 */
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/hook.h"
#include "util.h"

struct st {
    int rc[8], err[8];
    int fds[2];
    char got[8];
};

static struct st *g;

/* The peer answers "bye" with "ok" after a real wait. */
static void *peer(void *arg)
{
    (void)arg;
    char buf[4] = {0};
    if (co_read(g->fds[1], buf, 3, co_deadline(SAFETY_MS)) == 3 &&
        !memcmp(buf, "bye", 3)) {
        co_sleep(co_deadline(10));
        co_write_all(g->fds[1], "ok", 2, co_deadline(SAFETY_MS));
    }
    return NULL;
}

static void *handler(void *arg)
{
    (void)arg;
    co_event_t *never = co_event_new();
    errno = 0;
    g->rc[0] = co_event_wait(never, co_deadline(LONG_MS)); /* cancelled */
    g->err[0] = errno;
    co_event_free(never);
    /* cleanup: a polite goodbye and its answer, within 2 s */
    co_shield_t sh;
    g->rc[1] = co_shield_begin(&sh, co_deadline(SAFETY_MS));
    g->rc[2] = co_write_all(g->fds[0], "bye", 3, -1);
    g->rc[3] = (int)co_read(g->fds[0], g->got, 2, -1);
    g->err[3] = errno;
    g->rc[4] = co_shield_end(&sh);
    errno = 0;
    g->rc[5] = co_sleep(co_deadline(LONG_MS)); /* cancelled again */
    g->err[5] = errno;
    return NULL;
}

static void *cleanup_main(void *arg)
{
    g = arg;
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, g->fds),
                 0);
    co_t *p = co_spawn(peer, NULL);
    co_t *h = co_spawn(handler, NULL);
    co_yield_now();
    co_cancel(h);
    co_join(h, NULL, co_deadline(SAFETY_MS));
    co_join(p, NULL, co_deadline(SAFETY_MS));
    close(g->fds[0]);
    close(g->fds[1]);
    return NULL;
}

Test(shield, cleanup_after_a_cancel_does_bounded_io)
{
    struct st s;
    memset(&s, 0, sizeof s);
    run(cleanup_main, &s);
    cr_assert_eq(s.rc[0], -1);
    cr_assert_eq(s.err[0], ECANCELED);
    cr_assert_eq(s.rc[1], 0);
    cr_assert_eq(s.rc[2], 0);
    cr_assert_eq(s.rc[3], 2, "read: %s", strerror(s.err[3]));
    cr_assert_str_eq(s.got, "ok");
    cr_assert_eq(s.rc[4], 0);
    cr_assert_eq(s.rc[5], -1);
    cr_assert_eq(s.err[5], ECANCELED);
}

/* Past the shield's deadline the cleanup's waits fail with ETIMEDOUT, not
 * ECANCELED, and a cancel arriving during the shield wakes nobody. */
static co_event_t *ev;

static void *late_setter(void *arg)
{
    (void)arg;
    co_sleep(co_deadline(30));
    co_event_set(ev);
    return NULL;
}

static void *shielded(void *arg)
{
    (void)arg;
    co_shield_t sh;
    co_shield_begin(&sh, co_deadline(SAFETY_MS));
    /* cancelled while parked here: the wait goes on until the set */
    g->rc[0] = co_event_wait(ev, -1);
    co_shield_end(&sh);
    co_shield_begin(&sh, co_deadline(10));
    co_event_clear(ev);
    errno = 0;
    g->rc[1] = co_event_wait(ev, -1);
    g->err[1] = errno;
    g->rc[2] = co_shield_end(&sh);
    return NULL;
}

static void *deadline_main(void *arg)
{
    g = arg;
    ev = co_event_new();
    co_t *s = co_spawn(late_setter, NULL);
    co_t *h = co_spawn(shielded, NULL);
    co_yield_now();
    co_cancel(h);
    co_join(h, NULL, co_deadline(SAFETY_MS));
    co_join(s, NULL, co_deadline(SAFETY_MS));
    co_event_free(ev);
    return NULL;
}

Test(shield, holds_a_cancel_back_and_its_deadline_bounds_every_wait)
{
    struct st s;
    memset(&s, 0x55, sizeof s);
    run(deadline_main, &s);
    cr_assert_eq(s.rc[0], 0);
    cr_assert_eq(s.rc[1], -1);
    cr_assert_eq(s.err[1], ETIMEDOUT);
    cr_assert_neq(s.rc[2], 0);
}

/* A shield replaces the timeout scopes around it, and needs a deadline. */
static void *scopes_main(void *arg)
{
    g = arg;
    co_timeout_t t;
    co_timeout_begin(&t, co_deadline(1));
    co_sleep(co_deadline(5)); /* the scope expires */
    co_shield_t sh;
    co_shield_begin(&sh, co_deadline(SAFETY_MS));
    g->rc[0] = co_sleep(co_deadline(5)); /* not cut by the expired scope */
    co_shield_end(&sh);
    errno = 0;
    g->rc[1] = co_sleep(co_deadline(5)); /* the scope applies again */
    g->err[1] = errno;
    co_timeout_end(&t);
    co_shield_t bad;
    errno = 0;
    g->rc[2] = co_shield_begin(&bad, -1);
    g->err[2] = errno;
    g->rc[3] = co_shield_end(&bad); /* not started: nothing happens */
    return NULL;
}

Test(shield, replaces_the_outer_timeout_scopes_and_needs_a_deadline)
{
    struct st s;
    memset(&s, 0x55, sizeof s);
    run(scopes_main, &s);
    cr_assert_eq(s.rc[0], 0);
    cr_assert_eq(s.rc[1], -1);
    cr_assert_eq(s.err[1], ETIMEDOUT);
    cr_assert_eq(s.rc[2], -1);
    cr_assert_eq(s.err[2], EINVAL);
    cr_assert_eq(s.rc[3], 0);
}

/* The hooks check cancellation through the same helper: a plain send and
 * recv on a blocking socket work in the shield after a cancel. */
static void *hooked_handler(void *arg)
{
    (void)arg;
    co_sleep(co_deadline(LONG_MS)); /* cancelled */
    errno = 0;
    g->rc[0] = (int)send(g->fds[0], "bye", 3, 0);
    g->err[0] = errno;
    co_shield_t sh;
    co_shield_begin(&sh, co_deadline(SAFETY_MS));
    g->rc[1] = (int)send(g->fds[0], "bye", 3, 0);
    g->rc[2] = (int)recv(g->fds[0], g->got, 2, MSG_WAITALL);
    g->err[2] = errno;
    co_shield_end(&sh);
    errno = 0;
    g->rc[3] = (int)recv(g->fds[0], g->got, 2, 0);
    g->err[3] = errno;
    return NULL;
}

static void *hooked_main(void *arg)
{
    g = arg;
    hook__enabled = 1;
    /* the handler's end blocking (the hooks wait for it), the peer's not */
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, g->fds), 0);
    cr_assert_eq(fcntl(g->fds[1], F_SETFL, O_NONBLOCK), 0);
    co_t *p = co_spawn(peer, NULL);
    co_t *h = co_spawn(hooked_handler, NULL);
    co_yield_now();
    co_cancel(h);
    co_join(h, NULL, co_deadline(SAFETY_MS));
    co_join(p, NULL, co_deadline(SAFETY_MS));
    close(g->fds[0]);
    close(g->fds[1]);
    hook__enabled = 0;
    return NULL;
}

Test(shield, hooked_calls_honour_the_shield)
{
    struct st s;
    memset(&s, 0, sizeof s);
    run(hooked_main, &s);
    cr_assert_eq(s.rc[0], -1);
    cr_assert_eq(s.err[0], ECANCELED);
    cr_assert_eq(s.rc[1], 3);
    cr_assert_eq(s.rc[2], 2, "recv: %s", strerror(s.err[2]));
    cr_assert_str_eq(s.got, "ok");
    cr_assert_eq(s.rc[3], -1);
    cr_assert_eq(s.err[3], ECANCELED);
}
