/*
 * The fanout demo (apps/fanout): N child coroutines, each one plain libcurl
 * easy request, against a real coserve (one worker), a second coserve as a
 * separate target, and a real nginx serving https with a CA made by openssl
 * for the test.
 *
 * That the requests overlap is shown by the target, never by a clock: the
 * test app tests/apps/inflight counts its requests in progress and can hold
 * each one at a gate until G of them are in progress at once. A gate of 10
 * opens for /fanout?n=10 only if all ten requests were in flight together,
 * on the same worker that runs the fanout.
 *
 * The server's apps folder links fanout, hello and sleep from $COSERVE_APPS
 * and inflight from $COSERVE_TEST_APPS.
 */
#include "../deploy/deploy_util.h"

#define FO_MARKER "coserve fanout over https\n"

static void fo_teardown(void)
{
    h_teardown();
    du_teardown();
}

TestSuite(fanout, .fini = fo_teardown, .timeout = 150);

/* ---- helpers ---------------------------------------------------------- */

/* Links the apps this suite uses into dir. */
static void fo_link_apps(const char *dir)
{
    du_link_app(du_apps_src(), "fanout", dir);
    du_link_app(du_apps_src(), "hello", dir);
    du_link_app(du_apps_src(), "sleep", dir);
    du_link_app(du_test_apps_src(), "inflight", dir);
}

/* Starts the harness's server with one worker on its own apps folder, then
 * extra flags (NULL-terminated, or NULL). */
static void fo_start(const char *const *extra)
{
    h_setup();
    fo_link_apps(h_srv.apps);
    const char *args[16] = {"--workers", "1", "--apps", h_srv.apps};
    int n = 4;
    for (int i = 0; extra && extra[i]; i++) {
        cr_assert(n < 15);
        args[n++] = extra[i];
    }
    args[n] = NULL;
    h_start(args);
}

/* s with everything but unreserved characters percent-encoded, for a query
 * value (one of 4 rotating static buffers). */
static const char *fo_enc(const char *s)
{
    static char buf[4][4096];
    static int which;
    which = (which + 1) % 4;
    char *o = buf[which];
    size_t n = 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        cr_assert(n + 4 < sizeof buf[which]);
        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~')
            o[n++] = (char)c;
        else
            n += (size_t)sprintf(o + n, "%%%02X", c);
    }
    o[n] = '\0';
    return o;
}

/* GET target on a new connection; asserts a complete response within
 * guard_ms (a hang guard, generous: never a measurement). */
static struct h_resp *fo_get_within(const char *target, int guard_ms)
{
    char *raw = h_fmt("GET %s HTTP/1.1\r\nHost: t\r\n\r\n", target);
    struct h_conn *c = h_connect();
    h_sends(c, raw);
    struct h_resp *r = calloc(1, sizeof *r);
    char why[512] = "";
    int rc = h_read_response(c, r, 0, guard_ms, why, sizeof why);
    h_close(c);
    cr_assert_eq(
        rc, 1, "no complete answer to %s within %d ms (%s); server:\n%s",
        target, guard_ms, rc == 0 ? "closed" : why, h_stderr_tail(3000));
    free(raw);
    return r;
}

static struct h_resp *fo_get(const char *target, int want_status)
{
    struct h_resp *r = fo_get_within(target, H_GUARD_MS);
    if (want_status)
        cr_assert_eq(r->status, want_status, "GET %s: want %d, got %d:\n%s%s",
                     target, want_status, r->status, r->head, r->body);
    return r;
}

/* GET /fanout?query, asserting a 200 report. */
static struct h_resp *fo_fanout(const char *query, int guard_ms)
{
    char *target = h_fmt("/fanout?%s", query);
    struct h_resp *r = fo_get_within(target, guard_ms);
    cr_assert_eq(r->status, 200, "%s: %d\n%s", target, r->status, r->body);
    free(target);
    return r;
}

/* Asserts body is n lines "i status bytes ms", in order, each with status
 * want (and want_bytes unless it is -1) and no error, then "total N ms". */
