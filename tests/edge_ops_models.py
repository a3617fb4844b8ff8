"""Small conv -> op -> ReLU -> mean models around the edge-CNN operators (PReLU, Resize, Slice, Split,
ConvTranspose, broadcast Add and Sub, DepthToSpace), and conv -> function -> conv models around the
elementwise functions in the exporters' spellings (ACTIVATIONS), shared by the layout, int8,
coral-npu and export tests."""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

C = 8  # channels after the first conv


def _i64(name, values):
    return numpy_helper.from_array(np.array(values, np.int64), name)


def _f32(name, values):
    return numpy_helper.from_array(np.array(values, np.float32), name)


def _seeded(seed, shape):
    return np.random.default_rng(seed).normal(0, 0.3, shape)


def _resize(mode, coordinates, nearest_mode="round_prefer_floor", scale=2.0):
    attrs = dict(mode=mode, coordinate_transformation_mode=coordinates)
    if mode == "nearest":
        attrs["nearest_mode"] = nearest_mode
    return ([helper.make_node("Resize", ["c", "", "scales"], ["a"], name="resize", **attrs)],
            [_f32("scales", [1, 1, scale, scale])])


# name -> (nodes from "c" [1, C, 10, 10] to "a", initializers, the int8 kernel expected for them)
OPS = {
    "PRelu per channel": ([helper.make_node("PRelu", ["c", "slope"], ["a"], name="prelu")],
                          [_f32("slope", np.linspace(-0.5, 0.6, C).reshape(C, 1, 1))], "prelu"),
    "PRelu one slope": ([helper.make_node("PRelu", ["c", "slope"], ["a"], name="prelu")], [_f32("slope", [0.25])],
                        "prelu"),
    "Resize linear half_pixel": (*_resize("linear", "half_pixel"), "resize_bilinear"),
    "Resize linear align_corners": (*_resize("linear", "align_corners"), "resize_bilinear"),
    "Resize linear asymmetric x0.5": (*_resize("linear", "asymmetric", scale=0.5), "resize_bilinear"),
    "Resize nearest asymmetric floor": (*_resize("nearest", "asymmetric", "floor"), "resize_nearest"),
    "Resize nearest half_pixel": (*_resize("nearest", "half_pixel"), "resize_nearest"),
    "Slice channels": ([helper.make_node("Slice", ["c", "b", "e", "ax"], ["a"], name="slice")],
                       [_i64("b", [2]), _i64("e", [7]), _i64("ax", [1])], "copy"),
    "Slice spatial with step": ([helper.make_node("Slice", ["c", "b", "e", "ax", "st"], ["a"], name="slice")],
                                [_i64("b", [1, 0]), _i64("e", [9, -1]), _i64("ax", [2, 3]), _i64("st", [2, 3])],
                                "copy"),
    "Split channels": ([helper.make_node("Split", ["c", "sizes"], ["s0", "s1"], name="split", axis=1),
                        helper.make_node("Add", ["s0", "s1"], ["a"], name="join")], [_i64("sizes", [4, 4])], "copy"),
    "ConvTranspose stride 2": ([helper.make_node("ConvTranspose", ["c", "wt", "bt"], ["a"], name="up", strides=[2, 2],
                                                 pads=[1, 1, 1, 1], output_padding=[1, 1])],
                               [_f32("wt", _seeded(1, (C, 4, 3, 3))), _f32("bt", _seeded(2, (4,)))], "pad"),
    # padding beyond the kernel's reach: the zero-inserted input is cropped (a slice)
    "ConvTranspose grouped dilated cropped": (
        [helper.make_node("ConvTranspose", ["c", "wt"], ["a"], name="up", strides=[2, 2], pads=[3, 2, 3, 2],
                          dilations=[1, 2], group=2)], [_f32("wt", _seeded(3, (C, 3, 3, 3)))], "copy"),
    # squeeze-excite with an add instead of a product: [N, C, 1, 1] + [N, C, H, W] (either order)
    "Add per channel": ([helper.make_node("GlobalAveragePool", ["c"], ["m"], name="se_pool"),
                         helper.make_node("Add", ["m", "c"], ["a"], name="se_add")], [], "add"),
    "Sub per channel (x - mean)": ([helper.make_node("GlobalAveragePool", ["c"], ["m"], name="se_pool"),
                                    helper.make_node("Sub", ["c", "m"], ["a"], name="centre")], [], "add"),
    "Sub of two tensors": ([helper.make_node("MaxPool", ["c"], ["p"], name="pool3", kernel_shape=[3, 3],
                                             pads=[1, 1, 1, 1]),
                            helper.make_node("Sub", ["p", "c"], ["a"], name="diff")], [], "add"),
    "DepthToSpace DCR": ([helper.make_node("DepthToSpace", ["c"], ["a"], name="d2s", blocksize=2, mode="DCR")], [],
                         None),
    "DepthToSpace CRD": ([helper.make_node("DepthToSpace", ["c"], ["a"], name="d2s", blocksize=2, mode="CRD")], [],
                         None),
}


