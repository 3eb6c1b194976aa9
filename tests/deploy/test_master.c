/*
 * The master and its workers, through signals: HUP reload under load,
 * a killed worker replaced, TERM draining in-flight requests, QUIT, TTIN /
 * TTOU, --request-timeout, --max-requests, USR1 and the access log.
 *
 * Workers are found as the master's children (/proc/PID/stat). A request
 * "is with its handler" when /proc/net/tcp shows its connection accepted
 * and its bytes read (the worker parses and dispatches in the same turn).
 */
#include "deploy_util.h"

TestSuite(master, .fini = du_teardown, .timeout = 60);

/* An apps dir in the temp dir with build/apps/NAME.so for each name. */
static const char *ms_apps(const char *const *names)
{
    du_setup();
    du_mkdir("apps");
    for (int i = 0; names[i]; i++)
        du_link_app(du_apps_src(), names[i], du_path("apps"));
    return du_path("apps");
}

static void ms_assert_hello(const struct du_coserve *s, int times)
{
    struct du_target t = du_at(s);
    for (int i = 0; i < times; i++) {
        struct h_resp *r = du_get(&t, "/hello", NULL, 200);
        cr_assert_str_eq(r->body, "Hello, World!\n");
        h_resp_free(r);
    }
}

/* ---- HUP under load ------------------------------------------------------ */

struct ms_load {
    pthread_t thread;
    int port;
    int keepalive; /* reuse connections, else one per request */
    volatile int *stop;
    pthread_mutex_t *lock;
    long ok, failed, v1, v2;
    char first_failure[600];
};

