/* 16x8 convolution and fully connected layers (int16 activations, int8 weights) and the int8 <-> int16
 * rescales around them: the reference loop nests. Spec: compiler/quant/reference/conv16x8.py (TFLite's ConvPerChannel and
 * FullyConnected for int16 inputs). Zero points are 0, so a padding tap contributes nothing. */
#include <stddef.h>
#include <stdint.h>

#include "npu_kernels_conv.h"
#include "npu_kernels_elementwise.h"
#include "npu_quant.h"

void npu_conv2d_s16x8(const npu_conv2d_params* p, const int16_t* input, const int8_t* filter, const int64_t* bias,
                      const int32_t* multiplier, const int32_t* shift, int16_t* output) {
    const int32_t in_c_per_group = p->in_c / p->groups;
    const int32_t out_c_per_group = p->out_c / p->groups;
    for (int32_t b = 0; b < p->batches; ++b) {
        for (int32_t oy = 0; oy < p->out_h; ++oy) {
            for (int32_t ox = 0; ox < p->out_w; ++ox) {
                for (int32_t oc = 0; oc < p->out_c; ++oc) {
                    const int32_t first_in_c = (oc / out_c_per_group) * in_c_per_group;
                    int64_t acc = bias != NULL ? bias[oc] : 0;
                    for (int32_t ky = 0; ky < p->kernel_h; ++ky) {
                        const int32_t iy = oy * p->stride_h - p->pad_top + ky * p->dilation_h;
                        if (iy < 0 || iy >= p->in_h) continue;
                        for (int32_t kx = 0; kx < p->kernel_w; ++kx) {
                            const int32_t ix = ox * p->stride_w - p->pad_left + kx * p->dilation_w;
                            if (ix < 0 || ix >= p->in_w) continue;
                            const int16_t* in = input + (((size_t)b * p->in_h + iy) * p->in_w + ix) * p->in_c + first_in_c;
                            const int8_t* w = filter + (((size_t)oc * p->kernel_h + ky) * p->kernel_w + kx) * in_c_per_group;
                            for (int32_t ic = 0; ic < in_c_per_group; ++ic) acc += (int64_t)in[ic] * w[ic];
                        }
                    }
                    output[(((size_t)b * p->out_h + oy) * p->out_w + ox) * p->out_c + oc] =
                        npu_requantize16(acc, multiplier[oc], shift[oc], p->act_min, p->act_max);
                }
            }
        }
    }
}

void npu_dense_s16x8(const npu_dense_params* p, const int16_t* input, const int8_t* weight, const int64_t* bias,
                     const int32_t* multiplier, const int32_t* shift, int16_t* output) {
    for (int32_t b = 0; b < p->batches; ++b) {
        const int16_t* in = input + (size_t)b * p->in_features;
        for (int32_t o = 0; o < p->out_features; ++o) {
            const int8_t* w = weight + (size_t)o * p->in_features;
            int64_t acc = bias != NULL ? bias[o] : 0;
            for (int32_t k = 0; k < p->in_features; ++k) acc += (int64_t)in[k] * w[k];
            output[(size_t)b * p->out_features + o] = npu_requantize16(acc, multiplier[o], shift[o], p->act_min, p->act_max);
        }
    }
}

static int64_t clamp64(int64_t value, int32_t low, int32_t high) { return value < low ? low : (value > high ? high : value); }

void npu_requantize_s8_s16(const npu_requantize_params* p, const int8_t* input, int16_t* output) {
    for (int32_t i = 0; i < p->size; ++i) {
        const int32_t scaled = npu_multiply_by_quantized_multiplier((int32_t)input[i] - p->input_zero_point, p->multiplier, p->shift);
        output[i] = (int16_t)clamp64(scaled, p->act_min, p->act_max);
    }
}

void npu_requantize_s16_s8(const npu_requantize_params* p, const int16_t* input, int8_t* output) {
    for (int32_t i = 0; i < p->size; ++i) {
        const int32_t scaled = npu_multiply_by_quantized_multiplier(input[i], p->multiplier, p->shift);
        output[i] = (int8_t)clamp64((int64_t)scaled + p->output_zero_point, p->act_min, p->act_max);
    }
}
