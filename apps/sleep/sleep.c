/*
 * sleep - GET /sleep?ms=N waits N milliseconds (0..60000, default 100), then
 * answers "slept N ms".
 *
 * The wait is co_sleep: the request's coroutine parks and the worker serves
 * everyone else meanwhile, so a thousand concurrent sleeps cost a thousand
 * small stacks, not a thousand threads. The fanout demo calls this one.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "coserve.h"

#define SLEEP_TEXT "text/plain; charset=utf-8"
#define SLEEP_DEFAULT_MS 100
#define SLEEP_MAX_MS 60000

static int sleep_bad(co_response_t *res, const char *why)
{
    char body[128];
    int n = snprintf(body, sizeof body, "400 bad request: %s\n", why);
    return co_res_send(res, 400, SLEEP_TEXT, body, (size_t)n);
}

/* Parses the ms parameter: digits only, at most SLEEP_MAX_MS. Returns the
 * value (the default when absent), or -1 if it is malformed or too large. */
static long sleep_ms(const co_request_t *req)
{
    char buf[16];
    ssize_t len = co_req_query_param(req, "ms", buf, sizeof buf);
    if (len < 0)
        return errno == ENOENT ? SLEEP_DEFAULT_MS : -1;
    if (len == 0)
        return -1;
    long ms = 0;
    for (ssize_t i = 0; i < len; i++) {
        if (buf[i] < '0' || buf[i] > '9')
            return -1;
        ms = ms * 10 + (buf[i] - '0');
        if (ms > SLEEP_MAX_MS)
            return -1;
    }
    return ms;
}

/* Writes ms (0..SLEEP_MAX_MS) in decimal at out; returns the digits'
 * count. */
static size_t sleep_digits(char *out, long ms)
{
    char rev[8];
    size_t n = 0;
    do
        rev[n++] = (char)('0' + ms % 10);
    while ((ms /= 10) > 0);
    for (size_t i = 0; i < n; i++)
        out[i] = rev[n - 1 - i];
    return n;
}

static int sleep_handler(co_request_t *req, co_response_t *res)
{
    const char *method = co_req_method(req);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        static const char refused[] = "405 method not allowed\n";
        if (co_res_header(res, "Allow", "GET, HEAD") < 0)
            return -1;
        return co_res_send(res, 405, SLEEP_TEXT, refused, sizeof refused - 1);
    }
    long ms = sleep_ms(req);
    if (ms < 0)
        return sleep_bad(res, "ms must be an integer from 0 to 60000");

    /* -1 only when cancelled (the server is stopping): nothing to answer. */
    if (co_sleep(co_deadline(ms)) < 0)
        return -1;

    /* The digits by hand, not snprintf: glibc's printf machinery was 2.8%
     * of the worker's CPU at 1,000 sleeping connections, more than the
     * deadline heap that wakes them. */
    char body[32] = "slept ";
    size_t n = 6 + sleep_digits(body + 6, ms);
    memcpy(body + n, " ms\n", 4);
    return co_res_send(res, 200, SLEEP_TEXT, body, n + 4);
}

COSERVE_APP(.name = "sleep", .mount = "/sleep", .handler = sleep_handler);
