/*
 * pg_pool.h - a pool of libpq connections per worker, and queries that wait
 * on the hub.
 *
 * Like psycopg2 under psycogreen: libpq's asynchronous API
 * (PQconnectStart/PQconnectPoll, PQsendQueryParams, PQconsumeInput,
 * PQisBusy) with the coroutine parked in co_wait_fd() on PQsocket()
 * whenever libpq would block, so a query costs the worker nothing while
 * PostgreSQL works, and no offload thread is involved. The pool follows Go's
 * database/sql and pgbouncer: at most COSERVE_NOTES_PG_POOL connections
 * (default 4) per worker, opened on demand and kept idle for reuse (most
 * recent first); a request finding them all busy waits in line (first come,
 * first served) up to COSERVE_NOTES_PG_WAIT_MS (default 5000), then gets
 * ETIMEDOUT (a 503). A connection that broke (PostgreSQL restarted, the
 * network went) is dropped and the next request opens a new one: no
 * restart of coserve is ever needed.
 *
 * Everything here runs in coroutines of the worker's one hub.
 */
#ifndef NOTES_PG_POOL_H
#define NOTES_PG_POOL_H

#include <stdint.h>

#include <postgresql/libpq-fe.h>

/* One pooled connection (opaque outside pg_pool.c). */
typedef struct pg_conn pg_conn_t;

/* Sets the pool up for conninfo (a libpq URI, copied) and opens one
 * connection to check it, running setup (NULL: none) on every new
 * connection first. A database that cannot be reached yet is logged, not an
 * error: connections are made on demand. Returns 0, or -1 with errno. */
int pg_pool_open(const char *conninfo, int (*setup)(pg_conn_t *c));

/* Closes the idle connections (the app's fini). */
void pg_pool_close(void);

/* The pool's size (connections per worker). */
unsigned pg_pool_size(void);

/* Takes a connection: an idle one that is still alive, else a new one.
 * Waits for a free slot until the pool's wait deadline, and connects by
 * `deadline`. Returns it, or NULL with errno: ETIMEDOUT (every connection
 * busy past the wait deadline), EAGAIN (PostgreSQL cannot be reached),
 * ECANCELED, ENOMEM. */
pg_conn_t *pg_acquire(int64_t deadline);

/* Gives c back: idle for reuse if it is healthy and outside a transaction,
 * else closed (a query that failed mid-way leaves it unusable). */
void pg_release(pg_conn_t *c);

/* Runs sql with n text parameters (NUL-terminated strings) and waits for
 * its result by deadline. Returns the result (PQclear it): rows or a
 * command's status. NULL with errno: EAGAIN (connection lost or refused:
 * 08*, 57P*, 53*), EBUSY (lock timeout, deadlock, serialization, the
 * statement timeout), ETIMEDOUT or ECANCELED (the wait ended: the
 * connection is then closed at release), ENOMEM, EIO (any other error);
 * the server's message is logged with `what`. */
PGresult *pg_query(pg_conn_t *c, const char *sql, int n,
                   const char *const *params, int64_t deadline,
                   const char *what);

/* The connection's libpq handle (for PQdb, PQhost). */
PGconn *pg_handle(pg_conn_t *c);

#endif
