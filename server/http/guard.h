/*
 * guard.h - the request guard: every co_req_* and co_res_* call checks that
 * it comes from where the request may be used (guard.c says why).
 */
#ifndef COSERVE_HTTP_GUARD_H
#define COSERVE_HTTP_GUARD_H

#include "core/hub.h"
#include "http/http.h"

/* What req->owner holds while no coroutine serves the record. */
extern struct co *const guard__none;
/* The rest of guard__check: returns for a coroutine the handler started
 * while it runs; aborts, naming the app and `call`, for every other. */
void guard__slow(const co_request_t *req, const char *call);
/* The handler is about to run in self: from now until req->live is
 * cleared, self and the coroutines started after may use req. */
void guard__begin(co_request_t *req, struct co *self);

/* The check at the top of every co_req_* and co_res_* call: the caller is
 * the coroutine serving req (one compare), else see guard__slow. */
static inline void guard__check(const co_request_t *req, const char *call)
{
    struct hub *hub = hub__self;
    if (__builtin_expect(!hub || hub->current != req->owner, 0))
        guard__slow(req, call);
}

#endif
