/* INT8 softmax along the innermost axis (TFLite int8 SOFTMAX, gemmlowp fixed point).
 * Spec: compiler/quant/reference/softmax.py (bit-exact, and the rounding of every step);
 * declaration in npu_kernels_softmax.h. Softmax does not use npu_quant.h's single-rounding
 * requantisation: its arithmetic is gemmlowp's own (SRDHM, RoundingDivideByPOT), as TFLite's.
 * C99, <stdint.h> only, no libc: builds freestanding. */
#include <stdint.h>

#include "npu_kernels_softmax.h"

/* gemmlowp's SaturatingRoundingDoublingHighMul: nudge by the product's sign, divide truncating. */
static int32_t srdhm(int32_t a, int32_t b) {
    if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;
    const int64_t ab = (int64_t)a * (int64_t)b;
    const int64_t nudge = ab >= 0 ? (1 << 30) : 1 - (1 << 30);
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

/* gemmlowp's RoundingDivideByPOT (half away from zero), in 64 bits so that the output stage's
 * exponent may exceed gemmlowp's 31 (up to 34) and still round exactly. */
static int64_t rounding_divide_by_pot(int64_t x, int exponent) {
    const int64_t mask = ((int64_t)1 << exponent) - 1;
    const int64_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + ((x & mask) > threshold ? 1 : 0);
}

/* SaturatingRoundingMultiplyByPOT with a positive exponent: x * 2^exponent clamped to int32. */
static int32_t saturating_shift_left(int32_t x, int exponent) {
    const int64_t shifted = (int64_t)x * ((int64_t)1 << exponent);
    return shifted > INT32_MAX ? INT32_MAX : shifted < INT32_MIN ? INT32_MIN : (int32_t)shifted;
}

/* exp(a) for Q0.31 a in [-1/4, 0), Taylor series around -1/8. Every sum stays far inside int32
 * (|x| <= 1/8, so each power and partial sum is below 2^28). */
static int32_t exp_on_interval_between_negative_one_quarter_and_0_excl(int32_t a) {
    const int32_t exp_minus_one_eighth = 1895147668, one_third = 715827883;
    const int32_t x = a + (1 << 28);
    const int32_t x2 = srdhm(x, x), x3 = srdhm(x2, x), x4 = srdhm(x2, x2);
    const int32_t x4_over_4 = (int32_t)rounding_divide_by_pot(x4, 2);
    const int32_t poly = (int32_t)rounding_divide_by_pot(srdhm(x4_over_4 + x3, one_third) + x2, 1);
    return exp_minus_one_eighth + srdhm(exp_minus_one_eighth, x + poly);
}

/* exp(a) for Q5.26 a <= 0, as Q0.31: the fraction of a quarter by the series, then one factor
 * exp(-2^k) (Q0.31) per set bit of the whole quarters cut off. */
static int32_t exp_on_negative_values(int32_t a) {
    static const int32_t barrel[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
    const int32_t quarter = 1 << 24; /* 1/4 in Q5.26 */
    const int32_t a_mod_quarter_minus_quarter = (a & (quarter - 1)) - quarter;
    int32_t result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        saturating_shift_left(a_mod_quarter_minus_quarter, 5));
    /* a >= -2^31 and a_mod... >= -2^24: the difference fits int32. */
    const int32_t remainder = a_mod_quarter_minus_quarter - a;
    for (int k = 0; k < 7; ++k) { /* bit 24 + k is exp(-2^(k - 2)) */
        if (remainder & ((int32_t)1 << (24 + k))) result = srdhm(result, barrel[k]);
    }
    return a == 0 ? INT32_MAX : result;
}

/* 1 / (1 + a) for Q0.31 a in [0, 1): Newton-Raphson in Q2.29, as gemmlowp. */
static int32_t one_over_one_plus_x_for_x_in_0_1(int32_t a) {
    /* RoundingHalfSum(a, One = INT32_MAX) with a >= 0: (a + INT32_MAX + 1) / 2. */
    const int32_t half_denominator = (int32_t)(((int64_t)a + INT32_MAX + 1) / 2);
    int32_t x = 1515870810 + srdhm(half_denominator, -1010580540); /* 48/17 - 32/17 * d, Q2.29 */
    for (int i = 0; i < 3; ++i) {
        const int32_t one_minus = (1 << 29) - srdhm(half_denominator, x);
        x = x + saturating_shift_left(srdhm(x, one_minus), 2);
    }
    return saturating_shift_left(x, 1);
}

static int count_leading_zeros(uint32_t x) {
    int n = 0;
    for (uint32_t bit = (uint32_t)1 << 31; bit != 0 && !(x & bit); bit >>= 1) ++n;
    return n;
}

/* The exp of one element, or -1 when its difference from the row maximum is below diff_min. */
static int32_t element_exp(const npu_softmax_params* p, int32_t diff) {
    if (diff < p->diff_min) return -1;
    /* MultiplyByQuantizedMultiplierGreaterThanOne; the shifted diff fits int32 (the binding checks). */
    const int32_t shifted = (int32_t)((int64_t)diff * ((int64_t)1 << p->input_left_shift));
    return exp_on_negative_values(srdhm(shifted, p->input_multiplier));
}

static void softmax_row(const npu_softmax_params* p, const int8_t* input, int8_t* output) {
    const int32_t depth = p->depth;
    int32_t max_in = INT8_MIN;
    for (int32_t c = 0; c < depth; ++c) max_in = input[c] > max_in ? input[c] : max_in;
    /* Sum in Q12.19; terms are >= 0, so saturating is one compare (TFLite overflows at depth >= 4096). */
    int32_t sum = 0;
    for (int32_t c = 0; c < depth; ++c) {
        const int32_t e = element_exp(p, input[c] - max_in);
        if (e < 0) continue;
        const int32_t term = (int32_t)rounding_divide_by_pot(e, 12);
        sum = sum > INT32_MAX - term ? INT32_MAX : sum + term;
    }
    /* GetReciprocal(sum, 12): sum >= 1.0 (the maximum's own term), so num_bits_over_unit >= 0. */
    const int headroom_plus_one = count_leading_zeros((uint32_t)sum);
    const int exponent = 12 - headroom_plus_one + 31 - 8; /* up to 34 */
    const int32_t scale = one_over_one_plus_x_for_x_in_0_1(
        (int32_t)(((uint32_t)sum << headroom_plus_one) - ((uint32_t)1 << 31)));
    for (int32_t c = 0; c < depth; ++c) {
        const int32_t e = element_exp(p, input[c] - max_in);
        int64_t out = e < 0 ? INT8_MIN : rounding_divide_by_pot(srdhm(scale, e), exponent) - 128;
        output[c] = (int8_t)(out > INT8_MAX ? INT8_MAX : out);
    }
}

void npu_softmax_s8(const npu_softmax_params* p, const int8_t* input, int8_t* output) {
    for (int32_t r = 0; r < p->rows; ++r) {
        softmax_row(p, input + (int64_t)r * p->depth, output + (int64_t)r * p->depth);
    }
}
