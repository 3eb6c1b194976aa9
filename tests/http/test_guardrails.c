/*
 * test_guardrails.c - the response API's guard rails, against the misuse
 * app (tests/apps/misuse): a second co_res_send fails with EALREADY and is
 * logged; a header or status after the head went out fails with EALREADY;
 * a request or response used after its handler returned aborts the worker
 * with a message naming the app (the master replaces it); a handler that
 * returns -1 after its response started is logged as an error and the
 * access log keeps what the client got. In every case the client gets one
 * well-formed response or a clean close, never two heads or a mixed body,
 * and a correct app on the same server is unaffected.
 */
#include "harness.h"

TestSuite(guardrails, .fini = h_teardown, .timeout = 60);

#define GET_HELLO "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n"

static void link_app(const char *env, const char *def, const char *name)
{
    char rel[PATH_MAX], target[PATH_MAX], link[PATH_MAX];
    snprintf(rel, sizeof rel, "%s/%s.so", h_env(env, def), name);
    cr_assert_not_null(realpath(rel, target), "%s: %s (run `make apps`)", rel,
                       strerror(errno));
    snprintf(link, sizeof link, "%s/%s.so", h_srv.apps, name);
    cr_assert_eq(symlink(target, link), 0, "symlink %s: %s", link,
                 strerror(errno));
}

/* One worker, so a kept pointer and the next request meet in one process. */
static void start_misuse(void)
{
    h_setup();
    link_app("COSERVE_TEST_APPS", "build/test-apps", "misuse");
    link_app("COSERVE_APPS", "build/apps", "hello");
    h_start(H_ARGS("--workers", "1", "--apps", h_srv.apps));
}

static struct h_resp *misuse_get(const char *route, int want)
{
    char raw[256];
    snprintf(raw, sizeof raw, "GET /misuse/%s HTTP/1.1\r\nHost: t\r\n\r\n",
             route);
    return h_request(raw, 0, want);
}

/* Waits until the access log has a line containing needle; returns the
 * log (malloc'd). */
static char *wait_access_log(const char *needle)
{
    int64_t end = h_now_ms() + H_GUARD_MS;
    char *log = NULL;
    for (;;) {
        free(log);
        log = h_read_file(h_srv.log_path, NULL);
        if ((log && strstr(log, needle)) || h_now_ms() > end)
            return log;
        h_sleep_ms(20);
    }
}

/* Stops a server whose worker the test killed on purpose: exit status 0,
 * no sanitizer report, but "fatal:" and "killed by signal" are expected. */
static void stop_after_deaths(void)
{
    pid_t pid = h_srv.pid;
    kill(pid, SIGTERM);
    int status = 0;
    int64_t end = h_now_ms() + H_STOP_MS;
    while (waitpid(pid, &status, WNOHANG) != pid) {
        cr_assert(h_now_ms() < end, "the server did not stop");
        h_sleep_ms(5);
    }
    h_srv.pid = -1;
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status 0x%x:\n%s",
              status, h_stderr_tail(4000));
    static const char *const bad[] = {"ERROR: AddressSanitizer",
                                      "ERROR: LeakSanitizer", "runtime error:"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert(!h_stderr_has(bad[i]), "the log says %s:\n%s", bad[i],
                  h_stderr_tail(4000));
}

Test(guardrails, a_second_send_fails_with_ealready_and_the_first_stands)
{
    start_misuse();
    struct h_resp *r = misuse_get("twice", 200);
    /* one head, one Content-Type, the first body; the app's report of what
     * its second call returned follows (writes after a send append) */
    int types = 0;
    for (int i = 0; i < r->nheaders; i++)
        types += strcasecmp(r->names[i], "Content-Type") == 0;
    cr_assert_eq(types, 1, "head:\n%s", r->head);
    cr_assert_str_eq(h_header(r, "Content-Type"), "text/plain");
    cr_assert_str_eq(r->body, "first\nsecond send: -1 EALREADY\n");
    h_resp_free(r);
    cr_assert(h_wait_stderr("app misuse: co_res_send called again on GET "
                            "/misuse/twice",
                            H_GUARD_MS),
              "%s", h_stderr_tail(2000));
    h_assert_serving();
    h_stop();
}

Test(guardrails, a_header_status_or_send_after_the_head_went_out_is_ealready)
{
    start_misuse();
    struct h_resp *r = misuse_get("header_after_head", 200);
    cr_assert(r->chunked);
    cr_assert_null(h_header(r, "X-Late"));
    cr_assert_str_eq(r->body, "streamed\nheader: -1 EALREADY\n"
                              "status: -1 EALREADY\nsend: -1 EALREADY\n");
    h_resp_free(r);
    h_stop();
}

