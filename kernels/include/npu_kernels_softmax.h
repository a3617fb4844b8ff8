/* INT8 softmax along the innermost axis, as TFLite Micro's int8 SOFTMAX (tflite::reference_ops::Softmax
 * for int8 in and out, gemmlowp fixed point): per row,
 *   max_in = max(row); for each x: diff = x - max_in; if diff >= diff_min:
 *       e = exp_on_negative_values(FixedPoint<int32, 5>(MBQM-greater-than-one(diff, input_multiplier, input_left_shift)))
 *   sum of e in FixedPoint<int32, 12>; reciprocal by GetReciprocal (one_over_one_plus_x_for_x_in_0_1);
 *   out = clamp(RoundingDivideByPOT(SRDHM(shifted_scale, e), num_bits_over_unit + 31 - 8) - 128, -128, 127)
 * (exactly as TFLite's reference_ops::Softmax(SoftmaxParams, int8 -> int8); elements with
 * diff < diff_min give -128). The output scale is 1/256 and its zero point -128, as TFLite requires.
 * compiler/quant/reference/softmax.py is the bit-exact NumPy spec and derives the params from the
 * input scale and beta (TFLite's PreprocessSoftmaxScaling and CalculateInputRadius, 5 integer bits).
 * rows * depth < 2^31, depth >= 1. C99, <stdint.h> only; builds freestanding. */
#ifndef NPU_KERNELS_SOFTMAX_H
#define NPU_KERNELS_SOFTMAX_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int32_t rows;  /* product of the outer extents */
    int32_t depth; /* the softmax axis (innermost) */
    int32_t input_multiplier;
    int32_t input_left_shift;
    int32_t diff_min; /* <= 0 */
} npu_softmax_params;

void npu_softmax_s8(const npu_softmax_params* p, const int8_t* input, int8_t* output);

#ifdef __cplusplus
}
#endif

#endif /* NPU_KERNELS_SOFTMAX_H */
