/* Float convolutions and dense layers of the host build on oneDNN (Intel's CPU primitive library,
 * PyPI's onednn-cpu-gomp 2023.2 = oneDNN 3.2; headers from onednn-devel-cpu-gomp).
 *
 * compiler/codegen/dnnl.py emits one npu_dnnl_conv call per fused float convolution group
 * (conv2d + bias + residual add + ReLU / clip, NHWC activations, OHWI weights) and one
 * npu_dnnl_matmul call per dense group (x [m, k] times constant w [k, n] + bias + ReLU / clip). The library is
 * opened with dlopen at the first call, from the path the build found it at (NPU_DNNL_LIBRARY),
 * so model.so links against nothing and loads anywhere; a missing library is a one-line error at
 * run time. Each call site owns a cache: the primitive is created at its first run (oneDNN
 * picks the implementation: brgconv / brdgmm / jit for this CPU) and the constant weights are
 * reordered into the layout it wants, once. Later runs only execute. Not reentrant per call site
 * (as the VM calls a function: one at a time). A residual add is oneDNN's sum post-op: the
 * shortcut is copied into the output first, then the convolution accumulates onto it.
 */
#ifndef NPU_DNNL_H
#define NPU_DNNL_H

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <oneapi/dnnl/dnnl.h> /* -I PREFIX/include: not inlined into the generated file */

#ifndef NPU_DNNL_LIBRARY
#define NPU_DNNL_LIBRARY "libdnnl.so.3"
#endif

/* The oneDNN functions used, as pointers filled by dlsym. */
#define NPU_DNNL_FUNCTIONS(X)                                                                                  \
    X(dnnl_engine_create) X(dnnl_stream_create) X(dnnl_memory_desc_create_with_tag) X(dnnl_post_ops_create)   \
    X(dnnl_post_ops_append_sum) X(dnnl_post_ops_append_eltwise) X(dnnl_primitive_attr_create)                  \
    X(dnnl_primitive_attr_set_post_ops) X(dnnl_convolution_forward_primitive_desc_create) X(dnnl_matmul_primitive_desc_create)                      \
    X(dnnl_primitive_desc_query_md) X(dnnl_primitive_create) X(dnnl_memory_create)                            \
    X(dnnl_memory_set_data_handle) X(dnnl_primitive_execute) X(dnnl_stream_wait)                               \
    X(dnnl_reorder_primitive_desc_create) X(dnnl_primitive_desc_destroy) X(dnnl_primitive_destroy)            \
    X(dnnl_primitive_attr_destroy) X(dnnl_post_ops_destroy) X(dnnl_memory_desc_destroy) X(dnnl_memory_destroy)

typedef struct {
#define NPU_DNNL_POINTER(name) __typeof__(name)* name;
    NPU_DNNL_FUNCTIONS(NPU_DNNL_POINTER)
#undef NPU_DNNL_POINTER
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    void (*set_threads)(int); /* OpenMP's omp_set_num_threads, and the count for it (0: OpenMP's default) */
    int threads;
    int ready;
} npu_dnnl_library;

static npu_dnnl_library npu_dnnl;

