/*
 * Outcomes (see outcome.h): a coroutine ends with its body's value and an
 * errno (0 for success), set by co_fail() or ECANCELED by a cancel; others
 * ask without joining, or get called back (co_link) when it ends.
 */
#include "core/outcome.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/coro.h"
#include "core/log.h"

void *co_fail(int err, const char *msg)
{
    struct co *self = coro__self("co_fail");
    self->exit_err = err > 0 ? err : EINVAL;
    size_t n = msg ? strnlen(msg, sizeof self->exit_msg - 1) : 0;
    memcpy(self->exit_msg, msg ? msg : "", n);
    self->exit_msg[n] = '\0';
    return NULL;
}

int co_ready(const co_t *co)
{
    return co->state == CORO_DONE;
}

int co_successful(const co_t *co)
{
    return co->state == CORO_DONE && co->exit_err == 0;
}

int co_error(const co_t *co, const char **msg)
{
    int done = co->state == CORO_DONE;
    if (msg)
        *msg = done ? co->exit_msg : "";
    return done ? co->exit_err : 0;
}

int co_link(co_t *co, co_link_fn fn, void *arg)
{
    hub__require("co_link");
    if (co->state == CORO_DONE) {
        fn(co, arg);
        return 0;
    }
    struct coro_link *l = malloc(sizeof *l);
    if (!l)
        return -1;
    l->fn = fn;
    l->arg = arg;
    l->next = NULL;
    struct coro_link **tail = &co->links;
    while (*tail)
        tail = &(*tail)->next;
    *tail = l;
    return 0;
}

int co_unlink(co_t *co, co_link_fn fn, void *arg)
{
    hub__require("co_unlink");
    for (struct coro_link **p = &co->links; *p; p = &(*p)->next) {
        if ((*p)->fn == fn && (*p)->arg == arg) {
            struct coro_link *l = *p;
            *p = l->next;
            free(l);
            return 0;
        }
    }
    errno = ENOENT;
    return -1;
}

void outcome__run_links(struct co *co)
{
    /* taken off co first: a callback that links again to co (finished)
     * runs at once instead of growing the list being walked */
    struct coro_link *l = co->links;
    co->links = NULL;
    while (l) {
        struct coro_link *next = l->next;
        l->fn(co, l->arg);
        free(l);
        l = next;
    }
}

void outcome__drop_links(struct co *co)
{
    while (co->links) {
        struct coro_link *next = co->links->next;
        free(co->links);
        co->links = next;
    }
}
