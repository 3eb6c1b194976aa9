/*
 * The strict chunked decoder of server/http/body.c (body__dechunk), called
 * directly: CRLF exactly where RFC 9112 puts it (llhttp 8.1 takes any two
 * bytes after chunk data, which would let a request be smuggled), hex
 * sizes, extensions, size limits and trailers.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "http/body.h"
#include "http/conn.h"
#include "http/http.h"
#include "http/request.h"
#include "http/server.h"

static struct http_server body_srv;
static struct conn body_conn;
static co_request_t body_req;
static struct req_store body_store;
static char body_out[64 * 1024];
static size_t body_len; /* decoded bytes in body_out */

/* A fresh request on a fake connection, its body chunked. */
static void body_reset(void)
{
    memset(&body_srv, 0, sizeof body_srv);
    http__config_defaults(&body_srv.cfg);
    memset(&body_conn, 0, sizeof body_conn);
    memset(&body_req, 0, sizeof body_req);
    body_conn.srv = &body_srv;
    request__attach_store(&body_req, &body_store);
    body_req.conn = &body_conn;
    body_req.body_mode = BODY_CHUNKED;
    body_len = 0;
}

/* Feeds len bytes of in, step bytes at a time (as reads would bring
 * them), decoding into body_out. Returns 0 when all was taken, else -1
 * with the decoder's errno. */
static int body_feed(const char *in, size_t len, size_t step)
{
    size_t off = 0;
    while (off < len) {
        size_t piece = len - off < step ? len - off : step;
        size_t avail = piece;
        ssize_t r =
            body__dechunk(&body_req, in + off, &avail, body_out + body_len,
                          sizeof body_out - body_len);
        if (r < 0)
            return -1;
        body_len += (size_t)r;
        off += piece - avail;
        if (avail == piece && r == 0)
            break; /* done: nothing more taken */
    }
    return off == len ? 0 : -1;
}

/* Decodes the whole of text in one call; 0 or -1 with errno. */
static int body_try(const char *text)
{
    body_reset();
    return body_feed(text, strlen(text), strlen(text));
}

Test(body_unit, decodes_chunks_and_the_last_chunk)
{
    cr_assert_eq(body_try("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"), 0);
    cr_assert_eq(body_len, 11);
    cr_assert_eq(memcmp(body_out, "hello world", 11), 0);
    cr_assert(body_req.body_done);
}

Test(body_unit, decodes_the_same_fed_one_byte_at_a_time)
{
    const char *in = "5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nT: 1\r\n\r\n";
    body_reset();
    cr_assert_eq(body_feed(in, strlen(in), 1), 0);
    cr_assert_eq(body_len, 11);
    cr_assert_eq(memcmp(body_out, "hello world", 11), 0);
    cr_assert(body_req.body_done);
}

Test(body_unit, stops_at_the_end_of_the_body)
{
    const char *in = "1\r\na\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
    body_reset();
    size_t avail = strlen(in);
    ssize_t r = body__dechunk(&body_req, in, &avail, body_out, sizeof body_out);
    cr_assert_eq(r, 1);
    cr_assert(body_req.body_done);
    cr_assert_eq(avail, strlen("GET / HTTP/1.1\r\n"), "left %zu", avail);
}

Test(body_unit, waits_when_the_callers_buffer_is_full)
{
    body_reset();
    const char *in = "5\r\nhello\r\n0\r\n\r\n";
    size_t avail = strlen(in);
    ssize_t r = body__dechunk(&body_req, in, &avail, body_out, 2);
    cr_assert_eq(r, 2);
    cr_assert_eq(memcmp(body_out, "he", 2), 0);
    cr_assert_eq(avail, strlen("llo\r\n0\r\n\r\n"));
    cr_assert_not(body_req.body_done);
}

Test(body_unit, refuses_any_two_bytes_after_chunk_data_but_crlf)
{
    static const char *const bad[] = {
        "5\r\nhelloXX0\r\n\r\n",   "5\r\nhello\n\n0\r\n\r\n",
        "5\r\nhello\r\r0\r\n\r\n", "5\r\nhello\n0\r\n\r\n",
        "5\r\nhello0\r\n\r\n",     "5\r\nhello!\r\n0\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        cr_assert_eq(body_try(bad[i]), -1, "accepted case %zu", i);
        cr_assert_eq(errno, EPROTO, "case %zu", i);
    }
}

