/*
 * test_stop.c - the master under hostile conditions: a client that crashes
 * workers as fast as it can does not stop the service (crashed workers are
 * replaced at once; only a worker that cannot start backs off), and a
 * graceful stop closes the listening socket at once, so new clients are
 * refused instead of queuing for a server that will never answer them.
 */
#include "deploy_util.h"

TestSuite(stop, .fini = du_teardown, .timeout = 90);

/* An apps dir with build/apps/NAME.so for each name, plus the crash app. */
static const char *st_apps(const char *const *names)
{
    du_setup();
    du_mkdir("apps");
    for (int i = 0; names[i]; i++)
        du_link_app(du_apps_src(), names[i], du_path("apps"));
    du_link_app(du_test_apps_src(), "crash", du_path("apps"));
    return du_path("apps");
}

/* A response within a generous guard: 1, or 0 with why. */
static int st_hello(const struct du_coserve *s, char *why, size_t wl)
{
    struct du_target t = du_at(s);
    struct h_conn *c = du_connect(&t);
    if (!c) {
        snprintf(why, wl, "connect: %s", strerror(errno));
        return 0;
    }
    static const char raw[] = "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n";
    struct h_resp r;
    int rc = du_exchange(c, raw, sizeof raw - 1, &r, 0, H_GUARD_MS, why, wl);
    h_close(c);
    int ok = rc == 1 && r.status == 200;
    if (rc == 1) {
        if (!ok)
            snprintf(why, wl, "status %d", r.status);
        du_resp_clear(&r);
    } else if (rc == 0) {
        snprintf(why, wl, "closed without a response");
    }
    return ok;
}

/* Sends a /crash request and waits until its connection ends (the worker
 * that took it died). */
static void st_crash(const struct du_coserve *s)
{
    struct du_target t = du_at(s);
    struct h_conn *c = du_connect(&t);
    cr_assert_not_null(c);
    static const char raw[] = "GET /crash/segv HTTP/1.1\r\nHost: t\r\n\r\n";
    cr_assert_eq(h_try_send(c, raw, sizeof raw - 1), 0);
    cr_assert_eq(h_wait_eof(c, H_GUARD_MS), 1, "the crash request got bytes");
    h_close(c);
}

#define CRASHES 40

Test(stop, a_crash_loop_leaves_the_service_serving)
{
    struct du_coserve s;
    /* the crashes are the test's doing: AddressSanitizer need not report
     * them (it would turn each SIGSEGV into an exit status and a report) */
    du_coserve_start(&s, "cs", 0, 2, st_apps(DU_ARGS("hello")), NULL,
                     DU_ARGS("ASAN_OPTIONS=detect_stack_use_after_return=0:"
                             "detect_leaks=1:handle_segv=0"));
    int ok = 0;
    char first[400] = "";
    for (int i = 0; i < CRASHES; i++) {
        st_crash(&s);
        char why[300] = "";
        if (st_hello(&s, why, sizeof why))
            ok++;
        else if (!first[0])
            snprintf(first, sizeof first, "after crash %d: %s", i + 1, why);
    }
    cr_assert_eq(ok, CRASHES, "%d of %d /hello answered; first failure %s\n%s",
                 ok, CRASHES, first, du_tail(s.err, 3000));
    /* the master may not have reaped the last one yet */
    int deaths = 0;
    for (int64_t end = h_now_ms() + H_GUARD_MS;
         deaths < CRASHES && h_now_ms() < end; h_sleep_ms(10))
        deaths = du_count_in_file(s.err, "killed by signal 11");
    cr_assert_eq(deaths, CRASHES, "%d deaths for %d crashes:\n%s", deaths,
                 CRASHES, du_tail(s.err, 3000));
    cr_assert_eq(du_count_in_file(s.err, "failed to start"), 0);
    /* and the master keeps two workers */
    cr_assert_eq(du_wait_children(s.pid, 2, DU_START_MS), 2);
    kill(s.pid, SIGTERM);
    du_coserve_wait_stopped(&s, DU_STOP_MS, 1);
}

Test(stop, a_worker_that_cannot_start_backs_off_alone)
{
    /* dieinit's init exits: every worker dies before it is ready */
    du_setup();
    du_mkdir("apps");
    du_link_app(du_test_apps_src(), "dieinit", du_path("apps"));
    const char *bin = h_env("COSERVE_BIN", "build/plain/coserve");
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", h_free_port());
    const char *log = du_path("fail.log");
    pid_t pid = du_spawn(DU_ARGS(bin, "--listen", listen, "--workers", "1",
                                 "--apps", du_path("apps"), "--www", "off"),
                         log, NULL, DU_COSERVE);
    cr_assert(du_wait_in_file(log, "(3 in a row)", 1, H_GUARD_MS),
              "no growing backoff:\n%s", du_tail(log, 3000));
    kill(pid, SIGTERM);
    int status;
    cr_assert(du_wait_exit(pid, DU_STOP_MS, &status));
    /* 100, 200, 400 ms: the waits double */
    cr_assert(du_count_in_file(log, "next try in 100 ms") == 1 &&
                  du_count_in_file(log, "next try in 200 ms") == 1 &&
                  du_count_in_file(log, "next try in 400 ms") == 1,
              "%s", du_tail(log, 3000));
}

Test(stop, term_refuses_new_connections_at_once_and_finishes_the_rest)
{
    struct du_coserve s;
    du_coserve_start(&s, "cs", 0, 2, st_apps(DU_ARGS("hello", "sleep")), NULL,
                     NULL);
    struct du_target t = du_at(&s);
    struct h_conn *busy = du_connect(&t);
    cr_assert_not_null(busy);
    static const char raw[] = "GET /sleep?ms=4000 HTTP/1.1\r\nHost: t\r\n\r\n";
    cr_assert_eq(h_try_send(busy, raw, sizeof raw - 1), 0);
    cr_assert(du_wait_tcp_taken(s.port, 1, H_GUARD_MS));
    kill(s.pid, SIGTERM);

    /* new connections are refused while the sleeping request is still in
     * flight (before: accepted by the kernel until the master exited) */
    int refused = 0;
    for (int i = 0; i < 200 && !refused; i++) {
        if (du_try_connect_tcp_once("127.0.0.1", s.port) < 0)
            refused = errno == ECONNREFUSED;
        else
            h_sleep_ms(10);
    }
    cr_assert(refused, "connections still accepted after TERM");
    cr_assert_eq(h_read_now(busy), -1, "the sleep answered before the refusal");
    struct h_resp r;
    char why[300] = "";
    cr_assert_eq(h_read_response(busy, &r, 0, H_GUARD_MS, why, sizeof why), 1,
                 "%s", why);
    cr_assert_eq(r.status, 200);
    du_resp_clear(&r);
    h_close(busy);
    du_coserve_wait_stopped(&s, DU_STOP_MS, 0);
}
