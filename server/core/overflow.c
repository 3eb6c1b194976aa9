/* Stack overflow reports (see overflow.h). */
#include "core/overflow.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/coro.h"

#define OVERFLOW_ALTSTACK (64 * 1024)
/* A function with a large frame can step past the guard page; faults this
 * far below it still count as the coroutine's overflow. */
#define OVERFLOW_SLACK (64 * 1024)

static struct sigaction overflow_prev_segv, overflow_prev_bus;
static pthread_once_t overflow_once = PTHREAD_ONCE_INIT;
static int overflow_install_err;
static __thread void *overflow_altstack;

static void overflow_handler(int sig, siginfo_t *si, void *uctx)
{
    (void)uctx;
    struct hub *hub = hub__self;
    struct co *co = hub ? hub->current : NULL;
    if (co && co->stack.map) {
        uintptr_t addr = (uintptr_t)si->si_addr;
        uintptr_t guard = (uintptr_t)co->stack.map;
        uintptr_t lo = (uintptr_t)co->stack.lo;
        if (addr < lo && addr + OVERFLOW_SLACK >= guard) {
            char msg[256], id[32];
            snprintf(id, sizeof id, "co-%llu", (unsigned long long)co->id);
            int n = snprintf(msg, sizeof msg,
                             "coserve[%d] fatal: stack overflow in coroutine "
                             "'%s' (%zu KiB stack, fault at %p); raise "
                             "COSERVE_STACK_SIZE or --stack-size\n",
                             (int)getpid(), co->name[0] ? co->name : id,
                             co->stack.size / 1024, si->si_addr);
            if (n > 0) {
                ssize_t w =
                    write(STDERR_FILENO, msg,
                          (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
                (void)w;
            }
            signal(sig, SIG_DFL); /* returning re-faults and dies */
            return;
        }
    }
    /* Not ours: hand the fault back to whoever handled it before. A real
     * fault repeats when we return; a signal sent by kill() would not, so
     * send it again. */
    sigaction(sig, sig == SIGBUS ? &overflow_prev_bus : &overflow_prev_segv,
              NULL);
    if (si->si_code <= 0)
        raise(sig);
}

static void overflow_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = overflow_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, &overflow_prev_segv) < 0 ||
        sigaction(SIGBUS, &sa, &overflow_prev_bus) < 0)
        overflow_install_err = errno;
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
