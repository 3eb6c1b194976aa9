/*
 * The head checks of server/http/head.c, called directly: what llhttp 8.1
 * lets through and the front end refuses itself (DESIGN.md), without the
 * binary. Each input is one head in a fake connection's buffer.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "http/conn.h"
#include "http/head.h"
#include "http/http.h"
#include "http/request.h"
#include "http/server.h"

static struct http_server head_srv;
static struct conn head_conn;
static co_request_t head_req;
static struct req_store head_store;
static char head_buf[HTTP_BUF_SIZE];

/* Parses len bytes of text as a head; returns head__parse's answer (1
 * complete, 0 more needed, else the status it refuses with). */
static int head_try_n(const char *text, size_t len)
{
    memset(&head_srv, 0, sizeof head_srv);
    http__config_defaults(&head_srv.cfg);
    memset(&head_conn, 0, sizeof head_conn);
    memset(&head_req, 0, sizeof head_req);
    head_conn.srv = &head_srv;
    head_conn.buf = head_buf;
    head_conn.len = (uint32_t)len;
    memcpy(head_buf, text, len);
    request__attach_store(&head_req, &head_store);
    head_req.conn = &head_conn;
    head_req.res.status = 200;
    head_req.version = 11;
    head_req.content_length = -1;
    head_req.script_name = "";
    head__init(&head_req);
    head_conn.req = &head_req;
    return head__parse(&head_conn);
}

static int head_try(const char *text)
{
    return head_try_n(text, strlen(text));
}

Test(head_unit, accepts_a_plain_get)
{
    cr_assert_eq(head_try("GET /a?b=1 HTTP/1.1\r\nHost: x\r\n\r\n"), 1);
    cr_assert_str_eq(head_req.method, "GET");
    cr_assert_str_eq(head_req.path, "/a");
    cr_assert_str_eq(head_req.query, "b=1");
    cr_assert_str_eq(request__header(&head_req, "host"), "x");
    cr_assert_eq(head_req.keep_alive, 1);
    cr_assert_eq(head_req.body_mode, BODY_NONE);
}

Test(head_unit, leaves_the_body_after_the_head)
{
    cr_assert_eq(head_try("POST / HTTP/1.1\r\nHost: x\r\n"
                          "Content-Length: 3\r\n\r\nabc"),
                 1);
    cr_assert_eq(head_req.body_mode, BODY_LENGTH);
    cr_assert_eq(head_req.content_length, 3);
    cr_assert_eq(head_conn.len - head_conn.pos, 3);
    cr_assert_eq(memcmp(head_buf + head_conn.pos, "abc", 3), 0);
}

Test(head_unit, waits_for_the_rest_of_a_head)
{
    cr_assert_eq(head_try("GET / HTTP/1.1\r\nHost: x\r\n"), 0);
}

Test(head_unit, accepts_http_1_0_without_host)
{
    cr_assert_eq(head_try("GET / HTTP/1.0\r\n\r\n"), 1);
    cr_assert_eq(head_req.version, 10);
    cr_assert_eq(head_req.keep_alive, 0);
}

Test(head_unit, refuses_an_empty_header_name)
{
    cr_assert_eq(head_try("GET / HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n"), 400);
}

Test(head_unit, refuses_a_space_before_the_colon)
{
    cr_assert_eq(head_try("GET / HTTP/1.1\r\nHost: x\r\nA : v\r\n\r\n"), 400);
}

Test(head_unit, refuses_obs_fold)
{
    cr_assert_eq(head_try("GET / HTTP/1.1\r\nHost: x\r\nA: v\r\n w\r\n\r\n"),
                 400);
    cr_assert_eq(head_try("GET / HTTP/1.1\r\nHost: x\r\nA: v\r\n\tw\r\n\r\n"),
                 400);
}

Test(head_unit, refuses_a_missing_host_in_http_1_1)
{
    cr_assert_eq(head_try("GET / HTTP/1.1\r\nA: v\r\n\r\n"), 400);
    cr_assert_str_eq(head_req.error_reason, "HTTP/1.1 request without Host");
}

Test(head_unit, refuses_a_duplicate_host)
{
    cr_assert_eq(head_try("GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n"), 400);
    cr_assert_eq(head_try("GET / HTTP/1.1\r\nHost: x\r\nhOST: x\r\n\r\n"), 400);
}

