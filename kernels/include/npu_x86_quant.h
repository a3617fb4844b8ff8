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

#include "npu_depthwise.h"
#include "npu_quant.h"

#define NPU_X86 static inline __attribute__((always_inline, target("avx2")))

/* AVX-512 VNNI where the compiler targets it (-march=native on such a CPU, as object builds are):
 * the VNNI kernels and the 16-lane requantisation below; elsewhere AVX2 only. */
#if defined(__AVX512VNNI__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512F__)
#define NPU_X86_VNNI 1
#else
#define NPU_X86_VNNI 0
#endif

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

/* npu_x86_mbqm for lanes whose shifts are all <= 0 (rounding shifts right >= 31), unclamped: then
 * |x * m| < 2^62 and the result fits int32 (the reference's saturation never acts), so each lane's
 * low 32 bits hold it. The nudges come with 2^62 added (nudge_offset_*): the sum is non-negative
 * and the logical shift is the arithmetic one plus 2^(62 - right), which `fix` (-2^(62 - right)
 * mod 2^32 per lane) takes off again. No 64-bit compares or blends: half the instructions. */
NPU_X86 __m256i npu_x86_mbqm_narrow(__m256i x, __m256i m, __m256i nudge_offset_even, __m256i right_even,
                                    __m256i nudge_offset_odd, __m256i right_odd, __m256i fix) {
    const __m256i even = _mm256_srlv_epi64(_mm256_add_epi64(_mm256_mul_epi32(x, m), nudge_offset_even), right_even);
    const __m256i odd = _mm256_srlv_epi64(
        _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(x, 32), _mm256_srli_epi64(m, 32)), nudge_offset_odd),
        right_odd);
    return _mm256_add_epi32(_mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA), fix);
}

/* One multiplier and shift for every lane (shift in [-31, 30]), clamped to [lo, hi]. Callers pass
 * constants, so the branch and the constants fold away. */
NPU_X86 __m256i npu_x86_mbqm_x(__m256i x, int32_t multiplier, int32_t shift, int64_t lo, int64_t hi) {
    const __m256i right = _mm256_set1_epi64x(31 - shift);
    if (shift <= 0 && lo >= INT32_MIN && hi <= INT32_MAX) {
        const __m256i nudge = _mm256_set1_epi64x(((int64_t)1 << (30 - shift)) + ((int64_t)1 << 62));
        const __m256i fix = _mm256_set1_epi32((int32_t)(0u - (uint32_t)((uint64_t)1 << (31 + shift)))); /* 62 - right */
        const __m256i v = npu_x86_mbqm_narrow(x, _mm256_set1_epi32(multiplier), nudge, right, nudge, right, fix);
        return _mm256_min_epi32(_mm256_max_epi32(v, _mm256_set1_epi32((int32_t)lo)), _mm256_set1_epi32((int32_t)hi));
    }
    const __m256i nudge = _mm256_set1_epi64x((int64_t)1 << (30 - shift));
    return npu_x86_mbqm(x, _mm256_set1_epi32(multiplier), nudge, right, nudge, right, _mm256_set1_epi64x(lo),
                        _mm256_set1_epi64x(hi));
}

/* npu_multiply_by_quantized_multiplier_double (TFLite's two roundings) on 8 lanes, clamped to [lo, hi]
 * (saturated into int32: the result is an int32). The multiplier is in [0, 2^31), as every spec's,
 * so SRDHM's one saturating case (INT32_MIN squared) cannot occur, and SRDHM is
 * floor((x m + 2^30) / 2^31) for either sign of the product (gemmlowp's nudge 1 - 2^30 for negative
 * products with truncation is that floor): bits 31..62 of the 64-bit sum, the even lanes' by a
 * logical shift right by 31 and the odd lanes' by a shift left by 1 into their high halves. Then
 * RoundingDivideByPOT by max(-shift, 0) as the reference writes it, without a wider type: the
 * arithmetic shift plus one where the remainder passes the threshold (mask / 2, and one more for
 * negative values when ties go away from zero). */
