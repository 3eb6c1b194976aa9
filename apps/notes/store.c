/*
 * store.c - the SQLite store (struct store in notes.h): the note operations,
 * each one SQL job on the offload pool.
 *
 * The request's coroutine fills a heap job, co_offload()s its run function
 * and waits; the run function (an offload thread) does the SQL with that
 * thread's connection and builds the JSON result. The job is on the heap,
 * not the coroutine's stack, because the wait can end first (the deadline,
 * or a cancel when the server stops): the job then finishes on its thread
 * and co_offload's abandon callback frees it and its result on the hub.
 *
 * Writes take turns for one offload thread (the write slot), reads use
 * the rest. SQLite allows one writer per database, and a write can wait up
 * to the busy timeout (5 s) for one in another process: if every write went
 * straight to the pool, they would fill every thread, each waiting on the
 * writer ahead (issue 9: with the database write-locked from outside, 200
 * POSTs held all the threads and every GET behind them timed out with 503,
 * although WAL lets readers in at any time). So a write first takes the
 * slot, a semaphore of one permit on the hub: waiting writers are parked
 * coroutines, not threads, and in WAL mode nothing a read does waits on a
 * writer. (A dedicated writer thread would cost a thread and a hand-off per
 * write; this keeps one connection per pool thread.) With one offload
 * thread, reads and the write share it.
 *
 * A write answers exactly what happened to it: the slot wait has the
 * request's deadline (ETIMEDOUT: never started, nothing applied), and a
 * write in the pool is waited for to its end, which the busy timeout
 * bounds, so no 503 is ever sent for a write that then commits.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "notes.h"

/* How long a read waits for its SQL, and a write for the write slot: the
 * busy timeout (5 s) of the write ahead of it, and some. */
#define STORE_DEADLINE_MS 10000

/* The write slot (see above): one permit, per worker (one hub each). Made by
 * the first store_open() and never freed: an abandoned write releases it
 * from its abandon callback, possibly after the app's fini. */
static co_sem_t *store_write_slot;

struct store_job {
    int64_t id; /* the note, or the cursor for a page */
    int limit;
    char *text; /* note text, or the search expression / pattern */
    size_t len;
    json_t *out; /* the result, set by the run function */
    int err;     /* 0, or the run function's errno */
};

static const char store_sql_page[] =
    "SELECT id, text, created_at, updated_at FROM notes"
    " WHERE id < ?1 ORDER BY id DESC LIMIT ?2";
static const char store_sql_get[] =
    "SELECT id, text, created_at, updated_at FROM notes WHERE id = ?1";
static const char store_sql_insert[] =
    "INSERT INTO notes (text, created_at, updated_at) VALUES (?1,"
    " strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),"
    " strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))"
    " RETURNING id, text, created_at, updated_at";
static const char store_sql_update[] =
    "UPDATE notes SET text = ?2,"
    " updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
    " WHERE id = ?1 RETURNING id, text, created_at, updated_at";
static const char store_sql_delete[] = "DELETE FROM notes WHERE id = ?1";
static const char store_sql_search_fts[] =
    "SELECT n.id, n.text, n.created_at, n.updated_at"
    " FROM notes_fts JOIN notes AS n ON n.id = notes_fts.rowid"
    " WHERE notes_fts MATCH ?1 ORDER BY notes_fts.rank, n.id DESC"
    " LIMIT ?2";
static const char store_sql_search_like[] =
    "SELECT id, text, created_at, updated_at FROM notes"
    " WHERE text LIKE ?1 ESCAPE '\\' ORDER BY id DESC LIMIT ?2";

/* ---- offload side ------------------------------------------------------ */

/* The current row (id, text, created_at, updated_at) as a note object, or
 * NULL (no memory, or text that is not UTF-8). */
static json_t *store_row(sqlite3_stmt *stmt)
{
    const char *text = (const char *)sqlite3_column_text(stmt, 1);
    size_t len = (size_t)sqlite3_column_bytes(stmt, 1);
    const char *created = (const char *)sqlite3_column_text(stmt, 2);
    const char *updated = (const char *)sqlite3_column_text(stmt, 3);
    if (!text || !created || !updated)
        return NULL;
    return json_pack("{s:I, s:s%, s:s, s:s}", "id",
                     (json_int_t)sqlite3_column_int64(stmt, 0), "text", text,
                     len, "created_at", created, "updated_at", updated);
}

