/*
 * test_ws.c - WebSocket (RFC 6455) on the real server over real sockets,
 * frame by frame: the handshake, masking, framing, fragmentation with
 * control frames between fragments, ping/pong, the close handshake and
 * its codes, UTF-8 (text and close reasons), the message size limit, the
 * idle timeout's pings, permessage-deflate (RFC 7692) with and without
 * context takeover, the 1001 close at a stop, the generic Upgrade and
 * Server-Sent Events. The checklist is the Autobahn TestSuite's.
 */
#include "ws_client.h"

TestSuite(ws, .init = h_setup, .fini = h_teardown, .timeout = 60);

/* Serves build/apps' wsecho and the wstest test app, one worker. */
static void ws_start(void)
{
    char src[PATH_MAX], dst[300];
    mkdir(h_srv.apps, 0755);
    cr_assert_not_null(realpath(h_env("COSERVE_APPS", "build/apps"), src));
    strcat(src, "/wsecho.so");
    snprintf(dst, sizeof dst, "%s/wsecho.so", h_srv.apps);
    cr_assert_eq(symlink(src, dst), 0, "symlink %s: %s", dst, strerror(errno));
    cr_assert_not_null(
        realpath(h_env("COSERVE_TEST_APPS", "build/test-apps"), src));
    strcat(src, "/wstest.so");
    snprintf(dst, sizeof dst, "%s/wstest.so", h_srv.apps);
    cr_assert_eq(symlink(src, dst), 0, "symlink %s: %s", dst, strerror(errno));
    h_start(H_ARGS("--workers", "1", "--apps", h_srv.apps));
}

/* Sends one frame (b0: FIN, RSV, opcode) and expects a close with code. */
static void ws_expect_refused(const char *target, int b0, const void *p,
                              size_t n, int code)
{
    struct h_conn *c = wsc_open(target, NULL);
    wsc_send_raw(c, b0, p, n);
    cr_assert_eq(wsc_expect_close(c), code);
    h_close(c);
}

/* ---- the opening handshake ---- */

Test(ws, the_handshake_answers_101_with_the_rfc_accept_key)
{
    ws_start();
    struct h_conn *c = h_connect();
    struct h_resp *r = wsc_handshake(c, "/ws/echo", NULL);
    cr_assert_eq(r->status, 101);
    cr_assert_str_eq(h_header(r, "Sec-WebSocket-Accept"), WSC_ACCEPT);
    cr_assert(h_header_has_token(r, "Connection", "upgrade"));
    cr_assert(h_header_has_token(r, "Upgrade", "websocket"));
    cr_assert_null(h_header(r, "Sec-WebSocket-Extensions"));
    h_resp_free(r);
    wsc_send(c, 1, "hi", 2);
    wsc_expect_msg(c, 1, "hi", 2);
    h_close(c);
    h_stop();
}

Test(ws, a_bad_handshake_is_refused_with_400_or_426)
{
    ws_start();
    struct {
        const char *req;
        int status;
    } cases[] = {
        /* no key */
        {"GET /ws/echo HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
         "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
         400},
        /* a key that is not 16 bytes */
        {"GET /ws/echo HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
         "Connection: Upgrade\r\nSec-WebSocket-Key: AAAA\r\n"
         "Sec-WebSocket-Version: 13\r\n\r\n",
         400},
        /* another version: 426 names 13 */
        {"GET /ws/echo HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
         "Connection: Upgrade\r\nSec-WebSocket-Key: " WSC_KEY "\r\n"
         "Sec-WebSocket-Version: 8\r\n\r\n",
         426},
        /* no Connection: upgrade */
        {"GET /ws/echo HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
         "Sec-WebSocket-Key: " WSC_KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n",
         400},
        /* not a GET */
        {"POST /ws/echo HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
         "Connection: Upgrade\r\nSec-WebSocket-Key: " WSC_KEY "\r\n"
         "Sec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n",
         400},
        /* HTTP/1.0 */
        {"GET /ws/echo HTTP/1.0\r\nHost: t\r\nUpgrade: websocket\r\n"
         "Connection: Upgrade\r\nSec-WebSocket-Key: " WSC_KEY "\r\n"
         "Sec-WebSocket-Version: 13\r\n\r\n",
         400},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct h_resp *r = h_request(cases[i].req, 0, cases[i].status);
        if (cases[i].status == 426)
            cr_assert_str_eq(h_header(r, "Sec-WebSocket-Version"), "13");
        h_resp_free(r);
    }
    h_stop();
}

