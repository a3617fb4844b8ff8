"""Full-int8 .tflite models for the tests, written as TensorFlow's converter writes them.

Per-channel symmetric int8 conv / depthwise weights (quantized_dimension 0 / 3), per-tensor FC
weights, int32 biases with scale s_in * s_w (float32 product, as the converter stores it),
asymmetric int8 activations. Seeded: the same model every run.
"""

import numpy as np
from tflite_builder import TFLiteBuilder


class Int8Model:
    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.b = TFLiteBuilder()
        self.scales = {}

    def activation(self, name, shape, scale=None, zero_point=None, model_input=False):
        scale = float(scale if scale is not None else self.rng.uniform(0.02, 0.08))
        zero_point = int(zero_point if zero_point is not None else self.rng.integers(-20, 20))
        make = self.b.input if model_input else self.b.tensor
        index = make(name, shape, "INT8", scale=[scale], zero_point=[zero_point])
        self.scales[index] = np.float32(scale)
        return index

    def weights(self, name, shape, axis):
        channels = shape[axis]
        scale = self.rng.uniform(0.003, 0.02, channels).astype(np.float32)
        return self.b.constant(name, self.rng.integers(-127, 128, shape).astype(np.int8), scale=scale,
                               zero_point=np.zeros(channels, np.int64), axis=axis), scale

    def bias(self, name, input_index, weight_scale):
        scale = (self.scales[input_index] * weight_scale).astype(np.float32)
        return self.b.constant(name, self.rng.integers(-3000, 3000, weight_scale.size).astype(np.int32),
                               scale=scale, zero_point=np.zeros(scale.size, np.int64))

    def conv(self, x, name, out_shape, kernel, stride=1, depthwise=False, activation="RELU6"):
        in_channels = self.b.graph.tensors[x].shape[3]
        shape = (1, kernel, kernel, out_shape[3]) if depthwise else (out_shape[3], kernel, kernel, in_channels)
        w, w_scale = self.weights(name + "/w", shape, 3 if depthwise else 0)
        y = self.activation(name, out_shape)
        options = dict(padding="SAME", strideH=stride, strideW=stride, fusedActivationFunction=activation)
        if depthwise:
            options["depthMultiplier"] = out_shape[3] // in_channels
        self.b.op("DEPTHWISE_CONV_2D" if depthwise else "CONV_2D", [x, w, self.bias(name + "/b", x, w_scale)], [y],
                  **options)
        return y


def mobile_block_model(seed: int = 0):
    """conv 3x3 s2 -> depthwise 3x3 -> pointwise conv -> residual ADD -> MEAN over H, W -> FC ->
    SOFTMAX: the operators of a MobileNet-style int8 classifier."""
    m = Int8Model(seed)
    x = m.activation("image", [1, 16, 16, 3], model_input=True)
    a = m.conv(x, "stem", [1, 8, 8, 8], 3, stride=2)
    d = m.conv(a, "dw", [1, 8, 8, 8], 3, depthwise=True)
    p = m.conv(d, "pw", [1, 8, 8, 8], 1, activation="NONE")
    s = m.activation("residual", [1, 8, 8, 8])
    m.b.op("ADD", [a, p], [s])
    g = m.activation("pool", [1, 8])
    m.b.op("MEAN", [s, m.b.constant("axes", np.array([1, 2], np.int32))], [g], keepDims=False)
    w = m.b.constant("fc/w", m.rng.integers(-127, 128, (5, 8)).astype(np.int8), scale=[0.01], zero_point=[0])
    fc_bias = m.b.constant("fc/b", m.rng.integers(-500, 500, 5).astype(np.int32),
                           scale=[np.float32(m.scales[g]) * np.float32(0.01)], zero_point=[0])
    logits = m.activation("logits", [1, 5], scale=0.1, zero_point=0)
    m.b.op("FULLY_CONNECTED", [g, w, fc_bias], [logits])
    probabilities = m.activation("probabilities", [1, 5], scale=1 / 256, zero_point=-128)
    m.b.op("SOFTMAX", [logits], [probabilities], beta=1.0)
    m.b.output(probabilities)
    return m.b


