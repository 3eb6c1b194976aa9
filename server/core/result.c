/*
 * co_result: gevent's AsyncResult, a value or an error set once, for any
 * number of waiters.
 *
 * The setter writes the outcome into each waiter's own slot (on the
 * waiter's stack) before waking it, so a woken waiter never reads the
 * result again: the setter may free it as soon as co_result_set returns.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/coro.h"
#include "core/log.h"

enum result_state { RESULT_EMPTY, RESULT_VALUE, RESULT_ERROR };

struct co_result {
    enum result_state state;
    int err;
    void *value;
    struct list waiters; /* wait_data = struct result_slot */
    char msg[128];       /* "" if none */
};

/* Where a waiter receives the outcome. */
struct result_slot {
    void *value;
    int err;
};

co_result_t *co_result_new(void)
{
    co_result_t *r = malloc(sizeof *r);
    if (!r)
        return NULL;
    r->state = RESULT_EMPTY;
    r->err = 0;
    r->value = NULL;
    r->msg[0] = '\0';
    list_init(&r->waiters);
    return r;
}

void co_result_free(co_result_t *r)
{
    if (!r)
        return;
    if (!list_empty(&r->waiters))
        log__fatal("co_result_free: coroutines still wait on the result");
    free(r);
}

/* Stores the outcome and hands it to every waiter, longest first. */
static int result_settle(co_result_t *r, enum result_state state, void *value,
                         int err)
{
    if (r->state != RESULT_EMPTY) {
        errno = EALREADY;
        return -1;
    }
    r->state = state;
    r->value = value;
    r->err = err;
    struct list *n;
    while ((n = list_pop_front(&r->waiters))) {
        struct co *co = list_entry(n, struct co, wait_link);
        struct result_slot *slot = co->wait_data;
        slot->value = value;
        slot->err = err;
        coro__wake(co, 0);
    }
    return 0;
}

int co_result_set(co_result_t *r, void *value)
{
    hub__require("co_result_set");
    return result_settle(r, RESULT_VALUE, value, 0);
}

int co_result_set_error(co_result_t *r, int err, const char *msg)
{
    hub__require("co_result_set_error");
    if (err <= 0) {
        errno = EINVAL;
        return -1;
    }
    if (r->state != RESULT_EMPTY) {
        errno = EALREADY;
        return -1;
    }
    size_t n = msg ? strnlen(msg, sizeof r->msg - 1) : 0;
    memcpy(r->msg, msg ? msg : "", n);
    r->msg[n] = '\0';
    return result_settle(r, RESULT_ERROR, NULL, err);
}

int co_result_ready(const co_result_t *r)
{
    return r->state != RESULT_EMPTY;
}

int co_result_successful(const co_result_t *r)
{
    return r->state == RESULT_VALUE;
}

const char *co_result_message(const co_result_t *r)
{
    return r->state == RESULT_ERROR && r->msg[0] ? r->msg : NULL;
}

int co_result_get_nowait(const co_result_t *r, void **value)
{
    switch (r->state) {
    case RESULT_EMPTY:
        errno = EAGAIN;
        return -1;
    case RESULT_ERROR:
        errno = r->err;
        return -1;
    case RESULT_VALUE:
        break;
    }
    if (value)
        *value = r->value;
    return 0;
}

int co_result_get(co_result_t *r, void **value, int64_t deadline)
{
    struct co *self = coro__self("co_result_get");
    if (coro__cancel_pending(self)) {
        errno = ECANCELED;
        return -1;
    }
    if (r->state != RESULT_EMPTY)
        return co_result_get_nowait(r, value);
    struct result_slot slot = {NULL, 0};
    self->wait_data = &slot;
    if (coro__wait_on(self, &r->waiters, deadline) < 0)
        return -1;
    if (slot.err) {
        errno = slot.err;
        return -1;
    }
    if (value)
        *value = slot.value;
    return 0;
}
