"""quantize_float_bias alone: a pre-quantised conv or dense layer with a float bias gets an int32 bias at
s_x * s_w[c] (checked against round(b / (s_x s_w)) computed here), the function moves by at most half a
step of that scale, and layers whose input is not dequantized are left alone."""

import numpy as np
import pytest
from tvm import relax

from compiler.passes.quantize_float_bias import quantize_float_bias
from compiler.passes.util import bindings, is_call_to, is_const
from relax_testing import run_relax

RNG = np.random.default_rng(0)
S_X, C = np.float32(0.02), 4


LAYERS = {  # kind: (input shape, quantised weight shape, weight axis, bias shape, channel axes of the output)
    "conv": ((1, 3, 6, 6), (C, 3, 3, 3), 0, (1, C, 1, 1), (0, 2, 3)),
    "dense": ((2, 5), (5, C), 1, (C,), (0,)),
}


def module(kind="conv", quantised_input=True):
    x_shape, w_shape, w_axis, bias_shape, _ = LAYERS[kind]
    w_q = RNG.integers(-127, 128, w_shape).astype(np.int8)
    s_w = RNG.uniform(0.001, 0.01, C).astype(np.float32)
    bias = RNG.normal(0, 0.5, bias_shape).astype(np.float32)
    x = relax.Var("x", relax.TensorType(x_shape, "float32"))
    bb = relax.BlockBuilder()
    with bb.function("main", [x]):
        with bb.dataflow():
            data = x
            if quantised_input:
                q = bb.emit(relax.op.quantize(x, relax.const(S_X), relax.const(np.int8(0)), axis=-1))
                data = bb.emit(relax.op.dequantize(q, relax.const(S_X), relax.const(np.int8(0)), axis=-1))
            w = bb.emit(relax.op.dequantize(relax.const(w_q), relax.const(s_w), relax.const(np.zeros(C, np.int8)),
                                            axis=w_axis))
            y = bb.emit(relax.op.nn.conv2d(data, w, padding=1) if kind == "conv" else relax.op.matmul(data, w))
            out = bb.emit_output(bb.emit(relax.op.add(y, relax.const(bias))))
        bb.emit_func_output(out)
    return bb.get(), s_w, bias


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_float_bias_becomes_int32_at_the_accumulator_scale(kind):
    mod, s_w, bias = module(kind)
    after = quantize_float_bias(mod)
    dequantized = [b.value for b in bindings(after["main"]) if is_call_to(b.value, "relax.dequantize")
                   and is_const(b.value.args[0]) and b.value.args[0].value.numpy().dtype == np.int32]
    assert len(dequantized) == 1
    q, scales = dequantized[0].args[0].value.numpy(), dequantized[0].args[1].value.numpy()
    expected_scales = (np.float64(S_X) * s_w.astype(np.float64)).astype(np.float32)
    np.testing.assert_array_equal(scales, expected_scales)
    np.testing.assert_array_equal(q, np.round(bias.reshape(-1).astype(np.float64) / expected_scales).astype(np.int32))
    x_shape, _, _, _, reduce_axes = LAYERS[kind]
    x = RNG.uniform(-1, 1, x_shape).astype(np.float32)
    moved = np.abs(run_relax(after, x) - run_relax(mod, x)).max(axis=reduce_axes)
    assert np.all(moved <= expected_scales / 2 * (1 + 1e-5) + 1e-6), moved


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_layer_on_a_float_input_is_left_alone(kind):
    mod, _, _ = module(kind, quantised_input=False)
    assert quantize_float_bias(mod)["main"].same_as(mod["main"])
