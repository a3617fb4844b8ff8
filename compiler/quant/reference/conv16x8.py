"""int16 x int8 convolution and fully connected layers (TFLite's 16x8 scheme), in NumPy.

With requantize_s8_s16 / requantize_s16_s8 (the int8 <-> int16 rescales around such a layer), the
higher precision --accuracy-budget gives a layer on coral-npu (int16 activations, int8 weights:
256x finer activation steps at twice the activation bytes), and the spec for kernels/ref/conv2d_s16x8.c
(declared in kernels/include/npu_kernels_conv.h) and the generated kernels; tests demand bit equality.
Semantics are TFLite's reference_integer_ops::ConvPerChannel, DepthwiseConvPerChannel and
FullyConnected for int16 activations:

    acc[n, y, x, o] = bias[o] + sum over (ky, kx, i) of input[n, ..., g*Cg + i] * filter[o, ky, kx, i]   (int64)
    output = clamp(multiply_by_quantized_multiplier_16(acc, multiplier[o], shift[o]), act_min, act_max)  (int16)

Both zero points are 0 (int16 activations are symmetric in TFLite's scheme), so a padding tap
contributes nothing. The bias is int64 (|bias| < 2^46): the accumulator's unit is the input scale
times the weight scale, 256x finer than with int8 inputs. multiply_by_quantized_multiplier_16 is
TFLite's MultiplyByQuantizedMultiplier for int64 accumulators: the multiplier rounded to 15 bits,
one rounding (fixed_point.multiply_by_quantized_multiplier_16). TFLite then truncates to int32,
asserting the value fits; here the int64 value is clamped directly, the same wherever that holds.
"""

from typing import NamedTuple

import numpy as np

from compiler.quant.fixed_point import multiply_by_quantized_multiplier, multiply_by_quantized_multiplier_16
from compiler.quant.reference.conv import conv_accumulate, validate_conv_geometry, validate_multipliers

INT16_MIN, INT16_MAX = -32768, 32767
BIAS_LIMIT = 1 << 46  # |bias| below it: with |sum| < 2^22 K the accumulator stays inside TFLite's 2^47


def conv2d_s16x8(x, w, bias=None, *, stride=(1, 1), dilation=(1, 1), padding=(0, 0, 0, 0), groups=1, multiplier,
                 shift, act_min=INT16_MIN, act_max=INT16_MAX):
    """int16 NHWC x, int8 OHWI w, int64 bias [O] or None -> int16 NHWC. Geometry as conv.conv2d_s8's;
    multiplier [O] or [1] in [0, 2^31), shift in [-31, 7]; act_min <= act_max in int16."""
    x, w = _array(x, np.int16, "input", 4), _array(w, np.int8, "filter", 4)
    g = validate_conv_geometry(x.shape, w.shape, stride=stride, dilation=dilation, padding=padding, groups=groups)
    q = validate_quant16(bias, w.shape[0], multiplier, shift, act_min, act_max)
    return requantize16(conv_accumulate(x.astype(np.int64), w, g), q)


def dense_s16x8(x, w, bias=None, *, multiplier, shift, act_min=INT16_MIN, act_max=INT16_MAX):
    """int16 [N, K] x int8 [O, K] (+ int64 bias [O]) -> int16 [N, O]; quantisation as conv2d_s16x8's."""
    x, w = _array(x, np.int16, "input", 2), _array(w, np.int8, "weight", 2)
    if x.shape[1] != w.shape[1] or min(w.shape) < 1:
        raise ValueError(f"input {x.shape} and weight {w.shape} (weight is [O, K]) do not match")
    q = validate_quant16(bias, w.shape[0], multiplier, shift, act_min, act_max)
    return requantize16(x.astype(np.int64) @ w.astype(np.int64).T, q)


