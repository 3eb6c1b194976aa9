/*
 * Context switch for aarch64 (AAPCS64).
 *
 * Saves x19-x28, the frame pointer x29, the link register x30, d8-d15 (the
 * low halves of v8-v15 are callee-saved; lwan's switch forgets them) and
 * FPCR in a 176-byte frame on the current stack, stores sp in from->sp,
 * loads to->sp and restores the same frame.
 *
 * BTI/PAC: this object carries no GNU property note, so the linker marks the
 * binary as not BTI-guarded; switch__boot is entered by `ret`, never by an
 * indirect branch, and the link register is never signed here.
 */
    .text
    .globl  switch__jump
    .hidden switch__jump
    .type   switch__jump, %function
switch__jump:
    sub     sp, sp, #176
    stp     x19, x20, [sp, #0]
    stp     x21, x22, [sp, #16]
    stp     x23, x24, [sp, #32]
    stp     x25, x26, [sp, #48]
    stp     x27, x28, [sp, #64]
    stp     x29, x30, [sp, #80]
    stp     d8, d9, [sp, #96]
    stp     d10, d11, [sp, #112]
    stp     d12, d13, [sp, #128]
    stp     d14, d15, [sp, #144]
    mrs     x9, fpcr
    str     x9, [sp, #160]
    mov     x9, sp
    str     x9, [x0]
    ldr     x9, [x1]
    mov     sp, x9
    ldr     x9, [sp, #160]
    msr     fpcr, x9
    ldp     d14, d15, [sp, #144]
    ldp     d12, d13, [sp, #128]
    ldp     d10, d11, [sp, #112]
    ldp     d8, d9, [sp, #96]
    ldp     x29, x30, [sp, #80]
    ldp     x27, x28, [sp, #64]
    ldp     x25, x26, [sp, #48]
    ldp     x23, x24, [sp, #32]
    ldp     x21, x22, [sp, #16]
    ldp     x19, x20, [sp, #0]
    add     sp, sp, #176
    ret
    .size   switch__jump, .-switch__jump

/* First code of a new coroutine: entry in x20, its argument in x19, x29 = 0
 * so frame-pointer walks stop here. */
    .globl  switch__boot
    .hidden switch__boot
    .type   switch__boot, %function
switch__boot:
    .cfi_startproc
    .cfi_undefined x30
    mov     x0, x19
    blr     x20
    brk     #0
    .cfi_endproc
    .size   switch__boot, .-switch__boot

    .section .note.GNU-stack,"",%progbits
