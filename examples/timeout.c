/*
 * timeout: gevent.Timeout as a scope. A slow step is cut short by the
 * scope's deadline without cancelling the coroutine, which carries on;
 * nested scopes: the inner one expiring leaves the outer one running. The
 * gevent program is examples/py/timeout.py; both print
 * examples/timeout.expected.
 */
#include <errno.h>
#include <stdio.h>

#include "coserve.h"

/* A step that takes `ms`, or less if a scope's deadline comes first. */
static int step(const char *name, int ms)
{
    printf("%s: starts (%d ms)\n", name, ms);
    if (co_sleep(co_deadline(ms)) < 0) {
        printf("%s: cut short (%s)\n", name,
               errno == ETIMEDOUT ? "timeout" : "cancelled");
        return -1;
    }
    printf("%s: done\n", name);
    return 0;
}

static void *timeout_main(void *unused)
{
    (void)unused;
    co_timeout_t t;
    co_timeout_begin(&t, co_deadline(100));
    step("slow step", 1000);
    printf("scope expired: %s\n", co_timeout_end(&t) ? "yes" : "no");

    co_timeout_t outer, inner;
    co_timeout_begin(&outer, co_deadline(500));
    co_timeout_begin(&inner, co_deadline(50));
    step("inner step", 200);
    printf("inner expired: %s\n", co_timeout_end(&inner) ? "yes" : "no");
    step("outer step", 100);
    printf("outer expired: %s\n", co_timeout_end(&outer) ? "yes" : "no");

    step("after the scopes", 10);
    return NULL;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (co_run(timeout_main, NULL, NULL) < 0) {
        perror("timeout: co_run");
        return 1;
    }
    return 0;
}
