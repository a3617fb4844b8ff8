/* INT8 2-D convolution (plain, grouped, depthwise): the reference loop nest.
 * Spec: compiler/quant/reference/conv.py (TFLite ConvPerChannel / DepthwiseConvPerChannel).
 * Clarity over speed: this is the host build and the oracle for the simulator. */
#include <stddef.h>
#include <stdint.h>

#include "npu_kernels_conv.h"
#include "npu_quant.h"

/* Offset of element [i0][i1][i2][i3] of a dense 4-D array with inner dimensions d1, d2, d3 (indices >= 0). */
static size_t offset4(int32_t i0, int32_t i1, int32_t i2, int32_t i3, int32_t d1, int32_t d2, int32_t d3) {
    return (((size_t)i0 * (size_t)d1 + (size_t)i1) * (size_t)d2 + (size_t)i2) * (size_t)d3 + (size_t)i3;
}

void npu_conv2d_s8(const npu_conv2d_params* p, const int8_t* input, const int8_t* filter, const int32_t* bias,
                   const int32_t* multiplier, const int32_t* shift, int8_t* output) {
    const int32_t in_c_per_group = p->in_c / p->groups;
    const int32_t out_c_per_group = p->out_c / p->groups;
    const int32_t whole_blocks_end = npu_whole_blocks_end(p->out_c); /* NPU_ROUND_BLOCKS_OF_8's split */
    for (int32_t b = 0; b < p->batches; ++b) {
        for (int32_t oy = 0; oy < p->out_h; ++oy) {
            for (int32_t ox = 0; ox < p->out_w; ++ox) {
                for (int32_t oc = 0; oc < p->out_c; ++oc) {
                    const int32_t first_in_c = (oc / out_c_per_group) * in_c_per_group;
                    int32_t acc = 0;
                    for (int32_t ky = 0; ky < p->kernel_h; ++ky) {
                        const int32_t iy = oy * p->stride_h - p->pad_top + ky * p->dilation_h;
                        if (iy < 0 || iy >= p->in_h) continue; /* padding: contributes nothing */
                        for (int32_t kx = 0; kx < p->kernel_w; ++kx) {
                            const int32_t ix = ox * p->stride_w - p->pad_left + kx * p->dilation_w;
                            if (ix < 0 || ix >= p->in_w) continue;
                            const int8_t* in = input + offset4(b, iy, ix, first_in_c, p->in_h, p->in_w, p->in_c);
                            const int8_t* w = filter + offset4(oc, ky, kx, 0, p->kernel_h, p->kernel_w, in_c_per_group);
                            for (int32_t ic = 0; ic < in_c_per_group; ++ic) {
                                acc += ((int32_t)in[ic] - p->input_zero_point) * (int32_t)w[ic];
                            }
                        }
                    }
                    if (bias != NULL) acc += bias[oc];
                    output[offset4(b, oy, ox, oc, p->out_h, p->out_w, p->out_c)] =
                        npu_requantize_rounding(acc, multiplier[oc], shift[oc], p->output_zero_point, p->act_min, p->act_max,
                                                npu_channel_rounding(p->rounding, oc, whole_blocks_end));
                }
            }
        }
    }
}