/* Steps stmt to the end, collecting up to `limit` rows into a new array;
 * *more is set if a further row exists. Resets stmt. NULL with errno. */
static json_t *store_rows(sqlite3_stmt *stmt, int limit, int *more)
{
    json_t *notes = json_array();
    int rc, n = 0;
    *more = 0;
    if (!notes) {
        sqlite3_reset(stmt);
        errno = ENOMEM;
        return NULL;
    }
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (n == limit) {
            *more = 1;
            break;
        }
        json_t *note = store_row(stmt);
        if (!note || json_array_append_new(notes, note) < 0) {
            sqlite3_reset(stmt);
            json_decref(notes);
            errno = EIO;
            return NULL;
        }
        n++;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        db_fail(rc, "reading notes");
        int err = errno;
        sqlite3_reset(stmt);
        json_decref(notes);
        errno = err;
        return NULL;
    }
    /* Reset now: a statement left mid-way holds its read snapshot, which
     * keeps WAL checkpoints from finishing. */
    sqlite3_reset(stmt);
    return notes;
}

/* Steps a RETURNING or single-row statement once: the note, or ENOENT. */
static json_t *store_one(sqlite3_stmt *stmt, const char *what)
{
    int rc = sqlite3_step(stmt);
    json_t *note = NULL;
    if (rc == SQLITE_ROW) {
        note = store_row(stmt);
        if (!note)
            errno = EIO;
    } else if (rc == SQLITE_DONE) {
        errno = ENOENT;
    } else {
        db_fail(rc, what);
    }
    int err = errno;
    sqlite3_reset(stmt);
    errno = err;
    return note;
}

static void store_page_run(void *arg)
{
    struct store_job *job = arg;
    sqlite3_stmt *stmt = db_stmt(store_sql_page);
    if (!stmt) {
        job->err = errno;
        return;
    }
    sqlite3_bind_int64(stmt, 1, job->id);
    sqlite3_bind_int(stmt, 2, job->limit + 1);
    int more;
    json_t *notes = store_rows(stmt, job->limit, &more);
    if (!notes) {
        job->err = errno;
        return;
    }
    json_t *cursor = json_null();
    size_t n = json_array_size(notes);
    if (more && n > 0) {
        char buf[24];
        json_int_t last = json_integer_value(
            json_object_get(json_array_get(notes, n - 1), "id"));
        snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, last);
        cursor = json_string(buf);
    }
    job->out = json_pack("{s:o, s:o*}", "notes", notes, "next_cursor", cursor);
    if (!job->out)
        job->err = ENOMEM;
}

static void store_get_run(void *arg)
{
    struct store_job *job = arg;
    sqlite3_stmt *stmt = db_stmt(store_sql_get);
    if (!stmt) {
        job->err = errno;
        return;
    }
    sqlite3_bind_int64(stmt, 1, job->id);
    if (!(job->out = store_one(stmt, "reading a note")))
        job->err = errno;
}

/* Runs one write statement (bound by the caller, or bound here with id and
 * text) inside BEGIN IMMEDIATE ... COMMIT; the note it returns is the
 * result. A note that is not there rolls back and answers ENOENT. */
static void store_write(struct store_job *job, const char *sql, int with_id)
{
    if (db_write_begin() < 0) {
        job->err = errno;
        return;
    }
    sqlite3_stmt *stmt = db_stmt(sql);
    if (!stmt) {
        job->err = errno;
        db_write_end(0);
        return;
    }
    int pos = 1;
    if (with_id)
        sqlite3_bind_int64(stmt, pos++, job->id);
    if (job->text) { /* insert, update: the statement returns the note */
        sqlite3_bind_text(stmt, pos, job->text, (int)job->len, SQLITE_STATIC);
        job->out = store_one(stmt, "writing a note");
    } else {
        int rc = sqlite3_step(stmt);
        if (rc != SQLITE_DONE)
            db_fail(rc, "deleting a note");
        else if (sqlite3_changes(db_conn()) == 0)
            errno = ENOENT;
        else
            job->out = json_true();
        int err = errno;
        sqlite3_reset(stmt);
        errno = err;
    }
    sqlite3_clear_bindings(stmt);
    if (!job->out) {
        job->err = errno;
        db_write_end(0);
        return;
    }
    if (db_write_end(1) < 0) {
        job->err = errno;
        json_decref(job->out);
        job->out = NULL;
    }
}