Test(head_unit, refuses_content_length_with_transfer_encoding)
{
    static const char head[] = "POST / HTTP/1.1\r\nHost: x\r\n"
                               "Content-Length: 3\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n";
    cr_assert_eq(head_try(head), 400);
    /* llhttp refuses it first; head.c's own check must hold where llhttp
     * is lenient about it too */
    head_try("");
    llhttp_set_lenient_chunked_length(&head_req.parser, 1);
    head_conn.len = sizeof head - 1;
    memcpy(head_buf, head, sizeof head - 1);
    cr_assert_eq(head__parse(&head_conn), 400);
    cr_assert_str_eq(head_req.error_reason,
                     "both Content-Length and Transfer-Encoding");
}

Test(head_unit, refuses_conflicting_content_lengths)
{
    /* llhttp 8.1 refuses any second Content-Length itself (no leniency
     * lets one through), so head.c's conflicting-length check is a
     * second line this llhttp never reaches */
    cr_assert_eq(head_try("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                          "Content-Length: 4\r\n\r\nabcd"),
                 400);
    cr_assert_eq(head_try("POST / HTTP/1.1\r\nHost: x\r\n"
                          "Content-Length: 3, 4\r\n\r\nabcd"),
                 400);
}

Test(head_unit, refuses_a_transfer_encoding_other_than_chunked)
{
    cr_assert_eq(head_try("POST / HTTP/1.1\r\nHost: x\r\n"
                          "Transfer-Encoding: gzip, chunked\r\n\r\n"),
                 501);
}

Test(head_unit, frames_a_chunked_body)
{
    cr_assert_eq(head_try("POST / HTTP/1.1\r\nHost: x\r\n"
                          "Transfer-Encoding: chunked\r\n\r\n"),
                 1);
    cr_assert_eq(head_req.body_mode, BODY_CHUNKED);
}

Test(head_unit, refuses_a_head_ending_in_cr_lf_cr_and_a_byte)
{
    int rc = head_try("GET / HTTP/1.1\r\nHost: x\r\n\rX");
    cr_assert_eq(rc, 400, "got %d", rc);
    rc = head_try("GET / HTTP/1.1\r\nHost: x\r\n\rXGET / HTTP/1.1\r\n\r\n");
    cr_assert_eq(rc, 400, "got %d", rc);
}

Test(head_unit, refuses_a_dot_segment)
{
    cr_assert_eq(head_try("GET /a/../b HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
    cr_assert_eq(head_try("GET /a/. HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
    cr_assert_eq(head_try("GET /a/%2e%2e/b HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
    cr_assert_str_eq(head_req.error_reason, "dot segment in path");
}

Test(head_unit, accepts_dots_inside_a_name)
{
    cr_assert_eq(head_try("GET /a/..b/.c/d.. HTTP/1.1\r\nHost: x\r\n\r\n"), 1);
    cr_assert_str_eq(head_req.path, "/a/..b/.c/d..");
}

Test(head_unit, refuses_an_encoded_nul)
{
    cr_assert_eq(head_try("GET /a%00b HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
    cr_assert_eq(head_try("GET /a%zz HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
}

Test(head_unit, refuses_a_nul_in_a_header_value)
{
    static const char head[] = "GET / HTTP/1.1\r\nHost: x\r\nA: v\0w\r\n\r\n";
    cr_assert_eq(head_try_n(head, sizeof head - 1), 400);
}

Test(head_unit, refuses_a_target_longer_than_the_limit)
{
    static char big[HTTP_BUF_SIZE];
    strcpy(big, "GET /");
    memset(big + 5, 'a', 9000);
    strcpy(big + 9005, " HTTP/1.1\r\nHost: x\r\n\r\n");
    cr_assert_eq(head_try(big), 414);
}

Test(head_unit, refuses_a_head_larger_than_the_limit)
{
    static char big[HTTP_BUF_SIZE];
    strcpy(big, "GET / HTTP/1.1\r\nHost: x\r\nA: ");
    size_t n = strlen(big);
    memset(big + n, 'a', 13000);
    strcpy(big + n + 13000, "\r\n\r\n");
    cr_assert_eq(head_try(big), 431);
}

Test(head_unit, decodes_an_absolute_form_target)
{
    cr_assert_eq(head_try("GET http://h/p%41?q HTTP/1.1\r\nHost: h\r\n\r\n"),
                 1);
    cr_assert_str_eq(head_req.path, "/pA");
    cr_assert_str_eq(head_req.query, "q");
}
