/* INT8 element-wise, pooling and data-movement kernels: declarations and params structs.
 *
 * Reference implementations in kernels/ref/add_s8.c (add, mul, requantize, table lookup, quantize, dequantize),
 * kernels/ref/pool_s8.c (average / max / global average pool) and kernels/ref/concat_pad_s8.c;
 * the spec is compiler/quant/reference/{elementwise,pool}.py (TFLite's reference_integer_ops
 * Add, Mul, AveragePool, MaxPool, Mean and reference_ops Requantize, AffineQuantize, Dequantize) and
 * tests demand bit equality. ABI as in kernels/README.md: activations NHWC, zero points passed
 * as themselves, multiplier/shift as in npu_quant.h (positive shift = left).
 * C99, <stdint.h> only; builds freestanding.
 */
#ifndef NPU_KERNELS_ELEMENTWISE_H
#define NPU_KERNELS_ELEMENTWISE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- element-wise (add_s8.c) ---- */

/* Add or subtract of two int8 tensors (TFLite int8 ADD / SUB):
 *   v_1 = MBQM((in_1 - input1_zero_point) << left_shift, input1_multiplier, input1_shift)
 *   v_2 = MBQM(+-(in_2 - input2_zero_point) << left_shift, input2_multiplier, input2_shift)
 *   out = clamp(MBQM(v_1 + v_2, output_multiplier, output_shift) + output_zero_point, act_min, act_max)
 * with MBQM rounding as `rounding` says (npu_quant.h NPU_ROUND_*: once for ONNX models, gemmlowp's
 * double rounding for TFLite ones, whose ADD rescales all three so) and input2 negated when
 * subtract == 1: TFLite's SUB negates input2's multiplier, the same product.
 * input1 and output are [batches][pixels][channels]; input2 is the same shape when broadcast == 0,
 * or [batches][channels] when broadcast == 1: one value per channel for every pixel (a [N,H,W,C]
 * tensor and a [N,1,1,C] one). batches * pixels * channels < 2^31.
 * left_shift in [0, 20] (TFLite: 20); all three shifts <= 0 (TFLite's "smaller than one"
 * multipliers), which keeps every intermediate in int32. */
typedef struct {
    int32_t batches, pixels, channels;
    int32_t broadcast; /* 0: input2 like input1; 1: input2 [batches][channels] */
    int32_t subtract;  /* 0: input1 + input2; 1: input1 - input2 */
    int32_t left_shift;
    int32_t input1_zero_point, input1_multiplier, input1_shift;
    int32_t input2_zero_point, input2_multiplier, input2_shift;
    int32_t output_zero_point, output_multiplier, output_shift;
    int32_t act_min, act_max; /* fused activation: output clamp, within [-128, 127] */
    int32_t rounding;         /* npu_quant.h NPU_ROUND_*: 0 (left out of an initialiser) rounds once */
} npu_add_params;

void npu_add_s8(const npu_add_params* p, const int8_t* input1, const int8_t* input2, int8_t* output);

/* Element-wise multiply (TFLite int8 MUL, reference_integer_ops::MulElementwise), one rounding:
 *   out = clamp(MBQM((in1 - input1_zero_point) * (in2 - input2_zero_point), output_multiplier, output_shift)
 *               + output_zero_point, act_min, act_max)
 * input1 and output are [batches][pixels][channels]; input2 is the same shape when broadcast == 0,
 * or [batches][channels] when broadcast == 1: one value per channel, the same for every pixel (a
 * [N,H,W,C] tensor times a [N,1,1,C] one, as squeeze-excite blocks do). The product has at most 17
 * bits, so output_multiplier may be anything in [0, 2^31) and output_shift anything in [-31, 30];
 * the zero-point add is done in 64 bits, so a saturating shift cannot overflow.
 * batches * pixels * channels < 2^31. */
typedef struct {
    int32_t batches, pixels, channels;
    int32_t broadcast; /* 0: input2 like input1; 1: input2 [batches][channels] */
    int32_t input1_zero_point, input2_zero_point, output_zero_point;
    int32_t output_multiplier, output_shift;
    int32_t act_min, act_max; /* fused activation: output clamp, within [-128, 127] */
    int32_t rounding;         /* npu_quant.h NPU_ROUND_*: 0 (left out of an initialiser) rounds once */
} npu_mul_params;

