/*
 * coserve behind a real nginx, configured by deploy/nginx/coserve.conf
 * itself (placeholders filled in): one coserve on a unix socket (the
 * default upstream), one on a TCP port (/via-tcp/), nginx in front with one
 * worker. Skipped when there is no nginx.
 *
 * The apps dir links every build/apps .so and build/test-apps/whoami.so (GET
 * /whoami answers remote_addr=, scheme= and remote_port=).
 */
#include "deploy_util.h"

struct ng {
    struct du_coserve cu, ct; /* on the unix socket, on TCP */
    struct du_nginx nx;
    char www[300], apps[300];
};

#define NG_STATIC "served by nginx, not by coserve\n"
#define NG_INDEX "<!doctype html>\n<title>deploy test</title>\n"

static void ng_up(struct ng *g)
{
    du_setup();
    du_mkdir("www");
    du_mkdir("apps");
    snprintf(g->www, sizeof g->www, "%s", du_path("www"));
    snprintf(g->apps, sizeof g->apps, "%s", du_path("apps"));
    h_write_file(du_path("www/static.txt"), NG_STATIC, strlen(NG_STATIC));
    h_write_file(du_path("www/index.html"), NG_INDEX, strlen(NG_INDEX));
    du_link_all_apps(du_apps_src(), g->apps);
    du_link_app(du_test_apps_src(), "whoami", g->apps);
    char *db_unix = h_fmt("COSERVE_NOTES_DB=%s", du_path("notes-unix.db"));
    char *db_tcp = h_fmt("COSERVE_NOTES_DB=%s", du_path("notes-tcp.db"));
    /* --www off: a static file that arrives can only come from nginx */
    du_coserve_start(&g->cu, "cs-unix", 1, 2, g->apps, NULL, DU_ARGS(db_unix));
    du_coserve_start(&g->ct, "cs-tcp", 0, 1, g->apps, NULL, DU_ARGS(db_tcp));
    du_nginx_start(&g->nx, g->cu.sock, g->ct.port, g->www);
    free(db_unix);
    free(db_tcp);
}

static void ng_down(struct ng *g)
{
    du_nginx_stop(&g->nx);
    du_coserve_stop(&g->cu);
    du_coserve_stop(&g->ct);
}

TestSuite(nginx, .fini = du_teardown, .timeout = 60);

Test(nginx, hello_through_both_upstreams)
{
    DU_REQUIRE_NGINX();
    struct ng g;
    ng_up(&g);
    struct du_target t = du_via(&g.nx);
    struct h_resp *r = du_get(&t, "/hello", NULL, 200);
    cr_assert_str_eq(r->body, "Hello, World!\n");
    h_resp_free(r);
    r = du_get(&t, "/via-tcp/hello", NULL, 200);
    cr_assert_str_eq(r->body, "Hello, World!\n");
    h_resp_free(r);
    /* each coserve saw its request (the logs are complete once stopped) */
    ng_down(&g);
    cr_assert_eq(du_count_in_file(g.cu.access, "GET /hello HTTP/1.1\" 200"), 1,
                 "%s", du_tail(g.cu.access, 2000));
    cr_assert_eq(du_count_in_file(g.ct.access, "GET /hello HTTP/1.1\" 200"), 1,
                 "%s", du_tail(g.ct.access, 2000));
}

Test(nginx, static_files_served_by_nginx)
{
    DU_REQUIRE_NGINX();
    struct ng g;
    ng_up(&g);
    struct du_target t = du_via(&g.nx);
    struct h_resp *r = du_get(&t, "/static.txt", NULL, 200);
    cr_assert_str_eq(r->body, NG_STATIC);
    h_resp_free(r);
    r = du_get(&t, "/", NULL, 200);
    cr_assert_str_eq(r->body, NG_INDEX);
    h_resp_free(r);
    /* a path that is no file falls through to coserve (its 404) */
    r = du_get(&t, "/no-such-file.txt", NULL, 404);
    h_resp_free(r);
    ng_down(&g);
    cr_assert_eq(du_count_in_file(g.cu.access, "GET /no-such-file.txt"), 1,
                 "coserve never saw the fallback request:\n%s",
                 du_tail(g.cu.access, 2000));
    char *log = h_read_file(g.cu.access, NULL);
    cr_assert_null(strstr(log, "/static.txt"),
                   "coserve served a static file nginx should have:\n%s", log);
    cr_assert_null(strstr(log, "GET / "), "coserve saw GET /:\n%s", log);
    free(log);
}

/* POSTs a 1 MiB chunked body (chunks of 1 byte to 64 KiB) to path and
 * asserts the echo is byte for byte the same. */
