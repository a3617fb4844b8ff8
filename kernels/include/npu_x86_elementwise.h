/* x86 AVX2 element-wise and pooling microkernels of the host build (cpp/src/x86_elementwise.cc emits
 * the calls): 256-entry table lookups (lut, requantize), float <-> int8 (de)quantisation, multiply, PReLU,
 * max and average pooling and the mean over H, W. Each is bit-exact to its kernels/ref function
 * (tests/kernels/test_x86_kernels.py); each works on a range [begin, end) of independent outputs, so
 * that npu_parallel_range can split it over the TVM runtime's threads.
 */
#ifndef NPU_X86_ELEMENTWISE_H
#define NPU_X86_ELEMENTWISE_H

#include "npu_kernels_elementwise.h"
#include "npu_kernels_prelu.h"
#include "npu_kernels_resize.h"
#include "npu_pool_window.h"
#include "npu_softmax_reciprocal.h"
#include "npu_x86_quant.h"

#define NPU_X86_RANGE static __attribute__((noinline, unused, target("avx2")))

/* ---- byte moves of the data-movement kernels (pad, concat): the C library's (AVX2 on this CPU) ---- */

static inline void npu_x86_copy(int8_t* dst, const int8_t* src, int64_t n) { __builtin_memcpy(dst, src, (size_t)n); }

static inline void npu_x86_fill(int8_t* dst, int8_t value, int64_t n) { __builtin_memset(dst, value, (size_t)n); }

/* ---- table lookup: output = table[(uint8_t)input] ---- */

/* 32 lookups: `rows` holds the table as 16 rows of 16 bytes (row k: the outputs of the unsigned input
 * bytes 16k .. 16k + 15), each row twice (both 128-bit lanes, as vpshufb reads). The low nibble picks
 * the byte of every row (vpshufb), the high nibble the row (compare and blend). */
NPU_X86 __m256i npu_x86_lookup32(const int8_t* rows, __m256i x) {
    const __m256i nibble = _mm256_set1_epi8(15);
    const __m256i low = _mm256_and_si256(x, nibble), high = _mm256_and_si256(_mm256_srli_epi16(x, 4), nibble);
    __m256i y = _mm256_setzero_si256();
    for (int row = 0; row < 16; ++row) {
        const __m256i found = _mm256_shuffle_epi8(_mm256_load_si256((const __m256i*)(rows + 32 * row)), low);
        y = _mm256_blendv_epi8(y, found, _mm256_cmpeq_epi8(high, _mm256_set1_epi8((char)row)));
    }
    return y;
}

/* Elements [begin, end): 32 at a time, the rest one by one from the same rows. */
NPU_X86_RANGE void npu_x86_lookup(const int8_t* rows, const int8_t* x, int8_t* y, int64_t begin, int64_t end) {
    int64_t i = begin;
    for (; i + 32 <= end; i += 32)
        _mm256_storeu_si256((__m256i*)(y + i), npu_x86_lookup32(rows, _mm256_loadu_si256((const __m256i*)(x + i))));
    for (; i < end; ++i) y[i] = rows[32 * ((uint8_t)x[i] >> 4) + ((uint8_t)x[i] & 15)];
}

/* ---- quantize: float32 -> int8, as npu_quantize_f32_s8 ---- */

/* x / scale (or, divide == 0, x * scale: LiteRT's blocks multiply by the reciprocal) rounded half to
 * even (the quotient first clamped to +-256, NaN -> 0: beyond +-256 every zero point saturates),
 * + zero_point, saturated to int8. The division and product are IEEE's in both forms; the vector one
 * rounds with roundps, the scalar one with the reference's npu_round_half_even_f32. */
NPU_X86 __m256i npu_x86_quantize8(__m256 x, __m256 scale, __m256i zero_point, int divide) {
    __m256 v = divide ? _mm256_div_ps(x, scale) : _mm256_mul_ps(x, scale);
    v = _mm256_andnot_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q), v);
    v = _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(-256.0f)), _mm256_set1_ps(256.0f));
    /* round half to even, exactly (the result is a whole float within +-256) */
    const __m256i rounded = _mm256_cvttps_epi32(_mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    return _mm256_add_epi32(rounded, zero_point);
}