void npu_mul_s8(const npu_mul_params* p, const int8_t* input1, const int8_t* input2, int8_t* output);

/* int8 -> int8 rescale (TFLite Requantize):
 *   out = clamp(MBQM(in - input_zero_point, multiplier, shift) + output_zero_point, act_min, act_max)
 * shift in [-31, 30]; the zero-point add is done in 64 bits, so a saturating shift cannot overflow. */
typedef struct {
    int32_t size;
    int32_t input_zero_point, output_zero_point;
    int32_t multiplier, shift;
    int32_t act_min, act_max;
} npu_requantize_params;

void npu_requantize_s8(const npu_requantize_params* p, const int8_t* input, int8_t* output);

/* The rescales around a 16x8 layer (kernels/ref/conv16x8.c; compiler/quant/reference/conv16x8.py), one rounding:
 *   s8 -> s16: clamp(MBQM(in - input_zero_point, multiplier, shift), act_min, act_max)   (output zero point 0)
 *   s16 -> s8: clamp(MBQM(in, multiplier, shift) + output_zero_point, act_min, act_max)   (input zero point 0)
 * act_min / act_max within the output type. */
void npu_requantize_s8_s16(const npu_requantize_params* p, const int8_t* input, int16_t* output);
void npu_requantize_s16_s8(const npu_requantize_params* p, const int16_t* input, int8_t* output);

/* Any int8 -> int8 function of one element (sigmoid, tanh, hard-swish, SiLU, leaky ReLU, ... at
 * their quantisation parameters): a 256-entry table built at compile time, as TFLite does for
 * LOGISTIC and TANH (compiler/quant/reference/lut.py):
 *   out = table[in + 128] */
typedef struct {
    int32_t size;
} npu_lut_params;

void npu_lut_s8(const npu_lut_params* p, const int8_t* input, const int8_t* table, int8_t* output);

/* Host-boundary conversions (TFLite AffineQuantize / Dequantize), float32 arithmetic:
 *   quantize:   out = clamp(round_half_to_even(in / scale) + zero_point, -128, 127), NaN -> zero_point
 *   dequantize: out = scale * (float)(in - zero_point)  (one rounding)
 * except that with block > 0 the elements [0, size - size % block) of the flat tensor take the form
 * LiteRT's optimized kernels give their whole vector blocks (block 8), and quantize's others theirs:
 *   quantize:   [0, blocked): clamp(round_half_to_even(in * reciprocal) + zero_point)  (the product rounded)
 *               the rest:     clamp(round_half_away_from_zero(in / scale, exactly) + zero_point)
 *   dequantize: [0, blocked): out = (float)in * scale + (float)(-zero_point) * scale  (each product
 *               rounded, then the sum)
 * reciprocal = (float)(1.0 / (double)scale), read only by a blocked quantize. ONNX models: block 0
 * (left out of an initialiser); TFLite models: compiler/quant/integer_spec.py QUANTIZE_BLOCK and
 * DEQUANTIZE_BLOCK. */
typedef struct {
    int32_t size;
    float scale; /* > 0, normal */
    int32_t zero_point;
    int32_t block; /* >= 0 */
    float reciprocal;
} npu_quantize_params;

void npu_quantize_f32_s8(const npu_quantize_params* p, const float* input, int8_t* output);
void npu_dequantize_s8_f32(const npu_quantize_params* p, const int8_t* input, float* output);

/* ---- pooling (pool_s8.c) ---- */

/* 2-D average / max pooling, input [batches][in_h][in_w][channels] -> output
 * [batches][out_h][out_w][channels]. Only the top/left padding is needed: out_h and out_w fix
 * the bottom/right padding, out_h = (in_h + pad_top + pad_bottom - kernel_h) / stride_h + 1.
 * Output pixel (y, x) pools input rows y * stride_h - pad_top + [0, kernel_h) clipped to
 * [0, in_h) (columns likewise); padded elements are ignored, not counted.
 * Average: (sum > 0 ? sum + count / 2 : sum - count / 2) / count over the valid elements
 * (input and output share scale and zero point); max: the largest valid element; both then
 * clamped to [act_min, act_max]. kernel_h * kernel_w <= 2^23. The caller guarantees every
 * window holds at least one valid element (the bindings reject others); an empty window
 * yields clamp(0) (average) or act_min (max). */
