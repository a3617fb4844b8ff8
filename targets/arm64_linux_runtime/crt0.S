/* Startup of the arm64 Linux platform: a static executable started by qemu-aarch64 user mode
 * (or a Linux kernel), at EL0 with the FP/SIMD unit enabled.
 *
 * The stack is the runtime's own (.stack in the linker script, compiler/coral/memory.py), not
 * the one the kernel set up, so the firmware's stack has the size the memory plan reserved and
 * the canary word at its bottom catches an overflow at exit (npu_exit), as on the RISC-V
 * targets. */

#include "npu_runtime.h"

    .section .text.start, "ax"
    .globl _start
    .type _start, %function
_start:
    adrp    x0, __stack_top
    add     x0, x0, :lo12:__stack_top
    mov     sp, x0
    adrp    x0, __stack_bottom         /* the canary npu_exit checks */
    add     x0, x0, :lo12:__stack_bottom
    movz    w1, #(NPU_STACK_CANARY & 0xffff)
    movk    w1, #(NPU_STACK_CANARY >> 16), lsl #16
    str     w1, [x0]
    adrp    x0, __bss_start            /* zero .bss (word aligned by the linker script) */
    add     x0, x0, :lo12:__bss_start
    adrp    x1, __bss_end
    add     x1, x1, :lo12:__bss_end
1:  cmp     x0, x1
    b.hs    2f
    str     wzr, [x0], #4
    b       1b
2:  mov     w0, #0                     /* main(0, NULL) */
    mov     x1, #0
    bl      main
    b       npu_exit                   /* exit code = main's return value, already in w0 */
    .size _start, . - _start

/* Marks the linker script's .stack writable (see compiler/coral/memory.py). */
    .section .stack, "aw", %nobits
