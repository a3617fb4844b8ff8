"""Fixed-point requantisation, exactly as TFLite (and gemmlowp) define it, in NumPy.

A real multiplier M (e.g. s_in * s_w / s_out) is stored as a Q0.31 significand and a
power-of-two exponent: M ~= multiplier * 2**(shift - 31), multiplier in [2**30, 2**31).
An int32 accumulator is rescaled by one 64-bit multiply and one rounding shift (TFLite's
single-rounding variant, see multiply_by_quantized_multiplier): the spec for ONNX models. Models
imported from TFLite follow TFLite's default build instead, which rounds twice (gemmlowp:
multiply_by_quantized_multiplier_double). These functions are the spec;
kernels/include/npu_quant.h is the same arithmetic in C and the tests demand bit equality
between the two.

All functions take and return NumPy arrays (or scalars) and compute in int64 so that
nothing overflows silently; results are int32.
"""

import math

import numpy as np

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def quantize_multiplier(real_multiplier: float) -> tuple[int, int]:
    """real -> (multiplier, shift) with real ~= multiplier * 2**(shift - 31).

    TFLite's QuantizeMultiplier: frexp, round half away from zero, renormalise the
    2**31 overflow, and flush multipliers below 2**-31 (shift < -31) to zero.
    """
    if real_multiplier < 0:
        raise ValueError(f"multiplier must be non-negative, got {real_multiplier}")
    if real_multiplier == 0.0:
        return 0, 0
    significand, shift = math.frexp(real_multiplier)
    q_fixed = _round_half_away(significand * (1 << 31))
    if q_fixed == 1 << 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if shift > 30:
        raise ValueError(f"multiplier {real_multiplier} is too large for int32 requantisation (shift {shift} > 30)")
    return int(q_fixed), int(shift)


def _round_half_away(value: float) -> int:
    return int(math.floor(abs(value) + 0.5)) * (1 if value >= 0 else -1)


def multiply_by_quantized_multiplier(x, multiplier, shift):
    """x * multiplier * 2**(shift - 31), rounded once (half up), saturated to int32.

    This is TFLite's MultiplyByQuantizedMultiplier as built with TFLITE_SINGLE_ROUNDING:
    one 64-bit product, one rounding shift by 31 - shift (1..62). The default TFLite build
    (gemmlowp's rounding doubling high multiply, then a rounding right shift) rounds twice,
    and so lifts values just below .5 to the next integer; across a deep model those
    one-step differences compound (measured on a 7-layer CNN quantised by ONNX Runtime: 83%
    of logits identical to ORT, some 2 steps off, against 99.98% and at most 1 step with
    single rounding). ORT and float requantisation round once, as we do.
    """
    x = np.asarray(x, dtype=np.int64)
    multiplier = np.asarray(multiplier, dtype=np.int64)
    total_shift = 31 - np.asarray(shift, dtype=np.int64)
    rounded = (x * multiplier + (np.int64(1) << (total_shift - 1))) >> total_shift
    return np.clip(rounded, INT32_MIN, INT32_MAX).astype(np.int32)


def reduced_multiplier_16(multiplier):
    """TFLite's 15-bit multiplier for int64 accumulators: (multiplier + 2^15) >> 16, and 0x7FFF from
    0x7FFF0000 on (where the rounding would reach 2^15)."""
    multiplier = np.asarray(multiplier, dtype=np.int64)
    return np.where(multiplier < 0x7FFF0000, (multiplier + (1 << 15)) >> 16, 0x7FFF)


def multiply_by_quantized_multiplier_16(x, multiplier, shift):
    """TFLite's MultiplyByQuantizedMultiplier for the int64 accumulators of 16x8 layers:
    (x * reduced + 2^(14 - shift)) >> (15 - shift), reduced = reduced_multiplier_16(multiplier),
    shift in [-31, 7], |x| < 2^47 (so the product stays inside int64). Returned as int64: TFLite
    truncates to int32, asserting the value fits; callers clamp."""
    x = np.asarray(x, dtype=np.int64)
    total_shift = 15 - np.asarray(shift, dtype=np.int64)
    return (x * reduced_multiplier_16(multiplier) + (np.int64(1) << (total_shift - 1))) >> total_shift


def saturating_rounding_doubling_high_mul(a, b):
    """gemmlowp's SaturatingRoundingDoublingHighMul: (2 a b) / 2^32 rounded to nearest, ties up
    (its nudge 1 - 2^30 for negative products, then division truncating toward zero, is that), and
    INT32_MIN * INT32_MIN saturated to INT32_MAX."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    overflow = (a == INT32_MIN) & (b == INT32_MIN)
    product = a * b
    nudge = np.where(product >= 0, np.int64(1 << 30), np.int64(1 - (1 << 30)))
    total = product + nudge
    high = np.where(total >= 0, total >> 31, -((-total) >> 31))  # C division by 2^31: toward zero
    return np.where(overflow, INT32_MAX, high).astype(np.int64)


def rounding_divide_by_pot(x, exponent):
    """gemmlowp's RoundingDivideByPOT: x / 2^exponent rounded to nearest, ties away from zero."""
    x, exponent = np.asarray(x, dtype=np.int64), np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << exponent) - 1
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + ((x & mask) > threshold)


