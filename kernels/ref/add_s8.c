/* INT8 element-wise kernels: residual add / subtract, multiply, requantize, table lookup, quantize, dequantize.
 * Spec: compiler/quant/reference/elementwise.py (bit-exact); declarations in npu_kernels_elementwise.h.
 * C99, <stdint.h> only, no libc: builds freestanding. */
#include <stdint.h>

#include "npu_kernels_elementwise.h"
#include "npu_quant.h"

static inline int32_t clamp_i64(int64_t v, int32_t lo, int32_t hi) {
    return v < lo ? lo : (v > hi ? hi : (int32_t)v);
}

/* in_i rescaled: MBQM(sign * (in - zp) << left_shift, multiplier, shift) with `rounding`. |in - zp| <= 255
 * and left_shift <= 20: the shifted value fits int32, as does the scaled one (shift <= 0 never grows it). */
static inline int32_t add_input(int8_t in, int32_t zero_point, int32_t sign_shifted, int32_t multiplier,
                                int32_t shift, int32_t rounding) {
    return npu_multiply_rounding(((int32_t)in - zero_point) * sign_shifted, multiplier, shift, rounding);
}

void npu_add_s8(const npu_add_params* p, const int8_t* input1, const int8_t* input2, int8_t* output) {
    const int32_t one_shifted = (int32_t)1 << p->left_shift;
    const int32_t channels = p->channels;
    int32_t i = 0; /* index into input1 and output */
    for (int32_t b = 0; b < p->batches; ++b) {
        for (int32_t px = 0; px < p->pixels; ++px) {
            for (int32_t c = 0; c < channels; ++c, ++i) {
                const int32_t j = p->broadcast ? b * channels + c : i; /* index into input2 */
                const int32_t scaled1 = add_input(input1[i], p->input1_zero_point, one_shifted, p->input1_multiplier,
                                                  p->input1_shift, p->rounding);
                const int32_t scaled2 = add_input(input2[j], p->input2_zero_point,
                                                  p->subtract ? -one_shifted : one_shifted, p->input2_multiplier,
                                                  p->input2_shift, p->rounding);
                /* |scaled_i| < 2^28: the sum fits int32. */
                output[i] = npu_requantize_rounding(scaled1 + scaled2, p->output_multiplier, p->output_shift,
                                                    p->output_zero_point, p->act_min, p->act_max, p->rounding);
            }
        }
    }
}

void npu_mul_s8(const npu_mul_params* p, const int8_t* input1, const int8_t* input2, int8_t* output) {
    const int32_t channels = p->channels;
    int32_t i = 0; /* index into input1 and output */
    for (int32_t b = 0; b < p->batches; ++b) {
        for (int32_t px = 0; px < p->pixels; ++px) {
            for (int32_t c = 0; c < channels; ++c, ++i) {
                const int32_t j = p->broadcast ? b * channels + c : i; /* index into input2 */
                /* |in - zp| <= 255: the product has at most 17 bits. */
                const int32_t product =
                    ((int32_t)input1[i] - p->input1_zero_point) * ((int32_t)input2[j] - p->input2_zero_point);
                output[i] = npu_requantize_rounding(product, p->output_multiplier, p->output_shift,
                                                    p->output_zero_point, p->act_min, p->act_max, p->rounding);
            }
        }
    }
}

void npu_requantize_s8(const npu_requantize_params* p, const int8_t* input, int8_t* output) {
    for (int32_t i = 0; i < p->size; ++i) {
        const int32_t scaled =
            npu_multiply_by_quantized_multiplier((int32_t)input[i] - p->input_zero_point, p->multiplier, p->shift);
        output[i] = (int8_t)clamp_i64((int64_t)scaled + p->output_zero_point, p->act_min, p->act_max);
    }
}

void npu_lut_s8(const npu_lut_params* p, const int8_t* input, const int8_t* table, int8_t* output) {
    for (int32_t i = 0; i < p->size; ++i)
        output[i] = table[(int32_t)input[i] + 128];
}

/* v rounded half to even, saturated to +-256 (beyond it every zero point saturates); 0 for NaN. */
static inline int32_t round_saturated(float v) {
    if (v != v) return 0; /* NaN */
    if (v >= 256.0f) return 256;
    if (v <= -256.0f) return -256;
    return npu_round_half_even_f32(v);
}

void npu_quantize_f32_s8(const npu_quantize_params* p, const float* input, int8_t* output) {
    const int32_t blocked = p->block > 0 ? p->size - p->size % p->block : 0;
    for (int32_t i = 0; i < blocked; ++i) {
        const float v = input[i] * p->reciprocal;
        output[i] = (int8_t)clamp_i64((int64_t)round_saturated(v) + p->zero_point, -128, 127);
    }
    for (int32_t i = blocked; i < p->size; ++i) {
        const int32_t rounded = p->block > 0 ? npu_round_quotient_half_away_f32(input[i], p->scale)
                                             : round_saturated(input[i] / p->scale);
        output[i] = (int8_t)clamp_i64((int64_t)rounded + p->zero_point, -128, 127);
    }
}

void npu_dequantize_s8_f32(const npu_quantize_params* p, const int8_t* input, float* output) {
    const int32_t blocked = p->block > 0 ? p->size - p->size % p->block : 0;
    const float offset = (float)(-p->zero_point) * p->scale;
    for (int32_t i = 0; i < blocked; ++i) {
        /* Two statements: the product is rounded before the add (no fused multiply-add under
         * -ffp-contract=on, clang's default). */
        const float product = (float)input[i] * p->scale;
        output[i] = product + offset;
    }
    for (int32_t i = blocked; i < p->size; ++i) {
        output[i] = p->scale * (float)((int32_t)input[i] - p->zero_point);
    }
}
