/*
 * crash - a test app that kills its worker, mounted at /crash.
 *
 *   /crash/segv    writes through a NULL pointer (SIGSEGV)
 *   /crash/abort   calls abort() (SIGABRT)
 *
 * For the master's tests: a client that can crash workers at will must not
 * be able to stop the service.
 */
#include <stdlib.h>
#include <string.h>

#include "coserve.h"

/* volatile: the compiler must not see the NULL and drop the store */
static int *volatile crash_nowhere;

static int crash_handler(co_request_t *req, co_response_t *res)
{
    if (strcmp(co_req_path_info(req), "/abort") == 0)
        abort();
    *crash_nowhere = 1;
    return co_res_send(res, 500, "text/plain", "still alive\n", 12);
}

COSERVE_APP(.name = "crash", .mount = "/crash", .handler = crash_handler);