static inline int8_t npu_x86_quantize1(float x, float scale, int32_t zero_point, int divide) {
    const float v = divide ? x / scale : x * scale;
    int32_t rounded = 0;
    if (v >= 256.0f) {
        rounded = 256;
    } else if (v <= -256.0f) {
        rounded = -256;
    } else if (v == v) {
        rounded = npu_round_half_even_f32(v);
    }
    rounded += zero_point;
    return (int8_t)(rounded < -128 ? -128 : (rounded > 127 ? 127 : rounded));
}

NPU_X86 void npu_x86_quantize_run(const float* x, int8_t* y, int64_t begin, int64_t end, float scale,
                                  int32_t zero_point, int divide) {
    const __m256 vscale = _mm256_set1_ps(scale);
    const __m256i vzero_point = _mm256_set1_epi32(zero_point);
    int64_t i = begin;
    for (; i + 8 <= end; i += 8) {
        npu_x86_store8(npu_x86_quantize8(_mm256_loadu_ps(x + i), vscale, vzero_point, divide), y + i);
    }
    for (; i < end; ++i) y[i] = npu_x86_quantize1(x[i], scale, zero_point, divide);
}

/* npu_quantize_f32_s8's elements [begin, end): ONNX models (blocked < 0) x / scale everywhere;
 * TFLite models x * reciprocal below `blocked` and the reference's exact half-away rounding of
 * x / scale from there (LiteRT's scalar loop, at most 7 elements). */
NPU_X86_RANGE void npu_x86_quantize(const float* x, int8_t* y, int64_t begin, int64_t end, float scale,
                                    int32_t zero_point, float reciprocal, int64_t blocked) {
    if (blocked < 0) {
        npu_x86_quantize_run(x, y, begin, end, scale, zero_point, 1);
        return;
    }
    const int64_t split = blocked < begin ? begin : (blocked > end ? end : blocked);
    npu_x86_quantize_run(x, y, begin, split, reciprocal, zero_point, 0);
    for (int64_t i = split; i < end; ++i) {
        const int32_t q = npu_round_quotient_half_away_f32(x[i], scale) + zero_point;
        y[i] = (int8_t)(q < -128 ? -128 : (q > 127 ? 127 : q));
    }
}

/* ---- dequantize: npu_dequantize_s8_f32 ---- */

/* Elements [begin, end) of one form, 8 per step: (float)(x - zp) * scale rounded once, or (blocks:
 * LiteRT's whole vector blocks of TFLite models) (float)x * scale rounded, plus `offset`, the
 * float product (float)(-zp) * scale. Plain IEEE multiplies and adds, as the reference's. */
NPU_X86 void npu_x86_dequantize_run(const int8_t* x, float* y, int64_t begin, int64_t end, float scale,
                                    int32_t zero_point, int blocks) {
    const float offset = (float)(-zero_point) * scale;
    const __m256 vscale = _mm256_set1_ps(scale), voffset = _mm256_set1_ps(offset);
    const __m256i vzero_point = _mm256_set1_epi32(blocks ? 0 : zero_point);
    int64_t i = begin;
    for (; i + 8 <= end; i += 8) {
        const __m256i v = _mm256_sub_epi32(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)(x + i))), vzero_point);
        const __m256 product = _mm256_mul_ps(_mm256_cvtepi32_ps(v), vscale);
        _mm256_storeu_ps(y + i, blocks ? _mm256_add_ps(product, voffset) : product);
    }
    for (; i < end; ++i) {
        if (blocks) {
            const float product = (float)x[i] * scale;
            y[i] = product + offset;
        } else {
            y[i] = scale * (float)((int32_t)x[i] - zero_point);
        }
    }
}

/* Elements [begin, end): those before `blocked` in the blocks' form, the others rounded once. */
NPU_X86_RANGE void npu_x86_dequantize(const int8_t* x, float* y, int64_t begin, int64_t end, float scale,
                                      int32_t zero_point, int64_t blocked) {
    const int64_t split = end < blocked ? end : (begin > blocked ? begin : blocked);
    npu_x86_dequantize_run(x, y, begin, split, scale, zero_point, 1);
    npu_x86_dequantize_run(x, y, split, end, scale, zero_point, 0);
}

