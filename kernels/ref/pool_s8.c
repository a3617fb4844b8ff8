/* INT8 pooling kernels: average, max and global average (MEAN over H, W) pooling, NHWC.
 * Spec: compiler/quant/reference/pool.py (bit-exact); declarations in npu_kernels_elementwise.h.
 * C99, <stdint.h> only, no libc: builds freestanding. */
#include <stdint.h>

#include "npu_kernels_elementwise.h"
#include "npu_pool_window.h"
#include "npu_quant.h"

static inline int32_t max_i32(int32_t a, int32_t b) { return a > b ? a : b; }
static inline int32_t clamp_i32(int32_t v, int32_t lo, int32_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

/* Inlined into each caller even where a compiler would rather share one copy (clang -O2 does),
 * so that each copy has a constant is_max and a loop as tight as a hand-written one. */
#if defined(__GNUC__)
#define NPU_POOL_INLINE static inline __attribute__((always_inline))
#else
#define NPU_POOL_INLINE static inline
#endif

/* Average (is_max == 0) or max (is_max == 1) pooling: the loops over output pixels and their
 * clipped windows, shared by npu_avg_pool_s8 and npu_max_pool_s8. */
NPU_POOL_INLINE void pool_s8(const npu_pool_params* p, const int8_t* input, int8_t* output, int is_max) {
    const int32_t c = p->channels;
    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t* image = input + (int64_t)b * p->in_h * p->in_w * c;
        for (int32_t oy = 0; oy < p->out_h; ++oy) {
            int32_t y0, y1;
            npu_pool_window(oy, p->stride_h, p->pad_top, p->kernel_h, p->in_h, &y0, &y1);
            for (int32_t ox = 0; ox < p->out_w; ++ox) {
                int32_t x0, x1;
                npu_pool_window(ox, p->stride_w, p->pad_left, p->kernel_w, p->in_w, &x0, &x1);
                const int32_t count = (y1 > y0 && x1 > x0) ? (y1 - y0) * (x1 - x0) : 0;
                int8_t* out = output + (((int64_t)b * p->out_h + oy) * p->out_w + ox) * c;
                for (int32_t ch = 0; ch < c; ++ch) {
                    int32_t acc = is_max ? -128 : 0; /* the max, or the sum: |sum| <= 128 * 2^23 */
                    for (int32_t y = y0; y < y1; ++y) {
                        for (int32_t x = x0; x < x1; ++x) {
                            const int32_t v = image[((int64_t)y * p->in_w + x) * c + ch];
                            acc = is_max ? max_i32(acc, v) : acc + v;
                        }
                    }
                    if (!is_max) acc = npu_rounded_mean(acc, count);
                    out[ch] = (int8_t)clamp_i32(acc, p->act_min, p->act_max);
                }
            }
        }
    }
}

#undef NPU_POOL_INLINE

void npu_avg_pool_s8(const npu_avgpool_params* p, const int8_t* input, int8_t* output) {
    pool_s8(p, input, output, 0);
}

void npu_max_pool_s8(const npu_maxpool_params* p, const int8_t* input, int8_t* output) {
    pool_s8(p, input, output, 1);
}

void npu_global_avg_pool_s8(const npu_mean_params* p, const int8_t* input, int8_t* output) {
    const int32_t c = p->channels;
    const int32_t n = p->in_h * p->in_w; /* 1 <= n <= 2^23 */
    const int32_t block = c - c % NPU_MEAN_BLOCK; /* channels [0, block) round as block_rounding */
    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t* image = input + (int64_t)b * n * c;
        for (int32_t ch = 0; ch < c; ++ch) {
            int32_t sum = 0; /* |sum| <= 255 * 2^23 */
            for (int32_t i = 0; i < n; ++i) sum += (int32_t)image[(int64_t)i * c + ch] - p->input_zero_point;
            /* the multiplier includes 1 / n: one requantisation for the whole mean */
            const int32_t rounding = ch < block ? p->block_rounding : p->rounding;
            const int64_t mean = (int64_t)npu_multiply_rounding(sum, p->multiplier, p->shift, rounding)
                                 + p->output_zero_point + p->bias;
            output[(int64_t)b * c + ch] = (int8_t)(mean < p->act_min ? p->act_min : (mean > p->act_max ? p->act_max : mean));
        }
    }
}
