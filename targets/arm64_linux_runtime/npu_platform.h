/* The arm64 Linux platform (qemu-aarch64 user mode) has no instruction counter: user mode has
 * neither -icount nor an EL0-readable PMU, and its wall time is the emulator's, not the chip's.
 * Counters read 0 and the runner reports that nothing was counted (included by npu_runtime.h). */
#ifndef NPU_PLATFORM_H
#define NPU_PLATFORM_H

#define NPU_COUNTS_INSTRUCTIONS 0

static inline uint32_t npu_instret(void) { return 0; }

#endif /* NPU_PLATFORM_H */