static void ng_echo_chunked(const struct du_target *t, const char *path)
{
    size_t total = 1 << 20;
    char *body = malloc(total);
    h_fill_random(body, total, 0xC0FFEE);
    char *out = NULL;
    size_t outlen = 0;
    FILE *f = open_memstream(&out, &outlen);
    fprintf(f,
            "POST %s HTTP/1.1\r\nHost: coserve.test\r\n"
            "Content-Type: application/octet-stream\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
            path);
    uint32_t x = 12345;
    for (size_t off = 0; off < total;) {
        x = x * 1103515245u + 12345u;
        size_t n = 1 + (x >> 8) % 65536;
        if (n > total - off)
            n = total - off;
        fprintf(f, "%zx\r\n", n);
        fwrite(body + off, 1, n, f);
        fputs("\r\n", f);
        off += n;
    }
    fputs("0\r\n\r\n", f);
    fclose(f);
    struct h_conn *c = du_connect(t);
    cr_assert_not_null(c, "connect: %s", strerror(errno));
    struct h_resp r;
    char why[512] = "";
    int rc = du_exchange(c, out, outlen, &r, 0, H_GUARD_MS, why, sizeof why);
    size_t got = c->len;
    const char *eoh = c->len ? memmem(c->buf, c->len, "\r\n\r\n", 4) : NULL;
    int head_ok = eoh && strncmp(c->buf, "HTTP/1.1 200 ", 13) == 0;
    h_close(c);
    free(out);
    cr_assert_eq(rc, 1,
                 "no complete echo of the 1 MiB chunked body through nginx "
                 "within %d ms: %s; %zu bytes arrived%s",
                 H_GUARD_MS, rc == 0 ? "closed" : "timed out or malformed", got,
                 head_ok ? ", a 200 head and then part of the body (nginx "
                           "sends no more of a request body once the "
                           "response head came back: the app answered "
                           "before it read the whole body; see "
                           "deploy/nginx/coserve.conf)"
                         : "");
    cr_assert_eq(r.status, 200, "status %d:\n%s%.300s", r.status, r.head,
                 r.body);
    cr_assert_eq(r.body_len, total, "echoed %zu bytes, not %zu", r.body_len,
                 total);
    cr_assert(memcmp(r.body, body, total) == 0, "echoed bytes differ");
    du_resp_clear(&r);
    free(body);
}

/* The default location: the unix-socket upstream. */
Test(nginx, echo_1mib_chunked_unix_upstream)
{
    DU_REQUIRE_NGINX();
    struct ng g;
    ng_up(&g);
    struct du_target t = du_via(&g.nx);
    ng_echo_chunked(&t, "/echo");
    ng_down(&g);
    cr_assert_eq(
        du_count_in_file(g.cu.access, "\"POST /echo HTTP/1.1\" 200 1048576"), 1,
        "coserve's log:\n%s", du_tail(g.cu.access, 2000));
}

Test(nginx, echo_1mib_chunked_tcp_upstream)
{
    DU_REQUIRE_NGINX();
    struct ng g;
    ng_up(&g);
    struct du_target t = du_via(&g.nx);
    ng_echo_chunked(&t, "/via-tcp/echo");
    ng_down(&g);
    cr_assert_eq(
        du_count_in_file(g.ct.access, "\"POST /echo HTTP/1.1\" 200 1048576"), 1,
        "coserve's log:\n%s", du_tail(g.ct.access, 2000));
}

/* nginx refuses what coserve would refuse: over 16 MiB is a 413 at the
 * door, before a byte goes upstream. */
Test(nginx, body_limit_matches_coserve)
{
    DU_REQUIRE_NGINX();
    struct ng g;
    ng_up(&g);
    static const char big[] = "POST /echo HTTP/1.1\r\nHost: coserve.test\r\n"
                              "Content-Length: 16777217\r\n\r\n";
    struct du_target t = du_via(&g.nx);
    struct h_resp *r = du_request(&t, big, strlen(big), 413);
    h_resp_free(r);
    t = du_at(&g.ct); /* and coserve itself, directly */
    r = du_request(&t, big, strlen(big), 413);
    h_resp_free(r);
    ng_down(&g);
}

/* The app sees the client's address (X-Forwarded-For from nginx, trusted
 * on the unix socket and from 127.0.0.1 by default), not nginx's; what the
 * client claims in its own X-Forwarded-For / -Proto changes nothing. */
