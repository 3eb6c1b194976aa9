/*
 * notes - a JSON API for short text notes, kept in SQLite or PostgreSQL.
 *
 *   GET    /notes?limit=N&cursor=C  newest first: {"notes": [...],
 *                                   "next_cursor": "C" or null}
 *   POST   /notes          {"text"} 201, the note, Location: /notes/ID
 *   GET    /notes/ID       the note {"id","text","created_at","updated_at"}
 *   PUT    /notes/ID       {"text"} the updated note
 *   DELETE /notes/ID       204
 *   GET    /notes/search?q=words&limit=N   {"notes": [...]}, best first
 *   GET    /notes/events   text/event-stream: a "note" event per change
 *                          made on any worker (live.c)
 *
 * Errors answer {"error": "..."}: 400 (bad JSON, bad id, bad parameter),
 * 404, 405 (with Allow), 413 (text over 64 KiB, body over 80 KiB), 415
 * (not application/json), 422 (no "text" string), 503 (database busy).
 *
 * This file is the HTTP side only. SQLite (the default, no setup): every
 * SQL statement runs on the offload pool (store.c), so the hub keeps
 * serving while SQLite works; the database is COSERVE_NOTES_DB, else
 * notes.db in $STATE_DIRECTORY (systemd's StateDirectory=), else
 * var/notes.db; its directory is created (0750) if missing. PostgreSQL,
 * for several servers sharing one database: COSERVE_NOTES_DB=
 * postgresql://USER@HOST/DB (any libpq URI); queries wait on the hub, a
 * pool of COSERVE_NOTES_PG_POOL connections per worker (store_pg.c).
 *
 *   curl -H 'Content-Type: application/json' -d '{"text":"hi"}' \
 *        http://127.0.0.1:8080/notes
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bus.h"
#include "notes.h"

#define NOTES_ALLOW_LIST "GET, HEAD, POST"
#define NOTES_ALLOW_ITEM "GET, HEAD, PUT, DELETE"
#define NOTES_ALLOW_SEARCH "GET, HEAD"

/* The database behind the API, chosen once per worker by notes_init. */
static const struct store *notes_store;

static int notes_method(const co_request_t *req, const char *name)
{
    return strcmp(co_req_method(req), name) == 0;
}

static int notes_is_get(const co_request_t *req)
{
    return notes_method(req, "GET") || notes_method(req, "HEAD");
}

static int notes_refuse_method(co_response_t *res, const char *allow)
{
    if (co_res_header(res, "Allow", allow) < 0)
        return -1;
    return reply_errorf(res, 405, "method not allowed; use %s", allow);
}

/* A positive decimal integer that fits in int64 (no sign, no leading
 * zero), or -1. */
static int64_t notes_parse_id(const char *s)
{
    if (*s < '1' || *s > '9')
        return -1;
    int64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > (INT64_MAX - (*s - '0')) / 10)
            return -1;
        v = v * 10 + (*s - '0');
    }
    return v;
}

/* Reads query parameter `name` as a positive integer: def when absent, -1
 * when malformed or 0. */
static int64_t notes_param(const co_request_t *req, const char *name,
                           int64_t def)
{
    char buf[24];
    if (co_req_query_param(req, name, buf, sizeof buf) < 0)
        return errno == ENOENT ? def : -1;
    return notes_parse_id(buf);
}

/* ?limit=: default 20, values over 100 mean 100. -1 when malformed. */
static int notes_limit(const co_request_t *req)
{
    int64_t limit = notes_param(req, "limit", NOTES_LIMIT_DEFAULT);
    if (limit < 0)
        return -1;
    return limit > NOTES_LIMIT_MAX ? NOTES_LIMIT_MAX : (int)limit;
}

/* Sends a store_* result (or its error) and frees it. */
static int notes_send(co_response_t *res, int rc, int status, json_t *value)
{
    if (rc < 0)
        return reply_store_error(res, errno);
    rc = reply_json(res, status, value);
    json_decref(value);
    return rc;
}

/* Is the body declared as JSON? Parameters (charset) are allowed. */
static int notes_is_json(const co_request_t *req)
{
    const char *type = co_req_header(req, "Content-Type");
    static const char want[] = "application/json";
    if (!type || strncasecmp(type, want, sizeof want - 1) != 0)
        return 0;
    type += sizeof want - 1;
    return *type == '\0' || *type == ';' || *type == ' ' || *type == '\t';
}

