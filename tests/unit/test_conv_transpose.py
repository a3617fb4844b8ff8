"""ConvTranspose becomes zero insertion (reshapes and zero pads), a crop when the padding exceeds the
kernel's reach, and an NHWC convolution (compiler/passes/conv_transpose.py, run by to_nhwc): the
result equals ONNX Runtime's ConvTranspose for strides 1-3, paddings that pad and that crop,
output padding, dilation and groups, and no transposed convolution or layout transpose is left
inside the graph."""

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from compiler.frontend import import_onnx
from compiler.passes.fold_constants import fold_constants
from compiler.passes.fold_transposes import fold_transposes
from compiler.passes.pipeline import optimise
from compiler.passes.to_nhwc import to_nhwc
from relax_testing import assert_matches_onnxruntime, call_ops


def conv_then_conv_transpose(cin, cout, size, kernel, stride, pads, output_padding=0, dilation=1, groups=1, bias=True):
    """x [1, 3, size, size] -> 1x1 conv to cin channels (so the input is NHWC inside) -> ConvTranspose."""
    rng = np.random.default_rng(cin * 100 + kernel * 10 + stride)
    inits = [numpy_helper.from_array(rng.normal(size=(cin, 3, 1, 1)).astype(np.float32), "w0"),
             numpy_helper.from_array(rng.normal(size=(cin, cout // groups, kernel, kernel)).astype(np.float32), "w")]
    inputs = ["c", "w"]
    if bias:
        inits.append(numpy_helper.from_array(rng.normal(size=(cout,)).astype(np.float32), "b"))
        inputs.append("b")
    nodes = [helper.make_node("Conv", ["x", "w0"], ["c"]),
             helper.make_node("ConvTranspose", inputs, ["y"], strides=[stride, stride], pads=pads,
                              output_padding=[output_padding, output_padding], dilations=[dilation, dilation],
                              group=groups)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, size, size])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


CASES = {
    "k3 s2 p1 output padding 1 (the decoder upsample)": dict(cin=8, cout=4, size=5, kernel=3, stride=2,
                                                          pads=[1, 1, 1, 1], output_padding=1),
    "k4 s2 p1": dict(cin=8, cout=4, size=5, kernel=4, stride=2, pads=[1, 1, 1, 1]),
    "k2 s2 p0 (no overlap)": dict(cin=4, cout=4, size=6, kernel=2, stride=2, pads=[0, 0, 0, 0], bias=False),
    "k3 s3 output padding 2": dict(cin=6, cout=6, size=4, kernel=3, stride=3, pads=[0, 0, 0, 0], output_padding=2),
    "k3 s1 p1 (a flipped convolution)": dict(cin=8, cout=4, size=5, kernel=3, stride=1, pads=[1, 1, 1, 1]),
    "grouped, dilated": dict(cin=8, cout=8, size=5, kernel=3, stride=2, pads=[2, 2, 2, 2], dilation=2, groups=4),
    "padding beyond the reach crops": dict(cin=4, cout=2, size=6, kernel=3, stride=2, pads=[3, 1, 4, 0]),
}


@pytest.mark.parametrize("case", CASES)
def test_conv_transpose_is_a_convolution_of_the_zero_inserted_input(case):
    model = conv_then_conv_transpose(**CASES[case])
    mod = fold_constants(fold_transposes(to_nhwc(optimise(import_onnx(model)))))
    ops = call_ops(mod)
    assert "relax.nn.conv2d_transpose" not in ops
    assert ops.count("relax.nn.conv2d") == 2
    assert ops.count("relax.permute_dims") == 2  # the input's and the output's, nothing inside
    stride, pads, kernel = CASES[case]["stride"], CASES[case]["pads"], CASES[case]["kernel"]
    assert ops.count("relax.nn.pad") == (2 if stride > 1 else 0)  # zeros after every row, then every column
    crops = any(p > CASES[case].get("dilation", 1) * (kernel - 1) for p in pads)
    assert ("relax.strided_slice" in ops) == crops
    assert_matches_onnxruntime(model, mod, rtol=1e-4, atol=1e-4)


def test_a_conv_transpose_that_is_not_nchw_stays():
    """Only the NCHW / IOHW form with a constant weight is rewritten; other forms stay as they are."""
    model = conv_then_conv_transpose(cin=4, cout=4, size=5, kernel=3, stride=2, pads=[1, 1, 1, 1])
    model.graph.initializer.pop(1)  # the transposed weight becomes a graph input
    model.graph.input.append(helper.make_tensor_value_info("w", TensorProto.FLOAT, [4, 4, 3, 3]))
    mod = fold_constants(fold_transposes(to_nhwc(optimise(import_onnx(model)))))
    assert "relax.nn.conv2d_transpose" in call_ops(mod)