static void store_create_run(void *arg)
{
    store_write(arg, store_sql_insert, 0);
}

static void store_update_run(void *arg)
{
    store_write(arg, store_sql_update, 1);
}

static void store_delete_run(void *arg)
{
    store_write(arg, store_sql_delete, 1);
}

static void store_search_run(void *arg)
{
    struct store_job *job = arg;
    sqlite3_stmt *stmt =
        db_stmt(db_has_fts ? store_sql_search_fts : store_sql_search_like);
    if (!stmt) {
        job->err = errno;
        return;
    }
    sqlite3_bind_text(stmt, 1, job->text, (int)job->len, SQLITE_STATIC);
    sqlite3_bind_int(stmt, 2, job->limit);
    int more;
    json_t *notes = store_rows(stmt, job->limit, &more);
    sqlite3_clear_bindings(stmt);
    if (!notes) {
        job->err = errno;
        return;
    }
    job->out = json_pack("{s:o}", "notes", notes);
    if (!job->out)
        job->err = ENOMEM;
}

/* ---- hub side ---------------------------------------------------------- */

/* co_offload's abandon callback, and the normal end of a job. */
static void store_job_free(void *arg)
{
    struct store_job *job = arg;
    json_decref(job->out);
    free(job->text);
    free(job);
}

static struct store_job *store_job_new(int64_t id, const char *text, size_t len)
{
    struct store_job *job = calloc(1, sizeof *job);
    if (!job)
        return NULL;
    job->id = id;
    if (text) {
        /* A copy: the request's memory is gone if the wait ends early. */
        job->text = malloc(len + 1);
        if (!job->text) {
            free(job);
            return NULL;
        }
        memcpy(job->text, text, len);
        job->text[len] = '\0';
        job->len = len;
    }
    return job;
}

/* Hands a finished job's result to *out (if out is not NULL) and frees the
 * job. Returns 0, or -1 with the job's errno. */
static int store_finish(struct store_job *job, json_t **out)
{
    int err = job->err;
    if (!err && out) {
        *out = job->out;
        job->out = NULL;
    }
    store_job_free(job);
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}

/* Runs a read job on the pool; see store_finish. Owns job in every case. */
static int store_call(co_work_fn run, struct store_job *job, json_t **out)
{
    /* Whenever co_offload fails, store_job_free runs as its abandon
     * callback (now, or when run returns): the job is not ours then. */
    if (co_offload(run, job, store_job_free, co_deadline(STORE_DEADLINE_MS)) <
        0)
        return -1;
    return store_finish(job, out);
}

/* A write abandoned by a cancel: it still held the slot until run ended. */
static void store_write_abandon(void *arg)
{
    co_sem_release(store_write_slot);
    store_job_free(arg);
}

/* Runs a write job on the pool once it holds the write slot; see
 * store_finish. Owns job in every case. */
static int store_call_write(co_work_fn run, struct store_job *job, json_t **out)
{
    if (co_sem_acquire(store_write_slot, co_deadline(STORE_DEADLINE_MS)) < 0) {
        int err = errno;
        store_job_free(job);
        errno = err;
        return -1;
    }
    /* No deadline: run ends within the busy timeout, and the answer must
     * say whether it committed. Only a cancel (the server stopping) ends
     * the wait early; the slot is then released when run is done. */
    if (co_offload(run, job, store_write_abandon, -1) < 0)
        return -1;
    co_sem_release(store_write_slot);
    return store_finish(job, out);
}

