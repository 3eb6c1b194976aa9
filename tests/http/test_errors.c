/*
 * test_errors.c - every refusal the front end makes, on the wire: 400 for
 * malformed or ambiguous heads (and the connection closes after each, so no
 * second request hides in the first), 414, 431, 413, 408, 501, 505, 417, and
 * the apps' own 405s.
 */
#include "harness.h"

TestSuite(errors, .fini = h_teardown, .timeout = 60);

#define GET_HELLO "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n"

/* Sends raw on a new connection, asserts the single response has status
 * `want`, says Connection: close, and is followed by the server closing with
 * nothing more (a smuggled request behind it is never answered). */
static void expect_refusal(const char *raw, size_t len, int want)
{
    struct h_conn *c = h_connect();
    /* the server may close while we still send: that is fine */
    h_try_send(c, raw, len);
    struct h_resp *r = calloc(1, sizeof *r);
    char why[512] = "";
    int rc = h_read_response(c, r, 0, H_GUARD_MS, why, sizeof why);
    cr_assert_neq(rc, 0, "no response at all to:\n%.*s", (int)len, raw);
    cr_assert_eq(rc, 1, "bad response to:\n%.*s\n%s", (int)len, raw, why);
    cr_assert_eq(r->status, want, "want %d, got %d for:\n%.*s\nresponse:\n%s%s",
                 want, r->status, (int)(len > 500 ? 500 : len), raw, r->head,
                 r->body);
    cr_assert(h_header_has_token(r, "Connection", "close"),
              "a refusal closes, and says so:\n%s", r->head);
    cr_assert_not_null(h_header(r, "Content-Length"));
    h_resp_free(r);
    int eof = h_wait_eof(c, H_GUARD_MS);
    cr_assert_neq(eof, -1, "the connection stayed open after %d", want);
    cr_assert_eq(eof, 1, "more bytes after the %d (a second response?): %.300s",
                 want, c->buf);
    h_close(c);
}

static void expect_refusal_str(const char *raw, int want)
{
    expect_refusal(raw, strlen(raw), want);
}

/* A smuggled request behind each bad head: it must never be answered. */
#define SMUGGLE GET_HELLO

Test(errors, http_1_1_without_host_is_400)
{
    h_start(NULL);
    expect_refusal_str("GET /hello HTTP/1.1\r\n\r\n", 400);
    expect_refusal_str("GET /hello HTTP/1.1\r\nX-A: b\r\n\r\n" SMUGGLE, 400);
    h_assert_serving();
    h_stop();
}

Test(errors, http_1_0_without_host_is_fine)
{
    h_start(NULL);
    struct h_resp *r = h_request("GET /hello HTTP/1.0\r\n\r\n", 0, 200);
    h_resp_free(r);
    h_stop();
}

Test(errors, a_duplicate_host_is_400)
{
    h_start(NULL);
    expect_refusal_str("GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
                       400);
    expect_refusal_str(
        "GET /hello HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n" SMUGGLE, 400);
    h_stop();
}

Test(errors, an_empty_header_name_is_400)
{
    h_start(NULL);
    expect_refusal_str(
        "GET /hello HTTP/1.1\r\nHost: t\r\n: value\r\n\r\n" SMUGGLE, 400);
    h_stop();
}

Test(errors, whitespace_before_the_colon_is_400)
{
    h_start(NULL);
    expect_refusal_str("GET /hello HTTP/1.1\r\nHost : t\r\n\r\n", 400);
    expect_refusal_str(
        "GET /hello HTTP/1.1\r\nHost: t\r\nX-A\t: b\r\n\r\n" SMUGGLE, 400);
    /* and the classic: "Transfer-Encoding : chunked" must not be half-read */
    expect_refusal_str("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n"
                       "Transfer-Encoding : chunked\r\n\r\n"
                       "0\r\n\r\n" SMUGGLE,
                       400);
    h_stop();
}

Test(errors, an_obs_fold_line_is_400)
{
    h_start(NULL);
    expect_refusal_str(
        "GET /hello HTTP/1.1\r\nHost: t\r\nX-A: a\r\n b\r\n\r\n" SMUGGLE, 400);
    expect_refusal_str(
        "GET /hello HTTP/1.1\r\nHost: t\r\nX-A: a\r\n\tb\r\n\r\n", 400);
    h_stop();
}

