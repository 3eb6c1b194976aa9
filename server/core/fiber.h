/*
 * fiber.h - telling AddressSanitizer about stack switches.
 *
 * ASan tracks one stack per thread; without these calls it takes a switch
 * for a stack overflow or reports false use-after-scope errors. Built only
 * with COSERVE_ASAN (the sanitizer variant of the build); free otherwise.
 */
#ifndef COSERVE_CORE_FIBER_H
#define COSERVE_CORE_FIBER_H

#include <stddef.h>

#ifdef COSERVE_ASAN
#include <sanitizer/common_interface_defs.h>
#define fiber_start(save, bottom, size)                                        \
    __sanitizer_start_switch_fiber((save), (bottom), (size))
#define fiber_finish(save, old_bottom, old_size)                               \
    __sanitizer_finish_switch_fiber((save), (old_bottom), (old_size))
#else
#define fiber_start(save, bottom, size)                                        \
    ((void)(save), (void)(bottom), (void)(size))
#define fiber_finish(save, old_bottom, old_size)                               \
    ((void)(save), (void)(old_bottom), (void)(old_size))
#endif

#endif
