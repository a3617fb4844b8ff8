"""INT8 element-wise and data-movement kernels, TFLite-exact, in NumPy.

The spec for kernels/ref/add_s8.c and kernels/ref/concat_pad_s8.c (declared in
kernels/include/npu_kernels_elementwise.h) and for the generated kernels; tests demand bit
equality between them (tests/kernels/test_elementwise_pool.py, test_mul.py). Activations are int8,
asymmetric, per tensor: real = scale * (q - zero_point). Zero points are passed as themselves.
Integer parameters are produced from float scales by the *_params helpers, which return
keyword-argument dicts: ``add_s8(a, b, **add_params(s1, zp1, s2, zp2, s_out, zp_out))``.
Scales are float32 in TFLite, so every helper first rounds the given scales to float32.

Residual add and subtract (TFLite reference_integer_ops::Add, and SUB; params as in
kernels/add.cc and kernels/sub.cc Prepare, which derive the same multipliers):

    twice_max = 2 * max(s1, s2)                          (float32 scales, computed in double)
    (m1, e1) = QuantizeMultiplierSmallerThanOneExp(s1 / twice_max)
    (m2, e2) = QuantizeMultiplierSmallerThanOneExp(s2 / twice_max)
    (mo, eo) = QuantizeMultiplierSmallerThanOneExp(twice_max / (2**20 * s_out))
    v_1   = MultiplyByQuantizedMultiplier((q_1 - zp_1) * 2**left_shift, m_1, e_1)   left_shift = 20
    v_2   = MultiplyByQuantizedMultiplier(+-(q_2 - zp_2) * 2**left_shift, m_2, e_2)
    out   = clamp(MultiplyByQuantizedMultiplier(v_1 + v_2, mo, eo) + zp_out, act_min, act_max)

all three rescales rounded as `rounding` says (once for ONNX models; TFLite models: gemmlowp's
double rounding, as LiteRT's built-in and reference ADD compute, measured in
tests/unit/test_tflite_rounding.py), q_2 - zp_2 negated for subtract (TFLite's SUB negates m_2,
the same product, so the rounding sees the same number),

with q2 of q1's shape, or one value per channel: [N,1,1,C] against an NHWC q1 [N,H,W,C] (as MUL).

Multiply (TFLite reference_integer_ops::MulElementwise and its broadcasting variant, params as
in kernels/mul.cc Prepare), one rounding:

    (m, e) = QuantizeMultiplier(double(s1) * double(s2) / double(s_out))
    out    = clamp(MultiplyByQuantizedMultiplier((q1 - zp1) * (q2 - zp2), m, e) + zp_out, act_min, act_max)

with q2 of q1's shape, or [N,1,1,C] against an NHWC q1 [N,H,W,C] (one value per channel for
every pixel: the squeeze-excite scaling); no other broadcast.

Requantize int8 -> int8 (TFLite reference_ops::Requantize, params as in kernels/quantize.cc):

    (m, e) = QuantizeMultiplier(double(s_in) / double(s_out))
    out    = clamp(MultiplyByQuantizedMultiplier(q - zp_in, m, e) + zp_out, act_min, act_max)

Concatenation: TFLite's int8 CONCATENATION refuses inputs whose (scale, zero point) differ
from the output's (its uint8 ConcatenationWithScaling requantises in float:
round(q * s_in / s_out - zp_in * s_in / s_out) + zp_out). Here an input is instead
requantised with the exact integer formula of Requantize above; an input whose (scale,
zero point) equals the output's gets (m, e) = (2**30, 1), for which the formula is the
identity, so it is copied bit for bit as TFLite does.

Pad: constant padding with the output zero point as the pad value (real 0).

Quantize / dequantize (TFLite reference_ops::AffineQuantize / Dequantize), float32 scale:

    quantize:   q = clamp(round_half_to_even(float32(x) / float32(scale)) + zp, -128, 127)
    dequantize: x = float32(scale) * float32(q - zp)     (one float32 multiply; equal to
                TFLite's float32(double(scale) * (q - zp)) since that double product is exact)

With block > 0 (TFLite models: quant/integer_spec.py DEQUANTIZE_BLOCK), dequantize's elements
[0, n - n % block) of the flattened tensor are instead float32(q * scale) + float32(-zp * scale),
each product rounded to float32, then the float32 sum (no fused multiply-add): LiteRT 2.3's
optimized DEQUANTIZE takes whole vectors of 8 that way and the rest in the form above (measured:
0 mismatches over 10,663 outputs of 300 random one-op models; blocks of 4 or 16 mismatch).

With block > 0 (TFLite models: quant/integer_spec.py QUANTIZE_BLOCK), quantize's elements
[0, n - n % block) are instead round_half_to_even(float32(x * float32(1 / double(scale)))) and the
rest round_half_away_from_zero(x / scale) of the exact quotient: LiteRT 2.3's built-in QUANTIZE
multiplies whole vectors of 8 by the reciprocal and divides the rest in double (measured:
tests/unit/test_quantize_rounding.py).

NaN quantizes to the zero point.
"""

