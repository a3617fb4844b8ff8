"""INT8 softmax along the last axis, TFLite-exact (gemmlowp fixed point), in NumPy.

The spec for kernels/ref/softmax_s8.c (declared in kernels/include/npu_kernels_softmax.h) and for
the generated kernel (cpp/src/softmax.cc); tests demand bit equality between them
(tests/kernels/test_softmax.py, tests/coral/test_kernels_softmax.py). TFLite's int8 SOFTMAX is
reference_ops::Softmax(SoftmaxParams, int8 -> int8); per row:

    max_in = max(row)
    diff   = x - max_in                                            (in [-255, 0])
    a      = SRDHM(diff << input_left_shift, input_multiplier)     (MultiplyByQuantizedMultiplier-
                                                                    GreaterThanOne: Q5.26)
    e      = exp_on_negative_values(a)           if diff >= diff_min, else nothing   (Q0.31)
    sum    = sum of RoundingDivideByPOT(e, 12)                                        (Q12.19)
    scale, num_bits_over_unit = GetReciprocal(sum, 12)     (one_over_one_plus_x_for_x_in_0_1)
    out    = clamp(RoundingDivideByPOT(SRDHM(scale, e), num_bits_over_unit + 23) - 128, -128, 127)
             (-128 where diff < diff_min)

Rounding, step by step. None of this is the repository's TFLITE_SINGLE_ROUNDING requantisation
(compiler/quant/fixed_point.py); softmax is gemmlowp's own arithmetic, done exactly as gemmlowp:
- SRDHM (SaturatingRoundingDoublingHighMul): (a*b + nudge) / 2^31 truncated toward zero, nudge
  2^30 or 1 - 2^30 by the sign of a*b, INT32_MIN*INT32_MIN saturated. That is round half up
  (toward +inf) for either sign: floor((a*b + 2^30) / 2^31), which is what RVV's vsmul with
  vxrm = RNU computes (the generated kernel relies on that identity; the QEMU tests check it).
- RoundingDivideByPOT: round half away from zero.
- Saturating left shifts (Rescale to fewer integer bits) clamp to the int32 limits.
- Additions of fixed-point values: plain int32 additions (gemmlowp wraps; none can overflow here,
  bounds in the comments below).

Two cases TFLite leaves undefined, defined here the only sensible way:
- The output shift num_bits_over_unit + 23 exceeds gemmlowp's limit of 31 when sum >= 512.0
  (rows of 512 or more elements near the maximum). RoundingDivideByPOT is computed exactly for
  any shift: SRDHM(scale, e) is in [0, 2^31), so every output of such a row is 0 (-128 after the
  zero point), which is also the correctly rounded softmax (each probability is <= 1/512).
- TFLite's int32 sum overflows at 4096.0 (depth >= 4096); here the sum saturates at INT32_MAX
  (its terms are >= 0, so saturating once at the end is the same).

Params (softmax_params) as TFLite Micro's Prepare: PreprocessSoftmaxScaling(beta, input_scale, 5)
(real multiplier beta * s_in * 2^26 capped at 2^31 - 1, QuantizeMultiplierGreaterThanOne) and
diff_min = -CalculateInputRadius(5, input_left_shift, 31) = -floor(31 * 2^26 / 2^left_shift).
TFLite keeps beta and the scale as float32, so both are rounded to float32 first.
"""

import math

import numpy as np

from compiler.quant.fixed_point import INT32_MAX, INT32_MIN
from compiler.quant.reference.elementwise import _int8_array, _int_value, _scale

__all__ = ["softmax_params", "softmax_s8"]

SCALED_DIFF_INTEGER_BITS = 5  # kScaledDiffIntegerBits: exp's input is Q5.26
ACCUMULATION_INTEGER_BITS = 12  # kAccumulationIntegerBits: the sum is Q12.19
OUTPUT_BITS = 8  # int8 output: scale 1/256, zero point -128
OUTPUT_ZERO_POINT = -128

# exp(-2^k) in Q0.31 for k = -2..4: the barrel shifter's multipliers (gemmlowp's constants).
_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308), (2, 39332535), (3, 720401),
               (4, 242))
_EXP_MINUS_ONE_EIGHTH = 1895147668  # exp(-1/8) in Q0.31
_ONE_THIRD = 715827883  # 1/3 in Q0.31
_FORTY_EIGHT_OVER_SEVENTEEN = 1515870810  # 48/17 in Q2.29
_MINUS_THIRTY_TWO_OVER_SEVENTEEN = -1010580540  # -32/17 in Q2.29