NPU_X86 __m256i npu_x86_mbqm_double(__m256i x, int32_t multiplier, int32_t shift, int ties_up, int64_t lo, int64_t hi) {
    const int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    x = _mm256_sll_epi32(x, _mm_cvtsi32_si128(left)); /* wraps, as the reference's uint32 shift */
    const __m256i m = _mm256_set1_epi32(multiplier), nudge = _mm256_set1_epi64x((int64_t)1 << 30);
    const __m256i even = _mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epi32(x, m), nudge), 31);
    const __m256i odd = _mm256_slli_epi64(_mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(x, 32), m), nudge), 1);
    __m256i high = _mm256_blend_epi32(even, odd, 0xAA);
    if (right > 0) {
        const int32_t mask = (int32_t)(((int64_t)1 << right) - 1);
        __m256i threshold = _mm256_set1_epi32(mask >> 1);
        if (!ties_up) threshold = _mm256_sub_epi32(threshold, _mm256_cmpgt_epi32(_mm256_setzero_si256(), high));
        const __m256i up = _mm256_cmpgt_epi32(_mm256_and_si256(high, _mm256_set1_epi32(mask)), threshold);
        high = _mm256_sub_epi32(_mm256_sra_epi32(high, _mm_cvtsi32_si128(right)), up);
    }
    const int32_t low = lo < INT32_MIN ? INT32_MIN : (int32_t)lo, top = hi > INT32_MAX ? INT32_MAX : (int32_t)hi;
    return _mm256_min_epi32(_mm256_max_epi32(high, _mm256_set1_epi32(low)), _mm256_set1_epi32(top));
}

/* npu_multiply_rounding on 8 lanes (one multiplier and shift), clamped to [lo, hi]. */
NPU_X86 __m256i npu_x86_mbqm_rounding(__m256i x, int32_t multiplier, int32_t shift, int32_t rounding, int64_t lo,
                                      int64_t hi) {
    if (rounding == NPU_ROUND_SINGLE) return npu_x86_mbqm_x(x, multiplier, shift, lo, hi);
    return npu_x86_mbqm_double(x, multiplier, shift, rounding == NPU_ROUND_DOUBLE_UP, lo, hi);
}

/* 8 int32 lanes already in [-128, 127] -> 8 bytes at y. */
NPU_X86 void npu_x86_store8(__m256i v, int8_t* y) {
    const __m128i halves = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    _mm_storel_epi64((__m128i*)y, _mm_packs_epi16(halves, halves));
}

/* A kernel's per-channel requantisation: the reference's arrays, and for the vector path (single
 * rounding only; vector = 0 otherwise) the bias and multiplier padded to whole vectors and the 64-bit
 * nudges and right shifts ordered per 8 channels [c0, c2, c4, c6, c1, c3, c5, c7] (npu_x86_mbqm's
 * even and odd halves). narrow = 1 when every shift is <= 0: the nudges then include 2^62 and vfix
 * holds npu_x86_mbqm_narrow's per-channel fix (NULL otherwise). */
typedef struct {
    const int32_t *bias, *multiplier, *shift; /* bias may be NULL */
    const int32_t *vbias, *vmultiplier;       /* vbias: zeros when there is no bias */
    const int64_t *vnudge, *vshift;
    const int32_t* vfix;
    int32_t output_zero_point, act_min, act_max, rounding, vector, narrow;
    int32_t whole_blocks_end; /* npu_channel_rounding's split (NPU_ROUND_BLOCKS_OF_8) */
} npu_x86_requant;

/* 4 x 8 int32 lanes already in [-128, 127] -> 32 bytes at y, in order (the two saturating packs
 * interleave 128-bit halves; one permute puts the 4-byte groups back). */
NPU_X86 void npu_x86_store32(__m256i v0, __m256i v1, __m256i v2, __m256i v3, int8_t* y) {
    const __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(v0, v1), _mm256_packs_epi32(v2, v3));
    _mm256_storeu_si256((__m256i*)y, _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
}