Test(body_unit, reads_sizes_in_hex_of_either_case)
{
    char in[128], want[64];
    memset(want, 'z', sizeof want);
    snprintf(in, sizeof in, "a\r\n%.10s\r\nB\r\n%.11s\r\n0\r\n\r\n", want,
             want);
    cr_assert_eq(body_try(in), 0);
    cr_assert_eq(body_len, 21);
    cr_assert_eq(body_try("00000003\r\nabc\r\n0\r\n\r\n"), 0);
    cr_assert_eq(body_len, 3);
}

Test(body_unit, refuses_a_size_line_that_is_not_hex)
{
    cr_assert_eq(body_try("g\r\nx\r\n0\r\n\r\n"), -1);
    cr_assert_eq(body_try("\r\nx\r\n0\r\n\r\n"), -1);
    cr_assert_eq(body_try("-1\r\nx\r\n0\r\n\r\n"), -1);
    cr_assert_eq(body_try("0x1\r\nx\r\n0\r\n\r\n"), -1);
    cr_assert_eq(body_try("1\nx\r\n0\r\n\r\n"), -1, "bare LF after a size");
}

Test(body_unit, skips_extensions)
{
    cr_assert_eq(body_try("3;name=value\r\nabc\r\n"
                          "2 ; q=\"x\"\r\nde\r\n0;last\r\n\r\n"),
                 0);
    cr_assert_eq(body_len, 5);
    cr_assert_eq(memcmp(body_out, "abcde", 5), 0);
    cr_assert(body_req.body_done);
}

Test(body_unit, refuses_an_extension_without_a_size_or_with_a_bare_lf)
{
    cr_assert_eq(body_try(";x\r\nabc\r\n0\r\n\r\n"), -1);
    cr_assert_eq(body_try("3;x\nabc\r\n0\r\n\r\n"), -1);
}

Test(body_unit, refuses_a_size_line_longer_than_its_bound)
{
    static char in[8192];
    strcpy(in, "3;");
    memset(in + 2, 'e', 5000);
    strcpy(in + 5002, "\r\nabc\r\n0\r\n\r\n");
    errno = 0;
    cr_assert_eq(body_try(in), -1);
    cr_assert_eq(errno, EPROTO);
}

Test(body_unit, refuses_a_size_that_would_overflow)
{
    errno = 0;
    cr_assert_eq(body_try("ffffffffffffffffffff\r\n"), -1);
    cr_assert_eq(errno, EMSGSIZE);
}

Test(body_unit, refuses_a_size_that_wraps_around)
{
    /* 2^68 + 5: kept in 64 bits, it would read as a 5-byte chunk */
    errno = 0;
    cr_assert_eq(body_try("100000000000000005\r\nhello\r\n0\r\n\r\n"), -1);
    cr_assert_eq(errno, EMSGSIZE);
    cr_assert_eq(body_len, 0);
}

Test(body_unit, refuses_a_chunk_larger_than_max_body)
{
    body_reset();
    body_srv.cfg.limits.max_body = 10;
    const char *in = "b\r\n";
    errno = 0;
    cr_assert_eq(body_feed(in, strlen(in), 64), -1);
    cr_assert_eq(errno, EMSGSIZE);
}

Test(body_unit, refuses_chunks_adding_up_past_max_body)
{
    body_reset();
    body_srv.cfg.limits.max_body = 10;
    const char *in = "6\r\nabcdef\r\n5\r\nghijk\r\n0\r\n\r\n";
    errno = 0;
    cr_assert_eq(body_feed(in, strlen(in), 64), -1);
    cr_assert_eq(errno, EMSGSIZE);
}

Test(body_unit, skips_trailers)
{
    cr_assert_eq(body_try("1\r\na\r\n0\r\nX-Sum: 1\r\nY: 2\r\n\r\n"), 0);
    cr_assert_eq(body_len, 1);
    cr_assert(body_req.body_done);
}

Test(body_unit, refuses_malformed_trailers)
{
    /* folded, nameless, a bare LF, LF alone at the end */
    cr_assert_eq(body_try("0\r\nX: 1\r\n y\r\n\r\n"), -1);
    cr_assert_eq(body_try("0\r\n: 1\r\n\r\n"), -1);
    cr_assert_eq(body_try("0\r\nX: 1\n\r\n"), -1);
    cr_assert_eq(body_try("0\r\n\n"), -1);
    cr_assert_eq(body_try("0\r\n\rX"), -1);
}

Test(body_unit, refuses_trailers_past_their_bound)
{
    static char in[16384];
    strcpy(in, "0\r\nX: ");
    memset(in + 6, 'v', 9000);
    strcpy(in + 9006, "\r\n\r\n");
    cr_assert_eq(body_try(in), -1);
}
