/*
 * util.h - what every core suite shares: deadlines for waits that only a
 * cancel or a bug would end, and run(), which runs a body in co_run() and
 * fails the test if the hub could not start.
 */
#ifndef COSERVE_TESTS_CORE_UTIL_H
#define COSERVE_TESTS_CORE_UTIL_H

#include <criterion/criterion.h>

#include <errno.h>
#include <string.h>

#include "coserve.h"

/* A wait only a cancel should end: long enough never to fire first. */
#define LONG_MS 10000
/* A join that should be quick: a bug fails the test instead of hanging. */
#define SAFETY_MS 5000

static inline void *run(co_fn fn, void *arg)
{
    void *result = NULL;
    errno = 0;
    int rc = co_run(fn, arg, &result);
    cr_assert_eq(rc, 0, "co_run failed: %s", strerror(errno));
    return result;
}

#endif