/* The narrow requantisation (every shift <= 0) of the 8 sums at acc, output channels co.., with the
 * zero point added: in [act_min, act_max]. */
NPU_X86 __m256i npu_x86_requant8_narrow(const npu_x86_requant* q, const int32_t* acc, int32_t co, __m256i lo, __m256i hi,
                                        __m256i zp) {
    const __m256i sums = _mm256_add_epi32(_mm256_load_si256((const __m256i*)acc),
                                          _mm256_load_si256((const __m256i*)(q->vbias + co)));
    const __m256i v = npu_x86_mbqm_narrow(sums, _mm256_load_si256((const __m256i*)(q->vmultiplier + co)),
                                          _mm256_load_si256((const __m256i*)(q->vnudge + co)),
                                          _mm256_load_si256((const __m256i*)(q->vshift + co)),
                                          _mm256_load_si256((const __m256i*)(q->vnudge + co + 4)),
                                          _mm256_load_si256((const __m256i*)(q->vshift + co + 4)),
                                          _mm256_load_si256((const __m256i*)(q->vfix + co)));
    return _mm256_add_epi32(_mm256_min_epi32(_mm256_max_epi32(v, lo), hi), zp);
}

#if NPU_X86_VNNI
/* `count` int32 sums at acc -> output channels first.. of the row at y (first a multiple of 16), 16
 * lanes per step, the last masked (the constants are padded to 16). With VNNI the emitter writes the
 * 64-bit constants per 16 channels as [c0, c2, .., c14, c1, c3, .., c15] (_mm512_mul_epi32's even
 * and odd halves) and plain nudges: vpsravq is the arithmetic shift, and the 64-bit clamp is only
 * needed when some shift is > 0 (narrow = 0; else the result fits int32, as npu_x86_mbqm_narrow's). */
static __attribute__((noinline, unused, target("avx512f,avx512bw,avx512vl"))) void npu_x86_requantize(
    const npu_x86_requant* qp, const int32_t* acc, int32_t first, int32_t count, int8_t* y) {
    const npu_x86_requant rq = *qp, *q = &rq;
    int32_t lane = 0;
    if (q->vector) {
        const __m512i zp = _mm512_set1_epi32(q->output_zero_point);
        const __m512i lo = _mm512_set1_epi32(q->act_min - q->output_zero_point);
        const __m512i hi = _mm512_set1_epi32(q->act_max - q->output_zero_point);
        const __m512i lo64 = _mm512_set1_epi64(q->act_min - q->output_zero_point);
        const __m512i hi64 = _mm512_set1_epi64(q->act_max - q->output_zero_point);
        for (; lane < count; lane += 16) {
            const int32_t co = first + lane;
            const __mmask16 m = count - lane >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (count - lane)) - 1);
            const __m512i sums = _mm512_add_epi32(_mm512_loadu_si512((const void*)(acc + lane)),
                                                  _mm512_loadu_si512((const void*)(q->vbias + co)));
            const __m512i mul = _mm512_loadu_si512((const void*)(q->vmultiplier + co));
            __m512i even = _mm512_add_epi64(_mm512_mul_epi32(sums, mul), _mm512_loadu_si512((const void*)(q->vnudge + co)));
            __m512i odd = _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(sums, 32), _mm512_srli_epi64(mul, 32)),
                                           _mm512_loadu_si512((const void*)(q->vnudge + co + 8)));
            even = _mm512_srav_epi64(even, _mm512_loadu_si512((const void*)(q->vshift + co)));
            odd = _mm512_srav_epi64(odd, _mm512_loadu_si512((const void*)(q->vshift + co + 8)));
            if (!q->narrow) {
                even = _mm512_min_epi64(_mm512_max_epi64(even, lo64), hi64);
                odd = _mm512_min_epi64(_mm512_max_epi64(odd, lo64), hi64);
            }
            /* odd's low halves into the odd lanes */
            __m512i v = _mm512_mask_shuffle_epi32(even, (__mmask16)0xAAAA, odd, _MM_PERM_CDAB);
            v = _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(v, lo), hi), zp);
            _mm_mask_storeu_epi8(y + co, m, _mm512_cvtepi32_epi8(v));
        }
    }
    for (; lane < count; ++lane) {
        const int32_t co = first + lane;
        y[co] = npu_requantize_rounding(acc[lane] + (q->bias ? q->bias[co] : 0), q->multiplier[co], q->shift[co],
                                        q->output_zero_point, q->act_min, q->act_max,
                                        npu_channel_rounding(q->rounding, co, q->whole_blocks_end));
    }
}
#else
/* `count` int32 sums at acc (32-byte aligned) -> output channels first.. of the row at y (first a
 * multiple of 8): whole vectors of 8 on the vector path (32 per store on the narrow one), the rest
 * one by one as the reference. Out of line: one copy per file, called per pixel. The struct is
 * copied first: stores through y (int8_t, which may alias anything) would make the compiler reload
 * its fields after each. */