def softmax_params(input_scale, beta=1.0) -> dict:
    """input_multiplier, input_left_shift and diff_min of softmax_s8, as TFLite Micro's Prepare.

    ValueError for a scale or beta that is not a positive finite float32, or when
    beta * input_scale * 2^26 <= 1 (TFLite's QuantizeMultiplierGreaterThanOne refuses it).
    """
    s_in = _scale(input_scale, "input_scale")
    b = _scale(beta, "beta")
    real = min(b * s_in * float(1 << (31 - SCALED_DIFF_INTEGER_BITS)), float((1 << 31) - 1))
    if not real > 1.0:
        raise ValueError(f"beta * input_scale = {b * s_in} is too small: TFLite needs beta * input_scale * 2^26 > 1")
    significand, shift = math.frexp(real)  # QuantizeMultiplier: round half away, renormalise 2^31
    multiplier = int(math.floor(significand * (1 << 31) + 0.5))
    if multiplier == 1 << 31:
        multiplier //= 2
        shift += 1
    radius = ((1 << SCALED_DIFF_INTEGER_BITS) - 1) * (1 << (31 - SCALED_DIFF_INTEGER_BITS)) / float(1 << shift)
    return dict(input_multiplier=multiplier, input_left_shift=shift, diff_min=-int(math.floor(radius)))


def softmax_s8(x, *, input_multiplier, input_left_shift, diff_min):
    """Quantised softmax of an int8 tensor along its last axis (output scale 1/256, zero point -128).

    x: int8 [..., depth], depth >= 1. input_multiplier in [0, 2^31), input_left_shift in [0, 31],
    diff_min <= 0 with min(-diff_min, 255) * 2^input_left_shift <= 2^31 (every diff that passes
    diff_min must shift within int32; TFLite's params always satisfy it). Returns int8 of x's shape.
    """
    x = _softmax_operand(x)
    p = _check_softmax_args(input_multiplier, input_left_shift, diff_min)
    if x.size == 0:
        return np.empty(x.shape, np.int8)
    v = x.astype(np.int64)
    diff = v - v.max(axis=-1, keepdims=True)
    kept = diff >= p["diff_min"]
    # diff << shift stays in int32 for kept diffs (checked); others are not used.
    scaled = _srdhm(np.where(kept, diff, 0) << p["input_left_shift"], p["input_multiplier"])
    exp = np.where(kept, _exp_on_negative_values(scaled), 0)
    terms = _rounding_divide_by_pot(exp, ACCUMULATION_INTEGER_BITS)  # Q0.31 -> Q12.19, >= 0
    total = np.minimum(terms.sum(axis=-1, keepdims=True), INT32_MAX)  # saturating (see the module doc)
    scale, bits_over_unit = _reciprocal(total, ACCUMULATION_INTEGER_BITS)
    shift = bits_over_unit + 31 - OUTPUT_BITS  # up to 34: computed exactly in int64
    out = _rounding_divide_by_pot(_srdhm(scale, exp), shift) + OUTPUT_ZERO_POINT
    return np.where(kept, np.clip(out, -128, 127), -128).astype(np.int8)


# ----------------------------------------------------------------------------------------
# gemmlowp's fixed-point primitives on int64 arrays holding int32 values


def _srdhm(a, b):
    """SaturatingRoundingDoublingHighMul: (a*b + nudge) / 2^31, truncated as C++ division."""
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    ab = a * b  # |a*b| <= 2^62
    numerator = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    quotient = np.where(numerator >= 0, numerator >> 31, -((-numerator) >> 31))
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, quotient)


def _rounding_divide_by_pot(x, exponent):
    """x / 2^exponent rounded half away from zero: gemmlowp's formula, exact in int64 for any
    exponent in [0, 62] (gemmlowp allows up to 31)."""
    x = np.asarray(x, np.int64)
    exponent = np.asarray(exponent, np.int64)
    mask = (np.int64(1) << exponent) - 1
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + ((x & mask) > threshold)


def _saturating_shift_left(x, exponent):
    """SaturatingRoundingMultiplyByPOT with a positive exponent: x * 2^exponent clamped to int32."""
    return np.clip(np.asarray(x, np.int64) << exponent, INT32_MIN, INT32_MAX)


def _exp_on_negative_values(a):
    """gemmlowp's exp_on_negative_values for Q5.26 input a <= 0, result in Q0.31."""
    quarter = np.int64(1) << (31 - SCALED_DIFF_INTEGER_BITS - 2)  # 1/4 in Q5.26
    a = np.asarray(a, np.int64)
    a_mod_quarter_minus_quarter = (a & (quarter - 1)) - quarter  # in [-1/4, 0)
    # Rescale<0> of a Q5.26 value in [-1/4, 0): a left shift by 5 that cannot saturate.
    result = _exp_on_interval_between_negative_one_quarter_and_0_excl(
        _saturating_shift_left(a_mod_quarter_minus_quarter, SCALED_DIFF_INTEGER_BITS))
    remainder = a_mod_quarter_minus_quarter - a  # the multiple of 1/4 that was cut off: >= 0
    fractional_bits = 31 - SCALED_DIFF_INTEGER_BITS
    for exponent, multiplier in _EXP_BARREL:  # all 7 apply: 5 integer bits > 4
        bit = (remainder >> (fractional_bits + exponent)) & 1
        result = np.where(bit != 0, _srdhm(result, multiplier), result)
    return np.where(a == 0, INT32_MAX, result)


