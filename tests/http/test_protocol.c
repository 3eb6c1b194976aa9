/*
 * test_protocol.c - HTTP/1.x as the real server speaks it: keep-alive,
 * pipelining, HEAD, 100-continue, chunked bodies both ways, HTTP/1.0,
 * Connection: close, the Date and Server headers, 404.
 *
 * Every test starts its own server (harness.h) and ends with h_stop(), which
 * asserts the server exits 0 (so sanitizer reports fail the test).
 */
#include "harness.h"

TestSuite(protocol, .fini = h_teardown, .timeout = 60);

#define HELLO "Hello, World!\n"
#define GET_HELLO "GET /hello HTTP/1.1\r\nHost: test\r\n\r\n"

/* Asserts r is the hello app's 200. */
static void assert_hello(const struct h_resp *r)
{
    cr_assert_eq(r->status, 200, "status %d:\n%s", r->status, r->head);
    cr_assert_str_eq(r->body, HELLO);
    cr_assert_str_eq(h_header(r, "Content-Length"), "14");
}

Test(protocol, get_hello_answers_200_with_the_greeting)
{
    h_start(NULL);
    struct h_resp *r = h_request(GET_HELLO, 0, 200);
    assert_hello(r);
    const char *type = h_header(r, "Content-Type");
    cr_assert_not_null(type);
    cr_assert(strncmp(type, "text/plain", 10) == 0, "Content-Type %s", type);
    cr_assert_null(h_header(r, "Transfer-Encoding"));
    cr_assert_eq(r->minor, 1, "the server answers HTTP/1.1");
    h_resp_free(r);
    h_stop();
}

Test(protocol, two_requests_share_one_keep_alive_connection)
{
    h_start(NULL);
    struct h_conn *c = h_connect();
    for (int i = 0; i < 2; i++) {
        h_sends(c, GET_HELLO);
        struct h_resp *r = h_response(c, 0);
        assert_hello(r);
        cr_assert(!h_header_has_token(r, "Connection", "close"),
                  "request %d: the server wants to close", i);
        h_resp_free(r);
    }
    /* still open: a third request on it works too */
    h_assert_open(c, 100);
    h_sends(c, GET_HELLO);
    struct h_resp *r = h_response(c, 0);
    assert_hello(r);
    h_resp_free(r);
    h_close(c);
    h_stop();
}

Test(protocol, pipelined_requests_are_answered_in_order)
{
    h_start(NULL);
    struct h_conn *c = h_connect();
    /* a slow one first: its answer must still come first */
    const char *all = "GET /sleep?ms=50 HTTP/1.1\r\nHost: t\r\n\r\n" GET_HELLO
                      "GET /no/such/thing HTTP/1.1\r\nHost: t\r\n\r\n"
                      "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                      "\r\nfirst"
                      "HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\n"
                      "POST /echo HTTP/1.1\r\nHost: t\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n"
                      "6\r\nsecond\r\n0\r\n\r\n" GET_HELLO;
    h_sends(c, all);
    struct h_resp *r = h_response(c, 0);
    cr_assert_eq(r->status, 200);
    cr_assert_str_eq(r->body, "slept 50 ms\n");
    h_resp_free(r);
    r = h_response(c, 0);
    assert_hello(r);
    h_resp_free(r);
    r = h_response(c, 0);
    cr_assert_eq(r->status, 404);
    h_resp_free(r);
    r = h_response(c, 0);
    cr_assert_eq(r->status, 200);
    cr_assert_str_eq(r->body, "first");
    h_resp_free(r);
    r = h_response(c, H_HEAD);
    cr_assert_eq(r->status, 200);
    cr_assert_str_eq(h_header(r, "Content-Length"), "14");
    h_resp_free(r);
    r = h_response(c, 0);
    cr_assert_eq(r->status, 200);
    cr_assert_str_eq(r->body, "second");
    h_resp_free(r);
    r = h_response(c, 0);
    assert_hello(r);
    h_resp_free(r);
    /* nothing extra, connection still usable */
    h_assert_open(c, 100);
    h_close(c);
    h_stop();
}

