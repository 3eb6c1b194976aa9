/*
 * test_crash.c - what the log says when a worker dies: a crash report names
 * the request whose code crashed (not the last one a worker started), the
 * signal, the fault address and the backtrace by function, and lists the
 * other requests the crash cut short; a worker whose hub stays blocked past
 * --timeout is killed and replaced by the master, after its own backtrace
 * and with the count of the requests it held; --timeout off leaves it be.
 *
 * The crashing handler is tests/apps/crash's, the hanging one the spin
 * app's /spin/hang (a raw ppoll system call, forever). One worker each, so
 * every request shares the one hub. Nothing rests on how fast anything
 * ran: only on the log lines and the worker PIDs.
 */
#include "deploy_util.h"

TestSuite(crash, .fini = du_teardown, .timeout = 90);

/* The crashes are the test's: AddressSanitizer must let the signal kill
 * (its own handler would turn it into exit status 1). */
#define CT_ENV                                                                 \
    DU_ARGS("ASAN_OPTIONS=detect_stack_use_after_return=0:detect_leaks=1:"     \
            "handle_segv=0")

/* An apps dir with hello and sleep, and the crash and spin test apps. */
static const char *ct_apps(void)
{
    du_setup();
    du_mkdir("apps");
    du_link_app(du_apps_src(), "hello", du_path("apps"));
    du_link_app(du_apps_src(), "sleep", du_path("apps"));
    du_link_app(du_test_apps_src(), "crash", du_path("apps"));
    du_link_app(du_test_apps_src(), "spin", du_path("apps"));
    return du_path("apps");
}

