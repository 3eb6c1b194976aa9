/*
 * test_notes.c - the notes app (apps/notes) through the real server: the
 * JSON API and each of its error statuses, pagination, search (FTS5 and the
 * LIKE fallback), durability (200 concurrent POSTs, a SIGKILL in the middle
 * of a stream of writes), the hub staying free while the offload pool is
 * full of slow SQLite queries (tests/apps/slowsql), and reads answered while
 * another process holds the database's write lock.
 *
 * The server loads a temp apps/ dir holding symlinks to notes.so, hello.so
 * and slowsql.so; the database is a temp file (COSERVE_NOTES_DB). No timing
 * thresholds: concurrency is asserted on the order things happen in.
 *
 * The same suite runs against PostgreSQL: tests/deploy/test_notes_pg.c
 * defines NOTES_PG and includes this file; each test then gets a private
 * cluster (tests/deploy/pg_util.h) and COSERVE_NOTES_DB is its URI. The
 * tests about SQLite itself (its offload pool, its write lock) stay
 * SQLite's; the PostgreSQL twins of those live in test_notes_scale.c.
 */
#include "harness.h"

#include <dirent.h>
#include <jansson.h>
#include <sqlite3.h>

#ifdef NOTES_PG
#include "../deploy/pg_util.h"
static struct pg notes_pg;
static void notes_teardown(void)
{
    h_teardown();
    pg_destroy(&notes_pg);
}
#define NOTES_FTS_BANNER "search: full-text"
#else
#define notes_teardown h_teardown
#define NOTES_FTS_BANNER "search: FTS5"
#endif

TestSuite(notes, .fini = notes_teardown, .timeout = 120);

#define JSON_TYPE "application/json"

/* ---- setup ------------------------------------------------------------ */

static void notes_link_app(const char *dir_env, const char *dir_def,
                           const char *name)
{
    char from[PATH_MAX], rel[PATH_MAX], to[512];
    snprintf(rel, sizeof rel, "%s/%s", h_env(dir_env, dir_def), name);
    cr_assert_not_null(realpath(rel, from), "%s: %s (make apps)", rel,
                       strerror(errno));
    snprintf(to, sizeof to, "%s/%s", h_srv.apps, name);
    cr_assert_eq(symlink(from, to), 0, "symlink %s: %s", to, strerror(errno));
}

/* Starts the server with notes, hello and slowsql, a fresh database in the
 * temp dir, and extra flags (NULL-terminated, may be NULL). */
static void notes_start(const char *const *extra)
{
    if (!h_srv.dir[0]) {
        h_setup();
        notes_link_app("COSERVE_APPS", "build/apps", "notes.so");
        notes_link_app("COSERVE_APPS", "build/apps", "hello.so");
        notes_link_app("COSERVE_TEST_APPS", "build/test-apps", "slowsql.so");
#ifdef NOTES_PG
        pg_start(&notes_pg);
        setenv("COSERVE_NOTES_DB", notes_pg.uri, 1);
#else
        setenv("COSERVE_NOTES_DB", h_path("notes.db"), 1);
#endif
    }
    const char *argv[32];
    int argc = 0;
    argv[argc++] = "--apps";
    argv[argc++] = h_srv.apps;
    for (int i = 0; extra && extra[i] && argc < 30; i++)
        argv[argc++] = extra[i];
    argv[argc] = NULL;
    h_start(argv);
}

/* ---- requests --------------------------------------------------------- */

/* The raw request: a JSON body when body is not NULL. */
static char *notes_raw(const char *method, const char *target, const char *body)
{
    if (!body)
        return h_fmt("%s %s HTTP/1.1\r\nHost: t\r\n\r\n", method, target);
    return h_fmt("%s %s HTTP/1.1\r\nHost: t\r\nContent-Type: " JSON_TYPE
                 "\r\nContent-Length: %zu\r\n\r\n%s",
                 method, target, strlen(body), body);
}

/* One request on a new connection; asserts the status. */
static struct h_resp *notes_req(const char *method, const char *target,
                                const char *body, int status)
{
    char *raw = notes_raw(method, target, body);
    struct h_resp *r =
        h_request(raw, strcmp(method, "HEAD") == 0 ? H_HEAD : 0, 0);
    cr_assert_eq(r->status, status, "%s %s: want %d, got %d: %s", method,
                 target, status, r->status, r->body);
    free(raw);
    return r;
}

/* The response body as JSON (asserts it parses and is labelled JSON). */
static json_t *notes_json(const struct h_resp *r)
{
    const char *type = h_header(r, "Content-Type");
    cr_assert(type && strncmp(type, JSON_TYPE, strlen(JSON_TYPE)) == 0,
              "Content-Type %s, not JSON", type ? type : "(none)");
    json_error_t e;
    json_t *v = json_loadb(r->body, r->body_len, 0, &e);
    cr_assert_not_null(v, "not JSON (%s): %.300s", e.text, r->body);
    return v;
}

/* A request whose JSON answer is returned (asserting the status). */
static json_t *notes_call(const char *method, const char *target,
                          const char *body, int status)
{
    struct h_resp *r = notes_req(method, target, body, status);
    json_t *v = notes_json(r);
    h_resp_free(r);
    return v;
}

