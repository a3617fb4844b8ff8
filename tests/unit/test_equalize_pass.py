"""equalize (cross-layer equalisation) alone: the float function is unchanged, the channel ranges of
each rescaled pair become sqrt(r1 r2) (computed here from the weights before the pass, independently
of its code), non-homogeneous paths and shared values are left alone, the input module is untouched,
spans survive.

Modules are conv2d(x, W1) [+ bias] [-> relu | clip] -> conv2d(., W2), built with the BlockBuilder.
"""

import numpy as np
import pytest
from tvm import relax

from compiler.frontend.provenance import node_span, with_span
from compiler.passes.equalize import equalize, equalized_pairs
from compiler.passes.util import is_const
from relax_testing import assert_ir_close, run_relax

C_IN, C_MID, C_OUT, SIZE = 3, 6, 5, 6
OUTLIER, FACTOR = 2, 100.0


def const(array):
    return relax.const(np.asarray(array, dtype="float32"))


def weights(seed=0, depthwise=False):
    """W1 [C_MID, C_IN, 3, 3] with channel OUTLIER FACTOR times larger, its bias, and W2 reading C_MID channels."""
    rng = np.random.default_rng(seed)
    w1 = rng.uniform(-0.5, 0.5, (C_MID, C_IN, 3, 3)).astype("float32")
    bias = rng.uniform(-0.2, 0.2, (1, C_MID, 1, 1)).astype("float32")
    w1[OUTLIER] *= FACTOR
    bias[0, OUTLIER] *= FACTOR
    w2 = rng.uniform(-0.5, 0.5, (C_MID, 1, 3, 3) if depthwise else (C_OUT, C_MID, 3, 3)).astype("float32")
    if depthwise:
        w2[OUTLIER] /= FACTOR
    else:
        w2[:, OUTLIER] /= FACTOR
    return w1, bias, w2


def module(w1, bias, w2, between="relu", shared=False, depthwise=False):
    x = relax.Var("x", relax.TensorType((1, C_IN, SIZE, SIZE), "float32"))
    bb = relax.BlockBuilder()
    with bb.function("main", [x]):
        with bb.dataflow():
            y = bb.emit(with_span(relax.op.nn.conv2d(x, const(w1), padding=1), node_span("conv1")))
            if bias is not None:
                y = bb.emit(relax.op.add(y, const(bias)))
            first = y
            if between == "relu":
                y = bb.emit(relax.op.nn.relu(y))
            elif between == "relu6":
                y = bb.emit(relax.op.clip(y, 0.0, 6.0))
            groups = C_MID if depthwise else 1
            out = bb.emit(with_span(relax.op.nn.conv2d(y, const(w2), padding=1, groups=groups), node_span("conv2")))
            if shared:
                out = bb.emit(relax.op.add(relax.op.sum(first), relax.op.sum(out)))
            out = bb.emit_output(out)
        bb.emit_func_output(out)
    return bb.get()


def sample(seed=1):
    return np.random.default_rng(seed).uniform(-1, 1, (1, C_IN, SIZE, SIZE)).astype("float32")


def constants(mod):
    """The float32 constants of main, in binding order (W1, [bias], W2)."""
    found = []
    for block in mod["main"].body.blocks:
        for binding in block.bindings:
            found += [arg.value.numpy() for arg in getattr(binding.value, "args", []) if is_const(arg)]
    return found


@pytest.mark.parametrize("depthwise", [False, True], ids=["conv", "depthwise"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
def test_ranges_meet_at_their_geometric_mean_and_the_function_is_unchanged(depthwise, bias):
    w1, b, w2 = weights(depthwise=depthwise)
    before = module(w1, b if bias else None, w2, depthwise=depthwise)
    after = equalize(before)
    new = constants(after)
    new_w1, new_w2 = new[0], new[-1]
    r1 = np.abs(w1.astype(np.float64)).max(axis=(1, 2, 3))
    r2 = np.abs(w2.astype(np.float64)).max(axis=(1, 2, 3) if depthwise else (0, 2, 3))
    expected = np.sqrt(r1 * r2)
    np.testing.assert_allclose(np.abs(new_w1).max(axis=(1, 2, 3)), expected, rtol=1e-5)
    np.testing.assert_allclose(np.abs(new_w2).max(axis=(1, 2, 3) if depthwise else (0, 2, 3)), expected, rtol=1e-5)
    if bias:  # the bias follows its channel: bias / s with s = r1 / sqrt(r1 r2)
        np.testing.assert_allclose(new[1].ravel(), b.ravel() * expected / r1, rtol=1e-5)
    x = sample()
    want = run_relax(before, x)
    np.testing.assert_allclose(run_relax(after, x), want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    assert equalized_pairs(before) == [("conv1", "conv2")]


def test_input_module_is_untouched_and_spans_survive():
    w1, b, w2 = weights()
    before = module(w1, b, w2)
    copy = module(w1, b, w2)
    after = equalize(before)
    assert_ir_close(before, copy, rtol=0, atol=0)
    spans = [binding.value.span.source_name.name for block in after["main"].body.blocks for binding in block.bindings
             if isinstance(binding.value, relax.Call) and binding.value.op.name == "relax.nn.conv2d"]
    assert spans == ["conv1", "conv2"]


@pytest.mark.parametrize("case", ["relu6", "shared"])
def test_paths_that_are_not_homogeneous_or_shared_are_left_alone(case):
    """clip(x / s, 0, 6) is not clip(x, 0, 6) / s; a value read twice would change for its other reader."""
    w1, b, w2 = weights()
    before = module(w1, b, w2, between="relu6" if case == "relu6" else "relu", shared=case == "shared")
    assert equalized_pairs(before) == []
    assert_ir_close(equalize(before), before, rtol=0, atol=0)


def test_identity_path_is_equalised():
    w1, b, w2 = weights()
    before = module(w1, b, w2, between=None)
    x = sample()
    want = run_relax(before, x)
    after = equalize(before)
    np.testing.assert_allclose(run_relax(after, x), want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    assert np.abs(constants(after)[0]).max() < np.abs(w1).max() / 5


def test_module_without_pairs_is_returned_as_is():
    w1, b, _ = weights()
    x = relax.Var("x", relax.TensorType((1, C_IN, SIZE, SIZE), "float32"))
    bb = relax.BlockBuilder()
    with bb.function("main", [x]):
        with bb.dataflow():
            out = bb.emit_output(bb.emit(relax.op.nn.relu(relax.op.nn.conv2d(x, const(w1), padding=1))))
        bb.emit_func_output(out)
    mod = bb.get()
    assert equalized_pairs(mod) == [] and equalize(mod)["main"].same_as(mod["main"])
