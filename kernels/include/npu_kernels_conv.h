/* INT8 convolution and fully connected kernels: declarations and params structs.
 *
 * Reference implementations in kernels/ref/conv2d_s8.c and kernels/ref/dense_s8.c; the spec is
 * compiler/quant/reference/{conv,dense}.py (TFLite's ConvPerChannel, DepthwiseConvPerChannel and
 * FullyConnectedPerChannel) and tests demand bit equality. ABI as in kernels/README.md:
 * activations NHWC, conv filters OHWI ([out_c][kernel_h][kernel_w][in_c / groups]), dense
 * weights [out_features][in_features], zero points passed as themselves, per-channel
 * multiplier[out_c] / shift[out_c] (npu_quant.h: positive shift = left), bias int32 or NULL.
 * C99, <stdint.h> only; builds freestanding.
 */
#ifndef NPU_KERNELS_CONV_H
#define NPU_KERNELS_CONV_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 2-D convolution; groups == 1 is a plain conv, groups == in_c a depthwise conv with depth
 * multiplier out_c / in_c (output channel o reads input channel o / (out_c / in_c)).
 * groups divides in_c and out_c. Only the top/left padding is needed: out_h and out_w fix the
 * bottom/right padding (taps outside the input contribute nothing, i.e. read the zero point):
 *   out_h = (in_h + pad_top + pad_bottom - dilation_h * (kernel_h - 1) - 1) / stride_h + 1.
 * The caller keeps the int32 accumulator in range (it takes ~66k taps to leave it). */
typedef struct {
    int32_t batches, in_h, in_w, in_c;
    int32_t out_h, out_w, out_c;
    int32_t kernel_h, kernel_w;
    int32_t stride_h, stride_w;
    int32_t dilation_h, dilation_w;
    int32_t pad_top, pad_left;
    int32_t groups;
    int32_t input_zero_point, output_zero_point;
    int32_t act_min, act_max; /* fused activation: output clamp, within [-128, 127] (int16's range for 16x8) */
    int32_t rounding;         /* npu_quant.h NPU_ROUND_*: 0 (left out of an initialiser) rounds once; conv2d also
                               * takes NPU_ROUND_BLOCKS_OF_8 (LiteRT's depthwise) */
} npu_conv2d_params;

/* input [batches][in_h][in_w][in_c], filter [out_c][kernel_h][kernel_w][in_c / groups],
 * bias [out_c] or NULL, multiplier/shift [out_c], output [batches][out_h][out_w][out_c]. */
void npu_conv2d_s8(const npu_conv2d_params* p, const int8_t* input, const int8_t* filter, const int32_t* bias,
                   const int32_t* multiplier, const int32_t* shift, int8_t* output);

/* Fully connected: output[b][o] = requantize(bias[o] + sum_k (input[b][k] - input_zero_point) * weight[o][k]). */
typedef struct {
    int32_t batches, in_features, out_features;
    int32_t input_zero_point, output_zero_point;
    int32_t act_min, act_max; /* fused activation: output clamp, within [-128, 127] */
    int32_t rounding;         /* npu_quant.h NPU_ROUND_* */
} npu_dense_params;

/* input [batches][in_features], weight [out_features][in_features], bias [out_features] or NULL,
 * multiplier/shift [out_features], output [batches][out_features]. */
void npu_dense_s8(const npu_dense_params* p, const int8_t* input, const int8_t* weight, const int32_t* bias,
                  const int32_t* multiplier, const int32_t* shift, int8_t* output);

/* 16x8 (int16 activations, int8 weights; compiler/quant/reference/conv16x8.py): the same params
 * structs with both zero points 0 and the clamp in int16; an int64 bias (|bias| < 2^46) or NULL;
 * int64 accumulators; npu_requantize16 (npu_quant.h), shift in [-31, 7]. */
void npu_conv2d_s16x8(const npu_conv2d_params* p, const int16_t* input, const int8_t* filter, const int64_t* bias,
                      const int32_t* multiplier, const int32_t* shift, int16_t* output);
void npu_dense_s16x8(const npu_dense_params* p, const int16_t* input, const int8_t* weight, const int64_t* bias,
                     const int32_t* multiplier, const int32_t* shift, int16_t* output);
/* The int8 <-> int16 rescales around a 16x8 layer: npu_kernels_elementwise.h npu_requantize_s8_s16 / _s16_s8. */

#ifdef __cplusplus
}
#endif

#endif /* NPU_KERNELS_CONV_H */