/* ---- multiply: npu_mul_s8 ---- */

typedef struct {
    int32_t input1_zero_point, input2_zero_point, output_zero_point, multiplier, shift, act_min, act_max, rounding;
} npu_x86_mul_params;

/* 8 products (in1 - zp1) * (in2 - zp2) (17 bits) requantised with `rounding` (a constant in each
 * caller): MBQM clamped to the activation range. */
NPU_X86 void npu_x86_mul8(const npu_x86_mul_params* p, const int8_t* x1, const int8_t* x2, int8_t* y, int32_t rounding) {
    const __m256i a = _mm256_sub_epi32(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)x1)),
                                       _mm256_set1_epi32(p->input1_zero_point));
    const __m256i b = _mm256_sub_epi32(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)x2)),
                                       _mm256_set1_epi32(p->input2_zero_point));
    const __m256i v = npu_x86_mbqm_rounding(_mm256_mullo_epi32(a, b), p->multiplier, p->shift, rounding,
                                            p->act_min - p->output_zero_point, p->act_max - p->output_zero_point);
    npu_x86_store8(_mm256_add_epi32(v, _mm256_set1_epi32(p->output_zero_point)), y);
}

/* `count` elements: whole vectors of 8, the rest as the reference. */
NPU_X86 void npu_x86_mul_run(const npu_x86_mul_params* p, const int8_t* x1, const int8_t* x2, int8_t* y, int64_t count,
                             int32_t rounding) {
    int64_t i = 0;
    for (; i + 8 <= count; i += 8) npu_x86_mul8(p, x1 + i, x2 + i, y + i, rounding);
    for (; i < count; ++i) {
        const int32_t product = ((int32_t)x1[i] - p->input1_zero_point) * ((int32_t)x2[i] - p->input2_zero_point);
        y[i] = npu_requantize_rounding(product, p->multiplier, p->shift, p->output_zero_point, p->act_min, p->act_max,
                                       rounding);
    }
}

/* npu_x86_mul_run with the spec's rounding made a constant (one copy of the loop per rounding). */
NPU_X86_RANGE void npu_x86_mul(const npu_x86_mul_params* p, const int8_t* x1, const int8_t* x2, int8_t* y,
                               int64_t count) {
    if (p->rounding == NPU_ROUND_SINGLE) npu_x86_mul_run(p, x1, x2, y, count, NPU_ROUND_SINGLE);
    else if (p->rounding == NPU_ROUND_DOUBLE) npu_x86_mul_run(p, x1, x2, y, count, NPU_ROUND_DOUBLE);
    else npu_x86_mul_run(p, x1, x2, y, count, NPU_ROUND_DOUBLE_UP);
}

/* ---- PReLU: npu_prelu_s8 ---- */

/* Over the reference's npu_prelu_params (outer and alpha_zero_point unused: the slopes come less
 * their zero point, one int32 per channel). */

/* npu_x86_mbqm_x of values whose magnitude stays in int32 shifted left by up to max_pre bits: a
 * shift >= 0 becomes -1 by shifting the values left by shift + 1 first (the same product and
 * rounding bit), so the rounding takes npu_x86_mbqm_x's short path. TFLite's double rounding
 * shifts left itself (npu_x86_mbqm_double). */
NPU_X86 __m256i npu_x86_mbqm_small(__m256i x, int32_t multiplier, int32_t shift, int32_t max_pre, int32_t rounding,
                                   int64_t lo, int64_t hi) {
    if (rounding != NPU_ROUND_SINGLE) return npu_x86_mbqm_rounding(x, multiplier, shift, rounding, lo, hi);
    const int32_t pre = shift >= 0 && shift < max_pre ? shift + 1 : 0;
    return npu_x86_mbqm_x(_mm256_sll_epi32(x, _mm_cvtsi32_si128(pre)), multiplier, shift - pre, lo, hi);
}

