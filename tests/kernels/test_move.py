"""INT8 data movement as one strided copy: the plans against NumPy and onnx.reference, the NumPy spec
against the portable C kernel, bit for bit.

compiler.quant.reference.move (copy_s8 and the Slice / DepthToSpace / SpaceToDepth / Transpose
plans) against NumPy's own slicing and np.transpose, the reshape-transpose formulas of
DepthToSpace / SpaceToDepth and ONNX's reference operators (NCHW, converted to NHWC), and
copy_s8 against compiler.quant._ref_move.copy_s8 (kernels/ref/move_s8.c npu_copy_s8) on seeded
random plans of every kind and raw params (any rank up to 6, steps, broadcast reads, offsets).
"""

import math

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

import compiler.quant._ref_move as C
from compiler.quant.reference import move as M
from int8_random import exact, int8_tensor

CASES = 500  # random cases per property test
NCHW_TO_NHWC, NHWC_TO_NCHW = (0, 2, 3, 1), (0, 3, 1, 2)


def both(x, params, out_shape):
    """copy_s8 of the NumPy spec and of the C kernel, which must agree bit for bit."""
    want = M.copy_s8(x, params, out_shape)
    exact(C.copy_s8(x, params, out_shape), want, f"{x.shape}: {params}")
    return want


