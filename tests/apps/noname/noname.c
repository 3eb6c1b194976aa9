/*
 * noname - a test app whose descriptor has no .name (the header allows
 * it): the server names it after its file, "noname", in every log line.
 *
 *   /noname        200 "nameless\n"
 *   /noname/fail   returns -1 before responding: the error log names the
 *                  app by that derived name, read again per request
 */
#include <errno.h>
#include <string.h>

#include "coserve.h"

static int noname_handler(co_request_t *req, co_response_t *res)
{
    if (strcmp(co_req_path_info(req), "/fail") == 0) {
        errno = EIO;
        return -1;
    }
    return co_res_send(res, 200, "text/plain", "nameless\n", 9);
}

COSERVE_APP(.handler = noname_handler);