/* 8 outputs: v = x - zp (|v| <= 255) rescaled by the positive multiplier where v >= 0, v * slope
 * (|v slope| < 2^16) by the negative one elsewhere (both computed, one picked), clamped to the
 * activation range; `rounding` is a constant in each caller. */
NPU_X86 void npu_x86_prelu8(const npu_prelu_params* p, const int8_t* x, const int32_t* slope, int8_t* y,
                            int32_t rounding) {
    const __m256i v = _mm256_sub_epi32(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)x)),
                                       _mm256_set1_epi32(p->input_zero_point));
    const int64_t lo = (int64_t)p->act_min - p->output_zero_point, hi = (int64_t)p->act_max - p->output_zero_point;
    const __m256i positive = npu_x86_mbqm_small(v, p->positive_multiplier, p->positive_shift, 23, rounding, lo, hi);
    const __m256i negative = npu_x86_mbqm_small(_mm256_mullo_epi32(v, _mm256_loadu_si256((const __m256i*)slope)),
                                                p->negative_multiplier, p->negative_shift, 15, rounding, lo, hi);
    const __m256i r = _mm256_blendv_epi8(positive, negative, _mm256_cmpgt_epi32(_mm256_setzero_si256(), v));
    npu_x86_store8(_mm256_add_epi32(r, _mm256_set1_epi32(p->output_zero_point)), y);
}

/* Rows [begin, end) of `channels` elements: whole vectors of 8, the rest as the reference. */
NPU_X86 void npu_x86_prelu_rows(const npu_prelu_params* p, const int8_t* x, const int32_t* slope, int8_t* y,
                                int64_t begin, int64_t end, int32_t rounding) {
    const int64_t channels = p->channels;
    for (int64_t row = begin; row < end; ++row) {
        const int8_t* in = x + row * channels;
        int8_t* out = y + row * channels;
        int64_t c = 0;
        for (; c + 8 <= channels; c += 8) npu_x86_prelu8(p, in + c, slope + c, out + c, rounding);
        for (; c < channels; ++c) out[c] = npu_prelu_value(p, (int32_t)in[c] - p->input_zero_point, slope + c, rounding);
    }
}

/* npu_x86_prelu_rows with the spec's rounding made a constant. */
NPU_X86_RANGE void npu_x86_prelu(const npu_prelu_params* p, const int8_t* x, const int32_t* slope, int8_t* y,
                                 int64_t begin, int64_t end) {
    if (p->rounding == NPU_ROUND_SINGLE) npu_x86_prelu_rows(p, x, slope, y, begin, end, NPU_ROUND_SINGLE);
    else if (p->rounding == NPU_ROUND_DOUBLE) npu_x86_prelu_rows(p, x, slope, y, begin, end, NPU_ROUND_DOUBLE);
    else npu_x86_prelu_rows(p, x, slope, y, begin, end, NPU_ROUND_DOUBLE_UP);
}

/* ---- softmax: npu_softmax_s8 with the compile-time tables (cpp/src/softmax.cc) ---- */

/* The index d = max_in - x of 8 input bytes. */
NPU_X86 __m256i npu_x86_softmax_index8(const int8_t* x, int32_t max_in) {
    return _mm256_sub_epi32(_mm256_set1_epi32(max_in), _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)x)));
}

/* Rows [begin, end) of `depth`: the maximum 32 bytes at a time; the sum of the table's Q12.19 terms
 * (vpgatherdd; int32 lanes flushed into an int64 total every 2048 steps, the total clamped at the end:
 * the reference's saturating sum of terms >= 0); the reciprocal once per row; then 8 outputs per
 * step: exps gathered, SRDHM and RoundingDivideByPOT of values >= 0 as one rounding shift of the
 * 64-bit product, (e s + 2^30 + 2^(30 + k)) >> (31 + k) (the floor of a floor divided by 2^k),
 * - 128, saturated to int8. */