static void ms_load_fail(struct ms_load *l, const char *fmt, ...)
{
    pthread_mutex_lock(l->lock);
    if (!l->first_failure[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(l->first_failure, sizeof l->first_failure, fmt, ap);
        va_end(ap);
    }
    l->failed++;
    pthread_mutex_unlock(l->lock);
}

/* GET /version in a loop until *stop: every request must get a complete
 * 200 "v1" or "v2", with no retry: a server that closes a kept-alive
 * connection while a request is on its way fails the test. */
static void *ms_load_main(void *arg)
{
    struct ms_load *l = arg;
    static const char req[] = "GET /version HTTP/1.1\r\nHost: t\r\n\r\n";
    struct du_target t = {.port = l->port};
    struct h_conn *c = NULL;
    int reused = 0;
    while (!*l->stop) {
        if (!c) {
            c = du_connect(&t);
            reused = 0;
            if (!c) {
                ms_load_fail(l, "connect: %s", strerror(errno));
                continue;
            }
        }
        struct h_resp r;
        char why[400] = "";
        int rc = du_exchange(c, req, sizeof req - 1, &r, 0, H_GUARD_MS, why,
                             sizeof why);
        if (rc != 1) {
            ms_load_fail(l, "%s connection, request %s: %s",
                         l->keepalive ? "kept-alive" : "new",
                         reused ? "on a reused connection" : "first",
                         rc == 0 ? "closed without a response" : why);
            h_close(c);
            c = NULL;
            continue;
        }
        if (r.status != 200 ||
            (strcmp(r.body, "v1") != 0 && strcmp(r.body, "v2") != 0))
            ms_load_fail(l, "status %d, body '%.40s'", r.status, r.body);
        else {
            __atomic_fetch_add(&l->ok, 1, __ATOMIC_RELAXED);
            __atomic_fetch_add(r.body[1] == '1' ? &l->v1 : &l->v2, 1,
                               __ATOMIC_RELAXED);
        }
        int server_closes = h_header_has_token(&r, "Connection", "close");
        du_resp_clear(&r);
        if (!l->keepalive || server_closes) {
            if (server_closes && l->keepalive) {
                /* it said so: the close must follow, nothing else */
                if (h_wait_eof(c, H_GUARD_MS) != 1)
                    ms_load_fail(l, "no close after Connection: close");
            }
            h_close(c);
            c = NULL;
        } else {
            reused = 1;
        }
    }
    h_close(c);
    return NULL;
}

/* Waits until the master's workers are `want` processes none of which is
 * in old[]. */
static int ms_wait_replaced(const struct du_coserve *s, const pid_t *old,
                            int nold, int want)
{
    int64_t end = h_now_ms() + DU_START_MS;
    for (;;) {
        pid_t now[16];
        int n = du_workers(s, now, 16);
        int replaced = n == want;
        for (int i = 0; i < n; i++)
            replaced &= !du_pid_in(now[i], old, nold);
        if (replaced)
            return 1;
        if (h_now_ms() > end)
            return 0;
        h_sleep_ms(10);
    }
}

/* Two clients (one keeping its connection alive, one connecting for each
 * request) GET /version for about 3 s while the deploy happens `reloads`
 * times: version.so is pointed at the other build (v1 <-> v2, atomically)
 * and the master gets SIGHUP, then the next waits until no old worker is
 * left. Every request must get its complete 200. */
static void ms_hup_under_load(int reloads)
{
    du_setup();
    du_mkdir("apps");
    const char *apps = du_path("apps");
    char *v1 = h_fmt("%s/v1.so", du_test_apps_src());
    char *v2 = h_fmt("%s/v2.so", du_test_apps_src());
    char *vabs[2] = {du_abs(v1), du_abs(v2)};
    du_symlink(vabs[0], apps, "version.so");
    du_link_app(du_apps_src(), "hello", apps);
    struct du_coserve s;
    du_coserve_start(&s, "cs", 0, 2, apps, NULL, NULL);
    struct du_target t = du_at(&s);
    struct h_resp *r = du_get(&t, "/version", NULL, 200);
    cr_assert_str_eq(r->body, "v1");
    h_resp_free(r);

    volatile int stop = 0;
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    struct ms_load load[2] = {
        {.port = s.port, .keepalive = 1, .stop = &stop, .lock = &lock},
        {.port = s.port, .keepalive = 0, .stop = &stop, .lock = &lock},
    };
    for (int i = 0; i < 2; i++)
        cr_assert_eq(
            pthread_create(&load[i].thread, NULL, ms_load_main, &load[i]), 0);
    int64_t started = h_now_ms();
    h_sleep_ms(reloads == 1 ? 1000 : 300);
    int replaced = 1;
    for (int k = 0; k < reloads && replaced; k++) {
        pid_t old[16];
        int nold = du_workers(&s, old, 16);
        /* the deploy: point version.so at the other build, reload */
        du_symlink(vabs[(k + 1) % 2], apps, "version.so");
        kill(s.pid, SIGHUP);
        replaced = ms_wait_replaced(&s, old, nold, 2);
        h_sleep_ms(100);
    }
    /* and some load on the last generation alone */
    int64_t until = started + 3000;
    if (until < h_now_ms() + 500)
        until = h_now_ms() + 500;
    while (h_now_ms() < until)
        h_sleep_ms(20);
    stop = 1;
    for (int i = 0; i < 2; i++)
        pthread_join(load[i].thread, NULL);
    cr_assert(replaced, "the old workers were not replaced after SIGHUP:\n%s",
              du_tail(s.err, 3000));
    for (int i = 0; i < 2; i++) {
        cr_log_info("%s client: %ld ok (%ld v1, %ld v2), %ld failed",
                    load[i].keepalive ? "keep-alive" : "new-connection",
                    load[i].ok, load[i].v1, load[i].v2, load[i].failed);
        cr_assert_eq(load[i].failed, 0,
                     "%s client: %ld of %ld requests failed across %d "
                     "reload(s); the first: %s",
                     load[i].keepalive ? "keep-alive" : "new-connection",
                     load[i].failed, load[i].failed + load[i].ok, reloads,
                     load[i].first_failure);
        cr_assert_gt(load[i].v1, 0);
        cr_assert_gt(load[i].v2, 0, "no request reached the new code");
    }
    const char *want = reloads % 2 ? "v2" : "v1";
    for (int i = 0; i < 10; i++) {
        r = du_get(&t, "/version", NULL, 200);
        cr_assert_str_eq(r->body, want, "after the reload: '%s'", r->body);
        h_resp_free(r);
    }
    du_coserve_stop(&s);
    free(v1);
    free(v2);
    free(vabs[0]);
    free(vabs[1]);
}

Test(master, hup_reload_under_load_loses_no_request)
{
    ms_hup_under_load(1);
}

/* The same, five deploys in a row: more chances for a race to show. */
Test(master, five_hup_reloads_under_load_lose_no_request)
{
    ms_hup_under_load(5);
}

/* ---- a worker dies ------------------------------------------------------- */

Test(master, killed_worker_is_replaced_while_others_serve)
{
    struct du_coserve s;
    du_coserve_start(&s, "cs", 0, 2, ms_apps(DU_ARGS("hello")), NULL, NULL);
    pid_t w[8];
    cr_assert_eq(du_workers(&s, w, 8), 2);
    ms_assert_hello(&s, 5);
    kill(w[0], SIGKILL);
    /* at once: the other worker takes every request */
    ms_assert_hello(&s, 20);
    /* the master starts a replacement, serving while it waits */
    int64_t end = h_now_ms() + DU_START_MS;
    pid_t now[8];
    int n = 0, replaced = 0;
    while (!replaced && h_now_ms() < end) {
        ms_assert_hello(&s, 1);
        n = du_workers(&s, now, 8);
        replaced =
            n == 2 && !du_pid_in(w[0], now, n) && du_pid_in(w[1], now, n);
    }
    cr_assert(replaced, "%d workers, the killed one %s replaced:\n%s", n,
              replaced ? "" : "not", du_tail(s.err, 3000));
    cr_assert(du_count_in_file(s.err, "killed by signal 9"),
              "the master did not report the death:\n%s", du_tail(s.err, 3000));
    /* the replacement serves: kill the last original one too */
    cr_assert(du_wait_in_file(s.err, "serving on", 3, DU_START_MS));
    kill(w[1], SIGKILL);
    ms_assert_hello(&s, 20);
    cr_assert_eq(du_wait_children(s.pid, 2, DU_START_MS), 2);
    ms_assert_hello(&s, 5);
    kill(s.pid, SIGTERM);
    du_coserve_wait_stopped(&s, DU_STOP_MS, 1);
}

/* ---- TERM and QUIT ------------------------------------------------------- */

/* Opens n connections, each sending `raw`, and waits until every request
 * is with its handler. */
static struct h_conn **ms_inflight(const struct du_coserve *s, int n,
                                   const char *raw)
{
    struct h_conn **c = calloc((size_t)n, sizeof *c);
    struct du_target t = du_at(s);
    for (int i = 0; i < n; i++) {
        c[i] = du_connect(&t);
        cr_assert_not_null(c[i], "connect %d: %s", i, strerror(errno));
        cr_assert_eq(h_try_send(c[i], raw, strlen(raw)), 0);
    }
    cr_assert(du_wait_tcp_taken(s->port, n, H_GUARD_MS),
              "the %d requests were not all taken by the workers", n);
    return c;
}

Test(master, term_lets_100_inflight_requests_finish)
{
    h_raise_nofile(4096);
    struct du_coserve s;
    du_coserve_start(&s, "cs", 0, 2, ms_apps(DU_ARGS("hello", "sleep")), NULL,
                     NULL);
    enum { N = 100 };
    struct h_conn **c =
        /* 2 s: long enough that TERM reaches the workers (through the
         * master) before any answer, even on a loaded machine */
        ms_inflight(&s, N, "GET /sleep?ms=2000 HTTP/1.1\r\nHost: t\r\n\r\n");
    kill(s.pid, SIGTERM);
    int ok = 0;
    char first[600] = "";
    for (int i = 0; i < N; i++) {
        struct h_resp r;
        char why[400] = "";
        int rc = h_read_response(c[i], &r, 0, H_GUARD_MS, why, sizeof why);
        if (rc == 1 && r.status == 200 &&
            strcmp(r.body, "slept 2000 ms\n") == 0) {
            ok++;
            /* a stopping server says it closes, then does */
            if (!h_header_has_token(&r, "Connection", "close") && !first[0])
                snprintf(first, sizeof first,
                         "request %d: no Connection: close while stopping:"
                         "\n%s",
                         i, r.head);
        } else if (!first[0]) {
            snprintf(first, sizeof first, "request %d: %s", i,
                     rc == 1   ? r.head
                     : rc == 0 ? "closed, no response"
                               : why);
        }
        if (rc == 1)
            du_resp_clear(&r);
        h_close(c[i]);
    }
    free(c);
    cr_assert_eq(ok, N,
                 "%d of %d in-flight requests completed after TERM; "
                 "the first failure: %s",
                 ok, N, first);
    cr_assert_str_empty(first, "%s\n%s", first, du_tail(s.err, 3000));
    du_coserve_wait_stopped(&s, DU_STOP_MS, 0);
    /* and they really were in flight: the workers said so as they stopped */
    int inflight = 0;
    char *log = h_read_file(s.err, NULL);
    for (const char *p = log; (p = strstr(p, " ms for ")); p++)
        inflight += atoi(p + strlen(" ms for "));
    free(log);
    cr_assert_eq(inflight, N, "the workers had %d requests when stopping:\n%s",
                 inflight, du_tail(s.err, 3000));
}

Test(master, quit_stops_without_waiting_for_requests)
{
    struct du_coserve s;
    du_coserve_start(&s, "cs", 0, 2, ms_apps(DU_ARGS("hello", "sleep")), NULL,
                     NULL);
    enum { N = 10 };
    /* a minute of sleep, with a 30 s graceful timeout: TERM would wait */
    struct h_conn **c =
        ms_inflight(&s, N, "GET /sleep?ms=60000 HTTP/1.1\r\nHost: t\r\n\r\n");
    kill(s.pid, SIGQUIT);
    int status = 0;
    int exited = du_wait_exit(s.pid, DU_STOP_MS, &status);
    if (!exited)
        du_kill_tree(s.pid);
    s.pid = -1;
    cr_assert(exited,
              "the master was still running %d ms after SIGQUIT "
              "with requests that wait a minute:\n%s",
              DU_STOP_MS, du_tail(s.err, 3000));
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status 0x%x",
              status);
    /* none of the sleeps was allowed to finish */
    for (int i = 0; i < N; i++) {
        struct h_resp r;
        char why[400] = "";
        int rc = h_read_response(c[i], &r, 0, H_GUARD_MS, why, sizeof why);
        cr_assert(rc != 1 || r.status != 200,
                  "request %d completed despite QUIT", i);
        cr_assert_neq(rc, -1, "request %d: the connection stayed open (%s)", i,
                      why);
        if (rc == 1)
            du_resp_clear(&r);
        h_close(c[i]);
    }
    free(c);
    cr_assert_null(h_log_problem_in(s.err, 0), "%s", du_tail(s.err, 3000));
}

