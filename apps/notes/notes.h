/*
 * notes.h - the notes app's internal interface, between its four files:
 *
 *   notes.c   the HTTP side: routes, methods, the request body, statuses
 *   store.c   the note operations; each runs on the offload pool
 *   db.c      one SQLite connection per offload thread, its statement
 *             cache, write transactions, and the schema migration
 *   reply.c   JSON bodies (jansson) for notes, pages and errors
 *
 * Threads: store_* and reply_* run in the request's coroutine on the hub;
 * db_* run only on offload threads (inside a co_offload work function), so
 * SQLite never blocks the hub. Errors are -1 and errno, as in coserve.h.
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

/* ---- store.c (hub side) --------------------------------------------- */

/* Checks the database: pins this module (the offload hooks outlive the
 * server's dlclose), registers the connection hooks and migrates the
 * schema on the pool. Called from the app's init. Returns 0 or -1. */
int store_open(void);

/* Checkpoints the WAL on the pool (the app's fini: the server ends its
 * workers with _exit, so the connections are never closed). */
void store_close(void);

/* Each operation offloads its SQL and waits at most a few seconds. Reads
 * never wait behind writes: writes take turns for one offload thread, on
 * the hub (see store.c). *out gets a new JSON value the caller
 * json_decref()s. Returns 0, or -1 with errno: ENOENT (no such note), EBUSY
 * (database locked past the busy timeout), ETIMEDOUT (a write: not started,
 * so not applied), ECANCELED, ENOMEM, EIO. */

/* A page of notes, newest first, older than note `before` (INT64_MAX for
 * the first page): {"notes": [...], "next_cursor": "ID" or null}. */
int store_list(int64_t before, int limit, json_t **out);
/* One note: {"id", "text", "created_at", "updated_at"}. */
int store_get(int64_t id, json_t **out);
/* Inserts a note (text is copied), returns it. */
int store_create(const char *text, size_t len, json_t **out);
/* Replaces a note's text, returns it. */
int store_update(int64_t id, const char *text, size_t len, json_t **out);
/* Deletes a note; out is not used. */
int store_delete(int64_t id);
/* Notes matching q (words, each a prefix), best first: {"notes": [...]}. */
int store_search(const char *q, int limit, json_t **out);

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

#endif
