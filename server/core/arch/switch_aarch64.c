/* Builds the first frame switch__jump restores for a new aarch64 coroutine. */
#include <stdint.h>
#include <string.h>

#include "core/switch.h"

void switch__boot(void);

void switch__init(struct switch_ctx *ctx, void *lo, size_t size,
                  switch_entry_fn entry, void *arg)
{
    uintptr_t top = ((uintptr_t)lo + size) & ~(uintptr_t)15;
    uint64_t *sp = (uint64_t *)(top - 176);
    memset(sp, 0, 176);
    sp[0] = (uint64_t)(uintptr_t)arg;           /* x19 */
    sp[1] = (uint64_t)(uintptr_t)entry;         /* x20 */
    sp[10] = 0;                                 /* x29: end of frame chain */
    sp[11] = (uint64_t)(uintptr_t)switch__boot; /* x30 */
    /* FPCR 0: round to nearest, no traps, the Linux default. */
    ctx->sp = sp;
}