/* Asserts r is an error: status, JSON {"error": "<non-empty>"}. */
static void notes_assert_error(struct h_resp *r, int status, const char *what)
{
    cr_assert_eq(r->status, status, "%s: want %d, got %d: %s", what, status,
                 r->status, r->body);
    json_t *v = notes_json(r);
    json_t *e = json_object_get(v, "error");
    cr_assert(json_is_string(e) && json_string_length(e) > 0,
              "%s: no {\"error\": message} in %s", what, r->body);
    json_decref(v);
}

static void notes_expect_error(const char *method, const char *target,
                               const char *body, int status)
{
    char what[256];
    snprintf(what, sizeof what, "%s %.200s", method, target);
    struct h_resp *r = notes_req(method, target, body, status);
    notes_assert_error(r, status, what);
    h_resp_free(r);
}

/* Creates a note; returns its id. */
static json_int_t notes_create(const char *text)
{
    json_t *t = json_pack("{s:s}", "text", text);
    char *body = json_dumps(t, JSON_COMPACT);
    json_t *note = notes_call("POST", "/notes", body, 201);
    json_int_t id = json_integer_value(json_object_get(note, "id"));
    cr_assert_gt(id, 0);
    json_decref(note);
    free(body);
    json_decref(t);
    return id;
}

/* Every id, following next_cursor, newest first, into ids (returns count). */
static size_t notes_all_ids(json_int_t *ids, size_t max, int limit)
{
    size_t n = 0;
    char target[128];
    snprintf(target, sizeof target, "/notes?limit=%d", limit);
    for (int pages = 0; pages < 10000; pages++) {
        json_t *page = notes_call("GET", target, NULL, 200);
        json_t *notes = json_object_get(page, "notes");
        cr_assert(json_is_array(notes));
        cr_assert_leq(json_array_size(notes), (size_t)limit);
        size_t i;
        json_t *note;
        json_array_foreach(notes, i, note)
        {
            cr_assert_lt(n, max, "more notes than expected");
            ids[n++] = json_integer_value(json_object_get(note, "id"));
        }
        json_t *cursor = json_object_get(page, "next_cursor");
        cr_assert(cursor, "no next_cursor key");
        if (json_is_null(cursor)) {
            json_decref(page);
            return n;
        }
        cr_assert(json_is_string(cursor));
        snprintf(target, sizeof target, "/notes?limit=%d&cursor=%s", limit,
                 json_string_value(cursor));
        json_decref(page);
    }
    cr_assert_fail("pagination does not end");
    return n;
}

/* {"text": "aaa..."} with n bytes of text (malloc'd). */
static char *notes_text_body(size_t n)
{
    char *body = malloc(n + 16);
    memcpy(body, "{\"text\":\"", 9);
    memset(body + 9, 'a', n);
    strcpy(body + 9 + n, "\"}");
    return body;
}

/* ---- many requests at once ------------------------------------------- */

struct flight {
    struct h_conn *c;
    int done;
    struct h_resp r;
};

/* Reads responses on every unfinished flight until `want` more complete or
 * the guard passes; calls each completion's index into order[] (if not
 * NULL) in the order they arrived. Returns how many completed. */
static int notes_pump(struct flight *f, int n, int want, int *order,
                      int *norder)
{
    int got = 0;
    int64_t end = h_now_ms() + 30000;
    struct pollfd *p = calloc((size_t)n, sizeof *p);
    int *map = calloc((size_t)n, sizeof *map);
    while (got < want) {
        int np = 0;
        for (int i = 0; i < n; i++)
            if (f[i].c && !f[i].done) {
                p[np] = (struct pollfd){f[i].c->fd, POLLIN, 0};
                map[np++] = i;
            }
        cr_assert_gt(np, 0, "waiting for responses no one will send");
        cr_assert_lt(h_now_ms(), end, "responses did not arrive (%d of %d)",
                     got, want);
        poll(p, (nfds_t)np, 100);
        for (int k = 0; k < np; k++) {
            if (!p[k].revents)
                continue;
            struct flight *fl = &f[map[k]];
            h_read_now(fl->c);
            char why[256] = "";
            int rc = h_parse_response(fl->c, &fl->r, 0, why, sizeof why);
            cr_assert_neq(rc, -1, "bad response: %s", why);
            if (rc == 1) {
                fl->done = 1;
                got++;
                if (order)
                    order[(*norder)++] = map[k];
            } else {
                cr_assert(!fl->c->eof, "connection closed mid-response");
            }
        }
    }
    free(p);
    free(map);
    return got;
}

static void notes_flight_free(struct flight *f)
{
    h_close(f->c);
    if (f->done) {
        free(f->r.head);
        free(f->r.lines);
        free(f->r.body);
        free(f->r.trailers);
    }
    memset(f, 0, sizeof *f);
}

/* ---- the API ---------------------------------------------------------- */

