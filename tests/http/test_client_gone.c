/*
 * test_client_gone.c - a client that leaves while its handler waits: the
 * handler's coroutine is cancelled, so even a plain blocking call made
 * cooperative by the hooks (usleep here) returns -1 with ECANCELED at
 * once instead of working for nobody, and the access log says 499.
 */
#include "harness.h"

TestSuite(gone, .init = h_setup, .fini = h_teardown, .timeout = 60);

/* /naps/last's field (an int), fetched now. */
static int naps_field(const char *key)
{
    struct h_resp *r =
        h_request("GET /naps/last HTTP/1.1\r\nHost: t\r\n\r\n", 0, 200);
    char pat[32];
    snprintf(pat, sizeof pat, "%s=", key);
    const char *p = strstr(r->body, pat);
    cr_assert_not_null(p, "no %s in '%s'", key, r->body);
    int v = atoi(p + strlen(pat));
    h_resp_free(r);
    return v;
}

/* Waits (bounded by the guard) until /naps/last's key reaches want. */
static int naps_wait(const char *key, int want)
{
    int64_t end = h_now_ms() + H_GUARD_MS;
    int v;
    while ((v = naps_field(key)) < want && h_now_ms() < end)
        h_sleep_ms(20);
    return v;
}

Test(gone, a_client_that_leaves_cancels_its_handlers_blocking_call)
{
    char src[PATH_MAX], dst[300];
    cr_assert_not_null(
        realpath(h_env("COSERVE_TEST_APPS", "build/test-apps"), src));
    strcat(src, "/naps.so");
    snprintf(dst, sizeof dst, "%s/naps.so", h_srv.apps);
    mkdir(h_srv.apps, 0755);
    cr_assert_eq(symlink(src, dst), 0, "symlink %s: %s", dst, strerror(errno));
    h_start(H_ARGS("--workers", "1", "--apps", h_srv.apps));
    struct h_conn *c = h_connect();
    /* a minute: only the cancel can end it within the guard */
    h_sends(c, "GET /naps?ms=60000 HTTP/1.1\r\nHost: t\r\n\r\n");
    cr_assert_eq(naps_wait("started", 1), 1);
    h_close(c);
    cr_assert_eq(naps_wait("done", 1), 1, "the nap was not cut short");
    cr_assert_eq(naps_field("rc"), -1);
    cr_assert_eq(naps_field("errno"), ECANCELED);
    /* the access log is written as the request ends */
    int64_t end = h_now_ms() + H_GUARD_MS;
    char *log = NULL;
    while (h_now_ms() < end) {
        free(log);
        log = h_read_file(h_srv.log_path, NULL);
        if (log && strstr(log, "/naps?ms=60000"))
            break;
        h_sleep_ms(20);
    }
    cr_assert(log && strstr(log, "\"GET /naps?ms=60000 HTTP/1.1\" 499 "),
              "access log:\n%s", log ? log : "(none)");
    free(log);
    cr_assert_null(h_log_problem(), "%s", h_stderr_tail(2000));
}

Test(gone, a_half_close_after_a_body_still_gets_no_cancel_while_reading)
{
    /* a client that half-closes after sending a complete request whose
     * body the handler has not read yet is not taken for gone: the EOF
     * belongs to the body reader */
    h_start(H_ARGS("--workers", "1"));
    struct h_conn *c = h_connect();
    h_sends(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
               "Connection: close\r\n\r\nhello");
    h_shutdown_write(c);
    struct h_resp *r = h_response(c, 0);
    cr_assert_eq(r->status, 200);
    cr_assert_str_eq(r->body, "hello");
    h_resp_free(r);
    h_close(c);
}
