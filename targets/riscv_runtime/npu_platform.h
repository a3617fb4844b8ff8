/* The RISC-V platform's instruction counter (included by npu_runtime.h). */
#ifndef NPU_PLATFORM_H
#define NPU_PLATFORM_H

#define NPU_COUNTS_INSTRUCTIONS 1

/* Retired instructions since reset: exact and repeatable under `qemu -icount shift=0`
 * (a reading costs a few instructions). The performance metric of these targets. */
static inline uint32_t npu_instret(void) {
    unsigned long v; /* XLEN wide; the low 32 bits suffice for differences */
    __asm__ volatile("rdinstret %0" : "=r"(v));
    return (uint32_t)v;
}

#endif /* NPU_PLATFORM_H */
