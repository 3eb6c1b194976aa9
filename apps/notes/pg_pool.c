/*
 * pg_pool.c - the per-worker libpq connection pool (see pg_pool.h).
 *
 * The limit is a semaphore of COSERVE_NOTES_PG_POOL permits: a permit is the
 * right to hold one connection, idle ones included, so the pool never has
 * more than that many open. Waiters queue on it in arrival order with the
 * pool's wait deadline: pgbouncer's query_wait_timeout, Go's
 * database/sql with SetMaxOpenConns and a context deadline.
 *
 * Liveness: a connection idle in the pool receives nothing unless the
 * server is going away (a FATAL "terminating connection" then EOF), so one
 * poll() without waiting before reuse tells a dead connection from a live
 * one, as pgx and Go's MySQL driver check theirs. A connection that breaks
 * during a query fails that request (503) and is closed at release.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notes.h"
#include "pg_pool.h"

#define PG_POOL_DEFAULT 4
#define PG_POOL_MAX 256
#define PG_WAIT_DEFAULT_MS 5000

struct pg_conn {
    PGconn *pq;
    int broken; /* a wait ended mid-query, or the connection failed */
    struct pg_conn *next;
};

/* One pool per worker process (one hub): made by pg_pool_open in the
 * app's init, after the fork, so no connection is ever shared. */
static struct {
    char *conninfo;
    int (*setup)(pg_conn_t *c);
    co_sem_t *slots;
    struct pg_conn *idle; /* most recently used first */
    unsigned size;
    int64_t wait_ms;
} pg_pool;

/* A positive integer from the environment, or def. */
static long pg_env_long(const char *name, long def, long max)
{
    const char *v = getenv(name);
    char *end;
    if (!v || !*v)
        return def;
    long n = strtol(v, &end, 10);
    if (*end || n < 1 || n > max) {
        fprintf(stderr, "notes: %s=%s is not a number in 1..%ld; using %ld\n",
                name, v, max, def);
        return def;
    }
    return n;
}

/* The server's one-line message (libpq's end with a newline). */
static void pg_log(const char *what, const char *msg)
{
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        n--;
    fprintf(stderr, "notes: PostgreSQL: %s: %.*s\n", what, (int)n, msg);
}

/* SQLSTATE classes that mean "try again later" (EAGAIN: the server is
 * unreachable, shutting down, starting, or out of connections) or "busy"
 * (EBUSY: a lock, deadlock, serialization failure or statement timeout);
 * anything else is a bug or a broken schema (EIO). */
static int pg_errno(PGconn *pq, const PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (PQstatus(pq) != CONNECTION_OK || !state)
        return EAGAIN;
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0 ||
        strncmp(state, "53", 2) == 0)
        return EAGAIN;
    if (strncmp(state, "40", 2) == 0 || strcmp(state, "55P03") == 0 ||
        strcmp(state, "57014") == 0)
        return EBUSY;
    return EIO;
}

/* Parks the coroutine until libpq's socket is ready for `events`. */
static int pg_wait(PGconn *pq, int events, int64_t deadline)
{
    int fd = PQsocket(pq);
    if (fd < 0) {
        errno = EAGAIN;
        return -1;
    }
    return co_wait_fd(fd, events, deadline);
}

/* NOTICEs ("relation already exists, skipping") are not for the log. */
static void pg_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static void pg_conn_free(struct pg_conn *c)
{
    PQfinish(c->pq);
    free(c);
}

/* Opens a connection with PQconnectStartParams/PQconnectPoll, waiting on
 * the hub: DNS through the server's name-lookup threads (its getaddrinfo
 * hook), connect, TLS and authentication each a co_wait_fd. */
static struct pg_conn *pg_connect(int64_t deadline)
{
    struct pg_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    /* dbname first with expand_dbname: the URI's settings, then ours,
     * which win (the notes are UTF-8; a name in pg_stat_activity). */
    const char *const keys[] = {"dbname", "client_encoding", "application_name",
                                NULL};
    const char *const vals[] = {pg_pool.conninfo, "UTF8", "coserve-notes",
                                NULL};
    c->pq = PQconnectStartParams(keys, vals, 1);
    if (!c->pq) {
        free(c);
        errno = ENOMEM;
        return NULL;
    }
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    while (PQstatus(c->pq) != CONNECTION_BAD && st != PGRES_POLLING_OK &&
           st != PGRES_POLLING_FAILED) {
        int ev = st == PGRES_POLLING_READING ? CO_READABLE : CO_WRITABLE;
        if (pg_wait(c->pq, ev, deadline) < 0) {
            int err = errno;
            pg_conn_free(c);
            errno = err == ETIMEDOUT || err == ECANCELED ? err : EAGAIN;
            return NULL;
        }
        st = PQconnectPoll(c->pq);
    }
    if (PQstatus(c->pq) != CONNECTION_OK) {
        pg_log("cannot connect", PQerrorMessage(c->pq));
        pg_conn_free(c);
        errno = EAGAIN;
        return NULL;
    }
    PQsetNoticeProcessor(c->pq, pg_notice, NULL);
    /* PQsendQuery* must not block on a full socket buffer either. */
    if (PQsetnonblocking(c->pq, 1) < 0 ||
        (pg_pool.setup && pg_pool.setup(c) < 0)) {
        int err = errno ? errno : EAGAIN;
        pg_conn_free(c);
        errno = err;
        return NULL;
    }
    return c;
}

/* Is an idle connection still there? Nothing should have arrived on it;
 * if something did, libpq reads it and says whether the server left. */
