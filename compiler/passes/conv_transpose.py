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

from compiler.passes.util import is_const


def nhwc_conv_transpose(emit, x, call):
    """The NHWC conv2d computing R.nn.conv2d_transpose `call` of the NHWC tensor x; `emit(expr) ->
    var` binds the intermediate steps. Check `supported(call)` first."""
    attrs = call.attrs
    strides, dilation = [int(v) for v in attrs.strides], [int(v) for v in attrs.dilation]
    before, after = _paddings(call)
    x = _cropped(emit, _zero_inserted(emit, x, strides), before, after)
    padding = [max(before[0], 0), max(before[1], 0), max(after[0], 0), max(after[1], 0)]
    weight = _conv_weight_ohwi(call.args[1].value.numpy(), int(attrs.groups))
    return relax.op.nn.conv2d(x, relax.const(weight), strides=[1, 1], padding=padding, dilation=dilation,
                              groups=int(attrs.groups), data_layout="NHWC", kernel_layout="OHWI", out_layout="NHWC",
                              out_dtype=attrs.out_dtype)


def supported(call) -> bool:
    """NCHW data, IOHW constant weight, and a zero-inserted input the crop leaves non-empty."""
    attrs = call.attrs
    if (attrs.data_layout, attrs.kernel_layout, attrs.out_layout) != ("NCHW", "IOHW", "NCHW"):
        return False
    if not is_const(call.args[1]) or len(call.args[0].ty.shape) != 4:
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
