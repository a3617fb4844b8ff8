"""INT8 pooling kernels, TFLite-exact, in NumPy.

The spec for kernels/ref/pool_s8.c (declared in kernels/include/npu_kernels_elementwise.h)
and for the generated kernels; tests demand bit equality between them. Layout NHWC;
padding is (top, left, bottom, right), each >= 0; the output size is

    out = floor((in + pad_before + pad_after - kernel) / stride) + 1        (must be >= 1)

and output pixel y reads input rows y * stride - pad_top + [0, kernel), clipped to the input.

Average pool (TFLite reference_integer_ops::AveragePool; input and output share scale and
zero point): over the valid (non-padded) part of the window,

    sum = sum of q                    count = number of valid elements
    out = clamp((sum > 0 ? sum + count / 2 : sum - count / 2) / count, act_min, act_max)

with C's truncating division, i.e. the mean rounded half away from zero.

Max pool (TFLite reference_integer_ops::MaxPool): out = clamp(max of the valid window,
act_min, act_max); padding is ignored.

A window with no valid element (possible only when a padding is >= the kernel) is rejected
with ValueError, as TFLite's AveragePool fails on it.

Global average pool = int8 MEAN over (H, W) (with keep_dims or without: [N, 1, 1, C] or [N, C],
the same bytes), requantising from (s_in, zp_in) to (s_out, zp_out) with 1/n folded into the
multiplier (n = H * W):

    acc = sum over H, W of (q - input_zero_point)                         (int32)
    out = clamp(MBQM(acc, multiplier, shift) + output_zero_point + bias, act_min, act_max)

MBQM rounds as `block_rounding` (fixed_point.ROUNDINGS index) in the channels of whole blocks of
MEAN_BLOCK = 16 (channels [0, C - C % 16)) and as `rounding` in the others. The two adds are
done in 64 bits, so nothing overflows at a saturated multiply. The parameters by integer spec:

ONNX (mean_params; rounding = block_rounding = single, bias = 0): one rounding in all,

    (m, e) = QuantizeMultiplier(double(s_in) / (double(s_out) * n)),  input_zero_point = zp_in

TFLite with keep_dims (litert_mean_params): LiteRT's optimized int8 MEAN
(optimized_integer_ops::Mean), which sums the raw q and moves the input zero point past the
rounding, in float32:

    (m, e) = QuantizeMultiplier(float32(s_in / (float32(n) * s_out)))     (float32 arithmetic)
    input_zero_point = 0,  bias = -round_half_away(float32(zp_in * s_in / s_out))

and its SIMD loop, whole blocks of 16 channels, rounds as ruy (double, ties up), its scalar loop
the remaining channels as gemmlowp (double, ties away) (integer_spec.MEAN_ROUNDING).
Measured against LiteRT 2.3's built-in kernels on 3,000 random shapes (C 1..69, H, W 1..11,
1x1 included, batch 1..2) and scales / zero points: no output differs.

TFLite without keep_dims (litert_reference_mean_params; what TensorFlow's converter writes for
Keras' GlobalAveragePooling2D): LiteRT's optimized MEAN takes only keep_dims, so this is its
reference MEAN (reference_ops::QuantizedMeanOrSum), which folds 1/n into the multiplier of
s_in / s_out in integers, truncating:

    (m0, e0) = QuantizeMultiplier(double(s_in) / double(s_out))
    k = min(floor(log2 n), 32, 31 + e0)
    m = floor(m0 * 2**k / n),  e = e0 - k,  input_zero_point = zp_in,  bias = 0

rounding as gemmlowp (double, ties away) in every channel
(integer_spec.MEAN_ROUNDING_WITHOUT_KEEP_DIMS), equal input and output scales and zero points
included. Measured against LiteRT 2.3's built-in
kernels on 2,000 random shapes (C 1..69, H, W 1..89, 1x1 included, batch 1..2) and scales / zero
points (ratios 2**-24 .. 2**8, power-of-two ratios for exact ties): no output of 95,000 differs
(tests/unit/test_tflite_mean.py keeps 300 of them).
"""

