/*
 * slowload - a test app that is slow to load: with COSERVE_TEST_SLOWLOAD_MS
 * set, its constructor sleeps that long inside dlopen(), so a worker that
 * loads it stays in its startup (forked, apps not loaded, not serving yet)
 * long enough for a test to signal it there. Without the variable it
 * loads at once. GET /slowload answers "loaded".
 */
#include <stdlib.h>
#include <time.h>

#include "coserve.h"

__attribute__((constructor)) static void slowload_ctor(void)
{
    const char *ms = getenv("COSERVE_TEST_SLOWLOAD_MS");
    long v = ms ? strtol(ms, NULL, 10) : 0;
    if (v <= 0 || v > 10000)
        return;
    struct timespec ts = {v / 1000, (v % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0)
        ;
}

static int slowload(co_request_t *req, co_response_t *res)
{
    (void)req;
    return co_res_send(res, 200, "text/plain; charset=utf-8", "loaded\n", 7);
}

COSERVE_APP(.name = "slowload", .mount = "/slowload", .handler = slowload);