Test(notes, a_note_is_created_read_updated_and_deleted)
{
    notes_start(NULL);
    struct h_resp *r =
        notes_req("POST", "/notes", "{\"text\":\"buy milk \\u00e9\"}", 201);
    json_t *note = notes_json(r);
    json_int_t id = json_integer_value(json_object_get(note, "id"));
    cr_assert_gt(id, 0);
    char *loc = h_fmt("/notes/%" JSON_INTEGER_FORMAT, id);
    cr_assert_str_eq(h_header(r, "Location"), loc);
    cr_assert_str_eq(json_string_value(json_object_get(note, "text")),
                     "buy milk \xc3\xa9");
    const char *created =
        json_string_value(json_object_get(note, "created_at"));
    cr_assert(created && strlen(created) == 24 && created[10] == 'T' &&
                  created[23] == 'Z',
              "created_at %s is not ISO 8601 UTC", created);
    cr_assert_str_eq(json_string_value(json_object_get(note, "updated_at")),
                     created);
    h_resp_free(r);

    json_t *got = notes_call("GET", loc, NULL, 200);
    cr_assert(json_equal(got, note), "GET differs from what POST returned");
    json_decref(got);
    r = notes_req("HEAD", loc, NULL, 200);
    cr_assert_eq(r->body_len, 0);
    h_resp_free(r);

    h_sleep_ms(5); /* so updated_at (ms resolution) can differ */
    json_t *upd = notes_call("PUT", loc, "{\"text\":\"buy oat milk\"}", 200);
    cr_assert_eq(json_integer_value(json_object_get(upd, "id")), id);
    cr_assert_str_eq(json_string_value(json_object_get(upd, "text")),
                     "buy oat milk");
    cr_assert_str_eq(json_string_value(json_object_get(upd, "created_at")),
                     created);
    cr_assert_str_gt(json_string_value(json_object_get(upd, "updated_at")),
                     created);
    got = notes_call("GET", loc, NULL, 200);
    cr_assert(json_equal(got, upd), "GET does not show the update");
    json_decref(got);

    r = notes_req("DELETE", loc, NULL, 204);
    cr_assert_eq(r->body_len, 0);
    h_resp_free(r);
    notes_expect_error("GET", loc, NULL, 404);
    notes_expect_error("PUT", loc, "{\"text\":\"x\"}", 404);
    notes_expect_error("DELETE", loc, NULL, 404);
    json_decref(upd);
    json_decref(note);
    free(loc);
    h_stop();
}

Test(notes, the_list_is_newest_first_and_pages_with_a_cursor)
{
    notes_start(NULL);
    json_t *empty = notes_call("GET", "/notes", NULL, 200);
    cr_assert_eq(json_array_size(json_object_get(empty, "notes")), 0);
    cr_assert(json_is_null(json_object_get(empty, "next_cursor")));
    json_decref(empty);

    json_int_t made[45];
    for (int i = 0; i < 45; i++) {
        char text[32];
        snprintf(text, sizeof text, "note %d", i);
        made[i] = notes_create(text);
    }
    /* default page: the 20 newest */
    json_t *page = notes_call("GET", "/notes", NULL, 200);
    json_t *notes = json_object_get(page, "notes");
    cr_assert_eq(json_array_size(notes), 20);
    cr_assert_eq(
        json_integer_value(json_object_get(json_array_get(notes, 0), "id")),
        made[44]);
    cr_assert_str_eq(
        json_string_value(json_object_get(json_array_get(notes, 0), "text")),
        "note 44");
    cr_assert(json_is_string(json_object_get(page, "next_cursor")));
    json_decref(page);

    /* pages of 7 and of 100 both give every note once, newest first */
    json_int_t ids[64];
    size_t n = notes_all_ids(ids, 64, 7);
    cr_assert_eq(n, 45);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(ids[i], made[44 - i], "position %zu", i);
    cr_assert_eq(notes_all_ids(ids, 64, 100), 45);
    /* over the maximum: 100 */
    page = notes_call("GET", "/notes?limit=1000", NULL, 200);
    cr_assert_eq(json_array_size(json_object_get(page, "notes")), 45);
    json_decref(page);
    h_stop();
}

