/*
 * test_notes_scale.c - the notes app on PostgreSQL when things go wrong:
 * two coserve instances behind nginx (deploy/nginx/coserve-scale.conf)
 * sharing one database, one of them SIGKILLed under a POST loop; the
 * database restarting under load; the per-worker pool running out.
 *
 * Each test runs its own PostgreSQL 15 cluster (pg_util.h). Load comes from
 * client threads looping on keep-alive connections; they record every
 * answer, and the assertions are on statuses and on what the database holds
 * afterwards, never on how long anything took.
 */
#include "deploy_util.h"
#include "pg_util.h"

#include <jansson.h>

static struct pg scale_pg;

static void scale_teardown(void)
{
    du_teardown();
    pg_destroy(&scale_pg);
}

TestSuite(notes_scale, .fini = scale_teardown, .timeout = 180);

/* A temp apps dir with notes and hello, and the database. */
static void scale_setup(void)
{
    du_setup();
    pg_start(&scale_pg);
    du_mkdir("apps");
    du_link_app(du_apps_src(), "notes", du_path("apps"));
    du_link_app(du_apps_src(), "hello", du_path("apps"));
}

/* ---- a POST loop in threads -------------------------------------------- */

#define LOADERS 4
#define MAX_ANSWERS 200000

struct answer {
    int status;   /* 0: no response (connection failed or closed) */
    long long id; /* the note's id for a 201 */
    int seq;      /* "load SEQ" is the note's text */
    int retry_after;
};

static struct {
    struct du_target target;
    pthread_mutex_t lock;
    struct answer *answers;
    int n, seq, stop;
} load = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void *scale_loader(void *unused)
{
    (void)unused;
    struct h_conn *c = NULL;
    while (!__atomic_load_n(&load.stop, __ATOMIC_RELAXED)) {
        pthread_mutex_lock(&load.lock);
        int seq = load.seq++;
        pthread_mutex_unlock(&load.lock);
        if (!c && !(c = du_connect(&load.target))) {
            h_sleep_ms(5);
            continue; /* not an answer: nothing was sent */
        }
        char body[64];
        snprintf(body, sizeof body, "{\"text\":\"load %d\"}", seq);
        char *raw = h_fmt("POST /notes HTTP/1.1\r\nHost: t\r\nContent-Type: "
                          "application/json\r\nContent-Length: %zu\r\n\r\n%s",
                          strlen(body), body);
        struct h_resp r;
        char why[256];
        int rc =
            du_exchange(c, raw, strlen(raw), &r, 0, 30000, why, sizeof why);
        free(raw);
        struct answer a = {.seq = seq};
        if (rc == 1) {
            a.status = r.status;
            a.retry_after = h_header(&r, "Retry-After") != NULL;
            if (r.status == 201) {
                json_t *note = json_loads(r.body, 0, NULL);
                a.id = json_integer_value(json_object_get(note, "id"));
                json_decref(note);
            }
        }
        if (rc != 1 || c->eof) {
            h_close(c);
            c = NULL;
        }
        if (rc == 1)
            du_resp_clear(&r);
        pthread_mutex_lock(&load.lock);
        if (load.n < MAX_ANSWERS)
            load.answers[load.n++] = a;
        pthread_mutex_unlock(&load.lock);
    }
    if (c)
        h_close(c);
    return NULL;
}

static void scale_load_start(pthread_t *t, struct du_target target)
{
    load.target = target;
    load.answers = calloc(MAX_ANSWERS, sizeof *load.answers);
    load.n = load.seq = load.stop = 0;
    for (int i = 0; i < LOADERS; i++)
        pthread_create(&t[i], NULL, scale_loader, NULL);
}

static void scale_load_stop(pthread_t *t)
{
    __atomic_store_n(&load.stop, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < LOADERS; i++)
        pthread_join(t[i], NULL);
}

/* Answers so far with status (0: any), from index `from` on. */
static int scale_count(int status, int from)
{
    pthread_mutex_lock(&load.lock);
    int n = 0;
    for (int i = from; i < load.n; i++)
        n += !status || load.answers[i].status == status;
    pthread_mutex_unlock(&load.lock);
    return n;
}

static int scale_answers(void)
{
    pthread_mutex_lock(&load.lock);
    int n = load.n;
    pthread_mutex_unlock(&load.lock);
    return n;
}

/* Waits until `want` answers with status arrived after index from. */
static void scale_wait(int status, int from, int want, const char *what)
{
    int64_t end = h_now_ms() + 60000;
    while (scale_count(status, from) < want) {
        cr_assert_lt(h_now_ms(), end, "%s: %d of %d answers %d", what,
                     scale_count(status, from), want, status);
        h_sleep_ms(10);
    }
}

