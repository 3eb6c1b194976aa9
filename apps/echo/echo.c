/*
 * echo - POST or PUT /echo sends the request body back.
 *
 * Bodies up to ECHO_HOLD are read whole before the answer starts, then sent
 * with a Content-Length. That is what a proxy in front expects: nginx stops
 * sending a request body once the response head has come back, so an app
 * that answers while it still reads hangs there. Bigger bodies are echoed
 * as they arrive (each piece written before the next is read), so a 1 GB
 * upload costs ECHO_HOLD of memory, not 1 GB; with a Content-Length from
 * the client the response declares the same length, a chunked upload is
 * echoed chunked.
 *
 *   curl --data-binary @file -H 'Content-Type: image/png' \
 *        http://127.0.0.1:8080/echo > copy.png
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coserve.h"

#define ECHO_TEXT "text/plain; charset=utf-8"
#define ECHO_HOLD (4 * 1024 * 1024)
#define ECHO_PIECE (64 * 1024)

/* Reads until the body ends or ECHO_HOLD bytes are held. Returns the
 * buffer (caller frees; *len bytes, *done set at the end of the body), or
 * NULL on an error (errno from co_req_read, or ENOMEM). */
static char *echo_gather(co_request_t *req, size_t *len, int *done)
{
    /* a body of known length gets one buffer of its size (growing one by
     * doubling copied a 1 MiB body twice over) */
    int64_t known = co_req_content_length(req);
    size_t cap =
        known > 0 && known <= ECHO_HOLD ? (size_t)known + 1 : ECHO_PIECE;
    char *buf = malloc(cap);
    *len = 0;
    *done = 0;
    while (buf && *len < ECHO_HOLD) {
        /* (all of a known body read: the byte left sees its end) */
        int all_in = known >= 0 && *len >= (size_t)known;
        if (cap - *len < ECHO_PIECE / 4 && !all_in) {
            char *grown = realloc(buf, cap * 2);
            if (!grown)
                break;
            buf = grown;
            cap *= 2;
        }
        /* no deadline of our own: the server's body timeout bounds it */
        ssize_t n = co_req_read(req, buf + *len, cap - *len, -1);
        if (n < 0) {
            free(buf);
            return NULL;
        }
        if (n == 0) {
            *done = 1;
            return buf;
        }
        *len += (size_t)n;
    }
    if (!buf)
        return NULL;
    return buf; /* held ECHO_HOLD: the rest streams */
}

static int echo(co_request_t *req, co_response_t *res)
{
    const char *method = co_req_method(req);
    if (strcmp(method, "POST") != 0 && strcmp(method, "PUT") != 0) {
        static const char refused[] =
            "405 method not allowed: POST or PUT a body to /echo\n";
        if (co_res_header(res, "Allow", "POST, PUT") < 0)
            return -1;
        return co_res_send(res, 405, ECHO_TEXT, refused, sizeof refused - 1);
    }

    const char *type = co_req_header(req, "Content-Type");
    if (co_res_header(res, "Content-Type",
                      type ? type : "application/octet-stream") < 0)
        return -1;
    size_t held;
    int done;
    char *buf = echo_gather(req, &held, &done);
    if (!buf)
        return -1; /* the server answers (413, 400, 408) or closes */
    int64_t length = done ? (int64_t)held : co_req_content_length(req);
    if (length >= 0) {
        char value[24];
        snprintf(value, sizeof value, "%" PRId64, length);
        if (co_res_header(res, "Content-Length", value) < 0)
            goto fail;
    }
    if (co_res_write(res, buf, held) < 0)
        goto fail;
    while (!done) {
        ssize_t n = co_req_read(req, buf, ECHO_PIECE, -1);
        if (n < 0)
            goto fail;
        if (n == 0)
            break;
        if (co_res_write(res, buf, (size_t)n) < 0)
            goto fail;
    }
    free(buf);
    return 0;
fail:
    free(buf);
    return -1;
}

COSERVE_APP(.name = "echo", .mount = "/echo", .handler = echo);
