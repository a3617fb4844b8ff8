/* The exception handler's C half (crt0.S's npu_trap_entry calls it with a fresh stack).
 * Compiled with the scalar -march. Prints one line the simulator runner parses:
 *   trap: mcause=0x2 (illegal instruction) mepc=0x80000abc mtval=0x0
 * and exits with NPU_EXIT_TRAP. */
#include "npu_runtime.h"

static const char *const exception_names[] = {
    "instruction address misaligned", "instruction access fault", "illegal instruction",
    "breakpoint", "load address misaligned", "load access fault",
    "store address misaligned", "store access fault", "environment call from U-mode",
    "environment call from S-mode", "reserved", "environment call from M-mode",
    "instruction page fault", "load page fault", "reserved", "store page fault",
};

static const char *cause_name(uintptr_t mcause) {
    if (mcause >> (__riscv_xlen - 1)) /* the interrupt bit: mcause's top bit */
        return "interrupt";
    if (mcause < sizeof exception_names / sizeof exception_names[0])
        return exception_names[mcause];
    return "unknown";
}

static char *append(char *out, const char *s) {
    while (*s)
        *out++ = *s++;
    return out;
}

static char *append_hex(char *out, uint32_t v) {
    return npu_format_u32(append(out, "0x"), v, 16);
}

/* XLEN-wide CSR values; printed as their low 32 bits (RV64: the simulation's RAM lies below 4 GB). */
void __attribute__((noreturn)) npu_trap(uintptr_t mcause, uintptr_t mepc, uintptr_t mtval) {
    char line[160];
    char *end = append_hex(append(line, "trap: mcause="), (uint32_t)mcause);
    end = append(append(append(end, " ("), cause_name(mcause)), ")");
    end = append_hex(append(end, " mepc="), (uint32_t)mepc);
    end = append_hex(append(end, " mtval="), (uint32_t)mtval);
    append(end, "\n")[0] = 0;
    npu_puts(line);
    npu_exit(NPU_EXIT_TRAP);
}
