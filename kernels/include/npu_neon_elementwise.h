/* arm64 NEON element-wise microkernels (cpp/src/neon_elementwise.cc emits the calls): 256-entry
 * table lookups (lut: sigmoid, hard-swish, ...; requantize) and the residual add / subtract with its
 * squeeze-excite style broadcast, over the reference's own params struct. Bit-exact to kernels/ref
 * (tests/coral/test_arm64_target.py, in qemu-aarch64). */
#ifndef NPU_NEON_ELEMENTWISE_H
#define NPU_NEON_ELEMENTWISE_H

#include <arm_neon.h>
#include <stdint.h>

#include "npu_kernels_elementwise.h"
#include "npu_kernels_prelu.h"
#include "npu_kernels_resize.h"
#include "npu_pool_window.h"
#include "npu_quant.h"
#include "npu_softmax_reciprocal.h"

#define NPU_NEON_EW static inline __attribute__((always_inline))

/* y[i] = table[(uint8_t)x[i]] for i in [begin, end): the table as four 64-byte blocks held in 16
 * registers; tbl looks up the first block (an index past it gives 0), tbx the others (the index less
 * the block's start; past the block the previous result stays), 16 bytes at a time. */
static __attribute__((noinline, unused)) void npu_neon_lookup(const int8_t* table, const int8_t* x, int8_t* y,
                                                              int64_t begin, int64_t end) {
    const int8x16x4_t t0 = vld1q_s8_x4(table), t1 = vld1q_s8_x4(table + 64), t2 = vld1q_s8_x4(table + 128),
                      t3 = vld1q_s8_x4(table + 192);
    int64_t i = begin;
    for (; i + 16 <= end; i += 16) {
        const uint8x16_t index = vreinterpretq_u8_s8(vld1q_s8(x + i));
        int8x16_t r = vqtbl4q_s8(t0, index);
        r = vqtbx4q_s8(r, t1, vsubq_u8(index, vdupq_n_u8(64)));
        r = vqtbx4q_s8(r, t2, vsubq_u8(index, vdupq_n_u8(128)));
        r = vqtbx4q_s8(r, t3, vsubq_u8(index, vdupq_n_u8(192)));
        vst1q_s8(y + i, r);
    }
    for (; i < end; ++i) y[i] = table[(uint8_t)x[i]];
}

/* Byte moves of the data-movement kernels (pad, concat): 64 bytes per step (four registers), then 16,
 * then single bytes. Written out rather than left to the compiler, whose loops would become calls to
 * the runtime's plain-C memcpy / memset. */
static __attribute__((unused)) void npu_neon_copy(int8_t* dst, const int8_t* src, int64_t n) {
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) vst1q_s8_x4(dst + i, vld1q_s8_x4(src + i));
    for (; i + 16 <= n; i += 16) vst1q_s8(dst + i, vld1q_s8(src + i));
    for (; i < n; ++i) dst[i] = src[i];
}

static __attribute__((unused)) void npu_neon_fill(int8_t* dst, int8_t value, int64_t n) {
    const int8x16_t v = vdupq_n_s8(value);
    const int8x16x4_t v4 = {{v, v, v, v}};
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) vst1q_s8_x4(dst + i, v4);
    for (; i + 16 <= n; i += 16) vst1q_s8(dst + i, v);
    for (; i < n; ++i) dst[i] = value;
}

/* npu_multiply_by_quantized_multiplier on 4 lanes (single rounding): 64-bit products, the rounding
 * right shift of srshl by 31 - shift, saturated to int32 as the reference. */
NPU_NEON_EW int32x4_t npu_neon_mbqm4(int32x4_t x, int32_t multiplier, int64x2_t right) {
    const int64x2_t lo = vrshlq_s64(vmull_n_s32(vget_low_s32(x), multiplier), right);
    const int64x2_t hi = vrshlq_s64(vmull_high_n_s32(x, multiplier), right);
    return vcombine_s32(vqmovn_s64(lo), vqmovn_s64(hi));
}

/* npu_multiply_by_quantized_multiplier_double (TFLite's two roundings) on 4 lanes: x << max(shift, 0)
 * (wrapping, as the reference), gemmlowp's SRDHM, which is sqrdmulh exactly (floor((x m + 2^30) / 2^31)
 * for either sign, MIN * MIN saturated), then the rounding shift right by max(-shift, 0): ties up as
 * srshl (ruy), or ties away from zero as srshl of x - 1 where x < 0 (ssra by 31; the high product
 * is above INT32_MIN, as m < 2^31). */
NPU_NEON_EW int32x4_t npu_neon_mbqm_double4(int32x4_t x, int32_t multiplier, int32_t shift, int ties_up) {
    const int32_t left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    const int32x4_t high = vqrdmulhq_n_s32(vshlq_s32(x, vdupq_n_s32(left)), multiplier);
    if (right == 0) return high;
    return vrshlq_s32(ties_up ? high : vsraq_n_s32(high, high, 31), vdupq_n_s32(-right));
}

