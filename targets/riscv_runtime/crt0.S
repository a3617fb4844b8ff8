/* Startup for RVV target firmware (RV32 and RV64 alike: only 32-bit stores and XLEN-wide la/li).
 * Assembled with the scalar -march: no vector code here.
 *
 * Layout (see compiler/coral/memory.py): _start is the first word of the code region; the
 * stack is the lowest part of the data region, so an overflow runs off the bottom of DTCM
 * (a bus fault on the chip) instead of silently into .data/.bss; in QEMU, where that memory
 * exists, the canary word at the stack's bottom catches it at exit (npu_exit). */

#include "npu_runtime.h"

    .section .text.start, "ax"
    .globl _start
    .type _start, @function
_start:
    la      sp, __stack_top
    la      t0, npu_trap_entry
    csrw    mtvec, t0              /* direct mode: npu_trap_entry is 4-byte aligned */
    li      t0, 0x6600             /* mstatus.FS = dirty (0x6000) | VS = dirty (0x0600): */
    csrs    mstatus, t0            /* float and vector instructions trap until these are set */
    csrw    fcsr, zero
    la      t0, __stack_bottom     /* the canary npu_exit checks */
    li      t1, NPU_STACK_CANARY
    sw      t1, 0(t0)
    la      t0, __bss_start        /* zero .bss (word aligned by the linker script) */
    la      t1, __bss_end
1:  bgeu    t0, t1, 2f
    sw      zero, 0(t0)
    addi    t0, t0, 4
    j       1b
2:  li      a0, 0                  /* main(0, NULL) */
    li      a1, 0
    call    main
    tail    npu_exit               /* exit code = main's return value, already in a0 */
    .size _start, . - _start

/* Every exception lands here. The handler never returns, so it may reset sp (which may be
 * the very thing that broke) and call C. */
    .section .text.npu_trap_entry, "ax"
    .balign 4
    .globl npu_trap_entry
    .type npu_trap_entry, @function
npu_trap_entry:
    la      sp, __stack_top
    csrr    a0, mcause
    csrr    a1, mepc
    csrr    a2, mtval
    tail    npu_trap
    .size npu_trap_entry, . - npu_trap_entry
