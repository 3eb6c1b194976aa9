/*
 * db.c - the notes database as seen from one offload thread.
 *
 * Every offload thread owns one SQLite connection, opened by the pool's init
 * hook and closed by its fini hook, kept in a __thread variable: SQLite
 * connections are not shared between threads, so no connection mutex is
 * ever taken (SQLITE_OPEN_NOMUTEX). Prepared statements are cached per
 * connection, keyed by the address of their SQL text.
 *
 * Durability: WAL with synchronous=FULL, so a 201 means the note reached
 * the disk, and a crash at any point leaves the last committed state.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notes.h"

#define DB_BUSY_TIMEOUT_MS 5000
#define DB_STMT_CACHE 16

struct db_thread {
    sqlite3 *conn;
    size_t nstmts;
    struct {
        const char *sql;
        sqlite3_stmt *stmt;
    } stmts[DB_STMT_CACHE];
};

static __thread struct db_thread *db_self;

int db_has_fts;

/* The schema, one entry per PRAGMA user_version step: migrations[i] takes
 * version i to i + 1. Append only; never edit a released step. */
static const char *const db_migrations[] = {
    /* 1: the notes. AUTOINCREMENT: an id is never reused after a delete,
     * and ids grow with creation, so "newest first" is id DESC. */
    "CREATE TABLE notes ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  text TEXT NOT NULL,"
    "  created_at TEXT NOT NULL,"
    "  updated_at TEXT NOT NULL"
    ");",
};
#define DB_VERSION ((int)(sizeof db_migrations / sizeof db_migrations[0]))

/* The search index is not a numbered step: it exists exactly when this
 * SQLite has FTS5, so one database moves between builds with and without
 * it. The triggers keep it in step with notes inside each write. */
static const char db_fts_create[] =
    "CREATE VIRTUAL TABLE IF NOT EXISTS notes_fts USING fts5("
    "  text, content='notes', content_rowid='id',"
    "  tokenize='unicode61 remove_diacritics 2', prefix='2 3');"
    "CREATE TRIGGER IF NOT EXISTS notes_fts_ai AFTER INSERT ON notes BEGIN"
    "  INSERT INTO notes_fts(rowid, text) VALUES (new.id, new.text);"
    "END;"
    "CREATE TRIGGER IF NOT EXISTS notes_fts_ad AFTER DELETE ON notes BEGIN"
    "  INSERT INTO notes_fts(notes_fts, rowid, text)"
    "    VALUES ('delete', old.id, old.text);"
    "END;"
    "CREATE TRIGGER IF NOT EXISTS notes_fts_au AFTER UPDATE OF text ON notes "
    "BEGIN"
    "  INSERT INTO notes_fts(notes_fts, rowid, text)"
    "    VALUES ('delete', old.id, old.text);"
    "  INSERT INTO notes_fts(rowid, text) VALUES (new.id, new.text);"
    "END;"
    "INSERT INTO notes_fts(notes_fts) VALUES ('rebuild');";
static const char db_fts_drop[] = "DROP TRIGGER IF EXISTS notes_fts_ai;"
                                  "DROP TRIGGER IF EXISTS notes_fts_ad;"
                                  "DROP TRIGGER IF EXISTS notes_fts_au;";

int db_fail(int rc, const char *what)
{
    int err;
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        err = EBUSY;
        break;
    case SQLITE_NOMEM:
        err = ENOMEM;
        break;
    default:
        err = EIO;
    }
    fprintf(stderr, "notes: %s: %s\n", what,
            db_self && db_self->conn ? sqlite3_errmsg(db_self->conn)
                                     : sqlite3_errstr(rc));
    errno = err;
    return -1;
}

