"""fold_pad: a constant 0.0 pad of H and W feeding a conv2d becomes the conv's own padding; any
other pad, and a pad something else also reads, stays."""

import numpy as np
import pytest
import tvm
from tvm import relax

from compiler.passes.fold_pad import fold_pad
from compiler.passes.util import bindings

RNG = np.random.default_rng(3)


def module(pad_width, value=0.0, layout="NCHW", padding=(1, 1, 1, 1), also_return_pad=False):
    shape = (1, 3, 9, 8) if layout == "NCHW" else (1, 9, 8, 3)
    x = relax.Var("x", relax.TensorType(shape, "float32"))
    weight = RNG.normal(size=(4, 3, 3, 3) if layout == "NCHW" else (4, 3, 3, 3)).astype(np.float32)
    bb = relax.BlockBuilder()
    with bb.function("main", [x]):
        with bb.dataflow():
            padded = bb.emit(relax.op.nn.pad(x, pad_width, "constant", value))
            conv = relax.op.nn.conv2d(padded, relax.const(weight), strides=2, padding=padding, data_layout=layout,
                                      kernel_layout="OIHW" if layout == "NCHW" else "OHWI")
            out = bb.emit(conv)
            out = bb.emit_output(relax.Tuple([out, padded]) if also_return_pad else out)
        bb.emit_func_output(out)
    return bb.get(), shape


def calls(mod):
    return [b.value for b in bindings(mod["main"]) if isinstance(b.value, relax.Call)]


def run(mod, x):
    vm = relax.VirtualMachine(tvm.compile(mod, target="llvm"), tvm.cpu())
    out = vm["main"](tvm.runtime.tensor(x))
    return out[0].numpy() if isinstance(out, tvm.ir.Array) else out.numpy()


@pytest.mark.parametrize("layout, pad_width", [
    ("NCHW", [0, 0, 0, 0, 1, 2, 0, 1]),   # H: 1 before, 2 after; W: 0, 1 (Keras' stride-2 "same")
    ("NHWC", [0, 0, 1, 2, 0, 1, 0, 0]),
])
def test_spatial_zero_pad_folds_into_the_conv(layout, pad_width):
    before, shape = module(pad_width, layout=layout)
    after = fold_pad(before)
    (conv,) = calls(after)
    assert conv.op.name == "relax.nn.conv2d"
    assert [int(p) for p in conv.attrs.padding] == [2, 1, 3, 2]  # (top, left, bottom, right) + the pad's
    x = RNG.normal(size=shape).astype(np.float32)
    np.testing.assert_allclose(run(after, x), run(before, x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("pad_width, value", [
    ([0, 0, 0, 0, 1, 1, 1, 1], 1.0),   # not zero: the conv's padding is
    ([1, 0, 0, 0, 1, 1, 1, 1], 0.0),   # the batch axis padded too
], ids=["nonzero_value", "batch_pad"])
def test_other_pads_stay(pad_width, value):
    before, _ = module(pad_width, value)
    tvm.ir.assert_structural_equal(fold_pad(before), before)


def test_a_pad_read_elsewhere_stays_for_that_reader():
    before, shape = module([0, 0, 0, 0, 1, 1, 1, 1], also_return_pad=True)
    after = fold_pad(before)
    assert [call.op.name for call in calls(after)] == ["relax.nn.pad", "relax.nn.conv2d"]
    conv = calls(after)[1]
    assert [int(p) for p in conv.attrs.padding] == [2, 2, 2, 2] and conv.args[0].name == "x"
    x = RNG.normal(size=shape).astype(np.float32)
    np.testing.assert_allclose(run(after, x), run(before, x), rtol=1e-6, atol=1e-6)
