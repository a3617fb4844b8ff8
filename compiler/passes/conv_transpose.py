"""ConvTranspose as a convolution over the zero-inserted input, in NHWC (used by to_nhwc).

A transposed convolution with stride s, dilation d, padding (p_begin, p_end) and output padding op
equals, per spatial axis, a stride-1 convolution with dilation d of the input with s - 1 zeros
inserted after every element, padded by d*(k-1) - p_begin before and d*(k-1) - p_end + op after,
with the weight flipped spatially and its I and O axes swapped (per group). The zero insertion is
two reshapes and a zero pad per strided axis:

    [N, H, W, C] -> [N*H, 1, W, C] -pad axis 1 by s_h - 1-> [N*H, s_h, W, C] -> [N*H*s_h, W, 1, C]
    -pad axis 2 by s_w - 1-> [N*H*s_h, W, s_w, C] -> [N, H*s_h, W*s_w, C]

which leaves s - 1 zeros after the last element too, taken off the "after" padding. A padding
that comes out negative crops the zero-inserted input (a strided_slice) instead. Every op is one
the int8 path already runs exactly (zero pads keep the scale and the zero point, reshapes and
slices move bytes), so a quantised ConvTranspose is a pad, a copy and an int8 convolution. It
spends s_h * s_w times the MACs of a direct transposed convolution on the inserted zeros.
"""

import numpy as np
from tvm import relax

from compiler.passes.util import is_call_to, is_const


def nhwc_conv_transpose(emit, x, call, weight, x_dequantize=None):
    """The NHWC conv2d computing R.nn.conv2d_transpose `call` of the NHWC tensor x, whose weight is
    `weight` (call's weight or the dequantize bound to it: supported() says which it takes);
    `emit(expr) -> var` binds the intermediate steps. x_dequantize: x's value when it is a
    dequantize (a quantised model): then every zero-insertion step is followed by a quantize /
    dequantize pair of its parameters (exact: the steps move values and insert 0.0, the zero
    point), so the steps run on int8 (passes/prequantised_tables.py, the int8 pad)."""
    attrs = call.attrs
    strides, dilation = [int(v) for v in attrs.strides], [int(v) for v in attrs.dilation]
    before, after = _paddings(call)
    step = emit
    if x_dequantize is not None:
        _, scale, zero_point = x_dequantize.args
        axis, dtype = int(x_dequantize.attrs.axis), str(x_dequantize.args[0].ty.dtype)
        step = lambda expr: emit(relax.op.dequantize(  # noqa: E731
            emit(relax.op.quantize(emit(expr), scale, zero_point, axis=axis, out_dtype=dtype)), scale, zero_point,
            axis=axis, out_dtype="float32"))
    x = _cropped(step, _zero_inserted(step, x, strides), before, after)
    padding = [max(before[0], 0), max(before[1], 0), max(after[0], 0), max(after[1], 0)]
    return relax.op.nn.conv2d(x, _conv_weight(weight, int(attrs.groups)), strides=[1, 1], padding=padding,
                              dilation=dilation, groups=int(attrs.groups), data_layout="NHWC", kernel_layout="OHWI",
                              out_layout="NHWC", out_dtype=attrs.out_dtype)


def supported(call, weight) -> bool:
    """NCHW data, an IOHW weight that is a constant or its dequantize (per tensor, or per output
    channel: axis 1), and a zero-inserted input the crop leaves non-empty. `weight`: call's weight
    or the value bound to it."""
    attrs = call.attrs
    if (attrs.data_layout, attrs.kernel_layout, attrs.out_layout) != ("NCHW", "IOHW", "NCHW"):
        return False
    if not (is_const(weight) or _quantised_weight(weight)) or len(call.args[0].ty.shape) != 4:
        return False
    _, _, h, w = (int(d) for d in call.args[0].ty.shape)
    before, after = _paddings(call)
    extents = [n * int(s) for n, s in zip((h, w), attrs.strides)]
    return all(extent + min(b, 0) + min(a, 0) > 0 for extent, b, a in zip(extents, before, after))