/* ---- TTIN / TTOU --------------------------------------------------------- */

/* (Each new worker is let finish its startup before the next signal: a
 * signal during startup is usr1_during_worker_startup's business.) */
Test(master, ttin_and_ttou_change_the_worker_count)
{
    struct du_coserve s;
    du_coserve_start(&s, "cs", 0, 2, ms_apps(DU_ARGS("hello")), NULL, NULL);
    const int steps[][2] = {
        {SIGTTIN, 3}, {SIGTTIN, 4}, {SIGTTOU, 3}, {SIGTTOU, 2}, {SIGTTOU, 1}};
    int started = 2;
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
        kill(s.pid, steps[i][0]);
        int n = du_wait_children(s.pid, steps[i][1], DU_START_MS);
        cr_assert_eq(n, steps[i][1], "after %s: %d workers, want %d:\n%s",
                     steps[i][0] == SIGTTIN ? "TTIN" : "TTOU", n, steps[i][1],
                     du_tail(s.err, 3000));
        if (steps[i][0] == SIGTTIN)
            cr_assert(
                du_wait_in_file(s.err, "serving on", ++started, DU_START_MS),
                "%s", du_tail(s.err, 3000));
        ms_assert_hello(&s, 5);
    }
    /* TTOU never goes below one: TTOU, then TTIN, makes two */
    kill(s.pid, SIGTTOU);
    h_sleep_ms(300); /* separate deliveries (not an assertion) */
    kill(s.pid, SIGTTIN);
    cr_assert_eq(du_wait_children(s.pid, 2, DU_START_MS), 2);
    cr_assert(du_wait_in_file(s.err, "serving on", ++started, DU_START_MS));
    h_sleep_ms(300);
    cr_assert_eq(du_wait_children(s.pid, 2, 0), 2, "%s", du_tail(s.err, 3000));
    ms_assert_hello(&s, 5);
    /* every retired worker exited on its own, none was killed */
    du_coserve_stop(&s);
    cr_assert_eq(du_count_in_file(s.err, "did not stop in time"), 0);
}

