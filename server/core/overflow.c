/* Stack overflow and crash reports (see overflow.h). */
#include "core/overflow.h"

#include <errno.h>
#include <execinfo.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/coro.h"
#include "core/log.h"
#include "core/watchdog.h"

#define OVERFLOW_ALTSTACK (64 * 1024)
/* A function with a large frame can step past the guard page; faults this
 * far below it still count as the coroutine's overflow. */
#define OVERFLOW_SLACK (64 * 1024)

/* The signals that kill with a crash report. */
static const int overflow_sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
#define OVERFLOW_NSIGS (sizeof overflow_sigs / sizeof *overflow_sigs)

static struct sigaction overflow_prev[OVERFLOW_NSIGS];
static pthread_once_t overflow_once = PTHREAD_ONCE_INIT;
static int overflow_install_err;
static __thread void *overflow_altstack;

/* A fault in (or just below) the running coroutine's guard page: one line
 * naming it, written at once (the report may not make it out). Returns 1
 * if it was an overflow. */
static int overflow_check(struct co *co, const siginfo_t *si)
{
    uintptr_t addr = (uintptr_t)si->si_addr;
    uintptr_t guard = (uintptr_t)co->stack.map;
    uintptr_t lo = (uintptr_t)co->stack.lo;
    if (!(addr < lo && addr + OVERFLOW_SLACK >= guard))
        return 0;
    char msg[256], id[32];
    snprintf(id, sizeof id, "co-%llu", (unsigned long long)co->id);
    int n = snprintf(msg, sizeof msg,
                     "coserve[%d] fatal: stack overflow in coroutine "
                     "'%s' (%zu KiB stack, fault at %p); raise "
                     "COSERVE_STACK_SIZE or --stack-size\n",
                     (int)getpid(), co->name[0] ? co->name : id,
                     co->stack.size / 1024, si->si_addr);
    if (n > 0) {
        ssize_t w = write(log__fd, msg,
                          (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
        (void)w;
    }
    return 1;
}

static void overflow_handler(int sig, siginfo_t *si, void *uctx)
{
    struct hub *hub = hub__self;
    struct co *co = hub ? hub->current : NULL;
    int overflow = (sig == SIGSEGV || sig == SIGBUS) && co && co->stack.map &&
                   overflow_check(co, si);
    watchdog__crash(sig, si, uctx);
    /* Now die of it: put back the handler from before (SIG_IGN would
     * make a fault repeat forever: the default instead; an overflow is
     * reported: no second report from AddressSanitizer). A real fault
     * repeats when we return; a signal sent (kill, abort's raise) would
     * not, so send it again: it arrives once this handler returns. */
    size_t i = 0;
    while (i < OVERFLOW_NSIGS - 1 && overflow_sigs[i] != sig)
        i++;
    struct sigaction prev = overflow_prev[i];
    if (overflow ||
        (!(prev.sa_flags & SA_SIGINFO) && prev.sa_handler == SIG_IGN)) {
        prev.sa_flags = 0;
        prev.sa_handler = SIG_DFL;
    }
    sigaction(sig, &prev, NULL);
    if (si->si_code <= 0)
        raise(sig);
}

static void overflow_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = overflow_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    /* nothing else runs on this thread while it reports (a second fault in
     * the handler kills at once) */
    sigfillset(&sa.sa_mask);
    for (size_t i = 0; i < OVERFLOW_NSIGS; i++)
        if (sigaction(overflow_sigs[i], &sa, &overflow_prev[i]) < 0)
            overflow_install_err = errno;
    /* backtrace() loads libgcc's unwinder, with malloc, on first use: do
     * that now, never in the handler */
    void *prime[2];
    backtrace(prime, 2);
}

int overflow__thread_init(void)
{
    pthread_once(&overflow_once, overflow_install);
    if (overflow_install_err) {
        errno = overflow_install_err;
        return -1;
    }
    if (overflow_altstack)
        return 0;
    void *mem = mmap(NULL, OVERFLOW_ALTSTACK, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        return -1;
    stack_t ss = {.ss_sp = mem, .ss_size = OVERFLOW_ALTSTACK, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) < 0) {
        munmap(mem, OVERFLOW_ALTSTACK);
        return -1;
    }
    overflow_altstack = mem;
    return 0;
}
