/*
 * test_switch.c - the raw context switch (server/core/arch/switch_*).
 *
 * A probe written in assembly loads a known pattern into every callee-saved
 * register (and the FP control register(s)), calls switch__jump() itself,
 * and on its return stores what those registers hold. Two contexts, the
 * test's own stack and a coroutine stack, ping-pong through the probe with
 * different patterns, so each side clobbers everything the other must get
 * back. Checked: x86-64 rbx, rbp, r12-r15, rsp, the MXCSR control bits and
 * the x87 control word; aarch64 x19-x28, x29 (fp), sp, d8-d15 and FPCR (lr
 * is checked by the probe returning at all). Other machines run only the
 * C-level test at the end, which holds doubles across co_yield_now().
 */
#include <criterion/criterion.h>

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/fiber.h"
#include "core/stack.h"
#include "core/switch.h"
#include "coserve.h"
#include "util.h"

/* ---- the probe, per machine ---------------------------------------------- */

#if defined(__x86_64__)
#define SWITCH_PROBE 1
#define NGPR 6 /* rbx, rbp, r12, r13, r14, r15 */
static const char *const gpr_name[NGPR] = {"rbx", "rbp", "r12",
                                           "r13", "r14", "r15"};

struct regs {
    uint64_t gpr[NGPR];
    uint32_t mxcsr;
    uint16_t fpucw;
    uint16_t pad;
    uint64_t sp_before, sp_after; /* rsp at the call and after the return */
};
_Static_assert(offsetof(struct regs, mxcsr) == 48, "probe layout");
_Static_assert(offsetof(struct regs, fpucw) == 52, "probe layout");
_Static_assert(offsetof(struct regs, sp_before) == 56, "probe layout");

/* switch_probe(from, to, in, out): loads in's registers, switch__jump(from,
 * to), stores the registers into out once resumed; the caller's own
 * callee-saved registers and control words are kept around it. */
__asm__(".text\n"
        ".type switch_probe, @function\n"
        "switch_probe:\n"
        "    pushq %rbp\n"
        "    pushq %rbx\n"
        "    pushq %r12\n"
        "    pushq %r13\n"
        "    pushq %r14\n"
        "    pushq %r15\n"
        "    subq $24, %rsp\n" /* 6 pushes + 24: rsp 16-aligned at the call */
        "    movq %rcx, 0(%rsp)\n"
        "    stmxcsr 8(%rsp)\n"
        "    fnstcw 12(%rsp)\n"
        "    movq 0(%rdx), %rbx\n"
        "    movq 8(%rdx), %rbp\n"
        "    movq 16(%rdx), %r12\n"
        "    movq 24(%rdx), %r13\n"
        "    movq 32(%rdx), %r14\n"
        "    movq 40(%rdx), %r15\n"
        "    ldmxcsr 48(%rdx)\n"
        "    fldcw 52(%rdx)\n"
        "    movq %rsp, 56(%rcx)\n"
        "    call switch__jump@PLT\n"
        "    movq 0(%rsp), %rcx\n"
        "    movq %rsp, 64(%rcx)\n"
        "    movq %rbx, 0(%rcx)\n"
        "    movq %rbp, 8(%rcx)\n"
        "    movq %r12, 16(%rcx)\n"
        "    movq %r13, 24(%rcx)\n"
        "    movq %r14, 32(%rcx)\n"
        "    movq %r15, 40(%rcx)\n"
        "    stmxcsr 48(%rcx)\n"
        "    fnstcw 52(%rcx)\n"
        "    ldmxcsr 8(%rsp)\n"
        "    fldcw 12(%rsp)\n"
        "    addq $24, %rsp\n"
        "    popq %r15\n"
        "    popq %r14\n"
        "    popq %r13\n"
        "    popq %r12\n"
        "    popq %rbx\n"
        "    popq %rbp\n"
        "    ret\n"
        ".size switch_probe, .-switch_probe\n");

/* Rounding toward zero on one side, down (and flush-to-zero) on the other;
 * all exceptions masked on both. */
