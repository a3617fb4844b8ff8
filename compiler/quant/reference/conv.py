"""INT8 2-D convolution (plain, grouped, depthwise), TFLite-exact, in NumPy.

The spec for kernels/ref/conv2d_s8.c (declared in kernels/include/npu_kernels_conv.h) and
for the generated kernels; tests demand bit equality between them. Semantics are TFLite's
reference_integer_ops::ConvPerChannel and DepthwiseConvPerChannel:

    acc[n, y, x, o] = bias[o] + sum over (ky, kx, i) of
                      (input[n, y*sh - pt + ky*dh, x*sw - pl + kx*dw, g*Cg + i] - input_zero_point)
                      * filter[o, ky, kx, i]                      with g = o // (O / groups)
    output = clamp(multiply_by_quantized_multiplier(acc, multiplier[o], shift[o])
                   + output_zero_point, act_min, act_max)
    (rounded once; or twice, as TFLite's default build, for models imported from TFLite: `rounding`)

Taps that fall in the padding contribute nothing (the padded input equals the zero point).
Layouts: input NHWC [N, H, W, C], filter OHWI [O, kh, kw, C / groups]. Depthwise is
groups == C with a depth multiplier O / C (output channel o reads input channel o // (O / C),
as TFLite's depthwise conv does).

The accumulator is int32 (as in TFLite and the C kernel): this reference computes in int64
and raises OverflowError if a sum leaves int32, which no realistic layer does
(|term| <= 255 * 127, so it takes ~66k taps).
"""

from typing import NamedTuple

import numpy as np

from compiler.quant.fixed_point import INT32_MAX, INT32_MIN, channel_roundings, requantize, rounding_code

INT8_MIN, INT8_MAX = -128, 127


def conv2d_output_size(in_size: int, kernel: int, stride: int = 1, dilation: int = 1, pad_before: int = 0,
                       pad_after: int = 0) -> int:
    """floor((in + pad_before + pad_after - dilation * (kernel - 1) - 1) / stride) + 1 (may be <= 0)."""
    return (in_size + pad_before + pad_after - dilation * (kernel - 1) - 1) // stride + 1


def conv2d_s8(x, w, bias=None, *, stride=(1, 1), dilation=(1, 1), padding=(0, 0, 0, 0), groups=1,
              input_zero_point, output_zero_point, multiplier, shift, act_min=INT8_MIN, act_max=INT8_MAX, rounding=0):
    """Quantised 2-D convolution: int8 NHWC input, int8 OHWI filter -> int8 NHWC output.

    x: int8 [N, H, W, C]; w: int8 [O, kh, kw, C // groups]; bias: int32 [O] or None.
    stride, dilation: (h, w); padding: (top, left, bottom, right), each >= 0.
    groups divides C and O (groups == C is depthwise, depth multiplier O // C).
    input_zero_point, output_zero_point: the zero points themselves, in [-128, 127].
    multiplier, shift: per output channel, [O] (or [1], applied to every channel), as
    produced by fixed_point.quantize_multiplier (multiplier in [0, 2**31), shift in [-31, 30]).
    act_min <= act_max in [-128, 127]: the fused activation as an output clamp.
    rounding: the requantisation's rounding as its C code (fixed_point.ROUNDINGS: 0 single, the
    ONNX spec; 1 double, TFLite's reference kernels; 2 double with ties up, ruy's; 3, LiteRT's
    depthwise: 2 in whole blocks of 8 output channels, 1 in the rest).
    Raises ValueError on inconsistent shapes or out-of-range arguments.
    """
    a = validate_conv_args(x, w, bias, stride=stride, dilation=dilation, padding=padding, groups=groups,
                           input_zero_point=input_zero_point, output_zero_point=output_zero_point,
                           multiplier=multiplier, shift=shift, act_min=act_min, act_max=act_max, rounding=rounding)
    acc = conv_accumulate(a.x.astype(np.int64) - a.quant.input_zero_point, a.w, a.geometry)
    return requantize_accumulator(acc, a.quant, "conv2d accumulator")


