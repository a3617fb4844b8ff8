/* The runtime of the firmware targets: what generated firmware and tests call. A target.toml
 * names its folders ([toolchain] runtime): this one (runtime_common/: output records, exit,
 * mem*, libm, TVM's hooks), which is portable C, and its platform's, which provides
 * npu_platform.h (the instruction counter) and the functions under "platform" below:
 *   riscv_runtime/         bare metal in qemu-system-riscv (coral-npu, rvv256-rv64): startup,
 *                          traps, the inbox, the UART, the test finisher (device addresses arrive
 *                          as -D flags); exact instruction counts (rdinstret under -icount).
 *   arm64_linux_runtime/   a static Linux executable in qemu-aarch64 user mode (arm64-neon):
 *                          stdin, stdout and exit_group; exact instruction counts from a QEMU
 *                          plugin (qemu_plugin/instret.c).
 *
 * I/O: in the simulator, an input stream the host prepares and records on the console (no
 * semihosting, so bare-metal firmware cannot reach host files or commands); on a chip the host
 * moves tensors by writing memory at ELF symbol addresses instead. Startup (crt0.S) sets up
 * the stack and its canary, zeroes .bss, calls main and exits with its return value. */
#ifndef NPU_RUNTIME_H
#define NPU_RUNTIME_H

/* Exit codes the runtime itself uses (main's own codes should avoid them). */
#define NPU_EXIT_TRAP 3           /* an exception: trap.c printed "trap: mcause=..." first */
#define NPU_EXIT_STACK_OVERFLOW 4 /* the stack canary was overwritten: "stack overflow: ..." */
#define NPU_EXIT_TVM 5            /* a TVM-compiled layer reported an error (printed first) */
#define NPU_EXIT_IO 6             /* the console could not be written (arm64 Linux: write(2) failed) */
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

/* Platform (the target's runtime folder). */
void npu_write(const char *s, uint32_t n);             /* console bytes */
void npu_finish(int code) __attribute__((noreturn)); /* ends the program, no checks */

/* npu_instret() and NPU_COUNTS_INSTRUCTIONS (1 when its counts are exact and repeatable). */
#include "npu_platform.h"

/* Runtime internals shared by records.c and the platform (trap.c). */
char *npu_format_u32(char *out, uint32_t v, uint32_t base); /* writes digits, returns the end */

#endif /* __ASSEMBLER__ */
#endif /* NPU_RUNTIME_H */