Test(errors, content_length_with_transfer_encoding_is_400)
{
    h_start(NULL);
    expect_refusal_str("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n"
                       "0\r\n\r\n" SMUGGLE,
                       400);
    expect_refusal_str("POST /echo HTTP/1.1\r\nHost: t\r\n"
                       "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
                       "0\r\n\r\n" SMUGGLE,
                       400);
    h_stop();
}

Test(errors, differing_duplicate_content_lengths_are_400)
{
    h_start(NULL);
    expect_refusal_str("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                       "Content-Length: 6\r\n\r\nhello!",
                       400);
    expect_refusal_str("POST /echo HTTP/1.1\r\nHost: t\r\n"
                       "Content-Length: 5, 6\r\n\r\nhello!",
                       400);
    h_stop();
}

Test(errors, a_head_ending_in_cr_lf_cr_and_another_byte_is_400)
{
    h_start(NULL);
    expect_refusal_str("GET /hello HTTP/1.1\r\nHost: t\r\n\rX", 400);
    expect_refusal_str("GET /hello HTTP/1.1\r\nHost: t\r\n\rX" SMUGGLE, 400);
    h_stop();
}

Test(errors, bare_lf_line_endings_are_refused_or_never_smuggle)
{
    /* RFC 9112 lets a server accept bare LF; what it must not do is treat
     * the bytes after it as a second request it answers out of turn. */
    h_start(NULL);
    struct h_conn *c = h_connect();
    h_sends(c, "GET /hello HTTP/1.1\nHost: t\n\n");
    struct h_resp *r = h_response(c, 0);
    cr_assert(r->status == 200 || r->status == 400, "status %d", r->status);
    h_resp_free(r);
    h_close(c);
    h_stop();
}

Test(errors, bad_chunk_framing_is_400_and_no_second_response_follows)
{
    h_start(NULL);
    /* llhttp alone takes "XX" for the CRLF after chunk data */
    expect_refusal_str("POST /echo HTTP/1.1\r\nHost: t\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n"
                       "3\r\nabcXX0\r\n\r\n",
                       400);
    expect_refusal_str("POST /echo HTTP/1.1\r\nHost: t\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n"
                       "3\r\nabcXX0\r\n\r\n" SMUGGLE,
                       400);
    /* a bad size line, a missing CRLF, a bare LF, a size with garbage */
    expect_refusal_str("POST /echo HTTP/1.1\r\nHost: t\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n"
                       "zz\r\nabc\r\n0\r\n\r\n" SMUGGLE,
                       400);
    expect_refusal_str("POST /echo HTTP/1.1\r\nHost: t\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n"
                       "3\nabc\r\n0\r\n\r\n" SMUGGLE,
                       400);
    expect_refusal_str("POST /echo HTTP/1.1\r\nHost: t\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n"
                       "3x\r\nabc\r\n0\r\n\r\n" SMUGGLE,
                       400);
    expect_refusal_str("POST /echo HTTP/1.1\r\nHost: t\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n"
                       "-3\r\nabc\r\n0\r\n\r\n" SMUGGLE,
                       400);
    expect_refusal_str("POST /echo HTTP/1.1\r\nHost: t\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n"
                       "3\r\nabc\r\n0\r\n\rX" SMUGGLE,
                       400);
    /* an overflowing size */
    expect_refusal_str("POST /echo HTTP/1.1\r\nHost: t\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n"
                       "10000000000000003\r\nabc\r\n0\r\n\r\n" SMUGGLE,
                       413);
    h_assert_serving();
    h_stop();
}

Test(errors, a_request_target_over_the_limit_is_414)
{
    h_start(NULL);
    size_t n = 9000;
    char *raw = malloc(n + 64);
    int k = sprintf(raw, "GET /");
    memset(raw + k, 'a', n);
    k += (int)n;
    k += sprintf(raw + k, " HTTP/1.1\r\nHost: t\r\n\r\n");
    expect_refusal(raw, (size_t)k, 414);
    free(raw);
    h_stop();
    /* and with a small limit */
    h_start(H_ARGS("--max-url-bytes", "100"));
    char url[200];
    memset(url, 'b', sizeof url);
    char *req = h_fmt("GET /%.150s HTTP/1.1\r\nHost: t\r\n\r\n", url);
    expect_refusal_str(req, 414);
    free(req);
    req = h_fmt("GET /hello?%.80s HTTP/1.1\r\nHost: t\r\n\r\n", url);
    struct h_resp *r = h_request(req, 0, 200); /* under the limit */
    h_resp_free(r);
    free(req);
    h_stop();
}