/* Reads the whole body, at most NOTES_BODY_MAX bytes, into a new buffer.
 * Returns it (length in *len), or NULL after answering the client (*rc is
 * then the handler's result). */
static char *notes_read_body(co_request_t *req, co_response_t *res, size_t *len,
                             int *rc)
{
    int64_t declared = co_req_content_length(req);
    if (declared > NOTES_BODY_MAX) {
        *rc = reply_errorf(res, 413, "request body over %d KiB",
                           NOTES_BODY_MAX / 1024);
        return NULL;
    }
    /* One byte more than the limit, so a body over it shows. */
    size_t cap = declared >= 0 ? (size_t)declared + 1 : 4096, n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        *rc = -1;
        return NULL;
    }
    for (;;) {
        if (n > NOTES_BODY_MAX) {
            free(buf);
            *rc = reply_errorf(res, 413, "request body over %d KiB",
                               NOTES_BODY_MAX / 1024);
            return NULL;
        }
        if (n == cap) {
            size_t grow =
                cap * 2 > NOTES_BODY_MAX + 1 ? NOTES_BODY_MAX + 1 : cap * 2;
            char *grown = realloc(buf, grow);
            if (!grown) {
                free(buf);
                *rc = -1;
                return NULL;
            }
            buf = grown;
            cap = grow;
        }
        /* No deadline of ours: the server's body timeout bounds each read. */
        ssize_t got = co_req_read(req, buf + n, cap - n, -1);
        if (got == 0)
            break;
        if (got > 0) {
            n += (size_t)got;
            continue;
        }
        int err = errno;
        free(buf);
        if (err == EMSGSIZE)
            *rc = reply_error(res, 413, "request body too large");
        else if (err == ETIMEDOUT)
            *rc = reply_error(res, 408, "request body timed out");
        else if (err == EPROTO)
            *rc = reply_error(res, 400, "malformed request body");
        else
            *rc = -1;
        return NULL;
    }
    *len = n;
    return buf;
}

/* Reads and checks a {"text": "..."} body. Returns the parsed document
 * (its "text" is a non-blank string of at most NOTES_TEXT_MAX bytes), or
 * NULL after answering the client (*rc is then the handler's result). */
