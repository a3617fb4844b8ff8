/* A depthwise convolution's geometry and the input rows of an output pixel's taps: shared by the
 * CPU SIMD families' depthwise kernels (npu_x86_quant.h, npu_neon_quant.h). */
#ifndef NPU_DEPTHWISE_H
#define NPU_DEPTHWISE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int32_t in_h, in_w, channels, out_h, out_w, kernel_h, kernel_w;
    int32_t stride_h, stride_w, dilation_h, dilation_w, pad_top, pad_left, input_zero_point;
} npu_depthwise_shape;

/* rows[tap]: the input channels of each tap of output pixel (b, oy, ox), or zero_row in the padding;
 * rows[taps] = zero_row (the partner of an odd last tap for kernels that take taps in pairs). A pixel
 * whose window lies inside the image (most of them) takes its rows at fixed offsets from the window's
 * corner, with no test per tap (constants, once a kernel's static shape is inlined). Kernels walking
 * the pixels in order keep (b, oy, ox) as counters (npu_depthwise_next); npu_depthwise_rows divides. */
static inline void npu_depthwise_rows_at(const npu_depthwise_shape* s, const int8_t* input, const int8_t* zero_row,
                                         int32_t b, int32_t oy, int32_t ox, const int8_t** rows) {
    const int32_t y0 = oy * s->stride_h - s->pad_top, x0 = ox * s->stride_w - s->pad_left;
    int32_t tap = 0;
    if (y0 >= 0 && y0 + (s->kernel_h - 1) * s->dilation_h < s->in_h && x0 >= 0
        && x0 + (s->kernel_w - 1) * s->dilation_w < s->in_w) {
        const int8_t* corner = input + (((size_t)b * s->in_h + y0) * s->in_w + x0) * s->channels;
        for (int32_t ky = 0; ky < s->kernel_h; ++ky)
            for (int32_t kx = 0; kx < s->kernel_w; ++kx, ++tap)
                rows[tap] = corner + ((size_t)ky * s->dilation_h * s->in_w + (size_t)kx * s->dilation_w) * s->channels;
        rows[tap] = zero_row;
        return;
    }
    for (int32_t ky = 0; ky < s->kernel_h; ++ky) {
        const int32_t iy = y0 + ky * s->dilation_h;
        for (int32_t kx = 0; kx < s->kernel_w; ++kx, ++tap) {
            const int32_t ix = x0 + kx * s->dilation_w;
            const int inside = iy >= 0 && iy < s->in_h && ix >= 0 && ix < s->in_w;
            rows[tap] = inside ? input + (((size_t)b * s->in_h + iy) * s->in_w + ix) * s->channels : zero_row;
        }
    }
    rows[tap] = zero_row;
}

/* (b, oy, ox) of flat output pixel `pixel`, and the step to the next one. */
static inline void npu_depthwise_pixel(const npu_depthwise_shape* s, int64_t pixel, int32_t* b, int32_t* oy,
                                       int32_t* ox) {
    *b = (int32_t)(pixel / ((int64_t)s->out_h * s->out_w));
    *oy = (int32_t)(pixel / s->out_w % s->out_h);
    *ox = (int32_t)(pixel % s->out_w);
}

static inline void npu_depthwise_rows(const npu_depthwise_shape* s, const int8_t* input, const int8_t* zero_row,
                                      int64_t pixel, const int8_t** rows) {
    int32_t b, oy, ox;
    npu_depthwise_pixel(s, pixel, &b, &oy, &ox);
    npu_depthwise_rows_at(s, input, zero_row, b, oy, ox, rows);
}

static inline void npu_depthwise_next(const npu_depthwise_shape* s, int32_t* b, int32_t* oy, int32_t* ox) {
    if (++*ox == s->out_w) {
        *ox = 0;
        if (++*oy == s->out_h) *oy = 0, ++*b;
    }
}

#endif /* NPU_DEPTHWISE_H */