import math

import numpy as np

from compiler.quant.fixed_point import (
    INT32_MAX,
    MULTIPLY,
    ROUNDINGS,
    quantize_multiplier,
    requantize,
    rounding_code,
)

INT8_MIN, INT8_MAX = -128, 127
ADD_LEFT_SHIFT = 20  # TFLite's left_shift for int8 ADD/SUB

__all__ = [
    "ADD_LEFT_SHIFT",
    "add_params",
    "add_s8",
    "concat_params",
    "concat_s8",
    "dequantize",
    "mul_params",
    "mul_s8",
    "pad_s8",
    "quantize",
    "reciprocal",
    "requantize_multiplier",
    "requantize_params",
    "requantize_s8",
]


# ----------------------------------------------------------------------------------------
# Parameter derivation from float scales


def requantize_multiplier(input_scale: float, output_scale: float) -> tuple[int, int]:
    """(multiplier, shift) for a rescale by input_scale / output_scale, as TFLite's Prepare does it.

    QuantizeMultiplier(double(float32 input_scale) / double(float32 output_scale)); used by
    requantize, concat and mean. Equal scales give (2**30, 1), an exact identity.
    """
    s_in = _scale(input_scale, "input_scale")
    s_out = _scale(output_scale, "output_scale")
    return quantize_multiplier(s_in / s_out)


def requantize_params(input_scale, input_zero_point, output_scale, output_zero_point) -> dict:
    """Keyword arguments of requantize_s8 for an int8 (s_in, zp_in) -> int8 (s_out, zp_out) rescale."""
    multiplier, shift = requantize_multiplier(input_scale, output_scale)
    return dict(input_zero_point=_int8_value(input_zero_point, "input_zero_point"),
                output_zero_point=_int8_value(output_zero_point, "output_zero_point"),
                multiplier=multiplier, shift=shift)


def add_params(input1_scale, input1_zero_point, input2_scale, input2_zero_point, output_scale,
               output_zero_point, act_min=INT8_MIN, act_max=INT8_MAX) -> dict:
    """Keyword arguments of add_s8, derived exactly as TFLite's int8 ADD Prepare (kernels/add.cc).

    SUB's Prepare (kernels/sub.cc) derives the same multipliers: pass subtract=1 to add_s8.

    twice_max = 2 * max(s1, s2) (a float32 product, exact) widened to double; input
    multipliers s_i / twice_max and output multiplier twice_max / (2**20 * s_out) (the
    denominator a float32 product) in double, each through QuantizeMultiplierSmallerThanOneExp
    (real multiplier in (0, 1), shift <= 0). Raises ValueError if the output multiplier is not
    below 1, i.e. s_out <= 2 * max(s1, s2) / 2**20 (TFLite rejects that too).
    """
    s1 = _scale(input1_scale, "input1_scale")
    s2 = _scale(input2_scale, "input2_scale")
    s_out = np.float32(_scale(output_scale, "output_scale"))
    twice_max = 2.0 * max(s1, s2)
    denominator = float(np.float32(1 << ADD_LEFT_SHIFT) * s_out)  # int * float in C++: a float32 product
    m1, e1 = _quantize_multiplier_smaller_than_one(s1 / twice_max, "input1")
    m2, e2 = _quantize_multiplier_smaller_than_one(s2 / twice_max, "input2")
    mo, eo = _quantize_multiplier_smaller_than_one(twice_max / denominator, "output")
    params = _check_add_args(input1_zero_point, m1, e1, input2_zero_point, m2, e2, output_zero_point, mo, eo,
                             ADD_LEFT_SHIFT, act_min, act_max)
    del params["rounding"]  # the integer spec's (quant/integer_spec.py), not the scales'
    return params