Test(protocol, many_pipelined_requests_in_one_write_all_get_answers)
{
    h_start(NULL);
    struct h_conn *c = h_connect();
    enum { N = 200 };
    size_t one = strlen(GET_HELLO);
    char *all = malloc(one * N + 1);
    for (int i = 0; i < N; i++)
        memcpy(all + one * i, GET_HELLO, one);
    h_send(c, all, one * N);
    free(all);
    for (int i = 0; i < N; i++) {
        struct h_resp *r = h_response(c, 0);
        assert_hello(r);
        h_resp_free(r);
    }
    h_assert_open(c, 100);
    h_close(c);
    h_stop();
}

/* Asserts HEAD's headers equal GET's, Date aside (it may tick). */
static void assert_same_headers(const struct h_resp *get,
                                const struct h_resp *head)
{
    cr_assert_eq(get->nheaders, head->nheaders, "GET:\n%s\nHEAD:\n%s",
                 get->head, head->head);
    for (int i = 0; i < get->nheaders; i++) {
        cr_assert_str_eq(get->names[i], head->names[i]);
        if (strcasecmp(get->names[i], "Date") != 0)
            cr_assert_str_eq(get->values[i], head->values[i],
                             "header %s differs", get->names[i]);
    }
}

/* GET then HEAD of target on one connection, then GET again: the HEAD must
 * carry no body bytes (the third response would not parse otherwise). */
static void check_head(const char *target)
{
    struct h_conn *c = h_connect();
    char *get = h_fmt("GET %s HTTP/1.1\r\nHost: t\r\n\r\n", target);
    char *head = h_fmt("HEAD %s HTTP/1.1\r\nHost: t\r\n\r\n", target);
    h_sends(c, get);
    struct h_resp *g = h_response(c, 0);
    cr_assert_eq(g->status, 200, "GET %s: %d", target, g->status);
    cr_assert(g->body_len > 0);
    h_sends(c, head);
    struct h_resp *h = h_response(c, H_HEAD);
    cr_assert_eq(h->status, 200);
    assert_same_headers(g, h);
    char cl[32];
    snprintf(cl, sizeof cl, "%zu", g->body_len);
    cr_assert_str_eq(h_header(h, "Content-Length"), cl,
                     "HEAD keeps the Content-Length of GET");
    cr_assert_eq(c->len, 0, "bytes after the HEAD response: %.100s", c->buf);
    h_sends(c, get);
    struct h_resp *g2 = h_response(c, 0);
    cr_assert_eq(g2->status, 200);
    cr_assert_eq(g2->body_len, g->body_len);
    cr_assert(memcmp(g2->body, g->body, g->body_len) == 0);
    h_resp_free(g);
    h_resp_free(h);
    h_resp_free(g2);
    free(get);
    free(head);
    h_close(c);
}

Test(protocol, head_on_an_app_sends_the_get_headers_and_no_body)
{
    h_start(NULL);
    check_head("/hello");
    h_stop();
}

Test(protocol, head_on_a_static_file_sends_the_get_headers_and_no_body)
{
    h_start(NULL);
    check_head("/hello.txt");
    check_head("/");
    h_stop();
}

