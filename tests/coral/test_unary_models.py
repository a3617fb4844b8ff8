"""Elementwise functions of one tensor in real positions (after convolutions, in the exporters'
spellings) run as int8 tables: on coral-npu every layer is a generated RVV kernel, the outputs equal
the host int8 build bit for bit, and the int8 model stays close to the float one."""


import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from test_coral_build import coral_equals_host

ACTIVATIONS = {  # name -> nodes from "c" to "a" (after a conv), with initializers
    "HardSwish": [helper.make_node("HardSwish", ["c"], ["a"], name="hswish")],
    "hard-swish spelled out": [helper.make_node("Add", ["c", "three"], ["p"], name="hs_add"),
                               helper.make_node("Clip", ["p", "zero", "six"], ["q"], name="hs_clip"),
                               helper.make_node("Mul", ["c", "q"], ["r"], name="hs_mul"),
                               helper.make_node("Div", ["r", "six"], ["a"], name="hs_div")],
    "HardSigmoid": [helper.make_node("HardSigmoid", ["c"], ["a"], name="hsig")],
    "Sigmoid": [helper.make_node("Sigmoid", ["c"], ["a"], name="sigmoid")],
    "SiLU": [helper.make_node("Sigmoid", ["c"], ["s"], name="silu_sigmoid"),
             helper.make_node("Mul", ["c", "s"], ["a"], name="silu_mul")],
    "LeakyRelu": [helper.make_node("LeakyRelu", ["c"], ["a"], name="leaky", alpha=0.1)],
    "Tanh": [helper.make_node("Tanh", ["c"], ["a"], name="tanh")],
    "Gelu": [helper.make_node("Gelu", ["c"], ["a"], name="gelu")],
}


def conv_activation_model(activation: str, seed=0) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    inits = [numpy_helper.from_array(rng.normal(0, 0.4, (8, 3, 3, 3)).astype(np.float32), "w1"),
             numpy_helper.from_array(rng.normal(0, 0.3, (8, 8, 1, 1)).astype(np.float32), "w2")]
    inits += [numpy_helper.from_array(np.float32(v), n) for n, v in (("three", 3), ("zero", 0), ("six", 6))]
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c"], name="conv1", pads=[1, 1, 1, 1]), *ACTIVATIONS[activation],
             helper.make_node("Conv", ["a", "w2"], ["y"], name="conv2")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 10, 10])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 10, 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    model.ir_version = 10
    return model


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activation_runs_as_a_table_on_coral_bit_exact_to_host(tmp_path, activation):
    model = conv_activation_model(activation)
    onnx.save(model, tmp_path / "m.onnx")
    rng = np.random.default_rng(1)
    np.save(tmp_path / "calib.npy", rng.normal(size=(32, 1, 3, 10, 10)).astype(np.float32))
    x = rng.normal(size=(1, 3, 10, 10)).astype(np.float32)
    output, report = coral_equals_host(tmp_path / "m.onnx", tmp_path / "calib.npy", x, tmp_path)
    layers = report["coral"]["layers"]
    assert {row["impl"] for row in layers} <= {"rvv", "transpose"} and [r["op"] for r in layers].count("lut") == 1
    expected = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
    scale = np.abs(expected).max()
    assert np.abs(output - expected).max() <= 0.05 * scale  # int8 tables and convs: a few steps
