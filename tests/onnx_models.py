"""Small ONNX models built with onnx.helper for the tests (seeded, deterministic).

Each builder returns an onnx.ModelProto with IR version 10 (onnxruntime 1.31 reads at
most 13; onnx 1.23 writes 14 by default). Node names are set so tests can check the
provenance the compiler reports.
"""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


class GraphBuilder:
    """Collects nodes and initializers; `const` adds a seeded random initializer."""

    def __init__(self, seed=0):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.initializers = [], []

    def const(self, name, array):
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def rand(self, name, shape, low=-1.0, high=1.0):
        return self.const(name, self.rng.uniform(low, high, shape).astype(np.float32))

    def node(self, op_type, inputs, name, **attrs):
        output = name + "_out"
        self.nodes.append(helper.make_node(op_type, inputs, [output], name=name, **attrs))
        return output

    def conv(self, x, name, cin, cout, k=3, bias=True, group=1, stride=1, pad=None):
        pad = k // 2 if pad is None else pad
        inputs = [x, self.rand(name + "_w", (cout, cin // group, k, k), -0.5, 0.5)]
        if bias:
            inputs.append(self.rand(name + "_b", (cout,)))
        return self.node("Conv", inputs, name, kernel_shape=[k, k], pads=[pad] * 4, strides=[stride] * 2, group=group)

    def batchnorm(self, x, name, channels):
        params = [self.rand(name + "_scale", (channels,), 0.5, 1.5), self.rand(name + "_bias", (channels,)),
                  self.rand(name + "_mean", (channels,)), self.rand(name + "_var", (channels,), 0.5, 1.5)]
        return self.node("BatchNormalization", [x] + params, name, epsilon=1e-5)

    def relu6(self, x, name):
        return self.node("Clip", [x, self.const(name + "_lo", np.float32(0)), self.const(name + "_hi", np.float32(6))], name)

    def model(self, inputs, output, output_shape, name="test"):
        graph = helper.make_graph(
            self.nodes, name,
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
            [helper.make_tensor_value_info(output, TensorProto.FLOAT, output_shape)],
            self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        model.ir_version = 10
        onnx.checker.check_model(model)
        return model


def conv_bn_act(bias=True, activation="relu", channels=(3, 8), size=8, seed=0):
    """x -> Conv(+bias) -> BatchNorm -> Relu | Clip(0,6) | nothing."""
    g = GraphBuilder(seed)
    cin, cout = channels
    y = g.batchnorm(g.conv("x", "conv", cin, cout, bias=bias), "bn", cout)
    if activation == "relu":
        y = g.node("Relu", [y], "act")
    elif activation == "relu6":
        y = g.relu6(y, "act")
    return g.model([("x", [1, cin, size, size])], y, [1, cout, size, size])


def residual_block(channels=8, size=8, seed=0):
    """x -> Conv-BN-Relu -> Conv-BN -> Sum(x) -> Relu (a ResNet basic block)."""
    g = GraphBuilder(seed)
    y = g.node("Relu", [g.batchnorm(g.conv("x", "conv1", channels, channels), "bn1", channels)], "relu1")
    y = g.batchnorm(g.conv(y, "conv2", channels, channels), "bn2", channels)
    y = g.node("Relu", [g.node("Sum", [y, "x"], "add")], "relu2")
    return g.model([("x", [1, channels, size, size])], y, [1, channels, size, size])


def depthwise_block(channels=8, size=8, seed=0):
    """x -> depthwise Conv 3x3 -> BN -> ReLU6 -> pointwise Conv 1x1 -> BN -> ReLU6 (MobileNet)."""
    g = GraphBuilder(seed)
    y = g.relu6(g.batchnorm(g.conv("x", "dw", channels, channels, group=channels), "bn_dw", channels), "relu6_dw")
    y = g.relu6(g.batchnorm(g.conv(y, "pw", channels, 2 * channels, k=1), "bn_pw", 2 * channels), "relu6_pw")
    return g.model([("x", [1, channels, size, size])], y, [1, 2 * channels, size, size])


def tiny_cnn(seed=0, size=16, classes=10, softmax=True):
    """Conv-BN-Relu, MaxPool, depthwise-separable block, residual block, global pool, Gemm, Softmax."""
    g = GraphBuilder(seed)
    y = g.node("Relu", [g.batchnorm(g.conv("input", "stem_conv", 3, 8, stride=2), "stem_bn", 8)], "stem_relu")
    y = g.node("MaxPool", [y], "pool1", kernel_shape=[2, 2], strides=[2, 2])
    y = g.relu6(g.batchnorm(g.conv(y, "dw_conv", 8, 8, group=8), "dw_bn", 8), "dw_relu6")
    y = g.relu6(g.batchnorm(g.conv(y, "pw_conv", 8, 16, k=1), "pw_bn", 16), "pw_relu6")
    skip = y
    y = g.node("Relu", [g.batchnorm(g.conv(y, "res_conv1", 16, 16), "res_bn1", 16)], "res_relu1")
    y = g.batchnorm(g.conv(y, "res_conv2", 16, 16), "res_bn2", 16)
    y = g.node("Relu", [g.node("Add", [y, skip], "res_add")], "res_relu2")
    y = g.node("GlobalAveragePool", [y], "gap")
    y = g.node("Flatten", [y], "flatten")
    y = g.node("Gemm", [y, g.rand("fc_w", (classes, 16)), g.rand("fc_b", (classes,))], "fc", transB=1)
    if softmax:
        y = g.node("Softmax", [y], "softmax")
    return g.model([("input", [1, 3, size, size])], y, [1, classes], name="tiny_cnn")


def conv_shared_output(channels=(3, 8), size=8, seed=0):
    """x -> Conv(+bias) = y;  Relu(y) + y: the conv output has a user outside any conv+ReLU group."""
    g = GraphBuilder(seed)
    cin, cout = channels
    y = g.conv("x", "conv", cin, cout)
    y = g.node("Add", [g.node("Relu", [y], "relu"), y], "add")
    return g.model([("x", [1, cin, size, size])], y, [1, cout, size, size])


def conv_add_const_relu(const_shape, channels=(3, 8), size=8, seed=0):
    """x -> Conv (no bias) -> Add(constant of `const_shape`) -> Relu."""
    g = GraphBuilder(seed)
    cin, cout = channels
    y = g.node("Add", [g.conv("x", "conv", cin, cout, bias=False), g.rand("add_c", const_shape)], "add")
    y = g.node("Relu", [y], "relu")
    return g.model([("x", [1, cin, size, size])], y, [1, cout, size, size])


def dense_bias_relu(kind="gemm", batch=2, features=(16, 10), bias_shape=None, seed=0):
    """x -> Gemm(W, b, transB=1) -> Relu, or x -> MatMul(W) -> Add(b) -> Relu."""
    g = GraphBuilder(seed)
    k, n = features
    if kind == "gemm":
        y = g.node("Gemm", ["x", g.rand("fc_w", (n, k)), g.rand("fc_b", bias_shape or (n,))], "fc", transB=1)
    else:
        y = g.node("MatMul", ["x", g.rand("fc_w", (k, n))], "fc")
        y = g.node("Add", [y, g.rand("fc_b", bias_shape or (n,))], "fc_bias")
    y = g.node("Relu", [y], "relu")
    return g.model([("x", [batch, k])], y, [batch, n])


def dense_relu_softmax(seed=3, batch=4, features=(32, 64)):
    """x -> Gemm -> Relu -> Softmax: the dense layer goes to oneDNN on a host float build, the softmax
    stays TVM's (what host tuning has to tune)."""
    g = GraphBuilder(seed)
    k, n = features
    x = g.node("Gemm", ["x", g.rand("w", (n, k)), g.rand("b", (n,))], "fc", transB=1)
    x = g.node("Relu", [x], "relu")
    x = g.node("Softmax", [x], "softmax", axis=-1)
    return g.model([("x", (batch, k))], x, (batch, n))


def pooling(kind, channels=4, size=8, seed=0):
    """x -> Relu -> MaxPool 2x2/2 | AveragePool 3x3/1 pad 1 | GlobalAveragePool."""
    g = GraphBuilder(seed)
    y = g.node("Relu", ["x"], "relu")
    if kind == "MaxPool":
        y, out = g.node("MaxPool", [y], "pool", kernel_shape=[2, 2], strides=[2, 2]), size // 2
    elif kind == "AveragePool":
        y, out = g.node("AveragePool", [y], "pool", kernel_shape=[3, 3], strides=[1, 1], pads=[1] * 4), size
    else:
        y, out = g.node("GlobalAveragePool", [y], "pool"), 1
    return g.model([("x", [1, channels, size, size])], y, [1, channels, out, out])


# MobileNet V1 (Howard et al. 2017, Table 1): (output channels at width 1.0, stride) of each
# depthwise-separable block after the 3x3 stride-2 stem of 32 channels.
MOBILENET_V1_BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1),
                       (512, 1), (512, 1), (1024, 2), (1024, 1)]


def mobilenet_v1(alpha=0.25, size=224, classes=1000, seed=0, blocks=None):
    """MobileNet V1 at width multiplier `alpha`: Conv-BN-ReLU6 stem, depthwise-separable blocks
    (depthwise 3x3 + BN + ReLU6, pointwise 1x1 + BN + ReLU6), global average pool, fully
    connected logits (no softmax). Seeded random weights, scaled by fan-in so that activations
    stay in a sensible range. `blocks` limits the number of separable blocks (for small tests)."""
    g = GraphBuilder(seed)

    def conv_bn_relu6(x, name, cin, cout, k, stride, group=1):
        bound = float(np.sqrt(6.0 / (k * k * cin // group)))
        w = g.rand(name + "_w", (cout, cin // group, k, k), -bound, bound)
        y = g.node("Conv", [x, w], name, kernel_shape=[k, k], pads=[k // 2] * 4, strides=[stride] * 2, group=group)
        return g.relu6(g.batchnorm(y, name + "_bn", cout), name + "_relu6")

    channels = max(8, int(32 * alpha))
    y = conv_bn_relu6("input", "conv0", 3, channels, 3, 2)
    for index, (width, stride) in enumerate(MOBILENET_V1_BLOCKS[:blocks]):
        out = max(8, int(width * alpha))
        y = conv_bn_relu6(y, f"dw{index + 1}", channels, channels, 3, stride, group=channels)
        y = conv_bn_relu6(y, f"pw{index + 1}", channels, out, 1, 1)
        channels = out
    y = g.node("Flatten", [g.node("GlobalAveragePool", [y], "pool")], "flatten")
    bound = float(np.sqrt(6.0 / channels))
    y = g.node("Gemm", [y, g.rand("fc_w", (classes, channels), -bound, bound), g.rand("fc_b", (classes,))], "fc",
               transB=1)
    return g.model([("input", [1, 3, size, size])], y, [1, classes], name=f"mobilenet_v1_{alpha}_{size}")