import numpy as np

from compiler.quant.fixed_point import INT32_MAX, MULTIPLY, ROUNDINGS, quantize_multiplier, rounding_code
from compiler.quant.reference.elementwise import (
    INT8_MAX,
    INT8_MIN,
    _act_range,
    _int8_array,
    _int8_value,
    _int_value,
    _multiplier_shift,
    _scale,
)

__all__ = [
    "avg_pool2d_s8",
    "global_avg_pool2d_s8",
    "litert_mean_params",
    "litert_reference_mean_params",
    "max_pool2d_s8",
    "mean_params",
    "pool2d_output_size",
]

MAX_WINDOW = 1 << 23  # window elements (and MEAN's H * W) keep int32 sums of int8 values exact
MEAN_BLOCK = 16  # global_avg_pool2d_s8: channels [0, C - C % MEAN_BLOCK) round as block_rounding
MAX_MEAN_BIAS = 1 << 30  # |bias|: zero point + bias stays an int32 (the RVV clamp's bounds)
MAX_LITERT_MEAN_RATIO = 1 << 22  # s_in / s_out: LiteRT's int32 sum + bias cannot wrap


def pool2d_output_size(in_size: int, kernel: int, stride: int = 1, pad_before: int = 0, pad_after: int = 0) -> int:
    """floor((in + pad_before + pad_after - kernel) / stride) + 1 (may be <= 0)."""
    return (in_size + pad_before + pad_after - kernel) // stride + 1


def mean_params(input_scale, input_zero_point, output_scale, output_zero_point, count) -> dict:
    """Keyword arguments of global_avg_pool2d_s8 for a mean over `count` (= H * W) elements.

    The 1 / count is folded into the multiplier, s_in / (s_out * count), as TFLite's optimised
    MEAN kernel does: one rounding in all. (The reference MEAN requantises by s_in / s_out and
    then divides with a second rounding, which lifts results just below .5 by one step.)
    """
    if int(count) < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    ratio = _scale(input_scale, "input_scale") / (_scale(output_scale, "output_scale") * int(count))
    multiplier, shift = quantize_multiplier(ratio)
    return dict(input_zero_point=_int8_value(input_zero_point, "input_zero_point"),
                output_zero_point=_int8_value(output_zero_point, "output_zero_point"),
                multiplier=multiplier, shift=shift)


def litert_mean_params(input_scale, input_zero_point, output_scale, output_zero_point, count) -> dict:
    """Keyword arguments of global_avg_pool2d_s8 (but the roundings, the integer spec's) for a
    TFLite model's MEAN over `count` (= H * W) elements, as LiteRT's optimized int8 MEAN derives
    them in float32: the multiplier of s_in / (n * s_out), and the input zero point moved past the
    requantisation as bias = -round_half_away(zp_in * s_in / s_out). s_in / s_out is at most
    2**22 (beyond, LiteRT's int32 arithmetic could wrap)."""
    if int(count) < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    s_in, s_out = np.float32(_scale(input_scale, "input_scale")), np.float32(_scale(output_scale, "output_scale"))
    if s_in / s_out > MAX_LITERT_MEAN_RATIO:
        raise ValueError(f"input_scale / output_scale = {s_in / s_out} exceeds 2**22")
    folded = np.float32(_int8_value(input_zero_point, "input_zero_point")) * s_in / s_out
    multiplier, shift = quantize_multiplier(float(s_in / (np.float32(count) * s_out)))
    return dict(input_zero_point=0, output_zero_point=_int8_value(output_zero_point, "output_zero_point"),
                multiplier=multiplier, shift=shift,
                bias=-int(folded + np.float32(0.5) if folded > 0 else folded - np.float32(0.5)))  # C's truncation


