/*
 * test_dns.c - name lookups have threads of their own: co_dial and the
 * hooked getaddrinfo / getnameinfo / gethostbyname_r complete while every
 * app offload thread is held by slow work and more such work is queued;
 * a name that cannot exist fails co_dial with ENXIO and says so.
 *
 * No timing: the slow jobs block on a gate the test opens only after the
 * lookups returned, so a lookup queued behind them could only end by its
 * deadline (ETIMEDOUT), and the order of events is what is asserted. The
 * gate also opens by itself after a while, so a broken build fails
 * instead of hanging.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/hook.h"
#include "core/offload.h"
#include "util.h"

#ifdef COSERVE_ASAN
#include <sanitizer/lsan_interface.h>
#endif

static void assert_no_leaks(void)
{
#ifdef COSERVE_ASAN
    cr_assert_eq(__lsan_do_recoverable_leak_check(), 0,
                 "LeakSanitizer found leaks (see its report above)");
#endif
}

#define THREADS 2
#define SLOW (2 * THREADS) /* every thread busy, as many jobs queued */
#define GATE_SECONDS 20    /* the gate opens by itself: never a hang */

/* The gate the slow jobs wait behind, and the order things happened in. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int open;
    atomic_int started, finished;
    atomic_int seq;
    int job_seq[SLOW];
} gate = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

/* An app's slow blocking job: holds its offload thread until the gate
 * opens. */
static void slow_job(void *arg)
{
    int *my_seq = arg;
    atomic_fetch_add(&gate.started, 1);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += GATE_SECONDS;
    pthread_mutex_lock(&gate.lock);
    while (!gate.open)
        if (pthread_cond_timedwait(&gate.cond, &gate.lock, &until) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&gate.lock);
    *my_seq = atomic_fetch_add(&gate.seq, 1);
    atomic_fetch_add(&gate.finished, 1);
}

static void gate_open(void)
{
    pthread_mutex_lock(&gate.lock);
    gate.open = 1;
    pthread_cond_broadcast(&gate.cond);
    pthread_mutex_unlock(&gate.lock);
}

static void *slow_co(void *arg)
{
    co_offload(slow_job, arg, NULL, -1);
    return NULL;
}

/* Spawns the slow jobs and waits until the app pool is saturated: every
 * thread holds one, the rest are queued. */
static void saturate(co_t *slow[SLOW])
{
    for (int i = 0; i < SLOW; i++) {
        gate.job_seq[i] = -1;
        slow[i] = co_spawn(slow_co, &gate.job_seq[i]);
        cr_assert_not_null(slow[i]);
    }
    int64_t end = co_deadline(SAFETY_MS);
    while (atomic_load(&gate.started) < THREADS && co_now() < end)
        co_sleep(co_deadline(1));
}

/* What a lookup coroutine saw, and when (in gate.seq's order). */
struct lookup_case {
    int port;
    int started_then, finished_then, seq;
    int rc, err;
    char why[320];
    int gai, gni, ghb, ghb_found;
    char host[NI_MAXHOST];
};

static void lookup_done(struct lookup_case *c)
{
    c->started_then = atomic_load(&gate.started);
    c->finished_then = atomic_load(&gate.finished);
    c->seq = atomic_fetch_add(&gate.seq, 1);
}

static void *dial_co(void *arg)
{
    struct lookup_case *c = arg;
    char port[16];
    snprintf(port, sizeof port, "%d", c->port);
    c->rc = co_dial("localhost", port, co_deadline(SAFETY_MS));
    c->err = errno;
    lookup_done(c);
    if (c->rc >= 0)
        close(c->rc);
    return NULL;
}

static void *hooked_lookups_co(void *arg)
{
    struct lookup_case *c = arg;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    c->gai = getaddrinfo("localhost", "80", &hints, &res);
    if (res)
        freeaddrinfo(res);
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    c->gni = getnameinfo((struct sockaddr *)&sin, sizeof sin, c->host,
                         sizeof c->host, NULL, 0, NI_NUMERICHOST);
    struct hostent he, *found = NULL;
    char buf[4096];
    int herr = 0;
    c->ghb = gethostbyname_r("localhost", &he, buf, sizeof buf, &found, &herr);
    c->ghb_found = found != NULL;
    lookup_done(c);
    return NULL;
}

struct saturated_case {
    co_fn lookup;
    struct lookup_case c;
};

static void *saturated_main(void *arg)
{
    struct saturated_case *s = arg;
    co_t *slow[SLOW];
    saturate(slow);
    co_t *lookup = co_spawn(s->lookup, &s->c);
    cr_assert_not_null(lookup);
    co_join(lookup, NULL, -1);
    gate_open();
    co_join_all(slow, SLOW, -1);
    return NULL;
}