Test(errors, too_many_header_lines_is_431)
{
    h_start(H_ARGS("--max-headers", "20"));
    char raw[4096];
    int k = sprintf(raw, "GET /hello HTTP/1.1\r\nHost: t\r\n");
    for (int i = 0; i < 25; i++)
        k += sprintf(raw + k, "X-H%d: v\r\n", i);
    k += sprintf(raw + k, "\r\n");
    expect_refusal(raw, (size_t)k, 431);
    /* 20 lines in all is fine */
    k = sprintf(raw, "GET /hello HTTP/1.1\r\nHost: t\r\n");
    for (int i = 0; i < 19; i++)
        k += sprintf(raw + k, "X-H%d: v\r\n", i);
    k += sprintf(raw + k, "\r\n");
    struct h_resp *r = h_request(raw, 0, 200);
    h_resp_free(r);
    h_stop();
}

Test(errors, too_many_header_lines_by_default_is_431)
{
    h_start(NULL);
    char *raw = malloc(8192);
    int k = sprintf(raw, "GET /hello HTTP/1.1\r\nHost: t\r\n");
    for (int i = 0; i < 150; i++)
        k += sprintf(raw + k, "X%d: v\r\n", i);
    k += sprintf(raw + k, "\r\n");
    expect_refusal(raw, (size_t)k, 431);
    free(raw);
    h_stop();
}