Test(protocol, expect_100_continue_gets_an_interim_response_before_the_body)
{
    h_start(NULL);
    struct h_conn *c = h_connect();
    h_sends(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n"
               "Content-Type: text/x-test\r\nExpect: 100-continue\r\n\r\n");
    /* the body is held back until the server asks for it */
    struct h_resp *r = h_response(c, 0);
    cr_assert_eq(r->status, 100, "want 100 Continue first, got:\n%s", r->head);
    cr_assert_str_eq(r->head, "HTTP/1.1 100 Continue\r\n\r\n");
    h_resp_free(r);
    h_sends(c, "hello world");
    r = h_response(c, 0);
    cr_assert_eq(r->status, 200);
    cr_assert_str_eq(r->body, "hello world");
    cr_assert_str_eq(h_header(r, "Content-Type"), "text/x-test");
    h_resp_free(r);
    /* the connection is reusable */
    h_sends(c, GET_HELLO);
    r = h_response(c, 0);
    assert_hello(r);
    h_resp_free(r);
    h_close(c);
    h_stop();
}

Test(protocol, expect_100_continue_is_not_sent_when_the_app_never_reads)
{
    h_start(NULL);
    struct h_conn *c = h_connect();
    /* /hello refuses POST without reading: a final status, no 100 */
    h_sends(c, "POST /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
               "Expect: 100-continue\r\n\r\n");
    struct h_resp *r = h_response(c, 0);
    cr_assert_eq(r->status, 405, "got:\n%s", r->head);
    h_resp_free(r);
    /* the body was never sent, so the server cannot reuse the connection
     * (it would read the body as a request); it must close it */
    int rc = h_wait_eof(c, H_GUARD_MS);
    cr_assert_eq(rc, 1, "the connection should close cleanly (rc %d): %.200s",
                 rc, c->buf);
    h_close(c);
    h_stop();
}

Test(protocol, chunked_request_body_with_extensions_and_trailers_is_decoded)
{
    h_start(NULL);
    struct h_conn *c = h_connect();
    h_sends(c, "POST /echo HTTP/1.1\r\nHost: t\r\n"
               "Transfer-Encoding: chunked\r\n\r\n"
               "5;name=value\r\nhello\r\n"
               "1;ext;other=\"quoted ; string\"\r\n \r\n"
               "A\r\n0123456789\r\n"
               "a \r\nABCDEFGHIJ\r\n"
               "0;last\r\nX-Trailer: one\r\nX-Other: two\r\n\r\n");
    struct h_resp *r = h_response(c, 0);
    cr_assert_eq(r->status, 200, "got:\n%s%s", r->head, r->body);
    cr_assert_str_eq(r->body, "hello 0123456789ABCDEFGHIJ");
    h_resp_free(r);
    /* the trailers were consumed: the next request parses */
    h_sends(c, GET_HELLO);
    r = h_response(c, 0);
    assert_hello(r);
    h_resp_free(r);
    h_close(c);
    h_stop();
}

Test(protocol, chunked_request_body_arriving_byte_by_byte_is_decoded)
{
    h_start(NULL);
    struct h_conn *c = h_connect();
    h_sends(c, "POST /echo HTTP/1.1\r\nHost: t\r\n"
               "Transfer-Encoding: chunked\r\n\r\n");
    const char *body = "3;x=y\r\nabc\r\n4\r\ndefg\r\n0\r\nT: v\r\n\r\n";
    for (const char *p = body; *p; p++) {
        h_send(c, p, 1);
        h_sleep_ms(2);
    }
    struct h_resp *r = h_response(c, 0);
    cr_assert_eq(r->status, 200);
    cr_assert_str_eq(r->body, "abcdefg");
    h_resp_free(r);
    h_close(c);
    h_stop();
}

/* Sends n random bytes to /echo as chunks of varying sizes and checks the
 * echo is byte-identical and validly framed. */
