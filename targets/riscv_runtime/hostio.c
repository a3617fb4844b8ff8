/* The RISC-V simulator's host I/O: the only way a firmware reaches the host, and nothing in it
 * can name a host file or command.
 *
 *   host -> firmware  the inbox: before the firmware starts, the runner writes one stream of
 *                     bytes (a length word, then the inputs back to back) into a memory region
 *                     that exists only in the simulation (QEMU's loader device);
 *                     npu_read_input copies the next bytes of it.
 *   firmware -> host  the console UART (a 16550): text, and data records
 *                     "@<tag>:<hex bytes>\n" (runtime_common/records.c), which the runner parses.
 *   exit              the test finisher device: QEMU exits with the code.
 *
 * There is no semihosting: QEMU runs without it, so an ebreak is just a breakpoint trap.
 * The device addresses come from target.toml [simulator] (-D flags). Compiled with the
 * scalar -march. */
#include "npu_runtime.h"

#ifndef NPU_UART_BASE
#error "NPU_UART_BASE: the console UART's address, from target.toml [simulator]"
#endif
#ifndef NPU_FINISHER_BASE
#error "NPU_FINISHER_BASE: the exit device's address, from target.toml [simulator]"
#endif

#define UART ((volatile uint8_t *)NPU_UART_BASE)
#define UART_THR 0    /* transmit holding register */
#define UART_LSR 5    /* line status register */
#define LSR_THRE 0x20 /* transmit holding register empty */

#define FINISHER (*(volatile uint32_t *)NPU_FINISHER_BASE)
#define FINISHER_PASS 0x5555u
#define FINISHER_FAIL 0x3333u /* | code << 16 */

extern const uint8_t __npu_inbox_start[]; /* the simulation-only inbox region (linker script) */
extern const uint8_t __npu_inbox_end[];

void npu_write(const char *s, uint32_t n) {
    for (uint32_t i = 0; i < n; ++i) {
        while (!(UART[UART_LSR] & LSR_THRE)) {
        }
        UART[UART_THR] = (uint8_t)s[i];
    }
}

/* ---- inbox ---------------------------------------------------------------------------- */

static uint32_t inbox_cursor; /* bytes of the stream already read */

static uint32_t inbox_length(void) {
    uint32_t length = (uint32_t)__npu_inbox_start[0] | (uint32_t)__npu_inbox_start[1] << 8 |
                      (uint32_t)__npu_inbox_start[2] << 16 | (uint32_t)__npu_inbox_start[3] << 24;
    uint32_t capacity = (uint32_t)(__npu_inbox_end - __npu_inbox_start) - 4;
    return length < capacity ? length : capacity;
}

int npu_read_input(void *dst, uint32_t bytes) {
    uint32_t length = inbox_length();
    if (bytes > length - inbox_cursor)
        return -1;
    uint8_t *d = (uint8_t *)dst;
    const uint8_t *s = __npu_inbox_start + 4 + inbox_cursor;
    for (uint32_t i = 0; i < bytes; ++i)
        d[i] = s[i];
    inbox_cursor += bytes;
    return 0;
}

/* ---- exit ------------------------------------------------------------------------------ */

void npu_finish(int code) {
    FINISHER = code == 0 ? FINISHER_PASS : ((uint32_t)code << 16 | FINISHER_FAIL);
    for (;;) /* the device ends the simulation; on the chip, halt here */
        __asm__ volatile("wfi");
}
