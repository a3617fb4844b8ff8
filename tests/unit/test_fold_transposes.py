"""fold_transposes: a chain of permute_dims / reshape becomes at most one permute_dims between
reshapes when that removes a transpose, computing the same tensor; anything else is left alone."""

import numpy as np
import pytest
import tvm
from tvm import relax

from compiler.passes.fold_transposes import fold_transposes
from compiler.passes.util import bindings

RNG = np.random.default_rng(5)


def module(shape, moves, dtype="int8", extra_use=None):
    """x -> moves (("t", axes) or ("r", shape)) -> relu; extra_use: also return move number k."""
    x = relax.Var("x", relax.TensorType(shape, dtype))
    bb = relax.BlockBuilder()
    with bb.function("main", [x]):
        with bb.dataflow():
            y, made = x, []
            for kind, arg in moves:
                y = bb.emit(relax.op.permute_dims(y, arg) if kind == "t" else relax.op.reshape(y, arg))
                made.append(y)
            out = relax.op.nn.relu(y)
            if extra_use is not None:
                out = relax.Tuple([out, made[extra_use]])
            out = bb.emit_output(out)
        bb.emit_func_output(out)
    return bb.get()


def ops(mod) -> list[str]:
    return [b.value.op.name for b in bindings(mod["main"]) if isinstance(b.value, relax.Call)]


def run(mod, x):
    vm = relax.VirtualMachine(tvm.compile(mod, target="llvm"), tvm.cpu())
    out = vm["main"](tvm.runtime.tensor(x))
    return [o.numpy() for o in out] if isinstance(out, tvm.ir.Array) else out.numpy()


# ShuffleNet's channel shuffle as to_nhwc leaves it: out of NHWC, the model's own reshape /
# transpose / reshape in NCHW, back to NHWC.
SHUFFLE = [("t", (0, 3, 1, 2)), ("r", (1, 4, 34, 7, 6)), ("t", (0, 2, 1, 3, 4)), ("r", (1, 136, 7, 6)),
           ("t", (0, 2, 3, 1))]


def test_channel_shuffle_becomes_one_transpose():
    before = module((1, 7, 6, 136), SHUFFLE)
    after = fold_transposes(before)
    assert ops(after) == ["relax.reshape", "relax.permute_dims", "relax.reshape", "relax.nn.relu"]
    (transpose,) = [b.value for b in bindings(after["main"]) if b.value.op.name == "relax.permute_dims"]
    assert [int(d) for d in transpose.args[0].ty.shape] == [42, 4, 34]  # [N*H*W, g, C/g]
    assert [int(a) for a in transpose.attrs.axes] == [0, 2, 1]
    x = RNG.integers(-128, 128, (1, 7, 6, 136)).astype(np.int8)
    np.testing.assert_array_equal(run(after, x), run(before, x))


def test_transpose_of_unit_axes_is_a_reshape():
    before = module((1, 1, 1, 256), [("t", (0, 3, 1, 2)), ("r", (1, 256))], dtype="float32")
    after = fold_transposes(before)
    assert ops(after) == ["relax.reshape", "relax.nn.relu"]
    x = RNG.normal(size=(1, 1, 1, 256)).astype(np.float32)
    np.testing.assert_array_equal(run(after, x), run(before, x))


def test_transposes_that_cancel_vanish():
    """The readers take the source itself (a TFLite model's NCHW bracket around each conv)."""
    before = module((2, 3, 4, 5), [("t", (0, 2, 3, 1)), ("t", (0, 3, 1, 2))])
    after = fold_transposes(before)
    assert ops(after) == ["relax.nn.relu"]
    x = RNG.integers(-128, 128, (2, 3, 4, 5)).astype(np.int8)
    np.testing.assert_array_equal(run(after, x), run(before, x))


@pytest.mark.parametrize("moves, extra_use", [
    ([("t", (0, 2, 3, 1))], None),                                 # one real transpose: nothing to gain
    ([("r", (2, 60)), ("r", (120,))], None),                        # reshapes only
    ([("t", (0, 2, 3, 1)), ("t", (0, 2, 1, 3))], 0),                 # the middle tensor is used elsewhere too
], ids=["one_transpose", "reshapes", "shared_intermediate"])
def test_left_alone(moves, extra_use):
    before = module((2, 3, 4, 5), moves, extra_use=extra_use)
    tvm.ir.assert_structural_equal(fold_transposes(before), before)


def test_two_transposes_that_do_not_cancel_become_one():
    before = module((2, 3, 4, 5), [("t", (0, 2, 3, 1)), ("t", (3, 1, 0, 2))])
    after = fold_transposes(before)
    assert ops(after).count("relax.permute_dims") == 1
    x = RNG.integers(-128, 128, (2, 3, 4, 5)).astype(np.int8)
    np.testing.assert_array_equal(run(after, x), run(before, x))
