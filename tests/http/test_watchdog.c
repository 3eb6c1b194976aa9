/*
 * test_watchdog.c - the hub-block detector (server/core/watchdog.c) in the
 * real server: a handler that keeps its worker's hub from its loop past
 * --block-threshold gets one warning naming the app, the request and the
 * blocked code by function, and nothing else does.
 *
 * The blocking handlers are the spin test app's (tests/apps/spin): a CPU
 * loop and a raw nanosleep system call. Each test runs one worker, so
 * every request goes through the same hub. Pass/fail never rests on how
 * fast anything ran: only on what the log says and how often.
 */
#include "harness.h"

TestSuite(watchdog, .fini = h_teardown, .timeout = 90);

#define WARNING "hub blocked for "
#define SUMMARY "watchdog: "

/* Symlinks a built app into the test's apps folder. */
static void link_app(const char *env, const char *def, const char *name)
{
    h_setup();
    char rel[PATH_MAX], target[PATH_MAX], link[PATH_MAX];
    snprintf(rel, sizeof rel, "%s/%s.so", h_env(env, def), name);
    cr_assert_not_null(realpath(rel, target), "%s: %s (run `make apps` first)",
                       rel, strerror(errno));
    snprintf(link, sizeof link, "%s/%s.so", h_srv.apps, name);
    cr_assert_eq(symlink(target, link), 0, "symlink %s: %s", link,
                 strerror(errno));
}

