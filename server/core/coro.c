/* Coroutines: spawn, wait protocol, join, cancel (see coro.h). */
#include "core/coro.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/deadline.h"
#include "core/fiber.h"
#include "core/log.h"
#include "core/outcome.h"
#include "core/wait.h"

struct co *coro__self(const char *call)
{
    struct hub *hub = hub__require(call);
    if (!hub->current)
        log__fatal("%s called outside a coroutine (in the hub itself)", call);
    return hub->current;
}

/* ---- time ---------------------------------------------------------- */

int64_t co_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t co_deadline(int64_t ms)
{
    return ms < 0 ? -1 : co_now() + ms;
}

/* ---- switching ----------------------------------------------------- */

/* Leaves the running coroutine for the hub; returns when resumed. errno is
 * per thread, so it is kept here, on the coroutine's own stack. */
static void coro_switch_out(struct co *co)
{
    int saved_errno = errno;
    struct hub *hub = co->hub;
    watchdog__beat(&hub->watchdog, 2); /* before the switch: see hub__resume */
    fiber_start(co->state == CORO_DONE ? NULL : &co->asan_fake,
                hub->asan_bottom, hub->asan_size);
    switch__jump(&co->ctx, &hub->ctx);
    fiber_finish(co->asan_fake, &hub->asan_bottom, &hub->asan_size);
    errno = saved_errno;
}

int64_t coro__bound(const struct co *co, int64_t deadline)
{
    for (const struct co_timeout *t = co->scopes; t; t = t->next) {
        if (t->deadline >= 0 && (deadline < 0 || t->deadline < deadline))
            deadline = t->deadline;
        if (t->shield)
            break; /* scopes outside a shield do not reach into it */
    }
    return deadline;
}

/* Runs (and clears) the coroutine's before_wait hook: cleared first, so
 * that a wait inside the hook does not run it again. */
static void coro_before_wait(struct co *self)
{
    void (*fn)(void *) = self->before_wait;
    self->before_wait = NULL;
    fn(self->before_wait_arg);
}

/* The one place every wait goes through: cancellation (unless a shield
 * holds it back) and the innermost timeout scopes apply here, so no wait
 * in core can miss them. */
int coro__park(struct co *self, int64_t deadline, int flags)
{
    if (self->before_wait)
        coro_before_wait(self);
    if (!(flags & CORO_PARK_NOCANCEL)) {
        if (coro__cancel_pending(self)) {
            errno = ECANCELED;
            return -1;
        }
        if (self->scopes)
            deadline = coro__bound(self, deadline);
    }
    struct hub *hub = self->hub;
    if (deadline >= 0) {
        if (deadline <= co_now()) {
            errno = ETIMEDOUT;
            return -1;
        }
        deadline__add(hub, self, deadline);
    }
    self->park_flags = flags;
    self->wait_err = 0;
    self->state = CORO_WAITING;
    coro_switch_out(self);
    if (deadline >= 0)
        deadline__remove(hub, self);
    if (self->wait_err) {
        errno = self->wait_err;
        return -1;
    }
    return 0;
}

void coro__wake(struct co *co, int err)
{
    if (co->state != CORO_WAITING)
        return;
    if (list_linked(&co->wait_link))
        list_remove(&co->wait_link);
    co->wait_err = err;
    co->state = CORO_READY;
    list_push_back(&co->hub->runq, &co->run_link);
}

int coro__wait_on(struct co *self, struct list *queue, int64_t deadline)
{
    list_push_back(queue, &self->wait_link);
    int rc = coro__park(self, deadline, 0);
    if (list_linked(&self->wait_link)) /* the wait failed before parking */
        list_remove(&self->wait_link);
    return rc;
}

struct co *coro__wake_first(struct list *queue, int err)
{
    if (list_empty(queue))
        return NULL;
    struct co *co = list_entry(queue->next, struct co, wait_link);
    coro__wake(co, err);
    return co;
}

/* ---- life and death ------------------------------------------------ */

/* Cancels and joins the children a coroutine left behind, so nothing it
 * started outlives it (structured concurrency). This wait ignores the
 * parent's own cancellation: returning early would orphan the children. */
/* The parent waits for a child's end as co_wait_any does (a watcher on
 * its done_watchers), never through the joiner slot: another coroutine may
 * sit in co_join() on the child, and taking its slot used to leave both
 * freeing the child (a double free). The parent alone frees it (`reaping`
 * tells a joiner not to), once a joiner woken by the child's end has run
 * and let go of it. */
