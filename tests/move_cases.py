"""The data-movement kernel specs (copy: Slice, Split, DepthToSpace, SpaceToDepth, Transpose; pad)
shared by the coral-npu (tests/coral/test_kernels_move.py), x86 (tests/kernels/test_x86_kernels.py)
and NEON (tests/coral/test_arm64_target.py) kernel tests. The expected outputs are kernels/ref's
(compiler.quant._ref_move, _ref_elementwise: compiled for the host).
"""

import math

import numpy as np

from compiler.quant import _ref_elementwise as ref_ew
from compiler.quant import _ref_move as ref_move
from compiler.quant.reference import move as M


def _int8(rng, shape):
    return rng.integers(-128, 128, shape, dtype=np.int8)


class Spec:
    """One kernel spec with its input and the reference output."""

    def __init__(self, label, kernel, params, inputs, want):
        self.label, self.kernel, self.params, self.inputs, self.want = label, kernel, params, inputs, want


def _copy_spec(label, x, params, out_shape):
    want = ref_move.copy_s8(x, params, out_shape)
    return Spec(label, "copy", params, [np.ascontiguousarray(x).reshape(-1)], want)


def _nhwc(rng, max_hw=9):
    return (int(rng.integers(1, 3)), int(rng.integers(1, max_hw + 1)), int(rng.integers(1, max_hw + 1)),
            int(rng.choice([1, 3, 8, 16, 32, 33, 70, rng.integers(1, 40)])))


def _slice(rng, shape):
    starts = [int(rng.integers(0, d)) if rng.random() < 0.6 else 0 for d in shape]
    ends = [int(rng.integers(s + 1, d + 1)) if rng.random() < 0.6 else d for s, d in zip(starts, shape)]
    steps = [int(rng.choice([1, 1, 1, 2, 3])) for _ in shape]
    return starts, ends, steps


def _raw(rng):
    """Dense output in a random axis order, random input strides (0 included), a random offset;
    one axis may be long (more than a vector at any LMUL)."""
    shape = [int(rng.choice([1, 1, 2, 3, 5, rng.integers(1, 40)])) for _ in range(6)]
    shape[int(rng.integers(6))] = int(rng.choice([1, 17, 129, 300, rng.integers(1, 200)]))
    while math.prod(shape) > 20_000:
        shape[int(np.argmax(shape))] //= 2
    out_stride, step = [0] * 6, 1
    for axis in rng.permutation(6)[::-1]:
        out_stride[axis] = step
        step *= shape[axis]
    in_stride = [int(rng.choice([0, 1, 1, 2, 5, rng.integers(0, 60)])) for _ in range(6)]
    offset = int(rng.integers(0, 5))
    size = offset + sum((e - 1) * s for e, s in zip(shape, in_stride)) + 1
    params = dict(shape=tuple(shape), in_stride=tuple(in_stride), out_stride=tuple(out_stride), in_offset=offset)
    return _int8(rng, (size,)), params, (math.prod(shape),)


