/*
 * fail - a test app whose handler fails, mounted at /fail.
 *
 *   /fail           returns -1 before responding: the client gets a 500 and
 *                   the error log names the app and the request
 *   /fail/started   streams part of a body (flushed), then returns -1: the
 *                   server can only close the connection
 *   /fail/headers   adds a header, writes a little (not flushed), then
 *                   returns -1: still a clean 500, without that header
 */
#include <errno.h>
#include <string.h>

#include "coserve.h"

static int fail_handler(co_request_t *req, co_response_t *res)
{
    const char *info = co_req_path_info(req);
    if (strcmp(info, "/started") == 0) {
        static const char part[] = "partial body ";
        if (co_res_write(res, part, sizeof part - 1) < 0 ||
            co_res_flush(res) < 0)
            return -1;
        errno = EIO;
        return -1;
    }
    if (strcmp(info, "/headers") == 0) {
        if (co_res_header(res, "X-Fail", "should-not-appear") < 0 ||
            co_res_write(res, "half", 4) < 0)
            return -1;
        errno = EIO;
        return -1;
    }
    errno = EIO;
    return -1;
}

COSERVE_APP(.name = "fail", .mount = "/fail", .handler = fail_handler);