Test(notes, search_finds_notes_by_words_and_prefixes)
{
    notes_start(NULL);
    cr_assert(h_stderr_has(NOTES_FTS_BANNER), "no full-text search");
    json_int_t a = notes_create("The quick brown fox");
    json_int_t b = notes_create("Lazy dogs sleep all day");
    notes_create("nothing to see \"here\"");

    json_t *res = notes_call("GET", "/notes/search?q=quick", NULL, 200);
    json_t *notes = json_object_get(res, "notes");
    cr_assert_eq(json_array_size(notes), 1);
    cr_assert_eq(
        json_integer_value(json_object_get(json_array_get(notes, 0), "id")), a);
    json_decref(res);
    /* a word being typed matches; words combine with AND; any case */
    res = notes_call("GET", "/notes/search?q=DO%20sle", NULL, 200);
    notes = json_object_get(res, "notes");
    cr_assert_eq(json_array_size(notes), 1);
    cr_assert_eq(
        json_integer_value(json_object_get(json_array_get(notes, 0), "id")), b);
    json_decref(res);
    /* FTS5 syntax in the query is just text */
    res = notes_call("GET", "/notes/search?q=%22here%22%20OR%20NEAR(x", NULL,
                     200);
    cr_assert_eq(json_array_size(json_object_get(res, "notes")), 0);
    json_decref(res);
    res = notes_call("GET", "/notes/search?q=here", NULL, 200);
    cr_assert_eq(json_array_size(json_object_get(res, "notes")), 1);
    json_decref(res);
    /* an edit and a delete reach the index */
    json_decref(
        notes_call("PUT", "/notes/1", "{\"text\":\"slow turtle\"}", 200));
    res = notes_call("GET", "/notes/search?q=quick", NULL, 200);
    cr_assert_eq(json_array_size(json_object_get(res, "notes")), 0);
    json_decref(res);
    h_resp_free(notes_req("DELETE", "/notes/2", NULL, 204));
    res = notes_call("GET", "/notes/search?q=sl", NULL, 200);
    notes = json_object_get(res, "notes");
    cr_assert_eq(json_array_size(notes), 1, "only the turtle: %s",
                 json_dumps(res, 0));
    json_decref(res);
    notes_expect_error("GET", "/notes/search", NULL, 400);
    notes_expect_error("POST", "/notes/search?q=x", "{}", 405);
    h_stop();
}

Test(notes, search_falls_back_to_like_without_fts5)
{
    setenv("COSERVE_NOTES_FTS", "0", 1);
    notes_start(NULL);
    cr_assert(h_stderr_has("search: LIKE"));
    notes_create("100% sure");
    notes_create("1000 ways");
    json_t *res = notes_call("GET", "/notes/search?q=0%25", NULL, 200);
    cr_assert_eq(json_array_size(json_object_get(res, "notes")), 1,
                 "%% is not a wildcard");
    json_decref(res);
    res = notes_call("GET", "/notes/search?q=SURE", NULL, 200);
    cr_assert_eq(json_array_size(json_object_get(res, "notes")), 1);
    json_decref(res);
    h_stop();
}

Test(notes, bad_input_gets_its_status_and_a_json_error)
{
    notes_start(NULL);
    json_int_t id = notes_create("keep me");
    char *item = h_fmt("/notes/%" JSON_INTEGER_FORMAT, id);

    /* 400: invalid JSON (also invalid UTF-8 and NUL), bad id, parameters */
    notes_expect_error("POST", "/notes", "{\"text\": ", 400);
    notes_expect_error("POST", "/notes", "{\"text\": \"a\" \"b\"}", 400);
    notes_expect_error("POST", "/notes", "{\"text\": \"\xff\"}", 400);
    notes_expect_error("POST", "/notes", "{\"text\": \"a\\u0000b\"}", 400);
    notes_expect_error("POST", "/notes", "{\"text\":\"a\",\"text\":\"b\"}",
                       400);
    notes_expect_error("PUT", item, "not json", 400);
    notes_expect_error("GET", "/notes/abc", NULL, 400);
    notes_expect_error("GET", "/notes/0", NULL, 400);
    notes_expect_error("GET", "/notes/-1", NULL, 400);
    notes_expect_error("GET", "/notes/01", NULL, 400);
    notes_expect_error("DELETE", "/notes/1.5", NULL, 400);
    notes_expect_error("GET", "/notes/99999999999999999999", NULL, 400);
    notes_expect_error("GET", "/notes?limit=0", NULL, 400);
    notes_expect_error("GET", "/notes?limit=ten", NULL, 400);
    notes_expect_error("GET", "/notes?cursor=x", NULL, 400);

    /* 422: no "text" string */
    notes_expect_error("POST", "/notes", "{}", 422);
    notes_expect_error("POST", "/notes", "{\"txt\":\"a\"}", 422);
    notes_expect_error("POST", "/notes", "{\"text\":5}", 422);
    notes_expect_error("POST", "/notes", "{\"text\":null}", 422);
    notes_expect_error("POST", "/notes", "{\"text\":[\"a\"]}", 422);
    notes_expect_error("POST", "/notes", "[\"text\"]", 422);
    notes_expect_error("POST", "/notes", "\"text\"", 422);
    notes_expect_error("POST", "/notes", "{\"text\":\"  \\n\"}", 422);
    notes_expect_error("PUT", item, "{\"text\":false}", 422);

    /* 413: text over 64 KiB (exactly 64 KiB is fine), body over 80 KiB */
    char *text = notes_text_body(64 * 1024);
    json_decref(notes_call("POST", "/notes", text, 201));
    free(text);
    text = notes_text_body(64 * 1024 + 1);
    notes_expect_error("POST", "/notes", text, 413);
    notes_expect_error("PUT", item, text, 413);
    free(text);
    text = notes_text_body(90 * 1024);
    notes_expect_error("POST", "/notes", text, 413);
    free(text);
    /* ... also when the body is chunked (no Content-Length to refuse) */
    struct h_conn *c = h_connect();
    h_sends(c, "POST /notes HTTP/1.1\r\nHost: t\r\nContent-Type: "
               "application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
    char chunk[16 * 1024 + 16];
    memset(chunk, 'a', sizeof chunk);
    memcpy(chunk, "4000\r\n", 6);
    memcpy(chunk + 6 + 16 * 1024, "\r\n", 2);
    for (int i = 0; i < 6; i++) /* 96 KiB; the server may stop reading */
        if (h_try_send(c, chunk, 6 + 16 * 1024 + 2) < 0)
            break;
    struct h_resp *r = h_response(c, 0);
    notes_assert_error(r, 413, "chunked body over 80 KiB");
    h_resp_free(r);
    h_close(c);

    /* 415: not declared as JSON */
    r = h_request("POST /notes HTTP/1.1\r\nHost: t\r\nContent-Type: "
                  "application/x-www-form-urlencoded\r\nContent-Length: 6\r\n"
                  "\r\ntext=a",
                  0, 0);
    notes_assert_error(r, 415, "form body");
    h_resp_free(r);

    /* 404: unknown id, unknown path */
    notes_expect_error("GET", "/notes/424242", NULL, 404);
    notes_expect_error("PUT", "/notes/424242", "{\"text\":\"x\"}", 404);
    notes_expect_error("DELETE", "/notes/424242", NULL, 404);
    notes_expect_error("GET", "/notes/1/2", NULL, 404);

    /* 405 with Allow */
    static const struct {
        const char *method, *target, *allow;
    } wrong[] = {
        {"DELETE", "/notes", "GET, HEAD, POST"},
        {"PUT", "/notes", "GET, HEAD, POST"},
        {"POST", "/notes/1", "GET, HEAD, PUT, DELETE"},
        {"PATCH", "/notes/1", "GET, HEAD, PUT, DELETE"},
        {"DELETE", "/notes/search?q=a", "GET, HEAD"},
    };
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        r = notes_req(wrong[i].method, wrong[i].target, NULL, 405);
        notes_assert_error(r, 405, wrong[i].target);
        cr_assert_str_eq(h_header(r, "Allow"), wrong[i].allow, "%s %s",
                         wrong[i].method, wrong[i].target);
        h_resp_free(r);
    }

    /* nothing above changed the note */
    json_t *note = notes_call("GET", item, NULL, 200);
    cr_assert_str_eq(json_string_value(json_object_get(note, "text")),
                     "keep me");
    json_decref(note);
    free(item);
    h_stop();
}