static __attribute__((noinline, unused, target("avx2"))) void npu_x86_requantize(const npu_x86_requant* qp, const int32_t* acc,
                                                                     int32_t first, int32_t count, int8_t* y) {
    const npu_x86_requant rq = *qp, *q = &rq;
    int32_t lane = 0;
    if (q->vector) {
        const __m256i lo = _mm256_set1_epi64x(q->act_min - q->output_zero_point);
        const __m256i hi = _mm256_set1_epi64x(q->act_max - q->output_zero_point);
        const __m256i zp = _mm256_set1_epi32(q->output_zero_point);
        const __m256i lo32 = _mm256_set1_epi32(q->act_min - q->output_zero_point);
        const __m256i hi32 = _mm256_set1_epi32(q->act_max - q->output_zero_point);
        for (; q->narrow && lane + 32 <= count; lane += 32) {
            const int32_t co = first + lane;
            npu_x86_store32(npu_x86_requant8_narrow(q, acc + lane, co, lo32, hi32, zp),
                            npu_x86_requant8_narrow(q, acc + lane + 8, co + 8, lo32, hi32, zp),
                            npu_x86_requant8_narrow(q, acc + lane + 16, co + 16, lo32, hi32, zp),
                            npu_x86_requant8_narrow(q, acc + lane + 24, co + 24, lo32, hi32, zp), y + co);
        }
        for (; q->narrow && lane + 8 <= count; lane += 8)
            npu_x86_store8(npu_x86_requant8_narrow(q, acc + lane, first + lane, lo32, hi32, zp), y + first + lane);
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
                                        q->output_zero_point, q->act_min, q->act_max,
                                        npu_channel_rounding(q->rounding, co, q->whole_blocks_end));
    }
}
#endif

/* One tap's `channels` input bytes as the tiles' int16 pairs less the zero point: row[p] holds
 * (x[2p] - zp) in its low half and (x[2p + 1] - zp) in its high half (0 past an odd last channel).
 * Little-endian, that is the channels widened to int16 in order: 16 per vector. */
NPU_X86 void npu_x86_widen_pairs(const int8_t* x, int32_t channels, int32_t zero_point, int32_t* row) {
    const __m256i zp = _mm256_set1_epi16((int16_t)zero_point);
    int32_t c = 0;
    for (; c + 16 <= channels; c += 16)
        _mm256_storeu_si256((__m256i*)(row + c / 2),
                            _mm256_sub_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(x + c))), zp));
    for (; c + 2 <= channels; c += 2)
        row[c / 2] = (int32_t)((uint32_t)(uint16_t)(int16_t)(x[c] - zero_point) |
                               ((uint32_t)(uint16_t)(int16_t)(x[c + 1] - zero_point) << 16));
    if (c < channels) row[c / 2] = (int32_t)(uint32_t)(uint16_t)(int16_t)(x[c] - zero_point);
}

