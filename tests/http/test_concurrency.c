/*
 * test_concurrency.c - many clients at once, and clients that vanish: 1,000
 * concurrent sleeps all answered, resets in the middle of a head, a body or
 * a streamed response leave the server serving, and fanout's outbound
 * requests to the server itself all come back.
 *
 * Nothing here asserts on time: only counts and contents.
 */
#include "harness.h"

TestSuite(concurrency, .fini = h_teardown, .timeout = 90);

#define GET_HELLO "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n"

Test(concurrency, a_thousand_concurrent_sleeps_are_all_answered)
{
    enum { N = 1000 };
    h_raise_nofile(N + 256);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    cr_assert_geq(rl.rlim_cur, N + 64, "RLIMIT_NOFILE %llu is too low",
                  (unsigned long long)rl.rlim_cur);
    h_start(NULL);
    struct h_conn **c = calloc(N, sizeof *c);
    /* open them all first, then send every request, then read: all 1,000
     * are in the server at once */
    for (int i = 0; i < N; i++) {
        c[i] = h_try_connect();
        cr_assert_not_null(c[i], "connection %d failed: %s", i,
                           strerror(errno));
    }
    static const char req[] = "GET /sleep?ms=200 HTTP/1.1\r\nHost: t\r\n\r\n";
    for (int i = 0; i < N; i++)
        h_send(c[i], req, sizeof req - 1);

    int ok = 0, other = 0, failed = 0, pending = N;
    int *done = calloc(N, sizeof *done);
    struct pollfd *pf = calloc(N, sizeof *pf);
    int *idx = calloc(N, sizeof *idx);
    int64_t deadline = h_now_ms() + 60000; /* a guard against a hang only */
    while (pending > 0 && h_now_ms() < deadline) {
        int n = 0;
        for (int i = 0; i < N; i++)
            if (!done[i]) {
                pf[n] = (struct pollfd){c[i]->fd, POLLIN, 0};
                idx[n++] = i;
            }
        if (poll(pf, (nfds_t)n, 1000) <= 0)
            continue;
        for (int k = 0; k < n; k++) {
            if (!pf[k].revents)
                continue;
            int i = idx[k];
            h_read_now(c[i]);
            struct h_resp r;
            char why[256];
            int rc = h_parse_response(c[i], &r, 0, why, sizeof why);
            if (rc == 0 && !c[i]->eof)
                continue;
            done[i] = 1;
            pending--;
            if (rc == 1) {
                if (r.status == 200 && strcmp(r.body, "slept 200 ms\n") == 0)
                    ok++;
                else
                    other++;
                free(r.head);
                free(r.lines);
                free(r.body);
                free(r.trailers);
            } else {
                failed++;
            }
        }
    }
    cr_assert_eq(pending, 0, "%d requests got no answer at all", pending);
    cr_assert_eq(failed, 0, "%d connections broke", failed);
    cr_assert_eq(other, 0, "%d answers were not 200 \"slept 200 ms\"", other);
    cr_assert_eq(ok, N);
    for (int i = 0; i < N; i++)
        h_close(c[i]);
    free(c);
    free(done);
    free(pf);
    free(idx);
    h_assert_serving();
    h_stop();
}

Test(concurrency, many_concurrent_keep_alive_clients_each_get_their_own_answers)
{
    enum { N = 100, ROUNDS = 5 };
    h_raise_nofile(N + 256);
    h_start(NULL);
    struct h_conn *c[N];
    for (int i = 0; i < N; i++)
        c[i] = h_connect();
    for (int round = 0; round < ROUNDS; round++) {
        for (int i = 0; i < N; i++) {
            /* each client echoes its own number: answers must not cross */
            char body[32];
            int bl =
                snprintf(body, sizeof body, "client %d round %d", i, round);
            char *raw = h_fmt("POST /echo HTTP/1.1\r\nHost: t\r\n"
                              "Content-Length: %d\r\n\r\n%s",
                              bl, body);
            h_sends(c[i], raw);
            free(raw);
        }
        for (int i = 0; i < N; i++) {
            struct h_resp *r = h_response(c[i], 0);
            char want[32];
            snprintf(want, sizeof want, "client %d round %d", i, round);
            cr_assert_eq(r->status, 200);
            cr_assert_str_eq(r->body, want);
            h_resp_free(r);
        }
    }
    for (int i = 0; i < N; i++)
        h_close(c[i]);
    h_stop();
}