static void fill_fp(struct regs *r, int side)
{
    r->mxcsr = side ? 0xbf80 : 0x7f80;
    r->fpucw = side ? 0x067f : 0x0f7f;
}

static void check_fp(const struct regs *in, const struct regs *out,
                     const char *who, int round)
{
    /* the low six bits are exception flags, caller-saved by the ABI */
    cr_expect_eq(out->mxcsr & 0xffc0, in->mxcsr & 0xffc0,
                 "%s round %d: MXCSR %#x, want %#x", who, round, out->mxcsr,
                 in->mxcsr);
    cr_expect_eq(out->fpucw, in->fpucw, "%s round %d: x87 CW %#x, want %#x",
                 who, round, out->fpucw, in->fpucw);
}

#elif defined(__aarch64__)
#define SWITCH_PROBE 1
#define NGPR 11 /* x19-x28, x29 */
#define NFPR 8  /* d8-d15 */
static const char *const gpr_name[NGPR] = {"x19", "x20", "x21",     "x22",
                                           "x23", "x24", "x25",     "x26",
                                           "x27", "x28", "x29 (fp)"};

struct regs {
    uint64_t gpr[NGPR];
    uint64_t fpr[NFPR];
    uint64_t fpcr;
    uint64_t sp_before, sp_after; /* sp at the call and after the return */
};
_Static_assert(offsetof(struct regs, fpr) == 88, "probe layout");
_Static_assert(offsetof(struct regs, fpcr) == 152, "probe layout");
_Static_assert(offsetof(struct regs, sp_before) == 160, "probe layout");

/* switch_probe(from, to, in, out): as on x86-64. The 176-byte frame keeps
 * the caller's x19-x30, d8-d15, `out` and the caller's FPCR. */
__asm__(".text\n"
        ".type switch_probe, %function\n"
        "switch_probe:\n"
        "    stp x29, x30, [sp, #-176]!\n"
        "    mov x29, sp\n"
        "    stp x19, x20, [sp, #16]\n"
        "    stp x21, x22, [sp, #32]\n"
        "    stp x23, x24, [sp, #48]\n"
        "    stp x25, x26, [sp, #64]\n"
        "    stp x27, x28, [sp, #80]\n"
        "    stp d8, d9, [sp, #96]\n"
        "    stp d10, d11, [sp, #112]\n"
        "    stp d12, d13, [sp, #128]\n"
        "    stp d14, d15, [sp, #144]\n"
        "    mrs x9, fpcr\n"
        "    stp x3, x9, [sp, #160]\n"
        "    ldp x19, x20, [x2, #0]\n"
        "    ldp x21, x22, [x2, #16]\n"
        "    ldp x23, x24, [x2, #32]\n"
        "    ldp x25, x26, [x2, #48]\n"
        "    ldp x27, x28, [x2, #64]\n"
        "    ldr x29, [x2, #80]\n"
        "    ldp d8, d9, [x2, #88]\n"
        "    ldp d10, d11, [x2, #104]\n"
        "    ldp d12, d13, [x2, #120]\n"
        "    ldp d14, d15, [x2, #136]\n"
        "    ldr x9, [x2, #152]\n"
        "    msr fpcr, x9\n"
        "    mov x9, sp\n"
        "    str x9, [x3, #160]\n"
        "    bl switch__jump\n"
        "    ldr x3, [sp, #160]\n"
        "    mov x9, sp\n"
        "    str x9, [x3, #168]\n"
        "    stp x19, x20, [x3, #0]\n"
        "    stp x21, x22, [x3, #16]\n"
        "    stp x23, x24, [x3, #32]\n"
        "    stp x25, x26, [x3, #48]\n"
        "    stp x27, x28, [x3, #64]\n"
        "    str x29, [x3, #80]\n"
        "    stp d8, d9, [x3, #88]\n"
        "    stp d10, d11, [x3, #104]\n"
        "    stp d12, d13, [x3, #120]\n"
        "    stp d14, d15, [x3, #136]\n"
        "    mrs x9, fpcr\n"
        "    str x9, [x3, #152]\n"
        "    ldr x9, [sp, #168]\n"
        "    msr fpcr, x9\n"
        "    ldp d14, d15, [sp, #144]\n"
        "    ldp d12, d13, [sp, #128]\n"
        "    ldp d10, d11, [sp, #112]\n"
        "    ldp d8, d9, [sp, #96]\n"
        "    ldp x27, x28, [sp, #80]\n"
        "    ldp x25, x26, [sp, #64]\n"
        "    ldp x23, x24, [sp, #48]\n"
        "    ldp x21, x22, [sp, #32]\n"
        "    ldp x19, x20, [sp, #16]\n"
        "    ldp x29, x30, [sp], #176\n"
        "    ret\n"
        ".size switch_probe, .-switch_probe\n");