/* PIXELS pixels x VECTORS registers of 8 output channels: acc[pixel * stride + 8 * v] = sum over the k
 * input pairs of each pixel (pairs[pixel * k + i], two int16 halves) times the tile's packed weights
 * (w[i][32 lanes][2] int16), by vpmaddwd. */
#define NPU_X86_TILE(PIXELS, VECTORS)                                                                          \
    static __attribute__((noinline, unused, target("avx2"))) void npu_x86_tile##PIXELS##_##VECTORS(            \
        const int32_t* pairs, int32_t k, const int16_t* w, int32_t* acc, int32_t stride) {                    \
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
            for (int v = 0; v < VECTORS; ++v) _mm256_storeu_si256((__m256i*)(acc + stride * p + 8 * v), a[p][v]); \
    }
NPU_X86_TILE(1, 1)
NPU_X86_TILE(1, 2)
NPU_X86_TILE(1, 3)
NPU_X86_TILE(1, 4)
NPU_X86_TILE(2, 1)
NPU_X86_TILE(2, 2)
NPU_X86_TILE(2, 3)
NPU_X86_TILE(2, 4)

/* ---- AVX-512 VNNI: vpdpbusd (unsigned x signed bytes, 4 products summed per int32 lane, no
 * saturation) where the compiler targets it (-march=native on such a CPU, as object builds are);
 * elsewhere the AVX2 pairs above. The kernels feed it x + 128 (x ^ 0x80) as the unsigned bytes and
 * fold -(zp + 128) * sum(w) into the bias at compile time: sum (x + 128) w - (zp + 128) sum w =
 * sum (x - zp) w, with a padding tap's bytes zp + 128 (adding exactly what it takes away). ---- */
#if NPU_X86_VNNI
#define NPU_X86_VNNI_ISA __attribute__((noinline, unused, target("avx512f,avx512bw,avx512vl,avx512vnni")))

/* One tap's `channels` input bytes as vpdpbusd's unsigned bytes, 4 channels per int32 word of row;
 * the last word's unused bytes 0x80 (their weights are 0). */
static inline __attribute__((always_inline, target("avx2"))) void npu_x86_vnni_quads(const int8_t* x, int32_t channels,
                                                                                    int32_t* row) {
    uint8_t* out = (uint8_t*)row;
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    int32_t c = 0;
    for (; c + 32 <= channels; c += 32)
        _mm256_storeu_si256((__m256i*)(out + c), _mm256_xor_si256(_mm256_loadu_si256((const __m256i*)(x + c)), flip));
    for (; c < channels; ++c) out[c] = (uint8_t)x[c] ^ 0x80;
    for (; c % 4; ++c) out[c] = 0x80;
}

/* A tap in the padding: `words` words of the byte zp + 128. */
static inline void npu_x86_vnni_padding(int32_t* row, int32_t words, int32_t zero_point) {
    const uint32_t byte = (uint8_t)zero_point ^ 0x80u;
    for (int32_t i = 0; i < words; ++i) row[i] = (int32_t)(byte * 0x01010101u);
}

/* PIXELS pixels x VECTORS registers of 16 output channels: acc[pixel * stride + 16 * v] = sum over
 * the k input words of each pixel (words[pixel * k + i], 4 unsigned bytes) times the tile's packed
 * weights (w[i][64 lanes][4] int8), by vpdpbusd. */
