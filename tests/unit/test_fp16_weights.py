"""fp16_weights alone: conv weight and bias become float16 constants read through astype, scalars stay
float32, and the function equals float32 evaluation with the float16-rounded weights (computed here
with NumPy's float16) to float32 rounding."""

import numpy as np
from tvm import relax

from compiler.passes.fp16_weights import fp16_weights, halved_constants
from compiler.passes.util import is_const
from relax_testing import run_relax

RNG = np.random.default_rng(0)


def module(w, b):
    x = relax.Var("x", relax.TensorType((1, 3, 6, 6), "float32"))
    bb = relax.BlockBuilder()
    with bb.function("main", [x]):
        with bb.dataflow():
            y = bb.emit(relax.op.add(relax.op.nn.conv2d(x, relax.const(w), padding=1), relax.const(b)))
            out = bb.emit_output(bb.emit(relax.op.add(y, relax.const(np.float32(0.25)))))
        bb.emit_func_output(out)
    return bb.get()


def constant_dtypes(mod):
    found = []
    for block in mod["main"].body.blocks:
        for binding in block.bindings:
            for arg in getattr(binding.value, "args", []):
                found += [str(arg.value.numpy().dtype)] if is_const(arg) else []
                inner = getattr(arg, "args", [])
                found += [str(a.value.numpy().dtype) for a in inner if is_const(a)]
    return sorted(found)


def test_weights_are_float16_and_the_function_is_the_rounded_one():
    w = RNG.normal(0, 0.3, (4, 3, 3, 3)).astype(np.float32)
    b = RNG.normal(0, 0.3, (1, 4, 1, 1)).astype(np.float32)
    before = module(w, b)
    after = fp16_weights(before)
    assert halved_constants(before) == 2 and constant_dtypes(after) == ["float16", "float16", "float32"]
    x = RNG.uniform(-1, 1, (1, 3, 6, 6)).astype(np.float32)
    rounded = module(w.astype(np.float16).astype(np.float32), b.astype(np.float16).astype(np.float32))
    np.testing.assert_allclose(run_relax(after, x), run_relax(rounded, x), rtol=1e-6, atol=1e-7)
    assert np.abs(run_relax(after, x) - run_relax(before, x)).max() > 0  # float16 rounding is really applied


def test_values_beyond_float16_stay_float32():
    w = RNG.normal(0, 0.3, (4, 3, 3, 3)).astype(np.float32)
    w[0, 0, 0, 0] = 1e6  # no float16 holds it
    assert halved_constants(module(w, np.zeros((1, 4, 1, 1), np.float32))) == 1
