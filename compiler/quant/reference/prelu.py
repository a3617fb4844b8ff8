"""INT8 PReLU with a per-channel slope, TFLite-exact, in NumPy.

The spec for kernels/ref/prelu_s8.c (declared in kernels/include/npu_kernels_prelu.h) and for
the generated kernel (cpp/src/prelu.cc); tests demand bit equality between them
(tests/kernels/test_prelu.py, tests/coral/test_kernels_prelu.py). TFLite int8 PRELU
(reference_ops::BroadcastPrelu4DSlow, params as in TFLite Micro's CalculatePreluParams), with the
integer spec's rounding (compiler/quant/fixed_point.py ROUNDINGS; `rounding` is its index):
one rounding for ONNX models (TFLITE_SINGLE_ROUNDING), gemmlowp's double rounding (ties away
from zero) for TFLite models, as LiteRT's built-in PRELU computes it; MBQM below is that rounding's
MultiplyByQuantizedMultiplier, the same on both branches:

    (m_pos, e_pos) = QuantizeMultiplier(double(s_in) / double(s_out))
    (m_neg, e_neg) = QuantizeMultiplier(double(s_in) * double(s_alpha) / double(s_out))
    v   = q - zp_in
    out = clamp((v >= 0 ? MBQM(v, m_pos, e_pos)
                        : MBQM(v * (alpha[c] - zp_alpha), m_neg, e_neg))
                + zp_out, act_min, act_max)

with c the channel (last axis) of the element and alpha int8 [C] (a single slope is passed
repeated C times). |v * (alpha[c] - zp_alpha)| <= 255^2 < 2^16, so both multipliers may be
anything in [0, 2^31) and both shifts anything in [-31, 30]; large ones saturate to the int32
limits and the output zero point is added in 64 bits. Scales are float32 in TFLite, so
prelu_params first rounds the given scales to float32.
"""

import numpy as np

from compiler.quant.fixed_point import INT32_MAX, MULTIPLY, ROUNDINGS, quantize_multiplier, rounding_code
from compiler.quant.reference.elementwise import (
    INT8_MAX,
    INT8_MIN,
    _act_range,
    _int8_array,
    _int8_value,
    _multiplier_shift,
    _scale,
)

__all__ = ["prelu_params", "prelu_s8"]


def prelu_params(input_scale, alpha_scale, output_scale) -> dict:
    """The multipliers and shifts of prelu_s8, as TFLite's int8 PRELU Prepare computes them.

    QuantizeMultiplier of double(s_in) / double(s_out) (v >= 0) and of
    double(s_in) * double(s_alpha) / double(s_out) (v < 0), the scales rounded to float32 first;
    ValueError when a real multiplier is 2**31 or more (shift > 30).
    """
    s_in = _scale(input_scale, "input_scale")
    s_alpha = _scale(alpha_scale, "alpha_scale")
    s_out = _scale(output_scale, "output_scale")
    positive_multiplier, positive_shift = quantize_multiplier(s_in / s_out)
    negative_multiplier, negative_shift = quantize_multiplier(s_in * s_alpha / s_out)
    return dict(positive_multiplier=positive_multiplier, positive_shift=positive_shift,
                negative_multiplier=negative_multiplier, negative_shift=negative_shift)


def prelu_s8(x, alpha, *, input_zero_point, alpha_zero_point, output_zero_point, positive_multiplier, positive_shift,
             negative_multiplier, negative_shift, act_min=INT8_MIN, act_max=INT8_MAX, rounding=0):
    """Quantised PReLU of an int8 tensor whose last axis is the channels, by an int8 slope per channel.

    x: int8 [..., C] (at least one dimension); alpha: int8 [C]. Multipliers in [0, 2**31), shifts in
    [-31, 30]. rounding: both branches' requantisation's (fixed_point.ROUNDINGS index; 1 for TFLite
    models: LiteRT's PRELU rounds twice, ties away from zero). Returns int8 of x's shape.
    """
    x, alpha = _prelu_operands(x, alpha)
    p = _check_prelu_args(input_zero_point, alpha_zero_point, output_zero_point, positive_multiplier, positive_shift,
                          negative_multiplier, negative_shift, act_min, act_max, rounding)
    multiply = MULTIPLY[ROUNDINGS[p["rounding"]]]
    v = x.astype(np.int64) - p["input_zero_point"]
    slope = alpha.astype(np.int64) - p["alpha_zero_point"]  # broadcasts along the last axis
    positive = multiply(v, p["positive_multiplier"], p["positive_shift"])
    negative = multiply(v * slope, p["negative_multiplier"], p["negative_shift"])
    scaled = np.where(v >= 0, positive, negative).astype(np.int64) + p["output_zero_point"]
    return np.clip(scaled, p["act_min"], p["act_max"]).astype(np.int8)


# ----------------------------------------------------------------------------------------
# Argument checking, shared with the C binding (compiler/quant/_ref_prelu.pyx)


def _prelu_operands(x, alpha):
    """(x, alpha) as int8 arrays prelu_s8 accepts: x [..., C] with fewer than 2**31 elements, alpha [C]."""
    x = _int8_array(x, "input")
    alpha = _int8_array(alpha, "alpha")
    if x.ndim == 0:
        raise ValueError("input must have at least one dimension (its last axis is the channels)")
    if alpha.shape != (x.shape[-1],):
        raise ValueError(f"alpha of shape {alpha.shape} must be [C] = ({x.shape[-1]},), one slope per channel of "
                         f"the input's last axis (input shape {x.shape})")
    if x.size > INT32_MAX:
        raise ValueError(f"input has {x.size} elements, more than int32 holds")
    return x, alpha


def _check_prelu_args(input_zero_point, alpha_zero_point, output_zero_point, positive_multiplier, positive_shift,
                      negative_multiplier, negative_shift, act_min, act_max, rounding=0):
    """prelu_s8's scalar arguments checked, as a dict of prelu_s8's keyword arguments."""
    positive_multiplier, positive_shift = _multiplier_shift(positive_multiplier, positive_shift, "positive_", -31, 30)
    negative_multiplier, negative_shift = _multiplier_shift(negative_multiplier, negative_shift, "negative_", -31, 30)
    act_min, act_max = _act_range(act_min, act_max)
    return dict(input_zero_point=_int8_value(input_zero_point, "input_zero_point"),
                alpha_zero_point=_int8_value(alpha_zero_point, "alpha_zero_point"),
                output_zero_point=_int8_value(output_zero_point, "output_zero_point"),
                positive_multiplier=positive_multiplier, positive_shift=positive_shift,
                negative_multiplier=negative_multiplier, negative_shift=negative_shift,
                act_min=act_min, act_max=act_max, rounding=rounding_code(rounding))
