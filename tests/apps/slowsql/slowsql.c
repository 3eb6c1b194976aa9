/*
 * slowsql - a test app: GET /slowsql?ms=N runs one SQLite query that takes
 * about N milliseconds (default 200, at most 10000) on the offload pool, then
 * answers "slow N ms".
 *
 * The query is `SELECT slowsql_sleep(N)`, a SQL function that sleeps inside
 * sqlite3_step(), so an offload thread is held for the whole time the way a
 * slow real query would hold it. Each offload thread has its own in-memory
 * connection (co_offload_hook), so nothing here touches a file. Tests use it
 * to fill the pool and check the hub still answers everything else.
 *
 * GET /slowsql/inflight answers how many slow queries this worker's
 * requests are waiting on right now (no offload: the hub answers it).
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "coserve.h"

#define SLOWSQL_TEXT "text/plain; charset=utf-8"
#define SLOWSQL_DEFAULT_MS 200
#define SLOWSQL_MAX_MS 10000

static __thread sqlite3 *slowsql_db;
/* Requests waiting on a query; the hub's thread only. */
static int slowsql_inflight;
static __thread sqlite3_stmt *slowsql_stmt;

struct slowsql_job {
    int ms;
    int rc; /* 0, or -1 when the query failed */
};

static void slowsql_sleep_fn(sqlite3_context *ctx, int argc,
                             sqlite3_value **argv)
{
    (void)argc;
    int ms = sqlite3_value_int(argv[0]);
    sqlite3_sleep(ms);
    sqlite3_result_int(ctx, ms);
}

/* Offload hooks: the thread's connection, its function and statement. */
static void slowsql_thread_open(void *unused)
{
    (void)unused;
    if (sqlite3_open_v2(":memory:", &slowsql_db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK ||
        sqlite3_create_function(slowsql_db, "slowsql_sleep", 1, SQLITE_UTF8,
                                NULL, slowsql_sleep_fn, NULL,
                                NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(slowsql_db, "SELECT slowsql_sleep(?1)", -1,
                           &slowsql_stmt, NULL) != SQLITE_OK) {
        fprintf(stderr, "slowsql: cannot set up a connection: %s\n",
                sqlite3_errmsg(slowsql_db));
        sqlite3_close(slowsql_db);
        slowsql_db = NULL;
    }
}

static void slowsql_thread_close(void *unused)
{
    (void)unused;
    sqlite3_finalize(slowsql_stmt);
    sqlite3_close(slowsql_db);
    slowsql_stmt = NULL;
    slowsql_db = NULL;
}

static void slowsql_run(void *arg)
{
    struct slowsql_job *job = arg;
    job->rc = -1;
    if (!slowsql_stmt)
        return;
    sqlite3_bind_int(slowsql_stmt, 1, job->ms);
    if (sqlite3_step(slowsql_stmt) == SQLITE_ROW)
        job->rc = 0;
    sqlite3_reset(slowsql_stmt);
}

static int slowsql_handler(co_request_t *req, co_response_t *res)
{
    const char *method = co_req_method(req);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        if (co_res_header(res, "Allow", "GET, HEAD") < 0)
            return -1;
        return co_res_send(res, 405, SLOWSQL_TEXT, "405\n", 4);
    }
    char buf[16];
    if (strcmp(co_req_path_info(req), "/inflight") == 0) {
        int n = snprintf(buf, sizeof buf, "%d\n", slowsql_inflight);
        return co_res_send(res, 200, SLOWSQL_TEXT, buf, (size_t)n);
    }
    int ms = SLOWSQL_DEFAULT_MS;
    if (co_req_query_param(req, "ms", buf, sizeof buf) >= 0) {
        char *end;
        long v = strtol(buf, &end, 10);
        if (*end || end == buf || v < 0 || v > SLOWSQL_MAX_MS)
            return co_res_send(res, 400, SLOWSQL_TEXT, "bad ms\n", 7);
        ms = (int)v;
    }
    /* Heap, with free as abandon: a cancel (server stopping, request
     * timeout) ends the wait while the query still runs. */
    struct slowsql_job *job = calloc(1, sizeof *job);
    if (!job)
        return -1;
    job->ms = ms;
    if (co_cancelled()) { /* co_offload would fail without abandon */
        free(job);
        return -1;
    }
    slowsql_inflight++;
    int rc = co_offload(slowsql_run, job, free, -1);
    slowsql_inflight--;
    if (rc < 0) {
        if (errno == ENOMEM)
            free(job);
        return -1;
    }
    rc = job->rc;
    free(job);
    if (rc < 0)
        return -1;
    char body[32];
    int n = snprintf(body, sizeof body, "slow %d ms\n", ms);
    return co_res_send(res, 200, SLOWSQL_TEXT, body, (size_t)n);
}

static int slowsql_init(void)
{
    static int hooked;
    if (hooked)
        return 0;
    /* The hooks outlive the server's dlclose: stay mapped. */
    Dl_info info;
    if (!dladdr((void *)slowsql_init, &info) ||
        !dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE))
        return -1;
    if (co_offload_hook(slowsql_thread_open, slowsql_thread_close, NULL) < 0)
        return -1;
    hooked = 1;
    return 0;
}

COSERVE_APP(.name = "slowsql", .mount = "/slowsql", .init = slowsql_init,
            .handler = slowsql_handler);
