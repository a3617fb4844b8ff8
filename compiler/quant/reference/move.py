"""INT8 data movement as one strided copy, in NumPy: the spec of kernels/ref/move_s8.c and of the
generated "copy" kernel (kernels/include/npu_kernels_move.h), and the plans that express Slice,
Split, DepthToSpace, SpaceToDepth and Transpose as such a copy.

The copy (npu_copy_params: six extents and two stride vectors, in elements, and the input
element where it starts):

    for every index (i0, ..., i5) of shape, row-major:
        output[sum_d i_d * out_stride[d]] = input[in_offset + sum_d i_d * in_stride[d]]

The bytes move unchanged (input and output share scale and zero point).

A plan is the copy's params dict {shape, in_stride, out_stride, in_offset} (6-tuples of ints
and an int) for an
operation on a row-major tensor of any rank (NHWC for the 4-D ones). It walks the output in
row-major order, so its output strides are dense; axes of extent 1 are dropped and adjacent
axes contiguous in both input and output are merged (for a dense output: when the outer input
stride is the inner one times the inner extent), which makes the innermost run as long as the
layout allows: a spatial slice of NHWC is one run per row, a channel slice one per pixel. The
merged axes are right-aligned; unused leading axes have extent 1 and strides 0. An operation
needing more than six axes after merging raises ValueError, as does an empty input or output
(the kernel's extents are >= 1).

    Slice:         out[j...] = in[start_d + j_d * step_d ...]        (steps >= 1, in-range starts)
    DepthToSpace:  out[n, h*b + i, w*b + j, c] = in[n, h, w, ch]     (NHWC; C = b*b*C_out)
                   ch = (i*b + j) * C_out + c   (mode "DCR": TFLite DEPTH_TO_SPACE, ONNX default)
                   ch = c * b*b + i*b + j       (mode "CRD", ONNX)
    SpaceToDepth:  out[n, h, w, (i*b + j) * C + c] = in[n, h*b + i, w*b + j, c]   (TFLite, ONNX)
    Transpose:     out = np.transpose(in, axes)
"""

import math
from collections.abc import Mapping

import numpy as np

from compiler.quant.reference.elementwise import _int_value

COPY_DIMS = 6  # NPU_COPY_MAX_DIMS
INT32_MAX = 2**31 - 1
DEPTH_TO_SPACE_MODES = ("DCR", "CRD")

__all__ = [
    "COPY_DIMS",
    "DEPTH_TO_SPACE_MODES",
    "check_copy_args",
    "copy_params",
    "copy_s8",
    "depth_to_space_plan",
    "slice_offset",
    "slice_plan",
    "space_to_depth_plan",
    "transpose_plan",
]


# ----------------------------------------------------------------------------------------
# The copy


def copy_s8(x, params, out_shape):
    """The strided copy of npu_copy_s8 from the int8 tensor x (read as its flat row-major buffer,
    from element params["in_offset"] on) into a new int8 tensor of out_shape.

    ValueError when an extent is below 1, a stride negative, a read outside x, a write outside
    the output, two writes land on one element, or the copy does not fill the output (its
    element count differs from prod(out_shape)).
    """
    flat, shape, in_stride, out_stride, offset, out_shape = check_copy_args(x, params, out_shape)
    source = np.lib.stride_tricks.as_strided(flat[offset:], shape=shape, strides=in_stride, writeable=False)
    out = np.empty(math.prod(out_shape), dtype=np.int8)
    out[_offsets(shape, out_stride)] = source.reshape(-1)
    return out.reshape(out_shape)


