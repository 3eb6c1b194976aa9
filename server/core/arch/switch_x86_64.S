/*
 * Context switch for x86-64, System V ABI.
 *
 * switch__jump(from, to) pushes the callee-saved registers and the SSE/x87
 * control words on the current stack, stores rsp in from->sp, loads to->sp
 * and pops the same frame. Caller-saved registers need no care: the C
 * compiler already assumes a call clobbers them.
 *
 * CET: this switch does not maintain a shadow stack. The object carries no
 * GNU property note, so the linker marks any binary containing it as not
 * shadow-stack compatible and the kernel never enables SHSTK for it.
 */
    .text
    .globl  switch__jump
    .hidden switch__jump
    .type   switch__jump, @function
switch__jump:
    .cfi_startproc
    pushq   %rbp
    pushq   %rbx
    pushq   %r12
    pushq   %r13
    pushq   %r14
    pushq   %r15
    subq    $8, %rsp
    stmxcsr (%rsp)
    fnstcw  4(%rsp)
    movq    %rsp, (%rdi)
    movq    (%rsi), %rsp
    ldmxcsr (%rsp)
    fldcw   4(%rsp)
    addq    $8, %rsp
    popq    %r15
    popq    %r14
    popq    %r13
    popq    %r12
    popq    %rbx
    popq    %rbp
    ret
    .cfi_endproc
    .size   switch__jump, .-switch__jump

/*
 * First code a new coroutine runs: switch__init leaves entry in r13 and its
 * argument in r12, and rbp = 0 so frame-pointer walks end here. The return
 * address slot above is zero and rip is marked undefined, so backtrace() and
 * gdb stop cleanly at the coroutine's base.
 */
    .globl  switch__boot
    .hidden switch__boot
    .type   switch__boot, @function
switch__boot:
    .cfi_startproc
    .cfi_undefined rip
    movq    %r12, %rdi
    callq   *%r13
    ud2
    .cfi_endproc
    .size   switch__boot, .-switch__boot

    .section .note.GNU-stack,"",@progbits
