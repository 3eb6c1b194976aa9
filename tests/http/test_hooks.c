/*
 * test_hooks.c - monkey patching (server/core/hook*.c): an app written as
 * plain blocking C (tests/apps/blocking: usleep, poll, read, connect,
 * getaddrinfo, libcurl...) runs many requests at once on one worker, with
 * the results and errno the blocking calls give.
 *
 * Overlap is proved by counting, never by timing: the app keeps a gauge of
 * requests in progress and the most seen at once. Each overlap test sends
 * N-1 requests that repeat their blocking op until N requests overlapped,
 * waits until the gauge says N-1 are in progress (the worker answers
 * op=stats meanwhile), checks /hello answers, sends the N-th, and then
 * every answer must be 200 and the most at once N. With --no-hooks the
 * same requests run one at a time (max 1): see
 * without_hooks_requests_run_one_at_a_time.
 *
 * Every server here runs one worker (the gauge is per worker). Set
 * COSERVE_HOOKS_TEST_FLAGS (say "--no-hooks") to add flags to every start.
 */
#include "harness.h"

TestSuite(hooks, .fini = h_teardown, .timeout = 120);

#define GET_HELLO "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n"
/* Requests overlapping in each overlap test. */
#define HK_N 8

/* ---- setup ------------------------------------------------------------ */

static void hk_link(const char *dir_env, const char *dir_def, const char *name)
{
    char from[PATH_MAX], rel[PATH_MAX], to[512];
    snprintf(rel, sizeof rel, "%s/%s", h_env(dir_env, dir_def), name);
    cr_assert_not_null(realpath(rel, from), "%s: %s (make apps)", rel,
                       strerror(errno));
    snprintf(to, sizeof to, "%s/%s", h_srv.apps, name);
    cr_assert_eq(symlink(from, to), 0, "symlink %s: %s", to, strerror(errno));
}

/* Starts one worker serving hello and blocking, with extra flags. */
static void hk_start(const char *const *extra)
{
    h_setup();
    hk_link("COSERVE_APPS", "build/apps", "hello.so");
    hk_link("COSERVE_TEST_APPS", "build/test-apps", "blocking.so");
    const char *argv[48];
    int argc = 0;
    argv[argc++] = "--apps";
    argv[argc++] = h_srv.apps;
    argv[argc++] = "--workers";
    argv[argc++] = "1";
    for (int i = 0; extra && extra[i] && argc < 30; i++)
        argv[argc++] = extra[i];
    static char flags[256];
    snprintf(flags, sizeof flags, "%s", h_env("COSERVE_HOOKS_TEST_FLAGS", ""));
    char *save = NULL;
    for (char *f = strtok_r(flags, " ", &save); f && argc < 46;
         f = strtok_r(NULL, " ", &save))
        argv[argc++] = f;
    argv[argc] = NULL;
    h_start(argv);
}

/* ---- requests ---------------------------------------------------------- */

static char *hk_raw(const char *query)
{
    return h_fmt("GET /blocking?%s HTTP/1.1\r\nHost: t\r\n\r\n", query);
}

/* GET /blocking?query on a new connection (any status). */
static struct h_resp *hk_get(const char *query)
{
    char *raw = hk_raw(query);
    struct h_conn *c = h_connect();
    h_sends(c, raw);
    struct h_resp *r = calloc(1, sizeof *r);
    char why[256] = "";
    int rc = h_read_response(c, r, 0, H_GUARD_MS, why, sizeof why);
    cr_assert_eq(rc, 1, "/blocking?%s: %s; the server's log ends:\n%s", query,
                 why, h_stderr_tail(1500));
    h_close(c);
    free(raw);
    return r;
}

/* GET /blocking?query must answer 200; the body says what failed if not. */
static void hk_ok(const char *query)
{
    struct h_resp *r = hk_get(query);
    cr_assert_eq(r->status, 200, "/blocking?%s answered %d:\n%s", query,
                 r->status, r->body);
    h_resp_free(r);
}

