/*
 * test_pipeline.c - pipelined requests answered in batches: the responses
 * to the requests of one read go out in one write, in order, and a request
 * that waits never holds back the responses before it.
 *
 * The batch is counted in packets: the data segments the client's socket
 * received (TCP_INFO), whatever call the server wrote them with. The
 * server sets TCP_NODELAY, and over loopback each write leaves as its own
 * segment, so 16 responses written one by one arrive as 16.
 */
#include "harness.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>

TestSuite(pipeline, .init = h_setup, .fini = h_teardown, .timeout = 90);

#define HELLO "Hello, World!\n"
#define GET_HELLO "GET /hello HTTP/1.1\r\nHost: test\r\n\r\n"

/* The kernel's struct tcp_info goes on past glibc's copy (which ends at
 * tcpi_total_retrans): the fields after it as linux/tcp.h has them (that
 * header cannot be included beside netinet/tcp.h). */
struct tcp_info_more {
    struct tcp_info glibc;
    uint64_t pacing_rate, max_pacing_rate, bytes_acked, bytes_received;
    uint32_t segs_out, segs_in, notsent_bytes, min_rtt;
    uint32_t data_segs_in, data_segs_out;
};
_Static_assert(sizeof(struct tcp_info) == 104,
               "glibc's struct tcp_info changed: check tcp_info_more");

