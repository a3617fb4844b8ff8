/* The arm64 Linux platform's host I/O: a static executable in qemu-aarch64 user mode, whose
 * system calls QEMU passes to the host kernel. The runtime makes exactly three: read(2) on
 * stdin, write(2) on stdout and exit_group(2) (and npu_platform.h's counter reading, which the
 * runner's QEMU plugin answers and the kernel refuses); the runner (compiler/coral/simulator.py) starts
 * it in an empty folder with the input stream (a length word, then the inputs back to back) as
 * stdin and parses the "@tag:hex" records on stdout (runtime_common/records.c). */
#include "npu_runtime.h"

enum { SYS_READ = 63, SYS_WRITE = 64, SYS_EXIT_GROUP = 94 }; /* asm-generic/unistd.h */

static long syscall3(long number, long a, long b, long c) {
    register long x8 __asm__("x8") = number;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    __asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
    return x0;
}

void npu_write(const char *s, uint32_t n) {
    while (n) {
        long written = syscall3(SYS_WRITE, 1, (long)s, n);
        if (written <= 0)
            npu_finish(NPU_EXIT_IO);
        s += written;
        n -= (uint32_t)written;
    }
}

/* Reads exactly `bytes` bytes of stdin; -1 at its end or on an error. */
static int read_exactly(void *dst, uint32_t bytes) {
    uint8_t *d = (uint8_t *)dst;
    while (bytes) {
        long got = syscall3(SYS_READ, 0, (long)d, bytes);
        if (got <= 0)
            return -1;
        d += got;
        bytes -= (uint32_t)got;
    }
    return 0;
}

static int64_t stream_left = -1; /* bytes of the stream not yet read; -1 before the length word */

int npu_read_input(void *dst, uint32_t bytes) {
    if (stream_left < 0) {
        uint8_t length[4];
        if (read_exactly(length, 4) != 0)
            return -1;
        stream_left = (int64_t)(length[0] | length[1] << 8 | length[2] << 16 | (uint32_t)length[3] << 24);
    }
    if (bytes > stream_left || read_exactly(dst, bytes) != 0)
        return -1;
    stream_left -= bytes;
    return 0;
}

void npu_finish(int code) {
    for (;;)
        syscall3(SYS_EXIT_GROUP, code, 0, 0);
}