/* The value of key in op=stats' "key=value" lines (a copy). */
static char *hk_stat(const char *key)
{
    struct h_resp *r = hk_get("op=stats");
    cr_assert_eq(r->status, 200, "op=stats answered %d", r->status);
    size_t kl = strlen(key);
    char *val = NULL;
    for (const char *p = r->body; p && *p;
         p = strchr(p, '\n'), p = p ? p + 1 : p)
        if (strncmp(p, key, kl) == 0 && p[kl] == '=') {
            const char *e = strchr(p, '\n');
            val = strndup(p + kl + 1,
                          e ? (size_t)(e - p - kl - 1) : strlen(p + kl + 1));
            break;
        }
    cr_assert_not_null(val, "no %s in the stats:\n%s", key, r->body);
    h_resp_free(r);
    return val;
}

static long hk_stat_int(const char *key)
{
    char *v = hk_stat(key);
    long n = strtol(v, NULL, 10);
    free(v);
    return n;
}

/* Waits (bounded: only a hang hits it) until n requests are in progress. */
static void hk_wait_inflight(int n, const char *what)
{
    int64_t end = h_now_ms() + H_GUARD_MS;
    long now = -1;
    while (h_now_ms() < end) {
        now = hk_stat_int("inflight");
        if (now == n)
            return;
        h_sleep_ms(5);
    }
    cr_assert_fail("%s: waited for %d requests in progress, the gauge says "
                   "%ld",
                   what, n, now);
}

/* The overlap protocol (see the top of the file) for /blocking?query. */
static void hk_overlap(const char *query)
{
    char *full = h_fmt("%s&until=%d", query, HK_N);
    char *raw = hk_raw(full);
    hk_ok("op=reset");
    struct h_conn *c[HK_N];
    for (int i = 0; i < HK_N; i++)
        c[i] = h_connect();
    for (int i = 0; i < HK_N - 1; i++)
        h_sends(c[i], raw);
    hk_wait_inflight(HK_N - 1, full);
    /* the worker answers others while N-1 requests block */
    struct h_resp *r = h_request(GET_HELLO, 0, 200);
    cr_assert_str_eq(r->body, "Hello, World!\n");
    h_resp_free(r);
    h_sends(c[HK_N - 1], raw);
    for (int i = 0; i < HK_N; i++) {
        r = h_response(c[i], 0);
        cr_assert_eq(r->status, 200, "%s: request %d answered %d:\n%s", full, i,
                     r->status, r->body);
        h_resp_free(r);
        h_close(c[i]);
    }
    long max = hk_stat_int("max"), failed = hk_stat_int("failed");
    cr_assert_eq(max, HK_N,
                 "%s: at most %ld requests were in progress at "
                 "once, not %d",
                 full, max, HK_N);
    cr_assert_eq(failed, 0, "%s: %ld requests failed", full, failed);
    free(raw);
    free(full);
}

/* ---- many requests at once on one worker ------------------------------ */

Test(hooks, usleep_requests_overlap_on_one_worker_while_hello_answers)
{
    hk_start(NULL);
    hk_overlap("op=usleep&ms=20");
    h_assert_serving();
    h_stop();
}

Test(hooks, nanosleep_and_clock_nanosleep_requests_overlap)
{
    hk_start(NULL);
    hk_overlap("op=nanosleep&ms=20");
    hk_overlap("op=clock_nanosleep&ms=20");
    hk_overlap("op=clock_nanosleep_abs&ms=20");
    h_stop();
}

Test(hooks, sleep_requests_overlap)
{
    hk_start(NULL);
    hk_overlap("op=sleep");
    h_stop();
}

Test(hooks, poll_ppoll_select_pselect_with_a_timeout_overlap)
{
    hk_start(NULL);
    hk_overlap("op=poll&ms=20");
    hk_overlap("op=ppoll&ms=20");
    hk_overlap("op=select&ms=20");
    hk_overlap("op=pselect&ms=20");
    h_stop();
}

Test(hooks, blocking_unix_socket_io_overlaps_with_every_read_and_write_call)
{
    hk_start(NULL);
    /* read/write, readv/writev, recv/send, recvfrom/sendto, recvmsg/sendmsg */
    for (int via = 0; via <= 4; via++) {
        char q[64];
        snprintf(q, sizeof q, "op=sock&ms=10&via=%d", via);
        hk_overlap(q);
    }
    h_stop();
}

