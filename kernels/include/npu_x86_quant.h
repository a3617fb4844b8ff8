/* x86 AVX2 requantisation: npu_quant.h's single-rounding arithmetic on 8 int32 lanes.
 *
 * The host build's generated x86 kernels (cpp/src/x86_*.cc) call these; tests/kernels/test_x86_kernels.py
 * checks every kernel bit for bit against kernels/ref. _mm256_mul_epi32 forms 64-bit products of the
 * even lanes; the odd lanes are shifted down and multiplied apart, so per-lane constants come as an
 * even half and an odd half. AVX2 has only the logical 64-bit variable shift: negative values are
 * flipped around it (~(~p >> s) is p >> s arithmetic). Callers clamp to a range inside int32 (the
 * activation range less the output zero point), so the reference's int32 saturation cannot change a
 * clamped value. Every function carries target("avx2"): the file compiles whatever -march it gets.
 */
#ifndef NPU_X86_QUANT_H
#define NPU_X86_QUANT_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "npu_quant.h"

#define NPU_X86 static inline __attribute__((always_inline, target("avx2")))

/* (p + nudge) >> right on 4 int64 lanes, arithmetic, clamped to [lo, hi]. */
NPU_X86 __m256i npu_x86_round64(__m256i p, __m256i nudge, __m256i right, __m256i lo, __m256i hi) {
    p = _mm256_add_epi64(p, nudge);
    const __m256i negative = _mm256_cmpgt_epi64(_mm256_setzero_si256(), p);
    p = _mm256_xor_si256(_mm256_srlv_epi64(_mm256_xor_si256(p, negative), right), negative);
    p = _mm256_blendv_epi8(p, lo, _mm256_cmpgt_epi64(lo, p));
    return _mm256_blendv_epi8(p, hi, _mm256_cmpgt_epi64(p, hi));
}

/* x * m per lane, each rounded by its lane's nudge (2^(s-1)) and right shift s = 31 - shift, clamped
 * to [lo, hi]: the even lanes' constants in *_even, the odd lanes' in *_odd (4 int64 each). */
NPU_X86 __m256i npu_x86_mbqm(__m256i x, __m256i m, __m256i nudge_even, __m256i right_even, __m256i nudge_odd,
                             __m256i right_odd, __m256i lo, __m256i hi) {
    const __m256i even = npu_x86_round64(_mm256_mul_epi32(x, m), nudge_even, right_even, lo, hi);
    const __m256i odd = npu_x86_round64(_mm256_mul_epi32(_mm256_srli_epi64(x, 32), _mm256_srli_epi64(m, 32)),
                                        nudge_odd, right_odd, lo, hi);
    return _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
}

/* One multiplier and shift for every lane (shift in [-31, 30]). */
NPU_X86 __m256i npu_x86_mbqm_x(__m256i x, int32_t multiplier, int32_t shift, int64_t lo, int64_t hi) {
    const __m256i nudge = _mm256_set1_epi64x((int64_t)1 << (30 - shift)), right = _mm256_set1_epi64x(31 - shift);
    return npu_x86_mbqm(x, _mm256_set1_epi32(multiplier), nudge, right, nudge, right, _mm256_set1_epi64x(lo),
                        _mm256_set1_epi64x(hi));
}

/* 8 int32 lanes already in [-128, 127] -> 8 bytes at y. */
NPU_X86 void npu_x86_store8(__m256i v, int8_t* y) {
    const __m128i halves = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    _mm_storel_epi64((__m128i*)y, _mm_packs_epi16(halves, halves));
}

/* A kernel's per-channel requantisation: the reference's arrays, and for the vector path (single
 * rounding only; vector = 0 otherwise) the bias and multiplier padded to whole vectors and the 64-bit
 * nudges and right shifts ordered per 8 channels [c0, c2, c4, c6, c1, c3, c5, c7] (npu_x86_mbqm's
 * even and odd halves). */
