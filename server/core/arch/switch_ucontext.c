/*
 * Portable context switch over ucontext, for machines without an assembly
 * switch. Correct but slow: swapcontext() makes a sigprocmask system call on
 * every switch.
 */
#include <stdint.h>
#include <stdlib.h>

#include "core/switch.h"

static void switch_trampoline(unsigned hi, unsigned lo, unsigned ehi,
                              unsigned elo)
{
    /* makecontext passes ints only, so pointers travel in halves. */
    void *arg = (void *)(((uintptr_t)hi << 32) | lo);
    switch_entry_fn entry = (switch_entry_fn)(((uintptr_t)ehi << 32) | elo);
    entry(arg);
    abort();
}

void switch__init(struct switch_ctx *ctx, void *lo, size_t size,
                  switch_entry_fn entry, void *arg)
{
    getcontext(&ctx->uc);
    ctx->uc.uc_stack.ss_sp = lo;
    ctx->uc.uc_stack.ss_size = size;
    ctx->uc.uc_link = NULL;
    uint64_t a = (uintptr_t)arg, e = (uintptr_t)entry;
    makecontext(&ctx->uc, (void (*)(void))switch_trampoline, 4,
                (unsigned)(a >> 32), (unsigned)a, (unsigned)(e >> 32),
                (unsigned)e);
}

void switch__jump(struct switch_ctx *from, struct switch_ctx *to)
{
    swapcontext(&from->uc, &to->uc);
}
