/* The Coral NPU bare-metal runtime: what generated firmware and tests call.
 *
 * I/O goes through RISC-V semihosting, which the simulator (QEMU) serves from its working
 * directory; on the chip the host moves tensors by writing memory at ELF symbol addresses
 * instead. Startup (crt0.S) enables the vector and float units, zeroes .bss, calls main and
 * exits with its return value. */
#ifndef NPU_RUNTIME_H
#define NPU_RUNTIME_H

/* Exit codes the runtime itself uses (main's own codes should avoid them). */
#define NPU_EXIT_TRAP 3           /* an exception: trap.c printed "trap: mcause=..." first */
#define NPU_EXIT_STACK_OVERFLOW 4 /* the stack canary was overwritten: "stack overflow: ..." */
#define NPU_EXIT_TVM 5            /* a TVM-compiled layer reported an error (printed first) */
#define NPU_STACK_CANARY 0x5AC3C0DE /* crt0.S writes it at the stack's bottom; npu_exit checks */

#ifndef __ASSEMBLER__
#include <stdint.h>

/* Semihosting fopen modes (an index into "r", "rb", "r+", "r+b", "w", "wb", ...). */
#define NPU_MODE_RB 1
#define NPU_MODE_WB 5
#define NPU_MODE_AB 9 /* append, binary */

/* Files, relative to the simulator's working directory. Handles are >= 0; -1 on failure.
 * npu_read / npu_write move exactly `bytes` bytes or return -1 (a short file is a failure). */
int npu_open(const char *path, int mode);
int npu_close(int handle);
int npu_read(int handle, void *dst, uint32_t bytes);
int npu_write(int handle, const void *src, uint32_t bytes);

/* Whole files: 0 on success, -1 when the file is missing, short, or cannot be written. */
int npu_read_file(const char *path, void *dst, uint32_t bytes);
int npu_write_file(const char *path, const void *src, uint32_t bytes);

/* Text to the simulator's console (compiler/coral/simulator.py: QEMU's stdout). */
void npu_puts(const char *s);
void npu_put_u32(uint32_t v); /* decimal */
void npu_put_hex(uint32_t v); /* 0x..., lower case, no leading zeros */

/* Ends the program: checks the stack canary, then exits the simulator with `code`. */
void npu_exit(int code) __attribute__((noreturn));

/* For layers compiled by TVM's LLVM backend (tvm_backend.c): the scratch buffer their
 * TVMBackendAllocWorkspace calls are served from, and the exit when one reports an error. */
void npu_tvm_workspace(void *base, uint32_t bytes);
void npu_tvm_failed(const char *layer) __attribute__((noreturn));

/* Retired instructions since reset: exact and repeatable under `qemu -icount shift=0`
 * (a reading costs a few instructions). The performance metric of this target. */
static inline uint32_t npu_instret(void) {
    uint32_t v;
    __asm__ volatile("rdinstret %0" : "=r"(v));
    return v;
}

/* Runtime internals shared by crt0.S, semihost.c and trap.c. */
long npu_semihost(long op, const void *arg); /* the semihosting call (crt0.S) */
char *npu_format_u32(char *out, uint32_t v, uint32_t base); /* writes digits, returns the end */

#endif /* __ASSEMBLER__ */
#endif /* NPU_RUNTIME_H */