def mul_params(input1_scale, input2_scale, output_scale) -> dict:
    """output_multiplier / output_shift of mul_s8, as TFLite's int8 MUL Prepare (kernels/mul.cc).

    QuantizeMultiplier(double(s1) * double(s2) / double(s_out)) of the float32 scales, in double;
    ValueError when that real multiplier is 2**31 or more (shift > 30).
    """
    s1 = _scale(input1_scale, "input1_scale")
    s2 = _scale(input2_scale, "input2_scale")
    s_out = _scale(output_scale, "output_scale")
    multiplier, shift = quantize_multiplier(s1 * s2 / s_out)
    return dict(output_multiplier=multiplier, output_shift=shift)


def concat_params(input_scales, input_zero_points, output_scale, output_zero_point) -> dict:
    """Keyword arguments of concat_s8: one (zero point, multiplier, shift) per input."""
    scales = list(input_scales)
    zero_points = list(input_zero_points)
    if len(scales) != len(zero_points) or not scales:
        raise ValueError(f"need one scale and one zero point per input, got {len(scales)} and {len(zero_points)}")
    rescales = [requantize_multiplier(s, output_scale) for s in scales]
    return dict(input_zero_points=tuple(_int8_value(z, "input zero point") for z in zero_points),
                multipliers=tuple(m for m, _ in rescales), shifts=tuple(e for _, e in rescales),
                output_zero_point=_int8_value(output_zero_point, "output_zero_point"))


# ----------------------------------------------------------------------------------------
# Kernels


def add_s8(input1, input2, *, input1_zero_point, input1_multiplier, input1_shift, input2_zero_point,
           input2_multiplier, input2_shift, output_zero_point, output_multiplier, output_shift,
           left_shift=ADD_LEFT_SHIFT, act_min=INT8_MIN, act_max=INT8_MAX, subtract=0, batches=None, pixels=None,
           channels=None, broadcast=None, rounding=0):
    """Quantised element-wise add (subtract=0) or difference input1 - input2 (subtract=1) of int8
    tensors (TFLite reference_integer_ops::Add, and SUB), as npu_add_s8.

    The layout is npu_add_params': input1 [batches][pixels][channels], input2 the same, or
    [batches][channels] when broadcast=1 (one value per channel for every pixel). With batches,
    pixels, channels and broadcast all None (the default) it comes from the shapes, as in mul_s8:
    equal shapes, or [N,H,W,C] and [N,1,1,C]. Given, all four are needed, and the operands (read
    in C order) must hold batches * pixels * channels and, for input2, batches * channels
    (broadcast) elements; batches * pixels * channels < 2**31.
    Multipliers in [0, 2**31); shifts in [-31, 0] (TFLite's "smaller than one" multipliers, which
    keep every intermediate in int32); left_shift in [0, 20]. rounding: the three rescales'
    (fixed_point.ROUNDINGS index; 1 for TFLite models). Returns int8 of input1's shape.
    """
    a, b, layout = _add_layout(input1, input2, batches, pixels, channels, broadcast, subtract)
    p = _check_add_args(input1_zero_point, input1_multiplier, input1_shift, input2_zero_point, input2_multiplier,
                        input2_shift, output_zero_point, output_multiplier, output_shift, left_shift, act_min,
                        act_max, rounding)
    rows = layout["batches"], layout["pixels"], layout["channels"]
    b_rows = (rows[0], 1, rows[2]) if layout["broadcast"] else rows  # broadcast: one value per channel
    multiply = MULTIPLY[ROUNDINGS[p["rounding"]]]
    scaled1 = _rescale_add_input(a.reshape(rows), p, "input1_", 1, multiply)
    scaled2 = _rescale_add_input(b.reshape(b_rows), p, "input2_", -1 if layout["subtract"] else 1, multiply)
    # |v_1 + v_2| < 2**29: fits int32 as in TFLite
    out = requantize(scaled1 + scaled2, p["output_multiplier"], p["output_shift"], p["output_zero_point"],
                     p["act_min"], p["act_max"], rounding=ROUNDINGS[p["rounding"]])
    return out.reshape(a.shape)