static int store_list(int64_t before, int limit, json_t **out)
{
    struct store_job *job = store_job_new(before, NULL, 0);
    if (!job)
        return -1;
    job->limit = limit;
    return store_call(store_page_run, job, out);
}

static int store_get(int64_t id, json_t **out)
{
    struct store_job *job = store_job_new(id, NULL, 0);
    return job ? store_call(store_get_run, job, out) : -1;
}

static int store_create(const char *text, size_t len, json_t **out)
{
    struct store_job *job = store_job_new(0, text, len);
    return job ? store_call_write(store_create_run, job, out) : -1;
}

static int store_update(int64_t id, const char *text, size_t len, json_t **out)
{
    struct store_job *job = store_job_new(id, text, len);
    return job ? store_call_write(store_update_run, job, out) : -1;
}

static int store_delete(int64_t id)
{
    struct store_job *job = store_job_new(id, NULL, 0);
    return job ? store_call_write(store_delete_run, job, NULL) : -1;
}

/* FTS5: every word of q becomes a quoted prefix term ("wor"*), implicitly
 * ANDed, so user input is never parsed as FTS5 syntax and a word being
 * typed already matches. LIKE: q becomes %q% with its wildcards escaped.
 * Returns a new string (its length in *len), or NULL with ENOMEM. */
static char *store_search_expr(const char *q, size_t *len)
{
    size_t n = strlen(q);
    char *out = malloc(3 * n + 3), *p = out;
    if (!out)
        return NULL;
    if (!db_has_fts) {
        *p++ = '%';
        for (const char *s = q; *s; s++) {
            if (*s == '%' || *s == '_' || *s == '\\')
                *p++ = '\\';
            *p++ = *s;
        }
        *p++ = '%';
    } else {
        for (const char *s = q; *s;) {
            while (*s == ' ' || (*s >= '\t' && *s <= '\r'))
                s++;
            if (!*s)
                break;
            if (p != out)
                *p++ = ' ';
            *p++ = '"';
            for (; *s && *s != ' ' && !(*s >= '\t' && *s <= '\r'); s++) {
                if (*s == '"')
                    *p++ = '"';
                *p++ = *s;
            }
            *p++ = '"';
            *p++ = '*';
        }
    }
    *p = '\0';
    *len = (size_t)(p - out);
    return out;
}

static int store_search(const char *q, int limit, json_t **out)
{
    size_t len;
    char *expr = store_search_expr(q, &len);
    if (!expr)
        return -1;
    if (len == 0) { /* only spaces: nothing to look for */
        free(expr);
        *out = json_pack("{s:[]}", "notes");
        return *out ? 0 : (errno = ENOMEM, -1);
    }
    struct store_job *job = store_job_new(0, NULL, 0);
    if (!job) {
        free(expr);
        return -1;
    }
    job->text = expr;
    job->len = len;
    job->limit = limit;
    return store_call(store_search_run, job, out);
}

/* ---- opening ----------------------------------------------------------- */

struct store_migrate_job {
    int fts;
    int rc, err;
};

static void store_migrate_run(void *arg)
{
    struct store_migrate_job *job = arg;
    job->rc = db_migrate(job->fts);
    job->err = errno;
}

static void store_checkpoint_run(void *unused)
{
    (void)unused;
    db_checkpoint();
}

static void store_close(void)
{
    /* No argument to free: abandon has nothing to do. */
    if (!co_cancelled())
        co_offload(store_checkpoint_run, NULL, NULL, co_deadline(6000));
}

/* The offload hooks are the pool's until the process exits, but the server
 * dlclose()s apps when it stops (or when an init fails): keep this module
 * mapped so the fini hooks still have code to run. */
static int store_pin_module(void)
{
    Dl_info info;
    if (!dladdr((void *)store_pin_module, &info) || !info.dli_fname ||
        !dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE)) {
        fprintf(stderr, "notes: cannot pin the module: %s\n", dlerror());
        return -1;
    }
    return 0;
}

/* The database's path: COSERVE_NOTES_DB, else notes.db in systemd's
 * StateDirectory= ($STATE_DIRECTORY, the first if it lists several), else
 * var/notes.db under the working directory. */
