/*
 * reply.c - JSON response bodies. jansson does the encoding (escaping,
 * UTF-8), so no JSON text is assembled by hand here.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notes.h"

#define REPLY_TYPE "application/json"

int reply_json(co_response_t *res, int status, const json_t *value)
{
    /* Compact, UTF-8 (not \u-escaped): the smallest valid body. */
    char *body = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!body)
        return -1;
    int rc = 0;
    if (co_res_header(res, "Cache-Control", "no-store") < 0 ||
        co_res_header(res, "X-Content-Type-Options", "nosniff") < 0)
        rc = -1;
    if (rc == 0)
        rc = co_res_send(res, status, REPLY_TYPE, body, strlen(body));
    free(body);
    return rc;
}

int reply_error(co_response_t *res, int status, const char *message)
{
    json_t *err = json_pack("{s:s}", "error", message);
    if (!err)
        return -1;
    int rc = reply_json(res, status, err);
    json_decref(err);
    return rc;
}

int reply_errorf(co_response_t *res, int status, const char *fmt, ...)
{
    char message[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    /* Formatted messages may quote what a client sent (jansson's "invalid
     * token near ..."): keep them printable ASCII, hence valid UTF-8. */
    for (char *p = message; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            *p = '?';
    return reply_error(res, status, message);
}

int reply_store_error(co_response_t *res, int err)
{
    switch (err) {
    case ENOENT:
        return reply_error(res, 404, "no such note");
    case EBUSY:
    case ETIMEDOUT:
        if (co_res_header(res, "Retry-After", "1") < 0)
            return -1;
        return reply_error(res, 503, "the database is busy; try again");
    case EAGAIN: /* PostgreSQL down or restarting, a connection lost */
        if (co_res_header(res, "Retry-After", "1") < 0)
            return -1;
        return reply_error(res, 503, "the database is unavailable; try again");
    case ECANCELED: /* the server is stopping: nothing to answer */
        errno = err;
        return -1;
    default:
        return reply_error(res, 500, "database error");
    }
}