#ifndef NOTES_PG /* SQLite's own: its offload pool and its write lock */

/* ---- the hub never blocks ---------------------------------------------- */

#define SLOW_OPS 50
#define HELLOS 20

Test(notes, hello_is_answered_while_50_slow_queries_hold_the_pool)
{
    notes_start(H_ARGS("--workers", "1", "--offload-threads", "8"));
    /* 50 queries of 500 ms on 8 threads: the pool is busy for ~3.5 s, and
     * the /hello requests have 500 ms to finish before the first one. */
    struct flight slow[SLOW_OPS] = {{0}};
    for (int i = 0; i < SLOW_OPS; i++) {
        slow[i].c = h_connect();
        h_sends(slow[i].c, "GET /slowsql?ms=500 HTTP/1.1\r\nHost: t\r\n\r\n");
    }
    /* All 50 are in the server, waiting on the pool (8 run, 42 queue). */
    int64_t end = h_now_ms() + H_GUARD_MS;
    for (;;) {
        struct h_resp *r = h_request(
            "GET /slowsql/inflight HTTP/1.1\r\nHost: t\r\n\r\n", 0, 200);
        int inflight = atoi(r->body);
        h_resp_free(r);
        if (inflight == SLOW_OPS)
            break;
        cr_assert_lt(h_now_ms(), end, "only %d slow queries started", inflight);
        h_sleep_ms(2);
    }
    /* Each /hello is sent only after the previous one was answered, while
     * the slow connections are read too: the order of completions is the
     * order the server answered in. */
    int order[SLOW_OPS + HELLOS], norder = 0, hellos_done = 0;
    struct flight all[SLOW_OPS + 1];
    for (int h = 0; h < HELLOS; h++) {
        memcpy(all, slow, sizeof slow);
        all[SLOW_OPS] = (struct flight){.c = h_connect()};
        h_sends(all[SLOW_OPS].c, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
        int before = norder;
        while (!all[SLOW_OPS].done)
            notes_pump(all, SLOW_OPS + 1, 1, order, &norder);
        for (int k = before; k < norder; k++)
            if (order[k] == SLOW_OPS) {
                order[k] = -1; /* a hello */
                hellos_done++;
            }
        cr_assert_eq(all[SLOW_OPS].r.status, 200);
        cr_assert_str_eq(all[SLOW_OPS].r.body, "Hello, World!\n");
        notes_flight_free(&all[SLOW_OPS]);
        memcpy(slow, all, sizeof slow);
    }
    int slow_left = 0;
    for (int i = 0; i < SLOW_OPS; i++)
        slow_left += !slow[i].done;
    notes_pump(slow, SLOW_OPS, slow_left, order, &norder);
    cr_assert_eq(hellos_done, HELLOS);
    cr_assert_eq(norder, SLOW_OPS + HELLOS);
    /* every /hello came back before the first slow query did */
    for (int k = 0; k < HELLOS; k++)
        cr_assert_eq(order[k], -1,
                     "a slow query finished (at position %d) before "
                     "/hello #%d: the hub waited on SQLite",
                     k, k + 1);
    for (int i = 0; i < SLOW_OPS; i++) {
        cr_assert_eq(slow[i].r.status, 200);
        cr_assert_str_eq(slow[i].r.body, "slow 500 ms\n");
        notes_flight_free(&slow[i]);
    }
    h_stop();
}

/* ---- reads while another process holds the write lock ----------------- */

#define LOCKED_POSTS 200
#define LOCKED_GETS 50

/* Opens the test's own connection to the server's database. */
static sqlite3 *notes_db_open(void)
{
    sqlite3 *db;
    cr_assert_eq(
        sqlite3_open_v2(h_path("notes.db"), &db, SQLITE_OPEN_READWRITE, NULL),
        SQLITE_OK);
    return db;
}

/* SELECT count(*) ... with one text parameter (NULL: none). */
static int notes_db_count(sqlite3 *db, const char *sql, const char *text)
{
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s",
                 sqlite3_errmsg(db));
    if (text)
        sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "%s", sqlite3_errmsg(db));
    int n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* Issue 9: with the write lock held from outside, writes used to take every
 * offload thread (each waiting out the busy timeout) and reads queued behind
 * them until their own deadline: 503. In WAL mode readers are never blocked
 * by a writer, so every read must be answered while the lock is held; a
 * write that cannot get the lock within the busy timeout is a 503; and
 * every write must end as a 201 that is in the database or a 503 that is
 * not. */
