/* Fixed-point requantisation shared by every INT8 kernel: TFLite's single-rounding arithmetic.
 *
 * real multiplier M ~= multiplier * 2^(shift - 31), multiplier in [2^30, 2^31).
 * compiler/quant/fixed_point.py is the same arithmetic in NumPy; tests demand bit equality.
 * Header-only (static inline) so that generated code and every kernel inline it.
 * C99, no libc beyond <stdint.h>: it also builds freestanding for RISC-V.
 */
#ifndef NPU_QUANT_H
#define NPU_QUANT_H

#include <stdint.h>

/* x * M rounded once (half up) and saturated: TFLite's MultiplyByQuantizedMultiplier built with
 * TFLITE_SINGLE_ROUNDING. shift in [-31, 30], so the rounding shift 31 - shift is in [1, 62]. */
static inline int32_t npu_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int32_t shift) {
    int total_shift = 31 - shift;
    int64_t rounded = ((int64_t)x * (int64_t)multiplier + ((int64_t)1 << (total_shift - 1))) >> total_shift;
    if (rounded > INT32_MAX) return INT32_MAX;
    if (rounded < INT32_MIN) return INT32_MIN;
    return (int32_t)rounded;
}

/* v rounded half to even (float -> int8 quantisation, as ONNX's QuantizeLinear and LiteRT's built-in
 * QUANTIZE), for |v| < 2^24: v - trunc(v) is then exact. No libm (freestanding builds). */
static inline int32_t npu_round_half_even_f32(float v) {
    int32_t whole = (int32_t)v; /* truncates toward zero */
    const float frac = v - (float)whole;
    const int32_t odd = whole & 1;
    whole += (frac > 0.5f || (frac == 0.5f && odd)) - (frac < -0.5f || (frac == -0.5f && odd));
    return whole;
}

/* x / s rounded half away from zero, of the exact quotient (LiteRT's scalar QUANTIZE divides in double;
 * for |x / s| < 256 a quotient that is no tie lies 2^-33 or more from one, so that is exact too),
 * saturated to +-256; 0 for NaN. s > 0 and normal. Only a float quotient that is a tie can be on the
 * wrong side of it: then t = the tie, s = hi + lo with 12 significant bits each, t * hi and t * lo exact
 * (t has at most 10), x - t * hi exact (Sterbenz: x is within a factor 2 of it), and x / s >= t exactly
 * when that difference >= t * lo. No libm, no double (freestanding builds without soft-float). */
static inline int32_t npu_round_quotient_half_away_f32(float x, float s) {
    const float v = x / s;
    if (v != v) return 0;
    if (v >= 256.0f) return 256;
    if (v <= -256.0f) return -256;
    const int32_t whole = (int32_t)v; /* truncates toward zero */
    const float frac = v - (float)whole;
    const int32_t away = v > 0.0f ? 1 : -1;
    if (frac != 0.5f && frac != -0.5f) return whole + (frac > 0.5f) - (frac < -0.5f);
    union { float f; uint32_t u; } bits = {s};
    bits.u &= 0xFFFFF000u; /* the top 12 of s's 24 significant bits */
    const float hi = bits.f, lo = s - hi;
    const float difference = x - v * hi; /* v is the tie t */
    const float low_part = v * lo;
    const int beyond = away > 0 ? difference >= low_part : difference <= low_part;
    return whole + (beyond ? away : 0);
}

/* int32 accumulator -> int8 with output zero point and fused-activation clamp. The zero point is
 * added in 64 bits: the multiply may have saturated to the int32 limit. */
static inline int8_t npu_requantize(int32_t acc, int32_t multiplier, int32_t shift, int32_t output_zero_point,
                                    int32_t act_min, int32_t act_max) {
    int64_t value = (int64_t)npu_multiply_by_quantized_multiplier(acc, multiplier, shift) + output_zero_point;
    value = value < act_min ? act_min : value;
    value = value > act_max ? act_max : value;
    return (int8_t)value;
}

/* The spec's rounding, chosen by the model's origin (compiler/quant/fixed_point.py): ONNX models
 * round once; TFLite models round twice, the final shift ties away from zero as TFLite's reference
 * kernels (gemmlowp, TFLite Micro, CMSIS-NN) or ties up as LiteRT's optimized CONV_2D (ruy). */
enum { NPU_ROUND_SINGLE = 0, NPU_ROUND_DOUBLE = 1, NPU_ROUND_DOUBLE_UP = 2 };

/* conv2d only: LiteRT's built-in DEPTHWISE_CONV_2D, NPU_ROUND_DOUBLE_UP in whole blocks of
 * NPU_ROUNDING_BLOCK output channels and NPU_ROUND_DOUBLE in the channels after the last one. */