Test(errors, too_many_header_bytes_is_431)
{
    h_start(NULL); /* 12K by default */
    size_t big = 5000;
    char *raw = malloc(4 * big + 256);
    int k = sprintf(raw, "GET /hello HTTP/1.1\r\nHost: t\r\n");
    for (int i = 0; i < 3; i++) {
        k += sprintf(raw + k, "X-Big%d: ", i);
        memset(raw + k, 'v', big);
        k += (int)big;
        k += sprintf(raw + k, "\r\n");
    }
    k += sprintf(raw + k, "\r\n");
    expect_refusal(raw, (size_t)k, 431);
    free(raw);
    h_stop();
    /* a small limit, a head just over it */
    h_start(H_ARGS("--max-header-bytes", "1K"));
    char pad[1200];
    memset(pad, 'p', sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    char *req =
        h_fmt("GET /hello HTTP/1.1\r\nHost: t\r\nX-Pad: %s\r\n\r\n", pad);
    expect_refusal_str(req, 431);
    free(req);
    req = h_fmt("GET /hello HTTP/1.1\r\nHost: t\r\nX-Pad: %.800s\r\n\r\n", pad);
    struct h_resp *r = h_request(req, 0, 200);
    h_resp_free(r);
    free(req);
    h_stop();
}

Test(errors, a_content_length_over_the_body_limit_is_413)
{
    h_start(H_ARGS("--max-body-bytes", "1K"));
    /* refused from the head alone: the body is never sent */
    expect_refusal_str("POST /echo HTTP/1.1\r\nHost: t\r\n"
                       "Content-Length: 2000\r\n\r\n",
                       413);
    /* no 100 Continue for a body that will be refused */
    expect_refusal_str("POST /echo HTTP/1.1\r\nHost: t\r\n"
                       "Content-Length: 1025\r\nExpect: 100-continue\r\n\r\n",
                       413);
    /* exactly the limit is fine */
    char body[1024];
    memset(body, 'x', sizeof body);
    char *req = h_fmt("POST /echo HTTP/1.1\r\nHost: t\r\n"
                      "Content-Length: 1024\r\n\r\n%.1024s",
                      body);
    struct h_resp *r = h_request(req, 0, 200);
    cr_assert_eq(r->body_len, 1024);
    h_resp_free(r);
    free(req);
    h_stop();
}

Test(errors, a_chunked_body_over_the_body_limit_is_413)
{
    h_start(H_ARGS("--max-body-bytes", "1K"));
    char chunk[700];
    memset(chunk, 'c', sizeof chunk);
    /* two chunks of 700: the second crosses 1K */
    char *req = h_fmt("POST /echo HTTP/1.1\r\nHost: t\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n"
                      "2bc\r\n%.700s\r\n2bc\r\n%.700s\r\n0\r\n\r\n",
                      chunk, chunk);
    expect_refusal_str(req, 413);
    free(req);
    /* one chunk claiming more than the limit */
    expect_refusal_str("POST /echo HTTP/1.1\r\nHost: t\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n"
                       "100000\r\nabc",
                       413);
    /* many small chunks adding up past it */
    struct h_conn *c = h_connect();
    h_sends(c, "POST /echo HTTP/1.1\r\nHost: t\r\n"
               "Transfer-Encoding: chunked\r\n\r\n");
    int sent_ok = 1;
    for (int i = 0; i < 200 && sent_ok; i++)
        sent_ok = h_try_send(c, "a\r\n0123456789\r\n", 15) == 0;
    if (sent_ok)
        h_try_send(c, "0\r\n\r\n", 5);
    struct h_resp *r = h_response(c, 0);
    cr_assert_eq(r->status, 413, "got %d", r->status);
    h_resp_free(r);
    int eof = h_wait_eof(c, H_GUARD_MS);
    cr_assert_eq(eof, 1, "want a close after the 413");
    h_close(c);
    h_assert_serving();
    h_stop();
}

Test(errors, a_head_not_finished_within_the_header_timeout_is_408)
{
    h_start(H_ARGS("--header-timeout", "300ms"));
    struct h_conn *c = h_connect();
    h_sends(c, "GET /hello HTTP/1.1\r\nHo");
    struct h_resp *r = h_response(c, 0);
    cr_assert_eq(r->status, 408, "got %d", r->status);
    cr_assert(h_header_has_token(r, "Connection", "close"));
    h_resp_free(r);
    h_assert_closed(c);
    h_close(c);
    h_assert_serving();
    h_stop();
}

Test(errors, a_client_dripping_its_head_is_still_cut_at_the_header_timeout)
{
    h_start(H_ARGS("--header-timeout", "300ms"));
    struct h_conn *c = h_connect();
    /* one byte every 100 ms: each byte is progress, but the whole head must
     * arrive within the timeout from its first byte. The head is long enough
     * (80 bytes, 8 s) that finishing it means the server never cut us. */
    const char *head =
        "GET /hello HTTP/1.1\r\nHost: t\r\n"
        "X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    size_t sent = 0, n = strlen(head);
    while (sent < n) {
        if (h_try_send(c, head + sent, 1) < 0)
            break;
        sent++;
        struct pollfd p = {c->fd, POLLIN, 0};
        if (poll(&p, 1, 100) == 1)
            break; /* the server answered */
    }
    cr_assert_lt(sent, n, "the whole slow head got through: no timeout");
    struct h_resp *r = h_response(c, 0);
    cr_assert_eq(r->status, 408, "got %d", r->status);
    h_resp_free(r);
    h_assert_closed(c);
    h_close(c);
    h_stop();
}

Test(errors, an_idle_connection_is_closed_without_a_response)
{
    h_start(
        H_ARGS("--header-timeout", "300ms", "--keepalive-timeout", "300ms"));
    struct h_conn *c = h_connect();
    h_assert_closed(c); /* nothing sent: closed, no 408 */
    h_close(c);
    /* and after a served request, the keep-alive timeout closes it quietly */
    c = h_connect();
    h_sends(c, GET_HELLO);
    struct h_resp *r = h_response(c, 0);
    cr_assert_eq(r->status, 200);
    h_resp_free(r);
    h_assert_closed(c);
    h_close(c);
    h_stop();
}

Test(errors, a_transfer_coding_other_than_chunked_is_501)
{
    h_start(NULL);
    expect_refusal_str("POST /echo HTTP/1.1\r\nHost: t\r\n"
                       "Transfer-Encoding: gzip\r\n\r\nabc",
                       501);
    expect_refusal_str("POST /echo HTTP/1.1\r\nHost: t\r\n"
                       "Transfer-Encoding: gzip, chunked\r\n\r\n"
                       "0\r\n\r\n" SMUGGLE,
                       501);
    h_stop();
}

Test(errors, http_2_0_in_a_request_line_is_505)
{
    h_start(NULL);
    expect_refusal_str("GET /hello HTTP/2.0\r\nHost: t\r\n\r\n", 505);
    h_stop();
}

Test(errors, an_unsupported_expectation_is_417)
{
    h_start(NULL);
    expect_refusal_str("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
                       "Expect: something-else\r\n\r\nabc",
                       417);
    h_stop();
}

Test(errors, garbage_and_bad_request_lines_are_400)
{
    h_start(NULL);
    expect_refusal_str("\x01\x02\x03 garbage\r\n\r\n", 400);
    expect_refusal_str("GET\r\n\r\n", 400);
    expect_refusal_str("GET /hello HTTP/1.1 extra\r\nHost: t\r\n\r\n", 400);
    expect_refusal_str("GET hello HTTP/1.1\r\nHost: t\r\n\r\n", 400);
    expect_refusal_str("GET /hel lo HTTP/1.1\r\nHost: t\r\n\r\n", 400);
    expect_refusal_str("GET /a%zz HTTP/1.1\r\nHost: t\r\n\r\n", 400);
    h_assert_serving();
    h_stop();
}

Test(errors, apps_answer_405_to_methods_they_do_not_take)
{
    h_start(NULL);
    struct {
        const char *req, *allow;
    } cases[] = {
        {"POST /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
         "GET, HEAD"},
        {"DELETE /hello HTTP/1.1\r\nHost: t\r\n\r\n", "GET, HEAD"},
        {"GET /echo HTTP/1.1\r\nHost: t\r\n\r\n", "POST, PUT"},
        {"PUT /sleep?ms=1 HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
         "GET, HEAD"},
        {"POST /fanout HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
         "GET, HEAD"},
        {"POST /hello.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
         "GET, HEAD"},
    };
    struct h_conn *c = h_connect();
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        /* all on one connection: a 405 keeps it */
        h_sends(c, cases[i].req);
        struct h_resp *r = h_response(c, 0);
        cr_assert_eq(r->status, 405, "%s-> %d", cases[i].req, r->status);
        cr_assert_str_eq(h_header(r, "Allow"), cases[i].allow);
        h_resp_free(r);
    }
    h_close(c);
    h_stop();
}