/* FPCR: round toward zero on one side, toward minus infinity with
 * flush-to-zero on the other (RMode is bits 22-23, FZ bit 24); d8-d15 get
 * bit patterns, not numbers: the probe only moves them. */
static void fill_fp(struct regs *r, int side)
{
    r->fpcr = side ? (2u << 22 | 1u << 24) : 3u << 22;
    for (int i = 0; i < NFPR; i++)
        r->fpr[i] = 0xd000000000000000ull | (uint64_t)side << 40 |
                    (uint64_t)i << 16 | (r->gpr[0] & 0xffff);
}

static void check_fp(const struct regs *in, const struct regs *out,
                     const char *who, int round)
{
    for (int i = 0; i < NFPR; i++)
        cr_expect_eq(out->fpr[i], in->fpr[i],
                     "%s round %d: d%d = %#llx, want %#llx", who, round, 8 + i,
                     (unsigned long long)out->fpr[i],
                     (unsigned long long)in->fpr[i]);
    cr_expect_eq(out->fpcr, in->fpcr, "%s round %d: FPCR %#llx, want %#llx",
                 who, round, (unsigned long long)out->fpcr,
                 (unsigned long long)in->fpcr);
}
#endif

#ifdef SWITCH_PROBE
void switch_probe(struct switch_ctx *from, struct switch_ctx *to,
                  const struct regs *in, struct regs *out);

/* ---- callee-saved registers across switch__jump ------------------------- */

#define ROUNDS 4

static struct switch_ctx main_ctx, co_ctx;
static struct regs main_in[ROUNDS], main_out[ROUNDS];
static struct regs co_in[ROUNDS], co_out[ROUNDS];
static int co_finished;
/* AddressSanitizer's view of the two stacks (fiber.h; no-ops otherwise) */
static void *main_fake, *co_fake;
static const void *main_bottom;
static size_t main_size;

/* Every register gets a value naming its side, its round and itself, so a
 * register lost, swapped with another, or left from an earlier round shows. */
static void fill(struct regs *r, int side, int round)
{
    memset(r, 0, sizeof *r);
    for (int i = 0; i < NGPR; i++)
        r->gpr[i] = 0x5a00000000000000ull | (uint64_t)side << 40 |
                    (uint64_t)round << 32 | (uint64_t)(i + 1) << 8 |
                    (uint64_t)(side * 16 + round);
    fill_fp(r, side);
}

static void check(const struct regs *in, const struct regs *out,
                  const char *who, int round)
{
    for (int i = 0; i < NGPR; i++)
        cr_expect_eq(out->gpr[i], in->gpr[i],
                     "%s round %d: %s = %#llx, "
                     "want %#llx",
                     who, round, gpr_name[i], (unsigned long long)out->gpr[i],
                     (unsigned long long)in->gpr[i]);
    cr_expect_eq(out->sp_after, out->sp_before,
                 "%s round %d: sp %#llx after the switch, %#llx before", who,
                 round, (unsigned long long)out->sp_after,
                 (unsigned long long)out->sp_before);
    check_fp(in, out, who, round);
}

/* The coroutine: probes back to the test once per round, then leaves for
 * good. */
