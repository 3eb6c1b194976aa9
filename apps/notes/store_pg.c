/*
 * store_pg.c - the PostgreSQL store (struct store in notes.h): the same
 * note operations as store.c, with the same answers and errors, for several
 * coserve instances sharing one database.
 *
 * Each operation takes a connection from the worker's pool (pg_pool.c),
 * runs one statement in autocommit, and gives the connection back; the
 * coroutine waits on libpq's socket, never on a thread. A write is one
 * statement, so a 201 means PostgreSQL committed it (synchronous_commit as
 * the server has it); the server's statement_timeout (set per connection)
 * ends a write stuck on a lock with an answer, 503, and nothing applied.
 *
 * Search: a stored tsvector column (to_tsvector('simple', text): lower case,
 * no stemming, no stop words, as SQLite's unicode61 tokenizer) under a GIN
 * index. The query's words go through the same parser and each becomes a
 * prefix term, ANDed, ranked by ts_rank then newest first: FTS5's "word"*
 * queries ordered by rank. COSERVE_NOTES_FTS=0 searches with ILIKE instead.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notes.h"
#include "pg_pool.h"

/* A read waits this long for its answer; a write longer than the server's
 * statement timeout, so that PostgreSQL's verdict normally comes first. */
#define PG_READ_DEADLINE_MS 10000
#define PG_WRITE_DEADLINE_MS 30000
#define PG_STATEMENT_TIMEOUT "SET statement_timeout = 10000"

/* Ask for the schema once per worker; workers starting together take turns
 * on an advisory lock (the number is arbitrary, the notes app's own). */
static const char pg_sql_schema[] =
    "SELECT pg_advisory_xact_lock(72431300);"
    "CREATE TABLE IF NOT EXISTS notes ("
    "  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    "  text text NOT NULL,"
    "  created_at timestamptz NOT NULL DEFAULT now(),"
    "  updated_at timestamptz NOT NULL DEFAULT now(),"
    "  search tsvector GENERATED ALWAYS AS"
    "    (to_tsvector('simple'::regconfig, text)) STORED"
    ");"
    "CREATE INDEX IF NOT EXISTS notes_search ON notes USING gin (search);";

/* The columns of a note, times as ISO 8601 UTC with milliseconds, exactly
 * as SQLite's strftime('%Y-%m-%dT%H:%M:%fZ') writes them. */
#define PG_NOTE_COLS                                                           \
    "id, text,"                                                                \
    " to_char(created_at AT TIME ZONE 'UTC',"                                  \
    " 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),"                                   \
    " to_char(updated_at AT TIME ZONE 'UTC',"                                  \
    " 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

static const char pg_sql_page[] = "SELECT " PG_NOTE_COLS " FROM notes"
                                  " WHERE id < $1 ORDER BY id DESC LIMIT $2";
static const char pg_sql_get[] =
    "SELECT " PG_NOTE_COLS " FROM notes WHERE id = $1";
static const char pg_sql_insert[] =
    "INSERT INTO notes (text) VALUES ($1) RETURNING " PG_NOTE_COLS;
static const char pg_sql_update[] = "UPDATE notes SET text = $2,"
                                    " updated_at = now() WHERE id = $1"
                                    " RETURNING " PG_NOTE_COLS;
static const char pg_sql_delete[] = "DELETE FROM notes WHERE id = $1";
/* Each lexeme of the query, quoted for tsquery (' and \ doubled), with :*
 * (prefix), joined by &. No lexeme (only punctuation): no rows. */
static const char pg_sql_search_fts[] =
    "WITH q AS (SELECT string_agg('''' || replace(replace(lexeme, '\\',"
    " '\\\\'), '''', '''''') || ''':*', ' & ')::tsquery AS q"
    " FROM unnest(to_tsvector('simple'::regconfig, $1)))"
    " SELECT " PG_NOTE_COLS " FROM notes, q"
    " WHERE q.q IS NOT NULL AND search @@ q.q"
    " ORDER BY ts_rank(search, q.q) DESC, id DESC LIMIT $2";
static const char pg_sql_search_like[] =
    "SELECT " PG_NOTE_COLS " FROM notes WHERE text ILIKE $1 ESCAPE '\\'"
    " ORDER BY id DESC LIMIT $2";

static int pg_fts = 1;
static int pg_schema_ready;

/* Each new connection: the statement timeout, and the schema until one
 * connection of this worker has made sure of it. */