static void check_big_chunked_echo(size_t n)
{
    char *data = malloc(n);
    h_fill_random(data, n, 12345);
    struct h_conn *c = h_connect();
    h_sends(c, "POST /echo HTTP/1.1\r\nHost: t\r\n"
               "Content-Type: application/x-test\r\n"
               "Transfer-Encoding: chunked\r\n\r\n");
    size_t off = 0, step = 1;
    while (off < n) {
        size_t k = step < n - off ? step : n - off;
        char size[32];
        int sl = snprintf(size, sizeof size, "%zx\r\n", k);
        h_send(c, size, (size_t)sl);
        h_send(c, data + off, k);
        h_send(c, "\r\n", 2);
        off += k;
        step = step * 3 + 7;
        if (step > 40000)
            step = 1;
    }
    h_sends(c, "0\r\n\r\n");
    struct h_resp *r = h_response(c, 0);
    cr_assert_eq(r->status, 200);
    cr_assert(r->chunked || r->content_length >= 0,
              "the response is framed by neither Content-Length nor chunked:"
              "\n%s",
              r->head);
    cr_assert_eq(r->body_len, n, "echoed %zu bytes of %zu", r->body_len, n);
    cr_assert(memcmp(r->body, data, n) == 0, "the echo differs");
    cr_assert_str_eq(h_header(r, "Content-Type"), "application/x-test");
    h_resp_free(r);
    /* after the last chunk the connection is still good */
    h_sends(c, GET_HELLO);
    r = h_response(c, 0);
    assert_hello(r);
    h_resp_free(r);
    h_close(c);
    free(data);
}

Test(protocol, streamed_echo_of_a_large_chunked_body_is_valid_and_identical)
{
    h_start(NULL);
    check_big_chunked_echo(100 * 1024);
    check_big_chunked_echo(3 * 1024 * 1024 + 17);
    h_stop();
}

Test(protocol, streamed_echo_of_a_large_body_is_chunked_and_identical)
{
    h_start(NULL);
    /* a chunked upload past what echo holds before answering (4 MiB): it
     * streams the rest, and with no length known the only HTTP/1.1 framing
     * is chunked */
    size_t n = 5 * 1024 * 1024 + 3;
    char *data = malloc(n);
    h_fill_random(data, n, 99);
    struct h_conn *c = h_connect();
    char *head = h_fmt("POST /echo HTTP/1.1\r\nHost: t\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n%zx\r\n",
                       n);
    h_sends(c, head);
    h_send(c, data, n);
    h_sends(c, "\r\n0\r\n\r\n");
    struct h_resp *r = h_response(c, 0);
    cr_assert_eq(r->status, 200);
    cr_assert(r->chunked, "want a chunked response:\n%s", r->head);
    cr_assert_eq(r->body_len, n);
    cr_assert(memcmp(r->body, data, n) == 0, "the echo differs");
    h_resp_free(r);
    free(head);
    h_close(c);
    free(data);
    h_stop();
}

Test(protocol, echo_of_a_large_content_length_body_keeps_that_length)
{
    h_start(NULL);
    size_t n = 200 * 1024 + 5;
    char *data = malloc(n);
    h_fill_random(data, n, 7);
    struct h_conn *c = h_connect();
    char *head = h_fmt(
        "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n\r\n", n);
    h_sends(c, head);
    h_send(c, data, n);
    struct h_resp *r = h_response(c, 0);
    cr_assert_eq(r->status, 200);
    cr_assert_eq(r->content_length, (long long)n, "head:\n%s", r->head);
    cr_assert_eq(r->body_len, n);
    cr_assert(memcmp(r->body, data, n) == 0, "the echo differs");
    h_resp_free(r);
    h_sends(c, GET_HELLO);
    r = h_response(c, 0);
    assert_hello(r);
    h_resp_free(r);
    free(head);
    h_close(c);
    free(data);
    h_stop();
}

Test(protocol, http_1_0_request_gets_the_body_and_the_connection_closes)
{
    h_start(NULL);
    struct h_conn *c = h_connect();
    h_sends(c, "GET /hello HTTP/1.0\r\n\r\n");
    struct h_resp *r = h_response(c, 0);
    cr_assert_eq(r->status, 200);
    cr_assert_str_eq(r->body, HELLO);
    cr_assert(h_header_has_token(r, "Connection", "close"), "head:\n%s",
              r->head);
    h_resp_free(r);
    h_assert_closed(c);
    h_close(c);
    h_stop();
}