static void fo_assert_lines(const char *body, int n, int want, long want_bytes)
{
    char *copy = strdup(body), *save = NULL;
    int lines = 0, total = 0;
    for (char *line = strtok_r(copy, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "total ", 6) == 0) {
            total++;
            continue;
        }
        if (strncmp(line, "body ", 5) == 0)
            continue;
        int i, status;
        long long bytes, ms;
        cr_assert_eq(sscanf(line, "%d %d %lld %lld", &i, &status, &bytes, &ms),
                     4, "bad line '%s' in:\n%s", line, body);
        cr_assert_eq(i, lines, "line %d is numbered %d", lines, i);
        cr_assert_null(strstr(line, "error"),
                       "request %d failed (timeouts from a target on the "
                       "same worker mean libcurl blocked it: hooks off?):\n%s",
                       i, body);
        cr_assert_eq(status, want, "request %d: '%s'\n%s", i, line, body);
        if (want_bytes >= 0)
            cr_assert_eq(bytes, want_bytes, "request %d: '%s'", i, line);
        lines++;
    }
    cr_assert_eq(lines, n, "want %d result lines:\n%s", n, body);
    cr_assert_eq(total, 1, "want one total line:\n%s", body);
    free(copy);
}

/* The "total N ms" of a report, for the log. */
static long long fo_total_ms(const char *body)
{
    const char *t = strstr(body, "total ");
    return t ? atoll(t + 6) : -1;
}

/* inflight's "now=C max=M total=T" from the harness's server. */
static void fo_stats(long *now, long *max, long *total)
{
    struct h_resp *r = fo_get("/inflight/stats", 200);
    cr_assert_eq(sscanf(r->body, "now=%ld max=%ld total=%ld", now, max, total),
                 3, "stats: %s", r->body);
    h_resp_free(r);
}

/* ---- a second coserve, as a target outside the fanout's worker -------- */

/* A coserve with inflight (and hello) on a TCP port, or a unix socket. */
static void fo_target_start(struct du_coserve *s, const char *name,
                            int unix_socket, const char *const *extra,
                            const char *const *env)
{
    du_setup();
    char rel[64];
    snprintf(rel, sizeof rel, "%s-apps", name);
    du_mkdir(rel);
    char *apps = strdup(du_path(rel));
    fo_link_apps(apps);
    du_coserve_start(s, name, unix_socket, 1, apps, extra, env);
    free(apps);
}

static void fo_target_stats(const struct du_coserve *s, long *max, long *total)
{
    struct du_target t = du_at(s);
    static const char raw[] = "GET /inflight/stats HTTP/1.1\r\nHost: t\r\n\r\n";
    struct h_resp *r = du_request(&t, raw, strlen(raw), 200);
    long now;
    cr_assert_eq(sscanf(r->body, "now=%ld max=%ld total=%ld", &now, max, total),
                 3, "stats: %s", r->body);
    h_resp_free(r);
}

/* ---- nginx serving https with a CA made for the test ------------------ */

struct fo_tls {
    char ca[300]; /* the CA certificate fanout is told to trust */
    int port;     /* nginx's https port on 127.0.0.1 */
    pid_t pid;
};

/* Runs a command to completion (its output to a log); asserts exit 0. */
static void fo_run(const char *const *argv)
{
    const char *log = du_path("cmd.log");
    pid_t pid = du_spawn(argv, log, NULL, DU_COSERVE);
    int status = 0;
    cr_assert(du_wait_exit(pid, 30000, &status), "%s did not finish", argv[0]);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "%s %s failed (0x%x):\n%s", argv[0], argv[1], status,
              du_tail(log, 2000));
}

/* A CA and a server certificate for localhost and 127.0.0.1 signed by it,
 * from a config of our own (the system's openssl.cnf does not matter). */