#define NPU_X86_VNNI_TILE(PIXELS, VECTORS)                                                                     \
    static NPU_X86_VNNI_ISA void npu_x86_vnni_tile##PIXELS##_##VECTORS(const int32_t* words, int32_t k,        \
                                                                       const int8_t* w, int32_t* acc,          \
                                                                       int32_t stride) {                       \
        __m512i a[PIXELS][VECTORS];                                                                            \
        for (int p = 0; p < PIXELS; ++p)                                                                       \
            for (int v = 0; v < VECTORS; ++v) a[p][v] = _mm512_setzero_si512();                               \
        for (int32_t i = 0; i < k; ++i, w += 256) {                                                            \
            __m512i wv[VECTORS];                                                                               \
            for (int v = 0; v < VECTORS; ++v) wv[v] = _mm512_loadu_si512((const void*)(w + 64 * v));           \
            for (int p = 0; p < PIXELS; ++p) {                                                                 \
                const __m512i x = _mm512_set1_epi32(words[p * k + i]);                                         \
                for (int v = 0; v < VECTORS; ++v) a[p][v] = _mm512_dpbusd_epi32(a[p][v], x, wv[v]);            \
            }                                                                                                  \
        }                                                                                                      \
        for (int p = 0; p < PIXELS; ++p)                                                                       \
            for (int v = 0; v < VECTORS; ++v) _mm512_storeu_si512((void*)(acc + stride * p + 16 * v), a[p][v]); \
    }
NPU_X86_VNNI_TILE(1, 1)
NPU_X86_VNNI_TILE(1, 2)
NPU_X86_VNNI_TILE(1, 3)
NPU_X86_VNNI_TILE(1, 4)
NPU_X86_VNNI_TILE(2, 1)
NPU_X86_VNNI_TILE(2, 2)
NPU_X86_VNNI_TILE(2, 3)
NPU_X86_VNNI_TILE(2, 4)

/* Depthwise convolution as npu_x86_depthwise below, with vpdpbusd: 4 taps per instruction (each
 * int32 lane holds one channel's bytes of 4 taps, x ^ 0x80: x + 128 unsigned), 16 channels per zmm.
 * Blocks of 64 channels take 64 bytes per tap and interleave them with in-lane unpacks (2 per
 * vpdpbusd, against 11 for 16 channels); register k's 128-bit lane L then holds channels
 * 16L + 4k .. 16L + 4k + 3, so the weights of whole 64-channel blocks are packed in that order and
 * the sums put back in order once per block (8 vshufi32x4). The channels after the last block go 16
 * at a time in order, the last partial 16 with masked loads (their weights are 0). Weights packed
 * [tap quad][channel rounded up to 16][4] int8 (0 past the last tap); the bias holds
 * -(zp + 128) * sum(w), and a padding tap reads a row of zero points, zp + 128 once flipped. */
