/* RVV (v1.0, Zve32x) requantisation: npu_quant.h's single-rounding arithmetic on int32 vectors.
 *
 * Generated Coral kernels (cpp/) call these; every function is bit-exact to npu_requantize()
 * lane by lane (tests/coral/test_rvv_quant.py runs them in QEMU against the scalar code).
 * Zve32x has no 64-bit elements, so the 64-bit product x * multiplier is built from vmulh (high
 * word) and vmul (low word); vsmul would be gemmlowp's double rounding, which we do not use.
 *
 * For rounding shift s = 31 - shift (in [1, 62]):
 *   s >= 33 (shift <= -2, real multiplier < 0.25, the common case): the rounding constant
 *     2^(s-1) lies wholly in the high word and the low word can never carry into the result:
 *     r = (hi + 2^(s-33)) >> (s-32).  No saturation is possible (|r| < 2^30).
 *   otherwise the 64-bit sum (hi:lo) + 2^(s-1) is formed with an explicit carry, shifted right
 *     by s across the two words, and saturated to int32 (possible only when s < 32).
 * Each family comes per LMUL of the int32 vector (m1, m2, m4, m8):
 *   npu_rvv_mbqm_big_<lmul>(acc, multiplier, right, round, vl)   every lane s >= 33; right = s - 32,
 *                                                               round = 1 << (s - 33), per lane
 *   npu_rvv_mbqm_<lmul>(acc, multiplier, shift, vl)              any shifts, per lane
 *   npu_rvv_mbqm_x_<lmul>(acc, multiplier, shift, vl)            one multiplier/shift for all lanes
 *   npu_rvv_clamp_zp_<lmul>(r, zero_point, act_min, act_max, vl) clamp(r + zp) without int32 overflow
 *   npu_rvv_store_s8_<lmul>(dst, v, vl)                           narrow lanes already in int8 range
 *   npu_rvv_load_s8_<lmul>(src, vl)                               int8 -> int32 lanes
 * and the double rounding of TFLite models (npu_quant.h npu_multiply_by_quantized_multiplier_double):
 *   npu_rvv_mbqm_double_x_<lmul>(acc, multiplier, shift, ties_up, vl)  one multiplier/shift for all lanes
 *   npu_rvv_mbqm_double_<lmul>(acc, multiplier, shift, ties_up, vl)    per lane
 */
#ifndef NPU_RVV_QUANT_H
#define NPU_RVV_QUANT_H

#include <riscv_vector.h>
#include <stdint.h>

