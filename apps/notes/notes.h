/*
 * notes.h - the notes app's internal interface, between its files:
 *
 *   notes.c     the HTTP side: routes, methods, the request body, statuses;
 *               picks the store (struct store) from COSERVE_NOTES_DB
 *   store.c     the SQLite store: each operation runs on the offload pool
 *   db.c        one SQLite connection per offload thread, its statement
 *               cache, write transactions, and the schema migration
 *   store_pg.c  the PostgreSQL store: the same operations in SQL over libpq
 *   pg_pool.c   the per-worker libpq connection pool, queries waited for
 *               on the hub (libpq's asynchronous API + co_wait_fd)
 *   reply.c     JSON bodies (jansson) for notes, pages and errors
 *
 * Threads: store_*, pg_* and reply_* run in the request's coroutine on the
 * hub; db_* run only on offload threads (inside a co_offload work
 * function), so SQLite never blocks the hub. Errors are -1 and errno, as in
 * coserve.h.
 */
#ifndef NOTES_NOTES_H
#define NOTES_NOTES_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <sqlite3.h>

#include "coserve.h"

#define NOTES_TEXT_MAX (64 * 1024) /* bytes of UTF-8 in a note's text */
#define NOTES_BODY_MAX (80 * 1024) /* bytes of request body read */
#define NOTES_LIMIT_DEFAULT 20
#define NOTES_LIMIT_MAX 100
#define NOTES_QUERY_MAX 512 /* bytes of a search query */
#define NOTES_DB_DEFAULT "var/notes.db"

/* ---- db.c (offload threads only) ------------------------------------ */

/* The co_offload_hook pair: opens / closes the calling thread's connection
 * to the database at path arg (a string that outlives the pool). A failed
 * open is logged; every later db_* call on that thread then fails. */
void db_thread_open(void *path);
void db_thread_close(void *unused);

/* Creates or migrates the schema (PRAGMA user_version) and the search
 * index, in one write transaction, and turns WAL on. fts: use FTS5 if this
 * SQLite has it. Returns 0, or -1 with errno. Sets db_has_fts. */
int db_migrate(int fts);

/* Copies the WAL into the database file and empties it, so a stopped
 * server leaves one self-contained file. Returns 0, or -1 with errno. */
int db_checkpoint(void);

/* Non-zero once db_migrate() set up the FTS5 index (else search uses LIKE).
 * Written before the app serves, read-only afterwards. */
extern int db_has_fts;

/* The calling thread's prepared statement for sql, prepared on first use.
 * The caller binds every parameter and resets it when done (a statement
 * left mid-way pins its read snapshot). sql must have static storage: the
 * cache is keyed by its address. NULL with errno on failure. */
sqlite3_stmt *db_stmt(const char *sql);

/* The calling thread's connection (NULL if it failed to open). */
sqlite3 *db_conn(void);

/* Write transactions: BEGIN IMMEDIATE ... COMMIT. The caller makes sure
 * this process runs one at a time (store.c's write slot); a writer in
 * another process is waited for up to the busy timeout, then EBUSY.
 * db_write_end(1) commits, db_write_end(0) rolls back. Each returns 0, or
 * -1 with errno. */
int db_write_begin(void);
int db_write_end(int commit);

/* Maps a SQLite result code to errno (EBUSY, ENOMEM, EIO) and logs the
 * connection's message with `what`. Returns -1. */
int db_fail(int rc, const char *what);

/* ---- the store interface (hub side) ---------------------------------- */

/* One implementation per database: store_sqlite (store.c, the default) and
 * store_pg (store_pg.c, when COSERVE_NOTES_DB is a postgresql:// URI).
 * Both give the same answers and the same errors; notes.c sees only this.
 *
 * Every operation but open/close: *out gets a new JSON value the caller
 * json_decref()s. Returns 0, or -1 with errno: ENOENT (no such note), EBUSY
 * (database locked or busy past its timeout), ETIMEDOUT (waited too long
 * for a connection or a slot: not started, so not applied), EAGAIN (the
 * database is unreachable or the connection broke: retry later),
 * ECANCELED, ENOMEM, EIO. */
struct store {
    const char *name;
    /* Called from the app's init: connects or opens, migrates the schema.
     * Returns 0, or -1 (logged) to refuse loading the app. */
    int (*open)(void);
    /* The app's fini. */
    void (*close)(void);
    /* A page of notes, newest first, older than note `before` (INT64_MAX
     * for the first page): {"notes": [...], "next_cursor": "ID" or null}. */
    int (*list)(int64_t before, int limit, json_t **out);
    /* One note: {"id", "text", "created_at", "updated_at"}. */
    int (*get)(int64_t id, json_t **out);
    /* Inserts a note (text is copied), returns it. */
    int (*create)(const char *text, size_t len, json_t **out);
    /* Replaces a note's text, returns it. */
    int (*update)(int64_t id, const char *text, size_t len, json_t **out);
    /* Deletes a note. */
    int (*remove)(int64_t id);
    /* Notes matching q (words, each a prefix), best first:
     * {"notes": [...]}. */
    int (*search)(const char *q, int limit, json_t **out);
};

/* store.c: SQLite through the offload pool. Reads never wait behind
 * writes: writes take turns for one offload thread (see store.c). */
extern const struct store store_sqlite;
/* store_pg.c: PostgreSQL over the per-worker pool of pg_pool.c. */
extern const struct store store_pg;

/* ---- reply.c (hub side) --------------------------------------------- */

/* Sends value as a JSON body with status (value stays the caller's).
 * Returns co_res_send's result. */
int reply_json(co_response_t *res, int status, const json_t *value);
/* Sends {"error": message} with status. */
int reply_error(co_response_t *res, int status, const char *message);
/* Sends {"error": ...} with status, formatted like printf. */
int reply_errorf(co_response_t *res, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Answers a failed store_* call (errno): 404, 503 or 500. Returns -1 with
 * no response when the request was cancelled. */
int reply_store_error(co_response_t *res, int err);

/* ---- live.c (hub side) ---------------------------------------------- */

/* GET /notes/events: a text/event-stream of "note" events, one per note
 * created, updated or deleted on any worker (data {"op","id"}; ids
 * "WORKERPID-SEQ" resume on the same worker, else a "reset" event says
 * to reload the list). Returns the handler's result. */
int live_events(co_request_t *req, co_response_t *res);
/* Tells every worker's event streams that note id changed: op is
 * "created", "updated" or "deleted". Best effort: never fails the
 * request that made the change. */
void live_changed(const char *op, int64_t id);
/* Per worker, from notes_init: names the bus topic. */
int live_init(void);

#endif