Test(protocol, http_1_0_keep_alive_is_honoured_when_asked_for)
{
    h_start(NULL);
    struct h_conn *c = h_connect();
    for (int i = 0; i < 2; i++) {
        h_sends(c, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        struct h_resp *r = h_response(c, 0);
        assert_hello(r);
        cr_assert(h_header_has_token(r, "Connection", "keep-alive"),
                  "head:\n%s", r->head);
        h_resp_free(r);
    }
    h_close(c);
    h_stop();
}

Test(protocol, http_1_0_post_is_echoed_without_chunked_encoding_then_closed)
{
    h_start(NULL);
    size_t n = 50 * 1024;
    char *data = malloc(n);
    h_fill_random(data, n, 5);
    struct h_conn *c = h_connect();
    char *head = h_fmt("POST /echo HTTP/1.0\r\nContent-Length: %zu\r\n\r\n", n);
    h_sends(c, head);
    h_send(c, data, n);
    struct h_resp *r = h_response(c, 0);
    cr_assert_eq(r->status, 200);
    cr_assert(!r->chunked, "chunked is not HTTP/1.0");
    cr_assert_eq(r->body_len, n);
    cr_assert(memcmp(r->body, data, n) == 0);
    h_resp_free(r);
    h_assert_closed(c);
    h_close(c);
    free(head);
    free(data);
    h_stop();
}

Test(protocol, connection_close_from_the_client_is_answered_and_honoured)
{
    h_start(NULL);
    struct h_conn *c = h_connect();
    /* a second request pipelined behind "close" must not be served */
    h_sends(c, "GET /hello HTTP/1.1\r\nHost: t\r\nConnection: "
               "close\r\n\r\n" GET_HELLO);
    struct h_resp *r = h_response(c, 0);
    assert_hello(r);
    cr_assert(h_header_has_token(r, "Connection", "close"),
              "the server should say it closes:\n%s", r->head);
    h_resp_free(r);
    h_assert_closed(c);
    h_close(c);
    h_stop();
}

Test(protocol, the_server_says_connection_close_whenever_it_closes)
{
    h_start(NULL);
    /* an error the server closes after */
    struct h_conn *c = h_connect();
    h_sends(c, "GET /hello HTTP/1.1\r\n\r\n"); /* no Host: 400 */
    struct h_resp *r = h_response(c, 0);
    cr_assert_eq(r->status, 400);
    cr_assert(h_header_has_token(r, "Connection", "close"), "head:\n%s",
              r->head);
    h_resp_free(r);
    h_assert_closed(c);
    h_close(c);
    /* and a response that keeps the connection does not say close */
    c = h_connect();
    h_sends(c, GET_HELLO);
    r = h_response(c, 0);
    cr_assert(!h_header_has_token(r, "Connection", "close"));
    h_resp_free(r);
    h_assert_open(c, 100);
    h_close(c);
    h_stop();
}

Test(protocol, a_client_half_close_after_its_request_still_gets_the_answer)
{
    h_start(NULL);
    struct h_conn *c = h_connect();
    h_sends(c, GET_HELLO);
    h_shutdown_write(c);
    struct h_resp *r = h_response(c, 0);
    assert_hello(r);
    h_resp_free(r);
    h_assert_closed(c);
    h_close(c);
    h_stop();
}

/* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
static int is_imf_fixdate(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    return end && *end == '\0' && strlen(s) == 29;
}

Test(protocol, responses_carry_date_and_server_headers)
{
    h_start(NULL);
    const char *reqs[] = {GET_HELLO, "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n",
                          "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n",
                          "GET /hello HTTP/1.1\r\n\r\n"};
    for (size_t i = 0; i < sizeof reqs / sizeof *reqs; i++) {
        struct h_resp *r = h_request(reqs[i], 0, 0);
        const char *date = h_header(r, "Date");
        cr_assert_not_null(date, "no Date in:\n%s", r->head);
        cr_assert(is_imf_fixdate(date), "Date '%s' is not an IMF-fixdate",
                  date);
        cr_assert_eq(h_header_count(r, "Date"), 1);
        const char *server = h_header(r, "Server");
        cr_assert_not_null(server, "no Server in:\n%s", r->head);
        cr_assert(strstr(server, "coserve") != NULL, "Server: %s", server);
        cr_assert_eq(h_header_count(r, "Server"), 1);
        h_resp_free(r);
    }
    h_stop();
}

Test(protocol, an_unknown_path_gets_404)
{
    h_start(NULL);
    struct h_resp *r =
        h_request("GET /no-such-page HTTP/1.1\r\nHost: t\r\n\r\n", 0, 404);
    h_resp_free(r);
    r = h_request("GET /hello/deeper HTTP/1.1\r\nHost: t\r\n\r\n", 0, 404);
    h_resp_free(r);
    /* and with static files off the front end's own 404 */
    h_stop();
    h_start(H_ARGS("--www", "off"));
    r = h_request("GET /no-such-page HTTP/1.1\r\nHost: t\r\n\r\n", 0, 404);
    h_resp_free(r);
    r = h_request("GET / HTTP/1.1\r\nHost: t\r\n\r\n", 0, 404);
    h_resp_free(r);
    h_stop();
}