enum { NPU_ROUND_BLOCKS_OF_8 = 3, NPU_ROUNDING_BLOCK = 8 };

/* gemmlowp's SaturatingRoundingDoublingHighMul: (2ab) / 2^32 rounded to nearest, ties up;
 * INT32_MIN * INT32_MIN saturates to INT32_MAX. */
static inline int32_t npu_srdhm(int32_t a, int32_t b) {
    if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;
    int64_t product = (int64_t)a * (int64_t)b;
    int64_t nudge = product >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
    return (int32_t)((product + nudge) / ((int64_t)1 << 31));
}

/* gemmlowp's RoundingDivideByPOT: x / 2^exponent, ties away from zero; exponent in [0, 31]. */
static inline int32_t npu_rounding_divide_by_pot(int32_t x, int exponent) {
    int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + ((x & mask) > threshold ? 1 : 0);
}

/* TFLite's default MultiplyByQuantizedMultiplier: x << max(shift, 0) (in int32, wrapping), the
 * rounding doubling high multiply, then a rounding shift right by max(-shift, 0): ties away from
 * zero, or (ties_up) toward +infinity as ruy does. */
static inline int32_t npu_multiply_by_quantized_multiplier_double(int32_t x, int32_t multiplier, int32_t shift,
                                                                  int ties_up) {
    int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    int32_t high = npu_srdhm((int32_t)((uint32_t)x << left), multiplier);
    if (!ties_up) return npu_rounding_divide_by_pot(high, right);
    return right == 0 ? high : (int32_t)(((int64_t)high + ((int64_t)1 << (right - 1))) >> right);
}

/* The rounding of output channel `channel` under a conv2d's code `rounding`: NPU_ROUND_BLOCKS_OF_8
 * splits at whole_blocks_end (npu_whole_blocks_end of the output channels); other codes are every
 * channel's. */
static inline int32_t npu_channel_rounding(int32_t rounding, int32_t channel, int32_t whole_blocks_end) {
    if (rounding != NPU_ROUND_BLOCKS_OF_8) return rounding;
    return channel < whole_blocks_end ? NPU_ROUND_DOUBLE_UP : NPU_ROUND_DOUBLE;
}

/* The first output channel after the last whole block of NPU_ROUNDING_BLOCK among `channels`. */
static inline int32_t npu_whole_blocks_end(int32_t channels) { return channels - channels % NPU_ROUNDING_BLOCK; }

static inline int32_t npu_multiply_rounding(int32_t x, int32_t multiplier, int32_t shift, int32_t rounding) {
    if (rounding == NPU_ROUND_SINGLE) return npu_multiply_by_quantized_multiplier(x, multiplier, shift);
    return npu_multiply_by_quantized_multiplier_double(x, multiplier, shift, rounding == NPU_ROUND_DOUBLE_UP);
}

/* npu_requantize with the spec's rounding. */
static inline int8_t npu_requantize_rounding(int32_t acc, int32_t multiplier, int32_t shift, int32_t output_zero_point,
                                             int32_t act_min, int32_t act_max, int32_t rounding) {
    int64_t value = (int64_t)npu_multiply_rounding(acc, multiplier, shift, rounding) + output_zero_point;
    value = value < act_min ? act_min : value;
    value = value > act_max ? act_max : value;
    return (int8_t)value;
}

/* 16x8 layers (int16 activations, int8 weights; compiler/quant/reference/conv16x8.py): TFLite's
 * MultiplyByQuantizedMultiplier for int64 accumulators, the multiplier rounded to 15 bits, one
 * rounding; shift in [-31, 7], |x| < 2^47. The int64 result is clamped by the caller (TFLite
 * truncates it to int32, asserting it fits). */
static inline int64_t npu_multiply_by_quantized_multiplier_16(int64_t x, int32_t multiplier, int32_t shift) {
    const int64_t reduced = multiplier < 0x7FFF0000 ? ((int64_t)multiplier + (1 << 15)) >> 16 : 0x7FFF;
    const int total_shift = 15 - shift;
    return (x * reduced + ((int64_t)1 << (total_shift - 1))) >> total_shift;
}

/* int64 accumulator -> int16, clamped to [act_min, act_max] (zero points are 0). */
static inline int16_t npu_requantize16(int64_t acc, int32_t multiplier, int32_t shift, int32_t act_min, int32_t act_max) {
    int64_t value = npu_multiply_by_quantized_multiplier_16(acc, multiplier, shift);
    value = value < act_min ? act_min : value;
    value = value > act_max ? act_max : value;
    return (int16_t)value;
}

#endif /* NPU_QUANT_H */
