"""Quantised ONNX models for the tests (seeded, deterministic).

- `quantize_ort`: a float model from onnx_models.py quantised by ONNX Runtime's
  quantize_static (QDQ or QOperator format, per-channel int8 weights), after ORT's
  pre-processing (which folds BatchNorm into Conv and MatMul+Add into Gemm, as users run it).
- `quantize_dynamic_ort`: ORT's dynamic quantisation (DynamicQuantizeLinear + ConvInteger /
  MatMulInteger).
- hand-built models (onnx.helper) for what ORT does not write on its own: QLinearConv with
  chosen dtypes / padding / per-tensor weights, ConvInteger and MatMulInteger with chosen
  operands, and the quantisations the compiler rejects (int16, per-channel activations).
"""

import os
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from onnx_models import OPSET, GraphBuilder

_QUANT_TYPES = {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8, "int16": QuantType.QInt16}
_ONNX_TYPES = {"int8": TensorProto.INT8, "uint8": TensorProto.UINT8, "int16": TensorProto.INT16,
               "int32": TensorProto.INT32, "float32": TensorProto.FLOAT}


class RandomSamples(CalibrationDataReader):
    """A few seeded uniform(-2, 2) samples for every graph input (the calibration set)."""

    def __init__(self, model, samples=4, seed=0):
        rng = np.random.default_rng(seed)
        initializers = {init.name for init in model.graph.initializer}
        inputs = [(value.name, [d.dim_value for d in value.type.tensor_type.shape.dim])
                  for value in model.graph.input if value.name not in initializers]
        self._batches = iter([{name: rng.uniform(-2, 2, shape).astype(np.float32) for name, shape in inputs}
                              for _ in range(samples)])

    def get_next(self):
        return next(self._batches, None)


def _through_files(model, write):
    """Run an ORT tool that works on files: `write(src_path, dst_path)`, then load dst."""
    with tempfile.TemporaryDirectory() as tmp:
        src, pre, dst = (os.path.join(tmp, name) for name in ("float.onnx", "pre.onnx", "quant.onnx"))
        onnx.save(model, src)
        quant_pre_process(src, pre, skip_symbolic_shape=True)
        write(pre, dst)
        quantised = onnx.load(dst)
    quantised.ir_version = min(quantised.ir_version, 10)
    return quantised


def quantize_ort(model, quant_format="QDQ", activation="int8", weight="int8", per_channel=True):
    """`model` quantised by ORT's quantize_static (calibrated on RandomSamples)."""
    fmt = QuantFormat.QDQ if quant_format == "QDQ" else QuantFormat.QOperator
    return _through_files(model, lambda src, dst: quantize_static(
        src, dst, RandomSamples(model), quant_format=fmt, per_channel=per_channel,
        activation_type=_QUANT_TYPES[activation], weight_type=_QUANT_TYPES[weight]))


def quantize_dynamic_ort(model, weight="int8"):
    """`model` quantised by ORT's quantize_dynamic: DynamicQuantizeLinear + ConvInteger / MatMulInteger."""
    return _through_files(model, lambda src, dst: quantize_dynamic(src, dst, weight_type=_QUANT_TYPES[weight]))


# -- float models for ORT to quantise ---------------------------------------------------------

def matmul_relu(batch=2, features=(16, 10), seed=0):
    """x -> MatMul(W) -> Relu: without a bias ORT's QOperator format writes QLinearMatMul (not QGemm)."""
    g = GraphBuilder(seed)
    k, n = features
    y = g.node("Relu", [g.node("MatMul", ["x", g.rand("fc_w", (k, n))], "fc")], "relu")
    return g.model([("x", [batch, k])], y, [batch, n])