def onnx_op(op, x, **attrs):
    """One ONNX operator on an int8 NCHW tensor, run by onnx.reference."""
    node = helper.make_node(op, ["x"], ["y"], **attrs)
    graph = helper.make_graph([node], op, [helper.make_tensor_value_info("x", TensorProto.INT8, x.shape)],
                              [helper.make_tensor_value_info("y", TensorProto.INT8, [None] * x.ndim)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    return ReferenceEvaluator(model).run(None, {"x": x})[0]


def random_shape(rng, max_rank=6, max_extent=6):
    return tuple(int(v) for v in rng.integers(1, max_extent + 1, size=int(rng.integers(1, max_rank + 1))))


def random_slice(rng, shape):
    """(starts, ends, steps): in-range, non-empty, steps 1 to 3 (mostly 1)."""
    starts, ends, steps = [], [], []
    for dim in shape:
        start = int(rng.integers(0, dim)) if rng.random() < 0.5 else 0
        end = int(rng.integers(start + 1, dim + 1)) if rng.random() < 0.5 else dim
        starts.append(start)
        ends.append(end)
        steps.append(int(rng.choice([1, 1, 1, 2, 3])))
    return starts, ends, steps


def nhwc_block_shape(rng, block, channels_per_block=True):
    n, h, w = int(rng.integers(1, 3)), int(rng.integers(1, 5)), int(rng.integers(1, 5))
    c = int(rng.integers(1, 6))
    return (n, h, w, c * block * block) if channels_per_block else (n, h * block, w * block, c)


# ----------------------------------------------------------------------------------------
# Plans against NumPy and onnx.reference


def test_slice_plan_is_numpy_slicing():
    rng = np.random.default_rng(1)
    for _ in range(CASES):
        shape = random_shape(rng)
        x = int8_tensor(rng, shape)
        starts, ends, steps = random_slice(rng, shape)
        want = x[tuple(slice(s, e, st) for s, e, st in zip(starts, ends, steps))]
        got = both(x, M.slice_plan(shape, starts, ends, steps), want.shape)
        exact(got, want, f"{shape}[{starts}:{ends}:{steps}]")


def test_split_is_one_slice_per_part():
    rng = np.random.default_rng(2)
    x = int8_tensor(rng, (2, 5, 7, 24))
    for axis in range(4):
        edges = sorted({0, x.shape[axis], *(int(v) for v in rng.integers(1, x.shape[axis], 2))})
        parts = []
        for begin, end in zip(edges[:-1], edges[1:]):
            starts, ends = [0] * 4, list(x.shape)
            starts[axis], ends[axis] = begin, end
            out_shape = tuple(end - begin if d == axis else x.shape[d] for d in range(4))
            parts.append(both(x, M.slice_plan(x.shape, starts, ends), out_shape))
        exact(np.concatenate(parts, axis=axis), x, f"split along {axis} at {edges}")


@pytest.mark.parametrize("mode", M.DEPTH_TO_SPACE_MODES)
def test_depth_to_space_plan_is_the_formula(mode):
    rng = np.random.default_rng(3 if mode == "DCR" else 4)
    for _ in range(CASES // 3):
        b = int(rng.integers(1, 4))
        n, h, w, c = nhwc_block_shape(rng, b)
        co = c // (b * b)
        x = int8_tensor(rng, (n, h, w, c))
        if mode == "DCR":
            want = x.reshape(n, h, w, b, b, co).transpose(0, 1, 3, 2, 4, 5).reshape(n, h * b, w * b, co)
        else:
            want = x.reshape(n, h, w, co, b, b).transpose(0, 1, 4, 2, 5, 3).reshape(n, h * b, w * b, co)
        exact(both(x, M.depth_to_space_plan(x.shape, b, mode), want.shape), want, f"{x.shape} block {b} {mode}")


@pytest.mark.parametrize("mode", M.DEPTH_TO_SPACE_MODES)
def test_depth_to_space_element_by_element(mode):
    """The module's index formulas, element by element, on one small tensor."""
    b, co = 2, 3
    x = np.arange(2 * 2 * 3 * b * b * co).astype(np.int8).reshape(2, 2, 3, b * b * co)
    got = M.copy_s8(x, M.depth_to_space_plan(x.shape, b, mode), (2, 2 * b, 3 * b, co))
    for n, h, w, i, j, c in np.ndindex(2, 2, 3, b, b, co):
        channel = (i * b + j) * co + c if mode == "DCR" else c * b * b + i * b + j
        assert got[n, h * b + i, w * b + j, c] == x[n, h, w, channel]


@pytest.mark.parametrize("mode", M.DEPTH_TO_SPACE_MODES)
def test_depth_to_space_plan_is_onnx(mode):
    rng = np.random.default_rng(5 if mode == "DCR" else 6)
    for _ in range(20):
        b = int(rng.integers(1, 4))
        x = int8_tensor(rng, nhwc_block_shape(rng, b))
        want = onnx_op("DepthToSpace", x.transpose(NHWC_TO_NCHW), blocksize=b, mode=mode).transpose(NCHW_TO_NHWC)
        exact(both(x, M.depth_to_space_plan(x.shape, b, mode), want.shape), want, f"{x.shape} block {b} {mode}")


def test_space_to_depth_plan_is_the_formula_and_onnx():
    rng = np.random.default_rng(7)
    for number in range(CASES // 3):
        b = int(rng.integers(1, 4))
        n, h, w, c = nhwc_block_shape(rng, b, channels_per_block=False)
        x = int8_tensor(rng, (n, h, w, c))
        want = x.reshape(n, h // b, b, w // b, b, c).transpose(0, 1, 3, 2, 4, 5).reshape(n, h // b, w // b, b * b * c)
        got = both(x, M.space_to_depth_plan(x.shape, b), want.shape)
        exact(got, want, f"{x.shape} block {b}")
        if number < 20:
            on_onnx = onnx_op("SpaceToDepth", x.transpose(NHWC_TO_NCHW), blocksize=b).transpose(NCHW_TO_NHWC)
            exact(got, on_onnx, f"{x.shape} block {b} (onnx)")
        # SpaceToDepth undoes DepthToSpace DCR (TFLite's pair)
        exact(M.copy_s8(got, M.depth_to_space_plan(got.shape, b, "DCR"), x.shape), x, f"{x.shape} round trip")


def test_transpose_plan_is_numpy():
    rng = np.random.default_rng(8)
    for _ in range(CASES):
        shape = random_shape(rng)
        axes = tuple(int(a) for a in rng.permutation(len(shape)))
        x = int8_tensor(rng, shape)
        want = np.transpose(x, axes)
        exact(both(x, M.transpose_plan(shape, axes), want.shape), want, f"{shape} by {axes}")


def test_plans_of_composed_views():
    """A slice of a transpose, copied by the plan of the composition (raw params from NumPy's own
    strides), and many-axis plans that merge down to six."""
    rng = np.random.default_rng(9)
    for _ in range(CASES):
        shape = random_shape(rng)
        x = int8_tensor(rng, shape)
        view = np.transpose(x, tuple(rng.permutation(len(shape))))
        starts, ends, steps = random_slice(rng, view.shape)
        view = view[tuple(slice(s, e, st) for s, e, st in zip(starts, ends, steps))]
        offset = (view.__array_interface__["data"][0] - x.__array_interface__["data"][0])
        params = M.copy_params(view.shape, view.strides, offset)  # int8: byte strides are element strides
        exact(both(x, params, view.shape), view, f"{shape} view {view.shape} {view.strides}")
    for rank in (7, 8, 9):
        shape = tuple(int(v) for v in rng.integers(2, 4, rank))
        x = int8_tensor(rng, shape)
        axes = (1, 0, *range(2, rank))  # two axes swapped, the rest contiguous: three axes after merging
        exact(both(x, M.transpose_plan(shape, axes), np.transpose(x, axes).shape), np.transpose(x, axes), f"{shape}")


# ----------------------------------------------------------------------------------------
# Merging: the innermost run as long as the layout allows


@pytest.mark.parametrize("plan, want", [
    # channels 32..63 of 28x28x96: one run of 32 per pixel
    (M.slice_plan((1, 28, 28, 96), (0, 0, 0, 32), (1, 28, 28, 64)),
     dict(shape=(1, 1, 1, 1, 784, 32), in_stride=(0, 0, 0, 0, 96, 1), out_stride=(0, 0, 0, 0, 32, 1),
          in_offset=32)),
    # rows and columns 7..20: one run of 14 * 96 per row
    (M.slice_plan((1, 28, 28, 96), (0, 7, 7, 0), (1, 21, 21, 96)),
     dict(shape=(1, 1, 1, 1, 14, 1344), in_stride=(0, 0, 0, 0, 2688, 1), out_stride=(0, 0, 0, 0, 1344, 1),
          in_offset=7 * 28 * 96 + 7 * 96)),
    # every other row, whole: the rows' runs of W * C
    (M.slice_plan((2, 6, 5, 3), (0, 0, 0, 0), (2, 6, 5, 3), (1, 2, 1, 1)),
     dict(shape=(1, 1, 1, 1, 6, 15), in_stride=(0, 0, 0, 0, 30, 1), out_stride=(0, 0, 0, 0, 15, 1))),
    # the whole tensor: one run
    (M.slice_plan((2, 3, 4), (0, 0, 0), (2, 3, 4)),
     dict(shape=(1, 1, 1, 1, 1, 24), in_stride=(0, 0, 0, 0, 0, 1), out_stride=(0, 0, 0, 0, 0, 1))),
    (M.transpose_plan((1, 8, 8, 16), (0, 3, 1, 2)),  # NHWC -> NCHW: H and W merge
     dict(shape=(1, 1, 1, 1, 16, 64), in_stride=(0, 0, 0, 0, 1, 16), out_stride=(0, 0, 0, 0, 64, 1))),
    (M.transpose_plan((3, 4, 5), (0, 1, 2)),  # the identity: one run
     dict(shape=(1, 1, 1, 1, 1, 60), in_stride=(0, 0, 0, 0, 0, 1), out_stride=(0, 0, 0, 0, 0, 1))),
    (M.depth_to_space_plan((1, 14, 14, 64), 2, "DCR"),  # j and c merge: runs of 2 * 16
     dict(shape=(1, 1, 14, 2, 14, 32), in_stride=(0, 0, 896, 32, 64, 1), out_stride=(0, 0, 896, 448, 32, 1))),
    (M.depth_to_space_plan((1, 14, 14, 64), 2, "CRD"),  # nothing merges
     dict(shape=(1, 14, 2, 14, 2, 16), in_stride=(0, 896, 2, 64, 1, 4), out_stride=(0, 896, 448, 32, 16, 1))),
    (M.space_to_depth_plan((1, 28, 28, 16), 2),  # j and c merge: runs of 2 * 16
     dict(shape=(1, 1, 14, 14, 2, 32), in_stride=(0, 0, 896, 32, 448, 1), out_stride=(0, 0, 896, 64, 32, 1))),
    (M.depth_to_space_plan((1, 3, 3, 8), 1, "CRD"),  # block 1: a copy
     dict(shape=(1, 1, 1, 1, 1, 72), in_stride=(0, 0, 0, 0, 0, 1), out_stride=(0, 0, 0, 0, 0, 1))),
    (M.transpose_plan((1, 1, 1), (2, 0, 1)),  # one element
     dict(shape=(1,) * 6, in_stride=(0,) * 6, out_stride=(0,) * 6)),
])
def test_plans_merge_contiguous_axes(plan, want):
    assert plan == {"in_offset": 0} | want  # a copy of the whole input starts at its element 0


def test_plan_values_are_python_ints():
    plan = M.slice_plan(np.array([4, 5]), np.array([1, 0]), np.array([3, 5]), np.array([1, 2]))
    assert all(type(v) is int for key in ("shape", "in_stride", "out_stride") for v in plan[key])


# ----------------------------------------------------------------------------------------
# NumPy vs C on raw params


def raw_copy(rng):
    """(input, params, out_shape): six random extents (mostly 1 to 4), the output dense in
    a random axis order (a transpose), inputs read at random strides (0 included: broadcasts)
    from a random offset."""
    shape = [99] * 6
    while math.prod(shape) > 4096:
        shape = [int(rng.choice([1, 1, 2, 3, 4, int(rng.integers(1, 20))])) for _ in range(6)]
    order = rng.permutation(6)  # the output's axis order, outer first
    out_stride = [0] * 6
    step = 1
    for axis in order[::-1]:
        out_stride[axis] = step if shape[axis] > 1 or rng.random() < 0.5 else int(rng.integers(0, 50))
        step *= shape[axis]
    in_stride = [int(rng.choice([0, 1, 2, 7, int(rng.integers(0, 40))])) for _ in range(6)]
    offset = int(rng.integers(0, 10))
    size = offset + sum((e - 1) * s for e, s in zip(shape, in_stride)) + 1 + int(rng.integers(0, 5))
    out_shape = (math.prod(shape),) if rng.random() < 0.5 else tuple(shape)
    params = dict(shape=tuple(shape), in_stride=tuple(in_stride), out_stride=tuple(out_stride), in_offset=offset)
    return int8_tensor(rng, (size,)), params, out_shape


def test_copy_matches_c_on_raw_params():
    rng = np.random.default_rng(10)
    for _ in range(CASES * 3):
        x, params, out_shape = raw_copy(rng)
        both(x, params, out_shape)


def test_copy_reads_any_input_shape_as_its_flat_buffer():
    x = np.arange(24, dtype=np.int8).reshape(2, 3, 4)
    params = dict(shape=(1, 1, 1, 1, 3, 2), in_stride=(0, 0, 0, 0, 5, 2), out_stride=(0, 0, 0, 0, 2, 1), in_offset=1)
    exact(both(x, params, (3, 2)), np.array([[1, 3], [6, 8], [11, 13]], np.int8), "flat reads")
    exact(both(np.asfortranarray(x), params, (3, 2)), np.array([[1, 3], [6, 8], [11, 13]], np.int8),
          "row-major reads of a Fortran-ordered array")


# ----------------------------------------------------------------------------------------
# Bad arguments: ValueError from the spec and from the binding alike

GOOD = dict(shape=(1, 1, 1, 1, 2, 3), in_stride=(0, 0, 0, 0, 3, 1), out_stride=(0, 0, 0, 0, 3, 1), in_offset=0)


@pytest.mark.parametrize("x, params, out_shape, message", [
    (np.zeros(6, np.int8), dict(GOOD, in_stride=(0, 0, 0, 0, 4, 1)), (6,), "reads input element 6"),
    (np.zeros(6, np.int8), dict(GOOD, in_offset=1), (6,), "reads input element 6"),
    (np.zeros(6, np.int8), dict(GOOD, in_offset=6), (6,), "reads input element 11"),
    (np.zeros(6, np.int8), dict(GOOD, in_offset=-1), (6,), "offset=-1"),
    (np.zeros(6, np.int8), dict(GOOD, shape=(1, 1, 1, 0, 2, 3)), (0,), "shape=0 is outside"),
    (np.zeros(6, np.int8), dict(GOOD, in_stride=(0, 0, 0, 0, -3, 1)), (6,), "in_stride=-3 is outside"),
    (np.zeros(6, np.int8), dict(GOOD, out_stride=(0, 0, 0, 0, 4, 1)), (6,), "writes output element 6"),
    (np.zeros(6, np.int8), dict(GOOD, out_stride=(0, 0, 0, 0, 1, 1)), (6,), "writes overlap"),
    (np.zeros(6, np.int8), dict(GOOD, out_stride=(0, 0, 0, 0, 0, 1)), (6,), "writes overlap"),
    (np.zeros(6, np.int8), dict(GOOD, shape=(1, 1, 1, 1, 2, 3, 1)), (6,), "need 6 shapes"),
    (np.zeros(6, np.int8), dict(GOOD, extra=1), (6,), "params must be a dict"),
    (np.zeros(6, np.int8), GOOD, (7,), r"the output \(7,\) has 7"),
    (np.zeros(6, np.int8), dict(GOOD, shape=(1, 1, 1, 1, 2, 3.0)), (6,), "shape must be an integer"),
    (np.zeros(6, np.uint8), GOOD, (6,), "int8 array"),
    (np.zeros(6, np.int8), dict(GOOD, shape=(1, 1, 1, 2**16, 2**15, 1), in_stride=(0,) * 6, out_stride=(0, 0, 0, 2**15, 1, 0)),
     (2**30, 2), "more than int32"),
])
@pytest.mark.parametrize("copy", [M.copy_s8, C.copy_s8], ids=["numpy", "c"])
def test_bad_copy_is_a_value_error(copy, x, params, out_shape, message):
    with pytest.raises(ValueError, match=message):
        copy(x, params, out_shape)


@pytest.mark.parametrize("make, message", [
    (lambda: M.slice_plan((4, 5), (0, 5), (4, 5)), r"axis 1: slice \[5:5\] of extent 5"),
    (lambda: M.slice_plan((4, 5), (0, 2), (4, 6)), r"axis 1: slice \[2:6\] of extent 5"),
    (lambda: M.slice_plan((4, 5), (0, 0), (4, 5), (1, 0)), "step=0 is outside"),
    (lambda: M.slice_plan((4, 5), (0, -1), (4, 5)), "start=-1 is outside"),
    (lambda: M.slice_plan((4, 5), (0,), (4, 5)), "need 2 starts"),
    (lambda: M.slice_plan((4, 0), (0, 0), (4, 0)), "input extent=0"),
    (lambda: M.slice_plan((3,) * 8, (0,) * 8, (3,) * 8, (2,) * 8), "needs 8 axes after merging"),
    (lambda: M.depth_to_space_plan((1, 2, 2, 6), 2), "channels 6 are not a multiple of block"),
    (lambda: M.depth_to_space_plan((1, 2, 2, 8), 2, "XYZ"), "mode must be one of"),
    (lambda: M.depth_to_space_plan((1, 2, 8), 2), "need 4 input extents"),
    (lambda: M.depth_to_space_plan((1, 2, 2, 8), 0), "block=0 is outside"),
    (lambda: M.space_to_depth_plan((1, 3, 4, 8), 2), "multiples of the block 2"),
    (lambda: M.transpose_plan((2, 3), (0, 0)), "not a permutation"),
    (lambda: M.transpose_plan((2, 3), (0, 2)), "axis=2 is outside"),
    (lambda: M.transpose_plan((2,) * 7, (6, 5, 4, 3, 2, 1, 0)), "needs 7 axes after merging"),
    (lambda: M.transpose_plan((2**16, 2**16), (1, 0)), "more elements than int32"),
])
def test_bad_plan_is_a_value_error(make, message):
    with pytest.raises(ValueError, match=message):
        make()
