/* INT8 spatial resize of NHWC tensors: nearest neighbour (a gather) and TFLite's integer bilinear.
 * Spec: compiler/quant/reference/resize.py (bit-exact); declarations in npu_kernels_resize.h.
 * C99, <stdint.h> only, no libc: builds freestanding (no 64-bit division: RV32 would call libgcc). */
#include <stdint.h>

#include "npu_kernels_resize.h"

/* The first element of input row y of image b (the input has fewer than 2^31 elements). */
static inline const int8_t* input_row(const npu_resize_params* p, const int8_t* input, int32_t b, int32_t y) {
    return input + (b * p->in_h + y) * p->in_w * p->channels;
}

void npu_resize_nearest_s8(const npu_resize_params* p, const int8_t* input, const int32_t* y_index,
                           const int32_t* x_index, int8_t* output) {
    /* Locals: the output is int8_t, which may alias *p, so p's fields would be reloaded after each store. */
    const int32_t batches = p->batches, out_h = p->out_h, out_w = p->out_w, channels = p->channels;
    for (int32_t b = 0; b < batches; ++b) {
        for (int32_t y = 0; y < out_h; ++y) {
            const int8_t* row = input_row(p, input, b, y_index[y]);
            for (int32_t x = 0; x < out_w; ++x) {
                const int8_t* pixel = row + x_index[x] * channels;
                for (int32_t c = 0; c < channels; ++c) *output++ = pixel[c];
            }
        }
    }
}

void npu_resize_bilinear_s8(const npu_resize_params* p, const int8_t* input, const int32_t* y_lerp,
                            const int32_t* x_lerp, int8_t* output) {
    const int32_t batches = p->batches, out_h = p->out_h, out_w = p->out_w, channels = p->channels;  /* as above */
    for (int32_t b = 0; b < batches; ++b) {
        for (int32_t y = 0; y < out_h; ++y) {
            const int8_t* row0 = input_row(p, input, b, y_lerp[3 * y]);
            const int8_t* row1 = input_row(p, input, b, y_lerp[3 * y + 1]);
            const int64_t fy = y_lerp[3 * y + 2];
            for (int32_t x = 0; x < out_w; ++x) {
                const int32_t x0 = x_lerp[3 * x] * channels, x1 = x_lerp[3 * x + 1] * channels;
                const int64_t fx = x_lerp[3 * x + 2];
                for (int32_t c = 0; c < channels; ++c) *output++ = npu_bilinear_s8(row0, row1, x0, x1, c, fy, fx);
            }
        }
    }
}