/* Runs statements that return no rows we need. Returns 0 or -1. */
static int db_exec(const char *sql, const char *what)
{
    int rc = sqlite3_exec(db_self->conn, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : db_fail(rc, what);
}

void db_thread_open(void *path)
{
    struct db_thread *t = calloc(1, sizeof *t);
    if (!t) {
        fprintf(stderr, "notes: no memory for a connection\n");
        return;
    }
    int rc = sqlite3_open_v2(
        path, &t->conn,
        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        fprintf(stderr, "notes: cannot open %s: %s\n", (const char *)path,
                t->conn ? sqlite3_errmsg(t->conn) : sqlite3_errstr(rc));
        sqlite3_close(t->conn);
        free(t);
        return;
    }
    sqlite3_extended_result_codes(t->conn, 1);
    sqlite3_busy_timeout(t->conn, DB_BUSY_TIMEOUT_MS);
    db_self = t;
    /* Per connection, not stored in the file (WAL is: see db_migrate). */
    if (db_exec("PRAGMA synchronous = FULL;", "PRAGMA synchronous") < 0) {
        db_thread_close(NULL);
        return;
    }
}

void db_thread_close(void *unused)
{
    (void)unused;
    struct db_thread *t = db_self;
    if (!t)
        return;
    for (size_t i = 0; i < t->nstmts; i++)
        sqlite3_finalize(t->stmts[i].stmt);
    sqlite3_close(t->conn);
    free(t);
    db_self = NULL;
}

sqlite3 *db_conn(void)
{
    return db_self ? db_self->conn : NULL;
}

sqlite3_stmt *db_stmt(const char *sql)
{
    struct db_thread *t = db_self;
    if (!t) {
        errno = EIO;
        return NULL;
    }
    for (size_t i = 0; i < t->nstmts; i++)
        if (t->stmts[i].sql == sql)
            return t->stmts[i].stmt;
    if (t->nstmts == DB_STMT_CACHE) {
        fprintf(stderr, "notes: statement cache full (%d)\n", DB_STMT_CACHE);
        errno = ENOMEM;
        return NULL;
    }
    sqlite3_stmt *stmt;
    int rc = sqlite3_prepare_v3(t->conn, sql, -1, SQLITE_PREPARE_PERSISTENT,
                                &stmt, NULL);
    if (rc != SQLITE_OK) {
        db_fail(rc, "prepare");
        return NULL;
    }
    t->stmts[t->nstmts].sql = sql;
    t->stmts[t->nstmts].stmt = stmt;
    t->nstmts++;
    return stmt;
}

/* Steps a cached statement that returns no rows, then resets it. */
static int db_step_once(const char *sql, const char *what)
{
    sqlite3_stmt *stmt = db_stmt(sql);
    if (!stmt)
        return -1;
    int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    return rc == SQLITE_DONE ? 0 : db_fail(rc, what);
}

static const char db_sql_begin[] = "BEGIN IMMEDIATE";
static const char db_sql_commit[] = "COMMIT";
static const char db_sql_rollback[] = "ROLLBACK";

/* No lock of ours is taken here: store.c lets one write at a time onto the
 * pool (its write slot), so the only wait is SQLite's busy handler, for a
 * writer in another process, and it holds just this one offload thread. */
int db_write_begin(void)
{
    if (!db_self) {
        errno = EIO;
        return -1;
    }
    return db_step_once(db_sql_begin, "BEGIN IMMEDIATE");
}

int db_write_end(int commit)
{
    int rc = 0, err = 0;
    if (commit && db_step_once(db_sql_commit, "COMMIT") < 0) {
        rc = -1;
        err = errno;
    }
    /* A failed COMMIT may leave the transaction open: roll it back. */
    if (!sqlite3_get_autocommit(db_self->conn) &&
        db_step_once(db_sql_rollback, "ROLLBACK") < 0 && rc == 0) {
        rc = -1;
        err = errno;
    }
    errno = err;
    return rc;
}

/* Reads PRAGMA user_version inside the open transaction. */
static int db_user_version(int *version)
{
    sqlite3_stmt *stmt;
    int rc = sqlite3_prepare_v2(db_self->conn, "PRAGMA user_version", -1, &stmt,
                                NULL);
    if (rc != SQLITE_OK)
        return db_fail(rc, "PRAGMA user_version");
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        *version = sqlite3_column_int(stmt, 0);
    sqlite3_finalize(stmt);
    return rc == SQLITE_ROW ? 0 : db_fail(rc, "PRAGMA user_version");
}

/* Whether this build of SQLite can make an FTS5 table (it may be compiled
 * without it, or have it only as a loadable extension we do not load). */
static int db_probe_fts5(void)
{
    int rc = sqlite3_exec(db_self->conn,
                          "CREATE VIRTUAL TABLE temp.notes_fts5_probe "
                          "USING fts5(x); DROP TABLE temp.notes_fts5_probe;",
                          NULL, NULL, NULL);
    return rc == SQLITE_OK;
}

/* Is the FTS index maintained (its insert trigger exists)? */
static int db_fts_present(int *present)
{
    sqlite3_stmt *stmt;
    int rc = sqlite3_prepare_v2(db_self->conn,
                                "SELECT count(*) FROM sqlite_master WHERE "
                                "type = 'trigger' AND name = 'notes_fts_ai'",
                                -1, &stmt, NULL);
    if (rc != SQLITE_OK)
        return db_fail(rc, "schema lookup");
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        *present = sqlite3_column_int(stmt, 0) > 0;
    sqlite3_finalize(stmt);
    return rc == SQLITE_ROW ? 0 : db_fail(rc, "schema lookup");
}

/* Applies the missing migration steps and sets up (or drops) the search
 * index, inside the caller's write transaction. */
static int db_migrate_locked(int fts)
{
    int version = 0, present = 0;
    if (db_user_version(&version) < 0)
        return -1;
    if (version > DB_VERSION) {
        fprintf(stderr,
                "notes: database schema version %d is newer than this "
                "build's %d\n",
                version, DB_VERSION);
        errno = EPROTO;
        return -1;
    }
    for (; version < DB_VERSION; version++)
        if (db_exec(db_migrations[version], "migration") < 0)
            return -1;
    char pragma[48];
    snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d;", DB_VERSION);
    if (db_exec(pragma, "PRAGMA user_version") < 0)
        return -1;
    if (db_fts_present(&present) < 0)
        return -1;
    if (fts && !present && db_exec(db_fts_create, "FTS5 index") < 0)
        return -1;
    if (!fts && present && db_exec(db_fts_drop, "dropping FTS5 triggers") < 0)
        return -1;
    return 0;
}

/* Turns WAL on (a property of the file: set once, every connection
 * follows). Switching takes an exclusive lock without asking the busy
 * handler, so workers starting together retry here for a while. */
static int db_set_wal(void)
{
    int rc = SQLITE_BUSY;
    for (int waited = 0; waited <= DB_BUSY_TIMEOUT_MS; waited += 10) {
        sqlite3_stmt *stmt;
        rc = sqlite3_prepare_v2(db_self->conn, "PRAGMA journal_mode = WAL", -1,
                                &stmt, NULL);
        if (rc == SQLITE_OK) {
            rc = sqlite3_step(stmt);
            if (rc == SQLITE_ROW &&
                strcmp((const char *)sqlite3_column_text(stmt, 0), "wal"))
                fprintf(stderr, "notes: WAL mode refused; using the "
                                "rollback journal\n");
            sqlite3_finalize(stmt);
        }
        if (rc == SQLITE_ROW)
            return 0;
        if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED)
            break;
        sqlite3_sleep(10);
    }
    return db_fail(rc, "PRAGMA journal_mode");
}

int db_migrate(int fts)
{
    if (!db_self) {
        errno = EIO;
        return -1;
    }
    if (db_set_wal() < 0)
        return -1;
    fts = fts && db_probe_fts5();
    /* Several workers may start at once: the write lock makes one of them
     * migrate and the others find the work done. */
    if (db_write_begin() < 0)
        return -1;
    if (db_migrate_locked(fts) < 0) {
        int err = errno;
        db_write_end(0);
        errno = err;
        return -1;
    }
    if (db_write_end(1) < 0)
        return -1;
    db_has_fts = fts;
    return 0;
}

int db_checkpoint(void)
{
    if (!db_self) {
        errno = EIO;
        return -1;
    }
    return db_exec("PRAGMA wal_checkpoint(TRUNCATE);", "WAL checkpoint");
}