static void coro_reap_children(struct co *self)
{
    struct list *n;
    while ((n = list_pop_front(&self->children))) {
        struct co *child = list_entry(n, struct co, child_link);
        child->parent = NULL;
        child->reaping = 1;
        co_cancel(child);
        if (child->state != CORO_DONE) {
            struct wait_node w = {.co = self, .index = -1};
            list_push_back(&child->done_watchers, &w.link);
            while (child->state != CORO_DONE)
                coro__park(self, -1, CORO_PARK_NOCANCEL);
            list_remove(&w.link);
        }
        while (child->joiner) { /* ready already: it runs before we do */
            self->state = CORO_READY;
            list_push_back(&self->hub->runq, &self->run_link);
            coro_switch_out(self);
        }
        coro__free(child);
    }
}

static void coro_entry(void *p)
{
    struct co *co = p;
    fiber_finish(NULL, &co->hub->asan_bottom, &co->hub->asan_size);
    co->result = co->fn(co->arg);
    /* the outcome is what the body left, before reaping (a cancel that
     * comes while the children are reaped changes nothing) */
    if (!co->exit_err && co->cancelled)
        co->exit_err = ECANCELED;
    coro_reap_children(co);
    co->state = CORO_DONE;
    if (co->joiner)
        coro__wake(co->joiner, 0);
    wait__notify(&co->done_watchers);
    coro_switch_out(co);
    log__fatal("finished coroutine %s was resumed", co_name(co));
}

struct co *coro__spawn(struct hub *hub, struct co *parent, co_fn fn, void *arg)
{
    struct co *co = hub->free_cos;
    if (co) {
        hub->free_cos = co->next_free;
    } else {
        if (!(co = malloc(sizeof *co)))
            return NULL;
        if (deadline__slot_new(hub, &co->dl_slot) < 0) {
            free(co);
            return NULL;
        }
    }
    /* every live coroutine may park with a deadline: room for it now, so
     * that parking never allocates */
    if (deadline__reserve(hub, hub->live + 1) < 0 ||
        stack__get(&hub->stacks, &co->stack) < 0) {
        co->next_free = hub->free_cos;
        hub->free_cos = co;
        errno = ENOMEM;
        return NULL;
    }
    co->hub = hub;
    co->state = CORO_READY;
    co->cancelled = co->detached = co->reaping = 0;
    co->park_flags = 0;
    co->wait_err = 0;
    co->fn = fn;
    co->arg = arg;
    co->result = NULL;
    list_init(&co->wait_link);
    list_init(&co->children);
    list_init(&co->child_link);
    co->parent = parent;
    if (parent)
        list_push_back(&parent->children, &co->child_link);
    co->joiner = NULL;
    co->wait_data = NULL;
    co->asan_fake = NULL;
    co->id = ++hub->next_id;
    co->name[0] = '\0'; /* "co-ID", formatted only if someone asks */
    co->describe = NULL;
    co->describe_arg = NULL;
    co->before_wait = NULL;
    co->exit_err = 0;
    co->exit_msg[0] = '\0';
    co->links = NULL;
    list_init(&co->done_watchers);
    co->scopes = NULL;
    co->shields = 0;
    ev_init(&co->io, NULL);
    switch__init(&co->ctx, co->stack.lo, co->stack.size, coro_entry, co);
    list_push_back(&hub->all, &co->all_link);
    hub->live++;
    list_push_back(&hub->runq, &co->run_link);
    return co;
}

void coro__finished(struct co *co)
{
    struct hub *hub = co->hub;
    stack__put(&hub->stacks, &co->stack);
    co->stack.map = NULL;
    list_remove(&co->all_link);
    hub->live--;
    outcome__run_links(co);
    if (co->detached)
        coro__free(co);
}

void coro__free(struct co *co)
{
    if (list_linked(&co->child_link))
        list_remove(&co->child_link);
    outcome__drop_links(co);
    co->next_free = co->hub->free_cos;
    co->hub->free_cos = co;
}

/* Idle structs and stacks kept through trims, and the most freed per trim
 * beyond half the excess. */
#define CORO_TRIM_KEEP 64
#define CORO_TRIM_STEP 256

