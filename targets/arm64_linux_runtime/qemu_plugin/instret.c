/* A QEMU TCG plugin (host code, built by compiler/coral/qemu_plugin.py) that gives the arm64 Linux
 * runtime an exact instruction counter in qemu-aarch64's user mode, which has no -icount: it adds
 * each translated block's instruction count when the block runs (an inline add, no call), and when
 * the program makes system call NPU_SYS_INSTRET (not a Linux call: the kernel side answers -ENOSYS)
 * writes the count so far to the 8-byte address in its first argument (npu_platform.h's
 * npu_instret). The count includes the svc itself: the difference of two readings is as exact and
 * repeatable as rdinstret's under -icount on the RISC-V targets.
 *
 * The runner starts QEMU with -B 0 (guest addresses are host addresses) and passes the program's
 * memory as lo=/hi= arguments: an address outside it is ignored. The declarations below are those of
 * QEMU's qemu-plugin.h (plugin API version 1, QEMU 7.2), which Debian does not package. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NPU_SYS_INSTRET 0x4E50 /* npu_platform.h */

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
typedef struct qemu_info_t qemu_info_t;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb* tb);
typedef void (*qemu_plugin_vcpu_syscall_cb_t)(qemu_plugin_id_t id, unsigned int vcpu_index, int64_t num, uint64_t a1,
                                              uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6,
                                              uint64_t a7, uint64_t a8);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_syscall_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_syscall_cb_t cb);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb* tb);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb* tb, enum qemu_plugin_op op, void* ptr,
                                              uint64_t imm);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

static uint64_t executed;         /* instructions so far (one vCPU: the runtime is single-threaded) */
static uint64_t memory_lo, memory_hi; /* where the program's counter variable may lie */

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb* tb) {
    (void)id;
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &executed, qemu_plugin_tb_n_insns(tb));
}

static void on_syscall(qemu_plugin_id_t id, unsigned int vcpu_index, int64_t num, uint64_t a1, uint64_t a2, uint64_t a3,
                       uint64_t a4, uint64_t a5, uint64_t a6, uint64_t a7, uint64_t a8) {
    (void)id, (void)vcpu_index, (void)a2, (void)a3, (void)a4, (void)a5, (void)a6, (void)a7, (void)a8;
    if (num == NPU_SYS_INSTRET && a1 % 8 == 0 && a1 >= memory_lo && a1 + 8 <= memory_hi)
        *(volatile uint64_t*)(uintptr_t)a1 = executed;
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t* info, int argc,
                                                               char** argv) {
    (void)info;
    for (int i = 0; i < argc; ++i) {
        if (strncmp(argv[i], "lo=", 3) == 0) memory_lo = strtoull(argv[i] + 3, NULL, 0);
        if (strncmp(argv[i], "hi=", 3) == 0) memory_hi = strtoull(argv[i] + 3, NULL, 0);
    }
    if (memory_lo >= memory_hi) return -1; /* QEMU refuses to start: the runner always passes both */
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_vcpu_syscall_cb(id, on_syscall);
    return 0;
}