/* Opens the library once; 0 on success, else writes why to `error`. */
static int npu_dnnl_open(char* error, size_t size) {
    if (npu_dnnl.ready) return 0;
    void* handle = dlopen(NPU_DNNL_LIBRARY, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        snprintf(error, size, "oneDNN not found at %s (pip install -r requirements.txt): %s", NPU_DNNL_LIBRARY,
                 dlerror());
        return -1;
    }
#define NPU_DNNL_LOAD(name)                                                                    \
    if (!(npu_dnnl.name = (__typeof__(name)*)dlsym(handle, #name))) {                          \
        snprintf(error, size, "%s: no symbol %s (oneDNN 3.2 or later needed)", NPU_DNNL_LIBRARY, #name); \
        return -1;                                                                             \
    }
    NPU_DNNL_FUNCTIONS(NPU_DNNL_LOAD)
#undef NPU_DNNL_LOAD
    /* oneDNN runs on OpenMP's threads: as many as TVM's pool when TVM_NUM_THREADS says (the VM's
     * thread count, which benchmarks and users set), else OpenMP's own default (OMP_NUM_THREADS,
     * or every core). omp_set_num_threads, found among the library's dependencies (libgomp), sets
     * the calling thread's count: it is called before each execution. */
    const char* threads = getenv("TVM_NUM_THREADS");
    npu_dnnl.set_threads = (void (*)(int))dlsym(handle, "omp_set_num_threads");
    npu_dnnl.threads = threads && atoi(threads) > 0 ? atoi(threads) : 0;
    if (npu_dnnl.dnnl_engine_create(&npu_dnnl.engine, dnnl_cpu, 0) != dnnl_success ||
        npu_dnnl.dnnl_stream_create(&npu_dnnl.stream, npu_dnnl.engine, dnnl_stream_default_flags) != dnnl_success) {
        snprintf(error, size, "oneDNN: cannot create the CPU engine and stream");
        return -1;
    }
    npu_dnnl.ready = 1;
    return 0;
}

enum { NPU_DNNL_NONE = 0, NPU_DNNL_RELU = 1, NPU_DNNL_CLIP = 2, NPU_DNNL_HARDSWISH = 3 };

/* The activation and residual a group ends with. */
typedef struct {
    int32_t has_bias, has_residual, activation;
    float clip_min, clip_max;
} npu_dnnl_epilogue;

/* One convolution: NHWC input [n, h, w, c] -> NHWC output [n, oh, ow, o], OHWI weights
 * [o, kh, kw, c / groups], optional bias [o], optional residual (output-shaped) added before the
 * activation. Padding: top, left, bottom, right. */
typedef struct {
    int64_t n, h, w, c, o, oh, ow, kh, kw, stride_h, stride_w, dilation_h, dilation_w;
    int64_t pad_top, pad_left, pad_bottom, pad_right, groups;
    npu_dnnl_epilogue epilogue;
} npu_dnnl_conv_params;

/* One dense layer: x [m, k] times w [k, n] (row-major, as relax.matmul's constant), bias [n]. */
typedef struct {
    int64_t m, k, n;
    npu_dnnl_epilogue epilogue;
} npu_dnnl_matmul_params;

/* A call site's primitive and its memories (the weights reordered into the primitive's layout). */
typedef struct {
    dnnl_primitive_t primitive;
    dnnl_memory_t src, weights, bias, dst;
} npu_dnnl_cache;

#define NPU_DNNL_TRY(call, what)                                                   \
    if ((status = (call)) != dnnl_success) {                                       \
        snprintf(error, size, "oneDNN %s failed (status %d)", what, (int)status); \
        return -1;                                                                 \
    }

static int npu_dnnl_attr(const npu_dnnl_epilogue* e, dnnl_primitive_attr_t* attr, char* error, size_t size) {
    dnnl_status_t status;
    const npu_dnnl_library* d = &npu_dnnl;
    dnnl_post_ops_t post_ops;
    NPU_DNNL_TRY(d->dnnl_post_ops_create(&post_ops), "post-ops");
    if (e->has_residual) NPU_DNNL_TRY(d->dnnl_post_ops_append_sum(post_ops, 1.0f, 0, dnnl_data_type_undef), "sum post-op");
    if (e->activation == NPU_DNNL_RELU) NPU_DNNL_TRY(d->dnnl_post_ops_append_eltwise(post_ops, dnnl_eltwise_relu, 0.0f, 0.0f), "ReLU");
    if (e->activation == NPU_DNNL_CLIP)
        NPU_DNNL_TRY(d->dnnl_post_ops_append_eltwise(post_ops, dnnl_eltwise_clip, e->clip_min, e->clip_max), "clip");
    /* x * max(0, min(1, x / 6 + 1 / 2)): x * clip(x + 3, 0, 6) / 6 up to float rounding */
    if (e->activation == NPU_DNNL_HARDSWISH)
        NPU_DNNL_TRY(d->dnnl_post_ops_append_eltwise(post_ops, dnnl_eltwise_hardswish, 1.0f / 6.0f, 0.5f), "hard-swish");
    NPU_DNNL_TRY(d->dnnl_primitive_attr_create(attr), "attributes");
    NPU_DNNL_TRY(d->dnnl_primitive_attr_set_post_ops(*attr, post_ops), "attributes");
    d->dnnl_post_ops_destroy(post_ops);
    return 0;
}

/* Fills the cache from a primitive descriptor: the primitive, the constant weights (laid out as
 * `user_weights` describes) reordered into its layout, and data-less memories for the rest. */
static int npu_dnnl_finish(npu_dnnl_cache* cache, dnnl_primitive_desc_t pd, const_dnnl_memory_desc_t user_weights,
                           const float* weights, const_dnnl_memory_desc_t src, const_dnnl_memory_desc_t bias,
                           const_dnnl_memory_desc_t dst, char* error, size_t size) {
    dnnl_status_t status;
    const npu_dnnl_library* d = &npu_dnnl;
    dnnl_engine_t engine = npu_dnnl.engine;
    NPU_DNNL_TRY(d->dnnl_primitive_create(&cache->primitive, pd), "primitive");
    const_dnnl_memory_desc_t weights_md = d->dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    dnnl_memory_t user;
    dnnl_primitive_desc_t reorder_pd;
    dnnl_primitive_t reorder;
    NPU_DNNL_TRY(d->dnnl_memory_create(&user, user_weights, engine, (void*)weights), "weights");
    NPU_DNNL_TRY(d->dnnl_memory_create(&cache->weights, weights_md, engine, DNNL_MEMORY_ALLOCATE), "weights");
    NPU_DNNL_TRY(d->dnnl_reorder_primitive_desc_create(&reorder_pd, user_weights, engine, weights_md, engine, NULL),
                 "weight reorder");
    NPU_DNNL_TRY(d->dnnl_primitive_create(&reorder, reorder_pd), "weight reorder");
    dnnl_exec_arg_t reorder_args[2] = {{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, cache->weights}};
    NPU_DNNL_TRY(d->dnnl_primitive_execute(reorder, npu_dnnl.stream, 2, reorder_args), "weight reorder");
    NPU_DNNL_TRY(d->dnnl_stream_wait(npu_dnnl.stream), "weight reorder");
    d->dnnl_primitive_destroy(reorder);
    d->dnnl_primitive_desc_destroy(reorder_pd);
    d->dnnl_memory_destroy(user);
    NPU_DNNL_TRY(d->dnnl_memory_create(&cache->src, src, engine, DNNL_MEMORY_NONE), "source");
    NPU_DNNL_TRY(d->dnnl_memory_create(&cache->dst, dst, engine, DNNL_MEMORY_NONE), "output");
    cache->bias = NULL;
    if (bias) NPU_DNNL_TRY(d->dnnl_memory_create(&cache->bias, bias, engine, DNNL_MEMORY_NONE), "bias");
    return 0;
}

static void npu_dnnl_destroy_descs(dnnl_memory_desc_t* descs, int count) {
    for (int i = 0; i < count; ++i)
        if (descs[i]) npu_dnnl.dnnl_memory_desc_destroy(descs[i]);
}

static int npu_dnnl_conv_create(npu_dnnl_cache* cache, const npu_dnnl_conv_params* p, const float* weights,
                                char* error, size_t size) {
    dnnl_status_t status;
    const npu_dnnl_library* d = &npu_dnnl;
    /* src, dst, bias, user weights, any weights */
    dnnl_memory_desc_t md[5] = {NULL, NULL, NULL, NULL, NULL};
    dnnl_dims_t src_dims = {p->n, p->c, p->h, p->w}, dst_dims = {p->n, p->o, p->oh, p->ow}, bias_dims = {p->o};
    dnnl_dims_t strides = {p->stride_h, p->stride_w}, dilates = {p->dilation_h - 1, p->dilation_w - 1};
    dnnl_dims_t pad_l = {p->pad_top, p->pad_left}, pad_r = {p->pad_bottom, p->pad_right};
    NPU_DNNL_TRY(d->dnnl_memory_desc_create_with_tag(&md[0], 4, src_dims, dnnl_f32, dnnl_nhwc), "source layout");
    NPU_DNNL_TRY(d->dnnl_memory_desc_create_with_tag(&md[1], 4, dst_dims, dnnl_f32, dnnl_nhwc), "output layout");
    if (p->epilogue.has_bias)
        NPU_DNNL_TRY(d->dnnl_memory_desc_create_with_tag(&md[2], 1, bias_dims, dnnl_f32, dnnl_a), "bias layout");
    if (p->groups == 1) {
        dnnl_dims_t dims = {p->o, p->c, p->kh, p->kw};
        NPU_DNNL_TRY(d->dnnl_memory_desc_create_with_tag(&md[3], 4, dims, dnnl_f32, dnnl_ohwi), "weight layout");
        NPU_DNNL_TRY(d->dnnl_memory_desc_create_with_tag(&md[4], 4, dims, dnnl_f32, dnnl_format_tag_any), "weight layout");
    } else { /* OHWI with O = g * (o / g) + o' is g, o', h, w, i: oneDNN's gohwi */
        dnnl_dims_t dims = {p->groups, p->o / p->groups, p->c / p->groups, p->kh, p->kw};
        NPU_DNNL_TRY(d->dnnl_memory_desc_create_with_tag(&md[3], 5, dims, dnnl_f32, dnnl_gohwi), "weight layout");
        NPU_DNNL_TRY(d->dnnl_memory_desc_create_with_tag(&md[4], 5, dims, dnnl_f32, dnnl_format_tag_any), "weight layout");
    }
    dnnl_primitive_attr_t attr;
    dnnl_primitive_desc_t pd;
    if (npu_dnnl_attr(&p->epilogue, &attr, error, size)) return -1;
    NPU_DNNL_TRY(d->dnnl_convolution_forward_primitive_desc_create(&pd, npu_dnnl.engine, dnnl_forward_inference,
                                                                   dnnl_convolution_direct, md[0], md[4], md[2], md[1],
                                                                   strides, dilates, pad_l, pad_r, attr),
                 "convolution");
    int failed = npu_dnnl_finish(cache, pd, md[3], weights, md[0], md[2], md[1], error, size);
    d->dnnl_primitive_desc_destroy(pd);
    d->dnnl_primitive_attr_destroy(attr);
    npu_dnnl_destroy_descs(md, 5);
    return failed;
}

static int npu_dnnl_matmul_create(npu_dnnl_cache* cache, const npu_dnnl_matmul_params* p, const float* weights,
                                  char* error, size_t size) {
    dnnl_status_t status;
    const npu_dnnl_library* d = &npu_dnnl;
    dnnl_memory_desc_t md[5] = {NULL, NULL, NULL, NULL, NULL};
    dnnl_dims_t src_dims = {p->m, p->k}, dst_dims = {p->m, p->n}, bias_dims = {1, p->n}, weight_dims = {p->k, p->n};
    NPU_DNNL_TRY(d->dnnl_memory_desc_create_with_tag(&md[0], 2, src_dims, dnnl_f32, dnnl_ab), "source layout");
    NPU_DNNL_TRY(d->dnnl_memory_desc_create_with_tag(&md[1], 2, dst_dims, dnnl_f32, dnnl_ab), "output layout");
    if (p->epilogue.has_bias)
        NPU_DNNL_TRY(d->dnnl_memory_desc_create_with_tag(&md[2], 2, bias_dims, dnnl_f32, dnnl_ab), "bias layout");
    NPU_DNNL_TRY(d->dnnl_memory_desc_create_with_tag(&md[3], 2, weight_dims, dnnl_f32, dnnl_ab), "weight layout");
    NPU_DNNL_TRY(d->dnnl_memory_desc_create_with_tag(&md[4], 2, weight_dims, dnnl_f32, dnnl_format_tag_any), "weight layout");
    dnnl_primitive_attr_t attr;
    dnnl_primitive_desc_t pd;
    if (npu_dnnl_attr(&p->epilogue, &attr, error, size)) return -1;
    NPU_DNNL_TRY(d->dnnl_matmul_primitive_desc_create(&pd, npu_dnnl.engine, md[0], md[4], md[2], md[1], attr), "matmul");
    int failed = npu_dnnl_finish(cache, pd, md[3], weights, md[0], md[2], md[1], error, size);
    d->dnnl_primitive_desc_destroy(pd);
    d->dnnl_primitive_attr_destroy(attr);
    npu_dnnl_destroy_descs(md, 5);
    return failed;
}

/* Runs a call site's primitive on x, b (may be NULL), y; `residual` (output-sized, may be NULL)
 * is copied into y first for the sum post-op. */
static int npu_dnnl_execute(npu_dnnl_cache* cache, const npu_dnnl_epilogue* e, const float* x, const float* b,
                            const float* residual, float* y, size_t outputs, char* error, size_t size) {
    dnnl_status_t status;
    const npu_dnnl_library* d = &npu_dnnl;
    if (npu_dnnl.threads && npu_dnnl.set_threads) npu_dnnl.set_threads(npu_dnnl.threads);
    if (e->has_residual && residual != y) memcpy(y, residual, sizeof(float) * outputs);
    NPU_DNNL_TRY(d->dnnl_memory_set_data_handle(cache->src, (void*)x), "source");
    NPU_DNNL_TRY(d->dnnl_memory_set_data_handle(cache->dst, y), "output");
    int count = 3;
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, cache->src}, {DNNL_ARG_WEIGHTS, cache->weights}, {DNNL_ARG_DST, cache->dst}};
    if (e->has_bias) {
        NPU_DNNL_TRY(d->dnnl_memory_set_data_handle(cache->bias, (void*)b), "bias");
        args[count++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, cache->bias};
    }
    NPU_DNNL_TRY(d->dnnl_primitive_execute(cache->primitive, npu_dnnl.stream, count, args), "execution");
    NPU_DNNL_TRY(d->dnnl_stream_wait(npu_dnnl.stream), "execution");
    return 0;
}

/* y = act(conv(x, w) + bias + residual); 0, or -1 with the reason in `error`. */
static int npu_dnnl_conv(npu_dnnl_cache* cache, const npu_dnnl_conv_params* p, const float* x, const float* w,
                         const float* b, const float* residual, float* y, char* error, size_t size) {
    if (npu_dnnl_open(error, size)) return -1;
    if (!cache->primitive && npu_dnnl_conv_create(cache, p, w, error, size)) return -1;
    return npu_dnnl_execute(cache, &p->epilogue, x, b, residual, y, (size_t)(p->n * p->oh * p->ow * p->o), error, size);
}

/* y = act(x w + bias); 0, or -1 with the reason in `error`. */
static int npu_dnnl_matmul(npu_dnnl_cache* cache, const npu_dnnl_matmul_params* p, const float* x, const float* w,
                           const float* b, float* y, char* error, size_t size) {
    if (npu_dnnl_open(error, size)) return -1;
    if (!cache->primitive && npu_dnnl_matmul_create(cache, p, w, error, size)) return -1;
    return npu_dnnl_execute(cache, &p->epilogue, x, b, NULL, y, (size_t)(p->m * p->n), error, size);
}

#undef NPU_DNNL_TRY
#endif /* NPU_DNNL_H */