Test(guardrails, minus_one_after_a_flush_is_an_error_and_logged_as_sent)
{
    start_misuse();
    struct h_conn *c = h_connect();
    h_sends(c, "GET /misuse/fail_after_flush HTTP/1.1\r\nHost: t\r\n\r\n");
    struct h_resp r;
    char why[512];
    int rc = h_read_response(c, &r, 0, H_GUARD_MS, why, sizeof why);
    /* one head (200, chunked), the flushed part, no last chunk, a close */
    cr_assert_eq(rc, -1, "the cut response looked complete");
    cr_assert(c->eof, "the connection stayed open: %s", why);
    cr_assert(strncmp(c->buf, "HTTP/1.1 200", 12) == 0, "%.200s", c->buf);
    cr_assert_not_null(strstr(c->buf, "partial body "));
    cr_assert_null(strstr(c->buf + 12, "HTTP/1.1"), "a second head: %s",
                   c->buf);
    h_close(c);
    cr_assert(h_wait_stderr("error: app misuse failed on GET "
                            "/misuse/fail_after_flush after its response "
                            "started (status 200, 13 body bytes sent): "
                            "Input/output error",
                            H_GUARD_MS),
              "%s", h_stderr_tail(2000));
    char *log = wait_access_log("/misuse/fail_after_flush");
    cr_assert(log && strstr(log, "\"GET /misuse/fail_after_flush HTTP/1.1\" "
                                 "200 13 "),
              "access log:\n%s", log ? log : "(none)");
    free(log);
    h_assert_serving();
    h_stop();
}

Test(guardrails, minus_one_after_a_send_not_yet_sent_is_still_a_clean_500)
{
    start_misuse();
    struct h_resp *r = misuse_get("fail_after_send", 500);
    cr_assert_null(strstr(r->body, "unsent"), "%s", r->body);
    cr_assert_str_eq(h_header(r, "Content-Type"), "text/plain; charset=utf-8");
    h_resp_free(r);
    cr_assert(h_wait_stderr("app misuse failed on GET /misuse/fail_after_send",
                            H_GUARD_MS));
    h_stop();
}

Test(guardrails, children_and_pool_members_use_the_request_while_it_waits)
{
    start_misuse();
    struct h_resp *r = misuse_get("children", 200);
    cr_assert_str_eq(r->body, "child 1: GET /misuse/children\n"
                              "child 2: GET /misuse/children\n"
                              "pool: t t\n");
    h_resp_free(r);
    h_stop(); /* no fatal line, no dead worker */
}

/* The route's response arrives whole (the abort comes after the handler
 * returned), then the worker dies naming the app and a new one serves. */
static void expect_abort(const char *route, const char *message)
{
    start_misuse();
    struct h_resp *r = misuse_get(route, 200);
    cr_assert_str_eq(r->body, "returned\n");
    h_resp_free(r);
    cr_assert(h_wait_stderr(message, H_GUARD_MS), "want \"%s\":\n%s", message,
              h_stderr_tail(3000));
    cr_assert(h_wait_stderr("killed by signal 6", H_GUARD_MS), "%s",
              h_stderr_tail(3000));
    cr_assert(!h_stderr_has("misuse: the late"), "the late call returned:\n%s",
              h_stderr_tail(3000));
    /* the master replaced the worker */
    int64_t end = h_now_ms() + H_GUARD_MS;
    while (h_stderr_count("serving on") < 2 && h_now_ms() < end)
        h_sleep_ms(10);
    h_assert_serving();
    stop_after_deaths();
}

Test(guardrails, a_response_written_after_its_handler_returned_aborts)
{
    expect_abort("after", "fatal: app misuse: co_res_write called after its "
                          "handler returned");
}

Test(guardrails, a_request_read_after_its_handler_returned_aborts)
{
    expect_abort("after_req", "fatal: app misuse: co_req_path called after "
                              "its handler returned");
}

Test(guardrails, a_kept_response_used_during_a_later_request_aborts)
{
    start_misuse();
    struct h_resp *r = misuse_get("keep", 200);
    cr_assert_str_eq(r->body, "kept\n");
    h_resp_free(r);
    /* /release wakes the kept coroutine while its own handler runs, maybe
     * in the very record /keep had: the stale write must not land in it */
    struct h_conn *c = h_connect();
    h_sends(c, "GET /misuse/release HTTP/1.1\r\nHost: t\r\n\r\n");
    /* the worker dies in /release's handler or just after it: the client
     * gets a clean close or /release's own response, never the stale bytes */
    struct h_resp got;
    char why[512];
    int rc = h_read_response(c, &got, 0, H_GUARD_MS, why, sizeof why);
    cr_assert(rc == 0 || (rc == 1 && got.status == 200 &&
                          strcmp(got.body, "released\n") == 0),
              "rc %d (%s): %.300s", rc, why, c->buf ? c->buf : "");
    cr_assert(!c->buf || !strstr(c->buf, "stale"), "%s", c->buf);
    if (rc == 1) {
        free(got.head);
        free(got.lines);
        free(got.body);
        free(got.trailers);
    }
    h_close(c);
    cr_assert(
        h_wait_stderr("fatal: app misuse: co_res_write called ", H_GUARD_MS),
        "%s", h_stderr_tail(3000));
    cr_assert(!h_stderr_has("misuse: the stale write returned"), "%s",
              h_stderr_tail(3000));
    int64_t end = h_now_ms() + H_GUARD_MS;
    while (h_stderr_count("serving on") < 2 && h_now_ms() < end)
        h_sleep_ms(10);
    h_assert_serving();
    stop_after_deaths();
}