/* Every 201 is in the database with its text. Returns how many. */
static int scale_assert_acked_stored(void)
{
    char *rows = pg_psql(&scale_pg, "SELECT id, text FROM notes");
    char *all = h_fmt("\n%s", rows);
    int acked = 0;
    for (int i = 0; i < load.n; i++) {
        struct answer *a = &load.answers[i];
        if (a->status != 201)
            continue;
        char want[64];
        snprintf(want, sizeof want, "\n%lld|load %d\n", a->id, a->seq);
        cr_assert_not_null(strstr(all, want),
                           "note %lld (load %d) was acknowledged with 201 "
                           "but is not in the database",
                           a->id, a->seq);
        acked++;
    }
    free(all);
    free(rows);
    return acked;
}

/* ---- the tests --------------------------------------------------------- */

Test(notes_scale, two_instances_share_the_database_and_a_sigkill_loses_no_note)
{
    DU_REQUIRE_NGINX();
    scale_setup();
    char db[400];
    snprintf(db, sizeof db, "COSERVE_NOTES_DB=%s", scale_pg.uri);
    struct du_coserve a, b;
    du_coserve_start(
        &a, "a", 1, 2, du_path("apps"), NULL,
        DU_ARGS(db, "COSERVE_STREAM_LISTEN=echo_upper=off,chat=off"));
    du_coserve_start(
        &b, "b", 0, 2, du_path("apps"), NULL,
        DU_ARGS(db, "COSERVE_STREAM_LISTEN=echo_upper=off,chat=off"));
    setenv("COSERVE_NGINX_CONF", "deploy/nginx/coserve-scale.conf", 1);
    struct du_nginx ngx;
    du_nginx_start(&ngx, a.sock, b.port, du_path("apps"));
    struct du_target via = du_via(&ngx), at_a = du_at(&a), at_b = du_at(&b);

    /* Shared: a note written through nginx reads the same from each. */
    for (int i = 0; i < 10; i++) {
        const char *body = "{\"text\":\"shared\"}";
        char *raw = h_fmt("POST /notes HTTP/1.1\r\nHost: t\r\nContent-Type: "
                          "application/json\r\nContent-Length: %zu\r\n\r\n%s",
                          strlen(body), body);
        struct h_resp *r = du_request(&via, raw, strlen(raw), 201);
        free(raw);
        const char *loc = h_header(r, "Location");
        cr_assert_not_null(loc);
        struct h_resp *ra = du_get(&at_a, loc, NULL, 200);
        struct h_resp *rb = du_get(&at_b, loc, NULL, 200);
        cr_assert_str_eq(ra->body, r->body, "instance a differs");
        cr_assert_str_eq(rb->body, r->body, "instance b differs");
        h_resp_free(ra);
        h_resp_free(rb);
        h_resp_free(r);
    }
    cr_assert_gt(du_count_in_file(a.access, "POST /notes"), 0,
                 "nginx sent no POST to instance a");
    cr_assert_gt(du_count_in_file(b.access, "POST /notes"), 0,
                 "nginx sent no POST to instance b");

    /* A POST loop through nginx; instance a dies in the middle of it. */
    pthread_t t[LOADERS];
    scale_load_start(t, via);
    scale_wait(201, 0, 200, "before the kill");
    cr_assert_gt(du_count_in_file(a.access, "POST /notes"), 10);
    du_kill_tree(a.pid);
    a.pid = -1;
    int at_kill = scale_answers();
    /* nginx finds a down (refused: nothing sent, so even a POST moves on)
     * and sends everything to b. */
    scale_wait(201, at_kill, 300, "after the kill");
    scale_load_stop(t);

    int bad = 0;
    for (int i = 0; i < load.n; i++)
        if (load.answers[i].status != 201) {
            /* only a POST in flight at the kill: nginx does not repeat it
             * (non-idempotent), the client gets 502 */
            cr_assert(load.answers[i].status == 502 ||
                          load.answers[i].status == 0,
                      "answer %d: status %d", i, load.answers[i].status);
            bad++;
        }
    cr_assert_leq(bad, LOADERS, "%d failed POSTs for %d in flight", bad,
                  LOADERS);
    int acked = scale_assert_acked_stored();
    /* the last answers all came from b, through nginx */
    int tail_ok = 0;
    for (int i = load.n - 50; i < load.n; i++)
        tail_ok += load.answers[i].status == 201;
    cr_assert_eq(tail_ok, 50, "nginx still fails POSTs after the kill");
    /* idempotent requests: every GET through nginx is answered */
    for (int i = 0; i < 20; i++)
        h_resp_free(du_get(&via, "/notes?limit=5", NULL, 200));
    cr_log_info("scale: %d POSTs acknowledged and stored, %d failed at the "
                "kill",
                acked, bad);
    du_nginx_stop(&ngx);
    du_coserve_stop(&b);
    free(load.answers);
}