NPU_X86_RANGE void npu_x86_softmax(const int32_t* exp_table, const int32_t* sum_table, int32_t depth, const int8_t* x,
                                   int8_t* y, int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
        const int8_t* in = x + r * depth;
        int8_t* out = y + r * depth;
        int32_t c = 0, max_in = -128;
        if (depth >= 32) {
            __m256i m = _mm256_loadu_si256((const __m256i*)in);
            for (c = 32; c + 32 <= depth; c += 32) m = _mm256_max_epi8(m, _mm256_loadu_si256((const __m256i*)(in + c)));
            __m128i h = _mm_max_epi8(_mm256_castsi256_si128(m), _mm256_extracti128_si256(m, 1));
            h = _mm_max_epi8(h, _mm_srli_si128(h, 8));
            h = _mm_max_epi8(h, _mm_srli_si128(h, 4));
            h = _mm_max_epi8(h, _mm_srli_si128(h, 2));
            h = _mm_max_epi8(h, _mm_srli_si128(h, 1));
            max_in = (int8_t)_mm_cvtsi128_si32(h);
        }
        for (; c < depth; ++c) max_in = in[c] > max_in ? in[c] : max_in;
        int64_t total = 0;
        for (c = 0; c + 8 <= depth;) {
            __m256i lanes = _mm256_setzero_si256(); /* each lane gets <= 2048 terms of <= 2^19 */
            for (int32_t step = 0; step < 2048 && c + 8 <= depth; ++step, c += 8)
                lanes = _mm256_add_epi32(lanes, _mm256_i32gather_epi32((const int*)sum_table, npu_x86_softmax_index8(in + c, max_in), 4));
            int32_t part[8];
            _mm256_storeu_si256((__m256i*)part, lanes);
            for (int k = 0; k < 8; ++k) total += part[k];
        }
        for (; c < depth; ++c) total += sum_table[max_in - in[c]];
        int32_t exponent;
        const int32_t scale = npu_softmax_reciprocal(total > INT32_MAX ? INT32_MAX : (int32_t)total, &exponent);
        if (exponent > 31) { /* sum >= 512.0: every probability is below 1/512 and rounds to 0 */
            for (c = 0; c < depth; ++c) out[c] = -128;
            continue;
        }
        const __m256i s = _mm256_set1_epi32(scale);
        const __m256i nudge = _mm256_set1_epi64x(((int64_t)1 << 30) + ((int64_t)1 << (30 + exponent)));
        const __m128i right = _mm_cvtsi32_si128(31 + exponent);
        for (c = 0; c + 8 <= depth; c += 8) {
            const __m256i e = _mm256_i32gather_epi32((const int*)exp_table, npu_x86_softmax_index8(in + c, max_in), 4);
            const __m256i even = _mm256_srl_epi64(_mm256_add_epi64(_mm256_mul_epu32(e, s), nudge), right);
            const __m256i odd = _mm256_srl_epi64(_mm256_add_epi64(_mm256_mul_epu32(_mm256_srli_epi64(e, 32), s), nudge), right);
            const __m256i q = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA); /* each <= 256 */
            npu_x86_store8(_mm256_sub_epi32(q, _mm256_set1_epi32(128)), out + c);
        }
        for (; c < depth; ++c) out[c] = npu_softmax_output(scale, exp_table[max_in - in[c]], exponent);
    }
}

/* ---- bilinear resize: npu_resize_bilinear_s8 over output rows [begin, end) of the flat (batch, y) order ---- */

/* 16 channels of one output pixel in int32 (the emitter checked that 128 (|1024 - f| + |f|) over
 * both axes stays below 2^31 - 2^19, with equal source indices given fraction 0, which changes no
 * sum): each column's vertical blend a (1024 - fy) + b fy as int16 pairs (vpmaddwd), then the
 * horizontal s = R0 (1024 - fx) + R1 fx, rounded half away from zero by 2^20 (s - 1 when negative,
 * then + 2^19 and an arithmetic shift), saturated to int8. */