static int store_db_path(char *out, size_t size)
{
    const char *env = getenv("COSERVE_NOTES_DB");
    const char *state = getenv("STATE_DIRECTORY");
    int n;
    if (env && *env)
        n = snprintf(out, size, "%s", env);
    else if (state && *state)
        n = snprintf(out, size, "%.*s/notes.db", (int)strcspn(state, ":"),
                     state);
    else
        n = snprintf(out, size, "%s", NOTES_DB_DEFAULT);
    if (n < 0 || (size_t)n >= size) {
        fprintf(stderr, "notes: the database path is too long\n");
        return -1;
    }
    return 0;
}

/* Creates the database's directory (and its parents, 0750: notes are
 * private) and the file itself if missing, so that a missing or read-only
 * directory is one line naming the path and the reason, here, instead of
 * each offload thread's SQLite open failing on its own. Runs on the hub
 * at init: a few metadata calls, before the app serves. */
static int store_prepare_path(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        /* each parent, then the directory itself (mkdir -p) */
        for (char *p = dir + 1;; p++) {
            if (*p && *p != '/')
                continue;
            char c = *p;
            *p = '\0';
            if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
                fprintf(stderr,
                        "notes: cannot create the data directory %s: %s "
                        "(set COSERVE_NOTES_DB to a writable path)\n",
                        dir, strerror(errno));
                return -1;
            }
            *p = c;
            if (!c)
                break;
        }
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        fprintf(stderr,
                "notes: cannot open the database %s for writing: %s (set "
                "COSERVE_NOTES_DB to a writable path)\n",
                path, strerror(errno));
        return -1;
    }
    close(fd);
    /* WAL mode keeps -wal and -shm files beside the database */
    const char *d = !slash ? "." : slash == dir ? "/" : dir;
    if (access(d, W_OK | X_OK) < 0) {
        fprintf(stderr,
                "notes: the data directory %s is not writable: %s (SQLite "
                "keeps its -wal and -shm files beside %s)\n",
                d, strerror(errno), path);
        return -1;
    }
    return 0;
}

static int store_open_once(void)
{
    static char path[4096];
    static int hooked;
    if (!store_write_slot && !(store_write_slot = co_sem_new(1)))
        return -1;
    if (!hooked) {
        if (store_db_path(path, sizeof path) < 0 ||
            store_prepare_path(path) < 0)
            return -1;
        if (store_pin_module() < 0)
            return -1;
        if (co_offload_hook(db_thread_open, db_thread_close, path) < 0)
            return -1;
        hooked = 1;
    }
    /* COSERVE_NOTES_FTS=0 forces the LIKE search (tests use it). On the
     * heap: a server stopping during init cancels the wait. */
    const char *fts = getenv("COSERVE_NOTES_FTS");
    struct store_migrate_job *job = calloc(1, sizeof *job);
    if (!job)
        return -1;
    job->fts = !(fts && strcmp(fts, "0") == 0);
    if (co_offload(store_migrate_run, job, free, -1) < 0) {
        int err = errno; /* free() runs as abandon: the job is not ours */
        fprintf(stderr, "notes: cannot set up %s: %s\n", path, strerror(err));
        return -1;
    }
    int rc = job->rc;
    int err = job->err;
    free(job);
    if (rc < 0) {
        fprintf(stderr, "notes: cannot set up %s: %s\n", path, strerror(err));
        return -1;
    }
    fprintf(stderr, "notes: %s ready (search: %s)\n", path,
            db_has_fts ? "FTS5" : "LIKE");
    return 0;
}

static int store_open(void)
{
    if (store_open_once() == 0)
        return 0;
    /* a refused app leaves nothing behind (nobody else holds it yet) */
    co_sem_free(store_write_slot);
    store_write_slot = NULL;
    return -1;
}

const struct store store_sqlite = {
    .name = "sqlite",
    .open = store_open,
    .close = store_close,
    .list = store_list,
    .get = store_get,
    .create = store_create,
    .update = store_update,
    .remove = store_delete,
    .search = store_search,
};
