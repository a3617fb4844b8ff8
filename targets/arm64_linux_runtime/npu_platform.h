/* The arm64 Linux platform's instruction counter (included by npu_runtime.h). QEMU's user mode has no
 * -icount; the runner loads a TCG plugin (qemu_plugin/instret.c) that counts every executed
 * instruction and, on system call NPU_SYS_INSTRET (no Linux call has that number), writes the count
 * into the variable whose address the call passes. Exact and repeatable, as rdinstret under -icount. */
#ifndef NPU_PLATFORM_H
#define NPU_PLATFORM_H

#define NPU_COUNTS_INSTRUCTIONS 1
#define NPU_SYS_INSTRET 0x4E50 /* qemu_plugin/instret.c */

static inline uint32_t npu_instret(void) {
    volatile uint64_t count __attribute__((aligned(8))) = 0;
    register long x8 __asm__("x8") = NPU_SYS_INSTRET;
    register long x0 __asm__("x0") = (long)&count;
    __asm__ volatile("svc #0" : "+r"(x0) : "r"(x8) : "memory");
    return (uint32_t)count; /* the low 32 bits suffice for differences */
}

#endif /* NPU_PLATFORM_H */