/* The sleep app writes its number by hand (no printf): the edges of its
 * range, a leading zero, and what it refuses. */
Test(protocol, the_sleep_app_says_how_long_it_slept)
{
    h_start(NULL);
    static const struct {
        const char *ms, *body;
    } cases[] = {{"0", "slept 0 ms\n"},
                 {"9", "slept 9 ms\n"},
                 {"010", "slept 10 ms\n"},
                 {"120", "slept 120 ms\n"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char req[128];
        snprintf(req, sizeof req,
                 "GET /sleep?ms=%s HTTP/1.1\r\nHost: t\r\n\r\n", cases[i].ms);
        struct h_resp *r = h_request(req, 0, 200);
        cr_assert_str_eq(r->body, cases[i].body, "ms=%s", cases[i].ms);
        h_resp_free(r);
    }
    struct h_resp *r =
        h_request("GET /sleep?ms=60001 HTTP/1.1\r\nHost: t\r\n\r\n", 0, 400);
    cr_assert(strstr(r->body, "0 to 60000") != NULL, "%s", r->body);
    h_resp_free(r);
    h_stop();
}

Test(protocol, the_access_log_gets_a_line_per_request)
{
    h_start(NULL);
    struct h_resp *r = h_request(GET_HELLO, 0, 200);
    h_resp_free(r);
    r = h_request("GET /missing-thing HTTP/1.1\r\nHost: t\r\n\r\n", 0, 404);
    h_resp_free(r);
    h_stop(); /* flushes the log */
    char *log = h_read_file(h_srv.log_path, NULL);
    cr_assert_not_null(log);
    cr_assert(strstr(log, "\"GET /hello HTTP/1.1\" 200") != NULL, "log:\n%s",
              log);
    cr_assert(strstr(log, "\"GET /missing-thing HTTP/1.1\" 404") != NULL,
              "log:\n%s", log);
    free(log);
}

Test(protocol, a_pipelined_head_split_across_reads_is_reassembled)
{
    h_start(NULL);
    struct h_conn *c = h_connect();
    h_sends(c, GET_HELLO "GET /hel");
    struct h_resp *r = h_response(c, 0);
    assert_hello(r);
    h_resp_free(r);
    h_sleep_ms(50);
    h_sends(c, "lo HTTP/1.1\r\nHo");
    h_sleep_ms(50);
    h_sends(c, "st: t\r\n\r\n");
    r = h_response(c, 0);
    assert_hello(r);
    h_resp_free(r);
    h_close(c);
    h_stop();
}

Test(protocol, requests_pipelined_behind_large_bodies_are_parsed_in_place)
{
    h_start(NULL);
    /* bodies larger than the 16 KiB read buffer, each followed by a request
     * in the same write: the body reader must hand the bytes after the body
     * back to the head parser intact */
    size_t n = 40000;
    char *data = malloc(n);
    h_fill_random(data, n, 11);
    struct h_conn *c = h_connect();
    char *a = h_fmt("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n"
                    "\r\n",
                    n);
    char *b = h_fmt("POST /echo HTTP/1.1\r\nHost: t\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n%zx\r\n",
                    n);
    size_t cap = 2 * n + 1024, len = 0;
    char *all = malloc(cap);
#define ADD(p, l) (memcpy(all + len, (p), (l)), len += (l))
    ADD(a, strlen(a));
    ADD(data, n);
    ADD(GET_HELLO, strlen(GET_HELLO));
    ADD(b, strlen(b));
    ADD(data, n);
    ADD("\r\n0\r\n\r\n", 7);
    ADD(GET_HELLO, strlen(GET_HELLO));
    /* a GET with a small body nobody reads: drained, not parsed */
    ADD("GET /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nGET /",
        strlen("GET /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n"
               "GET /"));
    ADD(GET_HELLO, strlen(GET_HELLO));
#undef ADD
    h_send(c, all, len);
    struct h_resp *r = h_response(c, 0);
    cr_assert_eq(r->status, 200);
    cr_assert_eq(r->body_len, n);
    cr_assert(memcmp(r->body, data, n) == 0);
    h_resp_free(r);
    r = h_response(c, 0);
    assert_hello(r);
    h_resp_free(r);
    r = h_response(c, 0);
    cr_assert_eq(r->status, 200);
    cr_assert_eq(r->body_len, n);
    cr_assert(memcmp(r->body, data, n) == 0);
    h_resp_free(r);
    for (int i = 0; i < 3; i++) {
        r = h_response(c, 0);
        assert_hello(r);
        h_resp_free(r);
    }
    h_assert_open(c, 100);
    h_close(c);
    free(all);
    free(a);
    free(b);
    free(data);
    h_stop();
}

Test(protocol, connection_close_wins_over_keep_alive_in_http_1_0)
{
    /* RFC 9112 9.3: with the "close" option the connection does not
     * persist, whatever else the header says */
    h_start(NULL);
    const char *reqs[] = {
        "GET /hello HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n",
        "GET /hello HTTP/1.0\r\nConnection: close, keep-alive\r\n\r\n",
        ("GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n"
         "Connection: close\r\n\r\n"),
        "GET /hello HTTP/1.1\r\nHost: t\r\nConnection: keep-alive, "
        "close\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof reqs / sizeof *reqs; i++) {
        struct h_conn *c = h_connect();
        h_sends(c, reqs[i]);
        h_sends(c, GET_HELLO);
        struct h_resp *r = h_response(c, 0);
        assert_hello(r);
        cr_assert(h_header_has_token(r, "Connection", "close"),
                  "request:\n%sresponse:\n%s", reqs[i], r->head);
        h_resp_free(r);
        int eof = h_wait_eof(c, H_GUARD_MS);
        cr_assert_eq(eof, 1,
                     "the connection went on after \"close\" (%d) for:\n%s",
                     eof, reqs[i]);
        h_close(c);
    }
    h_stop();
}

Test(protocol, an_absolute_form_target_is_served_like_its_path)
{
    /* RFC 9112 3.2.2: "A server MUST accept the absolute-form in requests" */
    h_start(NULL);
    struct h_resp *r =
        h_request("GET http://t/hello HTTP/1.1\r\nHost: t\r\n\r\n", 0, 200);
    cr_assert_str_eq(r->body, HELLO);
    h_resp_free(r);
    h_stop();
}