typedef struct {
    const int32_t *bias, *multiplier, *shift; /* bias may be NULL */
    const int32_t *vbias, *vmultiplier;       /* vbias: zeros when there is no bias */
    const int64_t *vnudge, *vshift;
    int32_t output_zero_point, act_min, act_max, rounding, vector;
} npu_x86_requant;

/* `count` int32 sums at acc (32-byte aligned) -> output channels first.. of the row at y (first a
 * multiple of 8): whole vectors of 8 on the vector path, the rest one by one as the reference.
 * Out of line: one copy per file, called per tile and pixel. */
static __attribute__((noinline, unused, target("avx2"))) void npu_x86_requantize(const npu_x86_requant* q, const int32_t* acc,
                                                                     int32_t first, int32_t count, int8_t* y) {
    int32_t lane = 0;
    if (q->vector) {
        const __m256i lo = _mm256_set1_epi64x(q->act_min - q->output_zero_point);
        const __m256i hi = _mm256_set1_epi64x(q->act_max - q->output_zero_point);
        const __m256i zp = _mm256_set1_epi32(q->output_zero_point);
        for (; lane + 8 <= count; lane += 8) {
            const int32_t co = first + lane;
            const __m256i sums = _mm256_add_epi32(_mm256_load_si256((const __m256i*)(acc + lane)),
                                                  _mm256_load_si256((const __m256i*)(q->vbias + co)));
            const __m256i v = npu_x86_mbqm(sums, _mm256_load_si256((const __m256i*)(q->vmultiplier + co)),
                                           _mm256_load_si256((const __m256i*)(q->vnudge + co)),
                                           _mm256_load_si256((const __m256i*)(q->vshift + co)),
                                           _mm256_load_si256((const __m256i*)(q->vnudge + co + 4)),
                                           _mm256_load_si256((const __m256i*)(q->vshift + co + 4)), lo, hi);
            npu_x86_store8(_mm256_add_epi32(v, zp), y + co);
        }
    }
    for (; lane < count; ++lane) {
        const int32_t co = first + lane;
        y[co] = npu_requantize_rounding(acc[lane] + (q->bias ? q->bias[co] : 0), q->multiplier[co], q->shift[co],
                                        q->output_zero_point, q->act_min, q->act_max, q->rounding);
    }
}

/* PIXELS pixels x VECTORS registers of 8 output channels: acc[pixel][32] = sum over the k input pairs
 * of each pixel (pairs[pixel * k + i], two int16 halves) times the tile's packed weights
 * (w[i][32 lanes][2] int16), by vpmaddwd. */
#define NPU_X86_TILE(PIXELS, VECTORS)                                                                          \
    static __attribute__((noinline, unused, target("avx2"))) void npu_x86_tile##PIXELS##_##VECTORS(            \
        const int32_t* pairs, int32_t k, const int16_t* w, int32_t* acc) {                                    \
        __m256i a[PIXELS][VECTORS];                                                                            \
        for (int p = 0; p < PIXELS; ++p)                                                                       \
            for (int v = 0; v < VECTORS; ++v) a[p][v] = _mm256_setzero_si256();                               \
        for (int32_t i = 0; i < k; ++i, w += 64) {                                                             \
            __m256i wv[VECTORS];                                                                               \
            for (int v = 0; v < VECTORS; ++v) wv[v] = _mm256_load_si256((const __m256i*)(w + 16 * v));          \
            for (int p = 0; p < PIXELS; ++p) {                                                                 \
                const __m256i x = _mm256_set1_epi32(pairs[p * k + i]);                                         \
                for (int v = 0; v < VECTORS; ++v) a[p][v] = _mm256_add_epi32(a[p][v], _mm256_madd_epi16(x, wv[v])); \
            }                                                                                                  \
        }                                                                                                      \
        for (int p = 0; p < PIXELS; ++p)                                                                       \
            for (int v = 0; v < VECTORS; ++v) _mm256_storeu_si256((__m256i*)(acc + 32 * p + 8 * v), a[p][v]);   \
    }
