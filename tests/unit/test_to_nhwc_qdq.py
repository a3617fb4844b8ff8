"""to_nhwc on the QDQ form: the layout goes through quantize/dequantize, weights stay int8."""

import numpy as np
import pytest
import tvm
from tvm import relax

import onnx_models
import onnx_quantized as oq
from compiler.frontend import import_onnx
from compiler.passes.dead_code import eliminate_dead_code
from compiler.passes.to_nhwc import to_nhwc
from compiler.passes.util import bindings, bound_values, is_call_to, is_const
from compiler.quant import qdq
from relax_testing import assert_ir_close, call_ops, onnx_inputs, run_onnxruntime, run_relax


@pytest.mark.parametrize("build, quant_format, permutes", [
    (onnx_models.conv_bn_act, "QDQ", 2),        # the input (before its quantize) and the output
    (onnx_models.residual_block, "QDQ", 2),     # ORT leaves the Sum and last Relu in float: NCHW view there
    (onnx_models.depthwise_block, "QDQ", 2),
    (onnx_models.tiny_cnn, "QDQ", 2),           # the input, and the NCHW view Flatten needs
    (oq.conv_pool_conv, "QOperator", 2),
], ids=["conv_bn_act", "residual_block", "depthwise_block", "tiny_cnn", "qlinear_conv_pool_conv"])
def test_quantised_models_in_nhwc(build, quant_format, permutes):
    model = oq.quantize_ort(build(), quant_format)
    nchw = eliminate_dead_code(import_onnx(model))
    mod = to_nhwc(nchw)
    assert call_ops(mod).count("relax.permute_dims") == permutes
    values = bound_values(mod["main"])
    convs = [b.value for b in bindings(mod["main"]) if is_call_to(b.value, "relax.nn.conv2d")]
    assert convs and all(conv.attrs.data_layout == "NHWC" and conv.attrs.kernel_layout == "OHWI" for conv in convs)
    for conv in convs:
        data, weight = (values[arg] for arg in conv.args)
        assert is_call_to(data, "relax.dequantize") and int(data.attrs.axis) == -1
        assert is_call_to(weight, "relax.dequantize") and is_const(weight.args[0]) and int(weight.attrs.axis) == 0
        assert str(weight.args[0].ty.dtype) == "int8"
    # the NCHW weights are gone, not left beside their OHWI copies
    constants = [b.value.args[0] for b in bindings(mod["main"])
                 if is_call_to(b.value, "relax.dequantize") and is_const(b.value.args[0])]
    assert sum(c.ty.ndim == 4 and str(c.ty.dtype) == "int8" for c in constants) == len(convs)
    assert all(tuple(c.ty.shape)[:3] == (1, 1, 1) for c in constants if str(c.ty.dtype) == "int32" and c.ty.ndim == 4)
    feeds = onnx_inputs(model)
    got, want = run_relax(mod, *feeds.values()), run_onnxruntime(model, feeds)[0]
    assert np.abs(got - want).max() <= oq.output_scale(model) * (1 + 1e-5)  # one step, as the NCHW import


# -- exact structure ---------------------------------------------------------------------------

RNG = np.random.default_rng(0)
W_Q = RNG.integers(-127, 128, (4, 3, 3, 3)).astype(np.int8)
W_SCALE = RNG.uniform(0.01, 0.02, 4).astype(np.float32)
B_Q = RNG.integers(-300, 300, 4).astype(np.int32)
S_X, S_Y = 0.02, 0.05


def _weight(layout, per_channel):
    data = W_Q if layout == "NCHW" else W_Q.transpose(0, 2, 3, 1)
    if per_channel:
        return qdq.weight(data, W_SCALE, axis=0)
    return qdq.dequantize(relax.const(data), W_SCALE[0], 0)


