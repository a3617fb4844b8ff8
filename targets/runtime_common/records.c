/* The runtime's platform-independent output: text and "@tag:hex" data records on the console,
 * and the exit with its stack check. The platform's hostio.c supplies the console (npu_write),
 * the input stream (npu_read_input) and the exit itself (npu_finish). */
#include "npu_runtime.h"

extern uint32_t __stack_bottom[];
extern char __stack_top[];

void npu_puts(const char *s) {
    uint32_t n = 0;
    while (s[n])
        ++n;
    npu_write(s, n);
}

/* ---- records --------------------------------------------------------------------------- */

#define RECORD_BYTES 64 /* data bytes per "@tag:hex" line */

void npu_send(uint32_t tag, const void *data, uint32_t bytes) {
    static const char hex[] = "0123456789abcdef";
    const uint8_t *p = (const uint8_t *)data;
    char line[1 + 10 + 1 + 2 * RECORD_BYTES + 1]; /* '@', the tag, ':', the hex, '\n' */
    line[0] = '@';
    char *data_start = npu_format_u32(line + 1, tag, 10);
    *data_start++ = ':';
    do { /* an empty record still says the tag was sent */
        uint32_t n = bytes < RECORD_BYTES ? bytes : RECORD_BYTES;
        char *end = data_start;
        for (uint32_t i = 0; i < n; ++i) {
            *end++ = hex[p[i] >> 4];
            *end++ = hex[p[i] & 15];
        }
        *end++ = '\n';
        npu_write(line, (uint32_t)(end - line));
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

void npu_exit(int code) {
    if (__stack_bottom[0] != NPU_STACK_CANARY) {
        npu_puts("stack overflow: the firmware used more than its ");
        npu_put_u32((uint32_t)(__stack_top - (char *)__stack_bottom));
        npu_puts("-byte stack\n");
        npu_finish(NPU_EXIT_STACK_OVERFLOW);
    }
    npu_finish(code);
}