/* npu_multiply_rounding on 4 lanes: rounding as npu_quant.h's NPU_ROUND_*. */
NPU_NEON_EW int32x4_t npu_neon_mbqm_rounding4(int32x4_t x, int32_t multiplier, int32_t shift, int32_t rounding) {
    if (rounding == NPU_ROUND_SINGLE) return npu_neon_mbqm4(x, multiplier, vdupq_n_s64(-(31 - shift)));
    return npu_neon_mbqm_double4(x, multiplier, shift, rounding == NPU_ROUND_DOUBLE_UP);
}

/* One input's 8 bytes as the reference's add_input: (sign * (x - zp) << left_shift) rescaled with
 * `rounding`, two halves. */
NPU_NEON_EW void npu_neon_add_input(const int8_t* x, int32_t zero_point, int32_t sign, int32_t left_shift,
                                    int32_t multiplier, int32_t shift, int32_t rounding, int32x4_t* lo,
                                    int32x4_t* hi) {
    int16x8_t wide = vsubq_s16(vmovl_s8(vld1_s8(x)), vdupq_n_s16((int16_t)zero_point)); /* |x - zp| <= 255 */
    if (sign < 0) wide = vnegq_s16(wide);
    const int32x4_t left = vdupq_n_s32(left_shift);
    *lo = npu_neon_mbqm_rounding4(vshlq_s32(vmovl_s16(vget_low_s16(wide)), left), multiplier, shift, rounding);
    *hi = npu_neon_mbqm_rounding4(vshlq_s32(vmovl_high_s16(wide), left), multiplier, shift, rounding);
}

/* 8 outputs of npu_add_s8 from 8 input1 and 8 input2 bytes; `rounding` a constant of each inlined copy. */
NPU_NEON_EW void npu_neon_add8(const npu_add_params* p, const int8_t* x1, const int8_t* x2, int8_t* y,
                               int32_t rounding) {
    int32x4_t a_lo, a_hi, b_lo, b_hi;
    npu_neon_add_input(x1, p->input1_zero_point, 1, p->left_shift, p->input1_multiplier, p->input1_shift, rounding,
                       &a_lo, &a_hi);
    npu_neon_add_input(x2, p->input2_zero_point, p->subtract ? -1 : 1, p->left_shift, p->input2_multiplier,
                       p->input2_shift, rounding, &b_lo, &b_hi);
    /* |scaled| < 2^28: the sum fits int32, as the reference notes */
    const int32x4_t zp = vdupq_n_s32(p->output_zero_point);
    const int32x4_t lo = vdupq_n_s32(p->act_min), hi = vdupq_n_s32(p->act_max);
    const int32x4_t m_lo = npu_neon_mbqm_rounding4(vaddq_s32(a_lo, b_lo), p->output_multiplier, p->output_shift, rounding);
    const int32x4_t m_hi = npu_neon_mbqm_rounding4(vaddq_s32(a_hi, b_hi), p->output_multiplier, p->output_shift, rounding);
    /* the zero point added saturating (the reference adds it in 64 bits), then the clamp */
    const int32x4_t v_lo = vminq_s32(vmaxq_s32(vqaddq_s32(m_lo, zp), lo), hi);
    const int32x4_t v_hi = vminq_s32(vmaxq_s32(vqaddq_s32(m_hi, zp), lo), hi);
    vst1_s8(y, vqmovn_s16(vcombine_s16(vqmovn_s32(v_lo), vqmovn_s32(v_hi))));
}

/* One output of npu_add_s8, as the reference computes it. */
NPU_NEON_EW int8_t npu_neon_add1(const npu_add_params* p, int8_t x1, int8_t x2, int32_t rounding) {
    const int32_t one = (int32_t)1 << p->left_shift;
    const int32_t a = npu_multiply_rounding(((int32_t)x1 - p->input1_zero_point) * one, p->input1_multiplier,
                                            p->input1_shift, rounding);
    const int32_t b = npu_multiply_rounding(((int32_t)x2 - p->input2_zero_point) * (p->subtract ? -one : one),
                                            p->input2_multiplier, p->input2_shift, rounding);
    return npu_requantize_rounding(a + b, p->output_multiplier, p->output_shift, p->output_zero_point, p->act_min,
                                   p->act_max, rounding);
}

/* npu_add_s8: rows of `channels` (broadcast: each meets its batch's input2 row) or the whole tensor
 * as one row, 8 elements per step, the rest one by one. */
NPU_NEON_EW void npu_neon_add_rows(const npu_add_params* p, const int8_t* x1, const int8_t* x2, int8_t* y,
                                   int32_t rounding) {
    const int64_t size = (int64_t)p->batches * p->pixels * p->channels;
    const int64_t row = p->broadcast ? p->channels : size, rows = p->broadcast ? (int64_t)p->batches * p->pixels : 1;
    for (int64_t r = 0; r < rows; ++r) {
        const int8_t* a = x1 + r * row;
        const int8_t* b = p->broadcast ? x2 + (r / p->pixels) * p->channels : x2;
        int8_t* out = y + r * row;
        int64_t i = 0;
        for (; i + 8 <= row; i += 8) npu_neon_add8(p, a + i, b + i, out + i, rounding);
        for (; i < row; ++i) out[i] = npu_neon_add1(p, a[i], b[i], rounding);
    }
}