def squeeze_excite_model(seed: int = 0):
    """conv -> HARD_SWISH -> depthwise -> squeeze-excite (MEAN keep-dims, 1x1 conv RELU, 1x1 conv,
    LOGISTIC, broadcast MUL) -> AVERAGE_POOL / MAX_POOL -> CONCATENATION -> RESHAPE -> FC: the
    operators of a MobileNetV3-style int8 model."""
    m = Int8Model(seed)
    x = m.activation("image", [1, 12, 12, 4], model_input=True)
    a = m.conv(x, "stem", [1, 12, 12, 8], 3, activation="NONE")
    h = m.activation("hswish", [1, 12, 12, 8])
    m.b.op("HARD_SWISH", [a], [h])
    d = m.conv(h, "dw", [1, 12, 12, 8], 3, depthwise=True, activation="RELU")
    squeeze = m.activation("squeeze", [1, 1, 1, 8])
    m.b.op("MEAN", [d, m.b.constant("axes", np.array([1, 2], np.int32))], [squeeze], keepDims=True)
    r = m.conv(squeeze, "se_reduce", [1, 1, 1, 4], 1, activation="RELU")
    e = m.conv(r, "se_expand", [1, 1, 1, 8], 1, activation="NONE")
    gate = m.activation("gate", [1, 1, 1, 8], scale=1 / 256, zero_point=-128)
    m.b.op("LOGISTIC", [e], [gate])
    excited = m.activation("excited", [1, 12, 12, 8])
    m.b.op("MUL", [d, gate], [excited])
    same = dict(scale=m.b.graph.tensors[excited].quantization.scale, zero_point=[_zero_point(m, excited)])
    pools = []  # TFLite's int8 pools and CONCATENATION keep their input's scale and zero point
    for op in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        pooled = m.b.tensor(op.lower(), [1, 6, 6, 8], "INT8", **same)
        m.b.op(op, [excited], [pooled], padding="VALID", strideH=2, strideW=2, filterHeight=2, filterWidth=2)
        pools.append(pooled)
    joined = m.b.tensor("joined", [1, 6, 6, 16], "INT8", **same)
    m.b.op("CONCATENATION", pools, [joined], axis=3)
    flat = m.b.tensor("flat", [1, 576], "INT8", **same)
    m.scales[flat] = m.scales[excited]
    m.b.op("RESHAPE", [joined, m.b.constant("shape", np.array([1, 576], np.int32))], [flat])
    w = m.b.constant("fc/w", m.rng.integers(-127, 128, (6, 576)).astype(np.int8), scale=[0.004], zero_point=[0])
    fc_bias = m.b.constant("fc/b", m.rng.integers(-500, 500, 6).astype(np.int32),
                           scale=[np.float32(m.scales[flat]) * np.float32(0.004)], zero_point=[0])
    logits = m.activation("logits", [1, 6], scale=0.2, zero_point=3)
    m.b.op("FULLY_CONNECTED", [flat, w, fc_bias], [logits])
    m.b.output(logits)
    return m.b


def _zero_point(m, index) -> int:
    return int(m.b.graph.tensors[index].quantization.zeroPoint[0])


# ---- one-operator models (benchmarks/tflite_op_exactness.py, tests/e2e/test_tflite_build.py) ----

SHAPE = [1, 9, 10, 16]  # the input of every one-operator model


def _same_params(m, index):
    q = m.b.graph.tensors[index].quantization
    return dict(scale=q.scale, zero_point=q.zeroPoint)


def _unary(op, out=None, **options):
    def make(m, x):
        y = m.activation("y", SHAPE, *(out or (None, None)))
        m.b.op(op, [x], [y], **options)
        return y
    return make


def _binary(op, broadcast=False):
    def make(m, x):
        other = m.activation("other", [1, 1, 1, 16] if broadcast else SHAPE, model_input=True)
        y = m.activation("y", SHAPE)
        m.b.op(op, [x, other], [y])
        return y
    return make


def _same_scale(op, out_shape, operands=(), **options):
    """Operators TFLite requires to keep the input's scale and zero point (pools, pad, resize, ...)."""
    def make(m, x):
        y = m.b.tensor("y", out_shape, "INT8", **_same_params(m, x))
        m.b.op(op, [x] + [m.b.constant(f"c{i}", c) for i, c in enumerate(operands)], [y], **options)
        return y
    return make


def _mean(shape, keep_dims=True):
    """MEAN over H, W (Keras' GlobalAveragePooling2D; TensorFlow's converter writes it without
    keep_dims) of the input reshaped to `shape`."""
    def make(m, x):
        if shape != SHAPE:
            reshaped = m.b.tensor("reshaped", shape, "INT8", **_same_params(m, x))
            m.b.op("RESHAPE", [x, m.b.constant("shape", np.array(shape, np.int32))], [reshaped])
            x = reshaped
        y = m.activation("y", [shape[0], 1, 1, shape[3]] if keep_dims else [shape[0], shape[3]])
        m.b.op("MEAN", [x, m.b.constant("axes", np.array([1, 2], np.int32))], [y], keepDims=keep_dims)
        return y
    return make


def _conv(kind):
    def make(m, x):
        if kind == "transpose":
            w, w_scale = m.weights("w", (16, 3, 3, 16), 0)
            y = m.activation("y", [1, 18, 20, 16])
            shape = m.b.constant("shape", np.array([1, 18, 20, 16], np.int32))
            m.b.op("TRANSPOSE_CONV", [shape, w, x, m.bias("b", x, w_scale)], [y], padding="SAME", strideH=2, strideW=2)
            return y
        return m.conv(x, "y", [1, 9, 10, 16], 3, depthwise=kind == "depthwise")
    return make


