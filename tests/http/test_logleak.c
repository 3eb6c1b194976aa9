/*
 * test_logleak.c - nothing but a request's own bytes reaches its access
 * log line. Heads are parsed in pooled buffers: a refused head is not
 * NUL-terminated, and what lies past it in the buffer is an earlier
 * client's request (its Authorization header, say).
 */
#include "harness.h"

TestSuite(logleak, .init = h_setup, .fini = h_teardown, .timeout = 60);

static char *wait_log_lines(int want)
{
    int64_t end = h_now_ms() + H_GUARD_MS;
    for (;;) {
        char *log = h_read_file(h_srv.log_path, NULL);
        int n = 0;
        for (const char *p = log; p && (p = strchr(p, '\n')); p++)
            n++;
        if (n >= want || h_now_ms() > end)
            return log;
        free(log);
        h_sleep_ms(20);
    }
}

Test(logleak, a_refused_request_logs_only_its_own_bytes)
{
    h_start(H_ARGS("--workers", "1"));
    /* Alice's request fills the pooled buffer with her secret, far out */
    char *pad = malloc(6000);
    memset(pad, 'p', 5999);
    pad[5999] = '\0';
    char *alice = h_fmt("GET /hello HTTP/1.1\r\nHost: t\r\nX-Pad: %s\r\n"
                        "Authorization: Bearer ALICE-TOKEN-123\r\n\r\n",
                        pad);
    free(pad);
    static const char *const refused[] = {
        "GET /a\x01zz HTTP/1.1\r\nHost: t\r\n\r\n", /* bad byte in target */
        "GET /b HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n",
        "GET /c HTTP/1.1\r\nHost: t\r\n x-fold: yes\r\n\r\n",
        "GET /d HTTP/1.1\r\n\r\n", /* no Host */
        "BAD\x7f /e HTTP/1.1\r\nHost: t\r\n\r\n",
    };
    int n = (int)(sizeof refused / sizeof *refused);
    for (int i = 0; i < n; i++) {
        struct h_resp *r = h_request(alice, 0, 200);
        h_resp_free(r);
        struct h_conn *c = h_connect();
        h_sends(c, refused[i]);
        r = h_response(c, 0);
        cr_assert_eq(r->status, 400, "refused[%d] got %d", i, r->status);
        h_resp_free(r);
        h_close(c);
    }
    /* and a URI too long, then a head too large */
    char *big = malloc(20000);
    memset(big, 'u', 19999);
    big[19999] = '\0';
    char *uri = h_fmt("GET /%s HTTP/1.1\r\nHost: t\r\n\r\n", big);
    char *head = h_fmt("GET /f HTTP/1.1\r\nHost: t\r\nX-Big: %s\r\n\r\n", big);
    free(big);
    const char *const large[] = {uri, head};
    for (int i = 0; i < 2; i++) {
        struct h_resp *r = h_request(alice, 0, 200);
        h_resp_free(r);
        struct h_conn *c = h_connect();
        h_try_send(c, large[i], strlen(large[i]));
        r = h_response(c, 0);
        cr_assert(r->status == 414 || r->status == 431, "got %d", r->status);
        h_resp_free(r);
        h_close(c);
    }
    free(uri);
    free(head);
    free(alice);
    char *log = wait_log_lines(2 * (n + 2));
    cr_assert_not_null(log);
    cr_assert_null(strstr(log, "ALICE"), "a secret leaked into the log:\n%s",
                   log);
    cr_assert_null(strstr(log, "ppppppppp"), "another request's bytes:\n%s",
                   log);
    /* a refused line still holds its own target */
    cr_assert_not_null(strstr(log, " /b HTTP/1.1\" 400 "), "%s", log);
    free(log);
}