/* Data segments c's socket received so far. */
static long segments_in(struct h_conn *c)
{
    struct tcp_info_more ti;
    socklen_t len = sizeof ti;
    cr_assert_eq(getsockopt(c->fd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0,
                 "TCP_INFO: %s", strerror(errno));
    cr_assert_geq(len, offsetof(struct tcp_info_more, data_segs_out),
                  "this kernel's TCP_INFO has no data_segs_in");
    return (long)ti.data_segs_in;
}

static void assert_hello(const struct h_resp *r, int i)
{
    cr_assert_eq(r->status, 200, "response %d: status %d", i, r->status);
    cr_assert_str_eq(r->body, HELLO, "response %d", i);
}

Test(pipeline, sixteen_requests_in_one_read_get_one_write)
{
    h_start(H_ARGS("--workers", "1"));
    struct h_conn *c = h_connect();
    /* warm up: the connection's first request, alone */
    h_sends(c, GET_HELLO);
    struct h_resp *r = h_response(c, 0);
    assert_hello(r, -1);
    h_resp_free(r);

    enum { N = 16 };
    char all[N * sizeof GET_HELLO];
    size_t one = strlen(GET_HELLO);
    for (int i = 0; i < N; i++)
        memcpy(all + one * i, GET_HELLO, one);
    long before = segments_in(c);
    h_send(c, all, one * N);
    for (int i = 0; i < N; i++) {
        r = h_response(c, 0);
        assert_hello(r, i);
        h_resp_free(r);
    }
    long packets = segments_in(c) - before;
    cr_assert_eq(packets, 1,
                 "16 pipelined requests in one read got %ld packets back",
                 packets);
    h_assert_open(c, 100);
    h_close(c);
    h_stop();
}

/* The second request sleeps a minute: the first one's answer must not wait
 * for it (it would, were the batch written only at its end). */
Test(pipeline, a_waiting_request_does_not_hold_back_the_answers_before_it)
{
    h_start(H_ARGS("--workers", "1"));
    struct h_conn *c = h_connect();
    h_sends(c, GET_HELLO GET_HELLO
            "GET /sleep?ms=60000 HTTP/1.1\r\nHost: t\r\n\r\n" GET_HELLO);
    for (int i = 0; i < 2; i++) {
        struct h_resp *r = h_response(c, 0); /* bounded by the guard */
        assert_hello(r, i);
        h_resp_free(r);
    }
    h_close(c); /* the sleeper's client is gone: it is cancelled */
    /* and the worker serves others meanwhile */
    struct h_resp *r = h_request(GET_HELLO, 0, 200);
    assert_hello(r, 2);
    h_resp_free(r);
    h_stop();
}

/* A batch bigger than the held buffer (16 KiB), with a streamed response
 * (echo streams bodies over its buffer), a static file (sendfile), a 404
 * and a HEAD in the middle: every answer complete and in order. */
Test(pipeline, large_and_mixed_batches_keep_their_order)
{
    h_start(H_ARGS("--workers", "1", "--access-log", "off"));
    enum { N = 120, BODY = 1000, BIG = 200 * 1024 };
    size_t cap = (size_t)N * (BODY + 128) + BIG + 4096, len = 0;
    char *all = malloc(cap);
    char *big = malloc(BIG);
    h_fill_random(big, BIG, 7);
    for (int i = 0; i < N; i++) {
        if (i == 40) {
            len += (size_t)sprintf(all + len,
                                   "POST /echo HTTP/1.1\r\nHost: t\r\n"
                                   "Content-Length: %d\r\n\r\n",
                                   BIG);
            memcpy(all + len, big, BIG);
            len += BIG;
        } else if (i == 60) {
            len += (size_t)sprintf(all + len, "GET /hello.txt HTTP/1.1\r\n"
                                              "Host: t\r\n\r\n");
        } else if (i == 61) {
            len += (size_t)sprintf(all + len, "GET /no/such HTTP/1.1\r\n"
                                              "Host: t\r\n\r\n");
        } else if (i == 62) {
            len += (size_t)sprintf(all + len, "HEAD /hello HTTP/1.1\r\n"
                                              "Host: t\r\n\r\n");
        } else {
            len += (size_t)sprintf(all + len,
                                   "POST /echo HTTP/1.1\r\nHost: t\r\n"
                                   "Content-Length: %d\r\n\r\n",
                                   BODY);
            int n = sprintf(all + len, "%04d:", i);
            memset(all + len + n, 'a' + i % 26, BODY - (size_t)n);
            len += BODY;
        }
    }
    struct h_conn *c = h_connect();
    h_send(c, all, len);
    for (int i = 0; i < N; i++) {
        struct h_resp *r = h_response(c, i == 62 ? H_HEAD : 0);
        if (i == 40) {
            cr_assert_eq(r->status, 200);
            cr_assert_eq(r->body_len, (size_t)BIG);
            cr_assert(memcmp(r->body, big, BIG) == 0, "the streamed echo");
        } else if (i == 60) {
            cr_assert_eq(r->status, 200);
            cr_assert_str_eq(r->body, "hello, static\n");
        } else if (i == 61) {
            cr_assert_eq(r->status, 404);
        } else if (i == 62) {
            cr_assert_eq(r->status, 200);
            cr_assert_str_eq(h_header(r, "Content-Length"), "14");
        } else {
            char want[8];
            snprintf(want, sizeof want, "%04d:", i);
            cr_assert_eq(r->status, 200, "response %d", i);
            cr_assert_eq(r->body_len, (size_t)BODY, "response %d", i);
            cr_assert(memcmp(r->body, want, 5) == 0, "response %d: %.5s", i,
                      r->body);
            cr_assert_eq(r->body[BODY - 1], 'a' + i % 26, "response %d", i);
        }
        h_resp_free(r);
    }
    h_assert_open(c, 100);
    h_close(c);
    free(all);
    free(big);
    h_stop();
}

/* A client that pipelines without end and never reads: the server holds a
 * bounded batch, blocks on the full socket, and cuts the connection at the
 * write timeout; other clients are served all along. */
Test(pipeline, a_client_that_pipelines_and_never_reads_is_cut)
{
    h_start(H_ARGS("--workers", "1", "--write-timeout", "1s"));
    struct h_conn *c = h_connect();
    int fl = fcntl(c->fd, F_GETFL);
    fcntl(c->fd, F_SETFL, fl | O_NONBLOCK);
    size_t one = strlen(GET_HELLO);
    enum { K = 256 };
    char *chunk = malloc(one * K);
    for (int i = 0; i < K; i++)
        memcpy(chunk + one * i, GET_HELLO, one);
    int64_t deadline = h_now_ms() + 60000;
    int cut = 0;
    while (!cut && h_now_ms() < deadline) {
        ssize_t w = send(c->fd, chunk, one * K, MSG_NOSIGNAL);
        if (w >= 0)
            continue;
        if (errno == EPIPE || errno == ECONNRESET) {
            cut = 1;
            break;
        }
        cr_assert(errno == EAGAIN, "send: %s", strerror(errno));
        /* both directions are full: wait for the server to give up */
        struct pollfd p = {.fd = c->fd, .events = POLLOUT};
        poll(&p, 1, 1000);
        if (p.revents & (POLLERR | POLLHUP))
            cut = 1;
    }
    free(chunk);
    cr_assert(cut, "the server never cut the client that does not read");
    struct h_resp *r = h_request(GET_HELLO, 0, 200);
    assert_hello(r, 0);
    h_resp_free(r);
    h_close(c);
    h_stop();
}

/* The connection's timer is lazy (conn.c): a kept-alive connection used
 * again must live a whole keep-alive timeout from its last request, not
 * be closed when the timer set after its first one fires. The margins
 * are a second each way. */
Test(pipeline, a_kept_alive_connection_in_use_outlives_its_first_timeout)
{
    h_start(H_ARGS("--workers", "1", "--keepalive-timeout", "3s"));
    struct h_conn *c = h_connect();
    for (int i = 0; i < 3; i++) {
        if (i)
            h_sleep_ms(2000); /* at 2 s, then at 4 s: past the first 3 s */
        h_sends(c, GET_HELLO);
        struct h_resp *r = h_response(c, 0);
        assert_hello(r, i);
        h_resp_free(r);
    }
    h_close(c);
    h_stop();
}
