/*
 * test_slowloris.c - slow clients: the memory a crowd of them took is
 * given back once they leave (the pools of connections, request records,
 * buffers, coroutines and stacks are trimmed), and when they fill
 * --max-connections a new client still gets served (it takes the slot of
 * the one that has waited longest for a head).
 */
#include "harness.h"

#include <sys/resource.h>

TestSuite(slowloris, .init = h_setup, .fini = h_teardown, .timeout = 90);

/* Resident memory of a process, in KiB. */
static long rss_kib(pid_t pid)
{
    return h_proc_number(pid, "status", "VmRSS: %ld kB");
}

#define SLOW_HEAD "GET /hello HTTP/1.1\r\nHost: t\r\nX-Slow: a"
#define GET_HELLO "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n"
#define CROWD 3000

Test(slowloris, memory_taken_by_a_crowd_of_slow_clients_is_given_back)
{
#ifdef COSERVE_ASAN
    cr_skip_test("AddressSanitizer's allocator keeps freed memory in its "
                 "quarantine: the worker's RSS says nothing here");
#endif
    h_raise_nofile(CROWD + 256);
    h_start(H_ARGS("--workers", "1", "--header-timeout", "60s", "--access-log",
                   "off"));
    pid_t worker = h_only_worker();
    for (int i = 0; i < 50; i++) /* warm: pools and caches at their usual */
        h_assert_serving();
    long base = rss_kib(worker);

    /* every client sends part of a head: each holds a connection, a
     * request record and a read buffer */
    static struct h_conn *crowd[CROWD];
    for (int i = 0; i < CROWD; i++) {
        crowd[i] = h_connect();
        h_sends(crowd[i], SLOW_HEAD);
    }
    h_assert_serving(); /* accepted after the crowd, and its heads read */
    long peak = rss_kib(worker);
    cr_assert_gt(peak - base, 10 * 1024,
                 "the crowd took only %ld KiB (from %ld): nothing to measure",
                 peak - base, base);

    for (int i = 0; i < CROWD; i++)
        h_close(crowd[i]);
    /* the server sees them leave, then trims its pools once a second */
    long now = peak, bound = base + (peak - base) / 4;
    for (int i = 0; i < 60 && now > bound; i++) {
        h_sleep_ms(500);
        now = rss_kib(worker);
    }
    cr_assert_leq(now, bound,
                  "RSS %ld KiB before the crowd, %ld with it, still %ld KiB "
                  "after it left (want at most %ld)",
                  base, peak, now, bound);
    h_assert_serving();
    cr_assert_null(h_log_problem(), "server log: %s", h_stderr_tail(2000));
    h_stop();
}

#define CAP 50

Test(slowloris, a_new_client_is_served_when_slow_clients_fill_every_slot)
{
    /* the cap is per worker: one worker makes it exact; the header
     * timeout is far beyond the test's guard, so only eviction can serve
     * the new client in time */
    h_start(H_ARGS("--workers", "1", "--max-connections", "50",
                   "--header-timeout", "120s"));
    static struct h_conn *slow[CAP];
    for (int i = 0; i < CAP; i++) {
        slow[i] = h_connect();
        h_sends(slow[i], SLOW_HEAD);
    }
    /* every slot is held by a slow client: a new one takes the slot of the
     * one that waited longest (once it has waited a second) */
    struct h_resp *r = h_request(GET_HELLO, 0, 200);
    cr_assert_str_eq(r->body, "Hello, World!\n");
    h_resp_free(r);

    /* the oldest was told why, and closed */
    r = h_response(slow[0], 0);
    cr_assert_eq(r->status, 408, "got %d", r->status);
    cr_assert(h_header_has_token(r, "Connection", "close"));
    h_resp_free(r);
    h_assert_closed(slow[0]);
    cr_assert(h_stderr_has("at --max-connections (50)"),
              "the eviction was not logged:\n%s", h_stderr_tail(2000));

    /* and another new client after it, while the rest still wait */
    r = h_request(GET_HELLO, 0, 200);
    h_resp_free(r);
    for (int i = 0; i < CAP; i++)
        h_close(slow[i]);
    h_assert_serving();
    h_stop();
}