def _paddings(call):
    """([before_h, before_w], [after_h, after_w]) of the equivalent convolution over the
    zero-inserted input (which already ends in s - 1 zeros); negative means crop."""
    attrs = call.attrs
    kernel = [int(k) for k in call.args[1].ty.shape][2:]
    top, left, bottom, right = (int(v) for v in attrs.padding)
    reach = [int(d) * (int(k) - 1) for d, k in zip(attrs.dilation, kernel)]
    before = [r - p for r, p in zip(reach, (top, left))]
    after = [r - p + int(op) - (int(s) - 1)
             for r, p, op, s in zip(reach, (bottom, right), attrs.output_padding, attrs.strides)]
    return before, after


def _quantised_weight(weight) -> bool:
    """dequantize(const IOHW, scale, zero point) per tensor or per output channel (axis 1)."""
    if not (is_call_to(weight, "relax.dequantize") and all(is_const(arg) for arg in weight.args)):
        return False
    return weight.args[1].value.numpy().size == 1 or int(weight.attrs.axis) in (1, -3)


def _conv_weight(weight, groups):
    """The equivalent convolution's OHWI weight: a constant, or the dequantize of the int8 one with
    its per-channel scales along O (axis 0; ONNX gives one scale per output channel of a group,
    repeated for every group)."""
    if is_const(weight):
        return relax.const(_conv_weight_ohwi(weight.value.numpy(), groups))
    data, scale, zero_point = (arg.value.numpy() for arg in weight.args)
    per_tensor = scale.size == 1
    if not per_tensor:
        scale, zero_point = np.tile(scale.reshape(-1), groups), np.tile(zero_point.reshape(-1), groups)
    return relax.op.dequantize(relax.const(_conv_weight_ohwi(data, groups)), relax.const(scale),
                               relax.const(zero_point), axis=-1 if per_tensor else 0,
                               out_dtype=weight.attrs.out_dtype)


def _conv_weight_ohwi(weight, groups):
    """IOHW transposed-convolution weight [C_in, C_out/g, kh, kw] -> the equivalent convolution's
    OHWI weight [C_out, kh, kw, C_in/g]: per group, I and O swapped and both spatial axes flipped."""
    per_group = np.split(weight, groups, axis=0)  # each [C_in/g, C_out/g, kh, kw]
    flipped = [part[:, :, ::-1, ::-1].transpose(1, 2, 3, 0) for part in per_group]
    return np.ascontiguousarray(np.concatenate(flipped, axis=0))


def _zero_inserted(emit, x, strides):
    """x [N, H, W, C] with s - 1 zeros after every row (s_h) and column (s_w): [N, H*s_h, W*s_w, C]."""
    n, h, w, c = (int(d) for d in x.ty.shape)
    s_h, s_w = strides
    if s_h > 1:
        x = emit(relax.op.reshape(x, (n * h, 1, w, c)))
        x = emit(relax.op.nn.pad(x, [0, 0, 0, s_h - 1, 0, 0, 0, 0]))
    if s_w > 1:
        x = emit(relax.op.reshape(x, (n * h * s_h, w, 1, c)))
        x = emit(relax.op.nn.pad(x, [0, 0, 0, 0, 0, s_w - 1, 0, 0]))
    return emit(relax.op.reshape(x, (n, h * s_h, w * s_w, c))) if s_h > 1 or s_w > 1 else x


def _cropped(emit, x, before, after):
    """x [N, H, W, C] without the rows / columns a negative padding takes off (supported() has
    checked something is left)."""
    if min(before + after) >= 0:
        return x
    _, h, w, _ = (int(d) for d in x.ty.shape)
    begin = [max(-b, 0) for b in before]
    end = [extent - max(-a, 0) for extent, a in zip((h, w), after)]
    return emit(relax.op.strided_slice(x, axes=[1, 2], begin=begin, end=end))
