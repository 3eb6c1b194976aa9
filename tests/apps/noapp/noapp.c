/*
 * noapp - a shared object with no coserve_app descriptor: the loader must
 * refuse it and say why.
 */
#include "coserve.h"

__attribute__((visibility("default"))) int noapp_something(void);

int noapp_something(void)
{
    return 42;
}
