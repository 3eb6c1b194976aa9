/*
 * test_logstall.c - an access log whose reader stops (stdout into a pipe
 * nobody reads) must not freeze the worker: requests keep being answered,
 * the lines that cannot be written are dropped and counted in the error
 * log, and the worker still stops on TERM.
 */
#include "harness.h"

TestSuite(logstall, .init = h_setup, .fini = h_teardown, .timeout = 90);

/* lines of ~1.1 KB: 6 MB in all, more than the pipe and the worker's
 * 4 MiB queue of lines together */
#define REQUESTS 5500

Test(logstall, a_stalled_access_log_drops_lines_not_requests)
{
    char fifo[256];
    snprintf(fifo, sizeof fifo, "%s/access.fifo", h_srv.dir);
    cr_assert_eq(mkfifo(fifo, 0600), 0, "mkfifo: %s", strerror(errno));
    /* a reader that never reads: the pipe fills and stays full */
    int reader = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    cr_assert_geq(reader, 0);
    h_start(H_ARGS("--workers", "1", "--access-log", fifo));
    char pad[1001];
    memset(pad, 'q', 1000);
    pad[1000] = '\0';
    char *req = h_fmt("GET /hello?%s HTTP/1.1\r\nHost: t\r\n\r\n", pad);
    struct h_conn *c = h_connect();
    int ok = 0;
    for (int i = 0; i < REQUESTS; i++) {
        h_sends(c, req);
        struct h_resp *r = h_response(c, 0);
        ok += r->status == 200;
        h_resp_free(r);
    }
    h_close(c);
    free(req);
    cr_assert_eq(ok, REQUESTS);
    cr_assert(h_wait_stderr("lines dropped", H_GUARD_MS),
              "no report of dropped lines:\n%s", h_stderr_tail(2000));
    h_stop(); /* within its guard, exit status 0, a clean log */
    close(reader);
}