Test(notes, reads_are_answered_while_another_process_holds_the_write_lock)
{
    h_raise_nofile(4096);
    notes_start(H_ARGS("--workers", "1", "--offload-threads", "4"));
    json_int_t id = notes_create("read me while locked");
    char *item = h_fmt("/notes/%" JSON_INTEGER_FORMAT, id);

    /* Another process takes the write lock. In WAL mode BEGIN EXCLUSIVE is
     * BEGIN IMMEDIATE: writers are refused, readers still read. */
    sqlite3 *lock = notes_db_open(), *probe = notes_db_open();
    cr_assert_eq(sqlite3_exec(lock, "BEGIN EXCLUSIVE", NULL, NULL, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(lock));
    cr_assert_eq(sqlite3_exec(probe, "BEGIN IMMEDIATE", NULL, NULL, NULL) &
                     0xff,
                 SQLITE_BUSY, "the write lock is not held");
    cr_assert_eq(notes_db_count(probe, "SELECT count(*) FROM notes", NULL), 1,
                 "a reader is blocked by the write lock (not WAL?)");

    /* Many more writes than offload threads... */
    struct flight *posts = calloc(LOCKED_POSTS, sizeof *posts);
    for (int i = 0; i < LOCKED_POSTS; i++) {
        posts[i].c = h_connect();
        char body[64];
        snprintf(body, sizeof body, "{\"text\":\"locked %d\"}", i);
        char *raw = notes_raw("POST", "/notes", body);
        h_sends(posts[i].c, raw);
        free(raw);
    }
    /* ... sent before the reads (a round trip: the hub has read them). */
    h_assert_serving();
    struct flight gets[LOCKED_GETS] = {{0}};
    char *raw = notes_raw("GET", item, NULL);
    for (int i = 0; i < LOCKED_GETS; i++) {
        gets[i].c = h_connect();
        h_sends(gets[i].c, raw);
    }
    free(raw);
    notes_pump(gets, LOCKED_GETS, LOCKED_GETS, NULL, NULL);
    int ok = 0, first_bad = -1;
    for (int i = 0; i < LOCKED_GETS; i++) {
        json_t *note =
            gets[i].r.status == 200
                ? json_loadb(gets[i].r.body, gets[i].r.body_len, 0, NULL)
                : NULL;
        const char *text = json_string_value(json_object_get(note, "text"));
        if (text && strcmp(text, "read me while locked") == 0)
            ok++;
        else if (first_bad < 0)
            first_bad = i;
        json_decref(note);
    }
    cr_assert_eq(sqlite3_get_autocommit(lock), 0, "the lock was let go");
    cr_assert_eq(ok, LOCKED_GETS,
                 "%d of %d GETs answered 200 while the write lock was held; "
                 "GET %d: %d %s",
                 ok, LOCKED_GETS, first_bad, gets[first_bad].r.status,
                 gets[first_bad].r.body);
    for (int i = 0; i < LOCKED_GETS; i++)
        notes_flight_free(&gets[i]);

    /* A write cannot get the lock within the busy timeout: the first answer
     * to a POST, while the lock is still held, is a 503. */
    int order[LOCKED_POSTS], norder = 0;
    notes_pump(posts, LOCKED_POSTS, 1, order, &norder);
    cr_assert_eq(posts[order[0]].r.status, 503,
                 "POST %d answered %d while the write lock was held: %s",
                 order[0], posts[order[0]].r.status, posts[order[0]].r.body);

    /* The lock goes: every write answers, 201 (the note is stored) or 503
     * with a message (nothing of it is stored). */
    cr_assert_eq(sqlite3_exec(lock, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(lock);
    int left = 0;
    for (int i = 0; i < LOCKED_POSTS; i++)
        left += !posts[i].done;
    notes_pump(posts, LOCKED_POSTS, left, NULL, NULL);
    int created = 0, busy = 0;
    for (int i = 0; i < LOCKED_POSTS; i++) {
        struct h_resp *r = &posts[i].r;
        char want[32];
        snprintf(want, sizeof want, "locked %d", i);
        if (r->status == 503) {
            notes_assert_error(r, 503, want);
            cr_assert_not_null(h_header(r, "Retry-After"));
            cr_assert_eq(notes_db_count(probe,
                                        "SELECT count(*) FROM notes"
                                        " WHERE text = ?1",
                                        want),
                         0, "POST %d answered 503 but its note is stored", i);
            busy++;
        } else {
            cr_assert_eq(r->status, 201, "POST %d: %d %s", i, r->status,
                         r->body);
            json_t *note = notes_json(r);
            cr_assert_str_eq(json_string_value(json_object_get(note, "text")),
                             want);
            json_decref(note);
            cr_assert_eq(notes_db_count(probe,
                                        "SELECT count(*) FROM notes"
                                        " WHERE text = ?1",
                                        want),
                         1, "POST %d answered 201 but is not stored once", i);
            created++;
        }
        notes_flight_free(&posts[i]);
    }
    cr_assert_eq(notes_db_count(probe, "SELECT count(*) FROM notes", NULL),
                 1 + created, "rows no POST acknowledged");
    cr_assert_geq(busy, 1);
    cr_log_info("locked: %d/%d GETs 200; POSTs %d created, %d busy", ok,
                LOCKED_GETS, created, busy);
    sqlite3_close(probe);
    free(posts);
    free(item);
    h_stop();
}

#endif /* NOTES_PG */

/* ---- durability ------------------------------------------------------- */

#define CONCURRENT_POSTS 200

Test(notes, two_hundred_concurrent_posts_leave_exactly_200_rows)
{
    h_raise_nofile(4096);
    notes_start(NULL);
    struct flight f[CONCURRENT_POSTS] = {{0}};
    for (int i = 0; i < CONCURRENT_POSTS; i++) {
        f[i].c = h_connect();
        char body[64];
        snprintf(body, sizeof body, "{\"text\":\"concurrent %d\"}", i);
        char *raw = notes_raw("POST", "/notes", body);
        h_sends(f[i].c, raw);
        free(raw);
    }
    notes_pump(f, CONCURRENT_POSTS, CONCURRENT_POSTS, NULL, NULL);
    int seen[CONCURRENT_POSTS] = {0};
    json_int_t made[CONCURRENT_POSTS];
    for (int i = 0; i < CONCURRENT_POSTS; i++) {
        cr_assert_eq(f[i].r.status, 201, "POST %d: %d %s", i, f[i].r.status,
                     f[i].r.body);
        json_t *note = json_loads(f[i].r.body, 0, NULL);
        cr_assert_not_null(note);
        made[i] = json_integer_value(json_object_get(note, "id"));
        char want[32];
        snprintf(want, sizeof want, "concurrent %d", i);
        cr_assert_str_eq(json_string_value(json_object_get(note, "text")),
                         want);
        json_decref(note);
        notes_flight_free(&f[i]);
    }
    json_int_t ids[CONCURRENT_POSTS + 1];
    size_t n = notes_all_ids(ids, CONCURRENT_POSTS + 1, 100);
    cr_assert_eq(n, CONCURRENT_POSTS, "%zu rows, not %d", n, CONCURRENT_POSTS);
    for (size_t k = 0; k < n; k++) {
        if (k > 0)
            cr_assert_lt(ids[k], ids[k - 1],
                         "not newest first, or a "
                         "duplicate");
        int found = 0;
        for (int i = 0; i < CONCURRENT_POSTS; i++)
            if (made[i] == ids[k]) {
                found = 1;
                seen[i]++;
            }
        cr_assert(found, "row %" JSON_INTEGER_FORMAT " was never acknowledged",
                  ids[k]);
    }
    for (int i = 0; i < CONCURRENT_POSTS; i++)
        cr_assert_eq(seen[i], 1);
    h_stop();
}

/* The server's processes: the master and its workers (children). */
static int notes_server_pids(pid_t master, pid_t *pids, int max)
{
    int n = 0;
    pids[n++] = master;
    DIR *d = opendir("/proc");
    struct dirent *de;
    while (d && (de = readdir(d)) && n < max) {
        char path[300], *stat;
        pid_t pid = (pid_t)atoi(de->d_name);
        if (pid <= 0)
            continue;
        snprintf(path, sizeof path, "/proc/%d/stat", pid);
        if (!(stat = h_read_file(path, NULL)))
            continue;
        const char *rp = strrchr(stat, ')');
        int ppid = 0;
        if (rp && sscanf(rp + 1, " %*c %d", &ppid) == 1 && ppid == master)
            pids[n++] = pid;
        free(stat);
    }
    if (d)
        closedir(d);
    return n;
}

#define WRITERS 16

Test(notes, sigkill_during_writes_loses_no_acknowledged_note)
{
    notes_start(NULL);
    /* 16 keep-alive writers, each posting again as soon as it has an
     * answer; every 201 is remembered with the text it carried. */
    enum { MAX_ACKS = 100000 };
    json_int_t *acked = calloc(MAX_ACKS, sizeof *acked);
    int *acked_seq = calloc(MAX_ACKS, sizeof *acked_seq);
    int nacked = 0, seq = 0, inflight_seq[WRITERS];
    struct flight f[WRITERS] = {{0}};
    for (int i = 0; i < WRITERS; i++) {
        f[i].c = h_connect();
        char body[64];
        snprintf(body, sizeof body, "{\"text\":\"write %d\"}", seq);
        inflight_seq[i] = seq++;
        char *raw = notes_raw("POST", "/notes", body);
        h_sends(f[i].c, raw);
        free(raw);
    }
    while (nacked < 400) {
        int order[WRITERS], norder = 0;
        notes_pump(f, WRITERS, 1, order, &norder);
        for (int k = 0; k < norder; k++) {
            struct flight *fl = &f[order[k]];
            cr_assert_eq(fl->r.status, 201, "%s", fl->r.body);
            json_t *note = json_loads(fl->r.body, 0, NULL);
            acked[nacked] = json_integer_value(json_object_get(note, "id"));
            acked_seq[nacked++] = inflight_seq[order[k]];
            json_decref(note);
            free(fl->r.head);
            free(fl->r.lines);
            free(fl->r.body);
            fl->done = 0;
            char body[64];
            snprintf(body, sizeof body, "{\"text\":\"write %d\"}", seq);
            inflight_seq[order[k]] = seq++;
            char *raw = notes_raw("POST", "/notes", body);
            h_sends(fl->c, raw);
            free(raw);
        }
    }
    /* Kill every server process while 16 writes are in flight. */
    pid_t pids[64];
    int npids = notes_server_pids(h_srv.pid, pids, 64);
    cr_assert_geq(npids, 2, "no worker found");
    for (int i = npids - 1; i >= 0; i--)
        kill(pids[i], SIGKILL);
    waitpid(h_srv.pid, NULL, 0);
    h_srv.pid = -1;
    for (int i = 1; i < npids; i++) /* workers: gone once kill(0) fails */
        for (int t = 0; t < 1000 && kill(pids[i], 0) == 0; t++)
            h_sleep_ms(5);
    for (int i = 0; i < WRITERS; i++)
        h_close(f[i].c);

#ifdef NOTES_PG
    /* Every acknowledged note is in PostgreSQL, with its text. */
    char *rows = pg_psql(&notes_pg, "SELECT id, text FROM notes ORDER BY id");
    for (int i = 0; i < nacked; i++) {
        char want[64];
        snprintf(want, sizeof want, "\n%" JSON_INTEGER_FORMAT "|write %d\n",
                 acked[i], acked_seq[i]);
        char *all = h_fmt("\n%s", rows);
        cr_assert_not_null(strstr(all, want),
                           "acknowledged note %" JSON_INTEGER_FORMAT
                           " (write %d) is missing",
                           acked[i], acked_seq[i]);
        free(all);
    }
    free(rows);
#else
    /* The file as SQLite finds it (WAL recovery included). */
    sqlite3 *db;
    cr_assert_eq(
        sqlite3_open_v2(h_path("notes.db"), &db, SQLITE_OPEN_READWRITE, NULL),
        SQLITE_OK);
    sqlite3_stmt *st;
    cr_assert_eq(
        sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL),
        SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_assert_str_eq((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    cr_assert_eq(sqlite3_prepare_v2(db, "SELECT text FROM notes WHERE id = ?",
                                    -1, &st, NULL),
                 SQLITE_OK);
    for (int i = 0; i < nacked; i++) {
        sqlite3_bind_int64(st, 1, acked[i]);
        cr_assert_eq(sqlite3_step(st), SQLITE_ROW,
                     "acknowledged note %" JSON_INTEGER_FORMAT " is missing",
                     acked[i]);
        char want[32];
        snprintf(want, sizeof want, "write %d", acked_seq[i]);
        cr_assert_str_eq((const char *)sqlite3_column_text(st, 0), want);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
#endif

    /* And the server starts again on it and serves the notes. */
    notes_start(NULL);
    json_int_t *ids = calloc((size_t)seq + 1, sizeof *ids);
    size_t n = notes_all_ids(ids, (size_t)seq + 1, 100);
    cr_assert_geq(n, (size_t)nacked);
    cr_assert_leq(n, (size_t)seq, "more rows than writes sent");
    free(ids);
    free(acked);
    free(acked_seq);
    h_stop();
}
