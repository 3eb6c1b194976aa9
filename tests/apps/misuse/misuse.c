/*
 * misuse - a test app that breaks the response API's rules, mounted at
 * /misuse (see tests/http/test_guardrails.c).
 *
 *   /misuse/twice              co_res_send twice: the second fails with
 *                              EALREADY; the body says what it returned
 *   /misuse/header_after_head  co_res_header and co_res_status after a
 *                              flush: EALREADY, said in the (streamed) body
 *   /misuse/after              a detached coroutine keeps the response and
 *                              writes after the handler returned: aborts
 *   /misuse/after_req          the same with co_req_path on the request
 *   /misuse/keep, /release     /keep leaves a detached coroutine holding its
 *                              response; /release wakes it while /release's
 *                              own handler runs (maybe in the same pooled
 *                              record): the stale write aborts
 *   /misuse/fail_after_flush   streams part of a body, then returns -1
 *   /misuse/fail_after_send    co_res_send, then -1 (nothing left yet): 500
 *   /misuse/children           legitimate use from children the handler
 *                              joins and from a pool's (detached) members
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "coserve.h"

/* What a call returned, as body text: "-1 EALREADY" or "0". */
static int misuse_report(co_response_t *res, const char *what, int rc)
{
    char line[128];
    int n = snprintf(line, sizeof line, "%s: %d%s\n", what, rc,
                     rc < 0 && errno == EALREADY ? " EALREADY"
                     : rc < 0                    ? " other-errno"
                                                 : "");
    return co_res_write(res, line, (size_t)n);
}

static int misuse_twice(co_response_t *res)
{
    if (co_res_send(res, 200, "text/plain", "first\n", 6) < 0)
        return -1;
    int rc = co_res_send(res, 201, "text/html", "second\n", 7);
    return misuse_report(res, "second send", rc);
}

static int misuse_header_after_head(co_response_t *res)
{
    if (co_res_write(res, "streamed\n", 9) < 0 || co_res_flush(res) < 0)
        return -1;
    int rc = co_res_header(res, "X-Late", "1");
    if (misuse_report(res, "header", rc) < 0)
        return -1;
    rc = co_res_status(res, 500);
    if (misuse_report(res, "status", rc) < 0)
        return -1;
    rc = co_res_send(res, 200, "text/plain", "again\n", 6);
    return misuse_report(res, "send", rc);
}

/* Runs once the handler that spawned it has returned (the handler never
 * waits, so this first runs after it). */
static void *misuse_late_write(void *arg)
{
    co_yield_now();
    int rc = co_res_write(arg, "late\n", 5);
    fprintf(stderr, "misuse: the late write returned %d\n", rc);
    return NULL;
}

static void *misuse_late_read(void *arg)
{
    co_yield_now();
    const char *path = co_req_path(arg);
    fprintf(stderr, "misuse: the late read returned %s\n",
            path ? path : "NULL");
    return NULL;
}

static int misuse_after(co_request_t *req, co_response_t *res, int read)
{
    co_t *co = read ? co_spawn(misuse_late_read, req)
                    : co_spawn(misuse_late_write, res);
    if (!co)
        return -1;
    co_detach(co);
    return co_res_send(res, 200, "text/plain", "returned\n", 9);
}

/* /keep's coroutine and /release's signal (one worker in the test). */
static co_event_t *misuse_release;

static void *misuse_kept_write(void *arg)
{
    if (co_event_wait(misuse_release, -1) < 0)
        return NULL;
    int rc = co_res_write(arg, "stale\n", 6);
    fprintf(stderr, "misuse: the stale write returned %d\n", rc);
    return NULL;
}

static int misuse_keep(co_response_t *res)
{
    if (!misuse_release && !(misuse_release = co_event_new()))
        return -1;
    co_t *co = co_spawn(misuse_kept_write, res);
    if (!co)
        return -1;
    co_detach(co);
    return co_res_send(res, 200, "text/plain", "kept\n", 5);
}

