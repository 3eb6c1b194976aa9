/*
 * echo - POST or PUT /echo sends the request body back, streamed.
 *
 * The body is never held whole: each piece read from the client is written
 * back before the next is read, so a 1 GB upload costs 16 KiB of memory. With
 * a Content-Length from the client the response declares the same length (no
 * chunked encoding); a chunked upload is echoed chunked.
 *
 *   curl --data-binary @file -H 'Content-Type: image/png' \
 *        http://127.0.0.1:8080/echo > copy.png
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "coserve.h"

#define ECHO_TEXT "text/plain; charset=utf-8"

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
    int64_t length = co_req_content_length(req);
    if (length >= 0) {
        char value[24];
        snprintf(value, sizeof value, "%" PRId64, length);
        if (co_res_header(res, "Content-Length", value) < 0)
            return -1;
    }

    /* No deadline of our own: the server's body timeout bounds each read.
     * Any error (client gone, body over the limit, bad chunking) is handed
     * back; the server answers it or closes the connection. */
    char buf[16 * 1024];
    for (;;) {
        ssize_t n = co_req_read(req, buf, sizeof buf, -1);
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        if (co_res_write(res, buf, (size_t)n) < 0)
            return -1;
    }
}

COSERVE_APP(.name = "echo", .mount = "/echo", .handler = echo);
