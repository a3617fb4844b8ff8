/* Splitting a kernel's independent work over the TVM runtime's threads (host builds only).
 *
 * The TVM runtime fills a loaded library's context pointer __TVMBackendParallelLaunch with its
 * TVMBackendParallelLaunch (c_backend_api.h), as it does for TVM's own generated code; the pointer
 * is weak and NULL anywhere else (a freestanding build, a test harness), and then the whole range
 * runs on the calling thread. Each task gets a contiguous slice of [0, count): results do not depend
 * on how the work is split, only the order of independent outputs' computation does.
 */
#ifndef NPU_PARALLEL_H
#define NPU_PARALLEL_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    void* sync_handle;
    int32_t num_task;
} npu_parallel_env; /* TVMParallelGroupEnv */

typedef int (*npu_parallel_lambda)(int task_id, npu_parallel_env* env, void* data);

__attribute__((weak)) int (*__TVMBackendParallelLaunch)(npu_parallel_lambda, void*, int) = 0;

typedef void (*npu_range_body)(int64_t begin, int64_t end, const void* data);

/* A kernel's buffers, passed to its range body: input2 NULL for one-input kernels. */
typedef struct {
    const int8_t* input;
    const int8_t* input2;
    int8_t* output;
} npu_io;

typedef struct {
    npu_range_body body;
    const void* data;
    int64_t count;
} npu_parallel_range_args;

static int npu_parallel_task(int task_id, npu_parallel_env* env, void* data) {
    const npu_parallel_range_args* a = (const npu_parallel_range_args*)data;
    const int64_t tasks = env->num_task;
    const int64_t begin = a->count * task_id / tasks, end = a->count * (task_id + 1) / tasks;
    if (begin < end) a->body(begin, end, a->data);
    return 0;
}

/* body(begin, end, data) over [0, count), in slices on the runtime's threads when there are at least
 * two slices of `grain` items. */
static inline void npu_parallel_range(npu_range_body body, const void* data, int64_t count, int64_t grain) {
    if (count <= 0) return;
    if (__TVMBackendParallelLaunch == 0 || count < 2 * grain) {
        body(0, count, data);
        return;
    }
    npu_parallel_range_args args = {body, data, count};
    if (__TVMBackendParallelLaunch(npu_parallel_task, &args, 0) != 0) body(0, count, data);
}

#endif /* NPU_PARALLEL_H */
