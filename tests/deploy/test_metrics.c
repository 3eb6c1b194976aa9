/*
 * test_metrics.c - --metrics-listen: the master's /metrics and /status,
 * against a real server over real sockets. Counters match the requests
 * made, survive a reload and a killed worker, gauges follow what is open,
 * the block detector's episodes show, promtool accepts the text, /status
 * is JSON listing the workers, and hostile clients of the metrics
 * listener stall nothing. Every wait is bounded; no test asserts on time.
 */
#include "deploy_util.h"

#include <jansson.h>

TestSuite(metrics, .fini = du_teardown, .timeout = 120);

#define MT_POLL_MS 15000

/* An apps dir with hello only: no stream app asks the master for a
 * socket, so the master's sockets are known. */
static const char *mt_apps(void)
{
    du_setup();
    du_mkdir("apps");
    du_link_app(du_apps_src(), "hello", du_path("apps"));
    return du_path("apps");
}

/* Starts coserve `name` with its metrics on NAME.metrics.sock; *m gets
 * the metrics target. */
static void mt_start(struct du_coserve *s, struct du_target *m,
                     const char *name, int workers, const char *apps,
                     const char *const *extra)
{
    du_setup();
    char *spec = h_fmt("unix:%s/%s.metrics.sock", du.dir, name);
    const char *argv[32];
    int n = 0;
    argv[n++] = "--metrics-listen";
    argv[n++] = spec;
    for (int i = 0; extra && extra[i]; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    du_coserve_start(s, name, 0, workers, apps, argv, NULL);
    static char paths[8][300]; /* the targets outlive this call */
    static int k;
    k = (k + 1) % 8;
    snprintf(paths[k], sizeof paths[k], "%s", spec + 5);
    *m = (struct du_target){.unix_path = paths[k]};
    free(spec);
}

/* GET path on the metrics listener; the body (the caller frees it). */
static char *mt_get(const struct du_target *m, const char *path)
{
    struct h_resp *r = du_get(m, path, NULL, 200);
    char *body = strdup(r->body ? r->body : "");
    h_resp_free(r);
    return body;
}

/* The value of the sample `key` (name and labels, exactly as written) in
 * a scrape; 0 when absent (a series shows from its first event). */
static double mt_value(const char *text, const char *key)
{
    size_t kl = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
        if (strncmp(p, key, kl) == 0 && p[kl] == ' ')
            return strtod(p + kl + 1, NULL);
    return 0;
}

static double mt_scrape(const struct du_target *m, const char *key)
{
    char *text = mt_get(m, "/metrics");
    double v = mt_value(text, key);
    free(text);
    return v;
}

/* Polls until the sample equals want (bounded); returns the last value. */
static double mt_wait_value(const struct du_target *m, const char *key,
                            double want)
{
    int64_t end = h_now_ms() + MT_POLL_MS;
    double v;
    while ((v = mt_scrape(m, key)) != want && h_now_ms() < end)
        h_sleep_ms(20);
    return v;
}

static void mt_hello(const struct du_coserve *s, int times)
{
    struct du_target t = du_at(s);
    for (int i = 0; i < times; i++)
        h_resp_free(du_get(&t, "/hello", NULL, 200));
}

/* /status, parsed. */
static json_t *mt_status(const struct du_target *m)
{
    char *text = mt_get(m, "/status");
    json_error_t err;
    json_t *j = json_loads(text, 0, &err);
    cr_assert_not_null(j, "/status is not JSON (%s at %d):\n%s", err.text,
                       err.position, text);
    free(text);
    return j;
}

/* Polls /status until `want` workers of the current generation are
 * ready and none other is left; returns their pids' count in pids. */
static void mt_wait_workers(const struct du_target *m, int want, pid_t *pids)
{
    int64_t end = h_now_ms() + MT_POLL_MS;
    for (;;) {
        json_t *j = mt_status(m);
        json_int_t gen = json_integer_value(
            json_object_get(json_object_get(j, "master"), "generation"));
        json_t *ws = json_object_get(j, "workers");
        int ok = (int)json_array_size(ws) == want;
        for (size_t i = 0; ok && i < json_array_size(ws); i++) {
            json_t *w = json_array_get(ws, i);
            ok = strcmp(json_string_value(json_object_get(w, "state")),
                        "ready") == 0 &&
                 json_integer_value(json_object_get(w, "generation")) == gen;
            if (pids)
                pids[i] = (pid_t)json_integer_value(json_object_get(w, "pid"));
        }
        json_decref(j);
        if (ok)
            return;
        cr_assert(h_now_ms() < end, "workers not all ready in %d ms",
                  MT_POLL_MS);
        h_sleep_ms(20);
    }
}

/* Every counter sample of before is in after, not smaller. */
static void mt_assert_not_backwards(const char *before, const char *after)
{
    for (const char *p = before; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        const char *sp = memchr(p, ' ', len);
        if (p[0] != '#' && sp) {
            char key[400];
            snprintf(key, sizeof key, "%.*s", (int)(sp - p), p);
            int counter = strstr(key, "_total") || strstr(key, "_bucket") ||
                          strstr(key, "_count") || strstr(key, "_sum");
            double a = strtod(sp + 1, NULL), b = mt_value(after, key);
            cr_assert(!counter || b >= a, "%s went back from %g to %g", key, a,
                      b);
        }
        p += len + (nl ? 1 : 0);
    }
}

/* Sockets among pid's open files. */
static int mt_sockets(pid_t pid)
{
    char dir[64], link[400], target[300];
    snprintf(dir, sizeof dir, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        snprintf(link, sizeof link, "%s/%s", dir, e->d_name);
        ssize_t l = readlink(link, target, sizeof target - 1);
        if (l > 0 && (target[l] = '\0', strncmp(target, "socket:", 7) == 0))
            n++;
    }
    closedir(d);
    return n;
}

static int mt_wait_sockets(pid_t pid, int want)
{
    int64_t end = h_now_ms() + MT_POLL_MS;
    int n;
    while ((n = mt_sockets(pid)) != want && h_now_ms() < end)
        h_sleep_ms(20);
    return n;
}

Test(metrics, is_off_by_default)
{
    struct du_coserve s;
    du_coserve_start(&s, "off", 0, 2, mt_apps(), NULL, NULL);
    /* the master holds one socket, the HTTP listener (the workers' ready
     * channels close once they serve) */
    cr_assert_eq(mt_wait_sockets(s.pid, 1), 1, "the master has %d sockets",
                 mt_sockets(s.pid));
    du_coserve_stop(&s);
    struct du_coserve on;
    struct du_target m;
    mt_start(&on, &m, "on", 2, mt_apps(), NULL);
    cr_assert_eq(mt_wait_sockets(on.pid, 2), 2, "with --metrics-listen: %d",
                 mt_sockets(on.pid));
    du_coserve_stop(&on);
}

Test(metrics, counters_match_the_requests_made)
{
    struct du_coserve s;
    struct du_target m;
    mt_start(&s, &m, "count", 2, mt_apps(), NULL);
    const char *ok = "coserve_requests_total{app=\"hello\",status=\"200\"}";
    const char *count = "coserve_request_duration_seconds_count{app=\"hello\"}";
    const char *inf =
        "coserve_request_duration_seconds_bucket{app=\"hello\",le=\"+Inf\"}";
    double before = mt_scrape(&m, ok), cbefore = mt_scrape(&m, count);
    mt_hello(&s, 7);
    struct du_target t = du_at(&s);
    h_resp_free(du_get(&t, "/no/such/app", NULL, 404));
    char *text = mt_get(&m, "/metrics");
    cr_assert_eq(mt_value(text, ok) - before, 7, "%s", text);
    cr_assert_eq(mt_value(text, count) - cbefore, 7, "%s", text);
    cr_assert_eq(mt_value(text, inf), mt_value(text, count));
    cr_assert_eq(
        mt_value(text, "coserve_requests_total{app=\"-\",status=\"404\"}"), 1);
    cr_assert_gt(mt_value(text, "coserve_received_bytes_total"), 0);
    cr_assert_gt(mt_value(text, "coserve_sent_bytes_total"), 0);
    cr_assert_eq(mt_value(text, "coserve_worker_starts_total"), 2);
    free(text);
    du_coserve_stop(&s);
}

Test(metrics, promtool_accepts_the_scrape)
{
    cr_assert_eq(system("command -v promtool >/dev/null"), 0,
                 "promtool is missing (Debian's prometheus: make deps)");
    /* over TCP this time */
    du_setup();
    int port = h_free_port();
    char spec[64];
    snprintf(spec, sizeof spec, "127.0.0.1:%d", port);
    struct du_coserve s;
    du_coserve_start(&s, "prom", 0, 2, NULL, DU_ARGS("--metrics-listen", spec),
                     NULL);
    struct du_target m = {.port = port};
    mt_hello(&s, 3);
    char *text = mt_get(&m, "/metrics");
    const char *path = du_path("scrape.txt");
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    char *cmd = h_fmt("promtool check metrics < %s > %s 2>&1", path,
                      du_path("promtool.out"));
    int rc = system(cmd);
    free(cmd);
    cr_assert_eq(rc, 0, "promtool check metrics failed:\n%s\non:\n%s",
                 du_tail(du_path("promtool.out"), 3000), text);
    /* lint warnings print too, with status 0 on this version: none */
    cr_assert_eq(du_count_in_file(du_path("promtool.out"), "coserve_"), 0, "%s",
                 du_tail(du_path("promtool.out"), 3000));
    free(text);
    du_coserve_stop(&s);
}

Test(metrics, status_is_json_listing_the_workers)
{
    struct du_coserve s;
    struct du_target m;
    mt_start(&s, &m, "status", 3, NULL, NULL);
    mt_wait_workers(&m, 3, NULL);
    mt_hello(&s, 4);
    /* a worker counts a request once its response has left, so the last
     * count may land just after the client read it: wait (bounded) */
    json_t *j = NULL;
    for (int64_t end = h_now_ms() + H_GUARD_MS;;) {
        j = mt_status(&m);
        json_int_t seen = 0;
        json_t *wl = json_object_get(j, "workers");
        for (size_t i = 0; i < json_array_size(wl); i++)
            seen += json_integer_value(
                json_object_get(json_array_get(wl, i), "requests"));
        if (seen >= 4 || h_now_ms() > end)
            break;
        json_decref(j);
        h_sleep_ms(20);
    }
    json_t *master = json_object_get(j, "master");
    cr_assert_eq(json_integer_value(json_object_get(master, "pid")), s.pid);
    cr_assert_eq(json_integer_value(json_object_get(master, "generation")), 1);
    cr_assert(json_is_number(json_object_get(master, "uptime_seconds")));
    pid_t kids[8];
    int nkids = du_workers(&s, kids, 8);
    json_t *ws = json_object_get(j, "workers");
    cr_assert_eq(json_array_size(ws), 3);
    json_int_t requests = 0;
    for (size_t i = 0; i < json_array_size(ws); i++) {
        json_t *w = json_array_get(ws, i);
        pid_t pid = (pid_t)json_integer_value(json_object_get(w, "pid"));
        cr_assert(du_pid_in(pid, kids, nkids), "worker %d is no child", pid);
        const char *keys[] = {"generation",       "started_unix",
                              "connections_open", "coroutines_alive",
                              "blocked_episodes", "heartbeat_age_ms"};
        for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
            cr_assert_not_null(json_object_get(w, keys[k]), "no %s", keys[k]);
        requests += json_integer_value(json_object_get(w, "requests"));
    }
    cr_assert_eq(requests, 4);
    json_decref(j);
    du_coserve_stop(&s);
}

Test(metrics, counters_survive_a_reload_and_a_killed_worker)
{
    struct du_coserve s;
    struct du_target m;
    mt_start(&s, &m, "keep", 2, NULL, NULL);
    const char *ok = "coserve_requests_total{app=\"hello\",status=\"200\"}";
    mt_hello(&s, 5);
    char *a = mt_get(&m, "/metrics");
    kill(s.pid, SIGHUP);
    cr_assert_eq(mt_wait_value(&m,
                               "coserve_worker_exits_total{cause="
                               "\"stopped\"}",
                               2),
                 2, "the old generation did not exit");
    mt_wait_workers(&m, 2, NULL);
    char *b = mt_get(&m, "/metrics");
    mt_assert_not_backwards(a, b);
    cr_assert_eq(mt_value(b, ok), 5);
    cr_assert_eq(mt_value(b, "coserve_reloads_total"), 1);
    mt_hello(&s, 3);
    pid_t pids[2];
    mt_wait_workers(&m, 2, pids);
    kill(pids[0], SIGKILL);
    cr_assert_eq(
        mt_wait_value(&m, "coserve_worker_exits_total{cause=\"signal\"}", 1),
        1);
    mt_wait_workers(&m, 2, NULL);
    char *c = mt_get(&m, "/metrics");
    mt_assert_not_backwards(b, c);
    cr_assert_eq(mt_value(c, ok), 8, "%s", c);
    cr_assert_eq(mt_value(c, "coserve_worker_starts_total"), 5);
    free(a);
    free(b);
    free(c);
    kill(s.pid, SIGTERM);
    du_coserve_wait_stopped(&s, DU_STOP_MS, 1);
}

Test(metrics, connections_open_follows_idle_kept_alive_connections)
{
    struct du_coserve s;
    struct du_target m;
    mt_start(&s, &m, "conns", 2, mt_apps(), NULL);
    enum { N = 6 };
    struct h_conn *c[N];
    /* du_coserve_start's own probe was accepted too */
    double accepted = mt_scrape(&m, "coserve_connections_accepted_total");
    struct du_target t = du_at(&s);
    static const char raw[] = "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n";
    for (int i = 0; i < N; i++) {
        c[i] = du_connect(&t);
        cr_assert_not_null(c[i]);
        struct h_resp r;
        char why[256];
        cr_assert_eq(du_exchange(c[i], raw, sizeof raw - 1, &r, 0, H_GUARD_MS,
                                 why, sizeof why),
                     1, "%s", why);
        du_resp_clear(&r);
    }
    cr_assert_eq(mt_wait_value(&m, "coserve_connections_open", N), N);
    for (int i = 0; i < N; i++)
        h_close(c[i]);
    cr_assert_eq(mt_wait_value(&m, "coserve_connections_open", 0), 0);
    cr_assert_eq(mt_scrape(&m, "coserve_connections_accepted_total") - accepted,
                 N);
    du_coserve_stop(&s);
}

Test(metrics, hub_blocks_count_a_spinning_handler)
{
    du_setup();
    du_mkdir("spinapps");
    du_link_app(du_test_apps_src(), "spin", du_path("spinapps"));
    struct du_coserve s;
    struct du_target m;
    mt_start(&s, &m, "spin", 1, du_path("spinapps"),
             DU_ARGS("--block-threshold", "50ms"));
    cr_assert_eq(mt_scrape(&m, "coserve_hub_blocks_total"), 0);
    struct du_target t = du_at(&s);
    h_resp_free(du_get(&t, "/spin/cpu?ms=400", NULL, 200));
    int64_t end = h_now_ms() + MT_POLL_MS;
    while (mt_scrape(&m, "coserve_hub_blocks_total") < 1 && h_now_ms() < end)
        h_sleep_ms(20);
    cr_assert_geq(mt_scrape(&m, "coserve_hub_blocks_total"), 1);
    json_t *j = mt_status(&m);
    json_t *w = json_array_get(json_object_get(j, "workers"), 0);
    cr_assert_geq(json_integer_value(json_object_get(w, "blocked_episodes")),
                  1);
    json_decref(j);
    du_coserve_stop(&s);
}

/* A raw connection to the metrics listener (asserts). */
static int mt_raw(const struct du_target *m)
{
    struct h_conn *c = du_connect(m);
    cr_assert_not_null(c, "connect: %s", strerror(errno));
    int fd = c->fd;
    free(c);
    return fd;
}

Test(metrics, hostile_clients_do_not_stall_the_master)
{
    struct du_coserve s;
    struct du_target m;
    mt_start(&s, &m, "hostile", 1, NULL, NULL);
    /* more silent clients than the responder keeps, one that sends a
     * partial head, one that never ends its head, one that sends garbage */
    enum { SILENT = 12 };
    int silent[SILENT];
    for (int i = 0; i < SILENT; i++)
        silent[i] = mt_raw(&m);
    int partial = mt_raw(&m);
    cr_assert_eq(write(partial, "GET /metr", 9), 9);
    int huge = mt_raw(&m);
    char junk[4096];
    memset(junk, 'A', sizeof junk);
    for (int i = 0; i < 16; i++)
        if (send(huge, junk, sizeof junk, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
            break;
    struct h_resp *r = du_get(&m, "/metrics", NULL, 200);
    cr_assert_not_null(strstr(r->body, "coserve_connections_open"));
    h_resp_free(r);
    h_resp_free(du_request(&m, "garbage\r\n\r\n", 11, 400));
    h_resp_free(du_get(&m, "/nothing", NULL, 404));
    static const char post[] = "POST /metrics HTTP/1.1\r\nHost: t\r\n\r\n";
    h_resp_free(du_request(&m, post, sizeof post - 1, 405));
    /* signals are still handled: one worker more */
    kill(s.pid, SIGTTIN);
    mt_wait_workers(&m, 2, NULL);
    json_t *j = mt_status(&m);
    cr_assert_eq(json_integer_value(json_object_get(
                     json_object_get(j, "master"), "workers_wanted")),
                 2);
    json_decref(j);
    for (int i = 0; i < SILENT; i++)
        close(silent[i]);
    close(partial);
    close(huge);
    du_coserve_stop(&s);
}