Test(ws, the_server_picks_its_preferred_subprotocol_among_those_offered)
{
    ws_start();
    struct h_conn *c = h_connect();
    struct h_resp *r = wsc_handshake(c, "/wstest/info?proto=v2,v1",
                                     "Sec-WebSocket-Protocol: v1, v2\r\n");
    cr_assert_eq(r->status, 101);
    cr_assert_str_eq(h_header(r, "Sec-WebSocket-Protocol"), "v2");
    h_resp_free(r);
    wsc_send(c, 2, "\x01\x02", 2);
    wsc_expect_msg(c, 1, "proto=v2 type=2 len=2", 21);
    h_close(c);
    /* none in common: no header, the client decides */
    c = h_connect();
    r = wsc_handshake(c, "/wstest/info?proto=v3",
                      "Sec-WebSocket-Protocol: v1\r\n");
    cr_assert_eq(r->status, 101);
    cr_assert_null(h_header(r, "Sec-WebSocket-Protocol"));
    h_resp_free(r);
    h_close(c);
    h_stop();
}

Test(ws, frames_sent_with_the_handshake_are_read)
{
    ws_start();
    struct h_conn *c = h_connect();
    unsigned char *f;
    size_t n = wsc_build(&f, 0x81, "early", 5, 1);
    char *req =
        h_fmt("GET /ws/echo HTTP/1.1\r\nHost: t\r\nUpgrade: "
              "websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " WSC_KEY
              "\r\nSec-WebSocket-Version: 13\r\n\r\n");
    size_t rl = strlen(req);
    req = realloc(req, rl + n);
    memcpy(req + rl, f, n);
    h_send(c, req, rl + n); /* one write: head and frame together */
    free(req);
    free(f);
    int64_t end = h_now_ms() + H_GUARD_MS;
    const char *e;
    while (!(e = c->buf ? h_memmem(c->buf, c->len, "\r\n\r\n") : NULL))
        cr_assert_eq(h_fill(c, end), 1);
    size_t hl = (size_t)(e - c->buf) + 4;
    cr_assert(!strncmp(c->buf, "HTTP/1.1 101 ", 13));
    memmove(c->buf, c->buf + hl, c->len - hl);
    c->len -= hl;
    wsc_expect_msg(c, 1, "early", 5);
    h_close(c);
    h_stop();
}

/* The 101 moves the head out of the connection's read buffer, which goes
 * back to the pool and is reused by the next head: what the handler reads
 * afterwards must still be its own request's. */
Test(ws, the_head_still_answers_after_the_handshake_while_others_arrive)
{
    ws_start();
    const char *tags[] = {"alpha", "bravo", "charlie"};
    struct h_conn *c[3];
    for (int i = 0; i < 3; i++) {
        char target[160], extra[64];
        snprintf(target, sizeof target, "/wstest/head?n=%d&pad=%0*d", i,
                 40 * i + 1, 0);
        snprintf(extra, sizeof extra, "X-Tag: %s\r\n", tags[i]);
        c[i] = wsc_open(target, extra);
    }
    for (int round = 0; round < 2; round++)
        for (int i = 2; i >= 0; i--) {
            char want[256];
            int n = snprintf(want, sizeof want,
                             "target=/wstest/head?n=%d&pad=%0*d query=n=%d&"
                             "pad=%0*d path=/wstest/head tag=%s host=t",
                             i, 40 * i + 1, 0, i, 40 * i + 1, 0, tags[i]);
            wsc_send(c[i], 1, "?", 1);
            wsc_expect_msg(c[i], 1, want, (size_t)n);
        }
    for (int i = 0; i < 3; i++)
        h_close(c[i]);
    h_stop();
}

/* ---- framing ---- */

Test(ws, messages_of_every_length_encoding_come_back_as_they_went)
{
    ws_start();
    struct h_conn *c = wsc_open("/ws/echo", NULL);
    size_t sizes[] = {0, 1, 125, 126, 127, 65535, 65536, 300000};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        size_t n = sizes[i];
        char *p = malloc(n + 1);
        h_fill_random(p, n, (uint32_t)n);
        wsc_send(c, 2, p, n);
        wsc_expect_msg(c, 2, p, n);
        memset(p, 'a', n);
        wsc_send(c, 1, p, n);
        wsc_expect_msg(c, 1, p, n);
        free(p);
    }
    wsc_send(c, 8, "\x03\xe8", 2);
    cr_assert_eq(wsc_expect_close(c), 1000);
    h_close(c);
    h_stop();
}

