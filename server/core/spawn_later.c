/*
 * co_spawn_later: gevent.spawn_later, a coroutine that starts fn(arg) after
 * a delay.
 *
 * It is an ordinary child coroutine that first sleeps until its start
 * time, so the caller gets a real handle: join, detach and cancel work as
 * for co_spawn(), and a cancel before the start ends the sleep instead of
 * running fn. The cost while it waits is a parked coroutine: its struct
 * and the few pages of stack it touched (stacks are pooled, see stack.c).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/coro.h"

struct later {
    co_fn fn;
    void *arg;
    int64_t start; /* co_now() time to call fn */
};

static void *later_run(void *p)
{
    struct later l = *(struct later *)p;
    free(p);
    /* co_sleep fails only when cancelled; a cancel that lands after the
     * timer fired but before we ran must still keep fn from running */
    if (co_sleep(l.start) < 0 || co_cancelled())
        return NULL;
    return l.fn(l.arg);
}

co_t *co_spawn_later(int64_t delay_ms, co_fn fn, void *arg)
{
    hub__require("co_spawn_later");
    if (delay_ms < 0 || !fn) {
        errno = EINVAL;
        return NULL;
    }
    struct later *l = malloc(sizeof *l);
    if (!l)
        return NULL;
    int64_t now = co_now();
    if (delay_ms > INT64_MAX - now) /* "never", in effect */
        delay_ms = INT64_MAX - now;
    *l = (struct later){fn, arg, now + delay_ms};
    co_t *co = co_spawn(later_run, l);
    if (!co)
        free(l);
    return co;
}