NPU_X86 void npu_x86_bilinear16(const int8_t* row0, const int8_t* row1, int32_t x0, int32_t x1, __m256i wy, int32_t fx,
                                int8_t* out) {
    const __m256i a = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(row0 + x0)));
    const __m256i b = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(row1 + x0)));
    const __m256i c = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(row0 + x1)));
    const __m256i d = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(row1 + x1)));
    const __m256i left = _mm256_set1_epi32(1024 - fx), right = _mm256_set1_epi32(fx);
    __m256i s[2];
    for (int half = 0; half < 2; ++half) { /* unpacklo: channels 0-3, 8-11; unpackhi: 4-7, 12-15 */
        const __m256i r0 = _mm256_madd_epi16(half ? _mm256_unpackhi_epi16(a, b) : _mm256_unpacklo_epi16(a, b), wy);
        const __m256i r1 = _mm256_madd_epi16(half ? _mm256_unpackhi_epi16(c, d) : _mm256_unpacklo_epi16(c, d), wy);
        const __m256i sum = _mm256_add_epi32(_mm256_mullo_epi32(r0, left), _mm256_mullo_epi32(r1, right));
        const __m256i biased = _mm256_add_epi32(_mm256_add_epi32(sum, _mm256_srai_epi32(sum, 31)), _mm256_set1_epi32(1 << 19));
        s[half] = _mm256_srai_epi32(biased, 20);
    }
    const __m256i words = _mm256_packs_epi32(s[0], s[1]); /* back in channel order */
    _mm_storeu_si128((__m128i*)out, _mm_packs_epi16(_mm256_castsi256_si128(words), _mm256_extracti128_si256(words, 1)));
}

/* wide: the tables' sums may pass int32 (the emitter's check failed): every element as the reference. */
NPU_X86_RANGE void npu_x86_resize_bilinear(const npu_resize_params* p, const int8_t* input, const int32_t* y_lerp,
                                           const int32_t* x_lerp, int8_t* output, int wide, int64_t begin, int64_t end) {
    const int32_t channels = p->channels, row_bytes = p->in_w * channels, whole = wide ? 0 : channels / 16 * 16;
    for (int64_t row = begin; row < end; ++row) {
        const int32_t b = (int32_t)(row / p->out_h), y = (int32_t)(row % p->out_h);
        const int8_t* row0 = input + ((size_t)b * p->in_h + y_lerp[3 * y]) * row_bytes;
        const int8_t* row1 = input + ((size_t)b * p->in_h + y_lerp[3 * y + 1]) * row_bytes;
        const int32_t fy = y_lerp[3 * y + 2];
        const __m256i wy = _mm256_set1_epi32((int32_t)((uint32_t)(uint16_t)(1024 - fy) | ((uint32_t)(uint16_t)fy << 16)));
        int8_t* out = output + (size_t)row * p->out_w * channels;
        for (int32_t x = 0; x < p->out_w; ++x, out += channels) {
            const int32_t x0 = x_lerp[3 * x] * channels, x1 = x_lerp[3 * x + 1] * channels, fx = x_lerp[3 * x + 2];
            for (int32_t c = 0; c < whole; c += 16) npu_x86_bilinear16(row0 + c, row1 + c, x0, x1, wy, fx, out + c);
            for (int32_t c = whole; c < channels; ++c) out[c] = npu_bilinear_s8(row0, row1, x0, x1, c, fy, fx);
        }
    }
}

/* ---- max pooling: npu_max_pool_s8 over output pixels [begin, end) of the flat (batch, y, x) order ---- */

typedef struct {
    int32_t in_h, in_w, channels, out_h, out_w, kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left;
    int32_t act_min, act_max;
} npu_x86_pool_shape;

/* Output pixel `pixel` of the flat (batch, y, x) order: its batch's image and its clipped window. */
static inline const int8_t* npu_x86_pool_window(const npu_x86_pool_shape* s, const int8_t* input, int64_t pixel,
                                                int32_t* y0, int32_t* y1, int32_t* x0, int32_t* x1) {
    const int64_t b = pixel / ((int64_t)s->out_h * s->out_w);
    npu_pool_window((int32_t)(pixel / s->out_w % s->out_h), s->stride_h, s->pad_top, s->kernel_h, s->in_h, y0, y1);
    npu_pool_window((int32_t)(pixel % s->out_w), s->stride_w, s->pad_left, s->kernel_w, s->in_w, x0, x1);
    return input + (size_t)b * s->in_h * s->in_w * s->channels;
}