/* npu_neon_add_rows with the spec's rounding made a constant (one copy of the loop per rounding). */
static __attribute__((noinline, unused)) void npu_neon_add(const npu_add_params* p, const int8_t* x1, const int8_t* x2,
                                                           int8_t* y) {
    if (p->rounding == NPU_ROUND_SINGLE) npu_neon_add_rows(p, x1, x2, y, NPU_ROUND_SINGLE);
    else if (p->rounding == NPU_ROUND_DOUBLE) npu_neon_add_rows(p, x1, x2, y, NPU_ROUND_DOUBLE);
    else npu_neon_add_rows(p, x1, x2, y, NPU_ROUND_DOUBLE_UP);
}

/* npu_dequantize_s8_f32, 16 elements per step: (float)(x - zp) * scale rounded once (x - zp widened
 * with ssubl, then sshll), except the elements before `blocked` (LiteRT's whole vector blocks of
 * TFLite models): (float)x * scale rounded, plus the float product (float)(-zp) * scale; there tbl
 * puts each byte at the top of an int32 lane and scvtf with 24 fraction bits gives (float)x exactly
 * (clang's own trick for the reference's loop). AArch64's vector float arithmetic is IEEE
 * (subnormals kept), as the reference's scalar. */
NPU_NEON_EW void npu_neon_dequantize_run(const int8_t* x, float* y, int64_t begin, int64_t end, float scale,
                                         int32_t zero_point, int blocks) {
    const float offset = (float)(-zero_point) * scale;
    const float32x4_t s = vdupq_n_f32(scale), o = vdupq_n_f32(offset);
    const int8x16_t zp = vdupq_n_s8((int8_t)zero_point);
    uint8x16_t top[4]; /* lane j of group g: bytes 255, 255, 255, 4 g + j (tbl gives 0 for 255) */
    for (int g = 0; g < 4; ++g) {
        const uint32x4_t lane = {4u * g, 4u * g + 1, 4u * g + 2, 4u * g + 3};
        top[g] = vreinterpretq_u8_u32(vorrq_u32(vshlq_n_u32(lane, 24), vdupq_n_u32(0x00ffffffu)));
    }
    const int8_t* in = x + begin;
    float* out = y + begin;
    for (int64_t steps = (end - begin) / 16; steps > 0; --steps, in += 16, out += 16) {
        const int8x16_t v = vld1q_s8(in);
        float32x4x4_t f;
        if (blocks) {
            for (int g = 0; g < 4; ++g) {
                const int32x4_t shifted = vreinterpretq_s32_u8(vqtbl1q_u8(vreinterpretq_u8_s8(v), top[g]));
                f.val[g] = vaddq_f32(vmulq_f32(vcvtq_n_f32_s32(shifted, 24), s), o);
            }
        } else {
            const int16x8_t low = vsubl_s8(vget_low_s8(v), vget_low_s8(zp)), high = vsubl_high_s8(v, zp);
            f.val[0] = vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(low))), s);
            f.val[1] = vmulq_f32(vcvtq_f32_s32(vmovl_high_s16(low)), s);
            f.val[2] = vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(high))), s);
            f.val[3] = vmulq_f32(vcvtq_f32_s32(vmovl_high_s16(high)), s);
        }
        vst1q_f32_x4(out, f);
    }
    for (int64_t i = begin + (end - begin) / 16 * 16; i < end; ++i) {
        if (blocks) {
            const float product = (float)x[i] * scale;
            y[i] = product + offset;
        } else {
            y[i] = scale * (float)((int32_t)x[i] - zero_point);
        }
    }
}

static __attribute__((noinline, unused)) void npu_neon_dequantize(const int8_t* x, float* y, int64_t size, float scale,
                                                                  int32_t zero_point, int64_t blocked) {
    npu_neon_dequantize_run(x, y, 0, blocked, scale, zero_point, 1);
    npu_neon_dequantize_run(x, y, blocked, size, scale, zero_point, 0);
}

/* npu_quantize_f32_s8: x / scale (the same IEEE division; TFLite models' blocks x * reciprocal), clamped
 * to +-256 (NaN stays NaN through fmax / fmin and converts to 0, as the reference's NaN case), rounded
 * half to even (fcvtns), plus the zero point, saturated to int8; 8 elements per step. */
static __attribute__((noinline, unused)) void npu_neon_quantize(const float* x, int8_t* y, int64_t size, float scale,
                                                                int32_t zero_point, float reciprocal, int64_t blocked) {
    /* ONNX models (blocked < 0): x / scale everywhere; TFLite models: x * reciprocal in the whole
     * blocks of 8 before `blocked`, the reference's exact half-away rounding of x / scale after it */
    const int divide = blocked < 0;
    const int64_t vector_end = divide ? size : blocked;
    const float32x4_t s = vdupq_n_f32(divide ? scale : reciprocal), lo = vdupq_n_f32(-256.0f), hi = vdupq_n_f32(256.0f);
    const int32x4_t zp = vdupq_n_s32(zero_point);
    int64_t i = 0;
    for (; i + 8 <= vector_end; i += 8) {
        const float32x4_t ra = divide ? vdivq_f32(vld1q_f32(x + i), s) : vmulq_f32(vld1q_f32(x + i), s);
        const float32x4_t rb = divide ? vdivq_f32(vld1q_f32(x + i + 4), s) : vmulq_f32(vld1q_f32(x + i + 4), s);
        const float32x4_t a = vminq_f32(vmaxq_f32(ra, lo), hi), b = vminq_f32(vmaxq_f32(rb, lo), hi);
        const int32x4_t qa = vaddq_s32(vcvtnq_s32_f32(a), zp), qb = vaddq_s32(vcvtnq_s32_f32(b), zp);
        vst1_s8(y + i, vqmovn_s16(vcombine_s16(vqmovn_s32(qa), vqmovn_s32(qb))));
    }
    for (; i < vector_end; ++i) { /* ONNX models' last elements (a TFLite model's blocks end here) */
        const float v = vminq_f32(vmaxq_f32(vdupq_n_f32(x[i] / scale), lo), hi)[0];
        const int32_t q = vcvtns_s32_f32(v) + zero_point;
        y[i] = (int8_t)(q < -128 ? -128 : (q > 127 ? 127 : q));
    }
    for (; i < size; ++i) {
        const int32_t q = npu_round_quotient_half_away_f32(x[i], scale) + zero_point;
        y[i] = (int8_t)(q < -128 ? -128 : (q > 127 ? 127 : q));
    }
}