static int misuse_do_release(co_response_t *res)
{
    if (!misuse_release)
        return co_res_send(res, 409, "text/plain", "nothing kept\n", 13);
    co_event_set(misuse_release);
    /* let the kept coroutine run while this handler is still in progress */
    for (int i = 0; i < 3; i++)
        co_yield_now();
    return co_res_send(res, 200, "text/plain", "released\n", 10);
}

static int misuse_fail_after_flush(co_response_t *res)
{
    static const char part[] = "partial body ";
    if (co_res_write(res, part, sizeof part - 1) < 0 || co_res_flush(res) < 0)
        return -1;
    errno = EIO;
    return -1;
}

static int misuse_fail_after_send(co_response_t *res)
{
    if (co_res_send(res, 200, "text/plain", "unsent\n", 7) < 0)
        return -1;
    errno = EIO;
    return -1;
}

struct misuse_child {
    co_request_t *req;
    co_response_t *res;
    int n;
};

static void *misuse_child_run(void *arg)
{
    struct misuse_child *c = arg;
    co_yield_now(); /* the handler is waiting in co_join_all meanwhile */
    char line[256];
    int n = snprintf(line, sizeof line, "child %d: %s %s\n", c->n,
                     co_req_method(c->req), co_req_path(c->req));
    co_res_write(c->res, line, (size_t)n);
    return NULL;
}

struct misuse_task {
    co_request_t *req;
    const char *host;
};

/* A pool member: a detached coroutine the handler waits for. */
static void *misuse_pool_task(void *arg)
{
    struct misuse_task *t = arg;
    t->host = co_req_header(t->req, "Host");
    return NULL;
}

static int misuse_children(co_request_t *req, co_response_t *res)
{
    struct misuse_child kids[2] = {{req, res, 1}, {req, res, 2}};
    co_t *cos[2];
    for (int i = 0; i < 2; i++)
        if (!(cos[i] = co_spawn(misuse_child_run, &kids[i])))
            return -1;
    if (co_join_all(cos, 2, -1) < 0)
        return -1;
    co_pool_t *pool = co_pool_new(2);
    if (!pool)
        return -1;
    struct misuse_task tasks[2] = {{req, NULL}, {req, NULL}};
    int rc = 0;
    for (int i = 0; i < 2 && rc == 0; i++)
        rc = co_pool_spawn(pool, misuse_pool_task, &tasks[i], -1);
    if (rc == 0)
        rc = co_pool_join(pool, -1);
    co_pool_free(pool);
    if (rc < 0 || !tasks[0].host || !tasks[1].host)
        return -1;
    char line[256];
    int n = snprintf(line, sizeof line, "pool: %s %s\n", tasks[0].host,
                     tasks[1].host);
    return co_res_write(res, line, (size_t)n);
}

static int misuse_handler(co_request_t *req, co_response_t *res)
{
    const char *info = co_req_path_info(req);
    if (strcmp(info, "/twice") == 0)
        return misuse_twice(res);
    if (strcmp(info, "/header_after_head") == 0)
        return misuse_header_after_head(res);
    if (strcmp(info, "/after") == 0)
        return misuse_after(req, res, 0);
    if (strcmp(info, "/after_req") == 0)
        return misuse_after(req, res, 1);
    if (strcmp(info, "/keep") == 0)
        return misuse_keep(res);
    if (strcmp(info, "/release") == 0)
        return misuse_do_release(res);
    if (strcmp(info, "/fail_after_flush") == 0)
        return misuse_fail_after_flush(res);
    if (strcmp(info, "/fail_after_send") == 0)
        return misuse_fail_after_send(res);
    if (strcmp(info, "/children") == 0)
        return misuse_children(req, res);
    return co_res_send(res, 404, "text/plain", "no such misuse\n", 15);
}

COSERVE_APP(.name = "misuse", .mount = "/misuse", .handler = misuse_handler);
