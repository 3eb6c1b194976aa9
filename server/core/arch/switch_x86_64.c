/* Builds the first frame switch__jump pops for a new x86-64 coroutine. */
#include <stdint.h>
#include <string.h>

#include "core/switch.h"

void switch__boot(void);

void switch__init(struct switch_ctx *ctx, void *lo, size_t size,
                  switch_entry_fn entry, void *arg)
{
    uintptr_t top = ((uintptr_t)lo + size) & ~(uintptr_t)15;
    /* From the saved sp up: control words, r15, r14, r13, r12, rbx, rbp,
     * return address (switch__boot), then 16 zero bytes so boot starts with
     * rsp 16-byte aligned, as the ABI wants before its call. */
    uint64_t *sp = (uint64_t *)(top - 80);
    memset(sp, 0, 80);
    uint32_t mxcsr = 0x1f80; /* all exceptions masked, round to nearest */
    uint16_t fpucw = 0x037f; /* x87: same, extended precision */
    memcpy((char *)sp, &mxcsr, 4);
    memcpy((char *)sp + 4, &fpucw, 2);
    sp[3] = (uint64_t)(uintptr_t)entry; /* r13 */
    sp[4] = (uint64_t)(uintptr_t)arg;   /* r12 */
    sp[7] = (uint64_t)(uintptr_t)switch__boot;
    ctx->sp = sp;
}
