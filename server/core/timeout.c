/*
 * Timeout scopes and shields (gevent.Timeout, and cleanup after a cancel).
 *
 * A scope is a node the caller owns, on its coroutine's list of scopes
 * (innermost first). Nothing here arms a timer: coro__park() bounds every
 * wait by coro__bound(), the earliest deadline of the scopes up to the
 * innermost shield, and a shield also holds a cancel back
 * (coro__cancel_pending). So a scope costs nothing until a wait, and an
 * expired scope leaves no trace once it is ended.
 */
#include <errno.h>

#include "core/coro.h"

static void timeout_push(struct co *self, co_timeout_t *t, int64_t deadline,
                         unsigned shield)
{
    t->deadline = deadline;
    t->shield = shield;
    t->next = self->scopes;
    self->scopes = t;
    self->shields += shield;
}

/* Takes t off self's scopes wherever it is (an outer scope may end
 * first). Returns 0 if t was not there. */
static int timeout_pop(struct co *self, co_timeout_t *t)
{
    for (co_timeout_t **p = &self->scopes; *p; p = &(*p)->next) {
        if (*p == t) {
            *p = t->next;
            self->shields -= t->shield;
            return 1;
        }
    }
    return 0;
}

void co_timeout_begin(co_timeout_t *t, int64_t deadline)
{
    timeout_push(coro__self("co_timeout_begin"), t,
                 deadline < 0 ? -1 : deadline, 0);
}

int co_timeout_expired(const co_timeout_t *t)
{
    return t->deadline >= 0 && co_now() >= t->deadline;
}

int co_timeout_end(co_timeout_t *t)
{
    if (!timeout_pop(coro__self("co_timeout_end"), t))
        return 0;
    return co_timeout_expired(t);
}

int co_shield_begin(co_shield_t *s, int64_t deadline)
{
    struct co *self = coro__self("co_shield_begin");
    if (deadline < 0) {
        errno = EINVAL;
        return -1;
    }
    timeout_push(self, s, deadline, 1);
    return 0;
}

int co_shield_end(co_shield_t *s)
{
    return co_timeout_end(s);
}
