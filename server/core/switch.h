/*
 * switch.h - the raw context switch under every coroutine.
 *
 * A context is what a suspended stack needs to resume: for the assembly
 * switches, the stack pointer (callee-saved registers and the FP control
 * words sit on the stack itself); for the portable fallback, a ucontext.
 * The build picks one file from arch/ (see the Makefile's SWITCH).
 */
#ifndef COSERVE_CORE_SWITCH_H
#define COSERVE_CORE_SWITCH_H

#include <stddef.h>

#ifdef COSERVE_SWITCH_UCONTEXT
#include <ucontext.h>
struct switch_ctx {
    ucontext_t uc;
};
#else
struct switch_ctx {
    void *sp;
};
#endif

typedef void (*switch_entry_fn)(void *arg);

/* Prepares ctx so that the first switch__jump() to it calls entry(arg) on
 * the stack [lo, lo + size). entry must never return. */
void switch__init(struct switch_ctx *ctx, void *lo, size_t size,
                  switch_entry_fn entry, void *arg);

/* Saves the running context in from and resumes to. Returns when someone
 * jumps back to from. */
void switch__jump(struct switch_ctx *from, struct switch_ctx *to);

#endif
