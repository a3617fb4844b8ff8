/* A pooling window clipped to the input (kernels/ref's pooling and the CPU SIMD families'), the
 * average pool's rounded division, and the scalar max and mean over a window, for the channels after
 * the SIMD families' last vector (npu_x86_elementwise.h, npu_neon_elementwise.h). C99, <stdint.h> and <stddef.h> only: kernels/ref builds it freestanding. */
#ifndef NPU_POOL_WINDOW_H
#define NPU_POOL_WINDOW_H

#include <stddef.h>
#include <stdint.h>

/* [*start, *end): the window of output index o along one axis, within the input. */
static inline void npu_pool_window(int32_t o, int32_t stride, int32_t pad, int32_t kernel, int32_t size, int32_t* start,
                                   int32_t* end) {
    const int32_t origin = o * stride - pad;
    *start = origin > 0 ? origin : 0;
    *end = origin + kernel < size ? origin + kernel : size;
}

/* Channel ch of the window rows [y0, y1) x columns [x0, x1) of an image `in_w` wide with `channels`
 * channels: its largest element, clamped to [act_min, act_max] (-128 before the clamp when empty). */
static inline int8_t npu_window_max(const int8_t* image, int32_t in_w, int32_t channels, int32_t ch, int32_t y0,
                                    int32_t y1, int32_t x0, int32_t x1, int32_t act_min, int32_t act_max) {
    int32_t m = -128;
    for (int32_t y = y0; y < y1; ++y)
        for (int32_t x = x0; x < x1; ++x) {
            const int32_t v = image[((size_t)y * in_w + x) * channels + ch];
            m = v > m ? v : m;
        }
    return (int8_t)(m < act_min ? act_min : (m > act_max ? act_max : m));
}

/* The average pool's mean: sum / count rounded half away from zero, 0 for an empty window. */
static inline int32_t npu_rounded_mean(int32_t sum, int32_t count) {
    return count > 0 ? (sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count) : 0;
}

/* Channel ch of the window rows [y0, y1) x columns [x0, x1): its rounded mean, clamped to
 * [act_min, act_max]. */
static inline int8_t npu_window_mean(const int8_t* image, int32_t in_w, int32_t channels, int32_t ch, int32_t y0,
                                     int32_t y1, int32_t x0, int32_t x1, int32_t act_min, int32_t act_max) {
    int32_t sum = 0;
    for (int32_t y = y0; y < y1; ++y)
        for (int32_t x = x0; x < x1; ++x) sum += image[((size_t)y * in_w + x) * channels + ch];
    const int32_t m = npu_rounded_mean(sum, (y1 > y0 && x1 > x0) ? (y1 - y0) * (x1 - x0) : 0);
    return (int8_t)(m < act_min ? act_min : (m > act_max ? act_max : m));
}

#endif /* NPU_POOL_WINDOW_H */