typedef struct {
    int32_t batches, in_h, in_w, channels;
    int32_t out_h, out_w;
    int32_t kernel_h, kernel_w;
    int32_t stride_h, stride_w;
    int32_t pad_top, pad_left;
    int32_t act_min, act_max; /* fused activation: output clamp, within [-128, 127] */
} npu_pool_params;

typedef npu_pool_params npu_avgpool_params;
typedef npu_pool_params npu_maxpool_params;

void npu_avg_pool_s8(const npu_avgpool_params* p, const int8_t* input, int8_t* output);
void npu_max_pool_s8(const npu_maxpool_params* p, const int8_t* input, int8_t* output);

/* Global average pool = int8 MEAN over H, W: [batches][in_h][in_w][channels] ->
 * [batches][1][1][channels], n = in_h * in_w (1 <= n <= 2^23):
 *   out = clamp(MBQM(sum (in - input_zero_point), multiplier, shift) + output_zero_point + bias, act_min, act_max)
 * with multiplier/shift from s_in / (s_out * n): the 1/n is folded in. MBQM rounds as
 * block_rounding in the channels of whole blocks of NPU_MEAN_BLOCK ([0, channels - channels % 16))
 * and as rounding in the others (npu_quant.h NPU_ROUND_*). ONNX models: all 0 (one rounding);
 * TFLite models: LiteRT's optimized MEAN with keep_dims, its reference MEAN without
 * (compiler/quant/reference/pool.py litert_mean_params, litert_reference_mean_params). */
#define NPU_MEAN_BLOCK 16
typedef struct {
    int32_t batches, in_h, in_w, channels;
    int32_t input_zero_point, output_zero_point;
    int32_t multiplier, shift;
    int32_t act_min, act_max; /* TFLite MEAN: [-128, 127] */
    int32_t bias;             /* |bias| <= 2^30; 0 (left out of an initialiser) for ONNX models */
    int32_t rounding, block_rounding;
} npu_mean_params;

void npu_global_avg_pool_s8(const npu_mean_params* p, const int8_t* input, int8_t* output);

/* ---- data movement (concat_pad_s8.c) ---- */

/* Concatenation along one axis of a row-major tensor: for each of `outer` (product of the
 * dimensions before the axis) slices, each input in turn contributes `size` contiguous
 * elements (its extent along the axis times the product of the dimensions after it; for the
 * channel axis of NHWC, outer = N * H * W and size = C_i). Each element becomes
 *   clamp(MBQM(in - zero_point, multiplier, shift) + output_zero_point, -128, 127);
 * an input with multiplier 2^30, shift 1 and zero_point == output_zero_point (same scale and
 * zero point as the output: the identity) is copied. */
typedef struct {
    int32_t size;
    int32_t zero_point, multiplier, shift;
} npu_concat_input;

typedef struct {
    int32_t outer;
    int32_t num_inputs;
    const npu_concat_input* inputs; /* [num_inputs] */
    int32_t output_zero_point;
} npu_concat_params;

/* inputs[i]: [outer][p->inputs[i].size]; output: [outer][sum of sizes]. */
void npu_concat_s8(const npu_concat_params* p, const int8_t* const* inputs, int8_t* output);

/* Constant pad of an NHWC tensor: output dims d = pad_before[d] + in_dims[d] + pad_after[d],
 * elements outside the input = pad_value (the zero point). */
typedef struct {
    int32_t in_dims[4];
    int32_t pad_before[4], pad_after[4];
    int32_t pad_value;
} npu_pad_params;

void npu_pad_s8(const npu_pad_params* p, const int8_t* input, int8_t* output);

#ifdef __cplusplus
}
#endif

#endif /* NPU_KERNELS_ELEMENTWISE_H */