Test(ws, an_unmasked_client_frame_is_refused_with_1002)
{
    ws_start();
    struct h_conn *c = wsc_open("/ws/echo", NULL);
    unsigned char *f;
    size_t n = wsc_build(&f, 0x81, "hello", 5, 0);
    h_send(c, f, n);
    free(f);
    cr_assert_eq(wsc_expect_close(c), 1002);
    h_close(c);
    h_stop();
}

Test(ws, reserved_bits_and_opcodes_are_refused_with_1002)
{
    ws_start();
    ws_expect_refused("/ws/echo", 0x80 | 0x20 | 1, "x", 1, 1002); /* RSV2 */
    ws_expect_refused("/ws/echo", 0x80 | 0x10 | 1, "x", 1, 1002); /* RSV3 */
    /* RSV1 without permessage-deflate negotiated */
    ws_expect_refused("/ws/echo", 0x80 | 0x40 | 1, "x", 1, 1002);
    int ops[] = {3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF};
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
        ws_expect_refused("/ws/echo", 0x80 | ops[i], "", 0, 1002);
    h_stop();
}

Test(ws, a_64_bit_length_with_its_top_bit_set_is_refused_with_1002)
{
    ws_start();
    struct h_conn *c = wsc_open("/ws/echo", NULL);
    unsigned char f[14] = {0x82, 0x80 | 127, 0x80, 0, 0, 0, 0,
                           0,    0,          1,    1, 2, 3, 4};
    h_send(c, f, sizeof f);
    cr_assert_eq(wsc_expect_close(c), 1002);
    h_close(c);
    h_stop();
}

/* ---- fragmentation and control frames ---- */

Test(ws, fragments_are_joined_and_pings_between_them_are_answered_first)
{
    ws_start();
    struct h_conn *c = wsc_open("/ws/echo", NULL);
    wsc_send_raw(c, 0x01, "Hel", 3); /* text, not FIN */
    wsc_send_raw(c, 0x89, "p1", 2);  /* ping between fragments */
    wsc_send_raw(c, 0x00, "lo, ", 4);
    wsc_send_raw(c, 0x8A, "x", 1); /* an unsolicited pong: ignored */
    wsc_send_raw(c, 0x00, "", 0);
    wsc_send_raw(c, 0x80, "world", 5);
    struct wsc_frame f;
    cr_assert_eq(wsc_read(c, &f), 1);
    cr_assert_eq(f.opcode, 0xA, "the pong comes before the message");
    cr_assert_eq(f.len, 2);
    cr_assert(!memcmp(f.data, "p1", 2), "the pong carries the ping's data");
    free(f.data);
    wsc_expect_msg(c, 1, "Hello, world", 12);
    h_close(c);
    h_stop();
}

Test(ws, fragment_sequencing_errors_are_refused_with_1002)
{
    ws_start();
    /* a continuation with no message started */
    ws_expect_refused("/ws/echo", 0x80, "x", 1, 1002);
    /* a new message while one is in progress */
    struct h_conn *c = wsc_open("/ws/echo", NULL);
    wsc_send_raw(c, 0x01, "a", 1);
    wsc_send_raw(c, 0x81, "b", 1);
    cr_assert_eq(wsc_expect_close(c), 1002);
    h_close(c);
    /* a fragmented control frame, and one over 125 bytes */
    ws_expect_refused("/ws/echo", 0x09, "x", 1, 1002);
    char big[126];
    memset(big, 'p', sizeof big);
    ws_expect_refused("/ws/echo", 0x89, big, sizeof big, 1002);
    h_stop();
}

/* ---- UTF-8 ---- */

