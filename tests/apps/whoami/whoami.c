/*
 * whoami - a test app: GET /whoami answers who the server thinks is asking.
 *
 *   remote_addr=127.0.0.2     co_req_remote_addr (X-Forwarded-For from a
 *                             trusted proxy, else the peer's address)
 *   scheme=http               co_req_scheme (X-Forwarded-Proto, trusted)
 *   remote_port=54321         the peer socket's port (0 on a unix socket):
 *                             the same port on two requests means the proxy
 *                             reused its upstream connection
 */
#include <stdio.h>

#include "coserve.h"

static int whoami(co_request_t *req, co_response_t *res)
{
    char body[256];
    int n = snprintf(
        body, sizeof body, "remote_addr=%s\nscheme=%s\nremote_port=%d\n",
        co_req_remote_addr(req), co_req_scheme(req), co_req_remote_port(req));
    return co_res_send(res, 200, "text/plain; charset=utf-8", body, (size_t)n);
}

COSERVE_APP(.name = "whoami", .mount = "/whoami", .handler = whoami);