/* npu_mul_s8 over rows (broadcast: each meets its batch's input2 row) or the whole tensor as one row:
 * 8 products of (x1 - zp1) (x2 - zp2) (17 bits) per step, requantised with the spec's rounding
 * (a constant of each inlined copy), the zero point added saturating, clamped; the rest as the
 * reference. */
NPU_NEON_EW void npu_neon_mul_rows(const npu_mul_params* p, const int8_t* x1, const int8_t* x2, int8_t* y,
                                   int32_t rounding) {
    const int64_t size = (int64_t)p->batches * p->pixels * p->channels;
    const int64_t row = p->broadcast ? p->channels : size, rows = p->broadcast ? (int64_t)p->batches * p->pixels : 1;
    const int16x8_t zp1 = vdupq_n_s16((int16_t)p->input1_zero_point), zp2 = vdupq_n_s16((int16_t)p->input2_zero_point);
    const int32x4_t zp = vdupq_n_s32(p->output_zero_point), lo = vdupq_n_s32(p->act_min), hi = vdupq_n_s32(p->act_max);
    for (int64_t r = 0; r < rows; ++r) {
        const int8_t* a = x1 + r * row;
        const int8_t* b = p->broadcast ? x2 + (r / p->pixels) * p->channels : x2;
        int8_t* out = y + r * row;
        int64_t i = 0;
        for (; i + 8 <= row; i += 8) {
            const int16x8_t u = vsubq_s16(vmovl_s8(vld1_s8(a + i)), zp1), v = vsubq_s16(vmovl_s8(vld1_s8(b + i)), zp2);
            const int32x4_t p_lo = vmull_s16(vget_low_s16(u), vget_low_s16(v)), p_hi = vmull_high_s16(u, v);
            const int32x4_t m_lo = npu_neon_mbqm_rounding4(p_lo, p->output_multiplier, p->output_shift, rounding);
            const int32x4_t m_hi = npu_neon_mbqm_rounding4(p_hi, p->output_multiplier, p->output_shift, rounding);
            const int32x4_t r_lo = vminq_s32(vmaxq_s32(vqaddq_s32(m_lo, zp), lo), hi);
            const int32x4_t r_hi = vminq_s32(vmaxq_s32(vqaddq_s32(m_hi, zp), lo), hi);
            vst1_s8(out + i, vqmovn_s16(vcombine_s16(vqmovn_s32(r_lo), vqmovn_s32(r_hi))));
        }
        for (; i < row; ++i) {
            const int32_t product = ((int32_t)a[i] - p->input1_zero_point) * ((int32_t)b[i] - p->input2_zero_point);
            out[i] = npu_requantize_rounding(product, p->output_multiplier, p->output_shift, p->output_zero_point,
                                             p->act_min, p->act_max, rounding);
        }
    }
}

static __attribute__((noinline, unused)) void npu_neon_mul(const npu_mul_params* p, const int8_t* x1, const int8_t* x2,
                                                           int8_t* y) {
    if (p->rounding == NPU_ROUND_SINGLE) npu_neon_mul_rows(p, x1, x2, y, NPU_ROUND_SINGLE);
    else if (p->rounding == NPU_ROUND_DOUBLE) npu_neon_mul_rows(p, x1, x2, y, NPU_ROUND_DOUBLE);
    else npu_neon_mul_rows(p, x1, x2, y, NPU_ROUND_DOUBLE_UP);
}

/* npu_multiply_by_quantized_multiplier (single rounding) on 4 lanes of values below 2^(31 - pre) in
 * magnitude, pre = max(0, shift + 1): x << pre, then sqdmulh (floor(x m / 2^31)) and a rounding shift
 * right by k = pre - shift >= 1 (srshl), which is exactly (x m 2^pre + 2^(30 + k)) >> (31 + k): the
 * floor inside a floor division by 2^k changes nothing. */
NPU_NEON_EW int32x4_t npu_neon_mbqm4_short(int32x4_t x, int32_t multiplier, int32_t shift) {
    const int32_t pre = shift + 1 > 0 ? shift + 1 : 0;
    return vrshlq_s32(vqdmulhq_n_s32(vshlq_s32(x, vdupq_n_s32(pre)), multiplier), vdupq_n_s32(shift - pre));
}