static void fo_make_certs(struct fo_tls *t)
{
    static const char cnf[] =
        "[req]\ndistinguished_name = dn\nprompt = no\n"
        "[dn]\nCN = coserve fanout test CA\n"
        "[v3_ca]\nbasicConstraints = critical,CA:TRUE\n"
        "keyUsage = critical,keyCertSign,cRLSign\n"
        "subjectKeyIdentifier = hash\n"
        "[v3_srv]\nbasicConstraints = CA:FALSE\n"
        "keyUsage = critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage = serverAuth\n"
        "subjectAltName = DNS:localhost,IP:127.0.0.1\n"
        "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n";
    du_mkdir("tls");
    char conf[300], key[300], csr[300], srv_key[300], srv[300];
    snprintf(conf, sizeof conf, "%s", du_path("tls/openssl.cnf"));
    snprintf(key, sizeof key, "%s", du_path("tls/ca.key"));
    snprintf(t->ca, sizeof t->ca, "%s", du_path("tls/ca.pem"));
    snprintf(csr, sizeof csr, "%s", du_path("tls/srv.csr"));
    snprintf(srv_key, sizeof srv_key, "%s", du_path("tls/srv.key"));
    snprintf(srv, sizeof srv, "%s", du_path("tls/srv.pem"));
    h_write_file(conf, cnf, strlen(cnf));
    fo_run((const char *const[]){
        "/usr/bin/openssl", "req", "-x509", "-config", conf, "-extensions",
        "v3_ca", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", key, "-out", t->ca, "-days", "2", NULL});
    fo_run((const char *const[]){
        "/usr/bin/openssl", "req", "-new", "-config", conf, "-subj",
        "/CN=localhost", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", srv_key, "-out", csr, NULL});
    fo_run((const char *const[]){"/usr/bin/openssl",
                                 "x509",
                                 "-req",
                                 "-in",
                                 csr,
                                 "-CA",
                                 t->ca,
                                 "-CAkey",
                                 key,
                                 "-set_serial",
                                 "2",
                                 "-days",
                                 "2",
                                 "-extfile",
                                 conf,
                                 "-extensions",
                                 "v3_srv",
                                 "-out",
                                 srv,
                                 NULL});
}

/* nginx serving tls/www over https on a free loopback port, plus
 * /redirect (a 302 to file://, which fanout must not follow). */
static void fo_nginx_https(struct fo_tls *t)
{
    du_setup();
    fo_make_certs(t);
    du_mkdir("tls/www");
    du_mkdir("tls/logs");
    h_write_file(du_path("tls/www/fanout.txt"), FO_MARKER, strlen(FO_MARKER));
    const char *dir = du_path("tls");
    char errlog[300], conf_path[300];
    snprintf(errlog, sizeof errlog, "%s/logs/error.log", dir);
    snprintf(conf_path, sizeof conf_path, "%s/nginx.conf", dir);
    for (int attempt = 0; attempt < 8; attempt++) {
        t->port = h_free_port();
        char *conf = h_fmt(
            "daemon off;\nmaster_process on;\nworker_processes 1;\n%s"
            "pid %s/nginx.pid;\nerror_log %s info;\n"
            "events { worker_connections 256; }\n"
            "http {\n"
            "    access_log %s/logs/access.log;\n"
            "    client_body_temp_path %s/logs/body;\n"
            "    proxy_temp_path %s/logs/proxy;\n"
            "    fastcgi_temp_path %s/logs/fastcgi;\n"
            "    uwsgi_temp_path %s/logs/uwsgi;\n"
            "    scgi_temp_path %s/logs/scgi;\n"
            "    server {\n"
            "        listen 127.0.0.1:%d ssl;\n"
            "        ssl_certificate %s/srv.pem;\n"
            "        ssl_certificate_key %s/srv.key;\n"
            "        root %s/www;\n"
            "        location = /redirect { return 302 file:///etc/passwd; }\n"
            "    }\n"
            "}\n",
            geteuid() == 0 ? "user root;\n" : "", dir, errlog, dir, dir, dir,
            dir, dir, dir, t->port, dir, dir, dir);
        h_write_file(conf_path, conf, strlen(conf));
        free(conf);
        du_truncate(errlog);
        const char *argv[] = {du_nginx_bin(), "-p", dir,    "-c",
                              conf_path,      "-e", errlog, NULL};
        t->pid =
            du_spawn(argv, du_path("tls/logs/startup.log"), NULL, DU_NGINX);
        int64_t end = h_now_ms() + DU_START_MS;
        for (;;) {
            int status;
            if (du_wait_exit(t->pid, 0, &status)) {
                t->pid = -1;
                cr_assert(du_count_in_file(errlog, "Address already in use"),
                          "nginx exited at startup (0x%x):\n%s", status,
                          du_tail(errlog, 3000));
                break; /* lost the port: try another */
            }
            if (du_count_in_file(errlog, "start worker process ") >= 1 &&
                du_try_connect_tcp_once("127.0.0.1", t->port) == 0)
                return;
            cr_assert(h_now_ms() < end, "nginx did not come up:\n%s",
                      du_tail(errlog, 3000));
            h_sleep_ms(10);
        }
    }
    cr_assert_fail("no free port for nginx in 8 tries");
}

/* Skips the test when nginx or openssl is missing. */
#define FO_REQUIRE_TLS_TOOLS()                                                 \
    do {                                                                       \
        DU_REQUIRE_NGINX();                                                    \
        if (access("/usr/bin/openssl", X_OK) != 0) {                           \
            cr_skip_test("no /usr/bin/openssl (apt-get install openssl)");     \
            return;                                                            \
        }                                                                      \
    } while (0)

/* ---- overlap ---------------------------------------------------------- */

Test(fanout, ten_requests_are_in_flight_at_once_on_one_worker)
{
    fo_start(NULL);
    /* each request is held until all ten are in progress: the gate opens
     * only if the worker kept serving while libcurl waited */
    char *q = h_fmt("n=10&timeout_ms=5000&path=%s",
                    fo_enc("/inflight?gate=10&wait_ms=5000"));
    struct h_resp *r = fo_fanout(q, 90000);
    fo_assert_lines(r->body, 10, 200, 3);
    long now, max, total;
    fo_stats(&now, &max, &total);
    cr_assert_eq(max, 10, "at most %ld requests were in progress at once", max);
    cr_assert_eq(total, 10);
    cr_assert_eq(now, 0);
    h_resp_free(r);
    free(q);
    h_stop();
}

Test(fanout, ten_calls_to_sleep_100ms_all_answer)
{
    fo_start(NULL);
    /* the default target: this server's /sleep?ms=100 */
    struct h_resp *r = fo_fanout("n=10", 90000);
    fo_assert_lines(r->body, 10, 200, (long)strlen("slept 100 ms\n"));
    cr_log_info("/fanout?n=10 against /sleep?ms=100: total %lld ms",
                fo_total_ms(r->body));
    h_resp_free(r);
    h_stop();
}

Test(fanout, hello_keeps_answering_while_a_fanout_waits)
{
    fo_start(NULL);
    struct h_conn *f = h_connect();
    /* ten requests held at a gate of eleven: the test opens it */
    char *raw = h_fmt("GET /fanout?n=10&timeout_ms=30000&path=%s HTTP/1.1\r\n"
                      "Host: t\r\n\r\n",
                      fo_enc("/inflight?gate=11&wait_ms=30000"));
    h_sends(f, raw);
    free(raw);
    long now = 0, max, total;
    int64_t end = h_now_ms() + H_GUARD_MS;
    while (fo_stats(&now, &max, &total), now < 10) {
        cr_assert(h_now_ms() < end, "only %ld of 10 requests arrived", now);
        h_sleep_ms(10);
    }
    struct h_resp *r = fo_get("/hello", 200);
    cr_assert_str_eq(r->body, "Hello, World!\n");
    h_resp_free(r);
    h_read_now(f);
    cr_assert_eq(f->len, 0, "the fanout answered with its gate shut:\n%s",
                 f->buf);
    r = fo_get("/inflight?gate=11", 200); /* the eleventh: opens the gate */
    h_resp_free(r);
    r = h_response(f, 0);
    cr_assert_eq(r->status, 200);
    fo_assert_lines(r->body, 10, 200, 3);
    h_resp_free(r);
    h_close(f);
    h_stop();
}

/* ---- bad input -------------------------------------------------------- */

Test(fanout, bad_parameters_get_400_with_a_reason)
{
    fo_start(NULL);
    char long_url[3000];
    memset(long_url, 'a', sizeof long_url - 1);
    long_url[sizeof long_url - 1] = '\0';
    memcpy(long_url, "http%3A%2F%2F", 13);
    char *long_q = h_fmt("url=%s", long_url);
    struct {
        const char *query, *says;
    } cases[] = {
        {"n=0", "n must be an integer from 1 to 100"},
        {"n=-1", "n must be"},
        {"n=101", "n must be"},
        {"n=99999999999999999999999", "n must be"},
        {"n=abc", "n must be"},
        {"n=", "n must be"},
        {"n=1.5", "n must be"},
        {"n=%2010", "n must be"},
        {"timeout_ms=0", "timeout_ms must be"},
        {"timeout_ms=60001", "timeout_ms must be"},
        {"timeout_ms=x", "timeout_ms must be"},
        {"show=2", "show must be"},
        {"url=file%3A%2F%2F%2Fetc%2Fpasswd", "only http:// and https://"},
        {"url=FILE%3A%2F%2F%2Fetc%2Fpasswd", "only http:// and https://"},
        {"url=ftp%3A%2F%2F127.0.0.1%2F", "only http:// and https://"},
        {"url=gopher%3A%2F%2F127.0.0.1%3A70%2F", "only http:// and https://"},
        {"url=dict%3A%2F%2F127.0.0.1%3A11211%2Fstat", "only http://"},
        {"url=127.0.0.1%3A80%2F", "absolute http:// or https://"},
        {"url=%2Fetc%2Fpasswd", "absolute http:// or https://"},
        {"url=http%3A%2F%2Fa%20b%2F", "absolute http:// or https://"},
        {"url=http%3A%2F%2F", "url"},
        {"url=", "absolute"},
        {"url=http%3A%2F%2F127.0.0.1%2F&path=%2Fhello", "not both"},
        {"path=hello", "path must start with '/'"},
        {long_q, "too long"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *target = h_fmt("/fanout?%s", cases[i].query);
        struct h_resp *r = fo_get(target, 400);
        cr_assert_not_null(strstr(r->body, cases[i].says),
                           "%s: want '%s' in:\n%s", target, cases[i].says,
                           r->body);
        h_resp_free(r);
        free(target);
    }
    free(long_q);
    h_assert_serving();
    h_stop();
}

Test(fanout, a_refused_connection_is_a_per_request_error)
{
    fo_start(NULL);
    int closed = h_free_port(); /* nothing listens there now */
    char *url = h_fmt("http://127.0.0.1:%d/", closed);
    char *q = h_fmt("n=3&url=%s", fo_enc(url));
    struct h_resp *r = fo_fanout(q, 60000);
    int errors = 0;
    for (const char *p = r->body;
         (p = strstr(p, " error: Couldn't connect to server")); p++)
        errors++;
    cr_assert_eq(errors, 3, "want 3 connect errors:\n%s", r->body);
    cr_assert_not_null(strstr(r->body, "total "), "%s", r->body);
    h_resp_free(r);
    free(q);
    free(url);
    h_assert_serving();
    h_stop();
}

Test(fanout, fanout_calling_fanout_is_refused_by_the_inner_one)
{
    fo_start(NULL);
    char *q = h_fmt("n=2&path=%s", fo_enc("/fanout?n=2"));
    struct h_resp *r = fo_fanout(q, 60000);
    fo_assert_lines(r->body, 2, 508, -1);
    h_resp_free(r);
    free(q);
    h_stop();
}

/* ---- https -------------------------------------------------------------- */

Test(fanout, an_https_target_verified_with_the_test_ca)
{
    FO_REQUIRE_TLS_TOOLS();
    struct fo_tls t;
    fo_nginx_https(&t);
    setenv("COSERVE_FANOUT_CAINFO", t.ca, 1);
    fo_start(NULL);
    /* by name and by address: the certificate names both */
    const char *hosts[] = {"localhost", "127.0.0.1"};
    for (int i = 0; i < 2; i++) {
        char *url = h_fmt("https://%s:%d/fanout.txt", hosts[i], t.port);
        char *q = h_fmt("n=10&show=1&url=%s", fo_enc(url));
        struct h_resp *r = fo_fanout(q, 60000);
        fo_assert_lines(r->body, 10, 200, (long)strlen(FO_MARKER));
        cr_assert_not_null(strstr(r->body, "body 9: coserve fanout over https"),
                           "%s", r->body);
        h_resp_free(r);
        free(q);
        free(url);
    }
    /* a redirect (here to file://) is reported, not followed */
    char *url = h_fmt("https://localhost:%d/redirect", t.port);
    char *q = h_fmt("n=1&url=%s", fo_enc(url));
    struct h_resp *r = fo_fanout(q, 60000);
    fo_assert_lines(r->body, 1, 302, -1);
    h_resp_free(r);
    free(q);
    free(url);
    h_stop();
}

Test(fanout, an_https_target_with_an_unknown_ca_is_refused)
{
    FO_REQUIRE_TLS_TOOLS();
    struct fo_tls t;
    fo_nginx_https(&t);
    unsetenv("COSERVE_FANOUT_CAINFO"); /* the system's CAs only */
    fo_start(NULL);
    char *url = h_fmt("https://localhost:%d/fanout.txt", t.port);
    char *q = h_fmt("n=2&show=1&url=%s", fo_enc(url));
    struct h_resp *r = fo_fanout(q, 60000);
    int errors = 0;
    for (const char *p = r->body; (p = strstr(p, " error: ")); p++)
        errors++;
    cr_assert_eq(errors, 2, "want 2 errors:\n%s", r->body);
    cr_assert_not_null(strstr(r->body, "certificate"), "%s", r->body);
    cr_assert_null(strstr(r->body, "coserve fanout over https"), "%s", r->body);
    h_resp_free(r);
    free(q);
    free(url);
    h_stop();
}

Test(fanout, an_unreadable_cainfo_refuses_the_app_at_start)
{
    setenv("COSERVE_FANOUT_CAINFO", "/nonexistent/ca.pem", 1);
    fo_start(NULL);
    struct h_resp *r = fo_get("/fanout", 404);
    h_resp_free(r);
    cr_assert(h_stderr_has("COSERVE_FANOUT_CAINFO=/nonexistent/ca.pem"), "%s",
              h_stderr_tail(3000));
    h_stop();
}

/* ---- without hooks, and other listeners --------------------------------- */

Test(fanout, with_no_hooks_the_requests_run_one_after_another)
{
    struct du_coserve target;
    fo_target_start(&target, "target", 0, NULL, NULL);
    fo_start(H_ARGS("--no-hooks"));
    char *url = h_fmt("http://127.0.0.1:%d/inflight?ms=20", target.port);
    char *q = h_fmt("n=10&url=%s", fo_enc(url));
    struct h_resp *r = fo_fanout(q, 60000);
    fo_assert_lines(r->body, 10, 200, 3);
    cr_log_info("/fanout?n=10 with --no-hooks against a 20 ms target: "
                "total %lld ms",
                fo_total_ms(r->body));
    long max, total;
    fo_target_stats(&target, &max, &total);
    /* libcurl blocked the worker: each request ended before the next */
    cr_assert_eq(max, 1, "%ld requests overlapped without hooks", max);
    cr_assert_eq(total, 10);
    h_resp_free(r);
    free(q);
    free(url);
    h_stop();
    du_coserve_stop(&target);
}

Test(fanout, on_a_unix_socket_the_target_is_itself_or_from_url_or_the_environment)
{
    struct du_coserve target, on_unix, with_env;
    fo_target_start(&target, "target", 0, NULL, NULL);
    fo_target_start(&on_unix, "unix", 1, NULL, NULL);
    struct du_target t = du_at(&on_unix);
    static const char plain[] = "GET /fanout HTTP/1.1\r\nHost: t\r\n\r\n";
    /* no url=: the server's own /sleep, over its unix socket */
    struct h_resp *r = du_request(&t, plain, strlen(plain), 200);
    fo_assert_lines(r->body, 10, 200, 13);
    h_resp_free(r);
    char *url = h_fmt("http://127.0.0.1:%d/inflight", target.port);
    char *raw = h_fmt("GET /fanout?n=2&url=%s HTTP/1.1\r\nHost: t\r\n\r\n",
                      fo_enc(url));
    r = du_request(&t, raw, strlen(raw), 200);
    fo_assert_lines(r->body, 2, 200, 3);
    h_resp_free(r);
    free(raw);
    /* COSERVE_FANOUT_URL gives the default */
    char *env = h_fmt("COSERVE_FANOUT_URL=%s", url);
    fo_target_start(&with_env, "unix-env", 1, NULL, DU_ARGS(env));
    t = du_at(&with_env);
    r = du_request(&t, plain, strlen(plain), 200);
    fo_assert_lines(r->body, 10, 200, 3);
    h_resp_free(r);
    free(env);
    free(url);
    du_coserve_stop(&with_env);
    du_coserve_stop(&on_unix);
    du_coserve_stop(&target);
}

Test(fanout, a_bad_COSERVE_FANOUT_URL_refuses_the_app_at_start)
{
    setenv("COSERVE_FANOUT_URL", "file:///etc/passwd", 1);
    fo_start(NULL);
    struct h_resp *r = fo_get("/fanout", 404);
    h_resp_free(r);
    cr_assert(h_stderr_has("COSERVE_FANOUT_URL=file:///etc/passwd: url "
                           "scheme refused"),
              "%s", h_stderr_tail(3000));
    h_stop();
}

/* A cancelled fanout (here: the grace period of a stop ran out) cancels
 * its children, and libcurl gives up at once rather than at its own
 * timeout: the worker could not exit while one of them still ran. */
Test(fanout, a_cancelled_fanout_aborts_its_transfers)
{
    struct du_coserve target;
    fo_target_start(&target, "target", 0, DU_ARGS("--graceful-timeout", "1s"),
                    NULL);
    fo_start(H_ARGS("--graceful-timeout", "1s"));
    struct h_conn *f = h_connect();
    /* ten requests held at a gate that never opens, a minute's timeout */
    char *url = h_fmt("http://127.0.0.1:%d/inflight?gate=11&wait_ms=60000",
                      target.port);
    char *raw = h_fmt("GET /fanout?n=10&timeout_ms=60000&url=%s HTTP/1.1\r\n"
                      "Host: t\r\n\r\n",
                      fo_enc(url));
    h_sends(f, raw);
    free(raw);
    free(url);
    struct du_target t = du_at(&target);
    static const char stats[] =
        "GET /inflight/stats HTTP/1.1\r\nHost: t\r\n\r\n";
    int64_t end = h_now_ms() + H_GUARD_MS;
    for (;;) {
        struct h_resp *r = du_request(&t, stats, strlen(stats), 200);
        int all = strncmp(r->body, "now=10 ", 7) == 0;
        h_resp_free(r);
        if (all)
            break;
        cr_assert(h_now_ms() < end, "the ten requests did not all arrive");
        h_sleep_ms(10);
    }
    /* stop: after 1 s of grace the fanout is cancelled, well before the
     * transfers' own minute is up; h_stop allows 15 s */
    h_stop();
    cr_assert(h_stderr_has("grace period over: cancelling 1 requests"), "%s",
              h_stderr_tail(3000));
    h_close(f);
    du_coserve_stop(&target);
}