Test(nginx, client_address_from_x_forwarded_for)
{
    DU_REQUIRE_NGINX();
    struct ng g;
    ng_up(&g);
    struct du_target t = du_via(&g.nx);
    t.src = "127.0.0.2";
    const char *paths[] = {"/whoami", "/via-tcp/whoami"};
    for (int i = 0; i < 2; i++) {
        struct h_resp *r = du_get(&t, paths[i], NULL, 200);
        cr_assert_str_eq(du_field(r->body, "remote_addr"), "127.0.0.2",
                         "%s:\n%s", paths[i], r->body);
        cr_assert_str_eq(du_field(r->body, "scheme"), "http");
        h_resp_free(r);
        r = du_get(&t, paths[i],
                   "X-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Proto: https\r\n",
                   200);
        cr_assert_str_eq(du_field(r->body, "remote_addr"), "127.0.0.2",
                         "a client chose its address through nginx (%s):\n%s",
                         paths[i], r->body);
        cr_assert_str_eq(du_field(r->body, "scheme"), "http",
                         "a client chose its scheme through nginx (%s):\n%s",
                         paths[i], r->body);
        h_resp_free(r);
    }
    /* the access logs show the client too */
    ng_down(&g);
    cr_assert_eq(du_count_in_file(g.cu.access, "127.0.0.2 - - ["), 2, "%s",
                 du_tail(g.cu.access, 2000));
    cr_assert_eq(du_count_in_file(g.ct.access, "127.0.0.2 - - ["), 2, "%s",
                 du_tail(g.ct.access, 2000));
}

/* Directly, from a peer not in --forwarded-allow-ips, X-Forwarded-For and
 * -Proto are ignored; from a listed one they are believed. */
Test(nginx, untrusted_peer_cannot_spoof)
{
    du_setup();
    du_mkdir("apps");
    du_link_app(du_apps_src(), "hello", du_path("apps"));
    du_link_app(du_test_apps_src(), "whoami", du_path("apps"));
    struct du_coserve s;
    du_coserve_start(&s, "cs", 0, 1, du_path("apps"),
                     DU_ARGS("--forwarded-allow-ips", "127.0.0.5"), NULL);
    static const char spoof[] =
        "X-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Proto: https\r\n";
    struct du_target t = du_at(&s);
    struct h_resp *r = du_get(&t, "/whoami", spoof, 200);
    cr_assert_str_eq(du_field(r->body, "remote_addr"), "127.0.0.1",
                     "an untrusted client chose its address:\n%s", r->body);
    cr_assert_str_eq(du_field(r->body, "scheme"), "http",
                     "an untrusted client chose its scheme:\n%s", r->body);
    h_resp_free(r);
    t.src = "127.0.0.5"; /* the trusted proxy */
    r = du_get(&t, "/whoami", spoof, 200);
    cr_assert_str_eq(du_field(r->body, "remote_addr"), "1.2.3.4", "%s",
                     r->body);
    cr_assert_str_eq(du_field(r->body, "scheme"), "https", "%s", r->body);
    h_resp_free(r);
    /* the log, too, names the untrusted peer itself */
    du_coserve_stop(&s);
    cr_assert_eq(du_count_in_file(s.access, "127.0.0.1 - - ["), 1, "%s",
                 du_tail(s.access, 2000));
    cr_assert_eq(du_count_in_file(s.access, "1.2.3.4 - - ["), 1, "%s",
                 du_tail(s.access, 2000));
}

/* keepalive in the upstream blocks: 50 requests, each on a new client
 * connection, share one or two upstream connections. */
Test(nginx, upstream_connections_are_reused)
{
    DU_REQUIRE_NGINX();
    struct ng g;
    ng_up(&g);
    struct du_target t = du_via(&g.nx);
    enum { N = 50 };
    /* TCP: the peer port coserve sees names the connection */
    int ports[N], distinct = 0;
    for (int i = 0; i < N; i++) {
        struct h_resp *r = du_get(&t, "/via-tcp/whoami", NULL, 200);
        int port = atoi(du_field(r->body, "remote_port"));
        h_resp_free(r);
        cr_assert_gt(port, 0);
        int seen = 0;
        for (int j = 0; j < distinct; j++)
            seen |= ports[j] == port;
        if (!seen)
            ports[distinct++] = port;
    }
    cr_assert_leq(distinct, 2,
                  "%d requests through nginx took %d upstream TCP "
                  "connections: keepalive is not reusing them",
                  N, distinct);
    /* unix: after each request, the connections coserve holds open */
    unsigned long seen[64];
    int nseen = 0;
    for (int i = 0; i < N; i++) {
        struct h_resp *r = du_get(&t, "/whoami", NULL, 200);
        h_resp_free(r);
        unsigned long now[64];
        int n = du_unix_conns(g.cu.sock, now, 64);
        cr_assert_geq(n, 1,
                      "no upstream connection stays open after a "
                      "request: nginx does not keep them alive");
        for (int k = 0; k < n && k < 64; k++) {
            int dup = 0;
            for (int j = 0; j < nseen; j++)
                dup |= seen[j] == now[k];
            if (!dup && nseen < 64)
                seen[nseen++] = now[k];
        }
    }
    cr_assert_leq(nseen, 2,
                  "%d requests through nginx used %d upstream unix "
                  "connections",
                  N, nseen);
    ng_down(&g);
    cr_assert_eq(du_count_in_file(g.ct.access, "GET /whoami"), N, "%s",
                 du_tail(g.ct.access, 2000));
    cr_assert_eq(du_count_in_file(g.cu.access, "GET /whoami"), N, "%s",
                 du_tail(g.cu.access, 2000));
}