/* The rescale of one PReLU branch on 4 lanes: single rounding through npu_neon_mbqm4_short when
 * `short_path` (the branch's values allow it) or 64-bit products, or TFLite's double rounding. */
NPU_NEON_EW int32x4_t npu_neon_prelu_branch(int32x4_t x, int32_t multiplier, int32_t shift, int32_t rounding,
                                            int short_path) {
    if (rounding == NPU_ROUND_SINGLE && short_path) return npu_neon_mbqm4_short(x, multiplier, shift);
    return npu_neon_mbqm_rounding4(x, multiplier, shift, rounding);
}

/* npu_prelu_s8 on 4 lanes of v = x - zp (|v| <= 255): v rescaled by the positive multiplier where
 * v >= 0 and v * slope (slope[c] = alpha[c] - alpha's zero point, |v slope| < 2^16) by the negative
 * one elsewhere, both computed and one picked; `short_path` when both shifts allow
 * npu_neon_mbqm4_short (positive <= 22, negative <= 14). */
NPU_NEON_EW int32x4_t npu_neon_prelu4(const npu_prelu_params* p, int16x4_t v, const int32_t* slope, int32_t rounding,
                                      int short_path) {
    const int32x4_t wide = vmovl_s16(v), product = vmulq_s32(wide, vld1q_s32(slope));
    const int32x4_t positive = npu_neon_prelu_branch(wide, p->positive_multiplier, p->positive_shift, rounding, short_path);
    const int32x4_t negative = npu_neon_prelu_branch(product, p->negative_multiplier, p->negative_shift, rounding, short_path);
    const int32x4_t r = vqaddq_s32(vbslq_s32(vcltzq_s32(wide), negative, positive), vdupq_n_s32(p->output_zero_point));
    return vminq_s32(vmaxq_s32(r, vdupq_n_s32(p->act_min)), vdupq_n_s32(p->act_max));
}

/* One row of `channels`: 8 elements per step, the rest as the reference. */
NPU_NEON_EW void npu_neon_prelu_row(const npu_prelu_params* p, const int8_t* in, const int32_t* slope, int8_t* out,
                                    int32_t rounding, int short_path) {
    const int64_t channels = p->channels;
    const int16x8_t zp = vdupq_n_s16((int16_t)p->input_zero_point);
    int64_t c = 0;
    for (; c + 8 <= channels; c += 8) {
        const int16x8_t v = vsubq_s16(vmovl_s8(vld1_s8(in + c)), zp);
        const int32x4_t lo = npu_neon_prelu4(p, vget_low_s16(v), slope + c, rounding, short_path);
        const int32x4_t hi = npu_neon_prelu4(p, vget_high_s16(v), slope + c + 4, rounding, short_path);
        vst1_s8(out + c, vqmovn_s16(vcombine_s16(vqmovn_s32(lo), vqmovn_s32(hi))));
    }
    for (; c < channels; ++c) out[c] = npu_prelu_value(p, (int32_t)in[c] - p->input_zero_point, slope + c, rounding);
}

/* npu_prelu_s8 with the spec's rounding: each row through a copy of the row code with the rounding
 * (and, for single rounding, the short path) constant. */
static __attribute__((noinline, unused)) void npu_neon_prelu(const npu_prelu_params* p, const int8_t* x,
                                                             const int32_t* slope, int8_t* y) {
    const int short_path = p->positive_shift <= 22 && p->negative_shift <= 14;
    for (int64_t row = 0; row < p->outer; ++row) {
        const int8_t* in = x + row * p->channels;
        int8_t* out = y + row * p->channels;
        if (p->rounding == NPU_ROUND_DOUBLE) npu_neon_prelu_row(p, in, slope, out, NPU_ROUND_DOUBLE, 0);
        else if (p->rounding == NPU_ROUND_DOUBLE_UP) npu_neon_prelu_row(p, in, slope, out, NPU_ROUND_DOUBLE_UP, 0);
        else if (short_path) npu_neon_prelu_row(p, in, slope, out, NPU_ROUND_SINGLE, 1);
        else npu_neon_prelu_row(p, in, slope, out, NPU_ROUND_SINGLE, 0);
    }
}

/* npu_softmax_s8 over rows of `depth` with the compile-time tables by d = max_in - x (exp_table:
 * Q0.31, 0 below diff_min; sum_table: the Q12.19 terms; cpp/src/softmax.cc): the maximum 16 bytes at
 * a time, the sum by table (saturating as the reference: the terms are >= 0, so the int64 sum
 * clamped at the end is the same), the reciprocal once per row, then 8 outputs per step: the exps
 * looked up into lanes, SRDHM by the scale as sqrdmulh (round half up, gemmlowp's SRDHM for either
 * sign), RoundingDivideByPOT of values >= 0 as srshl, - 128, saturated to int8. */
