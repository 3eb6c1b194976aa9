/*
 * badabi - a test app built for a future ABI: the loader must refuse it
 * (and name it in the log) without touching anything else in it.
 */
#include "coserve.h"

static int badabi_handler(co_request_t *req, co_response_t *res)
{
    (void)req;
    return co_res_send(res, 200, "text/plain", "badabi\n", 7);
}

/* Written out by hand: COSERVE_APP always stamps the current version. */
__attribute__((visibility("default"))) const struct co_app coserve_app = {
    .abi_version = COSERVE_ABI_VERSION + 1,
    .name = "badabi",
    .mount = "/badabi",
    .handler = badabi_handler,
};
