/* arm64 NEON int8 multiply-accumulate tiles and requantisation: what the NEON emitter family's
 * kernels (cpp/src/neon_mac.cc) call. tests/coral/test_arm64_target.py checks every kernel bit for
 * bit against the reference in qemu-aarch64, on a CPU model with the dot product (Cortex-A76) and
 * one without (Cortex-A72).
 *
 * Products: a pixel's inputs are gathered as raw int8 bytes, 4 consecutive ones (of the flattened
 * taps x channels) per int32 word, a tap in the padding filled with the input zero point. Weights are
 * packed at compile time [tile of 16 channels][word][16 channels][4 bytes]: one word of 4 inputs
 * against 4 registers of 4 channels x 4 bytes. sum w * (x - zp) = sum w * x - zp * sum w, and the
 * second term (over every tap, the padding's included: there x - zp = 0) is folded with the bias into
 * one per-channel offset at compile time, so the products are int8 x int8:
 *   - with the dot product (__ARM_FEATURE_DOTPROD, Armv8.2+): sdot, 16 MACs per instruction;
 *   - without (Armv8.0, Cortex-A53/A72): smull (8 int16 products, exact: |w x| <= 2^14) and sadalp
 *     (pairwise into int32), 8 MACs per 2 instructions, and one addp per register at the end.
 * Both orders of summation are exact integer sums: the results equal the reference's.
 *
 * Requantisation (TFLite's single rounding of ONNX models): 64-bit products (smull), the rounding
 * right shift of srshl (ties up, as (x m + 2^(s-1)) >> s), saturation to int32 (sqxtn), the zero
 * point added saturating and the activation clamp. TFLite's double roundings go channel by channel
 * through npu_quant.h, as the reference.
 */
#ifndef NPU_NEON_QUANT_H
#define NPU_NEON_QUANT_H

#include <arm_neon.h>
#include <stddef.h>
#include <stdint.h>

#include "npu_depthwise.h"
#include "npu_quant.h"

#define NPU_NEON static inline __attribute__((always_inline))

/* A kernel's per-channel requantisation; every array padded to a multiple of 4 channels. */
typedef struct {
    const int32_t* offset;     /* bias - input zero point x the channel's weight sum */
    const int32_t* multiplier; /* the reference's */
    const int64_t* right;      /* -(31 - shift): srshl's rounding right shift */
    const int32_t* shift;      /* the reference's (the double roundings, and the narrow path) */
    int32_t output_zero_point, act_min, act_max, rounding;
    int32_t narrow; /* every shift <= -1: the 32-bit path of npu_neon_requant4 is exact */
    int32_t whole_blocks_end; /* npu_channel_rounding's split (NPU_ROUND_BLOCKS_OF_8) */
} npu_neon_requant;

/* 4 sums of channels co.. -> int32 in [act_min, act_max] (single rounding). With every shift = -k <=
 * -1 (q->narrow: nearly every layer), (x m + 2^(30+k)) >> (31+k) = (floor(x m / 2^31) + 2^(k-1)) >> k,
 * because 2^(30+k) is a multiple of 2^31: sqdmulh (floor(2 x m / 2^32)) then srshl by -k, two 32-bit
 * instructions. Otherwise 64-bit products (smull) and srshl by -(31 - shift). */
NPU_NEON int32x4_t npu_neon_requant4(const npu_neon_requant* q, int32x4_t acc, int32_t co) {
    const int32x4_t x = vaddq_s32(acc, vld1q_s32(q->offset + co));
    const int32x4_t m = vld1q_s32(q->multiplier + co);
    int32x4_t v;
    if (q->narrow) {
        v = vrshlq_s32(vqdmulhq_s32(x, m), vld1q_s32(q->shift + co));
    } else {
        const int64x2_t lo = vrshlq_s64(vmull_s32(vget_low_s32(x), vget_low_s32(m)), vld1q_s64(q->right + co));
        const int64x2_t hi = vrshlq_s64(vmull_high_s32(x, m), vld1q_s64(q->right + co + 2));
        v = vcombine_s32(vqmovn_s64(lo), vqmovn_s64(hi));
    }
    v = vqaddq_s32(v, vdupq_n_s32(q->output_zero_point));
    return vminq_s32(vmaxq_s32(v, vdupq_n_s32(q->act_min)), vdupq_n_s32(q->act_max));
}

/* 16 values already in [-128, 127] -> 16 bytes at y. */
NPU_NEON void npu_neon_store16(int32x4_t a, int32x4_t b, int32x4_t c, int32x4_t d, int8_t* y) {
    const int16x8_t ab = vcombine_s16(vqmovn_s32(a), vqmovn_s32(b)), cd = vcombine_s16(vqmovn_s32(c), vqmovn_s32(d));
    vst1q_s8(y, vcombine_s8(vqmovn_s16(ab), vqmovn_s16(cd)));
}