static __attribute__((noinline, unused)) void npu_neon_softmax(const int32_t* exp_table, const int32_t* sum_table,
                                                               int32_t rows, int32_t depth, const int8_t* x, int8_t* y) {
    for (int32_t r = 0; r < rows; ++r) {
        const int8_t* in = x + (int64_t)r * depth;
        int8_t* out = y + (int64_t)r * depth;
        int32_t c = 0, max_in = -128;
        if (depth >= 16) {
            int8x16_t m = vld1q_s8(in);
            for (c = 16; c + 16 <= depth; c += 16) m = vmaxq_s8(m, vld1q_s8(in + c));
            max_in = vmaxvq_s8(m);
        }
        for (; c < depth; ++c) max_in = in[c] > max_in ? in[c] : max_in;
        int64_t total = 0;
        for (c = 0; c < depth; ++c) total += sum_table[max_in - in[c]];
        int32_t exponent;
        const int32_t scale = npu_softmax_reciprocal(total > INT32_MAX ? INT32_MAX : (int32_t)total, &exponent);
        if (exponent > 31) { /* sum >= 512.0: every probability is below 1/512 and rounds to 0 */
            for (c = 0; c < depth; ++c) out[c] = -128;
            continue;
        }
        const int32x4_t down = vdupq_n_s32(-exponent);
        for (c = 0; c + 8 <= depth; c += 8) {
            const int8_t* v = in + c;
            const int32x4_t e0 = {exp_table[max_in - v[0]], exp_table[max_in - v[1]], exp_table[max_in - v[2]], exp_table[max_in - v[3]]};
            const int32x4_t e1 = {exp_table[max_in - v[4]], exp_table[max_in - v[5]], exp_table[max_in - v[6]], exp_table[max_in - v[7]]};
            const int16x8_t q = vcombine_s16(vqmovn_s32(vrshlq_s32(vqrdmulhq_n_s32(e0, scale), down)),
                                             vqmovn_s32(vrshlq_s32(vqrdmulhq_n_s32(e1, scale), down)));
            vst1_s8(out + c, vqmovn_s16(vsubq_s16(q, vdupq_n_s16(128))));
        }
        for (; c < depth; ++c) out[c] = npu_softmax_output(scale, exp_table[max_in - in[c]], exponent);
    }
}

/* 8 channels of one bilinear output pixel in int32 (the emitter checked that 128 (|1024 - f| + |f|)
 * over both axes stays below 2^31 - 2^19, equal source indices given fraction 0): each column's
 * vertical blend a (1024 - fy) + b fy (smull + smlal on int16), the horizontal
 * s = R0 (1024 - fx) + R1 fx, then s - 1 where negative (ssra by 31) and a rounding shift by 20:
 * half away from zero; saturated to int8. */
NPU_NEON_EW void npu_neon_bilinear8(const int8_t* row0, const int8_t* row1, int32_t x0, int32_t x1, int16_t fy,
                                    int32_t fx, int8_t* out) {
    const int16x8_t a = vmovl_s8(vld1_s8(row0 + x0)), b = vmovl_s8(vld1_s8(row1 + x0));
    const int16x8_t c = vmovl_s8(vld1_s8(row0 + x1)), d = vmovl_s8(vld1_s8(row1 + x1));
    const int16_t gy = (int16_t)(1024 - fy);
    const int32x4_t r0_lo = vmlal_n_s16(vmull_n_s16(vget_low_s16(a), gy), vget_low_s16(b), fy);
    const int32x4_t r0_hi = vmlal_high_n_s16(vmull_high_n_s16(a, gy), b, fy);
    const int32x4_t r1_lo = vmlal_n_s16(vmull_n_s16(vget_low_s16(c), gy), vget_low_s16(d), fy);
    const int32x4_t r1_hi = vmlal_high_n_s16(vmull_high_n_s16(c, gy), d, fy);
    const int32x4_t s_lo = vmlaq_n_s32(vmulq_n_s32(r0_lo, 1024 - fx), r1_lo, fx);
    const int32x4_t s_hi = vmlaq_n_s32(vmulq_n_s32(r0_hi, 1024 - fx), r1_hi, fx);
    const int32x4_t q_lo = vrshrq_n_s32(vsraq_n_s32(s_lo, s_lo, 31), 20), q_hi = vrshrq_n_s32(vsraq_n_s32(s_hi, s_hi, 31), 20);
    vst1_s8(out, vqmovn_s16(vcombine_s16(vqmovn_s32(q_lo), vqmovn_s32(q_hi))));
}

/* npu_resize_bilinear_s8; wide: the tables' sums may pass int32 (the emitter's check failed), every
 * element as the reference. */
static __attribute__((noinline, unused)) void npu_neon_resize_bilinear(const npu_resize_params* p, const int8_t* input,
                                                                       const int32_t* y_lerp, const int32_t* x_lerp,
                                                                       int wide, int8_t* output) {
    const int32_t channels = p->channels, row_bytes = p->in_w * channels, whole = wide ? 0 : channels / 8 * 8;
    for (int32_t row = 0; row < p->batches * p->out_h; ++row) {
        const int32_t b = row / p->out_h, y = row % p->out_h;
        const int8_t* row0 = input + ((int64_t)b * p->in_h + y_lerp[3 * y]) * row_bytes;
        const int8_t* row1 = input + ((int64_t)b * p->in_h + y_lerp[3 * y + 1]) * row_bytes;
        const int32_t fy = y_lerp[3 * y + 2];
        int8_t* out = output + (int64_t)row * p->out_w * channels;
        for (int32_t x = 0; x < p->out_w; ++x, out += channels) {
            const int32_t x0 = x_lerp[3 * x] * channels, x1 = x_lerp[3 * x + 1] * channels, fx = x_lerp[3 * x + 2];
            for (int32_t c = 0; c < whole; c += 8) npu_neon_bilinear8(row0 + c, row1 + c, x0, x1, (int16_t)fy, fx, out + c);
            for (int32_t c = whole; c < channels; ++c) out[c] = npu_bilinear_s8(row0, row1, x0, x1, c, fy, fx);
        }
    }
}