def _rescale_add_input(q, p, prefix, sign, multiply):
    """v_i = multiply(sign * (q_i - zp_i) * 2**left_shift, m_i, e_i), as int64."""
    shifted = sign * ((q.astype(np.int64) - p[prefix + "zero_point"]) << p["left_shift"])
    return np.asarray(multiply(shifted, p[prefix + "multiplier"], p[prefix + "shift"])).astype(np.int64)


def mul_s8(input1, input2, *, input1_zero_point, input2_zero_point, output_zero_point, output_multiplier, output_shift,
           act_min=INT8_MIN, act_max=INT8_MAX, rounding=0):
    """Quantised element-wise multiply (TFLite reference_integer_ops::MulElementwise), rounded once.

    input1: int8 of any shape; input2: int8 of input1's shape, or [N,1,1,C] against a 4-D NHWC
    input1 [N,H,W,C] (broadcast over the pixels). Multiplier in [0, 2**31), shift in [-31, 30]
    (|(q1 - zp1) * (q2 - zp2)| <= 255**2, so any shift is safe: large ones saturate). Returns int8
    of input1's shape. rounding: the requantisation's (fixed_point.ROUNDINGS index; 1 for TFLite
    models: LiteRT's MUL rounds twice, ties away from zero).
    """
    a, b = _mul_shapes(input1, input2)
    p = _check_mul_args(input1_zero_point, input2_zero_point, output_zero_point, output_multiplier, output_shift,
                        act_min, act_max, rounding)
    product = (a.astype(np.int64) - p["input1_zero_point"]) * (b.astype(np.int64) - p["input2_zero_point"])
    return requantize(product, p["output_multiplier"], p["output_shift"], p["output_zero_point"], p["act_min"],
                      p["act_max"], rounding=ROUNDINGS[p["rounding"]])


def requantize_s8(x, *, input_zero_point, output_zero_point, multiplier, shift, act_min=INT8_MIN, act_max=INT8_MAX):
    """int8 -> int8 rescale: clamp(MultiplyByQuantizedMultiplier(q - zp_in, m, e) + zp_out, act_min, act_max).

    multiplier in [0, 2**31), shift in [-31, 30]. Returns int8 of the input shape.
    """
    x, zp_in, zp_out, multiplier, shift, act_min, act_max = _check_requantize_args(
        x, input_zero_point, output_zero_point, multiplier, shift, act_min, act_max)
    return requantize(x.astype(np.int64) - zp_in, multiplier, shift, zp_out, act_min, act_max)


def concat_s8(inputs, *, input_zero_points, multipliers, shifts, output_zero_point, axis=3):
    """Concatenate int8 NHWC tensors along `axis` (default channels), requantising each input to the output.

    inputs: sequence of int8 4-D arrays equal in every dimension but `axis`; per input its zero
    point, multiplier in [0, 2**31) and shift in [-31, 30] (concat_params). Each element of input i
    becomes clamp(MultiplyByQuantizedMultiplier(q - zp_i, m_i, e_i) + zp_out, -128, 127).
    """
    arrays, axis = _concat_inputs(inputs, axis)
    zero_points, multipliers, shifts, output_zero_point = _concat_args(len(arrays), input_zero_points, multipliers,
                                                                       shifts, output_zero_point)
    parts = [requantize(a.astype(np.int64) - zp, m, e, output_zero_point)
             for a, zp, m, e in zip(arrays, zero_points, multipliers, shifts)]
    return np.concatenate(parts, axis=axis)


def pad_s8(x, *, padding, pad_value):
    """Constant-pad an int8 NHWC tensor; padding = ((n0, n1), (h0, h1), (w0, w1), (c0, c1)), each >= 0.

    pad_value is the tensor's zero point (a real 0), in [-128, 127].
    """
    x = _int8_array(x, "input", 4)
    padding = _pad_pairs(padding)
    return np.pad(x, padding, mode="constant", constant_values=np.int8(_int8_value(pad_value, "pad_value")))