def _fully_connected(m, x):
    flat = m.b.tensor("flat", [1, 1440], "INT8", **_same_params(m, x))
    m.b.op("RESHAPE", [x, m.b.constant("shape", np.array([1, 1440], np.int32))], [flat])
    m.scales[flat] = m.scales[x]
    w, w_scale = m.weights("w", (10, 1440), 0)
    y = m.activation("y", [1, 10])
    m.b.op("FULLY_CONNECTED", [flat, w, m.bias("b", flat, w_scale)], [y])
    return y


def _softmax(m, x):
    flat = m.b.tensor("flat", [90, 16], "INT8", **_same_params(m, x))
    m.b.op("RESHAPE", [x, m.b.constant("shape", np.array([90, 16], np.int32))], [flat])
    y = m.activation("y", [90, 16], 1 / 256, -128)
    m.b.op("SOFTMAX", [flat], [y], beta=1.0)
    return y


def _prelu(m, x):
    alpha = m.b.constant("alpha", m.rng.integers(-127, 128, (1, 1, 16)).astype(np.int8), scale=[0.01], zero_point=[0])
    y = m.activation("y", SHAPE)
    m.b.op("PRELU", [x, alpha], [y])
    return y


OPERATORS = {
    "CONV_2D": _conv("conv"), "DEPTHWISE_CONV_2D": _conv("depthwise"), "TRANSPOSE_CONV": _conv("transpose"),
    "FULLY_CONNECTED": _fully_connected,
    "ADD": _binary("ADD"), "ADD (broadcast)": _binary("ADD", True), "SUB": _binary("SUB"),
    "MUL": _binary("MUL"), "MUL (broadcast)": _binary("MUL", True),
    "AVERAGE_POOL_2D": _same_scale("AVERAGE_POOL_2D", [1, 4, 5, 16], padding="VALID", strideH=2, strideW=2,
                                   filterHeight=2, filterWidth=2),
    "MAX_POOL_2D": _same_scale("MAX_POOL_2D", [1, 5, 5, 16], padding="SAME", strideH=2, strideW=2, filterHeight=3,
                               filterWidth=3),
    "MEAN (16 channels)": _mean(SHAPE), "MEAN (20 channels)": _mean([1, 8, 9, 20]),
    "MEAN (8 channels)": _mean([1, 9, 20, 8]), "MEAN (4 channels)": _mean([1, 18, 20, 4]),
    "MEAN (3 channels)": _mean([1, 16, 30, 3]), "MEAN (1x1 spatial)": _mean([72, 1, 1, 20]),
    "MEAN (no keep_dims)": _mean(SHAPE, False), "MEAN (no keep_dims, 20 channels)": _mean([1, 8, 9, 20], False),
    "MEAN (no keep_dims, 1x1 spatial)": _mean([72, 1, 1, 20], False),
    "PAD": _same_scale("PAD", [1, 11, 11, 16], [np.array([[0, 0], [1, 1], [0, 1], [0, 0]], np.int32)]),
    "RESIZE_BILINEAR": _same_scale("RESIZE_BILINEAR", [1, 18, 20, 16], [np.array([18, 20], np.int32)]),
    "RESIZE_BILINEAR (half pixel)": _same_scale("RESIZE_BILINEAR", [1, 18, 20, 16], [np.array([18, 20], np.int32)],
                                                halfPixelCenters=True),
    "RESIZE_NEAREST_NEIGHBOR": _same_scale("RESIZE_NEAREST_NEIGHBOR", [1, 18, 20, 16], [np.array([18, 20], np.int32)]),
    "DEPTH_TO_SPACE": _same_scale("DEPTH_TO_SPACE", [1, 18, 20, 4], blockSize=2),
    "LOGISTIC": _unary("LOGISTIC", (1 / 256, -128)), "TANH": _unary("TANH", (1 / 128, 0)),
    "HARD_SWISH": _unary("HARD_SWISH"), "LEAKY_RELU": _unary("LEAKY_RELU", alpha=0.1), "PRELU": _prelu,
    "RELU6": _unary("RELU6"), "QUANTIZE (requantise)": _unary("QUANTIZE"), "SOFTMAX": _softmax,
}



def single_op_model(name: str) -> TFLiteBuilder:
    """The one-operator full-int8 model OPERATORS[name], seeded by its name."""
    m = Int8Model(seed=sum(map(ord, name)))
    x = m.activation("x", SHAPE, model_input=True)
    m.b.output(OPERATORS[name](m, x))
    return m.b