/* One output pixel of max pooling: the largest valid element of its clipped window, 16 channels per
 * step, then the clamp. */
NPU_NEON_EW void npu_neon_max_pixel(const npu_pool_params* p, const int8_t* image, int8_t* out, int32_t y0, int32_t y1,
                                    int32_t x0, int32_t x1) {
    const int32_t c = p->channels, whole = c / 16 * 16;
    const int8x16_t lo = vdupq_n_s8((int8_t)p->act_min), hi = vdupq_n_s8((int8_t)p->act_max);
    for (int32_t ch = 0; ch < whole; ch += 16) {
        int8x16_t m = vdupq_n_s8(-128);
        for (int32_t y = y0; y < y1; ++y)
            for (int32_t x = x0; x < x1; ++x) m = vmaxq_s8(m, vld1q_s8(image + ((int64_t)y * p->in_w + x) * c + ch));
        vst1q_s8(out + ch, vminq_s8(vmaxq_s8(m, lo), hi));
    }
    for (int32_t ch = whole; ch < c; ++ch) out[ch] = npu_window_max(image, p->in_w, c, ch, y0, y1, x0, x1, p->act_min, p->act_max);
}

/* npu_rounded_mean on 4 lanes: sum + half (with the sign of sum's: -half for 0, which still divides
 * to 0) divided by count in float, truncated (fcvtzs). Exact for |sum| <= 128 * count, count <= 256:
 * both operands are small integers, exact in float, and the quotient's rounding error (below
 * |q| * 2^-24) is far below the 1 / count between a quotient that is not an integer and the nearest
 * one, so truncation lands where the integer division does. */
NPU_NEON_EW int16x4_t npu_neon_rounded_mean4(int32x4_t sum, int32_t half, float32x4_t count) {
    const int32x4_t biased = vaddq_s32(sum, vbslq_s32(vcgtq_s32(sum, vdupq_n_s32(0)), vdupq_n_s32(half), vdupq_n_s32(-half)));
    return vqmovn_s32(vcvtq_s32_f32(vdivq_f32(vcvtq_f32_s32(biased), count)));
}

/* The 8 rounded means of 8 int16 sums. */
NPU_NEON_EW int16x8_t npu_neon_rounded_mean8(int16x8_t sum, int32_t half, float32x4_t count) {
    return vcombine_s16(npu_neon_rounded_mean4(vmovl_s16(vget_low_s16(sum)), half, count),
                        npu_neon_rounded_mean4(vmovl_high_s16(sum), half, count));
}

/* One output pixel of average pooling: 16 channels per step, int16 sums over windows of up to 256
 * pixels (256 * -128 is still an int16), widened once for the division; larger or empty windows go
 * channel by channel. */
NPU_NEON_EW void npu_neon_avg_pixel(const npu_pool_params* p, const int8_t* image, int8_t* out, int32_t y0, int32_t y1,
                                    int32_t x0, int32_t x1) {
    const int32_t c = p->channels, count = (y1 > y0 && x1 > x0) ? (y1 - y0) * (x1 - x0) : 0;
    const int32_t whole = count > 0 && count <= 256 ? c / 16 * 16 : 0;
    const int8x16_t lo = vdupq_n_s8((int8_t)p->act_min), hi = vdupq_n_s8((int8_t)p->act_max);
    const float32x4_t divisor = vdupq_n_f32((float)count);
    for (int32_t ch = 0; ch < whole; ch += 16) {
        int16x8_t first = vdupq_n_s16(0), second = vdupq_n_s16(0);
        for (int32_t y = y0; y < y1; ++y)
            for (int32_t x = x0; x < x1; ++x) {
                const int8x16_t v = vld1q_s8(image + ((int64_t)y * p->in_w + x) * c + ch);
                first = vaddw_s8(first, vget_low_s8(v));
                second = vaddw_high_s8(second, v);
            }
        const int8x16_t mean = vcombine_s8(vqmovn_s16(npu_neon_rounded_mean8(first, count / 2, divisor)),
                                           vqmovn_s16(npu_neon_rounded_mean8(second, count / 2, divisor)));
        vst1q_s8(out + ch, vminq_s8(vmaxq_s8(mean, lo), hi));
    }
    for (int32_t ch = whole; ch < c; ++ch) out[ch] = npu_window_mean(image, p->in_w, c, ch, y0, y1, x0, x1, p->act_min, p->act_max);
}

/* npu_max_pool_s8 (is_max 1) or npu_avg_pool_s8 (0): every output pixel's clipped window, inlined
 * into each caller with a constant is_max. */
