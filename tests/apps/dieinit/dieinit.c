/*
 * dieinit - a test app whose init exits the worker, as a fatal start-up
 * error would: the worker never becomes ready, and the master must back
 * off instead of forking it again in a tight loop.
 */
#include <stdlib.h>

#include "coserve.h"

static int dieinit_init(void)
{
    exit(3);
}

static int dieinit_handler(co_request_t *req, co_response_t *res)
{
    (void)req;
    return co_res_send(res, 200, "text/plain", "unreachable\n", 12);
}

COSERVE_APP(.name = "dieinit", .mount = "/dieinit", .init = dieinit_init,
            .handler = dieinit_handler);
