/*
 * compat.c - symbols kept for apps built against older versions of
 * coserve.h, so a rename in the header does not change the ABI version.
 * Nothing here is declared in the header any more.
 */
#include "coserve.h"

/* co_yield_now was co_yield until C++20 made that a keyword. C code still
 * compiles with the old name (a macro in the header); binaries built before
 * the rename call this symbol. */
#undef co_yield
__attribute__((visibility("default"))) int co_yield (void);
int co_yield (void)
{
    return co_yield_now();
}
