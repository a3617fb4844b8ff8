/* What object code from TVM's LLVM backend (compiler/coral/tvm_fallback.py) calls besides
 * libm (mathf.c): the packed-function error hook and the workspace allocator.
 *
 * TIR temporaries larger than a few hundred bytes come from TVMBackendAllocWorkspace. The
 * generated layer wrapper hands this allocator its scratch buffer first (npu_tvm_workspace),
 * whose size the compiler bounded from the PrimFunc's allocations and put in the memory plan;
 * requests are served in order and freed in reverse (TVM frees in LIFO order). */
#include "npu_runtime.h"

#define WORKSPACE_ALIGN 64u /* compiler/coral/tvm_fallback.py WORKSPACE_ALIGN */

static uint8_t *workspace_base;
static uint32_t workspace_size;
static uint32_t workspace_used;

void npu_tvm_workspace(void *base, uint32_t bytes) {
    workspace_base = (uint8_t *)base;
    workspace_size = bytes;
    workspace_used = 0;
}

void *TVMBackendAllocWorkspace(int device_type, int device_id, uint64_t nbytes, int dtype_code_hint,
                               int dtype_bits_hint) {
    (void)device_type, (void)device_id, (void)dtype_code_hint, (void)dtype_bits_hint;
    /* The base is 16-aligned (the arena); align the offset from the base like the compiler did. */
    uint64_t rounded = (nbytes + WORKSPACE_ALIGN - 1) / WORKSPACE_ALIGN * WORKSPACE_ALIGN;
    if (workspace_used + rounded > workspace_size) {
        npu_puts("error: TVM workspace exhausted: ");
        npu_put_u32((uint32_t)nbytes);
        npu_puts(" bytes requested, ");
        npu_put_u32(workspace_size - workspace_used);
        npu_puts(" left\n");
        return 0; /* the caller reports the failure through TVMFFIErrorSetRaisedFromCStrParts */
    }
    void *block = workspace_base + workspace_used;
    workspace_used += (uint32_t)rounded;
    return block;
}

int TVMBackendFreeWorkspace(int device_type, int device_id, void *ptr) {
    (void)device_type, (void)device_id;
    uint8_t *block = (uint8_t *)ptr;
    if (block >= workspace_base && block < workspace_base + workspace_used)
        workspace_used = (uint32_t)(block - workspace_base);
    return 0;
}

/* TVM's code calls the two through these pointers (weak and null in its object, where a
 * dynamic loader would fill them in); the strong definitions here are that loading. */
void *(*__TVMBackendAllocWorkspace)(int, int, uint64_t, int, int) = TVMBackendAllocWorkspace;
int (*__TVMBackendFreeWorkspace)(int, int, void *) = TVMBackendFreeWorkspace;

void TVMFFIErrorSetRaisedFromCStrParts(const char *kind, const char **parts, int32_t num_parts) {
    npu_puts("error: ");
    npu_puts(kind);
    npu_puts(": ");
    for (int32_t i = 0; i < num_parts; ++i)
        npu_puts(parts[i]);
    npu_puts("\n");
}

void npu_tvm_failed(const char *layer) {
    npu_puts("error: ");
    npu_puts(layer);
    npu_puts(": the TVM-compiled layer failed\n");
    npu_exit(NPU_EXIT_TVM);
}