NPU_X86_TILE(1, 1)
NPU_X86_TILE(1, 2)
NPU_X86_TILE(1, 3)
NPU_X86_TILE(1, 4)
NPU_X86_TILE(2, 1)
NPU_X86_TILE(2, 2)
NPU_X86_TILE(2, 3)
NPU_X86_TILE(2, 4)

/* Depthwise convolution (groups == channels, depth multiplier 1) over output pixels [begin, end) of
 * the flat (batch, y, x) order: 8 channels per register, up to 32 per block held across the taps,
 * inputs sign-extended to int32 less the zero point times int32 weights packed [tap][channel rounded
 * up to 8]; taps in the padding add nothing, as in the reference; the last channels one by one. */
typedef struct {
    int32_t in_h, in_w, channels, out_h, out_w, kernel_h, kernel_w;
    int32_t stride_h, stride_w, dilation_h, dilation_w, pad_top, pad_left, input_zero_point;
} npu_x86_depthwise_shape;

static __attribute__((noinline, unused, target("avx2"))) void npu_x86_depthwise(
    const npu_x86_depthwise_shape* s, const int32_t* w, const npu_x86_requant* q, const int8_t* input, int8_t* output,
    int64_t begin, int64_t end) {
    const int32_t channels = s->channels, stride = (channels + 7) / 8 * 8, whole = channels / 8 * 8;
    int32_t storage[stride + 8];
    int32_t* acc = (int32_t*)(((uintptr_t)storage + 31) & ~(uintptr_t)31);
    const __m256i zp = _mm256_set1_epi32(s->input_zero_point);
    for (int64_t pixel = begin; pixel < end; ++pixel) {
        const int32_t b = (int32_t)(pixel / ((int64_t)s->out_h * s->out_w));
        const int32_t oy = (int32_t)(pixel / s->out_w % s->out_h), ox = (int32_t)(pixel % s->out_w);
        for (int32_t ch = whole; ch < channels; ++ch) acc[ch] = 0;
        /* blocks of 32 channels; the last also takes the channels after the last whole vector */
        for (int32_t c0 = 0; c0 < channels; c0 += 32) {
            const int32_t vectors = whole - c0 >= 32 ? 4 : (whole > c0 ? (whole - c0) / 8 : 0);
            const int32_t tail_end = c0 + 32 >= channels ? channels : whole;
            __m256i a[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                            _mm256_setzero_si256()};
            for (int32_t ky = 0; ky < s->kernel_h; ++ky) {
                const int32_t iy = oy * s->stride_h - s->pad_top + ky * s->dilation_h;
                if (iy < 0 || iy >= s->in_h) continue;
                for (int32_t kx = 0; kx < s->kernel_w; ++kx) {
                    const int32_t ix = ox * s->stride_w - s->pad_left + kx * s->dilation_w;
                    if (ix < 0 || ix >= s->in_w) continue;
                    const int8_t* x = input + (((size_t)b * s->in_h + iy) * s->in_w + ix) * channels;
                    const int32_t* wt = w + (size_t)(ky * s->kernel_w + kx) * stride;
                    for (int32_t v = 0; v < vectors; ++v) {
                        const __m256i xv = _mm256_sub_epi32(
                            _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)(x + c0 + 8 * v))), zp);
                        a[v] = _mm256_add_epi32(a[v], _mm256_mullo_epi32(xv, _mm256_load_si256((const __m256i*)(wt + c0 + 8 * v))));
                    }
                    for (int32_t ch = whole; ch < tail_end; ++ch) acc[ch] += ((int32_t)x[ch] - s->input_zero_point) * wt[ch];
                }
            }
            for (int32_t v = 0; v < vectors; ++v) _mm256_store_si256((__m256i*)(acc + c0 + 8 * v), a[v]);
        }
        npu_x86_requantize(q, acc, 0, channels, output + (size_t)pixel * channels);
    }
}

#endif /* NPU_X86_QUANT_H */
