/*
 * The request guard: every co_req_* and co_res_* call first checks that it
 * comes from where the request may be used (http.h's guard__check).
 *
 * Request records are pooled: once a handler returns, its co_request_t may
 * sit in the pool or already serve the next request, so a pointer an app
 * kept would silently read another client's request or write into another
 * client's response. The check is one compare on the hot path: the caller
 * is the coroutine serving the record (req->owner: the handler itself, or
 * the server finishing the request). Anything else comes here, where the
 * rare legitimate callers are told from the bugs:
 *
 *   - a coroutine started while the handler runs (its children, a pool's
 *     members, which run detached) may use the request until the handler
 *     returns: ids grow with every spawn, so "started since" is one compare;
 *   - after the handler returned (req->live is 0), or from a coroutine older
 *     than the handler (one an earlier request on the same record left
 *     behind), the call aborts the worker with a message naming the app, as
 *     a call from the wrong thread does. It is a bug, not an error.
 *
 * Best effort by nature: a pointer kept long enough may point at a record
 * the pool trim freed (ASan reports that), or be used by a coroutine of a
 * concurrent request started after this handler began (not caught).
 */
#include "core/log.h"
#include "core/coro.h"
#include "http/guard.h"
#include "http/http.h"

/* Where a record stands when no coroutine serves it (in the pool, or a
 * head still arriving): compares unequal to every coroutine. */
static char guard_nobody;
struct co *const guard__none = (struct co *)&guard_nobody;

static const char *guard_app(const co_request_t *req)
{
    return req->route ? req->route->name : "(unknown)";
}

void guard__slow(const co_request_t *req, const char *call)
{
    struct hub *hub = hub__self;
    if (!hub)
        log__fatal("app %s: %s called from a thread that runs no hub: "
                   "offload threads and plain threads must not use the "
                   "request or its response",
                   guard_app(req), call);
    struct co *self = hub->current;
    if (!self)
        log__fatal("app %s: %s called outside a coroutine (in the hub "
                   "itself)",
                   guard_app(req), call);
    if (req->live && self->id > req->first_id)
        return; /* started while the handler runs: its helper */
    if (!req->live)
        log__fatal("app %s: %s called after its handler returned (from "
                   "coroutine %s)",
                   guard_app(req), call, co_name(self));
    log__fatal("app %s: %s called from coroutine %s, which is older than "
               "the request's handler: a request or response kept after its "
               "handler returned",
               guard_app(req), call, co_name(self));
}

void guard__begin(co_request_t *req, struct co *self)
{
    req->owner = self;
    req->first_id = self->hub->next_id;
    req->live = 1;
}