static int pg_alive(struct pg_conn *c)
{
    if (PQstatus(c->pq) != CONNECTION_OK)
        return 0;
    struct pollfd p = {.fd = PQsocket(c->pq), .events = POLLIN};
    if (p.fd < 0)
        return 0;
    if (poll(&p, 1, 0) == 0)
        return 1;
    if (!PQconsumeInput(c->pq) || PQstatus(c->pq) != CONNECTION_OK)
        return 0;
    /* a notice or a parameter change: harmless */
    return !PQisBusy(c->pq);
}

int pg_pool_open(const char *conninfo, int (*setup)(pg_conn_t *c))
{
    if (!pg_pool.conninfo && !(pg_pool.conninfo = strdup(conninfo)))
        return -1;
    pg_pool.setup = setup;
    pg_pool.size = (unsigned)pg_env_long("COSERVE_NOTES_PG_POOL",
                                         PG_POOL_DEFAULT, PG_POOL_MAX);
    pg_pool.wait_ms =
        pg_env_long("COSERVE_NOTES_PG_WAIT_MS", PG_WAIT_DEFAULT_MS, 600000);
    if (!pg_pool.slots && !(pg_pool.slots = co_sem_new(pg_pool.size)))
        return -1;
    return 0;
}

/* The app's fini: no request is left, so nobody holds a connection or
 * waits for one, and the server dlclose()s this module next. */
void pg_pool_close(void)
{
    while (pg_pool.idle) {
        struct pg_conn *c = pg_pool.idle;
        pg_pool.idle = c->next;
        pg_conn_free(c);
    }
    co_sem_free(pg_pool.slots);
    pg_pool.slots = NULL;
    free(pg_pool.conninfo);
    pg_pool.conninfo = NULL;
}

unsigned pg_pool_size(void)
{
    return pg_pool.size;
}

pg_conn_t *pg_acquire(int64_t deadline)
{
    int64_t wait = co_deadline(pg_pool.wait_ms);
    if (deadline >= 0 && deadline < wait)
        wait = deadline;
    if (co_sem_acquire(pg_pool.slots, wait) < 0)
        return NULL; /* ETIMEDOUT: every connection busy; ECANCELED */
    while (pg_pool.idle) {
        struct pg_conn *c = pg_pool.idle;
        pg_pool.idle = c->next;
        if (pg_alive(c))
            return c;
        pg_conn_free(c); /* the server restarted, or dropped it */
    }
    struct pg_conn *c = pg_connect(deadline);
    if (!c) {
        int err = errno;
        co_sem_release(pg_pool.slots);
        errno = err;
    }
    return c;
}

void pg_release(pg_conn_t *c)
{
    if (!c->broken && PQstatus(c->pq) == CONNECTION_OK &&
        PQtransactionStatus(c->pq) == PQTRANS_IDLE) {
        c->next = pg_pool.idle;
        pg_pool.idle = c;
    } else {
        pg_conn_free(c);
    }
    co_sem_release(pg_pool.slots);
}

PGconn *pg_handle(pg_conn_t *c)
{
    return c->pq;
}

/* Sends the query's bytes: PQflush until libpq holds nothing back, reading
 * whatever the server sends meanwhile (libpq's rule for non-blocking). */
static int pg_flush(struct pg_conn *c, int64_t deadline)
{
    int rc;
    while ((rc = PQflush(c->pq)) == 1) {
        if (pg_wait(c->pq, CO_READABLE | CO_WRITABLE, deadline) < 0)
            return -1;
        if (!PQconsumeInput(c->pq)) {
            errno = EAGAIN;
            return -1;
        }
    }
    if (rc < 0)
        errno = EAGAIN;
    return rc;
}

/* Waits until libpq has a whole result (or the end of them) to hand out. */
static int pg_ready(struct pg_conn *c, int64_t deadline)
{
    while (PQisBusy(c->pq)) {
        if (pg_wait(c->pq, CO_READABLE, deadline) < 0)
            return -1;
        if (!PQconsumeInput(c->pq)) {
            errno = EAGAIN;
            return -1;
        }
    }
    return 0;
}

PGresult *pg_query(pg_conn_t *c, const char *sql, int n,
                   const char *const *params, int64_t deadline,
                   const char *what)
{
    if (!PQsendQueryParams(c->pq, sql, n, NULL, params, NULL, NULL, 0) ||
        pg_flush(c, deadline) < 0) {
        int err = errno == ETIMEDOUT || errno == ECANCELED ? errno : EAGAIN;
        if (err == EAGAIN)
            pg_log(what, PQerrorMessage(c->pq));
        c->broken = 1;
        errno = err;
        return NULL;
    }
    /* One statement gives one result, then NULL; keep the first. */
    PGresult *res = NULL;
    for (;;) {
        if (pg_ready(c, deadline) < 0) {
            int err = errno;
            /* The query may still run: this connection is lost to us. */
            c->broken = 1;
            PQclear(res);
            if (err == EAGAIN)
                pg_log(what, PQerrorMessage(c->pq));
            errno = err;
            return NULL;
        }
        PGresult *r = PQgetResult(c->pq);
        if (!r)
            break;
        if (!res)
            res = r;
        else
            PQclear(r);
    }
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return res;
    int err = pg_errno(c->pq, res);
    pg_log(what, res ? PQresultErrorMessage(res) : PQerrorMessage(c->pq));
    if (err == EAGAIN)
        c->broken = 1;
    PQclear(res);
    errno = err;
    return NULL;
}