def conv_pool_conv(channels=(3, 8, 8), size=8, seed=0):
    """x -> Conv -> Relu -> MaxPool -> Conv: QOperator puts a uint8 MaxPool between two QLinearConvs."""
    g = GraphBuilder(seed)
    cin, mid, cout = channels
    y = g.node("Relu", [g.conv("x", "conv1", cin, mid)], "relu1")
    y = g.node("MaxPool", [y], "pool", kernel_shape=[2, 2], strides=[2, 2])
    y = g.conv(y, "conv2", mid, cout)
    return g.model([("x", [1, cin, size, size])], y, [1, cout, size // 2, size // 2])


# -- hand-built quantised models ----------------------------------------------------------------

def _model(nodes, inputs, outputs, initializers, name="quantised", opset=OPSET):
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info(n, _ONNX_TYPES[t], s) for n, t, s in inputs],
        [helper.make_tensor_value_info(n, _ONNX_TYPES[t], s) for n, t, s in outputs],
        [numpy_helper.from_array(np.asarray(value), key) for key, value in initializers.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    onnx.checker.check_model(model)
    return model


def _zero(dtype, value=0):
    return np.array(value, dtype)


def _quantise_weight(weight, dtype, per_channel, axis):
    """Symmetric int8 (zero point 0) or asymmetric uint8 (zero point near 128) weight quantisation."""
    reduce = tuple(a for a in range(weight.ndim) if a != axis) if per_channel else None
    amax = np.abs(weight).max(axis=reduce).astype(np.float32)
    scale = (amax / 127).astype(np.float32)
    zero = np.zeros(scale.shape, dtype) + (np.array(131, dtype) if dtype == "uint8" else 0)
    shape = [1] * weight.ndim
    if per_channel:
        shape[axis] = -1
    q = np.rint(weight / scale.reshape(shape)) + zero.reshape(shape).astype(np.float32)
    info = np.iinfo(dtype)
    return np.clip(q, info.min, info.max).astype(dtype), scale, zero


def qlinear_conv(x_dtype="uint8", w_dtype="int8", per_channel=True, bias=True, auto_pad="NOTSET", group=1,
                 channels=(4, 6), size=7, stride=1, quantised_io=False, seed=0):
    """x -> QuantizeLinear -> QLinearConv 3x3 -> DequantizeLinear (float in and out).

    quantised_io: the graph input is the quantised x_dtype tensor and the output the
    quantised y (same dtype as x), with no QuantizeLinear / DequantizeLinear around.
    """
    rng = np.random.default_rng(seed)
    cin, cout = channels
    weight = rng.uniform(-0.5, 0.5, (cout, cin // group, 3, 3)).astype(np.float32)
    w_q, w_scale, w_zero = _quantise_weight(weight, w_dtype, per_channel, axis=0)
    x_scale = np.float32(4.0 / 255)
    x_zero = _zero(x_dtype, 128 if x_dtype == "uint8" else -3)
    depth = cin // group * 9
    y_scale = np.float32(8 * np.sqrt(depth) * 0.33 / 255)
    y_zero = _zero(x_dtype, 120 if x_dtype == "uint8" else 5)
    inits = {"x_scale": x_scale, "x_zero": x_zero, "w": w_q, "w_scale": w_scale, "w_zero": w_zero,
             "y_scale": y_scale, "y_zero": y_zero}
    conv_inputs = ["x_q", "x_scale", "x_zero", "w", "w_scale", "w_zero", "y_scale", "y_zero"]
    if bias:
        inits["b"] = rng.integers(-2000, 2000, cout).astype(np.int32)
        conv_inputs.append("b")
    attrs = dict(kernel_shape=[3, 3], strides=[stride, stride], group=group)
    if auto_pad == "NOTSET":
        attrs["pads"] = [1, 1, 1, 1]
    else:
        attrs["auto_pad"] = auto_pad
    pad = 0 if auto_pad == "VALID" else 2
    out_size = -(-size // stride) if auto_pad.startswith("SAME") else (size + pad - 3) // stride + 1
    nodes = [helper.make_node("QLinearConv", conv_inputs, ["y_q"], name="qconv", **attrs)]
    out_shape = [1, cout, out_size, out_size]
    if quantised_io:
        return _model(nodes, [("x_q", x_dtype, [1, cin, size, size])], [("y_q", x_dtype, out_shape)], inits)
    nodes = ([helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zero"], ["x_q"], name="quant_x")] + nodes
             + [helper.make_node("DequantizeLinear", ["y_q", "y_scale", "y_zero"], ["y"], name="dequant_y")])
    return _model(nodes, [("x", "float32", [1, cin, size, size])], [("y", "float32", out_shape)], inits)


def conv_integer(x_dtype="uint8", w_dtype="uint8", channels=(4, 6), size=6, w_range=None, w_zero_per_channel=False,
                 seed=0):
    """x_q -> ConvInteger 3x3 pad 1 (int32 out). w_range bounds |W - zp_w|; large weights and many
    input channels push the partial sums past float32's exact integers."""
    rng = np.random.default_rng(seed)
    cin, cout = channels
    info = np.iinfo(w_dtype)
    w_zero = (rng.integers(info.min + 10, info.max - 10, cout) if w_zero_per_channel
              else np.array(info.min + 130 if w_dtype == "uint8" else 2)).astype(w_dtype)
    low, high = (-w_range, w_range) if w_range else (info.min, info.max)
    lo = np.clip(w_zero.reshape(-1, 1, 1, 1).astype(np.int32) + low, info.min, info.max)
    hi = np.clip(w_zero.reshape(-1, 1, 1, 1).astype(np.int32) + high, info.min, info.max)
    weight = rng.integers(lo, hi + 1, (cout, cin, 3, 3)).astype(w_dtype)
    x_zero = _zero(x_dtype, 125 if x_dtype == "uint8" else -4)
    nodes = [helper.make_node("ConvInteger", ["x", "w", "x_zero", "w_zero"], ["y"], name="convint",
                              kernel_shape=[3, 3], pads=[1, 1, 1, 1])]
    inits = {"w": weight, "x_zero": x_zero, "w_zero": w_zero}
    return _model(nodes, [("x", x_dtype, [1, cin, size, size])], [("y", "int32", [1, cout, size, size])], inits)


def matmul_integer(a_dtype="uint8", b_dtype="int8", batch=3, features=(20, 7), seed=0):
    """a_q [batch, K] -> MatMulInteger(B_q [K, N] const, per-column zero points) (int32 out)."""
    rng = np.random.default_rng(seed)
    k, n = features
    info = np.iinfo(b_dtype)
    weight = rng.integers(info.min, info.max + 1, (k, n)).astype(b_dtype)
    inits = {"b": weight, "a_zero": _zero(a_dtype, 120 if a_dtype == "uint8" else 3),
             "b_zero": rng.integers(-5, 5, n).astype(b_dtype) if b_dtype == "int8" else np.full(n, 128, b_dtype)}
    nodes = [helper.make_node("MatMulInteger", ["a", "b", "a_zero", "b_zero"], ["y"], name="matmulint")]
    return _model(nodes, [("a", a_dtype, [batch, k])], [("y", "int32", [batch, n])], inits)


def qdq_conv(activation="int8", per_channel_activation=False, channels=(3, 4), size=6, seed=0):
    """x -> Q -> DQ -> Conv(DQ(W int8)) -> Q -> DQ, by hand: int16 activations or a per-channel
    activation scale (axis 1) are what the compiler must reject."""
    rng = np.random.default_rng(seed)
    cin, cout = channels
    w_q, w_scale, w_zero = _quantise_weight(rng.uniform(-0.5, 0.5, (cout, cin, 3, 3)).astype(np.float32), "int8", True, 0)
    x_scale = (np.linspace(0.01, 0.02, cin) if per_channel_activation else np.array(0.016)).astype(np.float32)
    x_zero = np.zeros(x_scale.shape, activation)
    inits = {"x_scale": x_scale, "x_zero": x_zero, "w": w_q, "w_scale": w_scale, "w_zero": w_zero,
             "y_scale": np.float32(0.05), "y_zero": _zero(activation)}
    nodes = [helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zero"], ["x_q"], name="quant_x", axis=1),
             helper.make_node("DequantizeLinear", ["x_q", "x_scale", "x_zero"], ["x_dq"], name="dequant_x", axis=1),
             helper.make_node("DequantizeLinear", ["w", "w_scale", "w_zero"], ["w_dq"], name="dequant_w", axis=0),
             helper.make_node("Conv", ["x_dq", "w_dq"], ["y"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("QuantizeLinear", ["y", "y_scale", "y_zero"], ["y_q"], name="quant_y"),
             helper.make_node("DequantizeLinear", ["y_q", "y_scale", "y_zero"], ["out"], name="dequant_y")]
    return _model(nodes, [("x", "float32", [1, cin, size, size])], [("out", "float32", [1, cout, size, size])], inits,
                  opset=21 if activation == "int16" else OPSET)  # int16 QuantizeLinear needs opset 21


def output_scale(model) -> float:
    """The scale of the quantisation step of the model's (first) output: the scale input of
    the DequantizeLinear or QLinear* node that produces it (or that feeds a float op producing it)."""
    initializers = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    producers = {out: node for node in model.graph.node for out in node.output}
    node = producers[model.graph.output[0].name]
    while node.op_type not in ("DequantizeLinear", "QLinearConv", "QLinearMatMul"):
        node = producers[node.input[0]]
    index = 1 if node.op_type == "DequantizeLinear" else 6
    return float(initializers[node.input[index]].reshape(-1)[0])
