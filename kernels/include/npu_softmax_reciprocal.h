/* The int8 softmax's per-row reciprocal for the generated kernels (RVV, x86, NEON: cpp/src/softmax.cc,
 * x86_elementwise.cc, neon_elementwise.cc): gemmlowp's GetReciprocal(sum, 12 integer bits) with
 * one_over_one_plus_x_for_x_in_0_1, as kernels/ref/softmax_s8.c computes it. Its SRDHMs are
 * floor((a b + 2^30) / 2^31): gemmlowp's SRDHM for either sign of a b (ceil((ab + 1 - 2^30) / 2^31)
 * = floor((ab + 2^30) / 2^31) for ab < 0), with no INT32_MIN * INT32_MIN among these operands.
 * C99, <stdint.h> only. */
#ifndef NPU_SOFTMAX_RECIPROCAL_H
#define NPU_SOFTMAX_RECIPROCAL_H

#include <stdint.h>

/* A three-step loop a vectoriser would only slow down (clang would vectorise it for RVV). */
#if defined(__clang__)
#define NPU_SOFTMAX_SCALAR_LOOP _Pragma("clang loop vectorize(disable)")
#else
#define NPU_SOFTMAX_SCALAR_LOOP
#endif

static inline int32_t npu_softmax_srdhm(int32_t a, int32_t b) {
    return (int32_t)(((int64_t)a * b + ((int64_t)1 << 30)) >> 31);
}

/* SaturatingRoundingMultiplyByPOT, shift > 0: gemmlowp's, saturating beyond +-(INT32_MAX >> shift). */
static inline int32_t npu_softmax_shift_left(int32_t x, int shift) {
    const int32_t threshold = INT32_MAX >> shift;
    return x > threshold ? INT32_MAX : x < -threshold ? INT32_MIN : (int32_t)((uint32_t)x << shift);
}

/* 1 / sum as Q0.31 and the output's rounding shift num_bits_over_unit + 23 in *exponent; sum is the
 * Q12.19 sum of a row's exps, >= 2^19 (1.0: the row maximum's own term). */
static inline int32_t npu_softmax_reciprocal(int32_t sum, int32_t* exponent) {
    const int headroom_plus_one = __builtin_clz((uint32_t)sum);
    *exponent = 12 - headroom_plus_one + 31 - 8;
    const uint32_t x_minus_one = ((uint32_t)sum << headroom_plus_one) - 0x80000000u;
    const int32_t half = (int32_t)(((int64_t)x_minus_one + 0x80000000LL) >> 1); /* RoundingHalfSum(a, 1) */
    int32_t x = 1515870810 + npu_softmax_srdhm(half, -1010580540);              /* 48/17 - 32/17 half, Q2.29 */
    NPU_SOFTMAX_SCALAR_LOOP
    for (int i = 0; i < 3; ++i) {
        const int32_t one_minus = (1 << 29) - npu_softmax_srdhm(half, x);
        x += npu_softmax_shift_left(npu_softmax_srdhm(x, one_minus), 2);
    }
    return npu_softmax_shift_left(x, 1);
}

/* One output from its exp e (>= 0) and the row's scale and exponent (<= 31):
 * sat8(RoundingDivideByPOT(SRDHM(scale, e), exponent) - 128); both values >= 0, so the rounding is
 * half up and q + half < 2^32. */
static inline int8_t npu_softmax_output(int32_t scale, int32_t e, int32_t exponent) {
    const uint32_t q = (uint32_t)npu_softmax_srdhm(scale, e);
    const int32_t o = (int32_t)((q + (1u << (exponent - 1))) >> exponent) - 128;
    return (int8_t)(o > 127 ? 127 : o);
}

#endif /* NPU_SOFTMAX_RECIPROCAL_H */
