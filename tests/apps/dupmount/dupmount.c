/*
 * dupmount - a test app that claims /hello, which the hello demo already
 * has: the one loaded second is refused, naming the one that holds it.
 */
#include "coserve.h"

static int dupmount_handler(co_request_t *req, co_response_t *res)
{
    (void)req;
    static const char body[] = "dupmount answered\n";
    return co_res_send(res, 200, "text/plain", body, sizeof body - 1);
}

COSERVE_APP(.name = "dupmount", .mount = "/hello", .handler = dupmount_handler);
