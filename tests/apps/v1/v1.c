/*
 * v1 - a test app for reloads: GET /version answers "v1". tests/apps/v1 and
 * tests/apps/v2 mount the same path, so swapping which one an --apps dir
 * links to, then SIGHUP, shows which code the workers run.
 */
#include "coserve.h"

static int version(co_request_t *req, co_response_t *res)
{
    (void)req;
    return co_res_send(res, 200, "text/plain; charset=utf-8", "v1", 2);
}

COSERVE_APP(.name = "v1", .mount = "/version", .handler = version);
