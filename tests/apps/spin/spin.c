/*
 * spin - a test app that blocks its worker's hub, for the watchdog tests.
 *
 *   /spin/cpu?ms=N     spins in a CPU loop (spin_busy_loop) for N ms
 *   /spin/block?ms=N   sleeps N ms in a raw nanosleep system call
 *                      (spin_blocking_syscall): syscall(2) is no libc
 *                      wrapper the hooks could make cooperative
 *   /spin/child?ms=N   spins in a child coroutine it spawns and joins
 *   /spin/hang         never returns: raw ppoll system calls forever
 *                      (spin_hang_forever), for --timeout
 *   /spin/quick        answers at once
 *
 * The blocking functions are noinline so the watchdog's backtrace shows
 * them by name, above spin_handler.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "coserve.h"

static long spin_ms(const struct timespec *from, const struct timespec *to)
{
    return (to->tv_sec - from->tv_sec) * 1000 +
           (to->tv_nsec - from->tv_nsec) / 1000000;
}

/* Burns CPU for ms of wall time, never yielding. */
static __attribute__((noinline)) unsigned long spin_busy_loop(long ms)
{
    struct timespec start, now;
    volatile unsigned long iterations = 0;
    clock_gettime(CLOCK_MONOTONIC, &start);
    do {
        for (int i = 0; i < 100000; i++)
            iterations++;
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while (spin_ms(&start, &now) < ms);
    return iterations;
}

/* Blocks the thread for ms in the kernel. A signal (the watchdog's)
 * interrupts nanosleep with EINTR and the time left: sleep the rest. */
static __attribute__((noinline)) long spin_blocking_syscall(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    long rc;
    while ((rc = syscall(SYS_nanosleep, &ts, &ts)) < 0 && errno == EINTR)
        ;
    return rc;
}

/* Blocks the thread for good: ppoll(2) on nothing with no timeout, as a
 * raw system call, again after every signal (the watchdog's among them). */
static __attribute__((noinline)) long spin_hang_forever(void)
{
    long rc;
    for (;;)
        rc = syscall(SYS_ppoll, NULL, 0, NULL, NULL, 0);
    return rc;
}

/* Not a tail call (the empty asm comes after), so the backtrace shows
 * spin_child between the loop and the coroutine's entry. */
static void *spin_child(void *arg)
{
    unsigned long n = spin_busy_loop((long)(intptr_t)arg);
    __asm__ volatile("" ::: "memory");
    return (void *)(uintptr_t)n;
}

static int spin_handler(co_request_t *req, co_response_t *res)
{
    const char *what = co_req_path_info(req);
    char arg[32], body[64];
    long ms = 0;
    if (co_req_query_param(req, "ms", arg, sizeof arg) >= 0)
        ms = strtol(arg, NULL, 10);
    if (ms < 0 || ms > 60000)
        return co_res_send(res, 400, "text/plain", "bad ms\n", 7);
    int n;
    if (strcmp(what, "/cpu") == 0)
        n = snprintf(body, sizeof body, "spun %lu\n", spin_busy_loop(ms));
    else if (strcmp(what, "/block") == 0)
        n = snprintf(body, sizeof body, "slept %ld\n",
                     spin_blocking_syscall(ms));
    else if (strcmp(what, "/hang") == 0)
        n = snprintf(body, sizeof body, "woke %ld\n", spin_hang_forever());
    else if (strcmp(what, "/child") == 0) {
        co_t *child = co_spawn(spin_child, (void *)(intptr_t)ms);
        void *spun = NULL;
        if (!child || co_join(child, &spun, -1) < 0)
            return -1;
        n = snprintf(body, sizeof body, "child spun %lu\n",
                     (unsigned long)spun);
    } else if (strcmp(what, "/quick") == 0)
        n = snprintf(body, sizeof body, "quick\n");
    else
        return co_res_send(res, 404, "text/plain", "no such spin\n", 13);
    return co_res_send(res, 200, "text/plain", body, (size_t)n);
}

COSERVE_APP(.name = "spin", .mount = "/spin", .handler = spin_handler);