/* ---- limits -------------------------------------------------------------- */

Test(master, request_timeout_answers_504)
{
    struct du_coserve s;
    du_coserve_start(&s, "cs", 0, 1, ms_apps(DU_ARGS("hello", "sleep")),
                     DU_ARGS("--request-timeout", "200ms"), NULL);
    struct du_target t = du_at(&s);
    struct h_resp *r = du_get(&t, "/sleep?ms=2000", NULL, 504);
    cr_assert(h_header_has_token(r, "Connection", "close"),
              "a timed-out request's connection should close:\n%s", r->head);
    h_resp_free(r);
    r = du_get(&t, "/sleep?ms=10", NULL, 200);
    cr_assert_str_eq(r->body, "slept 10 ms\n");
    h_resp_free(r);
    ms_assert_hello(&s, 3);
    du_coserve_stop(&s);
    cr_assert_eq(du_count_in_file(s.access, "\"GET /sleep?ms=2000 HTTP/1.1\" "
                                            "504"),
                 1, "%s", du_tail(s.access, 2000));
}

Test(master, max_requests_recycles_the_worker)
{
    struct du_coserve s;
    du_coserve_start(&s, "cs", 0, 1, ms_apps(DU_ARGS("hello")),
                     DU_ARGS("--max-requests", "20"), NULL);
    pid_t w0[4];
    cr_assert_eq(du_workers(&s, w0, 4), 1);
    struct du_target t = du_at(&s);
    int ok = 0;
    char first[600] = "";
    for (int i = 0; i < 60; i++) {
        struct h_conn *c = du_connect(&t);
        cr_assert_not_null(c);
        struct h_resp r;
        char why[400] = "";
        static const char req[] = "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n";
        int rc = du_exchange(c, req, sizeof req - 1, &r, 0, H_GUARD_MS, why,
                             sizeof why);
        if (rc == 1 && r.status == 200)
            ok++;
        else if (!first[0])
            snprintf(first, sizeof first, "request %d: %s", i + 1,
                     rc == 1   ? r.head
                     : rc == 0 ? "closed, no response"
                               : why);
        if (rc == 1)
            du_resp_clear(&r);
        h_close(c);
    }
    cr_assert_eq(ok, 60, "%d of 60 succeeded; the first failure: %s\n%s", ok,
                 first, du_tail(s.err, 2000));
    /* three recycles (after 20, 40, 60), each replaced */
    cr_assert(
        du_wait_in_file(s.err, "(--max-requests): recycling", 3, DU_START_MS),
        "%s", du_tail(s.err, 3000));
    cr_assert(du_wait_in_file(s.err, "serving on", 4, DU_START_MS), "%s",
              du_tail(s.err, 3000));
    pid_t now[4];
    cr_assert_eq(du_wait_children(s.pid, 1, DU_START_MS), 1);
    cr_assert_eq(du_workers(&s, now, 4), 1);
    cr_assert_neq(now[0], w0[0], "the worker was not recycled");
    ms_assert_hello(&s, 3);
    du_coserve_stop(&s);
}

