/* INT8 PReLU with a per-channel slope (TFLite int8 PRELU, reference_ops::BroadcastPrelu4DSlow), both
 * branches requantised with the spec's rounding (`rounding`, npu_quant.h NPU_ROUND_*: one rounding
 * for ONNX models, gemmlowp's double rounding for TFLite ones; see compiler/quant/reference/prelu.py):
 *   v   = in - input_zero_point
 *   out = clamp((v >= 0 ? MBQM(v, positive_multiplier, positive_shift)
 *                       : MBQM(v * (alpha[c] - alpha_zero_point), negative_multiplier, negative_shift))
 *               + output_zero_point, act_min, act_max)
 * with positive_multiplier/shift from s_in / s_out and negative_multiplier/shift from
 * s_in * s_alpha / s_out (npu_quant.h's form: positive shift = left). input and output are
 * [outer][channels] (NHWC flattened: outer = N * H * W), alpha is int8 [channels] (a scalar slope
 * is passed repeated). The product has at most 17 bits, so both multipliers may be anything in
 * [0, 2^31) and both shifts anything in [-31, 30]; the zero-point add is done in 64 bits.
 * outer * channels < 2^31. C99, <stdint.h> (and npu_quant.h) only; builds freestanding. */
#ifndef NPU_KERNELS_PRELU_H
#define NPU_KERNELS_PRELU_H

#include <stdint.h>

#include "npu_quant.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int32_t outer, channels;
    int32_t input_zero_point, alpha_zero_point, output_zero_point;
    int32_t positive_multiplier, positive_shift;
    int32_t negative_multiplier, negative_shift;
    int32_t act_min, act_max; /* fused activation: output clamp, within [-128, 127] */
    int32_t rounding;         /* npu_quant.h NPU_ROUND_*: 0 (left out of an initialiser) rounds once */
} npu_prelu_params;

void npu_prelu_s8(const npu_prelu_params* p, const int8_t* input, const int8_t* alpha, int8_t* output);

/* One output from v = in - input_zero_point and its channel's slope *slope = alpha - alpha_zero_point
 * (read only where v < 0), with `rounding`: the reference's loop body, which the SIMD families' scalar
 * tails call too. |v| <= 255 and |slope| <= 255: the product has at most 17 bits. */
static inline int8_t npu_prelu_value(const npu_prelu_params* p, int32_t v, const int32_t* slope, int32_t rounding) {
    return v >= 0 ? npu_requantize_rounding(v, p->positive_multiplier, p->positive_shift, p->output_zero_point,
                                            p->act_min, p->act_max, rounding)
                  : npu_requantize_rounding(v * *slope, p->negative_multiplier, p->negative_shift, p->output_zero_point,
                                            p->act_min, p->act_max, rounding);
}

#ifdef __cplusplus
}
#endif

#endif /* NPU_KERNELS_PRELU_H */