size_t coro__trim(struct hub *hub)
{
    stack__pool_trim(&hub->stacks, CORO_TRIM_KEEP);
    /* the free list is LIFO: keep the warm head, free part of the tail */
    struct co **link = &hub->free_cos;
    size_t n = 0;
    while (*link && n < CORO_TRIM_KEEP)
        link = &(*link)->next_free, n++;
    size_t excess = 0;
    for (struct co *co = *link; co; co = co->next_free)
        excess++;
    size_t drop = excess <= CORO_TRIM_STEP      ? excess
                  : excess / 2 > CORO_TRIM_STEP ? excess / 2
                                                : CORO_TRIM_STEP;
    for (size_t i = 0; i < drop; i++) {
        struct co *co = *link;
        *link = co->next_free;
        deadline__slot_free(hub, co->dl_slot);
        free(co);
    }
    return drop * sizeof(struct co);
}

/* ---- public API ---------------------------------------------------- */

co_t *co_spawn(co_fn fn, void *arg)
{
    struct hub *hub = hub__require("co_spawn");
    return coro__spawn(hub, hub->current, fn, arg);
}

/* co_join's checks and wait: returns once co has finished, without
 * freeing it (0), or -1 with errno. */
static int coro_join_wait(struct co *self, struct co *co, int64_t deadline)
{
    if (co == self) {
        errno = EDEADLK;
        return -1;
    }
    if (co->detached || (co->joiner && co->joiner != self)) {
        errno = EINVAL;
        return -1;
    }
    while (co->state != CORO_DONE) {
        co->joiner = self;
        int rc = coro__park(self, deadline, 0);
        co->joiner = NULL;
        if (rc < 0 && co->state != CORO_DONE)
            return -1;
    }
    return 0;
}

int co_join(co_t *co, void **result, int64_t deadline)
{
    if (coro_join_wait(coro__self("co_join"), co, deadline) < 0)
        return -1;
    if (result)
        *result = co->result;
    if (!co->reaping) /* else its parent's end frees it */
        coro__free(co);
    return 0;
}

int co_join_outcome(co_t *co, struct co_outcome *out, int64_t deadline)
{
    if (coro_join_wait(coro__self("co_join_outcome"), co, deadline) < 0)
        return -1;
    if (out) {
        out->value = co->result;
        out->err = co->exit_err;
        memcpy(out->msg, co->exit_msg, sizeof out->msg);
    }
    if (!co->reaping)
        coro__free(co);
    return 0;
}

int co_join_all(co_t **cos, size_t n, int64_t deadline)
{
    for (size_t i = 0; i < n; i++) {
        if (!cos[i])
            continue;
        if (co_join(cos[i], NULL, deadline) < 0)
            return -1;
        cos[i] = NULL;
    }
    return 0;
}

void co_detach(co_t *co)
{
    hub__require("co_detach");
    co->detached = 1;
    if (list_linked(&co->child_link))
        list_remove(&co->child_link);
    co->parent = NULL;
    if (co->state == CORO_DONE)
        coro__free(co);
}

void co_cancel(co_t *co)
{
    hub__require("co_cancel");
    if (co->state == CORO_DONE)
        return;
    co->cancelled = 1;
    if (co->state == CORO_WAITING && !(co->park_flags & CORO_PARK_NOCANCEL) &&
        !co->shields)
        coro__wake(co, ECANCELED);
}

co_t *co_current(void)
{
    /* a query, not a wait: answers NULL on threads without a hub too */
    return hub__self ? hub__self->current : NULL;
}

int co_cancelled(void)
{
    struct co *co = hub__require("co_cancelled")->current;
    return co && co->cancelled;
}

void co_set_name(co_t *co, const char *name)
{
    /* called per request by the server: a copy, not a printf */
    size_t n = strnlen(name, sizeof co->name - 1);
    memcpy(co->name, name, n);
    co->name[n] = '\0';
}

const char *co_name(const co_t *co)
{
    struct co *c = (struct co *)co;
    if (!c->name[0])
        snprintf(c->name, sizeof c->name, "co-%llu", (unsigned long long)c->id);
    return c->name;
}

int co_yield_now(void)
{
    struct co *self = coro__self("co_yield_now");
    if (self->before_wait)
        coro_before_wait(self);
    if (coro__cancel_pending(self)) {
        errno = ECANCELED;
        return -1;
    }
    self->state = CORO_READY;
    list_push_back(&self->hub->runq, &self->run_link);
    coro_switch_out(self);
    return 0;
}

int co_sleep(int64_t deadline)
{
    struct co *self = coro__self("co_sleep");
    if (coro__park(self, deadline, 0) == 0)
        log__fatal("coroutine %s woken from sleep by a stray wake",
                   co_name(self));
    if (errno != ETIMEDOUT)
        return -1;
    /* a timeout scope may have ended the sleep before its own deadline */
    if (deadline >= 0 && co_now() >= deadline)
        return 0;
    errno = ETIMEDOUT;
    return -1;
}
