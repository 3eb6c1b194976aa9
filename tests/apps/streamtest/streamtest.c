/*
 * streamtest - a stream app for tests/deploy/test_stream.c. On connect it
 * says "hello PID\n" (which worker serves the connection), then answers
 * each read in upper case. A read starting with "quit" ends the
 * connection; one starting with "crash" writes through NULL (SIGSEGV). A
 * read that fails is logged ("streamtest: read: REASON"), so a test sees
 * ECANCELED at the end of a grace period. No .listen: tests give
 * --stream-listen streamtest=ADDR. GET /streamtest answers "ok" (an app
 * can serve HTTP and a stream at once).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "coserve.h"

static int *volatile streamtest_nowhere;

static int streamtest_stream(int fd, const struct sockaddr *peer, socklen_t len)
{
    (void)peer;
    (void)len;
    char buf[4096];
    int n = snprintf(buf, sizeof buf, "hello %d\n", (int)getpid());
    if (write(fd, buf, (size_t)n) != n)
        return -1;
    ssize_t r;
    while ((r = read(fd, buf, sizeof buf)) > 0) {
        if (r >= 4 && memcmp(buf, "quit", 4) == 0)
            return 0;
        if (r >= 5 && memcmp(buf, "crash", 5) == 0)
            *streamtest_nowhere = 1;
        for (ssize_t i = 0; i < r; i++)
            buf[i] = (char)toupper((unsigned char)buf[i]);
        if (write(fd, buf, (size_t)r) != r)
            return -1;
    }
    if (r < 0)
        fprintf(stderr, "streamtest: read: %s\n", strerror(errno));
    return r < 0 ? -1 : 0;
}

static int streamtest_http(co_request_t *req, co_response_t *res)
{
    (void)req;
    return co_res_send(res, 200, "text/plain", "ok", 2);
}

COSERVE_APP(.name = "streamtest", .mount = "/streamtest",
            .handler = streamtest_http, .stream = streamtest_stream);
