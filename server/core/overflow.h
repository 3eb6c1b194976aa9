/*
 * overflow.h - naming the coroutine whose stack overflowed.
 *
 * A stack overflow runs into the guard page below the coroutine's stack and
 * raises SIGSEGV with no stack left to run a handler on, so each hub thread
 * gets an alternate signal stack. The handler checks whether the fault lies
 * in (or just below) the running coroutine's guard page; if so it writes one
 * line naming the coroutine, then lets the signal kill the process as it
 * would have. Any other fault goes to the handler that was there before
 * (the default, or AddressSanitizer's).
 */
#ifndef COSERVE_CORE_OVERFLOW_H
#define COSERVE_CORE_OVERFLOW_H

/* Installs the process-wide handler (once) and this thread's alternate
 * signal stack. Returns 0, or -1 with errno. */
int overflow__thread_init(void);

#endif
