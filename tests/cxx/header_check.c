/*
 * header_check.c - include/coserve.h compiles warning-free as C11, C++11
 * and C++20 (co_yield is a C++20 keyword: the header must not use it
 * there). `make test` compiles this file three ways (see the Makefile's
 * header-check); it is never linked. Each call below only has to type-check.
 */
#include "coserve.h"

#ifdef __cplusplus
#define HC_NULL nullptr
#else
#define HC_NULL ((void *)0)
#endif

static void *header_check_body(void *arg)
{
    co_t *child = co_spawn(header_check_body, HC_NULL);
    if (child)
        co_join(child, HC_NULL, co_deadline(10));
    co_sleep(co_deadline(1));
    co_yield_now();
#ifndef __cplusplus
    co_yield (); /* the old name keeps working in C */
#endif
    return arg;
}

static int header_check_handler(co_request_t *req, co_response_t *res)
{
    (void)co_req_method(req);
    return co_res_send(res, 200, "text/plain", "ok\n", 3);
}

#if !defined(__cplusplus) || __cplusplus >= 202002L
/* C and C++20 have designated initializers; the descriptor must be an
 * exported, unmangled symbol in both (checked with nm by the Makefile). */
COSERVE_APP(.name = "header-check", .handler = header_check_handler);
#endif

int header_check_run(void);
int header_check_run(void)
{
    (void)header_check_handler;
    return co_run(header_check_body, HC_NULL, HC_NULL);
}