Test(ws, text_that_is_not_utf8_is_refused_with_1007)
{
    ws_start();
    static const char *bad[] = {
        "\xff",             /* never in UTF-8 */
        "\xc0\xaf",         /* overlong '/' */
        "\xe0\x80\xaf",     /* overlong, three bytes */
        "\xed\xa0\x80",     /* a surrogate, U+D800 */
        "\xf4\x90\x80\x80", /* above U+10FFFF */
        "\xce\xba\xe1",     /* cut short at the end */
        "\x80",             /* a lone continuation byte */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ws_expect_refused("/ws/echo", 0x81, bad[i], strlen(bad[i]), 1007);
    h_stop();
}

Test(ws, utf8_edge_cases_that_are_valid_pass_even_split_across_fragments)
{
    ws_start();
    struct h_conn *c = wsc_open("/ws/echo", NULL);
    static const char *good[] = {
        "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", /* κόσμε */
        "\xf4\x8f\xbf\xbf",                             /* U+10FFFF */
        "\xef\xbf\xbf",                                 /* U+FFFF */
        "\xed\x9f\xbf",                                 /* U+D7FF */
        "\xee\x80\x80",                                 /* U+E000 */
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        wsc_send(c, 1, good[i], strlen(good[i]));
        wsc_expect_msg(c, 1, good[i], strlen(good[i]));
    }
    /* a code point split between fragments is still valid */
    wsc_send_raw(c, 0x01, "\xf0\x9f", 2);
    wsc_send_raw(c, 0x00, "\x98", 1);
    wsc_send_raw(c, 0x80, "\x80!", 2);
    wsc_expect_msg(c, 1, "\xf0\x9f\x98\x80!", 5);
    h_close(c);
    h_stop();
}

Test(ws, bad_utf8_in_a_first_fragment_fails_before_the_message_ends)
{
    ws_start();
    struct h_conn *c = wsc_open("/ws/echo", NULL);
    wsc_send_raw(c, 0x01, "ok\xff", 3); /* no FIN: the rest never comes */
    cr_assert_eq(wsc_expect_close(c), 1007);
    h_close(c);
    h_stop();
}

/* ---- the close handshake ---- */

Test(ws, a_close_is_answered_with_its_code_and_the_connection_ends)
{
    ws_start();
    struct h_conn *c = wsc_open("/ws/echo", NULL);
    wsc_send(c, 8, "\x0f\xa0goodbye", 9); /* 4000 */
    cr_assert_eq(wsc_expect_close(c), 4000);
    h_close(c);
    c = wsc_open("/ws/echo", NULL);
    wsc_send(c, 8, "", 0); /* no code: answered with none */
    cr_assert_eq(wsc_expect_close(c), 1005);
    h_close(c);
    h_stop();
}

Test(ws, invalid_close_frames_are_refused)
{
    ws_start();
    ws_expect_refused("/ws/echo", 0x88, "\x03", 1, 1002); /* 1 byte */
    unsigned bad[] = {0, 999, 1004, 1005, 1006, 1015, 1100, 2999, 5000};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        unsigned char p[2] = {(unsigned char)(bad[i] >> 8),
                              (unsigned char)bad[i]};
        ws_expect_refused("/ws/echo", 0x88, p, 2, 1002);
    }
    ws_expect_refused("/ws/echo", 0x88, "\x03\xe8\xff", 3, 1007);
    unsigned good[] = {1000, 1001, 1002, 1003, 1007, 1011, 3000, 4999};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        unsigned char p[2] = {(unsigned char)(good[i] >> 8),
                              (unsigned char)good[i]};
        ws_expect_refused("/ws/echo", 0x88, p, 2, (int)good[i]);
    }
    h_stop();
}

Test(ws, the_app_closes_with_its_code_and_reason)
{
    ws_start();
    struct h_conn *c = wsc_open("/wstest?close=4321", NULL);
    wsc_send(c, 1, "x", 1);
    struct wsc_frame f;
    cr_assert_eq(wsc_read(c, &f), 1);
    cr_assert_eq(f.opcode, 8);
    cr_assert_eq(f.len, 5);
    cr_assert_eq(f.data[0] << 8 | f.data[1], 4321);
    cr_assert(!memcmp(f.data + 2, "bye", 3));
    free(f.data);
    /* messages after the server's close are dropped; our close ends it */
    wsc_send(c, 1, "late", 4);
    wsc_send(c, 8, "\x10\xe1", 2);
    cr_assert_eq(h_wait_eof(c, H_GUARD_MS), 1);
    h_close(c);
    h_stop();
}

Test(ws, a_handler_that_fails_closes_with_1011)
{
    ws_start();
    struct h_conn *c = wsc_open("/wstest?fail=1", NULL);
    wsc_send(c, 1, "x", 1);
    cr_assert_eq(wsc_expect_close(c), 1011);
    h_close(c);
    h_stop();
}