static void co_body(void *arg)
{
    (void)arg;
    fiber_finish(NULL, &main_bottom, &main_size);
    for (int i = 0; i < ROUNDS; i++) {
        fiber_start(&co_fake, main_bottom, main_size);
        switch_probe(&co_ctx, &main_ctx, &co_in[i], &co_out[i]);
        fiber_finish(co_fake, &main_bottom, &main_size);
    }
    co_finished = 1;
    fiber_start(NULL, main_bottom, main_size);
    switch__jump(&co_ctx, &main_ctx);
    abort(); /* never resumed */
}

Test(switch, callee_saved_registers_survive_a_round_trip_on_both_sides)
{
    struct stack_pool pool;
    struct stack st;
    stack__pool_init(&pool);
    cr_assert_eq(stack__get(&pool, &st), 0);
    for (int i = 0; i < ROUNDS; i++) {
        fill(&main_in[i], 0, i);
        fill(&co_in[i], 1, i);
    }
    switch__init(&co_ctx, st.lo, st.size, co_body, NULL);
    /* main probe i resumes the coroutine's probe i - 1 (the first starts
     * it), whose next probe brings main back: every probe returns once */
    for (int i = 0; i < ROUNDS; i++) {
        fiber_start(&main_fake, st.lo, st.size);
        switch_probe(&main_ctx, &co_ctx, &main_in[i], &main_out[i]);
        fiber_finish(main_fake, NULL, NULL);
    }
    fiber_start(&main_fake, st.lo, st.size);
    switch__jump(&main_ctx, &co_ctx);
    fiber_finish(main_fake, NULL, NULL);
    stack__put(&pool, &st);
    stack__pool_destroy(&pool);

    cr_assert(co_finished, "the coroutine did not run to its end");
    for (int i = 0; i < ROUNDS; i++) {
        check(&main_in[i], &main_out[i], "test stack", i);
        check(&co_in[i], &co_out[i], "coroutine", i);
    }
}
#endif

/* ---- the same through the runtime, from C ------------------------------- */

/* Eight doubles live across every co_yield_now(): at -O2 the compiler keeps
 * them in callee-saved FP registers (d8-d15 on aarch64; x86-64 has none, so
 * there they go to the stack). Two coroutines interleave with different
 * seeds; each must get what the same code computes without yielding. */
#define FP_STEPS 200

__attribute__((noinline)) static double fp_mix(double seed, int yield)
{
    double a = seed + 1, b = seed + 2, c = seed + 3, d = seed + 4;
    double e = seed + 5, f = seed + 6, g = seed + 7, h = seed + 8;
    for (int i = 0; i < FP_STEPS; i++) {
        if (yield)
            co_yield_now();
        a = a * 0.5 + b;
        b = b * 0.25 + c;
        c = c * 0.125 + d;
        d = d * 0.5 + e;
        e = e * 0.25 + f;
        f = f * 0.125 + g;
        g = g * 0.5 + h;
        h = h * 0.25 + a;
    }
    return a + b + c + d + e + f + g + h;
}

struct fp_job {
    double seed, got;
};

static void *fp_worker(void *arg)
{
    struct fp_job *job = arg;
    job->got = fp_mix(job->seed, 1);
    return NULL;
}

static void *fp_main(void *arg)
{
    struct fp_job *jobs = arg;
    co_t *a = co_spawn(fp_worker, &jobs[0]);
    co_t *b = co_spawn(fp_worker, &jobs[1]);
    if (a)
        co_join(a, NULL, co_deadline(SAFETY_MS));
    if (b)
        co_join(b, NULL, co_deadline(SAFETY_MS));
    return NULL;
}

Test(switch, doubles_held_across_yields_survive_in_two_coroutines)
{
    struct fp_job jobs[2] = {{.seed = 1.5}, {.seed = -1000.25}};
    run(fp_main, jobs);
    for (int i = 0; i < 2; i++) {
        double want = fp_mix(jobs[i].seed, 0);
        cr_expect(memcmp(&jobs[i].got, &want, sizeof want) == 0,
                  "coroutine %d computed %.17g, want %.17g", i, jobs[i].got,
                  want);
    }
}
