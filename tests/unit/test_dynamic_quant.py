"""dynamic_quant alone: a conv2d and a matmul with constant weights against a NumPy evaluation of the
scheme written here from its definition (ONNX DynamicQuantizeLinear for the activation: uint8,
scale (max(x, 0) - min(x, 0)) / 255, zero point round-half-even(-min / scale); int8 per-channel
symmetric weights; int32 sums; float32 rescale). Integer sums are exact, so the only difference allowed
is float32 rounding in the final rescale (rtol 1e-6)."""

import numpy as np
import pytest
from tvm import relax

from compiler.passes.dynamic_quant import dynamic_layers, dynamic_quant
from relax_testing import run_relax

RNG = np.random.default_rng(0)


def reference_input(x):
    lo, hi = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
    scale = np.float32((np.float32(hi) - np.float32(lo)) / np.float32(255)) or np.float32(1)
    zero_point = np.clip(np.round(np.float32(-lo) / scale), 0, 255)
    q = np.clip(np.round(x / scale) + zero_point, 0, 255)
    return (q - zero_point).astype(np.int64), scale


def reference_weight(w, axis):
    reduce = tuple(i for i in range(w.ndim) if i != axis)
    scales = (np.abs(w).max(axis=reduce, keepdims=True) / 127).astype(np.float32)
    return np.clip(np.sign(w / scales) * np.floor(np.abs(w / scales) + 0.5), -127, 127).astype(np.int64), scales


def conv_module(w, stride=1, groups=1):
    x = relax.Var("x", relax.TensorType((1, w.shape[1] * groups, 7, 7), "float32"))
    bb = relax.BlockBuilder()
    with bb.function("main", [x]):
        with bb.dataflow():
            y = relax.op.nn.conv2d(x, relax.const(w), strides=stride, padding=1, groups=groups)
            out = bb.emit_output(bb.emit(y))
        bb.emit_func_output(out)
    return bb.get()


def reference_conv(x, w, stride, groups):
    xq, sx = reference_input(x)
    wq, sw = reference_weight(w, 0)
    padded = np.pad(xq, ((0, 0), (0, 0), (1, 1), (1, 1)))
    out_channels, per_group, kh, kw = w.shape
    size = (padded.shape[2] - kh) // stride + 1
    acc = np.zeros((1, out_channels, size, size), np.int64)
    for o in range(out_channels):
        first = (o // (out_channels // groups)) * per_group
        for i in range(size):
            for j in range(size):
                window = padded[0, first:first + per_group, i * stride:i * stride + kh, j * stride:j * stride + kw]
                acc[0, o, i, j] = (window * wq[o]).sum()
    return acc.astype(np.float32) * (sx * sw.reshape(1, -1, 1, 1))


@pytest.mark.parametrize("stride, groups", [(1, 1), (2, 1), (1, 4)], ids=["conv", "strided", "depthwise"])
@pytest.mark.parametrize("low, high", [(-1.0, 3.0), (0.5, 2.0), (-4.0, -1.0)], ids=["mixed", "positive", "negative"])
def test_conv_matches_the_scheme(stride, groups, low, high):
    w = RNG.normal(0, 0.3, (4, 4 // groups, 3, 3)).astype(np.float32)
    x = RNG.uniform(low, high, (1, 4, 7, 7)).astype(np.float32)
    mod = conv_module(w, stride, groups)
    assert dynamic_layers(mod) == 1
    np.testing.assert_allclose(run_relax(dynamic_quant(mod), x), reference_conv(x, w, stride, groups), rtol=1e-6,
                               atol=1e-7)


def test_matmul_matches_the_scheme():
    w = RNG.normal(0, 0.3, (16, 5)).astype(np.float32)
    x = RNG.uniform(-2, 1, (3, 16)).astype(np.float32)
    var = relax.Var("x", relax.TensorType((3, 16), "float32"))
    bb = relax.BlockBuilder()
    with bb.function("main", [var]):
        with bb.dataflow():
            out = bb.emit_output(bb.emit(relax.op.matmul(var, relax.const(w))))
        bb.emit_func_output(out)
    xq, sx = reference_input(x)
    wq, sw = reference_weight(w, 1)
    expected = (xq @ wq).astype(np.float32) * (sx * sw.reshape(-1))
    np.testing.assert_allclose(run_relax(dynamic_quant(bb.get()), x), expected, rtol=1e-6)


def test_all_zero_input_gives_zero():
    w = RNG.normal(0, 0.3, (4, 4, 3, 3)).astype(np.float32)
    assert not run_relax(dynamic_quant(conv_module(w)), np.zeros((1, 4, 7, 7), np.float32)).any()
