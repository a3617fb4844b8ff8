"""frontend/fold_shapes.py alone: shape arithmetic becomes initializers, the model computes the
same as before in ONNX Runtime, and weights and quantisation operators are left alone."""

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from compiler.frontend.fold_shapes import fold_shape_subgraphs
from compiler.frontend.validate import check_shapes


def same_padding_model() -> onnx.ModelProto:
    """timm's Conv2dSame as the TorchScript exporter writes it: the pads come from Shape(x)."""
    c = lambda name, value: numpy_helper.from_array(np.asarray(value, dtype=np.int64), name)
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"], name="shape"),
        helper.make_node("Gather", ["shape", "index_h"], ["h"], name="gather_h", axis=0),
        helper.make_node("Div", ["h", "stride"], ["blocks"], name="div"),  # integer division
        helper.make_node("Mul", ["blocks", "stride"], ["covered"], name="mul"),
        helper.make_node("Sub", ["h", "covered"], ["rest"], name="sub"),
        helper.make_node("Sub", ["kernel", "stride"], ["need"], name="need"),
        helper.make_node("Max", ["need", "zero"], ["total"], name="max"),
        helper.make_node("Div", ["total", "two"], ["begin"], name="half"),
        helper.make_node("Sub", ["total", "begin"], ["end"], name="rest_half"),
        helper.make_node("Concat", ["zeros2", "begin", "begin", "zeros2", "end", "end"], ["pads"], name="pads", axis=0),
        helper.make_node("Pad", ["x", "pads"], ["padded"], name="pad"),
        helper.make_node("Conv", ["padded", "w"], ["y"], name="conv", strides=[2, 2]),
        helper.make_node("Shape", ["y"], ["y_shape"], name="y_shape"),
        helper.make_node("Slice", ["y_shape", "zero1", "two1"], ["keep"], name="keep"),
        helper.make_node("Concat", ["keep", "minus1"], ["target"], name="target", axis=0),
        helper.make_node("Reshape", ["y", "target"], ["out"], name="flatten"),
    ]
    inits = [c("index_h", [2]), c("two", 2), c("stride", [2]), c("kernel", [3]), c("zero", [0]), c("zeros2", [0, 0]), c("zero1", [0]),
             c("two1", [2]), c("minus1", [-1]),
             numpy_helper.from_array(np.random.default_rng(0).normal(size=(4, 3, 3, 3)).astype(np.float32), "w")]
    graph = helper.make_graph(nodes, "same", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 9, 9])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10
    return model


def run(model, x):
    return ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]


def test_shape_arithmetic_is_folded_and_the_result_unchanged():
    model = same_padding_model()
    folded = fold_shape_subgraphs(check_shapes(model, {"x": (1, 3, 9, 9)}, "m"))
    assert [node.op_type for node in folded.graph.node] == ["Pad", "Conv", "Reshape"]
    initializers = {t.name: numpy_helper.to_array(t) for t in folded.graph.initializer}
    np.testing.assert_array_equal(initializers["pads"], [0, 0, 0, 0, 0, 0, 1, 1])  # 9 -> 5 blocks, pad 0+1
    np.testing.assert_array_equal(initializers["target"], [1, 4, -1])
    x = np.random.default_rng(1).normal(size=(1, 3, 9, 9)).astype(np.float32)
    np.testing.assert_array_equal(run(folded, x), run(model, x))


def test_weights_and_quantisation_are_not_folded():
    w = numpy_helper.from_array(np.arange(8, dtype=np.int8).reshape(2, 4), "w_q")
    scale = numpy_helper.from_array(np.float32(0.1), "w_scale")
    nodes = [helper.make_node("DequantizeLinear", ["w_q", "w_scale"], ["w"], name="dq"),
             helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")]
    graph = helper.make_graph(nodes, "q", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], [w, scale])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10
    folded = fold_shape_subgraphs(check_shapes(model, {"x": (1, 2)}, "m"))
    assert [node.op_type for node in folded.graph.node] == ["DequantizeLinear", "MatMul"]


def test_a_model_without_shape_arithmetic_is_returned_as_it_is():
    model = same_padding_model()
    del model.graph.node[:11]
    model.graph.node[0].input[0] = "x"
    del model.graph.node[1:]
    model.graph.output[0].name = "y"
    inferred = check_shapes(model, {"x": (1, 3, 9, 9)}, "m")
    assert fold_shape_subgraphs(inferred) is inferred
