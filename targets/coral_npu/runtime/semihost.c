/* Semihosting I/O and exit (ARM's semihosting protocol, which RISC-V reuses).
 * Compiled with the scalar -march. Each call passes an argument block of words. */
#include "npu_runtime.h"

enum {
    SYS_OPEN = 0x01,
    SYS_CLOSE = 0x02,
    SYS_WRITE0 = 0x04,
    SYS_WRITE = 0x05,
    SYS_READ = 0x06,
    SYS_EXIT_EXTENDED = 0x20,
    ADP_STOPPED_APPLICATION_EXIT = 0x20026,
};

extern uint32_t __stack_bottom[];
extern char __stack_top[];

static uint32_t length(const char *s) {
    uint32_t n = 0;
    while (s[n])
        n++;
    return n;
}

int npu_open(const char *path, int mode) {
    uintptr_t args[3] = {(uintptr_t)path, (uintptr_t)mode, length(path)};
    return (int)npu_semihost(SYS_OPEN, args);
}

int npu_close(int handle) {
    uintptr_t args[1] = {(uintptr_t)handle};
    return (int)npu_semihost(SYS_CLOSE, args);
}

/* SYS_READ and SYS_WRITE return the number of bytes NOT transferred. */
int npu_read(int handle, void *dst, uint32_t bytes) {
    uintptr_t args[3] = {(uintptr_t)handle, (uintptr_t)dst, bytes};
    return npu_semihost(SYS_READ, args) == 0 ? 0 : -1;
}

int npu_write(int handle, const void *src, uint32_t bytes) {
    uintptr_t args[3] = {(uintptr_t)handle, (uintptr_t)src, bytes};
    return npu_semihost(SYS_WRITE, args) == 0 ? 0 : -1;
}

static int transfer_file(const char *path, int mode, void *buffer, uint32_t bytes) {
    int handle = npu_open(path, mode);
    if (handle < 0)
        return -1;
    int status = mode == NPU_MODE_RB ? npu_read(handle, buffer, bytes) : npu_write(handle, buffer, bytes);
    return npu_close(handle) == 0 ? status : -1;
}

int npu_read_file(const char *path, void *dst, uint32_t bytes) {
    return transfer_file(path, NPU_MODE_RB, dst, bytes);
}

int npu_write_file(const char *path, const void *src, uint32_t bytes) {
    return transfer_file(path, NPU_MODE_WB, (void *)src, bytes);
}

void npu_puts(const char *s) {
    npu_semihost(SYS_WRITE0, s);
}

char *npu_format_u32(char *out, uint32_t v, uint32_t base) {
    char digits[10];
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

static void __attribute__((noreturn)) semihost_exit(int code) {
    uintptr_t args[2] = {ADP_STOPPED_APPLICATION_EXIT, (uintptr_t)code};
    for (;;)
        npu_semihost(SYS_EXIT_EXTENDED, args);
}

void npu_exit(int code) {
    if (__stack_bottom[0] != NPU_STACK_CANARY) {
        npu_puts("stack overflow: the firmware used more than its ");
        npu_put_u32((uint32_t)(__stack_top - (char *)__stack_bottom));
        npu_puts("-byte stack\n");
        semihost_exit(NPU_EXIT_STACK_OVERFLOW);
    }
    semihost_exit(code);
}