/* LMUL, mask type of an int32 vector at that LMUL, int16 and int8 LMULs of the narrowed vectors. */
#define NPU_RVV_QUANT_DEFINE(L, B, L16, L8)                                                              \
  static inline vint32##L##_t npu_rvv_mbqm_big_##L(vint32##L##_t acc, vint32##L##_t multiplier,            \
                                                  vint32##L##_t right, vint32##L##_t round, size_t vl) {    \
    vint32##L##_t hi = __riscv_vmulh_vv_i32##L(acc, multiplier, vl);                                       \
    hi = __riscv_vadd_vv_i32##L(hi, round, vl);                                                            \
    return __riscv_vsra_vv_i32##L(hi, __riscv_vreinterpret_v_i32##L##_u32##L(right), vl);                 \
  }                                                                                                        \
                                                                                                           \
  /* (hi:lo) >> s for lanes with s in [1, 31], saturated to int32; other lanes unspecified. */            \
  static inline vint32##L##_t npu_rvv_shift64_small_##L(vint32##L##_t hi, vuint32##L##_t lo,             \
                                                        vuint32##L##_t s, size_t vl) {                    \
    vuint32##L##_t left = __riscv_vrsub_vx_u32##L(s, 32, vl);                                            \
    vuint32##L##_t low_part = __riscv_vsrl_vv_u32##L(lo, s, vl);                                          \
    vint32##L##_t r = __riscv_vor_vv_i32##L(__riscv_vsll_vv_i32##L(hi, left, vl),                        \
                                            __riscv_vreinterpret_v_u32##L##_i32##L(low_part), vl);         \
    /* The result fits int32 iff hi >> (s - 1) is all sign bits. */                                       \
    vint32##L##_t top = __riscv_vsra_vv_i32##L(hi, __riscv_vsub_vx_u32##L(s, 1, vl), vl);                \
    vint32##L##_t sign = __riscv_vsra_vx_i32##L(hi, 31, vl);                                              \
    vbool##B##_t overflow = __riscv_vmsne_vv_i32##L##_b##B(top, sign, vl);                                \
    vbool##B##_t negative = __riscv_vmslt_vx_i32##L##_b##B(hi, 0, vl);                                    \
    r = __riscv_vmerge_vxm_i32##L(r, INT32_MAX, __riscv_vmandn_mm_b##B(overflow, negative, vl), vl);      \
    return __riscv_vmerge_vxm_i32##L(r, INT32_MIN, __riscv_vmand_mm_b##B(overflow, negative, vl), vl);    \
  }                                                                                                        \
                                                                                                           \
  static inline vint32##L##_t npu_rvv_mbqm_##L(vint32##L##_t acc, vint32##L##_t multiplier,                \
                                              vint32##L##_t shift, size_t vl) {                             \
    vuint32##L##_t s = __riscv_vreinterpret_v_i32##L##_u32##L(__riscv_vrsub_vx_i32##L(shift, 31, vl));   \
    vint32##L##_t hi = __riscv_vmulh_vv_i32##L(acc, multiplier, vl);                                       \
    vuint32##L##_t lo = __riscv_vreinterpret_v_i32##L##_u32##L(__riscv_vmul_vv_i32##L(acc, multiplier, vl)); \
    /* 2^(s-1): bit (s-1) mod 32 of the low word when s <= 32, of the high word when s >= 33. */          \
    vbool##B##_t high_round = __riscv_vmsgtu_vx_u32##L##_b##B(s, 32, vl);                                 \
    vuint32##L##_t bit = __riscv_vsll_vv_u32##L(__riscv_vmv_v_x_u32##L(1, vl),                            \
                                                __riscv_vsub_vx_u32##L(s, 1, vl), vl);                    \
    vuint32##L##_t round_lo = __riscv_vmerge_vxm_u32##L(bit, 0, high_round, vl);                          \
    vuint32##L##_t round_hi = __riscv_vmerge_vvm_u32##L(__riscv_vmv_v_x_u32##L(0, vl), bit, high_round, vl); \
    lo = __riscv_vadd_vv_u32##L(lo, round_lo, vl);                                                         \
    vbool##B##_t carry = __riscv_vmsltu_vv_u32##L##_b##B(lo, round_lo, vl);                               \
    hi = __riscv_vadd_vv_i32##L(hi, __riscv_vreinterpret_v_u32##L##_i32##L(round_hi), vl);               \
    hi = __riscv_vadc_vxm_i32##L(hi, 0, carry, vl);                                                        \
    /* s >= 32: the result is the high word shifted by s - 32 (no saturation possible). */               \
    vint32##L##_t big = __riscv_vsra_vv_i32##L(hi, __riscv_vsub_vx_u32##L(s, 32, vl), vl);               \
    vint32##L##_t small = npu_rvv_shift64_small_##L(hi, lo, s, vl);                                       \
    return __riscv_vmerge_vvm_i32##L(small, big, __riscv_vmsgtu_vx_u32##L##_b##B(s, 31, vl), vl);         \
  }                                                                                                        \
                                                                                                           \
  static inline vint32##L##_t npu_rvv_mbqm_x_##L(vint32##L##_t acc, int32_t multiplier, int32_t shift,     \
                                                size_t vl) {                                                \
    int32_t s = 31 - shift;                                                                                \
    vint32##L##_t hi = __riscv_vmulh_vx_i32##L(acc, multiplier, vl);                                       \
    /* vssra rounding to nearest, ties up (RNU): (hi + 2^(s-33)) >> (s-32) in one instruction. */       \
    if (s >= 33) return __riscv_vssra_vx_i32##L(hi, (size_t)(s - 32), __RISCV_VXRM_RNU, vl);               \
    uint32_t round_lo = 1u << (s - 1);                                                                     \
    vuint32##L##_t lo = __riscv_vreinterpret_v_i32##L##_u32##L(__riscv_vmul_vx_i32##L(acc, multiplier, vl)); \
    lo = __riscv_vadd_vx_u32##L(lo, round_lo, vl);                                                         \
    hi = __riscv_vadc_vxm_i32##L(hi, 0, __riscv_vmsltu_vx_u32##L##_b##B(lo, round_lo, vl), vl);           \
    if (s == 32) return hi;                                                                                \
    return npu_rvv_shift64_small_##L(hi, lo, __riscv_vmv_v_x_u32##L((uint32_t)s, vl), vl);                \
  }                                                                                                        \
                                                                                                           \
  /* clamp(r + zp, act_min, act_max) as clamp(r, act_min - zp, act_max - zp) + zp: no overflow when r   \
   * saturated to an int32 limit (npu_requantize adds in 64 bits for the same reason). */                \
  static inline vint32##L##_t npu_rvv_clamp_zp_##L(vint32##L##_t r, int32_t zero_point, int32_t act_min,   \
                                                  int32_t act_max, size_t vl) {                             \
    r = __riscv_vmax_vx_i32##L(r, act_min - zero_point, vl);                                               \
    r = __riscv_vmin_vx_i32##L(r, act_max - zero_point, vl);                                               \
    return __riscv_vadd_vx_i32##L(r, zero_point, vl);                                                      \
  }                                                                                                        \
                                                                                                           \
  static inline void npu_rvv_store_s8_##L(int8_t* dst, vint32##L##_t v, size_t vl) {                       \
    vint16##L16##_t h = __riscv_vncvt_x_x_w_i16##L16(v, vl);                                               \
    __riscv_vse8_v_i8##L8(dst, __riscv_vncvt_x_x_w_i8##L8(h, vl), vl);                                     \
  }                                                                                                        \
                                                                                                           \
  static inline vint32##L##_t npu_rvv_load_s8_##L(const int8_t* src, size_t vl) {                          \
    return __riscv_vsext_vf4_i32##L(__riscv_vle8_v_i8##L8(src, vl), vl);                                   \
  }                                                                                                        \
                                                                                                           \
  /* h - 1 in the negative lanes: before an RNU shift (by at least 1), ties go away from zero. h is a  \
   * vsmul result, never INT32_MIN. */                                                                    \
  static inline vint32##L##_t npu_rvv_minus_sign_##L(vint32##L##_t h, size_t vl) {                        \
    return __riscv_vadd_vv_i32##L(h, __riscv_vsra_vx_i32##L(h, 31, vl), vl);                              \
  }                                                                                                        \
                                                                                                           \
  /* npu_rvv_minus_sign unless ties_up (LiteRT's depthwise chooses per output channel). */                 \
  static inline vint32##L##_t npu_rvv_minus_sign_unless_##L(vint32##L##_t h, int ties_up, size_t vl) {      \
    return ties_up ? h : npu_rvv_minus_sign_##L(h, vl);                                                    \
  }                                                                                                        \
                                                                                                           \
  /* Double rounding (npu_multiply_by_quantized_multiplier_double), one multiplier and shift: vsmul with  \
   * round-to-nearest-up is gemmlowp's doubling high multiply; a negative lane minus one, shifted with     \
   * RNU, is the shift with ties away from zero (ties_up: the RNU shift alone, ruy's). */                 \
  static inline vint32##L##_t npu_rvv_mbqm_double_x_##L(vint32##L##_t acc, int32_t multiplier, int32_t shift, \
                                                       int ties_up, size_t vl) {                             \
    if (shift > 0) acc = __riscv_vsll_vx_i32##L(acc, (size_t)shift, vl);                                  \
    vint32##L##_t high = __riscv_vsmul_vx_i32##L(acc, multiplier, __RISCV_VXRM_RNU, vl);                   \
    if (shift >= 0) return high;                                                                           \
    if (!ties_up) high = npu_rvv_minus_sign_##L(high, vl);                                                  \
    return __riscv_vssra_vx_i32##L(high, (size_t)-shift, __RISCV_VXRM_RNU, vl);                            \
  }                                                                                                        \
                                                                                                           \
  /* The same with a multiplier and a shift per lane. */                                                  \
  static inline vint32##L##_t npu_rvv_mbqm_double_##L(vint32##L##_t acc, vint32##L##_t multiplier,         \
                                                     vint32##L##_t shift, int ties_up, size_t vl) {          \
    vint32##L##_t left = __riscv_vmax_vx_i32##L(shift, 0, vl);                                             \
    vint32##L##_t right = __riscv_vmax_vx_i32##L(__riscv_vneg_v_i32##L(shift, vl), 0, vl);                 \
    acc = __riscv_vsll_vv_i32##L(acc, __riscv_vreinterpret_v_i32##L##_u32##L(left), vl);                   \
    vint32##L##_t high = __riscv_vsmul_vv_i32##L(acc, multiplier, __RISCV_VXRM_RNU, vl);                   \
    if (!ties_up) {                                                                                        \
      vbool##B##_t shifted = __riscv_vmsgt_vx_i32##L##_b##B(right, 0, vl);                                 \
      high = __riscv_vadd_vv_i32##L##_mu(shifted, high, high, __riscv_vsra_vx_i32##L(high, 31, vl), vl);   \
    }                                                                                                      \
    return __riscv_vssra_vv_i32##L(high, __riscv_vreinterpret_v_i32##L##_u32##L(right), __RISCV_VXRM_RNU, vl); \
  }

NPU_RVV_QUANT_DEFINE(m1, 32, mf2, mf4)
NPU_RVV_QUANT_DEFINE(m2, 16, m1, mf2)
NPU_RVV_QUANT_DEFINE(m4, 8, m2, m1)
NPU_RVV_QUANT_DEFINE(m8, 4, m4, m2)

#undef NPU_RVV_QUANT_DEFINE

#endif /* NPU_RVV_QUANT_H */