def _qdq_conv(layout, bias_form="1C11", per_channel=True):
    """quantize(x) -> dequantize -> conv(dequantize(W_q)) + dequantize(B_q) -> quantize -> dequantize."""
    x = relax.Var("x", relax.TensorType((1, 3, 6, 6), "float32"))
    bias_scale = (S_X * W_SCALE) if per_channel else np.float32(S_X * W_SCALE[0])
    bb = relax.BlockBuilder()
    with bb.function("main", [x]):
        with bb.dataflow():
            if layout == "NCHW":
                x_q = bb.emit(qdq.quantize(x, S_X, 0))
                x_dq = bb.emit(qdq.dequantize(x_q, S_X, 0))
                weight = bb.emit(_weight("NCHW", per_channel))
                conv = bb.emit(relax.op.nn.conv2d(x_dq, weight, padding=1))
                if bias_form == "1C11":
                    bias = bb.emit(qdq.bias(B_Q.reshape(1, 4, 1, 1), bias_scale, axis=1))
                else:  # ONNX Conv's bias input: a (C,) dequantize, reshaped by the Conv converter
                    bias = bb.emit(relax.op.reshape(bb.emit(qdq.bias(B_Q, bias_scale, axis=0)), (1, 4, 1, 1)))
            else:
                weight = bb.emit(_weight("NHWC", per_channel))
                x_q = bb.emit(qdq.quantize(bb.emit(relax.op.permute_dims(x, [0, 2, 3, 1])), S_X, 0))
                x_dq = bb.emit(qdq.dequantize(x_q, S_X, 0))
                conv = bb.emit(relax.op.nn.conv2d(x_dq, weight, padding=1, data_layout="NHWC", kernel_layout="OHWI",
                                                  out_layout="NHWC"))
                bias = bb.emit(qdq.bias(B_Q.reshape(1, 1, 1, 4), bias_scale, axis=-1))
            y_q = bb.emit(qdq.quantize(bb.emit(relax.op.add(conv, bias)), S_Y, -3))
            if layout == "NCHW":
                out = bb.emit_output(qdq.dequantize(y_q, S_Y, -3))
            else:
                out = bb.emit_output(relax.op.permute_dims(bb.emit(qdq.dequantize(y_q, S_Y, -3)), [0, 3, 1, 2]))
        bb.emit_func_output(out)
    return bb.get()


@pytest.mark.parametrize("bias_form", ["1C11", "C-reshaped"])
@pytest.mark.parametrize("per_channel", [True, False], ids=["per-channel", "per-tensor"])
def test_structure_of_qdq_conv(bias_form, per_channel):
    before = _qdq_conv("NCHW", bias_form, per_channel)
    after = to_nhwc(before)
    assert_ir_close(after, _qdq_conv("NHWC", per_channel=per_channel))
    x = RNG.uniform(-2, 2, (1, 3, 6, 6)).astype(np.float32)
    np.testing.assert_allclose(run_relax(after, x), run_relax(before, x), atol=S_Y * 1.0001)


def test_weight_quantised_along_input_channels_is_left_in_nchw():
    """Per-channel along I (axis 1) is not the form: that conv stays NCHW, nothing breaks."""
    x = relax.Var("x", relax.TensorType((1, 3, 6, 6), "float32"))
    bb = relax.BlockBuilder()
    with bb.function("main", [x]):
        with bb.dataflow():
            weight = bb.emit(qdq.weight(W_Q, np.full(3, 0.01, np.float32), axis=1))
            out = bb.emit_output(relax.op.nn.conv2d(bb.emit(qdq.dequantize(bb.emit(qdq.quantize(x, S_X, 0)), S_X, 0)),
                                                    weight, padding=1))
        bb.emit_func_output(out)
    before = bb.get()
    tvm.ir.assert_structural_equal(to_nhwc(before), before)


def test_per_channel_quantize_of_an_nhwc_tensor_gets_the_nchw_view():
    """A per-channel quantize is not elementwise: it sees the NCHW tensor (numerics unchanged)."""
    x = relax.Var("x", relax.TensorType((1, 3, 6, 6), "float32"))
    bb = relax.BlockBuilder()
    scales = np.linspace(0.03, 0.06, 4).astype(np.float32)
    with bb.function("main", [x]):
        with bb.dataflow():
            conv = bb.emit(relax.op.nn.conv2d(x, relax.const(W_Q.astype(np.float32) * 0.01), padding=1))
            y_q = bb.emit(relax.op.quantize(conv, relax.const(scales), relax.const(np.zeros(4, np.int8)), axis=1))
            out = bb.emit_output(relax.op.dequantize(y_q, relax.const(scales), relax.const(np.zeros(4, np.int8)), axis=1))
        bb.emit_func_output(out)
    before = bb.get()
    after = to_nhwc(before)
    assert call_ops(after)[2:] == ["relax.permute_dims", "relax.quantize", "relax.dequantize"]
    x_value = RNG.uniform(-2, 2, (1, 3, 6, 6)).astype(np.float32)
    np.testing.assert_allclose(run_relax(after, x_value), run_relax(before, x_value), atol=scales.max() * 1.0001)