Test(concurrency, a_reset_in_the_middle_of_a_head_leaves_the_server_serving)
{
    h_start(NULL);
    for (int i = 0; i < 20; i++) {
        struct h_conn *c = h_connect();
        h_sends(c, "GET /hello HTTP/1.1\r\nHost: t\r\nX-Half: ");
        h_reset(c);
    }
    /* and one that resets right after connecting */
    for (int i = 0; i < 20; i++)
        h_reset(h_connect());
    h_assert_serving();
    cr_assert(h_alive());
    h_stop();
}

Test(concurrency, a_reset_in_the_middle_of_a_body_leaves_the_server_serving)
{
    h_start(NULL);
    char half[500];
    memset(half, 'b', sizeof half);
    for (int i = 0; i < 20; i++) {
        /* Content-Length body */
        struct h_conn *c = h_connect();
        h_sends(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n"
                   "\r\n");
        h_send(c, half, sizeof half);
        h_sleep_ms(5); /* let the handler start reading */
        h_reset(c);
        /* chunked body, cut inside a chunk */
        c = h_connect();
        h_sends(c, "POST /echo HTTP/1.1\r\nHost: t\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n3e8\r\n");
        h_send(c, half, sizeof half);
        h_sleep_ms(5);
        h_reset(c);
        /* a 100-continue the client never follows up */
        c = h_connect();
        h_sends(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n"
                   "Expect: 100-continue\r\n\r\n");
        struct h_resp *r = h_response(c, 0);
        cr_assert_eq(r->status, 100);
        h_resp_free(r);
        h_reset(c);
    }
    h_assert_serving();
    h_stop();
}

Test(concurrency,
     a_reset_in_the_middle_of_a_streamed_response_leaves_the_server_serving)
{
    h_start(NULL);
    size_t n = 8 * 1024 * 1024;
    char *data = malloc(n);
    h_fill_random(data, n, 3);
    for (int i = 0; i < 4; i++) {
        struct h_conn *c = h_connect();
        /* shrink our receive buffer so the server's writes back up */
        int small = 4096;
        setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
        char *head = h_fmt("POST /echo HTTP/1.1\r\nHost: t\r\n%s\r\n",
                           i % 2 ? "Transfer-Encoding: chunked\r\n"
                                 : "Content-Length: 8388608\r\n");
        h_sends(c, head);
        free(head);
        /* send more than echo holds before answering (4 MiB), so it
         * streams the rest back; wait for response bytes and reset */
        size_t part = 5 * 1024 * 1024;
        if (i % 2) {
            char size[32];
            snprintf(size, sizeof size, "%zx\r\n", part);
            h_sends(c, size);
        }
        h_try_send(c, data, part);
        int64_t end = h_now_ms() + H_GUARD_MS;
        while (c->len == 0 && h_fill(c, end) > 0)
            ;
        cr_assert_gt(c->len, 0, "no response bytes before the reset");
        cr_assert(strncmp(c->buf, "HTTP/1.1 200", 12) == 0, "%.100s", c->buf);
        h_reset(c);
    }
    free(data);
    h_assert_serving();
    h_stop();
}