def conv_accumulate(centred, w, g: "ConvGeometry"):
    """int64 [N, out_h, out_w, O]: sum over taps and the group's input channels of centred * filter, for
    an input already centred on its zero point (int64 NHWC) and an OHWI filter; padding contributes 0."""
    n, (o, kh, kw, cg) = centred.shape[0], w.shape
    (sh, sw), (dh, dw), (pt, pl, pb, pr), groups = g.stride, g.dilation, g.padding, g.groups
    centred = np.pad(centred, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    # Group view: input channels [G, Cg], filter [G, Og, kh, kw, Cg], accumulator [N, oh, ow, G, Og].
    og = o // groups
    filt = w.astype(np.int64).reshape(groups, og, kh, kw, cg)
    acc = np.zeros((n, g.out_h, g.out_w, groups, og), dtype=np.int64)
    for ky in range(kh):
        for kx in range(kw):
            # The input pixels tap (ky, kx) reads for every output pixel: [N, out_h, out_w, C].
            y0, x0 = ky * dh, kx * dw
            window = centred[:, y0:y0 + (g.out_h - 1) * sh + 1:sh, x0:x0 + (g.out_w - 1) * sw + 1:sw, :]
            window = window.reshape(n, g.out_h, g.out_w, groups, cg)
            acc += np.einsum("nhwgc,goc->nhwgo", window, filt[:, :, ky, kx, :])
    return acc.reshape(n, g.out_h, g.out_w, o)


# ----------------------------------------------------------------------------------------
# Argument checking, shared with dense.py and the C binding (compiler/quant/_ref_conv.pyx):
# the validate_* functions raise ValueError on anything malformed and return the arguments
# normalised; the binding only converts them to the buffers and params struct the C code takes.


class QuantArgs(NamedTuple):
    """Checked bias, zero points, requantisation and clamp of a layer with `channels` outputs."""

    bias: np.ndarray | None  # int64 [channels] within int32, or None (no bias)
    multiplier: np.ndarray  # int64 [channels], in [0, 2**31)
    shift: np.ndarray  # int64 [channels], in [-31, 30]
    input_zero_point: int
    output_zero_point: int
    act_min: int
    act_max: int
    rounding: int = 0  # fixed_point.ROUNDINGS index, or BLOCKS_OF_8_ROUNDING (conv2d)


class ConvGeometry(NamedTuple):
    """A convolution's checked geometry (validate_conv_geometry)."""

    stride: tuple[int, int]
    dilation: tuple[int, int]
    padding: tuple[int, int, int, int]  # top, left, bottom, right
    groups: int
    out_h: int  # >= 1
    out_w: int  # >= 1


class ConvArgs(NamedTuple):
    """Checked conv2d_s8 arguments (validate_conv_args)."""

    x: np.ndarray  # int8 [N, H, W, C] (as given: not necessarily contiguous)
    w: np.ndarray  # int8 [O, kh, kw, C // groups]
    geometry: ConvGeometry
    quant: QuantArgs


def validate_conv_args(x, w, bias, *, stride, dilation, padding, groups, input_zero_point, output_zero_point,
                       multiplier, shift, act_min, act_max, rounding=0) -> ConvArgs:
    """conv2d_s8's arguments checked (ValueError on inconsistent shapes or out-of-range values) and normalised."""
    x = _int8_array(x, "input", 4)
    w = _int8_array(w, "filter", 4)
    geometry = validate_conv_geometry(x.shape, w.shape, stride=stride, dilation=dilation, padding=padding,
                                      groups=groups)
    quant = validate_quant_args(bias, w.shape[0], input_zero_point=input_zero_point,
                                output_zero_point=output_zero_point, multiplier=multiplier, shift=shift,
                                act_min=act_min, act_max=act_max, rounding=rounding, channel_blocks=True)
    return ConvArgs(x, w, geometry, quant)


def validate_conv_geometry(x_shape, w_shape, *, stride, dilation, padding, groups) -> ConvGeometry:
    """An NHWC input's and OHWI filter's shapes with the stride, dilation, padding and groups: checked
    (ValueError) and the output size computed."""
    n, h, wd, c = x_shape
    o, kh, kw, cg = w_shape
    sh, sw = _ints(stride, "stride", 2, minimum=1)
    dh, dw = _ints(dilation, "dilation", 2, minimum=1)
    pt, pl, pb, pr = _ints(padding, "padding", 4, minimum=0)
    groups = int(groups)
    if groups < 1 or c % groups or o % groups:
        raise ValueError(f"groups={groups} must divide input channels {c} and output channels {o}")
    if cg != c // groups:
        raise ValueError(f"filter shape {tuple(w_shape)} (OHWI) needs I = C / groups = {c // groups}, got {cg}")
    if kh < 1 or kw < 1 or o < 1 or c < 1:
        raise ValueError(f"empty channels or filter: input {tuple(x_shape)}, filter {tuple(w_shape)}")
    out_h = conv2d_output_size(h, kh, sh, dh, pt, pb)
    out_w = conv2d_output_size(wd, kw, sw, dw, pl, pr)
    if out_h < 1 or out_w < 1:
        raise ValueError(f"empty output {out_h}x{out_w}: input {h}x{wd}, dilated kernel "
                         f"{dh * (kh - 1) + 1}x{dw * (kw - 1) + 1}, padding {padding}")
    return ConvGeometry((sh, sw), (dh, dw), (pt, pl, pb, pr), groups, out_h, out_w)


def validate_quant_args(bias, channels, *, input_zero_point, output_zero_point, multiplier, shift, act_min,
                        act_max, rounding=0, channel_blocks=False) -> QuantArgs:
    """bias: int32 [channels] or None; multiplier, shift: [channels] or [1] (per tensor), broadcast to [channels]."""
    bias = None if bias is None else _int32_vector(bias, "bias", channels)
    multiplier, shift = validate_multipliers(multiplier, shift, channels, max_shift=30)
    values = tuple(int(v) for v in (input_zero_point, output_zero_point, act_min, act_max))
    for name, value in zip(("input_zero_point", "output_zero_point", "act_min", "act_max"), values):
        if not INT8_MIN <= value <= INT8_MAX:
            raise ValueError(f"{name}={value} is outside [-128, 127]")
    if values[2] > values[3]:
        raise ValueError(f"act_min={values[2]} > act_max={values[3]}")
    return QuantArgs(bias, multiplier, shift, *values, rounding_code(rounding, channel_blocks))


def validate_multipliers(multiplier, shift, channels, *, max_shift, what=""):
    """multiplier in [0, 2**31) and shift in [-31, max_shift], [channels] or [1] (per tensor), broadcast
    to [channels] as int64 (ValueError otherwise; `what` names the layer kind in the message)."""
    multiplier = _int32_vector(multiplier, "multiplier", channels, allow_scalar=True)
    shift = _int32_vector(shift, "shift", channels, allow_scalar=True)
    if np.any(multiplier < 0):
        raise ValueError("multiplier must be in [0, 2**31)")
    if np.any((shift < -31) | (shift > max_shift)):
        raise ValueError(f"shift must be in [-31, {max_shift}]{what}, got {shift.min()}..{shift.max()}")
    return multiplier, shift


def requantize_accumulator(acc, quant: QuantArgs, what):
    """int64 accumulator [..., channels] without bias -> int8 output: add the bias, check int32, requantise."""
    if quant.bias is not None:
        acc = acc + quant.bias
    _check_int32(acc, what)
    out = np.empty(acc.shape, np.int8)
    for channels, rounding in channel_roundings(quant.rounding, acc.shape[-1]):
        out[..., channels] = requantize(acc[..., channels], quant.multiplier[channels], quant.shift[channels],
                                        quant.output_zero_point, quant.act_min, quant.act_max, rounding=rounding)
    return out


def _int8_array(value, name, ndim):
    array = np.asarray(value)
    if array.dtype != np.int8:
        raise ValueError(f"{name} must be an int8 array, got {array.dtype}")
    if array.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {array.shape}")
    return array


def _ints(values, name, count, minimum):
    values = tuple(int(v) for v in values)
    if len(values) != count:
        raise ValueError(f"{name} needs {count} values, got {values}")
    if any(v < minimum or v > INT32_MAX for v in values):
        raise ValueError(f"{name} values must be in [{minimum}, 2**31), got {values}")
    return values


def _int32_vector(value, name, length, allow_scalar=False):
    array = np.asarray(value)
    if array.ndim == 0 and allow_scalar:
        array = array.reshape(1)
    if array.dtype.kind not in "iu":
        raise ValueError(f"{name} must be integers, got {array.dtype}")
    if array.ndim != 1 or array.shape[0] not in ((1, length) if allow_scalar else (length,)):
        expected = f"[{length}] or [1]" if allow_scalar else f"[{length}]"
        raise ValueError(f"{name} must have shape {expected}, got {array.shape}")
    _check_int32(array, name, ValueError)
    return np.broadcast_to(array.astype(np.int64), (length,))


def _check_int32(array, name, error=OverflowError):
    if array.size and (array.min() < INT32_MIN or array.max() > INT32_MAX):
        raise error(f"{name} leaves int32: {array.min()}..{array.max()}")