def conv_op_conv_model(op: str, seed=0) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    nodes, inits, _ = OPS[op]
    w1 = numpy_helper.from_array(rng.normal(0, 0.4, (C, 3, 3, 3)).astype(np.float32), "w1")
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w1"], ["c"], name="conv1", pads=[1, 1, 1, 1]), *nodes,
                               helper.make_node("Relu", ["a"], ["r"], name="relu"),
                               helper.make_node("ReduceMean", ["r"], ["y"], name="pool", axes=[2, 3], keepdims=0)],
                              "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 10, 10])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "channels"])], [w1, *inits])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


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


def _activation_model(nodes, weights, model_input, model_output, out_channels) -> onnx.ModelProto:
    """A 1x3x10x10 float model of `nodes`, their conv `weights` (name -> array) and ACTIVATIONS' constants."""
    inits = [numpy_helper.from_array(array, name) for name, array in weights.items()]
    inits += [numpy_helper.from_array(np.float32(v), n) for n, v in (("three", 3), ("zero", 0), ("six", 6))]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(model_input, TensorProto.FLOAT, [1, 3, 10, 10])],
                              [helper.make_tensor_value_info(model_output, TensorProto.FLOAT, [1, out_channels, 10, 10])],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    model.ir_version = 10
    return model


def output_activation_model(activation: str, seed=0) -> onnx.ModelProto:
    """A conv, then the activation as the model output itself (--io int8 returns its int8 tensor)."""
    w = np.random.default_rng(seed).normal(0, 0.4, (8, 3, 3, 3)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]), *ACTIVATIONS[activation]]
    return _activation_model(nodes, {"w": w}, "x", "a", 8)


def input_activation_model(activation: str, seed=0) -> onnx.ModelProto:
    """The activation on the model input itself (its one reader: --io int8 feeds it the int8 tensor), then a conv."""
    w = np.random.default_rng(seed).normal(0, 0.4, (8, 3, 3, 3)).astype(np.float32)
    nodes = [*ACTIVATIONS[activation], helper.make_node("Conv", ["a", "w"], ["y"], name="conv", pads=[1, 1, 1, 1])]
    return _activation_model(nodes, {"w": w}, "c", "y", 8)


def conv_activation_model(activation: str, seed=0) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    weights = {"w1": rng.normal(0, 0.4, (8, 3, 3, 3)).astype(np.float32),
               "w2": rng.normal(0, 0.3, (8, 8, 1, 1)).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c"], name="conv1", pads=[1, 1, 1, 1]), *ACTIVATIONS[activation],
             helper.make_node("Conv", ["a", "w2"], ["y"], name="conv2")]
    return _activation_model(nodes, weights, "x", "y", 8)


def overflowing_bias_model() -> onnx.ModelProto:
    """conv (weights ~1e-4, bias 1000) -> relu -> conv: the first conv's bias is beyond int32 at
    s_in * s_w, so its int8 accumulator could overflow and the int8 kernels refuse it (it computes
    in float with its dequantized weight and bias)."""
    rng = np.random.default_rng(4)
    inits = [numpy_helper.from_array(rng.normal(0, 1e-4, (8, 3, 3, 3)).astype(np.float32), "w1"),
             numpy_helper.from_array(np.full(8, 1000.0, np.float32), "b1"),
             numpy_helper.from_array(rng.normal(0, 0.3, (4, 8, 1, 1)).astype(np.float32), "w2")]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c"], name="big_bias", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"), helper.make_node("Conv", ["r", "w2"], ["y"], name="pw")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model