Test(
    concurrency,
    a_client_that_stops_reading_a_streamed_response_is_dropped_at_the_write_timeout)
{
    h_start(H_ARGS("--write-timeout", "300ms"));
    size_t n = 8 * 1024 * 1024;
    char *data = malloc(n);
    h_fill_random(data, n, 4);
    struct h_conn *c = h_connect();
    int small = 4096;
    setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    h_sends(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 8388608\r\n"
               "\r\n");
    /* send without reading: once both directions back up, the server's
     * write times out and it drops us (our send then fails) */
    const char *p = data;
    size_t left = n;
    int64_t end = h_now_ms() + 20000;
    int dropped = 0;
    while (left && h_now_ms() < end) {
        ssize_t w = send(c->fd, p, left, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            p += w;
            left -= (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            dropped = 1;
            break;
        }
        struct pollfd pf = {c->fd, POLLOUT, 0};
        poll(&pf, 1, 100);
        if (pf.revents & (POLLERR | POLLHUP)) {
            dropped = 1;
            break;
        }
    }
    free(data);
    /* either our send broke, or everything went through and the response
     * is cut short: never a complete echo of a stalled reader */
    if (!dropped) {
        /* drain what is there: the connection must end early */
        int64_t until = h_now_ms() + H_GUARD_MS;
        while (!c->eof && h_fill(c, until) >= 0)
            ;
        cr_assert(c->eof, "the server kept a stalled reader");
    }
    h_close(c);
    h_assert_serving();
    h_stop();
}

Test(concurrency, fanout_returns_one_line_per_outbound_request)
{
    h_start(NULL);
    struct h_resp *r =
        h_request("GET /fanout?n=10 HTTP/1.1\r\nHost: t\r\n\r\n", 0, 200);
    /* "i status bytes ms" x 10, then "total N ms" */
    char *body = strdup(r->body);
    int lines = 0, total = 0;
    char *save = NULL;
    for (char *line = strtok_r(body, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "total ", 6) == 0) {
            total++;
            continue;
        }
        int i, status;
        long long bytes, ms;
        cr_assert_eq(sscanf(line, "%d %d %lld %lld", &i, &status, &bytes, &ms),
                     4, "bad line '%s'", line);
        cr_assert_eq(i, lines, "line %d is numbered %d", lines, i);
        cr_assert_eq(status, 200, "call %d: '%s'", i, line);
        cr_assert_eq(bytes, (long long)strlen("slept 100 ms\n"), "'%s'", line);
        cr_assert_null(strstr(line, "error"), "'%s'", line);
        lines++;
    }
    cr_assert_eq(lines, 10, "want 10 result lines:\n%s", r->body);
    cr_assert_eq(total, 1, "want one total line:\n%s", r->body);
    free(body);
    h_resp_free(r);
    /* several fanouts at once */
    struct h_conn *c[5];
    for (int i = 0; i < 5; i++) {
        c[i] = h_connect();
        h_sends(c[i], "GET /fanout?n=20 HTTP/1.1\r\nHost: t\r\n\r\n");
    }
    for (int i = 0; i < 5; i++) {
        r = h_response(c[i], 0);
        cr_assert_eq(r->status, 200);
        int n = 0;
        for (const char *p = r->body; (p = strstr(p, " 200 ")); p++)
            n++;
        cr_assert_eq(n, 20, "fanout %d:\n%s", i, r->body);
        h_resp_free(r);
        h_close(c[i]);
    }
    h_stop();
}

Test(concurrency, stopping_with_requests_in_flight_lets_them_finish)
{
    h_start(NULL);
    enum { N = 20 };
    struct h_conn *c[N];
    /* /hello, then a sleep pipelined behind it: once /hello's answer is
     * here, the server has the sleep in its buffer and starts it at once
     * (it serves pipelined heads without going back to the event loop) */
    for (int i = 0; i < N; i++) {
        c[i] = h_connect();
        h_sends(c[i],
                GET_HELLO "GET /sleep?ms=500 HTTP/1.1\r\nHost: t\r\n\r\n");
    }
    for (int i = 0; i < N; i++) {
        struct h_resp *r = h_response(c[i], 0);
        cr_assert_eq(r->status, 200);
        h_resp_free(r);
    }
    kill(h_srv.pid, SIGTERM);
    for (int i = 0; i < N; i++) {
        struct h_resp *r = h_response(c[i], 0);
        cr_assert_eq(r->status, 200, "in-flight request %d: %d", i, r->status);
        cr_assert_str_eq(r->body, "slept 500 ms\n");
        cr_assert(h_header_has_token(r, "Connection", "close"),
                  "draining: the server says it closes:\n%s", r->head);
        h_resp_free(r);
        h_assert_closed(c[i]);
        h_close(c[i]);
    }
    h_stop(); /* SIGTERM again is harmless; asserts exit 0 */
}

Test(concurrency, connections_over_max_connections_wait_and_are_then_served)
{
    /* the limit is per worker: one worker makes it exact */
    h_start(H_ARGS("--workers", "1", "--max-connections", "2"));
    struct h_conn *a = h_connect(), *b = h_connect();
    h_sends(a, GET_HELLO);
    h_sends(b, GET_HELLO);
    struct h_resp *r = h_response(a, 0);
    h_resp_free(r);
    r = h_response(b, 0);
    h_resp_free(r);
    /* a third connects (the kernel's backlog) but is not served yet */
    struct h_conn *c = h_connect();
    h_sends(c, GET_HELLO);
    h_assert_open(c, 200);
    cr_assert_eq(c->len, 0, "served over the limit");
    /* one leaves: the third is served */
    h_close(a);
    r = h_response(c, 0);
    cr_assert_eq(r->status, 200);
    h_resp_free(r);
    h_close(b);
    h_close(c);
    h_stop();
}