def litert_reference_mean_params(input_scale, input_zero_point, output_scale, output_zero_point, count) -> dict:
    """Keyword arguments of global_avg_pool2d_s8 (but the roundings, the integer spec's) for a
    TFLite model's MEAN over `count` (= H * W) elements without keep_dims, as LiteRT's reference
    int8 MEAN derives them: the multiplier of s_in / s_out (float32 scales divided in double),
    then 1 / count folded into it by a truncating integer division (the module docstring)."""
    count = int(count)
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    s_in, s_out = (float(np.float32(_scale(s, name))) for s, name in ((input_scale, "input_scale"),
                                                                      (output_scale, "output_scale")))
    multiplier, shift = quantize_multiplier(s_in / s_out)
    k = min(count.bit_length() - 1, 32, 31 + shift)
    return dict(input_zero_point=_int8_value(input_zero_point, "input_zero_point"),
                output_zero_point=_int8_value(output_zero_point, "output_zero_point"),
                multiplier=(multiplier << k) // count, shift=shift - k)


def avg_pool2d_s8(x, *, kernel, stride=(1, 1), padding=(0, 0, 0, 0), act_min=INT8_MIN, act_max=INT8_MAX):
    """Average pool, int8 NHWC -> int8 NHWC, counting only the valid window elements."""
    g = _pool_geometry(x, kernel, stride, padding)
    act_min, act_max = _act_range(act_min, act_max)
    x = np.asarray(x).astype(np.int64)
    out = np.empty((g.n, g.out_h, g.out_w, g.c), dtype=np.int64)
    for oy, (y0, y1) in enumerate(g.rows):
        for ox, (x0, x1) in enumerate(g.cols):
            total = x[:, y0:y1, x0:x1, :].sum(axis=(1, 2))
            count = (y1 - y0) * (x1 - x0)
            out[:, oy, ox, :] = _divide_round_half_away(total, count)
    return np.clip(out, act_min, act_max).astype(np.int8)


def max_pool2d_s8(x, *, kernel, stride=(1, 1), padding=(0, 0, 0, 0), act_min=INT8_MIN, act_max=INT8_MAX):
    """Max pool, int8 NHWC -> int8 NHWC, over the valid window elements (padding never wins)."""
    g = _pool_geometry(x, kernel, stride, padding)
    act_min, act_max = _act_range(act_min, act_max)
    x = np.asarray(x)
    out = np.empty((g.n, g.out_h, g.out_w, g.c), dtype=np.int8)
    for oy, (y0, y1) in enumerate(g.rows):
        for ox, (x0, x1) in enumerate(g.cols):
            out[:, oy, ox, :] = x[:, y0:y1, x0:x1, :].max(axis=(1, 2))
    return np.clip(out, act_min, act_max).astype(np.int8)


def global_avg_pool2d_s8(x, *, input_zero_point, output_zero_point, multiplier, shift, act_min=INT8_MIN,
                         act_max=INT8_MAX, bias=0, rounding=0, block_rounding=0):
    """Int8 mean over H and W (keep_dims): int8 [N, H, W, C] -> int8 [N, 1, 1, C].

    The sum of (x - input_zero_point) is requantised by multiplier/shift (mean_params,
    litert_mean_params or litert_reference_mean_params: they include 1 / (H * W); H * W <= 2**23),
    rounding as block_rounding in the channels of whole blocks of MEAN_BLOCK and as rounding in the
    rest; then output_zero_point and bias (|bias| <= 2**30) are added.
    """
    x, zp_in, zp_out, multiplier, shift, act_min, act_max, bias, rounding, block_rounding = _check_mean_args(
        x, input_zero_point, output_zero_point, multiplier, shift, act_min, act_max, bias, rounding, block_rounding)
    acc = (x.astype(np.int64) - zp_in).sum(axis=(1, 2), keepdims=True)  # |acc| <= 255 * 2**23 < 2**31
    block = x.shape[3] - x.shape[3] % MEAN_BLOCK
    out = np.concatenate([MULTIPLY[ROUNDINGS[block_rounding]](acc[..., :block], multiplier, shift),
                          MULTIPLY[ROUNDINGS[rounding]](acc[..., block:], multiplier, shift)], axis=3)
    return np.clip(out.astype(np.int64) + zp_out + bias, act_min, act_max).astype(np.int8)


def _divide_round_half_away(total, count):
    """(total > 0 ? total + count / 2 : total - count / 2) / count with C's truncating division."""
    total = np.asarray(total, dtype=np.int64)
    half = count // 2
    magnitude = (np.abs(total) + half) // count
    return np.where(total > 0, magnitude, -magnitude)


# ----------------------------------------------------------------------------------------
# Argument checking, shared with the C binding (compiler/quant/_ref_elementwise.pyx)


class _PoolGeometry:
    """Checked pooling geometry: shapes, attributes and each output row's / column's input range."""

    def __init__(self, shape, kernel, stride, padding):
        self.n, self.h, self.w, self.c = shape
        self.kernel_h, self.kernel_w = kernel
        self.stride_h, self.stride_w = stride
        self.pad_top, self.pad_left, self.pad_bottom, self.pad_right = padding
        self.out_h = pool2d_output_size(self.h, self.kernel_h, self.stride_h, self.pad_top, self.pad_bottom)
        self.out_w = pool2d_output_size(self.w, self.kernel_w, self.stride_w, self.pad_left, self.pad_right)
        if self.out_h < 1 or self.out_w < 1:
            raise ValueError(f"empty output {self.out_h}x{self.out_w}: input {self.h}x{self.w}, kernel {kernel}, "
                             f"padding {padding}")
        self.rows = _window_ranges(self.out_h, self.h, self.kernel_h, self.stride_h, self.pad_top, "row")
        self.cols = _window_ranges(self.out_w, self.w, self.kernel_w, self.stride_w, self.pad_left, "column")


def _window_ranges(out_size, in_size, kernel, stride, pad_before, what):
    ranges = []
    for o in range(out_size):
        origin = o * stride - pad_before
        start, end = max(0, origin), min(in_size, origin + kernel)
        if end <= start:
            raise ValueError(f"output {what} {o} pools a window entirely in the padding")
        ranges.append((start, end))
    return ranges


def _pool_geometry(x, kernel, stride, padding):
    x = _int8_array(x, "input", 4)
    kernel = _int_tuple(kernel, "kernel", 2, 1)
    stride = _int_tuple(stride, "stride", 2, 1)
    padding = _int_tuple(padding, "padding", 4, 0)
    if kernel[0] * kernel[1] > MAX_WINDOW:
        raise ValueError(f"kernel {kernel} has more than 2**23 elements")
    return _PoolGeometry(x.shape, kernel, stride, padding)


def _int_tuple(values, name, count, minimum):
    values = tuple(values)
    if len(values) != count:
        raise ValueError(f"{name} needs {count} values, got {values}")
    return tuple(_int_value(v, name, minimum, INT32_MAX) for v in values)


def _check_mean_args(x, input_zero_point, output_zero_point, multiplier, shift, act_min, act_max, bias=0, rounding=0,
                     block_rounding=0):
    x = _int8_array(x, "input", 4)
    if x.shape[1] * x.shape[2] > MAX_WINDOW:
        raise ValueError(f"H * W = {x.shape[1] * x.shape[2]} exceeds 2**23: the int32 sum could overflow")
    if x.shape[1] * x.shape[2] == 0:
        raise ValueError(f"cannot average an empty {x.shape[1]}x{x.shape[2]} plane")
    multiplier, shift = _multiplier_shift(multiplier, shift, "", -31, 30)
    act_min, act_max = _act_range(act_min, act_max)
    return (x, _int8_value(input_zero_point, "input_zero_point"), _int8_value(output_zero_point, "output_zero_point"),
            multiplier, shift, act_min, act_max, _int_value(bias, "bias", -MAX_MEAN_BIAS, MAX_MEAN_BIAS),
            rounding_code(rounding), rounding_code(block_rounding))