/* The notes JSON API end to end through nginx (when the app is built). */
Test(nginx, notes_api_through_nginx)
{
    DU_REQUIRE_NGINX();
    char so[400];
    snprintf(so, sizeof so, "%s/notes.so", du_apps_src());
    if (!du_file_exists(so)) {
        cr_skip_test("%s not built", so);
        return;
    }
    struct ng g;
    ng_up(&g);
    cr_assert_eq(du_count_in_file(g.cu.err, "notes.so refused"), 0,
                 "the notes app did not load:\n%s", du_tail(g.cu.err, 3000));
    struct du_target t = du_via(&g.nx);
    static const char body[] = "{\"text\": \"deployed behind nginx\"}";
    char *raw = h_fmt("POST /notes HTTP/1.1\r\nHost: coserve.test\r\n"
                      "Content-Type: application/json\r\n"
                      "Content-Length: %zu\r\n\r\n%s",
                      strlen(body), body);
    struct h_resp *r = du_request(&t, raw, strlen(raw), 201);
    free(raw);
    const char *loc = h_header(r, "Location");
    cr_assert_not_null(loc, "no Location:\n%s", r->head);
    cr_assert(strncmp(loc, "/notes/", 7) == 0, "Location: %s", loc);
    char item[64];
    snprintf(item, sizeof item, "%s", loc);
    cr_assert_not_null(strstr(r->body, "deployed behind nginx"), "%s", r->body);
    h_resp_free(r);

    r = du_get(&t, item, NULL, 200);
    cr_assert_not_null(strstr(r->body, "deployed behind nginx"), "%s", r->body);
    h_resp_free(r);
    r = du_get(&t, "/notes?limit=5", NULL, 200);
    cr_assert_not_null(strstr(r->body, "deployed behind nginx"), "%s", r->body);
    h_resp_free(r);
    r = du_get(&t, "/notes/search?q=nginx", NULL, 200);
    cr_assert_not_null(strstr(r->body, "deployed behind nginx"), "%s", r->body);
    h_resp_free(r);

    static const char upd[] = "{\"text\": \"updated through nginx\"}";
    raw = h_fmt("PUT %s HTTP/1.1\r\nHost: coserve.test\r\n"
                "Content-Type: application/json\r\n"
                "Content-Length: %zu\r\n\r\n%s",
                item, strlen(upd), upd);
    r = du_request(&t, raw, strlen(raw), 200);
    free(raw);
    cr_assert_not_null(strstr(r->body, "updated through nginx"), "%s", r->body);
    h_resp_free(r);

    raw = h_fmt("DELETE %s HTTP/1.1\r\nHost: coserve.test\r\n\r\n", item);
    r = du_request(&t, raw, strlen(raw), 204);
    free(raw);
    h_resp_free(r);
    r = du_get(&t, item, NULL, 404);
    h_resp_free(r);
    ng_down(&g);
}

/* A request's access log line is written when the request ends, not when
 * the worker next wakes up: behind nginx the upstream connection stays
 * open and idle, so nothing else may come to flush it. */
Test(nginx, access_log_line_written_while_upstream_idle)
{
    DU_REQUIRE_NGINX();
    struct ng g;
    ng_up(&g);
    struct du_target t = du_via(&g.nx);
    struct h_resp *r = du_get(&t, "/hello?logged-at-once", NULL, 200);
    h_resp_free(r);
    cr_assert(du_unix_conns(g.cu.sock, (unsigned long[4]){0}, 4) >= 1,
              "nginx kept no upstream connection open");
    int written =
        du_wait_in_file(g.cu.access, "/hello?logged-at-once", 1, H_GUARD_MS);
    ng_down(&g);
    cr_assert(written,
              "the access log line of a finished request was not written "
              "within %d ms while nginx held its upstream connection idle "
              "(it is there after the stop: %d)",
              H_GUARD_MS,
              du_count_in_file(g.cu.access, "/hello?logged-at-once"));
}