/* 4 values already in [-128, 127] -> 4 bytes at y. */
NPU_NEON void npu_neon_store4(int32x4_t a, int8_t* y) {
    const int16x4_t half = vqmovn_s32(a);
    vst1_lane_s32((int32_t*)(void*)y, vreinterpret_s32_s8(vqmovn_s16(vcombine_s16(half, half))), 0);
}

/* `count` sums at acc -> the output row y. Out of line: one copy per file, called per pixel. The
 * struct is copied first: stores through y (int8_t, which may alias anything) would make the
 * compiler reload its fields after each. */
static __attribute__((noinline, unused)) void npu_neon_requantize(const npu_neon_requant* qp, const int32_t* acc,
                                                                  int32_t count, int8_t* y) {
    const npu_neon_requant rq = *qp, *q = &rq;
    int32_t co = 0;
    if (q->rounding == NPU_ROUND_SINGLE) {
        for (; co + 16 <= count; co += 16)
            npu_neon_store16(npu_neon_requant4(q, vld1q_s32(acc + co), co),
                             npu_neon_requant4(q, vld1q_s32(acc + co + 4), co + 4),
                             npu_neon_requant4(q, vld1q_s32(acc + co + 8), co + 8),
                             npu_neon_requant4(q, vld1q_s32(acc + co + 12), co + 12), y + co);
        for (; co + 4 <= count; co += 4) npu_neon_store4(npu_neon_requant4(q, vld1q_s32(acc + co), co), y + co);
    }
    for (; co < count; ++co)
        y[co] = npu_requantize_rounding((int32_t)((uint32_t)acc[co] + (uint32_t)q->offset[co]), q->multiplier[co],
                                        q->shift[co], q->output_zero_point, q->act_min, q->act_max,
                                        npu_channel_rounding(q->rounding, co, q->whole_blocks_end));
}

/* `bytes` bytes from x to row (no C library here: memcpy would be the runtime's byte loop). */
NPU_NEON void npu_neon_copy(const int8_t* x, int32_t bytes, int8_t* row) {
    int32_t c = 0;
    for (; c + 16 <= bytes; c += 16) vst1q_s8(row + c, vld1q_s8(x + c));
    for (; c < bytes; ++c) row[c] = x[c];
}

NPU_NEON void npu_neon_fill(int8_t value, int32_t bytes, int8_t* row) {
    int32_t c = 0;
    for (; c + 16 <= bytes; c += 16) vst1q_s8(row + c, vdupq_n_s8(value));
    for (; c < bytes; ++c) row[c] = value;
}

/* One word (4 int8 inputs) times one register of weights (4 channels x the same 4 inputs). */
#if defined(__ARM_FEATURE_DOTPROD)
typedef int32x4_t npu_neon_acc; /* 4 channels' sums */
#define NPU_NEON_ZERO() vdupq_n_s32(0)
#define NPU_NEON_MAC(a, w, x) ((a) = vdotq_s32((a), (w), (x)))
#define NPU_NEON_SUMS(a) (a)
#else
typedef struct { int32x4_t lo, hi; } npu_neon_acc; /* channels 0-1 and 2-3, each as two half sums */
#define NPU_NEON_ZERO() ((npu_neon_acc){vdupq_n_s32(0), vdupq_n_s32(0)})
#define NPU_NEON_MAC(a, w, x)                                                     \
    ((a).lo = vpadalq_s16((a).lo, vmull_s8(vget_low_s8(w), vget_low_s8(x))),  \
     (a).hi = vpadalq_s16((a).hi, vmull_s8(vget_high_s8(w), vget_low_s8(x))))
#define NPU_NEON_SUMS(a) vpaddq_s32((a).lo, (a).hi)
#endif

/* PIXELS pixels x VECTORS registers of 4 output channels: acc[pixel * stride + 4 * v] = the sum over
 * the k words of each pixel (rows[pixel * k + i]) times the tile's packed weights (w[i][16][4]). */