/* ---- USR1 ---------------------------------------------------------------- */

Test(master, usr1_reopens_the_access_log)
{
    struct du_coserve s;
    du_coserve_start(&s, "cs", 0, 2, ms_apps(DU_ARGS("hello")), NULL, NULL);
    struct du_target t = du_at(&s);
    struct h_resp *r = du_get(&t, "/hello?before-rotation", NULL, 200);
    h_resp_free(r);
    cr_assert(
        du_wait_in_file(s.access, "/hello?before-rotation", 1, H_GUARD_MS));
    /* logrotate: move the file away, then tell the server */
    char *rotated = h_fmt("%s.1", s.access);
    cr_assert_eq(rename(s.access, rotated), 0);
    kill(s.pid, SIGUSR1);
    cr_assert(du_wait_in_file(s.err, "reopened", 2, H_GUARD_MS),
              "the workers did not reopen the log:\n%s", du_tail(s.err, 3000));
    for (int i = 0; i < 4; i++) { /* whichever worker takes it */
        r = du_get(&t, "/hello?after-rotation", NULL, 200);
        h_resp_free(r);
    }
    cr_assert(du_wait_in_file(s.access, "/hello?after-rotation", 4, H_GUARD_MS),
              "no new log at %s:\n%s", s.access, du_tail(s.access, 2000));
    cr_assert_eq(du_count_in_file(rotated, "after-rotation"), 0,
                 "lines still went to the moved file");
    cr_assert_eq(du_count_in_file(rotated, "before-rotation"), 1);
    du_coserve_stop(&s);
    free(rotated);
}

