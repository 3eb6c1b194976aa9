/*
 * failinit - a test app whose init refuses: the loader must drop it, name it
 * in the log, and never route a request to it.
 */
#include "coserve.h"

static int failinit_init(void)
{
    return -1;
}

static int failinit_handler(co_request_t *req, co_response_t *res)
{
    (void)req;
    return co_res_send(res, 200, "text/plain", "failinit served\n", 16);
}

COSERVE_APP(.name = "failinit", .mount = "/failinit", .init = failinit_init,
            .handler = failinit_handler);