NPU_X86_RANGE void npu_x86_max_pool(const npu_x86_pool_shape* s, const int8_t* input, int8_t* output, int64_t begin,
                                    int64_t end) {
    const int32_t channels = s->channels, whole = channels / 32 * 32;
    const __m256i lo = _mm256_set1_epi8((char)s->act_min), hi = _mm256_set1_epi8((char)s->act_max);
    for (int64_t pixel = begin; pixel < end; ++pixel) {
        int32_t y0, y1, x0, x1;
        const int8_t* image = npu_x86_pool_window(s, input, pixel, &y0, &y1, &x0, &x1);
        int8_t* out = output + (size_t)pixel * channels;
        for (int32_t c = 0; c < whole; c += 32) {
            __m256i m = _mm256_set1_epi8(-128);
            for (int32_t y = y0; y < y1; ++y)
                for (int32_t x = x0; x < x1; ++x)
                    m = _mm256_max_epi8(m, _mm256_loadu_si256((const __m256i*)(image + ((size_t)y * s->in_w + x) * channels + c)));
            _mm256_storeu_si256((__m256i*)(out + c), _mm256_min_epi8(_mm256_max_epi8(m, lo), hi));
        }
        for (int32_t c = whole; c < channels; ++c)
            out[c] = npu_window_max(image, s->in_w, channels, c, y0, y1, x0, x1, s->act_min, s->act_max);
    }
}

/* ---- average pooling: npu_avg_pool_s8 over output pixels [begin, end) of the flat (batch, y, x) order ---- */

/* npu_rounded_mean on 8 lanes: sum + half (the sign of sum's, none for 0) divided by count in float,
 * truncated. Exact for |sum| <= 128 * count, count <= 256: both operands are small integers, exact
 * in float, and the quotient's rounding error (below |q| * 2^-24) is far below the 1 / count that
 * separates a quotient that is not an integer from the nearest one, so truncation lands where the
 * integer division does. */
NPU_X86 __m256i npu_x86_rounded_mean8(__m256i sum, __m256i half, __m256 count) {
    const __m256i biased = _mm256_add_epi32(sum, _mm256_sign_epi32(half, sum));
    return _mm256_cvttps_epi32(_mm256_div_ps(_mm256_cvtepi32_ps(biased), count));
}

/* 16 channels per step: int16 sums over windows of up to 256 pixels (vpmovsxbw, 256 * -128 is still an
 * int16), widened once for the division; larger or empty windows go channel by channel. */
NPU_X86_RANGE void npu_x86_avg_pool(const npu_x86_pool_shape* s, const int8_t* input, int8_t* output, int64_t begin,
                                    int64_t end) {
    const int32_t channels = s->channels;
    const __m128i lo = _mm_set1_epi8((char)s->act_min), hi = _mm_set1_epi8((char)s->act_max);
    for (int64_t pixel = begin; pixel < end; ++pixel) {
        int32_t y0, y1, x0, x1;
        const int8_t* image = npu_x86_pool_window(s, input, pixel, &y0, &y1, &x0, &x1);
        int8_t* out = output + (size_t)pixel * channels;
        const int32_t count = (y1 > y0 && x1 > x0) ? (y1 - y0) * (x1 - x0) : 0;
        const int32_t whole = count > 0 && count <= 256 ? channels / 16 * 16 : 0;
        const __m256 divisor = _mm256_set1_ps((float)count);
        const __m256i half = _mm256_set1_epi32(count / 2);
        for (int32_t c = 0; c < whole; c += 16) {
            __m256i sum = _mm256_setzero_si256();
            for (int32_t y = y0; y < y1; ++y)
                for (int32_t x = x0; x < x1; ++x)
                    sum = _mm256_add_epi16(sum, _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(image + ((size_t)y * s->in_w + x) * channels + c))));
            const __m256i first = npu_x86_rounded_mean8(_mm256_cvtepi16_epi32(_mm256_castsi256_si128(sum)), half, divisor);
            const __m256i second = npu_x86_rounded_mean8(_mm256_cvtepi16_epi32(_mm256_extracti128_si256(sum, 1)), half, divisor);
            const __m256i packed = _mm256_permute4x64_epi64(_mm256_packs_epi32(first, second), 0xD8);  /* 16 int16 in order */
            const __m128i bytes = _mm_packs_epi16(_mm256_castsi256_si128(packed), _mm256_extracti128_si256(packed, 1));
            _mm_storeu_si128((__m128i*)(out + c), _mm_min_epi8(_mm_max_epi8(bytes, lo), hi));
        }
        for (int32_t c = whole; c < channels; ++c)
            out[c] = npu_window_mean(image, s->in_w, channels, c, y0, y1, x0, x1, s->act_min, s->act_max);
    }
}