/* Signals that reach a worker still starting (forked, loading its apps,
 * not serving yet) must not kill it: there they have their default action.
 * build/test-apps/slowload.so sleeps in its constructor (dlopen) to hold a
 * new worker in that state. */
static void ms_start_slow(struct du_coserve *s)
{
    du_setup();
    du_mkdir("apps");
    du_link_app(du_apps_src(), "hello", du_path("apps"));
    du_link_app(du_test_apps_src(), "slowload", du_path("apps"));
    du_coserve_start(s, "cs", 0, 1, du_path("apps"), NULL,
                     DU_ARGS("COSERVE_TEST_SLOWLOAD_MS=1500"));
    kill(s->pid, SIGTTIN); /* a second worker, now loading slowload.so */
    cr_assert(du_wait_in_file(s->err, "master: 2 workers", 1, H_GUARD_MS));
    cr_assert_eq(du_wait_children(s->pid, 2, H_GUARD_MS), 2);
}

/* logrotate's USR1 while a worker starts */
Test(master, usr1_during_worker_startup_kills_nothing)
{
    struct du_coserve s;
    ms_start_slow(&s);
    kill(s.pid, SIGUSR1);
    cr_assert(du_wait_in_file(s.err, "serving on", 2, DU_START_MS),
              "the new worker never served:\n%s", du_tail(s.err, 3000));
    ms_assert_hello(&s, 3);
    du_coserve_stop(&s); /* asserts no worker was killed by a signal */
}

/* TTOU retires the newest worker, maybe one still starting: it should
 * exit, not die of the SIGTERM. */
Test(master, ttou_during_worker_startup_retires_it_cleanly)
{
    struct du_coserve s;
    ms_start_slow(&s);
    kill(s.pid, SIGTTOU);
    cr_assert_eq(du_wait_children(s.pid, 1, DU_START_MS), 1, "%s",
                 du_tail(s.err, 3000));
    ms_assert_hello(&s, 3);
    du_coserve_stop(&s); /* asserts no worker was killed by a signal */
}