Test(errors, an_unread_small_body_is_drained_and_the_connection_reused)
{
    h_start(NULL);
    struct h_conn *c = h_connect();
    /* /hello never reads the body: the server must skip it, not parse it */
    char *req = h_fmt("POST /hello HTTP/1.1\r\nHost: t\r\n"
                      "Content-Length: %zu\r\n\r\n%s",
                      strlen(GET_HELLO), GET_HELLO);
    h_sends(c, req);
    free(req);
    struct h_resp *r = h_response(c, 0);
    cr_assert_eq(r->status, 405);
    h_resp_free(r);
    h_assert_open(c, 200); /* the body was not taken for a request */
    h_sends(c, GET_HELLO);
    r = h_response(c, 0);
    cr_assert_eq(r->status, 200);
    h_resp_free(r);
    h_close(c);
    h_stop();
}

Test(errors, an_http_1_0_request_with_transfer_encoding_is_never_kept_alive)
{
    /* RFC 9112 6.1: an HTTP/1.0 message with Transfer-Encoding has faulty
     * framing (a 1.0 proxy in front may not know chunked); the server must
     * close after it, so nothing behind it is taken for a request */
    h_start(NULL);
    struct h_conn *c = h_connect();
    h_sends(c, "POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n"
               "Connection: keep-alive\r\n\r\n"
               "3\r\nabc\r\n0\r\n\r\n" GET_HELLO);
    struct h_resp *r = h_response(c, 0);
    cr_assert(r->status == 400 || r->status == 200, "status %d", r->status);
    cr_assert(h_header_has_token(r, "Connection", "close"),
              "the response keeps the connection:\n%s", r->head);
    h_resp_free(r);
    int eof = h_wait_eof(c, H_GUARD_MS);
    cr_assert_eq(eof, 1, "the request behind it was answered: %.300s", c->buf);
    h_close(c);
    h_stop();
}

Test(errors, a_body_not_arriving_within_the_body_timeout_is_408)
{
    h_start(H_ARGS("--body-timeout", "300ms"));
    struct h_conn *c = h_connect();
    h_sends(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n"
               "only part of it");
    struct h_resp *r = h_response(c, 0);
    cr_assert_eq(r->status, 408, "got %d", r->status);
    cr_assert(h_header_has_token(r, "Connection", "close"));
    h_resp_free(r);
    h_assert_closed(c);
    h_close(c);
    h_assert_serving();
    h_stop();
}

Test(errors, a_handler_running_past_the_request_timeout_gets_504)
{
    h_start(H_ARGS("--request-timeout", "300ms"));
    struct h_conn *c = h_connect();
    h_sends(c, "GET /sleep?ms=5000 HTTP/1.1\r\nHost: t\r\n\r\n");
    struct h_resp *r = h_response(c, 0);
    cr_assert_eq(r->status, 504, "got %d", r->status);
    cr_assert(h_header_has_token(r, "Connection", "close"));
    h_resp_free(r);
    h_assert_closed(c);
    h_close(c);
    /* a quick one is unaffected */
    r = h_request("GET /sleep?ms=1 HTTP/1.1\r\nHost: t\r\n\r\n", 0, 200);
    h_resp_free(r);
    h_stop();
}