static NPU_X86_VNNI_ISA void npu_x86_vnni_depthwise(const npu_depthwise_shape* s, const int8_t* w,
                                                    const npu_x86_requant* q, const int8_t* input, int8_t* output,
                                                    int64_t begin, int64_t end) {
    const int32_t channels = s->channels, stride = (channels + 15) / 16 * 16, blocks = channels / 64 * 64;
    const int32_t taps = s->kernel_h * s->kernel_w, quads = (taps + 3) / 4;
    int32_t storage[stride + 16];
    int32_t* acc = (int32_t*)(((uintptr_t)storage + 63) & ~(uintptr_t)63);
    int8_t zero_row[stride];
    for (int32_t ch = 0; ch < stride; ++ch) zero_row[ch] = (int8_t)s->input_zero_point;
    const int8_t* rows[4 * quads + 1]; /* + 1: npu_depthwise_rows_at also writes rows[taps] */
    for (int32_t tap = taps; tap < 4 * quads; ++tap) rows[tap] = zero_row; /* weights 0 */
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    int32_t b, oy, ox;
    npu_depthwise_pixel(s, begin, &b, &oy, &ox);
    for (int64_t pixel = begin; pixel < end; ++pixel, npu_depthwise_next(s, &b, &oy, &ox)) {
        npu_depthwise_rows_at(s, input, zero_row, b, oy, ox, rows);
        for (int32_t c0 = 0; c0 < blocks; c0 += 64) {
            __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
            const int8_t* wq = w + (size_t)c0 * 4;
            for (int32_t quad = 0; quad < quads; ++quad, wq += (size_t)stride * 4) {
                const int8_t* const* r = rows + 4 * quad;
                const __m512i t0 = _mm512_xor_si512(_mm512_loadu_si512((const void*)(r[0] + c0)), flip);
                const __m512i t1 = _mm512_xor_si512(_mm512_loadu_si512((const void*)(r[1] + c0)), flip);
                const __m512i t2 = _mm512_xor_si512(_mm512_loadu_si512((const void*)(r[2] + c0)), flip);
                const __m512i t3 = _mm512_xor_si512(_mm512_loadu_si512((const void*)(r[3] + c0)), flip);
                const __m512i lo01 = _mm512_unpacklo_epi8(t0, t1), hi01 = _mm512_unpackhi_epi8(t0, t1);
                const __m512i lo23 = _mm512_unpacklo_epi8(t2, t3), hi23 = _mm512_unpackhi_epi8(t2, t3);
                a0 = _mm512_dpbusd_epi32(a0, _mm512_unpacklo_epi16(lo01, lo23), _mm512_loadu_si512((const void*)wq));
                a1 = _mm512_dpbusd_epi32(a1, _mm512_unpackhi_epi16(lo01, lo23), _mm512_loadu_si512((const void*)(wq + 64)));
                a2 = _mm512_dpbusd_epi32(a2, _mm512_unpacklo_epi16(hi01, hi23), _mm512_loadu_si512((const void*)(wq + 128)));
                a3 = _mm512_dpbusd_epi32(a3, _mm512_unpackhi_epi16(hi01, hi23), _mm512_loadu_si512((const void*)(wq + 192)));
            }
            /* 4 x 4 transpose of 128-bit lanes: output m = lane m of a0..a3 */
            const __m512i u0 = _mm512_shuffle_i32x4(a0, a1, 0x44), u1 = _mm512_shuffle_i32x4(a0, a1, 0xEE);
            const __m512i u2 = _mm512_shuffle_i32x4(a2, a3, 0x44), u3 = _mm512_shuffle_i32x4(a2, a3, 0xEE);
            _mm512_store_si512((void*)(acc + c0), _mm512_shuffle_i32x4(u0, u2, 0x88));
            _mm512_store_si512((void*)(acc + c0 + 16), _mm512_shuffle_i32x4(u0, u2, 0xDD));
            _mm512_store_si512((void*)(acc + c0 + 32), _mm512_shuffle_i32x4(u1, u3, 0x88));
            _mm512_store_si512((void*)(acc + c0 + 48), _mm512_shuffle_i32x4(u1, u3, 0xDD));
        }
        for (int32_t c0 = blocks; c0 < channels; c0 += 16) {
            const __mmask16 m = channels - c0 >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (channels - c0)) - 1);
            __m512i a = _mm512_setzero_si512();
            for (int32_t quad = 0; quad < quads; ++quad) {
                const int8_t* const* r = rows + 4 * quad;
                const __m128i t0 = _mm_maskz_loadu_epi8(m, r[0] + c0), t1 = _mm_maskz_loadu_epi8(m, r[1] + c0);
                const __m128i t2 = _mm_maskz_loadu_epi8(m, r[2] + c0), t3 = _mm_maskz_loadu_epi8(m, r[3] + c0);
                const __m128i lo01 = _mm_unpacklo_epi8(t0, t1), hi01 = _mm_unpackhi_epi8(t0, t1);
                const __m128i lo23 = _mm_unpacklo_epi8(t2, t3), hi23 = _mm_unpackhi_epi8(t2, t3);
                __m512i x = _mm512_castsi128_si512(_mm_unpacklo_epi16(lo01, lo23));  /* channels 0-3 */
                x = _mm512_inserti32x4(x, _mm_unpackhi_epi16(lo01, lo23), 1);         /* 4-7 */
                x = _mm512_inserti32x4(x, _mm_unpacklo_epi16(hi01, hi23), 2);         /* 8-11 */
                x = _mm512_inserti32x4(x, _mm_unpackhi_epi16(hi01, hi23), 3);         /* 12-15 */
                x = _mm512_xor_si512(x, flip);
                a = _mm512_dpbusd_epi32(a, x, _mm512_loadu_si512((const void*)(w + ((size_t)quad * stride + c0) * 4)));
            }
            _mm512_store_si512((void*)(acc + c0), a);
        }
        npu_x86_requantize(q, acc, 0, channels, output + (size_t)pixel * channels);
    }
}
#endif

