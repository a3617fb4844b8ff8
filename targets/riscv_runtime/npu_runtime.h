/* The bare-metal runtime of the RVV targets (coral-npu's RV32, rvv256-rv64's RV64): what generated
 * firmware and tests call. Every target.toml names this folder ([toolchain] runtime); the code is
 * XLEN-agnostic C, and the addresses of the simulator's devices arrive as -D flags.
 *
 * I/O: in the simulator, an input stream the host writes into memory before the start and
 * records on the console UART (hostio.c; no semihosting, so firmware cannot reach host files or
 * commands); on the chip the host moves tensors by writing memory at ELF symbol addresses
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

/* Inputs: the next `bytes` bytes of the input stream the host prepared (in the simulator, the
 * inbox: compiler/coral/simulator.py). 0 on success, -1 when the stream has fewer bytes left. */
int npu_read_input(void *dst, uint32_t bytes);

/* Outputs: `bytes` bytes to the host under a numeric tag (in the simulator, "@tag:hex" lines on
 * the console UART, which the runner parses). */
void npu_send(uint32_t tag, const void *data, uint32_t bytes);

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
    unsigned long v; /* XLEN wide; the low 32 bits suffice for differences */
    __asm__ volatile("rdinstret %0" : "=r"(v));
    return (uint32_t)v;
}

/* Runtime internals shared by hostio.c and trap.c. */
char *npu_format_u32(char *out, uint32_t v, uint32_t base); /* writes digits, returns the end */

#endif /* __ASSEMBLER__ */
#endif /* NPU_RUNTIME_H */