Test(ws, sending_text_that_is_not_utf8_fails_with_eilseq)
{
    ws_start();
    struct h_conn *c = wsc_open("/wstest?sendbad=1", NULL);
    wsc_send(c, 1, "x", 1);
    char want[32];
    int n = snprintf(want, sizeof want, "rc=-1 errno=%d", EILSEQ);
    wsc_expect_msg(c, 1, want, (size_t)n);
    h_close(c);
    h_stop();
}

/* ---- limits ---- */

Test(ws, a_message_over_the_limit_is_refused_with_1009)
{
    ws_start();
    char p[1001];
    memset(p, 'a', sizeof p);
    struct h_conn *c = wsc_open("/wstest?max=1000", NULL);
    wsc_send(c, 2, p, 1000); /* at the limit: fine */
    wsc_expect_msg(c, 2, p, 1000);
    wsc_send(c, 2, p, 1001);
    cr_assert_eq(wsc_expect_close(c), 1009);
    h_close(c);
    /* fragments add up */
    c = wsc_open("/wstest?max=1000", NULL);
    wsc_send_raw(c, 0x02, p, 600);
    wsc_send_raw(c, 0x80, p, 401);
    cr_assert_eq(wsc_expect_close(c), 1009);
    h_close(c);
    h_stop();
}

Test(ws, a_quiet_peer_is_pinged_and_a_silent_one_closed_with_1001)
{
    ws_start();
    struct h_conn *c = wsc_open("/wstest?ping=100&idle=500", NULL);
    struct wsc_frame f;
    cr_assert_eq(wsc_read(c, &f), 1);
    cr_assert_eq(f.opcode, 9, "expected a ping, got opcode %d", f.opcode);
    free(f.data);
    /* not answered: the close follows */
    cr_assert_eq(wsc_expect_close(c), 1001);
    h_close(c);
    h_stop();
}

Test(ws, answering_pings_keeps_a_quiet_connection_open)
{
    ws_start();
    struct h_conn *c = wsc_open("/wstest?ping=100&idle=400", NULL);
    /* four idle periods, answering every ping */
    int pings = 0;
    while (pings < 8) {
        struct wsc_frame f;
        cr_assert_eq(wsc_read(c, &f), 1, "closed after %d pings", pings);
        cr_assert_eq(f.opcode, 9, "got opcode %d after %d pings", f.opcode,
                     pings);
        wsc_send(c, 0xA, f.data, f.len);
        free(f.data);
        pings++;
    }
    wsc_send(c, 1, "still here", 10);
    struct wsc_frame f;
    do {
        cr_assert_eq(wsc_read(c, &f), 1);
        if (f.opcode == 9)
            wsc_send(c, 0xA, f.data, f.len);
        free(f.data);
    } while (f.opcode == 9);
    cr_assert_eq(f.opcode, 1);
    h_close(c);
    h_stop();
}

/* ---- permessage-deflate ---- */

/* Sends text compressed by z, reads the echo, checks it inflates (by zi)
 * to the same text. Returns the echo's compressed size. */
static size_t ws_deflate_round(struct h_conn *c, z_stream *z, z_stream *zi,
                               const char *text)
{
    unsigned char buf[8192], out[8192];
    size_t n = wsc_deflate(z, text, strlen(text), buf, sizeof buf);
    wsc_send_raw(c, 0x80 | 0x40 | 1, buf, n);
    struct wsc_frame f;
    cr_assert_eq(wsc_read(c, &f), 1);
    cr_assert_eq(f.opcode, 1);
    cr_assert_eq(f.rsv1, 1, "the echo is not compressed");
    size_t m = wsc_inflate(zi, f.data, f.len, out, sizeof out);
    cr_assert_eq(m, strlen(text));
    cr_assert(!memcmp(out, text, m));
    size_t len = f.len;
    free(f.data);
    return len;
}

static const char *ws_text =
    "The quick brown fox jumps over the lazy dog; the quick brown fox "
    "jumps over the lazy dog again, and again, and again.";