/* One worker serving the spin and hello apps, plus the given flags. */
static void start_spin(const char *const *extra)
{
    link_app("COSERVE_TEST_APPS", "build/test-apps", "spin");
    link_app("COSERVE_APPS", "build/apps", "hello");
    const char *args[16];
    int n = 0;
    args[n++] = "--apps";
    args[n++] = h_srv.apps;
    args[n++] = "--workers";
    args[n++] = "1";
    for (int i = 0; extra && extra[i] && n < 15; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    h_start(args);
}

static void get(const char *target)
{
    char *raw = h_fmt("GET %s HTTP/1.1\r\nHost: t\r\n\r\n", target);
    h_resp_free(h_request(raw, 0, 200));
    free(raw);
}

/* The warning whose first line mentions `request` with its backtrace
 * lines (malloc'd), or NULL. */
static char *warning_for(const char *request)
{
    char *log = h_stderr();
    char *found = NULL;
    for (char *p = log; (p = strstr(p, WARNING)); p++) {
        char *eol = strchr(p, '\n');
        size_t first = eol ? (size_t)(eol - p) : strlen(p);
        if (!memmem(p, first, request, strlen(request)))
            continue;
        char *end = eol;
        while (end && strncmp(end, "\n    ", 5) == 0)
            end = strchr(end + 1, '\n');
        found = strndup(p, end ? (size_t)(end - p) : strlen(p));
        break;
    }
    free(log);
    return found;
}

/* How many warnings mention request on their first line. */
static int count_warnings_for(const char *request)
{
    char *log = h_stderr();
    int n = 0;
    for (char *p = log; (p = strstr(p, WARNING)); p++) {
        char *eol = strchr(p, '\n');
        size_t first = eol ? (size_t)(eol - p) : strlen(p);
        if (memmem(p, first, request, strlen(request)))
            n++;
    }
    free(log);
    return n;
}

/* Asserts the warning for request exists, says "in app spin: request" and
 * shows fn (the blocked code) above spin_handler in its backtrace. */
static void assert_warning(const char *request, const char *fn)
{
    char *w = warning_for(request);
    cr_assert_not_null(w, "no warning for %s; stderr:\n%s", request,
                       h_stderr_tail(4000));
    char *want = h_fmt("in app spin: %s", request);
    cr_assert_not_null(strstr(w, want), "the warning does not say '%s':\n%s",
                       want, w);
    const char *bt = strstr(w, "backtrace:");
    cr_assert_not_null(bt, "the warning has no backtrace:\n%s", w);
    const char *blocked = strstr(bt, fn);
    const char *handler = strstr(bt, "spin_handler+");
    cr_assert_not_null(blocked, "the backtrace does not name %s:\n%s", fn, w);
    cr_assert_not_null(handler,
                       "the backtrace does not reach the app's "
                       "handler spin_handler:\n%s",
                       w);
    cr_assert(blocked < handler, "%s should be above spin_handler:\n%s", fn, w);
    cr_assert_not_null(strstr(w, "(spin.so)"),
                       "frames do not name the object spin.so:\n%s", w);
    free(want);
    free(w);
}

/* The worker's closing count: "watchdog: N blocked episodes, M not logged"
 * (0, 0 when the line is absent: no episode). */
static void summary(unsigned *episodes, unsigned *unlogged)
{
    char *log = h_stderr();
    const char *s = strstr(log, SUMMARY);
    *episodes = *unlogged = 0;
    if (s)
        cr_assert_eq(sscanf(s, SUMMARY "%u blocked episodes, %u not logged",
                            episodes, unlogged),
                     2, "unreadable summary: %.120s", s);
    free(log);
}

Test(watchdog, a_spinning_handler_is_named_with_its_app_and_request)
{
    start_spin(NULL); /* the default threshold: 100ms */
    get("/spin/cpu?ms=800");
    cr_assert(h_wait_stderr("hub unblocked after", H_GUARD_MS),
              "no end of the episode logged; stderr:\n%s", h_stderr_tail(4000));
    assert_warning("GET /spin/cpu?ms=800", "spin_busy_loop+");
    /* one episode, however many thresholds long: one warning */
    cr_assert_eq(count_warnings_for("GET /spin/cpu?ms=800"), 1, "stderr:\n%s",
                 h_stderr_tail(4000));
    cr_assert(h_stderr_has("hub unblocked after ") &&
                  h_stderr_has("ms: app spin: GET /spin/cpu?ms=800"),
              "stderr:\n%s", h_stderr_tail(4000));
    h_stop();
    unsigned episodes, unlogged;
    summary(&episodes, &unlogged);
    cr_assert_geq(episodes, 1, "the worker counted no episode; stderr:\n%s",
                  h_stderr_tail(4000));
}

/* Each "hub unblocked after N ms" in the log, in order, into ms[] (at
 * most max); returns how many. */
static int unblocked_times(long *ms, int max)
{
    char *log = h_stderr();
    int n = 0;
    for (char *p = log; n < max && (p = strstr(p, "hub unblocked after ")); p++)
        ms[n++] = strtol(p + strlen("hub unblocked after "), NULL, 10);
    free(log);
    return n;
}

/* The hub stamps each beat, so an episode is measured from where the
 * handler began to spin, not from the watchdog's first look at it (which
 * came up to a look's interval later: a look is 50 to 200 ms apart at the
 * default threshold). Two episodes, each spinning 1100 ms by the app's own
 * clock: neither may be reported shorter, but for the clock's resolution
 * (one kernel tick, at most 10 ms). Two, so that a watchdog that counted
 * from its look would pass by luck only if both looks fell within a tick
 * of the start. Far enough apart that both are logged (one warning a
 * second). */
Test(watchdog, an_episode_is_measured_from_where_it_began)
{
    start_spin(NULL);
    get("/spin/cpu?ms=1100");
    cr_assert(h_wait_stderr("hub unblocked after", H_GUARD_MS),
              "no end of the first episode logged; stderr:\n%s",
              h_stderr_tail(4000));
    get("/spin/cpu?ms=1100");
    long ms[2];
    for (int i = 0; i < 100 && unblocked_times(ms, 2) < 2; i++)
        usleep(50 * 1000);
    cr_assert_eq(unblocked_times(ms, 2), 2,
                 "the second episode's end is not logged; stderr:\n%s",
                 h_stderr_tail(4000));
    for (int i = 0; i < 2; i++)
        cr_assert_geq(ms[i], 1100 - 10,
                      "episode %d reported as %ld ms, but the handler spun "
                      "1100 ms; stderr:\n%s",
                      i + 1, ms[i], h_stderr_tail(4000));
    h_stop();
}

Test(watchdog, a_blocking_system_call_is_reported_too)
{
    start_spin(NULL);
    get("/spin/block?ms=800");
    cr_assert(h_wait_stderr("hub unblocked after", H_GUARD_MS),
              "no end of the episode logged; stderr:\n%s", h_stderr_tail(4000));
    assert_warning("GET /spin/block?ms=800", "spin_blocking_syscall+");
    h_stop();
}

Test(watchdog, a_child_coroutine_is_named_with_its_request)
{
    start_spin(NULL);
    get("/spin/child?ms=800");
    cr_assert(h_wait_stderr("hub unblocked after", H_GUARD_MS),
              "no end of the episode logged; stderr:\n%s", h_stderr_tail(4000));
    char *w = warning_for("GET /spin/child?ms=800");
    cr_assert_not_null(w, "no warning for the child; stderr:\n%s",
                       h_stderr_tail(4000));
    cr_assert_not_null(strstr(w, ", child of app spin: GET /spin/child?ms=800"),
                       "the warning does not name the child's request:\n%s", w);
    cr_assert_not_null(strstr(w, "spin_busy_loop+"), "%s", w);
    cr_assert_not_null(strstr(w, "spin_child+"), "%s", w);
    free(w);
    h_stop();
}

Test(watchdog, quick_handlers_and_an_idle_hub_log_nothing)
{
    start_spin(H_ARGS("--block-threshold", "300ms"));
    for (int i = 0; i < 20; i++)
        get("/spin/quick");
    /* several thresholds with nothing to do: sleeping in the loop is not
     * blocking it */
    h_sleep_ms(1200);
    for (int i = 0; i < 20; i++)
        get("/hello");
    h_stop();
    cr_assert_eq(h_stderr_count(WARNING), 0, "stderr:\n%s",
                 h_stderr_tail(4000));
    cr_assert_eq(h_stderr_count(SUMMARY), 0, "stderr:\n%s",
                 h_stderr_tail(4000));
}

Test(watchdog, the_threshold_flag_sets_the_limit)
{
    start_spin(H_ARGS("--block-threshold", "1s"));
    get("/spin/cpu?ms=300");  /* under the threshold */
    get("/spin/cpu?ms=2500"); /* over it, by more than two looks' period */
    h_stop();
    cr_assert_eq(count_warnings_for("GET /spin/cpu?ms=300"), 0, "stderr:\n%s",
                 h_stderr_tail(4000));
    cr_assert_eq(count_warnings_for("GET /spin/cpu?ms=2500"), 1, "stderr:\n%s",
                 h_stderr_tail(4000));
    assert_warning("GET /spin/cpu?ms=2500", "spin_busy_loop+");
    char *w = warning_for("GET /spin/cpu?ms=2500");
    cr_assert_not_null(strstr(w, "(threshold 1000 ms)"), "%s", w);
    free(w);
}

Test(watchdog, off_turns_the_detector_off)
{
    start_spin(H_ARGS("--block-threshold", "off"));
    get("/spin/cpu?ms=600");
    get("/spin/block?ms=600");
    h_stop();
    cr_assert_eq(h_stderr_count(WARNING), 0, "stderr:\n%s",
                 h_stderr_tail(4000));
    cr_assert_eq(h_stderr_count(SUMMARY), 0, "stderr:\n%s",
                 h_stderr_tail(4000));
}

Test(watchdog, a_bad_threshold_is_refused)
{
    h_setup();
    const char *argv[] = {h_env("COSERVE_BIN", "build/plain/coserve"),
                          "--block-threshold", "soon", NULL};
    pid_t pid = h_spawn(argv, h_srv.err_path, 0, NULL);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 2,
              "status 0x%x; stderr:\n%s", status, h_stderr_tail(2000));
    cr_assert(h_stderr_has("coserve: --block-threshold: want a duration") &&
                  h_stderr_has("not 'soon'"),
              "stderr:\n%s", h_stderr_tail(2000));
}