def check_copy_args(x, params, out_shape):
    """copy_s8's arguments checked: (flat int8 input, shape, in_stride, out_stride, in_offset,
    out_shape), the shapes and strides as tuples of ints. Shared with the C binding
    (compiler/quant/_ref_move.pyx)."""
    x = np.asarray(x)
    if x.dtype != np.int8:
        raise ValueError(f"input must be an int8 array, got {x.dtype}")
    flat = np.ascontiguousarray(x).reshape(-1)
    if not isinstance(params, Mapping) or set(params) != {"shape", "in_stride", "out_stride", "in_offset"}:
        raise ValueError(f"params must be a dict of shape, in_stride, out_stride and in_offset, got {params!r}")
    shape = _int_tuple(params["shape"], "shape", 1, INT32_MAX, COPY_DIMS)
    in_stride = _int_tuple(params["in_stride"], "in_stride", 0, INT32_MAX, COPY_DIMS)
    out_stride = _int_tuple(params["out_stride"], "out_stride", 0, INT32_MAX, COPY_DIMS)
    out_shape = _int_tuple(out_shape, "out_shape", 0, INT32_MAX)
    count = math.prod(shape)
    if count > INT32_MAX:
        raise ValueError(f"the copy moves {count} elements, more than int32 holds")
    if count != math.prod(out_shape):
        raise ValueError(f"the copy writes {count} elements, the output {out_shape} has {math.prod(out_shape)}")
    offset = _int_value(params["in_offset"], "in_offset", 0, INT32_MAX)
    last_read = offset + _span(shape, in_stride)
    if last_read > INT32_MAX:
        raise ValueError(f"the copy reads input element {last_read}, beyond int32")
    if last_read >= flat.size:
        raise ValueError(f"the copy reads input element {last_read}, the input has {flat.size}")
    if _span(shape, out_stride) >= count:
        raise ValueError(f"the copy writes output element {_span(shape, out_stride)}, the output has {count}")
    written = np.zeros(count, dtype=bool)
    written[_offsets(shape, out_stride)] = True
    if np.count_nonzero(written) != count:
        raise ValueError(f"writes overlap: shape {shape} with out_stride {out_stride} writes some elements twice")
    return flat, shape, in_stride, out_stride, offset, out_shape


def _span(shape, stride) -> int:
    """The largest offset of the copy: sum (extent - 1) * stride."""
    return sum((e - 1) * s for e, s in zip(shape, stride))


def _offsets(shape, stride) -> np.ndarray:
    """sum_d i_d * stride[d] for every index of shape, row-major, as int64."""
    offsets = np.zeros((), dtype=np.int64)
    for extent, step in zip(shape, stride):
        offsets = (offsets[..., None] + np.arange(extent, dtype=np.int64) * step)
    return offsets.reshape(-1)


# ----------------------------------------------------------------------------------------
# Plans


def copy_params(extents, in_strides, in_offset=0) -> dict:
    """The copy params for walking an output of the given extents (row-major, dense) while reading
    the input at in_strides from element in_offset: extent-1 axes dropped, contiguous axes merged,
    right-aligned in six."""
    extents = _int_tuple(extents, "extent", 1, INT32_MAX)
    in_strides = _int_tuple(in_strides, "in_stride", 0, INT32_MAX, len(extents))
    if math.prod(extents) > INT32_MAX:
        raise ValueError(f"the copy moves {math.prod(extents)} elements, more than int32 holds")
    axes = []  # [extent, in_stride], outer to inner
    for extent, stride in zip(extents, in_strides):
        if extent == 1:
            continue
        if axes and axes[-1][1] == extent * stride:  # the previous axis steps over this one exactly
            axes[-1] = [axes[-1][0] * extent, stride]
        else:
            axes.append([extent, stride])
    if len(axes) > COPY_DIMS:
        raise ValueError(f"the copy needs {len(axes)} axes after merging contiguous ones, more than {COPY_DIMS}: "
                         f"extents {extents}, input strides {in_strides}")
    out_strides = [math.prod(extent for extent, _ in axes[d + 1:]) for d in range(len(axes))]
    lead = COPY_DIMS - len(axes)
    return dict(shape=(1,) * lead + tuple(extent for extent, _ in axes),
                in_stride=(0,) * lead + tuple(stride for _, stride in axes),
                out_stride=(0,) * lead + tuple(out_strides),
                in_offset=_int_value(in_offset, "in_offset", 0, INT32_MAX))


