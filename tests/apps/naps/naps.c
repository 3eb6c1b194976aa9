/*
 * naps - a test app that naps in plain usleep(), mounted at /naps.
 *
 *   /naps?ms=N     usleep(N ms), then answers how it went
 *   /naps/last     "started=S done=D rc=R errno=E" of the naps so far
 *
 * With the hooks, a nap whose client went away is cancelled: usleep
 * returns -1 with ECANCELED, which /naps/last then shows.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coserve.h"

static int naps_started, naps_done, naps_rc, naps_errno;

static int naps_handler(co_request_t *req, co_response_t *res)
{
    char body[128];
    int n;
    if (strcmp(co_req_path_info(req), "/last") == 0) {
        n = snprintf(body, sizeof body, "started=%d done=%d rc=%d errno=%d\n",
                     naps_started, naps_done, naps_rc, naps_errno);
        return co_res_send(res, 200, "text/plain", body, (size_t)n);
    }
    char ms[16] = "0";
    co_req_query_param(req, "ms", ms, sizeof ms);
    naps_started++;
    int rc = usleep((useconds_t)atoi(ms) * 1000);
    naps_rc = rc;
    naps_errno = rc < 0 ? errno : 0;
    naps_done++;
    n = snprintf(body, sizeof body, "rc=%d\n", rc);
    return co_res_send(res, 200, "text/plain", body, (size_t)n);
}

COSERVE_APP(.name = "naps", .mount = "/naps", .handler = naps_handler);
