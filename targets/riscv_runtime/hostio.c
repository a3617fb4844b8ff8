/* The simulator's host I/O: the only way a firmware reaches the host, and nothing in it can
 * name a host file or command.
 *
 *   host -> firmware  the inbox: before the firmware starts, the runner writes one stream of
 *                     bytes (a length word, then the inputs back to back) into a memory region
 *                     that exists only in the simulation (QEMU's loader device);
 *                     npu_read_input copies the next bytes of it.
 *   firmware -> host  the console UART (a 16550): text, and data records
 *                     "@<tag>:<hex bytes>\n" (npu_send), which the runner parses.
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

extern uint32_t __stack_bottom[];
extern char __stack_top[];
extern const uint8_t __npu_inbox_start[]; /* the simulation-only inbox region (linker script) */
extern const uint8_t __npu_inbox_end[];

static void put_char(char c) {
    while (!(UART[UART_LSR] & LSR_THRE)) {
    }
    UART[UART_THR] = (uint8_t)c;
}

void npu_puts(const char *s) {
    while (*s)
        put_char(*s++);
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

/* ---- records --------------------------------------------------------------------------- */

#define RECORD_BYTES 64 /* data bytes per "@tag:hex" line */

void npu_send(uint32_t tag, const void *data, uint32_t bytes) {
    static const char hex[] = "0123456789abcdef";
    const uint8_t *p = (const uint8_t *)data;
    char number[11];
    npu_format_u32(number, tag, 10);
    do { /* an empty record still says the tag was sent */
        uint32_t n = bytes < RECORD_BYTES ? bytes : RECORD_BYTES;
        put_char('@');
        npu_puts(number);
        put_char(':');
        for (uint32_t i = 0; i < n; ++i) {
            put_char(hex[p[i] >> 4]);
            put_char(hex[p[i] & 15]);
        }
        put_char('\n');
        p += n;
        bytes -= n;
    } while (bytes);
}

/* ---- text ------------------------------------------------------------------------------ */

char *npu_format_u32(char *out, uint32_t v, uint32_t base) {
    char digits[32];
    int n = 0;
    do {
        digits[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    while (n)
        *out++ = digits[--n];
    *out = 0;
    return out;
}

void npu_put_u32(uint32_t v) {
    char text[11];
    npu_format_u32(text, v, 10);
    npu_puts(text);
}

void npu_put_hex(uint32_t v) {
    char text[11] = "0x";
    npu_format_u32(text + 2, v, 16);
    npu_puts(text);
}

/* ---- exit ------------------------------------------------------------------------------ */

static void __attribute__((noreturn)) finish(int code) {
    FINISHER = code == 0 ? FINISHER_PASS : ((uint32_t)code << 16 | FINISHER_FAIL);
    for (;;) /* the device ends the simulation; on the chip, halt here */
        __asm__ volatile("wfi");
}

void npu_exit(int code) {
    if (__stack_bottom[0] != NPU_STACK_CANARY) {
        npu_puts("stack overflow: the firmware used more than its ");
        npu_put_u32((uint32_t)(__stack_top - (char *)__stack_bottom));
        npu_puts("-byte stack\n");
        finish(NPU_EXIT_STACK_OVERFLOW);
    }
    finish(code);
}