def slice_plan(in_shape, starts, ends, steps=None) -> dict:
    """x[start_0:end_0:step_0, ...] of a row-major tensor of in_shape, one (start, end, step) per
    axis: 0 <= start < end <= dim, step >= 1 (ONNX Slice's clamping and negative indices are the
    caller's). The copy starts at slice_offset(in_shape, starts)."""
    in_shape = _shape(in_shape)
    rank = len(in_shape)
    starts = _int_tuple(starts, "start", 0, INT32_MAX, rank)
    ends = _int_tuple(ends, "end", 0, INT32_MAX, rank)
    steps = (1,) * rank if steps is None else _int_tuple(steps, "step", 1, INT32_MAX, rank)
    for d, (dim, start, end) in enumerate(zip(in_shape, starts, ends)):
        if not start < end <= dim:
            raise ValueError(f"axis {d}: slice [{start}:{end}] of extent {dim} is empty or out of range")
    extents = [-(-(end - start) // step) for start, end, step in zip(starts, ends, steps)]
    strides = _dense_strides(in_shape)
    return copy_params(extents, [stride * step for stride, step in zip(strides, steps)],
                       slice_offset(in_shape, starts))


def slice_offset(in_shape, starts) -> int:
    """The element of the input where slice_plan's copy starts: sum start_d * in_stride_d."""
    in_shape = _shape(in_shape)
    starts = _int_tuple(starts, "start", 0, INT32_MAX, len(in_shape))
    return sum(start * stride for start, stride in zip(starts, _dense_strides(in_shape)))


def depth_to_space_plan(in_shape_nhwc, block, mode="DCR") -> dict:
    """NHWC [N, H, W, b*b*C] -> [N, H*b, W*b, C]; mode "DCR" or "CRD" (see the module doc)."""
    n, h, w, c = _shape(in_shape_nhwc, 4)
    b = _int_value(block, "block", 1, INT32_MAX)
    if mode not in DEPTH_TO_SPACE_MODES:
        raise ValueError(f"mode must be one of {DEPTH_TO_SPACE_MODES}, got {mode!r}")
    if c % (b * b):
        raise ValueError(f"channels {c} are not a multiple of block^2 = {b * b}")
    c_out = c // (b * b)
    # output axes n, h, i, w, j, c
    i_stride, j_stride, c_stride = (b * c_out, c_out, 1) if mode == "DCR" else (b, 1, b * b)
    return copy_params((n, h, b, w, b, c_out), (h * w * c, w * c, i_stride, c, j_stride, c_stride))


def space_to_depth_plan(in_shape_nhwc, block) -> dict:
    """NHWC [N, H, W, C] -> [N, H/b, W/b, b*b*C], output channel (i*b + j) * C + c."""
    n, h, w, c = _shape(in_shape_nhwc, 4)
    b = _int_value(block, "block", 1, INT32_MAX)
    if h % b or w % b:
        raise ValueError(f"height {h} and width {w} must be multiples of the block {b}")
    # output axes n, h, w, i, j, c
    return copy_params((n, h // b, w // b, b, b, c), (h * w * c, b * w * c, b * c, w * c, c, 1))


def transpose_plan(in_shape, axes) -> dict:
    """np.transpose(x, axes) of a row-major tensor of in_shape."""
    in_shape = _shape(in_shape)
    axes = _int_tuple(axes, "axis", 0, len(in_shape) - 1, len(in_shape))
    if sorted(axes) != list(range(len(in_shape))):
        raise ValueError(f"axes {axes} are not a permutation of {len(in_shape)} axes")
    strides = _dense_strides(in_shape)
    return copy_params([in_shape[a] for a in axes], [strides[a] for a in axes])


# ----------------------------------------------------------------------------------------
# Argument checking


def _int_tuple(values, name, lo, hi, length=None):
    try:
        values = tuple(values)
    except TypeError:
        raise ValueError(f"{name}s must be a sequence of integers, got {values!r}") from None
    if length is not None and len(values) != length:
        raise ValueError(f"need {length} {name}s, got {len(values)}: {values}")
    return tuple(_int_value(v, name, lo, hi) for v in values)


def _shape(shape, rank=None):
    """An input shape: extents >= 1 (the copy has no empty axes) with an int32 element count."""
    shape = _int_tuple(shape, "input extent", 1, INT32_MAX, rank)
    if math.prod(shape) > INT32_MAX:
        raise ValueError(f"input {shape} has more elements than int32 holds")
    return shape


def _dense_strides(shape):
    return [math.prod(shape[d + 1:]) for d in range(len(shape))]