def multiply_by_quantized_multiplier_double(x, multiplier, shift):
    """x * multiplier * 2**(shift - 31) as TFLite's default build computes it (LiteRT's built-in and
    reference kernels, TFLite Micro): x shifted left by max(shift, 0) in int32 (wrapping, as the C
    code's multiplication does in practice), gemmlowp's rounding doubling high multiply, then a
    rounding shift right by max(-shift, 0): two roundings. The spec for models imported from TFLite."""
    return _double_rounding(x, multiplier, shift, ties_up=False)


def multiply_by_quantized_multiplier_double_up(x, multiplier, shift):
    """As multiply_by_quantized_multiplier_double, but the final shift rounds ties up (toward +inf):
    ruy's rounding, which LiteRT's optimized built-in kernels use for CONV_2D (checked in
    tests/unit/test_tflite_rounding.py); its reference kernels round ties away from zero."""
    return _double_rounding(x, multiplier, shift, ties_up=True)


def _double_rounding(x, multiplier, shift, ties_up: bool):
    x = np.asarray(x, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    left, right = np.maximum(shift, 0), np.maximum(-shift, 0)
    shifted = ((x << left) + (1 << 31)) % (1 << 32) - (1 << 31)  # int32 wrap-around
    high = saturating_rounding_doubling_high_mul(shifted, multiplier)
    if ties_up:
        return ((high + ((np.int64(1) << right) >> 1)) >> right).astype(np.int32)
    return rounding_divide_by_pot(high, right).astype(np.int32)


# The integer spec's rounding, chosen by the model's origin: ONNX models round once (ONNX Runtime
# agreement); TFLite models round twice as TFLite's reference kernels (TFLite Micro, CMSIS-NN) do,
# or with ruy's ties-up final shift as LiteRT's optimized CONV_2D does.
SINGLE_ROUNDING, DOUBLE_ROUNDING, DOUBLE_ROUNDING_TIES_UP = "single", "double", "double-up"
ROUNDINGS = (SINGLE_ROUNDING, DOUBLE_ROUNDING, DOUBLE_ROUNDING_TIES_UP)  # index = the C code (NPU_ROUND_*)
MULTIPLY = {SINGLE_ROUNDING: multiply_by_quantized_multiplier, DOUBLE_ROUNDING: multiply_by_quantized_multiplier_double,
            DOUBLE_ROUNDING_TIES_UP: multiply_by_quantized_multiplier_double_up}


def rounding_code(rounding, channel_blocks=False) -> int:
    """A kernel's `rounding` argument checked: its index in ROUNDINGS (the C code, NPU_ROUND_*), or
    BLOCKS_OF_8_ROUNDING where the kernel takes it (channel_blocks: conv2d)."""
    if channel_blocks and int(rounding) == BLOCKS_OF_8_ROUNDING:
        return BLOCKS_OF_8_ROUNDING
    if int(rounding) not in range(len(ROUNDINGS)):
        raise ValueError(f"rounding={rounding} is not one of 0 (single), 1 (double), 2 (double, ties up)")
    return int(rounding)


# LiteRT's built-in DEPTHWISE_CONV_2D rounds whole blocks of ROUNDING_BLOCK output channels with ruy's
# ties up and the channels after the last whole block as gemmlowp (measured:
# tests/unit/test_tflite_rounding.py). conv2d alone takes this code (C: NPU_ROUND_BLOCKS_OF_8).
BLOCKS_OF_8_ROUNDING, ROUNDING_BLOCK = 3, 8


def channel_roundings(code: int, channels: int) -> list[tuple[slice, str]]:
    """(channel slice, rounding) pairs covering `channels` output channels under rounding `code`."""
    if code != BLOCKS_OF_8_ROUNDING:
        return [(slice(0, channels), ROUNDINGS[code])]
    whole = channels - channels % ROUNDING_BLOCK
    return [(slice(0, whole), DOUBLE_ROUNDING_TIES_UP), (slice(whole, channels), DOUBLE_ROUNDING)]


def requantize(acc, multiplier, shift, output_zero_point, act_min=-128, act_max=127, rounding=SINGLE_ROUNDING):
    """int32 accumulator -> int8: rescale, add the output zero point, clamp to the activation range.
    `rounding`: one of ROUNDINGS (quant/integer_spec.py says which a kernel of a model uses)."""
    scaled = MULTIPLY[rounding](acc, multiplier, shift).astype(np.int64) + output_zero_point
    return np.clip(scaled, act_min, act_max).astype(np.int8)