/* Opens a connection and sends GET target on it. */
static struct h_conn *ct_send(const struct du_coserve *s, const char *target)
{
    struct du_target t = du_at(s);
    struct h_conn *c = du_connect(&t);
    cr_assert_not_null(c, "connect: %s", strerror(errno));
    char raw[256];
    int n =
        snprintf(raw, sizeof raw, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", target);
    cr_assert_eq(h_try_send(c, raw, (size_t)n), 0);
    return c;
}

/* The log entry that begins with needle: that line and the indented
 * lines after it (a backtrace), malloc'd; NULL if none. */
static char *ct_entry(const char *log_path, const char *needle)
{
    char *log = h_read_file(log_path, NULL);
    if (!log)
        return NULL;
    char *at = strstr(log, needle);
    char *out = NULL;
    if (at) {
        while (at > log && at[-1] != '\n')
            at--;
        char *end = strchr(at, '\n');
        while (end && strncmp(end + 1, "    ", 4) == 0)
            end = strchr(end + 1, '\n');
        out = strndup(at, end ? (size_t)(end - at) : strlen(at));
    }
    free(log);
    return out;
}

/* The first line of an entry (the message, before any backtrace). */
static char *ct_first_line(const char *entry)
{
    const char *nl = strchr(entry, '\n');
    return strndup(entry, nl ? (size_t)(nl - entry) : strlen(entry));
}

/* How many times needle occurs in s. */
static int ct_count(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* The one worker's PID. */
static pid_t ct_worker(const struct du_coserve *s)
{
    pid_t w[4];
    cr_assert_eq(du_wait_children(s->pid, 1, DU_START_MS), 1);
    cr_assert_eq(du_workers(s, w, 4), 1);
    return w[0];
}

/* Waits for a worker other than old that answers /hello. */
static void ct_assert_replaced(const struct du_coserve *s, pid_t old)
{
    pid_t now = old;
    for (int64_t end = h_now_ms() + DU_START_MS; now == old && h_now_ms() < end;
         h_sleep_ms(10)) {
        pid_t w[4];
        if (du_workers(s, w, 4) == 1)
            now = w[0];
    }
    cr_assert_neq(now, old, "the worker was not replaced:\n%s",
                  du_tail(s->err, 4000));
    /* queued on the master's socket until the new worker takes it */
    struct du_target t = du_at(s);
    h_resp_free(du_get(&t, "/hello", NULL, 200));
}

/* Crashes the one worker with target while two sleeping requests are in
 * flight on it; returns the crash report (malloc'd) after checking what
 * every crash report must say. */
static char *ct_crash_with_sleepers(struct du_coserve *s, const char *target,
                                    int sig)
{
    du_coserve_start(s, "cs", 0, 1, ct_apps(), NULL, CT_ENV);
    pid_t worker = ct_worker(s);
    struct h_conn *sleepers[2];
    for (int i = 0; i < 2; i++)
        sleepers[i] = ct_send(s, "/sleep?ms=5000");
    /* both read by the worker: their handlers sleep */
    cr_assert(du_wait_tcp_taken(s->port, 2, H_GUARD_MS));
    struct h_conn *crash = ct_send(s, target);
    cr_assert_eq(h_wait_eof(crash, H_GUARD_MS), 1, "the crash got bytes");
    char died[64];
    snprintf(died, sizeof died, "killed by signal %d", sig);
    cr_assert(du_wait_in_file(s->err, died, 1, H_GUARD_MS), "%s",
              du_tail(s->err, 4000));
    /* the sleepers' connections end with their worker, unanswered */
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(h_wait_eof(sleepers[i], H_GUARD_MS), 1);
        h_close(sleepers[i]);
    }
    h_close(crash);

    char head[64];
    snprintf(head, sizeof head, "crash: signal %d (", sig);
    char *report = ct_entry(s->err, head);
    cr_assert_not_null(report, "no crash report:\n%s", du_tail(s->err, 4000));
    char *first = ct_first_line(report);
    char request[128];
    snprintf(request, sizeof request, "in app crash: GET %s", target);
    cr_assert_not_null(strstr(first, request),
                       "the report does not name %s:\n%s", target, report);
    cr_assert_null(strstr(first, "/sleep"),
                   "the report blames a sleeping request:\n%s", report);
    cr_assert_not_null(strstr(report, "backtrace:\n"), "%s", report);
    cr_assert_not_null(strstr(report, "crash_handler"),
                       "no backtrace frame names crash_handler:\n%s", report);
    free(first);

    char *cut = ct_entry(s->err, "other requests cut short");
    cr_assert_not_null(cut, "the cut-short requests are not listed:\n%s",
                       du_tail(s->err, 4000));
    cr_assert_not_null(strstr(cut, "crash: 2 other requests cut short"), "%s",
                       cut);
    cr_assert_eq(ct_count(cut, "app sleep: GET /sleep?ms=5000"), 2, "%s", cut);
    free(cut);

    ct_assert_replaced(s, worker);
    return report;
}

Test(crash, a_segfault_names_its_request_the_address_and_the_backtrace)
{
    struct du_coserve s;
    char *report = ct_crash_with_sleepers(&s, "/crash/segv", SIGSEGV);
    cr_assert_not_null(strstr(report, "(SIGSEGV, address not mapped) at "
                                      "address 0x0 in "),
                       "no fault address:\n%s", report);
    free(report);
    kill(s.pid, SIGTERM);
    du_coserve_wait_stopped(&s, DU_STOP_MS, 1);
}

Test(crash, an_abort_names_its_request_and_the_backtrace)
{
    struct du_coserve s;
    char *report = ct_crash_with_sleepers(&s, "/crash/abort", SIGABRT);
    cr_assert_not_null(strstr(report, "(SIGABRT, abort() or raise())"), "%s",
                       report);
    cr_assert_not_null(strstr(report, " abort+"),
                       "no abort frame in the backtrace:\n%s", report);
    free(report);
    kill(s.pid, SIGTERM);
    du_coserve_wait_stopped(&s, DU_STOP_MS, 1);
}

Test(crash, a_worker_blocked_past_timeout_is_killed_and_replaced)
{
    struct du_coserve s;
    du_coserve_start(&s, "cs", 0, 1, ct_apps(), DU_ARGS("--timeout", "2s"),
                     CT_ENV);
    pid_t worker = ct_worker(&s);
    struct h_conn *sleeper = ct_send(&s, "/sleep?ms=20000");
    cr_assert(du_wait_tcp_taken(s.port, 1, H_GUARD_MS));
    struct h_conn *hang = ct_send(&s, "/spin/hang");
    cr_assert(du_wait_in_file(s.err, "killed by signal 9", 1, DU_START_MS),
              "the blocked worker was not killed:\n%s", du_tail(s.err, 4000));

    char *report = ct_entry(s.err, "past --timeout");
    cr_assert_not_null(report, "no --timeout report:\n%s",
                       du_tail(s.err, 4000));
    cr_assert_not_null(strstr(report, "in app spin: GET /spin/hang: the "
                                      "master kills this worker, with the 2 "
                                      "requests it holds"),
                       "%s", report);
    cr_assert_not_null(strstr(report, "cut short with it: app sleep: GET "
                                      "/sleep?ms=20000"),
                       "%s", report);
    cr_assert_not_null(strstr(report, "spin_hang_forever"),
                       "no backtrace frame names the blocked code:\n%s",
                       report);
    free(report);
    char kill_line[128];
    snprintf(kill_line, sizeof kill_line, "master: worker %d blocked for ",
             (int)worker);
    char *killed = ct_entry(s.err, kill_line);
    cr_assert_not_null(killed, "no kill line:\n%s", du_tail(s.err, 4000));
    cr_assert_not_null(strstr(killed, "(--timeout 2.0 s): killed; it held 2 "
                                      "requests"),
                       "%s", killed);
    cr_assert_null(strstr(killed, "logged no backtrace"), "%s", killed);
    free(killed);

    for (int i = 0; i < 2; i++) {
        struct h_conn *c = i ? hang : sleeper;
        cr_assert_eq(h_wait_eof(c, H_GUARD_MS), 1);
        h_close(c);
    }
    ct_assert_replaced(&s, worker);
    cr_assert_eq(du_count_in_file(s.err, "killed by signal 9"), 1);
    kill(s.pid, SIGTERM);
    du_coserve_wait_stopped(&s, DU_STOP_MS, 1);
}

Test(crash, timeout_off_leaves_a_blocked_worker_alone)
{
    struct du_coserve s;
    /* later flags win: off overrides the short timeout */
    du_coserve_start(&s, "cs", 0, 1, ct_apps(),
                     DU_ARGS("--timeout", "1s", "--timeout", "off"), CT_ENV);
    pid_t worker = ct_worker(&s);
    struct h_conn *hang = ct_send(&s, "/spin/hang");
    cr_assert(
        du_wait_in_file(s.err, "in app spin: GET /spin/hang", 1, H_GUARD_MS),
        "the block was not even noticed:\n%s", du_tail(s.err, 4000));
    /* a bounded look: three times the timeout that was turned off */
    h_sleep_ms(3000);
    pid_t w[4];
    cr_assert_eq(du_workers(&s, w, 4), 1);
    cr_assert_eq(w[0], worker, "the blocked worker was replaced:\n%s",
                 du_tail(s.err, 4000));
    cr_assert_eq(du_count_in_file(s.err, "past --timeout"), 0);
    cr_assert_eq(du_count_in_file(s.err, "killed"), 0, "%s",
                 du_tail(s.err, 4000));
    h_close(hang);
    /* the hub never comes back to drain: SIGKILL the tree */
    du_kill_tree(s.pid);
    s.pid = -1;
}