Test(hooks, blocking_tcp_socket_io_overlaps_with_every_read_and_write_call)
{
    hk_start(NULL);
    for (int via = 0; via <= 4; via++) {
        char q[64];
        snprintf(q, sizeof q, "op=tcp&ms=10&via=%d", via);
        hk_overlap(q);
    }
    h_stop();
}

Test(hooks, blocking_pipe_and_eventfd_io_overlaps)
{
    hk_start(NULL);
    hk_overlap("op=pipe&ms=10&via=0");
    hk_overlap("op=pipe&ms=10&via=1");
    hk_overlap("op=pipe_poll&ms=10");
    hk_overlap("op=eventfd&ms=10");
    h_stop();
}

Test(hooks, blocking_accept_and_accept4_overlap)
{
    hk_start(NULL);
    hk_overlap("op=accept&ms=10&via=0");
    hk_overlap("op=accept&ms=10&via=1");
    h_stop();
}

Test(hooks, a_blocking_client_with_getaddrinfo_connect_send_recv_overlaps)
{
    /* each round asks this same worker for /hello: only cooperative calls
     * let the one worker answer while the client waits */
    hk_start(NULL);
    hk_overlap("op=client");
    h_stop();
}

Test(hooks, libcurl_easy_requests_overlap)
{
    hk_start(NULL);
    hk_overlap("op=curl");
    h_stop();
}

Test(hooks, so_rcvtimeo_expires_with_eagain_and_the_waits_overlap)
{
    hk_start(NULL);
    hk_overlap("op=rcvtimeo&ms=100&via=0"); /* recv */
    hk_overlap("op=rcvtimeo&ms=100&via=1"); /* read */
    hk_overlap("op=rcvtimeo&ms=100&via=2"); /* recvmsg */
    h_stop();
}

Test(hooks, so_sndtimeo_expires_with_a_partial_send_then_eagain)
{
    hk_start(NULL);
    hk_overlap("op=sndtimeo&ms=100");
    h_stop();
}

Test(hooks, name_lookups_run_on_threads_and_overlap)
{
    hk_start(NULL);
    hk_overlap("op=names");
    h_stop();
}

Test(hooks, without_hooks_requests_run_one_at_a_time)
{
    /* the gauge can tell: with --no-hooks each usleep blocks the worker */
    hk_start(H_ARGS("--no-hooks", "--block-threshold", "off"));
    enum { N = 4 };
    hk_ok("op=reset");
    struct h_conn *c[N];
    for (int i = 0; i < N; i++) {
        c[i] = h_connect();
        h_sends(c[i], "GET /blocking?op=usleep&ms=100 HTTP/1.1\r\nHost: t\r\n"
                      "\r\n");
    }
    for (int i = 0; i < N; i++) {
        struct h_resp *r = h_response(c[i], 0);
        cr_assert_eq(r->status, 200, "%s", r->body);
        h_resp_free(r);
        h_close(c[i]);
    }
    cr_assert_eq(hk_stat_int("finished"), N);
    cr_assert_eq(hk_stat_int("max"), 1,
                 "without hooks, requests overlapped on one worker");
    h_stop();
}

/* ---- results and errno as libc gives them ------------------------------ */

static void hk_edges(const char *group)
{
    char q[64];
    snprintf(q, sizeof q, "op=edges&group=%s", group);
    struct h_resp *r = hk_get(q);
    cr_assert_eq(r->status, 200,
                 "edge cases '%s' (coroutine vs thread vs "
                 "want):\n%s",
                 group, r->body);
    cr_assert_null(strstr(r->body, "FAIL:"), "%s", r->body);
    h_resp_free(r);
}

Test(hooks, sleeps_give_libcs_results_and_errno)
{
    hk_start(NULL);
    hk_edges("time");
    h_stop();
}

Test(hooks, poll_and_ppoll_give_libcs_results_and_revents)
{
    hk_start(NULL);
    hk_edges("poll");
    h_stop();
}

Test(hooks, select_and_pselect_give_libcs_results_and_sets)
{
    hk_start(NULL);
    hk_edges("select");
    h_stop();
}

Test(hooks, fd_calls_give_libcs_results_and_errno)
{
    hk_start(NULL);
    hk_edges("fd");
    h_stop();
}