Test(notes_scale, a_database_restart_gives_503s_then_recovers_without_a_restart)
{
    scale_setup();
    char db[400];
    snprintf(db, sizeof db, "COSERVE_NOTES_DB=%s", scale_pg.uri);
    struct du_coserve s;
    du_coserve_start(
        &s, "s", 0, 2, du_path("apps"), NULL,
        DU_ARGS(db, "COSERVE_STREAM_LISTEN=echo_upper=off,chat=off"));
    pid_t before[8];
    int nbefore = du_workers(&s, before, 8);
    pthread_t t[LOADERS];
    scale_load_start(t, du_at(&s));
    scale_wait(201, 0, 100, "before the restart");
    pg_stop(&scale_pg);
    int at_stop = scale_answers();
    scale_wait(503, at_stop, 20, "while the database is down");
    pg_restart_start(&scale_pg);
    int at_start = scale_answers();
    scale_wait(201, at_start, 100, "after the database came back");
    scale_load_stop(t);

    int busy = 0;
    for (int i = 0; i < load.n; i++) {
        struct answer *a = &load.answers[i];
        cr_assert(a->status == 201 || a->status == 503,
                  "answer %d: status %d (want 201 or 503)", i, a->status);
        if (a->status == 503) {
            cr_assert(a->retry_after, "a 503 without Retry-After");
            busy++;
        }
    }
    int acked = scale_assert_acked_stored();
    /* the same processes served throughout */
    pid_t after[8];
    int nafter = du_workers(&s, after, 8);
    cr_assert_eq(nafter, nbefore);
    for (int i = 0; i < nafter; i++)
        cr_assert(du_pid_in(after[i], before, nbefore), "a worker restarted");
    cr_log_info("restart: %d POSTs stored, %d answered 503", acked, busy);
    du_coserve_stop(&s);
    free(load.answers);
}

Test(notes_scale, an_exhausted_pool_answers_503_and_the_hub_keeps_serving)
{
    scale_setup();
    char db[400];
    snprintf(db, sizeof db, "COSERVE_NOTES_DB=%s", scale_pg.uri);
    struct du_coserve s;
    du_coserve_start(&s, "s", 0, 1, du_path("apps"), NULL,
                     DU_ARGS(db, "COSERVE_NOTES_PG_POOL=1",
                             "COSERVE_NOTES_PG_WAIT_MS=300",
                             "COSERVE_STREAM_LISTEN=echo_upper=off,chat=off"));
    struct du_target at = du_at(&s);
    const char *body = "{\"text\":\"locked\"}";
    char *post = h_fmt("POST /notes HTTP/1.1\r\nHost: t\r\nContent-Type: "
                       "application/json\r\nContent-Length: %zu\r\n\r\n%s",
                       strlen(body), body);
    h_resp_free(du_request(&at, post, strlen(post), 201));
    free(post);

    /* Another client locks the table for a few seconds. */
    char *sql = h_fmt("psql -X -q -h '%s' -U postgres -d notes -c 'BEGIN; "
                      "LOCK TABLE notes IN ACCESS EXCLUSIVE MODE; SELECT "
                      "pg_sleep(3); COMMIT;'",
                      scale_pg.dir);
    pid_t locker = du_spawn((const char *const[]){"/bin/sh", "-c", sql, NULL},
                            du_path("locker.log"), NULL, DU_COSERVE);
    free(sql);
    int64_t end = h_now_ms() + 20000;
    while (pg_count(&scale_pg, "SELECT count(*) FROM pg_locks l JOIN pg_class "
                               "c ON c.oid = l.relation WHERE c.relname = "
                               "'notes' AND l.granted AND l.mode = "
                               "'AccessExclusiveLock'") < 1)
        cr_assert_lt(h_now_ms(), end, "the lock was never taken");

    /* The worker's one connection waits on the lock... */
    struct h_conn *held = du_connect(&at);
    cr_assert_not_null(held);
    h_sends(held, "GET /notes/1 HTTP/1.1\r\nHost: t\r\n\r\n");
    while (pg_count(&scale_pg, "SELECT count(*) FROM pg_stat_activity WHERE "
                               "application_name = 'coserve-notes' AND "
                               "wait_event_type = 'Lock'") < 1)
        cr_assert_lt(h_now_ms(), end, "the GET never waited on the lock");
    /* ... so the next request waits for the pool, then gets a 503 ... */
    struct h_resp *r = du_get(&at, "/notes/1", NULL, 503);
    cr_assert_not_null(h_header(r, "Retry-After"));
    cr_assert_not_null(strstr(r->body, "\"error\""), "%s", r->body);
    h_resp_free(r);
    /* ... and the hub serves everything else meanwhile. */
    h_resp_free(du_get(&at, "/hello", NULL, 200));
    /* The lock goes: the held GET is answered. */
    struct h_resp hr;
    char why[256];
    cr_assert_eq(h_read_response(held, &hr, 0, 20000, why, sizeof why), 1, "%s",
                 why);
    cr_assert_eq(hr.status, 200, "%s", hr.body);
    du_resp_clear(&hr);
    h_close(held);
    int st;
    cr_assert(du_wait_exit(locker, 20000, &st));
    h_resp_free(du_get(&at, "/notes/1", NULL, 200));
    du_coserve_stop(&s);
}