def _exp_on_interval_between_negative_one_quarter_and_0_excl(a):
    """exp(a) for Q0.31 a in [-1/4, 0): Taylor series around -1/8 (gemmlowp)."""
    x = a + (1 << 28)  # a + 1/8, in [-1/8, 1/8)
    x2 = _srdhm(x, x)
    x3 = _srdhm(x2, x)
    x4 = _srdhm(x2, x2)
    x4_over_4 = _rounding_divide_by_pot(x4, 2)
    # x^4/24 + x^3/6 + x^2/2; every partial sum is below 2^28 in magnitude: no int32 overflow
    poly = _rounding_divide_by_pot(_srdhm(x4_over_4 + x3, _ONE_THIRD) + x2, 1)
    return _EXP_MINUS_ONE_EIGHTH + _srdhm(_EXP_MINUS_ONE_EIGHTH, x + poly)


def _one_over_one_plus_x_for_x_in_0_1(a):
    """1 / (1 + a) for Q0.31 a in [0, 1), as Q0.31 (of 1/2..1): three Newton-Raphson steps in Q2.29."""
    a = np.asarray(a, np.int64)
    total = a + INT32_MAX  # RoundingHalfSum(a, One): (sum + sign) / 2, truncated
    half_denominator = np.where(total >= 0, (total + 1) // 2, -((-total + 1) // 2))
    x = _FORTY_EIGHT_OVER_SEVENTEEN + _srdhm(half_denominator, _MINUS_THIRTY_TWO_OVER_SEVENTEEN)
    for _ in range(3):
        half_denominator_times_x = _srdhm(half_denominator, x)  # Q0 * Q2 -> Q2
        one_minus = (1 << 29) - half_denominator_times_x  # F2::One() - ...
        x = x + _saturating_shift_left(_srdhm(x, one_minus), 2)  # Q2 * Q2 -> Q4, Rescale<2>
    return _saturating_shift_left(x, 1)  # ExactMulByPot<-1> then Rescale<0>


def _reciprocal(total, integer_bits):
    """TFLite's GetReciprocal of positive int32 fixed-point values with `integer_bits` integer bits:
    (Q0.31 of 1 / normalised value, num_bits_over_unit)."""
    total = np.asarray(total, np.int64)
    bit_length = (total[..., None] >= (np.int64(1) << np.arange(32))).sum(axis=-1)
    headroom_plus_one = 32 - bit_length  # CountLeadingZeros of the uint32
    bits_over_unit = integer_bits - headroom_plus_one
    shifted_sum_minus_one = (total << headroom_plus_one) - (1 << 31)  # top bit set, then cleared: [0, 2^31)
    return _one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one), bits_over_unit


# ----------------------------------------------------------------------------------------
# Argument checking, shared with the C binding (compiler/quant/_ref_softmax.pyx)


def _softmax_operand(x):
    """x as an int8 array softmax_s8 accepts: at least one dimension, depth >= 1, < 2^31 elements."""
    x = _int8_array(x, "input")
    if x.ndim == 0 or x.shape[-1] == 0:
        raise ValueError(f"input of shape {x.shape} needs a last axis (the softmax axis) of at least one element")
    if x.size > INT32_MAX:
        raise ValueError(f"input has {x.size} elements, more than int32 holds")
    return x


def _check_softmax_args(input_multiplier, input_left_shift, diff_min):
    """softmax_s8's scalar arguments checked, as a dict of its keyword arguments."""
    multiplier = _int_value(input_multiplier, "input_multiplier", 0, INT32_MAX)
    left_shift = _int_value(input_left_shift, "input_left_shift", 0, 31)
    diff_min = _int_value(diff_min, "diff_min", INT32_MIN, 0)
    if min(-diff_min, 255) << left_shift > 1 << 31:
        raise ValueError(f"diff_min={diff_min} with input_left_shift={left_shift}: a kept difference of "
                         f"{-min(-diff_min, 255)} shifted left overflows int32 (TFLite's diff_min is "
                         f"-floor(31 * 2^26 / 2^input_left_shift))")
    return dict(input_multiplier=multiplier, input_left_shift=left_shift, diff_min=diff_min)
