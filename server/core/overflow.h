/*
 * overflow.h - fatal signals: naming the coroutine whose stack overflowed,
 * and the crash report.
 *
 * A stack overflow runs into the guard page below the coroutine's stack and
 * raises SIGSEGV with no stack left to run a handler on, so each hub thread
 * gets an alternate signal stack. The handler checks whether the fault lies
 * in (or just below) the running coroutine's guard page; if so it writes one
 * line naming the coroutine.
 *
 * The same handler takes every fatal signal (SIGSEGV, SIGBUS, SIGFPE,
 * SIGILL, SIGABRT) for the crash report: watchdog__crash() records the
 * request that was running, the fault address and the backtrace, and has
 * them logged. Then the signal kills the process as it would have: the
 * handler that was there before is put back (the default action, or
 * AddressSanitizer's, which adds its own report and exits with status 1;
 * run with ASAN_OPTIONS=handle_segv=0 to let the signal itself kill, as
 * the tests do) and the fault is repeated, or the signal sent again.
 */
#ifndef COSERVE_CORE_OVERFLOW_H
#define COSERVE_CORE_OVERFLOW_H

/* Installs the process-wide handler (once) and this thread's alternate
 * signal stack. Returns 0, or -1 with errno. */
int overflow__thread_init(void);

#endif