Test(ws, deflate_with_context_takeover_reuses_the_window_each_way)
{
    ws_start();
    struct h_conn *c = h_connect();
    struct h_resp *r =
        wsc_handshake(c, "/ws/echo",
                      "Sec-WebSocket-Extensions: permessage-deflate; "
                      "client_max_window_bits\r\n");
    cr_assert_eq(r->status, 101);
    cr_assert_str_eq(h_header(r, "Sec-WebSocket-Extensions"),
                     "permessage-deflate");
    h_resp_free(r);
    z_stream z = {0}, zi = {0};
    cr_assert_eq(deflateInit2(&z, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY),
                 Z_OK);
    cr_assert_eq(inflateInit2(&zi, -15), Z_OK);
    size_t first = ws_deflate_round(c, &z, &zi, ws_text);
    size_t second = ws_deflate_round(c, &z, &zi, ws_text);
    cr_assert_lt(second, first,
                 "the second echo (%zu bytes) should refer to the first "
                 "(%zu)",
                 second, first);
    /* an uncompressed message is fine too, and comes back compressed */
    unsigned char out[512];
    wsc_send(c, 1, ws_text, strlen(ws_text));
    struct wsc_frame f;
    cr_assert_eq(wsc_read(c, &f), 1);
    cr_assert_eq(f.rsv1, 1);
    cr_assert_eq(wsc_inflate(&zi, f.data, f.len, out, sizeof out),
                 strlen(ws_text));
    free(f.data);
    deflateEnd(&z);
    inflateEnd(&zi);
    h_close(c);
    h_stop();
}