class Quant16(NamedTuple):
    """A 16x8 layer's checked bias, requantisation and clamp."""

    bias: np.ndarray | None  # int64 [O], |bias| < 2^46, or None
    multiplier: np.ndarray  # int64 [O], in [0, 2^31)
    shift: np.ndarray  # int64 [O], in [-31, 7]
    act_min: int
    act_max: int


def validate_quant16(bias, channels, multiplier, shift, act_min, act_max) -> Quant16:
    """The 16x8 layer's bias, requantisation and clamp checked (ValueError) and broadcast to `channels`."""
    if bias is not None:
        bias = np.asarray(bias)
        if bias.dtype.kind not in "iu" or bias.shape != (channels,):
            raise ValueError(f"bias must be integers of shape [{channels}], got {bias.dtype} {bias.shape}")
        bias = bias.astype(np.int64)
        if np.any(np.abs(bias) >= BIAS_LIMIT):
            raise ValueError("bias must be within +-2^46")
    multiplier, shift = validate_multipliers(multiplier, shift, channels, max_shift=7, what=" (16x8 layers)")
    act_min, act_max = int(act_min), int(act_max)
    if not INT16_MIN <= act_min <= act_max <= INT16_MAX:
        raise ValueError(f"act_min={act_min}, act_max={act_max}: need INT16_MIN <= act_min <= act_max <= INT16_MAX")
    return Quant16(bias, multiplier, shift, act_min, act_max)


def requantize16(acc, q: Quant16):
    """int64 accumulator [..., O] without bias -> int16 output."""
    if q.bias is not None:
        acc = acc + q.bias
    if acc.size and np.abs(acc).max() >= 1 << 47:
        raise OverflowError(f"16x8 accumulator leaves +-2^47: {acc.min()}..{acc.max()}")
    return np.clip(multiply_by_quantized_multiplier_16(acc, q.multiplier, q.shift), q.act_min, q.act_max).astype(np.int16)


def _array(value, dtype, name, ndim):
    array = np.asarray(value)
    if array.dtype != dtype or array.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D {np.dtype(dtype).name} array, got {array.dtype} {array.shape}")
    return array


def requantize_s8_s16(x, *, input_zero_point, multiplier, shift, act_min=INT16_MIN, act_max=INT16_MAX):
    """int8 -> int16 (zero point 0): clamp(MBQM(x - input_zero_point, multiplier, shift), act_min, act_max),
    one rounding (fixed_point.multiply_by_quantized_multiplier). With scale_in / scale_out = 128 the
    widening is exact: (x - zp) * 128 fits int16."""
    x = _array(x, np.int8, "input", np.ndim(x))
    return _rescale(x, int(input_zero_point), 0, multiplier, shift, act_min, act_max, INT16_MIN, INT16_MAX, np.int16)


def requantize_s16_s8(x, *, output_zero_point, multiplier, shift, act_min=-128, act_max=127):
    """int16 (zero point 0) -> int8: clamp(MBQM(x, multiplier, shift) + output_zero_point, act_min, act_max)."""
    x = _array(x, np.int16, "input", np.ndim(x))
    return _rescale(x, 0, int(output_zero_point), multiplier, shift, act_min, act_max, -128, 127, np.int8)


def _rescale(x, input_zero_point, output_zero_point, multiplier, shift, act_min, act_max, low, high, dtype):
    (multiplier,), (shift,) = validate_multipliers(multiplier, shift, 1, max_shift=30)
    if not (-128 <= input_zero_point <= 127 and -128 <= output_zero_point <= 127):
        raise ValueError("zero points must be in [-128, 127]")
    if not low <= int(act_min) <= int(act_max) <= high:
        raise ValueError(f"act_min={act_min}, act_max={act_max}: need {low} <= act_min <= act_max <= {high}")
    scaled = multiply_by_quantized_multiplier(x.astype(np.int64) - input_zero_point, multiplier, shift)
    return np.clip(scaled.astype(np.int64) + output_zero_point, int(act_min), int(act_max)).astype(dtype)