def _copy_specs(rng, count):
    kinds = ("slice", "depth_to_space DCR", "depth_to_space CRD", "space_to_depth", "transpose", "view", "raw")
    for i in range(count):
        kind = kinds[i % len(kinds)]
        if kind == "slice":
            shape = _nhwc(rng, 12)
            starts, ends, steps = _slice(rng, shape)
            want_shape = tuple(-(-(e - s) // st) for s, e, st in zip(starts, ends, steps))
            spec = _copy_spec(f"copy{i}-slice-{'x'.join(map(str, shape))}-{starts}-{ends}-{steps}", _int8(rng, shape),
                              M.slice_plan(shape, starts, ends, steps), want_shape)
        elif kind.startswith("depth_to_space"):
            b, mode = int(rng.integers(2, 4)), kind.split()[1]
            n, h, w, c = _nhwc(rng, 6)
            shape = (n, h, w, c * b * b)
            spec = _copy_spec(f"copy{i}-d2s-{mode}-b{b}-{'x'.join(map(str, shape))}", _int8(rng, shape),
                              M.depth_to_space_plan(shape, b, mode), (n, h * b, w * b, c))
        elif kind == "space_to_depth":
            b = int(rng.integers(2, 4))
            n, h, w, c = _nhwc(rng, 5)
            shape = (n, h * b, w * b, c)
            spec = _copy_spec(f"copy{i}-s2d-b{b}-{'x'.join(map(str, shape))}", _int8(rng, shape),
                              M.space_to_depth_plan(shape, b), (n, h, w, b * b * c))
        elif kind == "transpose":
            rank = int(rng.integers(2, 7))
            shape = tuple(int(v) for v in rng.integers(1, 9, rank))
            if rank == 4 and i % 2:
                shape = _nhwc(rng, 16)
            axes = tuple(int(a) for a in rng.permutation(rank))
            spec = _copy_spec(f"copy{i}-transpose-{'x'.join(map(str, shape))}-{axes}", _int8(rng, shape),
                              M.transpose_plan(shape, axes), tuple(shape[a] for a in axes))
        elif kind == "view":  # a slice of a transpose, from NumPy's own strides
            shape = _nhwc(rng, 10)
            x = _int8(rng, shape)
            view = np.transpose(x, tuple(int(a) for a in rng.permutation(4)))
            starts, ends, steps = _slice(rng, view.shape)
            view = view[tuple(slice(s, e, st) for s, e, st in zip(starts, ends, steps))]
            offset = view.__array_interface__["data"][0] - x.__array_interface__["data"][0]
            spec = _copy_spec(f"copy{i}-view-{'x'.join(map(str, view.shape))}-{view.strides}", x,
                              M.copy_params(view.shape, view.strides, offset), view.shape)
        else:
            x, params, out_shape = _raw(rng)
            spec = _copy_spec(f"copy{i}-raw-{params['shape']}-{params['in_stride']}-{params['in_offset']}", x, params,
                              out_shape)
        yield spec


def _pad_spec(label, x, padding, value):
    params = dict(in_dims=x.shape, pad_before=tuple(p for p, _ in padding), pad_after=tuple(p for _, p in padding),
                  pad_value=value)
    return Spec(label, "pad", params, [x], ref_ew.pad_s8(x, padding=padding, pad_value=value))


def _pad_specs(rng, count):
    """Random pads of every axis (mostly 0 to 2, sometimes past a vector); the first few fixed:
    an empty input, no padding, channel pads of short rows, a spatial border."""
    fixed = [((1, 0, 3, 4), ((0, 0), (1, 1), (2, 0), (0, 1))),  # empty input: all padding
             ((2, 3, 4, 5), ((0, 0),) * 4),                       # a plain copy
             ((1, 9, 7, 3), ((0, 0), (0, 0), (0, 0), (0, 1))),    # 3 -> 4 channels
             ((1, 5, 6, 2), ((0, 0), (0, 0), (0, 0), (3, 5))),
             ((1, 12, 12, 16), ((0, 0), (1, 1), (1, 1), (0, 0))),  # 1-pixel border
             ((2, 3, 3, 8), ((1, 2), (0, 0), (0, 0), (0, 0)))]    # batch padding
    for i in range(count):
        if i < len(fixed):
            shape, padding = fixed[i]
        else:
            shape, padding = (9,) * 4, ((99, 99),) * 4
            while math.prod(d + a + b for d, (a, b) in zip(shape, padding)) > 40_000:
                shape = (int(rng.integers(1, 3)), int(rng.integers(1, 9)), int(rng.integers(1, 9)),
                         int(rng.choice([1, 2, 3, 16, 33, 130, rng.integers(1, 40)])))
                padding = tuple((int(rng.choice([0, 0, 1, 2, rng.integers(0, 140)])) if rng.random() < 0.7 else 0,
                                 int(rng.choice([0, 0, 1, 2, rng.integers(0, 140)])) if rng.random() < 0.7 else 0)
                                for _ in range(4))
                padding = ((min(padding[0][0], 1), min(padding[0][1], 1)), *padding[1:])  # few padded batches
        value = int(rng.choice([-128, 127, 0, rng.integers(-128, 128)]))
        label = f"pad{i}-{'x'.join(map(str, shape))}-{'-'.join(f'{a}+{b}' for a, b in padding)}"
        yield _pad_spec(label, _int8(rng, shape), padding, value)


def benchmark_specs():
    rng = np.random.default_rng(11)
    x = _int8(rng, (1, 28, 28, 96))
    yield _copy_spec("copy: channel slice 28x28x96 -> channels 32..63", x,
                     M.slice_plan(x.shape, (0, 0, 0, 32), (1, 28, 28, 64)), (1, 28, 28, 32))
    yield _copy_spec("copy: spatial slice 28x28x96 -> rows, columns 7..20", x,
                     M.slice_plan(x.shape, (0, 7, 7, 0), (1, 21, 21, 96)), (1, 14, 14, 96))
    y = _int8(rng, (1, 14, 14, 64))
    for mode in M.DEPTH_TO_SPACE_MODES:
        yield _copy_spec(f"copy: DepthToSpace {mode} block 2, 14x14x64", y, M.depth_to_space_plan(y.shape, 2, mode),
                         (1, 28, 28, 16))
    z = _int8(rng, (1, 28, 28, 16))
    yield _copy_spec("copy: SpaceToDepth block 2, 28x28x16", z, M.space_to_depth_plan(z.shape, 2), (1, 14, 14, 64))
    t = _int8(rng, (1, 8, 8, 16))
    yield _copy_spec("copy: transpose NHWC -> NCHW 8x8x16", t, M.transpose_plan(t.shape, (0, 3, 1, 2)), (1, 16, 8, 8))
    yield _pad_spec("pad: 1-pixel border 28x28x32", _int8(rng, (1, 28, 28, 32)), ((0, 0), (1, 1), (1, 1), (0, 0)), -5)
    yield _pad_spec("pad: 3 -> 4 channels 32x32x3", _int8(rng, (1, 32, 32, 3)), ((0, 0), (0, 0), (0, 0), (0, 1)), 7)
    yield _pad_spec("pad: bottom / right by 1, 15x15x16 (ZeroPadding2D)", _int8(rng, (1, 15, 15, 16)),
                    ((0, 0), (0, 1), (0, 1), (0, 0)), -128)


def specs():
    return [*_copy_specs(np.random.default_rng(23), 112), *_pad_specs(np.random.default_rng(29), 60)]