/* A listener on 127.0.0.1 for co_dial to reach; returns its fd. */
static int listen_local(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sin;
    cr_assert_eq(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    cr_assert_eq(listen(fd, 16), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    *port = ntohs(sin.sin_port);
    return fd;
}

/* The lookup returned while the app pool was still saturated: all its
 * threads held, nothing finished, every slow job finished after it. */
static void assert_before_slow_jobs(const struct lookup_case *c)
{
    cr_assert_eq(c->started_then, THREADS,
                 "%d slow jobs had started when the lookup returned (the "
                 "pool has %d threads)",
                 c->started_then, THREADS);
    cr_assert_eq(c->finished_then, 0,
                 "%d slow jobs finished before the lookup returned",
                 c->finished_then);
    for (int i = 0; i < SLOW; i++)
        cr_assert_gt(gate.job_seq[i], c->seq,
                     "slow job %d finished (#%d) before the lookup (#%d)", i,
                     gate.job_seq[i], c->seq);
}

Test(dns, co_dial_is_not_delayed_by_a_saturated_offload_pool)
{
    cr_assert_eq(co_offload_set_threads(THREADS), 0);
    struct saturated_case s = {.lookup = dial_co};
    int lfd = listen_local(&s.c.port);
    run(saturated_main, &s);
    close(lfd);
    cr_assert_geq(s.c.rc, 0, "co_dial: %s", strerror(s.c.err));
    assert_before_slow_jobs(&s.c);
    assert_no_leaks();
}

Test(dns, hooked_lookups_are_not_delayed_by_a_saturated_offload_pool)
{
    cr_assert_eq(co_offload_set_threads(THREADS), 0);
    hook__enabled = 1;
    struct saturated_case s = {.lookup = hooked_lookups_co};
    run(saturated_main, &s);
    hook__enabled = 0;
    cr_assert_eq(s.c.gai, 0, "getaddrinfo: %s", gai_strerror(s.c.gai));
    cr_assert_eq(s.c.gni, 0, "getnameinfo: %s", gai_strerror(s.c.gni));
    cr_assert_str_eq(s.c.host, "127.0.0.1");
    cr_assert_eq(s.c.ghb, 0, "gethostbyname_r: %s", strerror(s.c.ghb));
    cr_assert(s.c.ghb_found, "gethostbyname_r found no localhost");
    assert_before_slow_jobs(&s.c);
    assert_no_leaks();
}

/* ===================================================================== */

static void *nxdomain_co(void *arg)
{
    struct lookup_case *c = arg;
    c->rc = co_dial("no-such-host.invalid", "80", co_deadline(SAFETY_MS));
    c->err = errno;
    snprintf(c->why, sizeof c->why, "%s", co_dial_error());
    if (c->rc >= 0)
        close(c->rc);
    return NULL;
}

Test(dns, dial_of_a_name_that_cannot_exist_fails_with_enxio_no_such_host)
{
    struct lookup_case c = {0};
    run(nxdomain_co, &c);
    cr_assert_eq(c.rc, -1);
    cr_assert_eq(c.err, ENXIO, "errno %d (%s), co_dial_error: %s", c.err,
                 strerror(c.err), c.why);
    cr_assert_str_eq(c.why, "no such host: no-such-host.invalid");
    assert_no_leaks();
}

static void *refused_co(void *arg)
{
    struct lookup_case *c = arg;
    char port[16];
    snprintf(port, sizeof port, "%d", c->port);
    c->rc = co_dial("127.0.0.1", port, co_deadline(SAFETY_MS));
    c->err = errno;
    snprintf(c->why, sizeof c->why, "%s", co_dial_error());
    return NULL;
}

Test(dns, a_refused_dial_keeps_connects_errno_and_names_the_address)
{
    struct lookup_case c = {0};
    int lfd = listen_local(&c.port);
    close(lfd); /* nothing listens there now */
    run(refused_co, &c);
    cr_assert_eq(c.rc, -1);
    cr_assert_eq(c.err, ECONNREFUSED, "errno %d (%s)", c.err, strerror(c.err));
    char want[320];
    snprintf(want, sizeof want, "127.0.0.1:%d: %s", c.port,
             strerror(ECONNREFUSED));
    cr_assert_str_eq(c.why, want);
    assert_no_leaks();
}

Test(dns, the_dial_error_is_empty_after_a_success)
{
    struct lookup_case c = {0};
    int lfd = listen_local(&c.port);
    run(refused_co, &c); /* the listener is up: this one connects */
    close(lfd);
    cr_assert_geq(c.rc, 0, "co_dial: %s (%s)", strerror(c.err), c.why);
    close(c.rc);
    cr_assert_str_eq(c.why, "");
}

/* ===================================================================== */

/* The lookup's wait for a thread is bounded by the dial's deadline: with
 * the one name-lookup thread kept busy, the dial fails with ETIMEDOUT. */
static atomic_int names_blocker_running, names_blocker_release;

static void names_blocker_work(void *arg)
{
    (void)arg;
    atomic_store(&names_blocker_running, 1);
    for (int i = 0; i < GATE_SECONDS * 1000; i++) {
        if (atomic_load(&names_blocker_release))
            break;
        usleep(1000);
    }
}

static void *names_blocker_co(void *arg)
{
    (void)arg;
    offload__run(OFFLOAD_NAMES, "test", names_blocker_work, NULL, NULL, -1);
    return NULL;
}

static void *dial_waits_main(void *arg)
{
    struct lookup_case *c = arg;
    co_t *b = co_spawn(names_blocker_co, NULL);
    cr_assert_not_null(b);
    int64_t end = co_deadline(SAFETY_MS);
    while (!atomic_load(&names_blocker_running) && co_now() < end)
        co_sleep(co_deadline(1));
    c->rc = co_dial("localhost", "9", co_deadline(30));
    c->err = errno;
    if (c->rc >= 0)
        close(c->rc);
    atomic_store(&names_blocker_release, 1);
    co_join(b, NULL, -1);
    return NULL;
}

Test(dns, dial_times_out_while_its_lookup_waits_for_a_thread)
{
    cr_assert_eq(setenv("COSERVE_DNS_THREADS", "1", 1), 0);
    struct lookup_case c = {0};
    run(dial_waits_main, &c);
    cr_assert_eq(c.rc, -1);
    cr_assert_eq(c.err, ETIMEDOUT, "errno %d (%s)", c.err, strerror(c.err));
    assert_no_leaks();
}