NPU_NEON_EW void npu_neon_pool(const npu_pool_params* p, const int8_t* input, int8_t* output, int is_max) {
    const int32_t c = p->channels;
    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t* image = input + (int64_t)b * p->in_h * p->in_w * c;
        for (int32_t oy = 0; oy < p->out_h; ++oy) {
            int32_t y0, y1;
            npu_pool_window(oy, p->stride_h, p->pad_top, p->kernel_h, p->in_h, &y0, &y1);
            for (int32_t ox = 0; ox < p->out_w; ++ox) {
                int32_t x0, x1;
                npu_pool_window(ox, p->stride_w, p->pad_left, p->kernel_w, p->in_w, &x0, &x1);
                int8_t* out = output + (((int64_t)b * p->out_h + oy) * p->out_w + ox) * c;
                if (is_max) npu_neon_max_pixel(p, image, out, y0, y1, x0, x1);
                else npu_neon_avg_pixel(p, image, out, y0, y1, x0, x1);
            }
        }
    }
}

static __attribute__((noinline, unused)) void npu_neon_max_pool(const npu_maxpool_params* p, const int8_t* input,
                                                                int8_t* output) {
    npu_neon_pool(p, input, output, 1);
}

static __attribute__((noinline, unused)) void npu_neon_avg_pool(const npu_avgpool_params* p, const int8_t* input,
                                                                int8_t* output) {
    npu_neon_pool(p, input, output, 0);
}

/* npu_global_avg_pool_s8, 16 channels per step: int16 partial sums of up to 256 pixels (vaddw, 256 *
 * -128 is still an int16), each widened once into the int32 sums, which start at -n * zp (sum(in - zp)
 * = sum(in) - n * zp; |n * zp| <= 2^30). The 16-channel steps are exactly the reference's blocks of
 * NPU_MEAN_BLOCK, so they requantise as block_rounding: single rounding on 4 lanes of 64-bit products
 * (the rounding shift of srshl, saturated as the reference), clamped to the activation range less
 * zero point and bias inside int32; a double rounding per lane with the reference's own function.
 * The channels after the last whole step are the reference's loop as written. */
NPU_NEON_EW void npu_neon_mean16(const npu_mean_params* p, const int8_t* x, int32_t n, int32x4_t sums[4]) {
    const int32_t c = p->channels;
    for (int32_t k = 0; k < 4; ++k) sums[k] = vdupq_n_s32(-n * p->input_zero_point);
    for (int32_t left = n; left > 0; left -= 256) {
        int16x8_t a = vdupq_n_s16(0), b = vdupq_n_s16(0);
        for (int32_t i = left < 256 ? left : 256; i > 0; --i, x += c) {
            const int8x16_t v = vld1q_s8(x);
            a = vaddw_s8(a, vget_low_s8(v));
            b = vaddw_high_s8(b, v);
        }
        sums[0] = vaddw_s16(sums[0], vget_low_s16(a));
        sums[1] = vaddw_high_s16(sums[1], a);
        sums[2] = vaddw_s16(sums[2], vget_low_s16(b));
        sums[3] = vaddw_high_s16(sums[3], b);
    }
}

static __attribute__((noinline, unused)) void npu_neon_mean(const npu_mean_params* p, const int8_t* input,
                                                            int8_t* output) {
    const int32_t c = p->channels, n = p->in_h * p->in_w, whole = c / 16 * 16;
    const int32_t offset = p->output_zero_point + p->bias;
    const int32x4_t lo = vdupq_n_s32(p->act_min - offset), hi = vdupq_n_s32(p->act_max - offset);
    const int32x4_t shift_back = vdupq_n_s32(offset);
    const int64x2_t right = vdupq_n_s64(-(31 - p->shift));
    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t* image = input + (int64_t)b * n * c;
        int8_t* out = output + (int64_t)b * c;
        for (int32_t ch = 0; ch < whole; ch += 16) {
            int32x4_t sums[4];
            npu_neon_mean16(p, image + ch, n, sums);
            if (p->block_rounding != NPU_ROUND_SINGLE) {
                int32_t lanes[16];
                for (int32_t k = 0; k < 4; ++k) vst1q_s32(lanes + 4 * k, sums[k]);
                for (int32_t k = 0; k < 16; ++k)
                    out[ch + k] = npu_requantize_rounding(lanes[k], p->multiplier, p->shift, offset, p->act_min,
                                                          p->act_max, p->block_rounding);
                continue;
            }
            int16x4_t narrow[4];
            for (int32_t k = 0; k < 4; ++k) {
                const int32x4_t mean = vminq_s32(vmaxq_s32(npu_neon_mbqm4(sums[k], p->multiplier, right), lo), hi);
                narrow[k] = vmovn_s32(vaddq_s32(mean, shift_back));
            }
            vst1q_s8(out + ch, vcombine_s8(vmovn_s16(vcombine_s16(narrow[0], narrow[1])),
                                           vmovn_s16(vcombine_s16(narrow[2], narrow[3]))));
        }
        for (int32_t ch = whole; ch < c; ++ch) {
            int32_t sum = 0;
            for (int32_t i = 0; i < n; ++i) sum += (int32_t)image[(int64_t)i * c + ch] - p->input_zero_point;
            out[ch] = npu_requantize_rounding(sum, p->multiplier, p->shift, offset, p->act_min, p->act_max, p->rounding);
        }
    }
}

#endif /* NPU_NEON_ELEMENTWISE_H */