def quantize(x, scale, zero_point, block=0):
    """float -> int8: clamp(round_half_to_even(float32(x) / float32(scale)) + zero_point, -128, 127), as ONNX's
    QuantizeLinear (measured: tests/unit/test_quantize_rounding.py). With block > 0 (TFLite models),
    as LiteRT's built-in QUANTIZE: the elements of the whole blocks (in the flat order)
    round_half_to_even(float32(x * reciprocal(scale))), the others round_half_away_from_zero(x / scale)
    of the exact quotient (LiteRT divides in double, as here)."""
    s, zero_point = _check_quantize_args(scale, zero_point)
    block = _check_dequantize_block(block)
    s = np.float32(s)
    x = np.asarray(x, dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore"):  # inf / NaN are handled below
        v = (x / s).astype(np.float64)  # float32 division, as ONNX Runtime's
        if block:
            flat = v.reshape(-1)  # a view
            blocked = x.size - x.size % block
            flat[:blocked] = x.reshape(-1)[:blocked] * reciprocal(s)  # the float32 product
            flat[blocked:] = x.reshape(-1)[blocked:].astype(np.float64) / np.float64(s)
    nan = np.isnan(v)
    v = np.clip(np.where(nan, 0.0, v), -256.0, 256.0)  # beyond +-256 every zero point saturates
    rounded = np.rint(v)  # ties to even
    if block:
        away = (np.sign(v) * np.floor(np.abs(v) + 0.5)).reshape(-1)
        rounded.reshape(-1)[blocked:] = away[blocked:]
    q = np.where(nan, zero_point, rounded.astype(np.int64) + zero_point)
    return np.clip(q, INT8_MIN, INT8_MAX).astype(np.int8)


def reciprocal(scale) -> np.float32:
    """float32(1 / double(scale)): LiteRT's QUANTIZE multiplies its vector blocks by it."""
    return np.float32(1.0 / float(np.float32(scale)))


def dequantize(q, scale, zero_point, block=0):
    """int8 -> float32: float32(scale) * float32(q - zero_point); with block > 0 the elements of the
    whole blocks (in the flat order) float32(q * scale) + float32(-zero_point * scale)."""
    q = _int8_array(q, "input")
    s, zero_point = _check_quantize_args(scale, zero_point)
    block = _check_dequantize_block(block)
    s = np.float32(s)
    out = (s * (q.astype(np.int32) - zero_point).astype(np.float32)).astype(np.float32)
    blocked = q.size - q.size % block if block else 0
    flat = out.reshape(-1)  # a view: out is contiguous
    flat[:blocked] = q.reshape(-1)[:blocked].astype(np.float32) * s + np.float32(-zero_point) * s
    return out


# ----------------------------------------------------------------------------------------
# Argument checking, shared with pool.py and the C binding (compiler/quant/_ref_elementwise.pyx)


def _quantize_multiplier_smaller_than_one(real, name):
    if not 0.0 < real < 1.0:
        raise ValueError(f"{name} multiplier {real} must be in (0, 1) (TFLite QuantizeMultiplierSmallerThanOneExp)")
    multiplier, shift = quantize_multiplier(real)
    if shift > 0:  # rounding reached 1.0
        raise ValueError(f"{name} multiplier {real} rounds to 1.0")
    return multiplier, shift


def _scale(value, name):
    """A positive finite scale, rounded to float32 (TFLite stores scales as float), as a Python float."""
    s = float(np.float32(value))
    if not (math.isfinite(s) and s > 0.0):
        raise ValueError(f"{name} must be a positive finite float32, got {value}")
    return s


def _int8_array(value, name, ndim=None):
    array = np.asarray(value)
    if array.dtype != np.int8:
        raise ValueError(f"{name} must be an int8 array, got {array.dtype}")
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {array.shape}")
    return array


def _int_value(value, name, lo, hi):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if not lo <= value <= hi:
        raise ValueError(f"{name}={value} is outside [{lo}, {hi}]")
    return value


def _int8_value(value, name):
    return _int_value(value, name, INT8_MIN, INT8_MAX)


def _act_range(act_min, act_max):
    act_min, act_max = _int8_value(act_min, "act_min"), _int8_value(act_max, "act_max")
    if act_min > act_max:
        raise ValueError(f"act_min={act_min} > act_max={act_max}")
    return act_min, act_max


def _multiplier_shift(multiplier, shift, prefix, shift_min, shift_max):
    return (_int_value(multiplier, f"{prefix}multiplier", 0, INT32_MAX),
            _int_value(shift, f"{prefix}shift", shift_min, shift_max))


def _check_add_args(input1_zero_point, input1_multiplier, input1_shift, input2_zero_point, input2_multiplier,
                    input2_shift, output_zero_point, output_multiplier, output_shift, left_shift, act_min, act_max,
                    rounding=0):
    m1, e1 = _multiplier_shift(input1_multiplier, input1_shift, "input1_", -31, 0)
    m2, e2 = _multiplier_shift(input2_multiplier, input2_shift, "input2_", -31, 0)
    mo, eo = _multiplier_shift(output_multiplier, output_shift, "output_", -31, 0)
    act_min, act_max = _act_range(act_min, act_max)
    return dict(input1_zero_point=_int8_value(input1_zero_point, "input1_zero_point"),
                input1_multiplier=m1, input1_shift=e1,
                input2_zero_point=_int8_value(input2_zero_point, "input2_zero_point"),
                input2_multiplier=m2, input2_shift=e2,
                output_zero_point=_int8_value(output_zero_point, "output_zero_point"),
                output_multiplier=mo, output_shift=eo,
                left_shift=_int_value(left_shift, "left_shift", 0, ADD_LEFT_SHIFT),
                act_min=act_min, act_max=act_max, rounding=rounding_code(rounding))


def _check_mul_args(input1_zero_point, input2_zero_point, output_zero_point, output_multiplier, output_shift, act_min,
                    act_max, rounding=0):
    """mul_s8's scalar arguments checked, as a dict of mul_s8's keyword arguments."""
    multiplier, shift = _multiplier_shift(output_multiplier, output_shift, "output_", -31, 30)
    act_min, act_max = _act_range(act_min, act_max)
    return dict(input1_zero_point=_int8_value(input1_zero_point, "input1_zero_point"),
                input2_zero_point=_int8_value(input2_zero_point, "input2_zero_point"),
                output_zero_point=_int8_value(output_zero_point, "output_zero_point"),
                output_multiplier=multiplier, output_shift=shift, act_min=act_min, act_max=act_max,
                rounding=rounding_code(rounding))


def _check_requantize_args(x, input_zero_point, output_zero_point, multiplier, shift, act_min, act_max):
    """requantize_s8's arguments checked: (int8 x, zp_in, zp_out, multiplier, shift, act_min, act_max)."""
    x = _int8_array(x, "input")
    zp_in = _int8_value(input_zero_point, "input_zero_point")
    zp_out = _int8_value(output_zero_point, "output_zero_point")
    multiplier, shift = _multiplier_shift(multiplier, shift, "", -31, 30)
    act_min, act_max = _act_range(act_min, act_max)
    return x, zp_in, zp_out, multiplier, shift, act_min, act_max


def _check_quantize_args(scale, zero_point):
    """quantize's / dequantize's (scale, zero point) checked: (float32-rounded scale as a float, int zero point)."""
    return _scale(scale, "scale"), _int8_value(zero_point, "zero_point")


def _check_dequantize_block(block):
    """dequantize's block checked: an int in [0, INT32_MAX] (0: every element rounded once)."""
    return _int_value(block, "block", 0, INT32_MAX)


def _add_layout(input1, input2, batches, pixels, channels, broadcast, subtract):
    """(input1, input2, layout) for add_s8: int8 arrays and a dict of npu_add_params' batches,
    pixels, channels, broadcast and subtract, from the shapes (all four layout values None) or as
    given (all four) and checked against the operands' sizes."""
    subtract = _int_value(subtract, "subtract", 0, 1)
    given = [v is not None for v in (batches, pixels, channels, broadcast)]
    if not any(given):
        a, b = _mul_shapes(input1, input2)
        return a, b, dict(_layout_of_shapes(a, b), subtract=subtract)
    if not all(given):
        raise ValueError("give all of batches, pixels, channels and broadcast, or none (the layout of the shapes)")
    a, b = _int8_array(input1, "input1"), _int8_array(input2, "input2")
    layout = dict(batches=_int_value(batches, "batches", 0, INT32_MAX),
                  pixels=_int_value(pixels, "pixels", 0, INT32_MAX),
                  channels=_int_value(channels, "channels", 0, INT32_MAX),
                  broadcast=_int_value(broadcast, "broadcast", 0, 1))
    size = layout["batches"] * layout["pixels"] * layout["channels"]
    size2 = layout["batches"] * layout["channels"] if layout["broadcast"] else size
    if a.size != size or b.size != size2:
        raise ValueError(f"operands of {a.size} and {b.size} elements do not fit the layout {layout}: "
                         f"{size} and {size2} expected")
    return a, b, dict(_checked_size(layout), subtract=subtract)


def _layout_of_shapes(a, b):
    """npu_add_params' / npu_mul_params' batches, pixels, channels, broadcast for the shapes _mul_shapes accepts."""
    if a.ndim == 4:
        layout = dict(batches=a.shape[0], pixels=a.shape[1] * a.shape[2], channels=a.shape[3],
                      broadcast=int(a.shape != b.shape))
    else:  # no broadcast: one flat row
        layout = dict(batches=1, pixels=1, channels=a.size, broadcast=0)
    return _checked_size(layout)


def _checked_size(layout):
    if layout["batches"] * layout["pixels"] * layout["channels"] > INT32_MAX:
        raise ValueError(f"{layout}: batches * pixels * channels must be below 2**31")
    return layout


def _mul_shapes(input1, input2):
    """(input1, input2) as int8 arrays whose shapes mul_s8 accepts: equal, or [N,H,W,C] and [N,1,1,C]."""
    a = _int8_array(input1, "input1")
    b = _int8_array(input2, "input2")
    if a.shape == b.shape:
        return a, b
    if a.ndim == 4 and b.shape == (a.shape[0], 1, 1, a.shape[3]):
        return a, b
    raise ValueError(f"input2 of shape {b.shape} is neither input1's shape {a.shape} nor [N,1,1,C] against an "
                     f"NHWC input1 [N,H,W,C] (the only broadcast supported)")


def _concat_inputs(inputs, axis):
    arrays = [_int8_array(a, f"input {i}", 4) for i, a in enumerate(inputs)]
    if not arrays:
        raise ValueError("concat needs at least one input")
    axis = _int_value(axis, "axis", -4, 3) % 4
    first = arrays[0].shape
    for i, a in enumerate(arrays):
        if any(a.shape[d] != first[d] for d in range(4) if d != axis):
            raise ValueError(f"input {i} has shape {a.shape}, incompatible with {first} for a concat on axis {axis}")
    return arrays, axis


def _concat_args(count, input_zero_points, multipliers, shifts, output_zero_point):
    zero_points, multipliers, shifts = list(input_zero_points), list(multipliers), list(shifts)
    if not len(zero_points) == len(multipliers) == len(shifts) == count:
        raise ValueError(f"need one zero point, multiplier and shift per input ({count}), got "
                         f"{len(zero_points)}, {len(multipliers)}, {len(shifts)}")
    zero_points = [_int8_value(z, f"input_zero_points[{i}]") for i, z in enumerate(zero_points)]
    pairs = [_multiplier_shift(m, e, f"input {i} ", -31, 30) for i, (m, e) in enumerate(zip(multipliers, shifts))]
    return (zero_points, [m for m, _ in pairs], [e for _, e in pairs],
            _int8_value(output_zero_point, "output_zero_point"))


def _pad_pairs(padding):
    pairs = [tuple(p) for p in padding]
    if len(pairs) != 4 or any(len(p) != 2 for p in pairs):
        raise ValueError(f"padding must be 4 (before, after) pairs (N, H, W, C), got {padding}")
    return tuple(tuple(_int_value(v, "padding", 0, INT32_MAX) for v in p) for p in pairs)