static json_t *notes_read_note(co_request_t *req, co_response_t *res, int *rc)
{
    if (!notes_is_json(req)) {
        *rc = reply_error(res, 415, "Content-Type must be application/json");
        return NULL;
    }
    size_t len;
    char *body = notes_read_body(req, res, &len, rc);
    if (!body)
        return NULL;
    json_error_t jerr;
    json_t *doc =
        json_loadb(body, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    free(body);
    if (!doc) {
        *rc = reply_errorf(res, 400, "invalid JSON: %s (line %d, column %d)",
                           jerr.text, jerr.line, jerr.column);
        return NULL;
    }
    json_t *text = json_object_get(doc, "text");
    const char *why = NULL;
    int status = 422;
    if (!json_is_object(doc))
        why = "the body must be a JSON object: {\"text\": \"...\"}";
    else if (!text)
        why = "\"text\" is missing";
    else if (!json_is_string(text))
        why = "\"text\" must be a string";
    else if (json_string_length(text) > NOTES_TEXT_MAX)
        why = "\"text\" is over 64 KiB", status = 413;
    else if (strspn(json_string_value(text), " \t\r\n") ==
             json_string_length(text))
        why = "\"text\" is blank";
    if (why) {
        json_decref(doc);
        *rc = reply_error(res, status, why);
        return NULL;
    }
    return doc;
}

/* /notes: the newest notes, or a new one. */
static int notes_collection(co_request_t *req, co_response_t *res)
{
    json_t *out = NULL;
    if (notes_is_get(req)) {
        int limit = notes_limit(req);
        if (limit < 0)
            return reply_error(res, 400, "limit must be a positive integer");
        int64_t before = notes_param(req, "cursor", INT64_MAX);
        if (before < 0)
            return reply_error(res, 400, "cursor is malformed");
        int rc = notes_store->list(before, limit, &out);
        return notes_send(res, rc, 200, out);
    }
    if (!notes_method(req, "POST"))
        return notes_refuse_method(res, NOTES_ALLOW_LIST);

    int rc;
    json_t *doc = notes_read_note(req, res, &rc);
    if (!doc)
        return rc;
    json_t *text = json_object_get(doc, "text");
    rc = notes_store->create(json_string_value(text), json_string_length(text),
                             &out);
    json_decref(doc);
    if (rc < 0)
        return reply_store_error(res, errno);
    live_changed("created", json_integer_value(json_object_get(out, "id")));
    char location[320]; /* the mount (< 256) and an id */
    snprintf(location, sizeof location, "%s/%" JSON_INTEGER_FORMAT,
             co_req_script_name(req),
             json_integer_value(json_object_get(out, "id")));
    if (co_res_header(res, "Location", location) < 0) {
        json_decref(out);
        return -1;
    }
    return notes_send(res, 0, 201, out);
}

/* /notes/search?q=: notes matching every word. */
static int notes_search(co_request_t *req, co_response_t *res)
{
    if (!notes_is_get(req))
        return notes_refuse_method(res, NOTES_ALLOW_SEARCH);
    char q[NOTES_QUERY_MAX];
    if (co_req_query_param(req, "q", q, sizeof q) < 0)
        return errno == ENOENT ? reply_error(res, 400, "q is required")
                               : reply_errorf(res, 400, "q is over %d bytes",
                                              NOTES_QUERY_MAX - 1);
    int limit = notes_limit(req);
    if (limit < 0)
        return reply_error(res, 400, "limit must be a positive integer");
    json_t *out = NULL;
    int rc = notes_store->search(q, limit, &out);
    return notes_send(res, rc, 200, out);
}

/* /notes/ID: one note. */
static int notes_item(co_request_t *req, co_response_t *res, const char *seg)
{
    int get = notes_is_get(req), put = notes_method(req, "PUT"),
        del = notes_method(req, "DELETE");
    if (!get && !put && !del)
        return notes_refuse_method(res, NOTES_ALLOW_ITEM);
    int64_t id = notes_parse_id(seg);
    if (id < 0)
        return reply_error(res, 400, "a note id is a positive integer");

    json_t *out = NULL;
    int rc;
    if (get) {
        rc = notes_store->get(id, &out);
        return notes_send(res, rc, 200, out);
    }
    if (del) {
        if (notes_store->remove(id) < 0)
            return reply_store_error(res, errno);
        live_changed("deleted", id);
        return co_res_status(res, 204); /* no body, no Content-Type */
    }
    json_t *doc = notes_read_note(req, res, &rc);
    if (!doc)
        return rc;
    json_t *text = json_object_get(doc, "text");
    rc = notes_store->update(id, json_string_value(text),
                             json_string_length(text), &out);
    json_decref(doc);
    if (rc == 0)
        live_changed("updated", id);
    return notes_send(res, rc, 200, out);
}

static int notes_handler(co_request_t *req, co_response_t *res)
{
    const char *rest = co_req_path_info(req);
    if (rest[0] == '\0' || strcmp(rest, "/") == 0)
        return notes_collection(req, res);
    rest++;
    if (strchr(rest, '/'))
        return reply_error(res, 404, "no such resource");
    if (strcmp(rest, "search") == 0)
        return notes_search(req, res);
    if (strcmp(rest, "events") == 0)
        return live_events(req, res);
    return notes_item(req, res, rest);
}

/* COSERVE_NOTES_DB names a PostgreSQL database by URI (libpq's
 * postgresql:// or postgres://); anything else is SQLite's file. */
static const struct store *notes_choose_store(void)
{
    const char *db = getenv("COSERVE_NOTES_DB");
    if (db && (strncmp(db, "postgresql://", 13) == 0 ||
               strncmp(db, "postgres://", 11) == 0))
        return &store_pg;
    return &store_sqlite;
}

static int notes_init(void)
{
    json_object_seed(0); /* before the offload threads build objects */
    notes_store = notes_choose_store();
    if (live_init() < 0)
        return -1;
    return notes_store->open();
}

static void notes_fini(void)
{
    bus_fini();
    notes_store->close();
}

COSERVE_APP(.name = "notes", .mount = "/notes", .init = notes_init,
            .fini = notes_fini, .handler = notes_handler);