static int store_pg_setup(pg_conn_t *c)
{
    int64_t deadline = co_deadline(PG_WRITE_DEADLINE_MS);
    PGresult *r = pg_query(c, PG_STATEMENT_TIMEOUT, 0, NULL, deadline,
                           "setting the statement timeout");
    if (!r)
        return -1;
    PQclear(r);
    if (pg_schema_ready)
        return 0;
    /* Several statements: the simple protocol, one implicit transaction. */
    PGconn *pq = pg_handle(c);
    if (!PQsendQuery(pq, pg_sql_schema)) {
        errno = EAGAIN;
        return -1;
    }
    while (PQflush(pq) == 1 || PQisBusy(pq)) {
        if (co_wait_fd(PQsocket(pq), CO_READABLE, deadline) < 0)
            return -1;
        if (!PQconsumeInput(pq)) {
            errno = EAGAIN;
            return -1;
        }
    }
    int ok = 1;
    while ((r = PQgetResult(pq))) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK &&
            PQresultStatus(r) != PGRES_TUPLES_OK && ok) {
            fprintf(stderr, "notes: PostgreSQL: creating the schema: %s",
                    PQresultErrorMessage(r));
            ok = 0;
        }
        PQclear(r);
    }
    if (!ok) {
        errno = EIO;
        return -1;
    }
    pg_schema_ready = 1;
    return 0;
}

/* Row i as a note object, or NULL (no memory). */
static json_t *store_pg_row(const PGresult *r, int i)
{
    return json_pack("{s:I, s:s%, s:s, s:s}", "id",
                     (json_int_t)strtoll(PQgetvalue(r, i, 0), NULL, 10), "text",
                     PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1),
                     "created_at", PQgetvalue(r, i, 2), "updated_at",
                     PQgetvalue(r, i, 3));
}

/* Up to limit rows of r as a new array; NULL with ENOMEM. */
static json_t *store_pg_rows(const PGresult *r, int limit)
{
    json_t *notes = json_array();
    int n = PQntuples(r);
    for (int i = 0; notes && i < n && i < limit; i++) {
        json_t *note = store_pg_row(r, i);
        if (!note || json_array_append_new(notes, note) < 0) {
            json_decref(notes);
            notes = NULL;
        }
    }
    if (!notes)
        errno = ENOMEM;
    return notes;
}

/* Takes a connection, runs one statement, gives the connection back.
 * Returns the result, or NULL with errno (see pg_query). */
static PGresult *store_pg_run(const char *sql, int n, const char *const *params,
                              int64_t ms, const char *what)
{
    int64_t deadline = co_deadline(ms);
    pg_conn_t *c = pg_acquire(deadline);
    if (!c)
        return NULL;
    PGresult *r = pg_query(c, sql, n, params, deadline, what);
    int err = errno;
    pg_release(c);
    errno = err;
    return r;
}

/* A statement returning one note: the note, or ENOENT. */
static int store_pg_one(const char *sql, int n, const char *const *params,
                        int64_t ms, const char *what, json_t **out)
{
    PGresult *r = store_pg_run(sql, n, params, ms, what);
    if (!r)
        return -1;
    int rc = 0;
    if (PQntuples(r) == 0) {
        errno = ENOENT;
        rc = -1;
    } else if (!(*out = store_pg_row(r, 0))) {
        errno = ENOMEM;
        rc = -1;
    }
    PQclear(r);
    return rc;
}

static int store_pg_list(int64_t before, int limit, json_t **out)
{
    char b[24], l[16];
    snprintf(b, sizeof b, "%" PRId64, before);
    snprintf(l, sizeof l, "%d", limit + 1); /* one more: is there a next? */
    const char *const params[] = {b, l};
    PGresult *r = store_pg_run(pg_sql_page, 2, params, PG_READ_DEADLINE_MS,
                               "reading notes");
    if (!r)
        return -1;
    json_t *notes = store_pg_rows(r, limit);
    json_t *cursor = json_null();
    if (notes && PQntuples(r) > limit && limit > 0) {
        char buf[24];
        snprintf(buf, sizeof buf, "%s", PQgetvalue(r, limit - 1, 0));
        cursor = json_string(buf);
    }
    PQclear(r);
    if (!notes)
        return -1;
    *out = json_pack("{s:o, s:o*}", "notes", notes, "next_cursor", cursor);
    return *out ? 0 : (errno = ENOMEM, -1);
}

static int store_pg_get(int64_t id, json_t **out)
{
    char i[24];
    snprintf(i, sizeof i, "%" PRId64, id);
    const char *const params[] = {i};
    return store_pg_one(pg_sql_get, 1, params, PG_READ_DEADLINE_MS,
                        "reading a note", out);
}