#define NPU_NEON_TILE(PIXELS, VECTORS)                                                                       \
    static __attribute__((noinline, unused)) void npu_neon_tile##PIXELS##_##VECTORS(                         \
        const int32_t* rows, int32_t k, const int8_t* w, int32_t* acc, int32_t stride) {                     \
        npu_neon_acc a[PIXELS][VECTORS];                                                                     \
        for (int p = 0; p < PIXELS; ++p)                                                                     \
            for (int v = 0; v < VECTORS; ++v) a[p][v] = NPU_NEON_ZERO();                                     \
        for (int32_t i = 0; i < k; ++i, w += 64) {                                                           \
            int8x16_t wv[VECTORS];                                                                           \
            for (int v = 0; v < VECTORS; ++v) wv[v] = vld1q_s8(w + 16 * v);                                  \
            for (int p = 0; p < PIXELS; ++p) {                                                               \
                const int8x16_t x = vreinterpretq_s8_s32(vdupq_n_s32(rows[p * k + i]));                     \
                for (int v = 0; v < VECTORS; ++v) NPU_NEON_MAC(a[p][v], wv[v], x);                           \
            }                                                                                                \
        }                                                                                                    \
        for (int p = 0; p < PIXELS; ++p)                                                                     \
            for (int v = 0; v < VECTORS; ++v) vst1q_s32(acc + stride * p + 4 * v, NPU_NEON_SUMS(a[p][v]));   \
    }
NPU_NEON_TILE(1, 1)
NPU_NEON_TILE(1, 2)
NPU_NEON_TILE(1, 3)
NPU_NEON_TILE(1, 4)
NPU_NEON_TILE(2, 1)
NPU_NEON_TILE(2, 2)
NPU_NEON_TILE(2, 3)
NPU_NEON_TILE(2, 4)

/* Depthwise convolution (groups == channels, depth multiplier 1) over output pixels [begin, end) of
 * the flat (batch, y, x) order, 8 channels per step: each tap's inputs less the zero point as int16
 * (ssubl: exact, |x - zp| <= 255) times the tap's int16 weights, accumulated in int32 (smlal, smlal2).
 * A tap in the padding reads a row of zero points (x - zp = 0 adds nothing, as the reference's
 * skipped tap). Weights packed [tap][channel rounded up to 8] int16; the channels after the last 8
 * one by one. The requantisation's offsets are the bias alone. */
/* Inlined into each kernel, whose shape is a static constant: the tap count and strides fold, the tap
 * loop unrolls. */
NPU_NEON void npu_neon_depthwise(const npu_depthwise_shape* s, const int16_t* w, const npu_neon_requant* q,
                                 const int8_t* input, int8_t* output, int64_t begin, int64_t end) {
    const int32_t channels = s->channels, stride = (channels + 7) / 8 * 8, whole = channels / 8 * 8;
    const int32_t taps = s->kernel_h * s->kernel_w;
    int32_t acc[stride] __attribute__((aligned(16)));
    int8_t zero_row[stride];
    npu_neon_fill((int8_t)s->input_zero_point, stride, zero_row);
    const int8_t* rows[taps + 1];
    const int8x8_t zp = vdup_n_s8((int8_t)s->input_zero_point);
    const int single = q->rounding == NPU_ROUND_SINGLE; /* requantise in registers, 8 channels at a time */
    for (int64_t pixel = begin; pixel < end; ++pixel) {
        npu_depthwise_rows(s, input, zero_row, pixel, rows);
        int8_t* y = output + (size_t)pixel * channels;
        for (int32_t c = 0; c < whole; c += 8) {
            int32x4_t lo = vdupq_n_s32(0), hi = vdupq_n_s32(0);
#pragma clang loop unroll(full) /* a constant tap count once inlined: the row pointers stay in registers */
            for (int32_t tap = 0; tap < taps; ++tap) {
                const int16x8_t x = vsubl_s8(vld1_s8(rows[tap] + c), zp);
                const int16x8_t wt = vld1q_s16(w + (size_t)tap * stride + c);
                lo = vmlal_s16(lo, vget_low_s16(x), vget_low_s16(wt));
                hi = vmlal_high_s16(hi, x, wt);
            }
            if (single) {
                const int32x4_t a = npu_neon_requant4(q, lo, c), b = npu_neon_requant4(q, hi, c + 4);
                vst1_s8(y + c, vqmovn_s16(vcombine_s16(vqmovn_s32(a), vqmovn_s32(b))));
            } else {
                vst1q_s32(acc + c, lo);
                vst1q_s32(acc + c + 4, hi);
            }
        }
        for (int32_t c = whole; c < channels; ++c) {
            int32_t sum = 0;
            for (int32_t tap = 0; tap < taps; ++tap)
                sum += ((int32_t)rows[tap][c] - s->input_zero_point) * w[(size_t)tap * stride + c];
            acc[c] = sum;
        }
        if (single) { /* the channels after the last 8, as the reference */
            for (int32_t c = whole; c < channels; ++c)
                y[c] = npu_requantize_rounding((int32_t)((uint32_t)acc[c] + (uint32_t)q->offset[c]), q->multiplier[c],
                                               q->shift[c], q->output_zero_point, q->act_min, q->act_max, q->rounding);
        } else {
            npu_neon_requantize(q, acc, channels, y);
        }
    }
}

#endif /* NPU_NEON_QUANT_H */