Test(ws, deflate_without_context_takeover_compresses_each_message_alone)
{
    ws_start();
    struct h_conn *c = h_connect();
    struct h_resp *r = wsc_handshake(
        c, "/ws/echo",
        "Sec-WebSocket-Extensions: permessage-deflate; "
        "server_no_context_takeover; client_no_context_takeover\r\n");
    cr_assert_eq(r->status, 101);
    cr_assert_str_eq(h_header(r, "Sec-WebSocket-Extensions"),
                     "permessage-deflate; server_no_context_takeover; "
                     "client_no_context_takeover");
    h_resp_free(r);
    size_t sizes[2];
    for (int i = 0; i < 2; i++) {
        z_stream z = {0}, zi = {0};
        deflateInit2(&z, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
        inflateInit2(&zi, -15);
        sizes[i] = ws_deflate_round(c, &z, &zi, ws_text);
        deflateEnd(&z);
        inflateEnd(&zi);
    }
    cr_assert_eq(sizes[0], sizes[1], "a fresh window each time: %zu, %zu",
                 sizes[0], sizes[1]);
    h_close(c);
    h_stop();
}

Test(ws, deflate_offers_that_cannot_be_met_are_declined)
{
    ws_start();
    const char *offers[] = {
        "permessage-deflate; server_max_window_bits=8",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; unknown_param",
        ("permessage-deflate; server_no_context_takeover; "
         "server_no_context_takeover"),
        "x-webkit-deflate-frame",
    };
    for (size_t i = 0; i < sizeof offers / sizeof *offers; i++) {
        struct h_conn *c = h_connect();
        char *h = h_fmt("Sec-WebSocket-Extensions: %s\r\n", offers[i]);
        struct h_resp *r = wsc_handshake(c, "/ws/echo", h);
        cr_assert_eq(r->status, 101);
        cr_assert_null(h_header(r, "Sec-WebSocket-Extensions"), "accepted '%s'",
                       offers[i]);
        free(h);
        h_resp_free(r);
        h_close(c);
    }
    /* the first acceptable offer of a list wins */
    struct h_conn *c = h_connect();
    struct h_resp *r =
        wsc_handshake(c, "/ws/echo",
                      "Sec-WebSocket-Extensions: permessage-deflate; bogus, "
                      "permessage-deflate; server_max_window_bits=10\r\n");
    cr_assert_str_eq(h_header(r, "Sec-WebSocket-Extensions"),
                     "permessage-deflate; server_max_window_bits=10");
    h_resp_free(r);
    h_close(c);
    h_stop();
}

Test(ws, rsv1_on_a_continuation_or_a_control_frame_is_refused)
{
    ws_start();
    const char *ext = "Sec-WebSocket-Extensions: permessage-deflate\r\n";
    struct h_conn *c = wsc_open("/ws/echo", ext);
    wsc_send_raw(c, 0x01, "a", 1);
    wsc_send_raw(c, 0x80 | 0x40, "b", 1);
    cr_assert_eq(wsc_expect_close(c), 1002);
    h_close(c);
    c = wsc_open("/ws/echo", ext);
    wsc_send_raw(c, 0x80 | 0x40 | 9, "", 0);
    cr_assert_eq(wsc_expect_close(c), 1002);
    h_close(c);
    h_stop();
}

Test(ws, a_compressed_message_that_inflates_over_the_limit_gets_1009)
{
    ws_start();
    struct h_conn *c =
        wsc_open("/wstest?max=10000",
                 "Sec-WebSocket-Extensions: permessage-deflate\r\n");
    char *zeros = calloc(1, 100000);
    unsigned char buf[4096];
    z_stream z = {0};
    deflateInit2(&z, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
    size_t n = wsc_deflate(&z, zeros, 100000, buf, sizeof buf);
    cr_assert_lt(n, 10000);
    wsc_send_raw(c, 0x80 | 0x40 | 2, buf, n);
    cr_assert_eq(wsc_expect_close(c), 1009);
    deflateEnd(&z);
    free(zeros);
    h_close(c);
    h_stop();
}

Test(ws, a_message_at_the_limit_that_grew_when_compressed_is_taken)
{
    /* random bytes do not compress: the deflater sends them a few bytes
     * longer (stored blocks), over the limit on the wire, while the
     * message itself is at the limit */
    ws_start();
    struct h_conn *c = wsc_open("/wstest?max=10000",
                                "Sec-WebSocket-Extensions: permessage-deflate; "
                                "server_no_context_takeover\r\n");
    char msg[10001];
    h_fill_random(msg, sizeof msg, 11);
    unsigned char buf[12000];
    z_stream z = {0};
    deflateInit2(&z, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
    size_t n = wsc_deflate(&z, msg, 10000, buf, sizeof buf);
    cr_assert_gt(n, 10000, "random bytes compressed");
    wsc_send_raw(c, 0x80 | 0x40 | 2, buf, n);
    struct wsc_frame f;
    cr_assert_eq(wsc_read(c, &f), 1);
    cr_assert_eq(f.opcode, 2, "opcode %d (a close: the message was refused)",
                 f.opcode);
    cr_assert_eq(f.rsv1, 1);
    z_stream zi = {0};
    inflateInit2(&zi, -15);
    unsigned char out[10100];
    cr_assert_eq(wsc_inflate(&zi, f.data, f.len, out, sizeof out), 10000);
    cr_assert(!memcmp(out, msg, 10000));
    inflateEnd(&zi);
    free(f.data);
    /* one byte more is over the limit, compressed or not */
    deflateReset(&z);
    n = wsc_deflate(&z, msg, 10001, buf, sizeof buf);
    wsc_send_raw(c, 0x80 | 0x40 | 2, buf, n);
    cr_assert_eq(wsc_expect_close(c), 1009);
    deflateEnd(&z);
    h_close(c);
    h_stop();
}

/* ---- stopping ---- */

Test(ws, a_stop_closes_websockets_with_1001_within_the_grace)
{
    ws_start();
    struct h_conn *c = wsc_open("/ws/echo", NULL);
    wsc_send(c, 1, "x", 1);
    wsc_expect_msg(c, 1, "x", 1);
    kill(h_srv.pid, SIGTERM);
    struct wsc_frame f;
    cr_assert_eq(wsc_read(c, &f), 1);
    cr_assert_eq(f.opcode, 8);
    cr_assert_eq(f.data[0] << 8 | f.data[1], 1001);
    free(f.data);
    wsc_send(c, 8, "\x03\xe9", 2); /* answer: the server exits at once */
    cr_assert_eq(h_wait_eof(c, H_GUARD_MS), 1);
    h_close(c);
    h_stop(); /* exit status 0, nothing in the log */
    cr_assert_eq(h_stderr_count("grace period over"), 0,
                 "the WebSocket held the stop until the grace ran out");
}

Test(ws, a_stop_ends_an_event_stream_at_once_not_after_the_grace)
{
    ws_start(); /* the harness's grace: 3 s */
    struct h_conn *c = h_connect();
    h_sends(c, "GET /wstest/sse?n=1&hold=1 HTTP/1.1\r\nHost: t\r\n\r\n");
    int64_t end = h_now_ms() + H_GUARD_MS;
    while (!c->buf || !strstr(c->buf, ": done\n\n"))
        cr_assert_eq(h_fill(c, end), 1, "no events: '%s'",
                     c->buf ? c->buf : "");
    /* the stream would stay open a minute: the stop must end it */
    kill(h_srv.pid, SIGTERM);
    end = h_now_ms() + H_GUARD_MS;
    while (!c->eof)
        cr_assert_neq(h_fill(c, end), -1, "the stream stayed open");
    /* ended as a chunked response ends: the browser sees a clean end */
    cr_assert_not_null(h_memmem(c->buf, c->len, "\r\n0\r\n\r\n"),
                       "no last chunk: '%s'", c->buf);
    h_close(c);
    h_stop();
    cr_assert_eq(h_stderr_count("grace period over"), 0,
                 "the event stream held the stop until the grace ran out");
}

Test(ws, a_stream_that_starts_after_the_stop_began_ends_at_once_too)
{
    ws_start(); /* the harness's grace: 3 s */
    struct h_conn *c = h_connect();
    /* the handler sleeps 2 s before it starts the stream: the stop begins
     * meanwhile */
    h_sends(c, "GET /wstest/sse?n=1&hold=1&delay=2000 HTTP/1.1\r\n"
               "Host: t\r\n\r\n");
    cr_assert(h_wait_stderr("sse: delay", H_GUARD_MS),
              "the handler did not run");
    kill(h_srv.pid, SIGTERM);
    int64_t end = h_now_ms() + H_GUARD_MS;
    while (!c->eof)
        cr_assert_neq(h_fill(c, end), -1, "the stream stayed open");
    cr_assert_not_null(h_memmem(c->buf, c->len, ": done\n\n"),
                       "the stream did not run: '%s'", c->buf);
    cr_assert_not_null(h_memmem(c->buf, c->len, "\r\n0\r\n\r\n"),
                       "no last chunk: '%s'", c->buf);
    h_close(c);
    h_stop();
    cr_assert_eq(h_stderr_count("grace period over"), 0,
                 "the event stream held the stop until the grace ran out");
}

/* ---- the generic Upgrade and Server-Sent Events ---- */

Test(ws, the_generic_upgrade_hands_the_socket_to_the_app_with_early_bytes)
{
    ws_start();
    struct h_conn *c = h_connect();
    h_sends(c, "GET /wstest/upgrade HTTP/1.1\r\nHost: t\r\nUpgrade: x-upper\r\n"
               "Connection: upgrade\r\n\r\nearly ");
    int64_t end = h_now_ms() + H_GUARD_MS;
    while (!c->buf || !strstr(c->buf, "EARLY "))
        cr_assert_eq(h_fill(c, end), 1, "got '%s'", c->buf ? c->buf : "");
    cr_assert(!strncmp(c->buf, "HTTP/1.1 101 Switching Protocols\r\n", 34));
    cr_assert_not_null(strstr(c->buf, "Upgrade: x-upper\r\n"));
    c->len = 0;
    h_sends(c, "then more");
    while (c->len < 9)
        cr_assert_eq(h_fill(c, end), 1);
    cr_assert(!memcmp(c->buf, "THEN MORE", 9));
    h_close(c);
    /* no Upgrade asked: the app answers as HTTP */
    struct h_resp *r =
        h_request("GET /wstest/upgrade HTTP/1.1\r\nHost: t\r\n\r\n", 0, 400);
    h_resp_free(r);
    h_stop();
}

Test(ws, server_sent_events_are_framed_and_not_buffered_by_proxies)
{
    ws_start();
    struct h_resp *r = h_request("GET /wstest/sse?n=2 HTTP/1.1\r\nHost: t\r\n"
                                 "Connection: close\r\n\r\n",
                                 0, 200);
    cr_assert_str_eq(h_header(r, "Content-Type"),
                     "text/event-stream; charset=utf-8");
    cr_assert_str_eq(h_header(r, "Cache-Control"), "no-cache");
    cr_assert_str_eq(h_header(r, "X-Accel-Buffering"), "no");
    cr_assert_str_eq(r->body, "retry: 1000\n\n"
                              "event: tick\nid: 1\ndata: line1\n"
                              "data: line2 #1\n\n"
                              "event: tick\nid: 2\ndata: line1\n"
                              "data: line2 #2\n\n"
                              ": done\n\n");
    h_resp_free(r);
    h_stop();
}