static int store_pg_create(const char *text, size_t len, json_t **out)
{
    (void)len; /* NUL-terminated: the API refuses "\u0000" in a note */
    const char *const params[] = {text};
    return store_pg_one(pg_sql_insert, 1, params, PG_WRITE_DEADLINE_MS,
                        "writing a note", out);
}

static int store_pg_update(int64_t id, const char *text, size_t len,
                           json_t **out)
{
    (void)len;
    char i[24];
    snprintf(i, sizeof i, "%" PRId64, id);
    const char *const params[] = {i, text};
    return store_pg_one(pg_sql_update, 2, params, PG_WRITE_DEADLINE_MS,
                        "writing a note", out);
}

static int store_pg_delete(int64_t id)
{
    char i[24];
    snprintf(i, sizeof i, "%" PRId64, id);
    const char *const params[] = {i};
    PGresult *r = store_pg_run(pg_sql_delete, 1, params, PG_WRITE_DEADLINE_MS,
                               "deleting a note");
    if (!r)
        return -1;
    int gone = strcmp(PQcmdTuples(r), "0") != 0;
    PQclear(r);
    if (!gone) {
        errno = ENOENT;
        return -1;
    }
    return 0;
}

/* ILIKE: %q% with its wildcards escaped (new string, or NULL). */
static char *store_pg_like(const char *q)
{
    char *out = malloc(2 * strlen(q) + 3), *p = out;
    if (!out)
        return NULL;
    *p++ = '%';
    for (; *q; q++) {
        if (*q == '%' || *q == '_' || *q == '\\')
            *p++ = '\\';
        *p++ = *q;
    }
    *p++ = '%';
    *p = '\0';
    return out;
}

static int store_pg_search(const char *q, int limit, json_t **out)
{
    if (strspn(q, " \t\n\v\f\r") == strlen(q)) { /* nothing to look for */
        *out = json_pack("{s:[]}", "notes");
        return *out ? 0 : (errno = ENOMEM, -1);
    }
    char l[16], *like = NULL;
    snprintf(l, sizeof l, "%d", limit);
    if (!pg_fts && !(like = store_pg_like(q)))
        return -1;
    const char *const params[] = {pg_fts ? q : like, l};
    PGresult *r = store_pg_run(pg_fts ? pg_sql_search_fts : pg_sql_search_like,
                               2, params, PG_READ_DEADLINE_MS, "searching");
    free(like);
    if (!r)
        return -1;
    json_t *notes = store_pg_rows(r, limit);
    PQclear(r);
    if (!notes)
        return -1;
    *out = json_pack("{s:o}", "notes", notes);
    return *out ? 0 : (errno = ENOMEM, -1);
}

/* Connects once to check the database and set up the schema. PostgreSQL
 * not answering yet is only a warning: a deployment may start coserve
 * before its database, and every request connects on demand. */
static int store_pg_open(void)
{
    const char *fts = getenv("COSERVE_NOTES_FTS");
    pg_fts = !(fts && strcmp(fts, "0") == 0);
    if (pg_pool_open(getenv("COSERVE_NOTES_DB"), store_pg_setup) < 0) {
        fprintf(stderr, "notes: PostgreSQL pool: %s\n", strerror(errno));
        pg_pool_close();
        return -1;
    }
    const char *search = pg_fts ? "full-text" : "LIKE";
    pg_conn_t *c = pg_acquire(co_deadline(PG_WRITE_DEADLINE_MS));
    if (!c) {
        if (errno == ECANCELED) { /* the server is stopping */
            pg_pool_close();
            return -1;
        }
        fprintf(stderr,
                "notes: PostgreSQL not reachable yet (%s); connecting on "
                "demand (search: %s, pool %u per worker)\n",
                strerror(errno), search, pg_pool_size());
        return 0;
    }
    PGconn *pq = pg_handle(c);
    fprintf(stderr,
            "notes: PostgreSQL database %s on %s ready (search: %s, pool %u "
            "per worker)\n",
            PQdb(pq), PQhost(pq), search, pg_pool_size());
    pg_release(c);
    return 0;
}

static void store_pg_close(void)
{
    pg_pool_close();
}

const struct store store_pg = {
    .name = "postgresql",
    .open = store_pg_open,
    .close = store_pg_close,
    .list = store_pg_list,
    .get = store_pg_get,
    .create = store_pg_create,
    .update = store_pg_update,
    .remove = store_pg_delete,
    .search = store_pg_search,
};