Test(watchdog, warnings_are_rate_limited_and_every_episode_counted)
{
    enum { N = 8 };
    int64_t born = h_now_ms();
    start_spin(H_ARGS("--block-threshold", "50ms"));
    /* All sent at once: the one hub serves them back to back, each a
     * blocked episode of its own. */
    struct h_conn *c[N];
    for (int i = 0; i < N; i++) {
        c[i] = h_connect();
        h_sends(c[i], "GET /spin/cpu?ms=200 HTTP/1.1\r\nHost: t\r\n\r\n");
    }
    for (int i = 0; i < N; i++) {
        struct h_resp *r = h_response(c[i], 0);
        cr_assert_eq(r->status, 200);
        h_resp_free(r);
        h_close(c[i]);
    }
    h_stop();
    /* the server's whole life: warnings from any episode count */
    int64_t lived = h_now_ms() - born;
    int warnings = h_stderr_count(WARNING);
    unsigned episodes, unlogged;
    summary(&episodes, &unlogged);
    cr_assert_geq(warnings, 1, "stderr:\n%s", h_stderr_tail(4000));
    /* at most one warning per second: the first, then one per second */
    cr_assert_leq(warnings, 1 + lived / 1000,
                  "%d warnings in %lld ms; stderr:\n%s", warnings,
                  (long long)lived, h_stderr_tail(6000));
    cr_assert_eq(episodes, warnings + unlogged,
                 "%u episodes, %d logged, %u not; stderr:\n%s", episodes,
                 warnings, unlogged, h_stderr_tail(6000));
    cr_assert_gt(unlogged, 0, "nothing was held back; stderr:\n%s",
                 h_stderr_tail(6000));
    if (warnings > 1)
        cr_assert(h_stderr_has("not logged since the last warning"),
                  "a later warning does not count the ones held back:\n%s",
                  h_stderr_tail(6000));
}