/* Depthwise convolution (groups == channels, depth multiplier 1) over output pixels [begin, end) of
 * the flat (batch, y, x) order: 8 channels per register, up to 32 per block held across the taps.
 * Taps go in pairs: the two taps' input bytes interleaved, widened to int16 less the zero point, times
 * the pair's int16 weights interleaved alike, by one vpmaddwd (|x - zp| <= 255, |w| <= 128: no
 * saturation). A tap in the padding reads a row of zero points (x - zp = 0 adds nothing, as the
 * reference's skipped tap); an odd tap count ends with a zero weight. Weights packed
 * [pair][channel rounded up to 8][2] int16; the last channels one by one. */
static __attribute__((noinline, unused, target("avx2"))) void npu_x86_depthwise(
    const npu_depthwise_shape* s, const int16_t* w, const npu_x86_requant* q, const int8_t* input, int8_t* output,
    int64_t begin, int64_t end) {
    const int32_t channels = s->channels, stride = (channels + 7) / 8 * 8, whole = channels / 8 * 8;
    const int32_t taps = s->kernel_h * s->kernel_w, pairs = (taps + 1) / 2;
    int32_t storage[stride + 8];
    int32_t* acc = (int32_t*)(((uintptr_t)storage + 31) & ~(uintptr_t)31);
    int8_t zero_row[stride];
    for (int32_t ch = 0; ch < stride; ++ch) zero_row[ch] = (int8_t)s->input_zero_point;
    const int8_t* rows[taps + 1];
    const __m256i zp = _mm256_set1_epi16((int16_t)s->input_zero_point);
    for (int64_t pixel = begin; pixel < end; ++pixel) {
        npu_depthwise_rows(s, input, zero_row, pixel, rows);
        /* blocks of 32 channels; the last also takes the channels after the last whole vector */
        for (int32_t c0 = 0; c0 < channels; c0 += 32) {
            const int32_t vectors = whole - c0 >= 32 ? 4 : (whole > c0 ? (whole - c0) / 8 : 0);
            __m256i a[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                            _mm256_setzero_si256()};
            for (int32_t pair = 0; pair < pairs; ++pair) {
                const int8_t *x0 = rows[2 * pair] + c0, *x1 = rows[2 * pair + 1] + c0;
                const int16_t* wt = w + ((size_t)pair * stride + c0) * 2;
                for (int32_t v = 0; v < vectors; ++v) {
                    const __m128i both = _mm_unpacklo_epi8(_mm_loadl_epi64((const __m128i*)(x0 + 8 * v)),
                                                           _mm_loadl_epi64((const __m128i*)(x1 + 8 * v)));
                    const __m256i x = _mm256_sub_epi16(_mm256_cvtepi8_epi16(both), zp);
                    a[v] = _mm256_add_epi32(a[v], _mm256_madd_epi16(x, _mm256_load_si256((const __m256i*)(wt + 16 * v))));
                }
            }
            for (int32_t v = 0; v < vectors; ++v) _mm256_store_si256((__m256i*)(acc + c0 + 8 * v), a[v]);
        }
        for (int32_t ch = whole; ch < channels; ++ch) {
            int32_t sum = 0;
            for (int32_t tap = 0; tap < taps; ++tap)
                sum += ((int32_t)rows[tap][ch] - s->input_zero_point) * w[((size_t)(tap / 2) * stride + ch) * 2 + tap % 2];
            acc[ch] = sum;
        }
        npu_x86_requantize(q, acc, 0, channels, output + (size_t)pixel * channels);
    }
}

#endif /* NPU_X86_QUANT_H */