/* ---- mean over H, W: npu_global_avg_pool_s8 ---- */

typedef struct {
    int32_t pixels, channels, input_zero_point, output_zero_point, multiplier, shift, act_min, act_max, bias;
    int32_t rounding, block_rounding;
} npu_x86_mean_shape;

/* The 8 means of channels [c, c + 8) from their sums, with `rounding` (a constant in each caller). */
NPU_X86 void npu_x86_mean8(const npu_x86_mean_shape* s, __m256i sum, int8_t* out, int32_t rounding) {
    const int32_t offset = s->output_zero_point + s->bias;
    const int64_t lo = (int64_t)s->act_min - offset, hi = (int64_t)s->act_max - offset;
    const __m256i v = npu_x86_mbqm_rounding(sum, s->multiplier, s->shift, rounding, lo, hi);
    npu_x86_store8(_mm256_add_epi32(v, _mm256_set1_epi32(offset)), out);
}

/* Work items [begin, end) of the flat (batch, group of 8 channels) order; the channels after the last
 * whole group go with the batch's last group. Sums of (in - zp) over the pixels, 8 channels per
 * register; then the one requantisation (1 / pixels is in the multiplier), clamped to the activation
 * range less the zero point and bias (inside int32: the reference's int32 saturation cannot act).
 * A group of 8 lies wholly inside or wholly after the reference's blocks of NPU_MEAN_BLOCK, so it
 * rounds as one of them. */
NPU_X86_RANGE void npu_x86_mean(const npu_x86_mean_shape* s, const int8_t* input, int8_t* output, int64_t begin,
                                int64_t end) {
    const int32_t channels = s->channels, groups = channels / 8, whole = groups * 8;
    const int32_t block = channels - channels % NPU_MEAN_BLOCK;
    const int32_t offset = s->output_zero_point + s->bias;
    for (int64_t item = begin; item < end; ++item) {
        const int64_t b = groups > 0 ? item / groups : item;
        const int8_t* image = input + (size_t)b * s->pixels * channels;
        int8_t* out = output + (size_t)b * channels;
        if (groups > 0) {
            const int32_t c = (int32_t)(item % groups) * 8;
            __m256i sum = _mm256_setzero_si256();
            for (int32_t i = 0; i < s->pixels; ++i)
                sum = _mm256_add_epi32(sum, _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)(image + (size_t)i * channels + c))));
            sum = _mm256_sub_epi32(sum, _mm256_set1_epi32(s->pixels * s->input_zero_point));
            const int32_t rounding = c < block ? s->block_rounding : s->rounding;
            if (rounding == NPU_ROUND_SINGLE) npu_x86_mean8(s, sum, out + c, NPU_ROUND_SINGLE);
            else if (rounding == NPU_ROUND_DOUBLE) npu_x86_mean8(s, sum, out + c, NPU_ROUND_DOUBLE);
            else npu_x86_mean8(s, sum, out + c, NPU_ROUND_DOUBLE_UP);
            if (c + 8 < whole) continue;
        }
        for (int32_t c = whole; c < channels; ++c) {
            int32_t sum = 0;
            for (int32_t i = 0; i < s->pixels; ++i) sum += (int32_t)image[(size_t)i * channels + c] - s->input_zero_point;
            const int32_t rounding = c < block ? s->block_rounding : s->rounding;
            const int64_t mean = (int64_t)npu_multiply_rounding(sum, s->multiplier, s->shift, rounding) + offset;
            out[c] = (int8_t)(mean < s->act_min ? s->act_min : (mean > s->act_max ? s->act_max : mean));
        }
    }
}

#endif /* NPU_X86_ELEMENTWISE_H */