Test(hooks, an_o_nonblock_socket_still_gets_eagain)
{
    hk_start(NULL);
    hk_edges("nonblock");
    h_stop();
}

Test(hooks, o_nonblock_set_through_a_dup_applies_to_the_original)
{
    hk_start(NULL);
    hk_edges("dupshare");
    h_stop();
}

Test(hooks, connect_and_accept_give_libcs_errno)
{
    hk_start(NULL);
    hk_edges("net");
    h_stop();
}

Test(hooks, so_rcvtimeo_and_so_sndtimeo_are_honoured_like_linux)
{
    hk_start(NULL);
    hk_edges("timeo");
    h_stop();
}

Test(hooks, name_lookups_give_libcs_results)
{
    hk_start(NULL);
    hk_edges("names");
    h_stop();
}

Test(hooks, the_edge_cases_hold_without_hooks_too)
{
    /* the expectations themselves are libc's: checked with hooks off */
    hk_start(H_ARGS("--no-hooks", "--block-threshold", "off"));
    static const char *const groups[] = {"time", "poll",     "select",
                                         "fd",   "nonblock", "dupshare",
                                         "net",  "timeo",    "names"};
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++)
        hk_edges(groups[i]);
    h_stop();
}

/* ---- off the hub, calls really block ----------------------------------- */

Test(hooks, calls_on_offload_threads_really_block)
{
    hk_start(NULL);
    hk_ok("op=offload&ms=30");
    h_stop();
}

Test(hooks, calls_on_threads_the_app_starts_really_block)
{
    hk_start(NULL);
    hk_ok("op=thread&ms=30");
    h_stop();
}

/* ---- cancellation and close -------------------------------------------- */

Test(hooks, a_request_timeout_interrupts_a_hooked_call_with_ecanceled)
{
    hk_start(H_ARGS("--request-timeout", "300ms"));
    static const char *const whats[] = {"usleep",  "nanosleep", "poll",
                                        "select",  "recv",      "read",
                                        "eventfd", "accept"};
    char report[4096] = "";
    size_t rl = 0;
    for (size_t i = 0; i < sizeof whats / sizeof whats[0]; i++) {
        hk_ok("op=reset");
        char q[64];
        snprintf(q, sizeof q, "op=cancel&what=%s", whats[i]);
        struct h_resp *r = hk_get(q);
        int status = r->status;
        h_resp_free(r);
        long seen = hk_stat_int("cancel_seen");
        long rc = hk_stat_int("cancel_rc"), rc2 = hk_stat_int("cancel2_rc");
        char *err = hk_stat("cancel_errno"), *err2 = hk_stat("cancel2_errno");
        if (status != 504 || seen != 1 || rc != -1 ||
            strcmp(err, "ECANCELED") != 0 || rc2 != -1 ||
            strcmp(err2, "ECANCELED") != 0)
            rl += (size_t)snprintf(report + rl, sizeof report - rl,
                                   "%s: status %d, call returned %ld %s, the "
                                   "next usleep %ld %s (want 504, -1 "
                                   "ECANCELED twice)\n",
                                   whats[i], status, rc, err, rc2, err2);
        free(err);
        free(err2);
        cr_assert_lt(rl, sizeof report - 1);
    }
    cr_assert_eq(rl, 0, "cancelled hooked calls:\n%s", report);
    h_assert_serving();
    h_stop();
}

Test(hooks, closing_an_fd_wakes_the_request_blocked_on_it_with_ebadf)
{
    hk_start(NULL);
    static const char *const whats[] = {"recv", "read"};
    for (size_t i = 0; i < 2; i++) {
        struct h_conn *c = h_connect();
        char *raw = h_fmt("GET /blocking?op=close_wait&what=%s HTTP/1.1\r\n"
                          "Host: t\r\n\r\n",
                          whats[i]);
        h_sends(c, raw);
        free(raw);
        hk_wait_inflight(1, whats[i]);
        hk_ok("op=close_do");
        struct h_resp *r = h_response(c, 0);
        cr_assert_eq(r->status, 200, "%s:\n%s", whats[i], r->body);
        h_resp_free(r);
        h_close(c);
    }
    h_assert_serving();
    h_stop();
}
