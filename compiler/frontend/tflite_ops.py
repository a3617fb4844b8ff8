"""TFLite operators as ONNX nodes: one converter per builtin (the OPERATORS table).

A converter reads its operands' float views (Graph.value), emits ONNX nodes and defines its
output tensor (Graph.define adds the QDQ pair of a quantised output). TFLite is NHWC: the
operators ONNX defines on NCHW (conv, pools, resize, depth-to-space) are wrapped in
`_nchw(...)`'s transpose pair, which the NHWC passes cancel; everything else keeps TFLite's
axes. Fused activations (RELU, RELU6, RELU_N1_TO_1, TANH) follow the operator as ONNX nodes,
which the fusion passes fold back into it.
"""

import numpy as np

from compiler.errors import CompilerError
from compiler.frontend.tflite import enum_names
from compiler.names import shown

_TO_NCHW, _TO_NHWC = [0, 3, 1, 2], [0, 2, 3, 1]
_SAME, _VALID = 0, 1
_TFLITE_C_PADDING = {1: _SAME, 2: _VALID}  # TfLitePadding in C structs: 0 unknown, 1 same, 2 valid


def operator_name(model, op, schema, source: str, position: int) -> str:
    codes = model.operatorCodes or []
    if not 0 <= op.opcodeIndex < len(codes):
        raise CompilerError(f"{source}: operator #{position} has opcode index {op.opcodeIndex}, which does not exist")
    code = codes[op.opcodeIndex]
    builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
    if builtin == schema.BuiltinOperator.CUSTOM:
        return "CUSTOM:" + (code.customCode or b"").decode("utf-8", "replace")
    return enum_names(schema.BuiltinOperator).get(builtin, f"BUILTIN_{builtin}")


def require_supported(op_names: list, source: str) -> None:
    """Name every operator we cannot convert, with its index, in one line: the user sees the whole gap at once."""
    missing = [f"#{position} {shown(name)}" for position, name in enumerate(op_names) if name not in OPERATORS]
    if missing:
        verb = "operators are" if len(missing) > 1 else "operator is"
        raise CompilerError(f"{source}: {len(missing)} {verb} not supported: {', '.join(missing)} "
                            f"(supported: {', '.join(sorted(OPERATORS))})")


def convert_operator(graph, op_name: str, op) -> None:
    converter = OPERATORS[op_name]  # require_supported has checked every operator first
    inputs = [int(i) for i in (op.inputs if op.inputs is not None else [])]
    outputs = [int(i) for i in (op.outputs if op.outputs is not None else [])]
    if not outputs:
        graph.fail("has no output")
    converter(graph, _Op(op, inputs, outputs))


class _Op:
    def __init__(self, op, inputs, outputs):
        self.options = op.builtinOptions
        self.custom = bytes(op.customOptions) if op.customOptions is not None else b""
        self.inputs, self.outputs = inputs, outputs

    def option(self, name, default=None):
        return getattr(self.options, name, default) if self.options is not None else default

    def input(self, position: int) -> int | None:
        """The tensor at operand `position`, or None for an omitted optional operand (-1)."""
        return self.inputs[position] if position < len(self.inputs) and self.inputs[position] >= 0 else None


# ---- helpers -----------------------------------------------------------------------------

def _finish(graph, op, value: str, activation: int = 0) -> None:
    graph.define(op.outputs[0], _activation(graph, value, activation))


def _activation(graph, value: str, code: int) -> str:
    if code in (0, None):
        return value
    if code == 1:
        return graph.emit("Relu", [value])
    bounds = {2: (-1.0, 1.0), 3: (0.0, 6.0)}
    if code in bounds:
        lo, hi = bounds[code]
        return graph.emit("Clip", [value, graph.emit_constant(np.float32(lo), "min"), graph.emit_constant(np.float32(hi), "max")])
    if code == 4:
        return graph.emit("Tanh", [value])
    graph.fail(f"fused activation {code} (SIGN_BIT) is not supported")


def _operand(graph, op, position: int, what: str) -> int:
    index = op.input(position)
    if index is None:
        graph.fail(f"is missing its {what} operand")
    return index


def _shape(graph, index: int) -> tuple:
    return graph.tensor(index).shape


def _same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _pads(graph, op, input_shape, kernel_hw, strides, dilations) -> list[int]:
    if op.option("padding", _SAME) == _VALID:
        return [0, 0, 0, 0]
    (top, bottom), (left, right) = (_same_padding(input_shape[1 + a], kernel_hw[a], strides[a], dilations[a])
                                    for a in range(2))
    return [top, left, bottom, right]


def _nchw(graph, value: str, op_type: str, inputs, **attrs) -> str:
    """Run an NCHW ONNX operator on an NHWC value."""
    nchw = graph.emit("Transpose", [value], perm=_TO_NCHW)
    return graph.emit("Transpose", [graph.emit(op_type, [nchw] + list(inputs), **attrs)], perm=_TO_NHWC)


def _strides(op) -> list[int]:
    return [op.option("strideH", 1) or 1, op.option("strideW", 1) or 1]


def _rank4(graph, index: int, what: str) -> tuple:
    shape = _shape(graph, index)
    if len(shape) != 4:
        graph.fail(f"{what} must be 4-D NHWC, got shape {list(shape)}")
    return shape


# ---- convolutions and dense --------------------------------------------------------------

def _conv(graph, op, depthwise: bool) -> None:
    x, w = _operand(graph, op, 0, "input"), _operand(graph, op, 1, "filter")
    x_shape, w_shape = _rank4(graph, x, "input"), _rank4(graph, w, "filter")
    dilations = [op.option("dilationHFactor", 1) or 1, op.option("dilationWFactor", 1) or 1]
    strides = _strides(op)
    if depthwise:  # [1, KH, KW, C*M] -> [C*M, 1, KH, KW]
        weight, group, kernel = graph.value(w, (3, 0, 1, 2)), x_shape[3], w_shape[1:3]
    else:  # OHWI -> OIHW
        weight, kernel = graph.value(w, (0, 3, 1, 2)), w_shape[1:3]
        group = x_shape[3] // w_shape[3] if w_shape[3] and x_shape[3] % w_shape[3] == 0 else 0
        if group < 1:
            graph.fail(f"input channels {x_shape[3]} are not a multiple of the filter's {w_shape[3]}")
    bias = op.input(2)
    operands = [weight] + ([graph.value(bias)] if bias is not None else [])
    y = _nchw(graph, graph.value(x), "Conv", operands, group=group, strides=strides, dilations=dilations,
              kernel_shape=list(kernel), pads=_pads(graph, op, x_shape, kernel, strides, dilations))
    _finish(graph, op, y, op.option("fusedActivationFunction"))


def _transpose_conv(graph, op, weight_at=1, input_at=2, bias_at=3) -> None:
    """TRANSPOSE_CONV (output_shape, OHWI filter, input[, bias]) as ONNX ConvTranspose."""
    w, x = _operand(graph, op, weight_at, "filter"), _operand(graph, op, input_at, "input")
    x_shape, w_shape, out_shape = _rank4(graph, x, "input"), _rank4(graph, w, "filter"), _shape(graph, op.outputs[0])
    strides = _strides(op)
    pads = [0, 0, 0, 0]
    for axis in range(2):
        total = (x_shape[1 + axis] - 1) * strides[axis] + w_shape[1 + axis] - out_shape[1 + axis]
        if total < 0 or (op.option("padding", _SAME) == _VALID and total):
            graph.fail(f"output shape {list(out_shape)} does not follow from input {list(x_shape)} and filter {list(w_shape)}")
        pads[axis], pads[axis + 2] = total // 2, total - total // 2
    bias = op.input(bias_at)
    operands = [graph.value(w, (3, 0, 1, 2))] + ([graph.value(bias)] if bias is not None else [])
    y = _nchw(graph, graph.value(x), "ConvTranspose", operands, strides=strides, pads=pads,
              kernel_shape=list(w_shape[1:3]))
    _finish(graph, op, y, op.option("fusedActivationFunction"))


def _convolution_2d_transpose_bias(graph, op) -> None:
    """MediaPipe's custom op: (input, OHWI filter, bias); options are TfLiteTransposeConvParams
    (int32 padding as C's TfLitePadding, stride_width, stride_height) laid out in memory."""
    if len(op.custom) < 12:
        graph.fail("custom options are shorter than the 12 bytes of its parameters")
    padding, stride_w, stride_h = (int(v) for v in np.frombuffer(op.custom[:12], dtype="<i4"))
    if padding not in _TFLITE_C_PADDING or stride_w < 1 or stride_h < 1:
        graph.fail(f"custom options padding {padding}, strides {stride_w}x{stride_h} are not valid")
    op.options = type("Params", (), dict(padding=_TFLITE_C_PADDING[padding], strideW=stride_w, strideH=stride_h))()
    _transpose_conv(graph, op, weight_at=1, input_at=0, bias_at=2)


def _fully_connected(graph, op) -> None:
    x, w = _operand(graph, op, 0, "input"), _operand(graph, op, 1, "weights")
    w_shape = _shape(graph, w)
    if len(w_shape) != 2:
        graph.fail(f"weights must be 2-D [outputs, inputs], got {list(w_shape)}")
    units, depth = w_shape
    rows = int(np.prod(_shape(graph, x))) // depth
    flat = graph.value(x)
    if tuple(_shape(graph, x)) != (rows, depth):
        flat = graph.emit("Reshape", [flat, graph.emit_constant(np.array([rows, depth], np.int64), "shape")])
    bias = op.input(2)
    operands = [flat, graph.value(w)] + ([graph.value(bias)] if bias is not None else [])
    y = graph.emit("Gemm", operands, transB=1)
    out_shape = _shape(graph, op.outputs[0])
    if tuple(out_shape) != (rows, units):
        y = graph.emit("Reshape", [y, graph.emit_constant(np.array(out_shape, np.int64), "shape")])
    _finish(graph, op, y, op.option("fusedActivationFunction"))


# ---- pools, reductions, resize -----------------------------------------------------------

def _pool(graph, op, op_type: str) -> None:
    x = _operand(graph, op, 0, "input")
    x_shape = _rank4(graph, x, "input")
    kernel, strides = [op.option("filterHeight", 1), op.option("filterWidth", 1)], _strides(op)
    attrs = dict(kernel_shape=kernel, strides=strides, pads=_pads(graph, op, x_shape, kernel, strides, [1, 1]))
    if op_type == "AveragePool":
        attrs["count_include_pad"] = 0
    _finish(graph, op, _nchw(graph, graph.value(x), op_type, [], **attrs), op.option("fusedActivationFunction"))


def _mean(graph, op) -> None:
    x = _operand(graph, op, 0, "input")
    rank = len(_shape(graph, x))
    axes = sorted({int(a) % rank for a in np.ravel(graph.constant(_operand(graph, op, 1, "axes")))})
    y = graph.emit("ReduceMean", [graph.value(x)], axes=axes, keepdims=int(bool(op.option("keepDims", False))))
    _finish(graph, op, y)


def _resize(graph, op, mode: str) -> None:
    x = _operand(graph, op, 0, "input")
    _rank4(graph, x, "input")
    out = _shape(graph, op.outputs[0])
    align, half = bool(op.option("alignCorners", False)), bool(op.option("halfPixelCenters", False))
    if mode == "linear":
        transform = "align_corners" if align else "half_pixel" if half else "asymmetric"
        extra = {}
    else:
        transform = "align_corners" if align else "tf_half_pixel_for_nn" if half else "asymmetric"
        extra = dict(nearest_mode="round_prefer_ceil" if align else "floor")
    sizes = graph.emit_constant(np.array([out[0], out[3], out[1], out[2]], np.int64), "sizes")
    y = _nchw(graph, graph.value(x), "Resize", ["", "", sizes], mode=mode,
              coordinate_transformation_mode=transform, **extra)
    _finish(graph, op, y)


# ---- elementwise, shape ------------------------------------------------------------------

def _binary(onnx_type: str):
    def convert(graph, op):
        a, b = _operand(graph, op, 0, "first"), _operand(graph, op, 1, "second")
        _finish(graph, op, graph.emit(onnx_type, [graph.value(a), graph.value(b)]), op.option("fusedActivationFunction"))
    return convert


def _unary(onnx_type: str, **attrs):
    def convert(graph, op):
        _finish(graph, op, graph.emit(onnx_type, [graph.value(_operand(graph, op, 0, "input"))], **attrs))
    return convert


def _relu6(graph, op) -> None:
    _finish(graph, op, graph.value(_operand(graph, op, 0, "input")), 3)


def _leaky_relu(graph, op) -> None:
    _unary("LeakyRelu", alpha=float(op.option("alpha", 0.2)))(graph, op)


def _prelu(graph, op) -> None:
    x, alpha = _operand(graph, op, 0, "input"), _operand(graph, op, 1, "alpha")
    _finish(graph, op, graph.emit("PRelu", [graph.value(x), graph.value(alpha)]))


def _identity(graph, op) -> None:
    """QUANTIZE, DEQUANTIZE and DENSIFY: the float view is unchanged; define() requantises where
    the output is quantised, a float16 constant behind DEQUANTIZE becomes a float32 constant
    and a sparse constant (densified when read) a dense one."""
    x = _operand(graph, op, 0, "input")
    if graph.is_constant(x) and not graph.quantised_model:
        graph.tensor(op.outputs[0]).data = graph.constant(x).astype(np.float32) if graph.tensor(x).scale is None \
            else _dequantised_constant(graph, x)
        return
    graph.define(op.outputs[0], graph.value(x))


def _dequantised_constant(graph, index: int) -> np.ndarray:
    from compiler.frontend.tflite_graph import dequantised

    tensor = graph.tensor(index)
    return dequantised(tensor.data, tensor.scale, tensor.zero_point, tensor.axis)


def _reshape(graph, op) -> None:
    x = _operand(graph, op, 0, "input")
    shape = graph.emit_constant(np.array(_shape(graph, op.outputs[0]), np.int64), "shape")
    _finish(graph, op, graph.emit("Reshape", [graph.value(x), shape]))


def _concatenation(graph, op) -> None:
    rank = len(_shape(graph, op.outputs[0]))
    values = [graph.value(i) for i in op.inputs if i >= 0]
    y = graph.emit("Concat", values, axis=int(op.option("axis", 0)) % rank)
    _finish(graph, op, y, op.option("fusedActivationFunction"))


def _pad(graph, op) -> None:
    x = _operand(graph, op, 0, "input")
    paddings = np.asarray(graph.constant(_operand(graph, op, 1, "paddings")), np.int64).reshape(-1, 2)
    operands = [graph.value(x), graph.emit_constant(np.concatenate([paddings[:, 0], paddings[:, 1]]), "pads")]
    value = op.input(2)
    if value is not None:
        operands.append(graph.emit("Reshape", [graph.value(value), graph.emit_constant(np.array([], np.int64), "scalar")]))
    _finish(graph, op, graph.emit("Pad", operands))


def _depth_to_space(graph, op) -> None:
    x = _operand(graph, op, 0, "input")
    _rank4(graph, x, "input")
    y = _nchw(graph, graph.value(x), "DepthToSpace", [], blocksize=int(op.option("blockSize", 2)), mode="DCR")
    _finish(graph, op, y)


def _softmax(graph, op) -> None:
    x = graph.value(_operand(graph, op, 0, "input"))
    beta = float(op.option("beta", 1.0))
    if beta != 1.0:
        x = graph.emit("Mul", [x, graph.emit_constant(np.float32(beta), "beta")])
    _finish(graph, op, graph.emit("Softmax", [x], axis=-1))


def _strided_slice(graph, op) -> None:
    from compiler.frontend.tflite_slice import strided_slice

    strided_slice(graph, op, _operand)


OPERATORS = {
    "ADD": _binary("Add"), "SUB": _binary("Sub"), "MUL": _binary("Mul"),
    "CONV_2D": lambda g, op: _conv(g, op, depthwise=False),
    "DEPTHWISE_CONV_2D": lambda g, op: _conv(g, op, depthwise=True),
    "TRANSPOSE_CONV": _transpose_conv, "CUSTOM:Convolution2DTransposeBias": _convolution_2d_transpose_bias,
    "FULLY_CONNECTED": _fully_connected,
    "MAX_POOL_2D": lambda g, op: _pool(g, op, "MaxPool"), "AVERAGE_POOL_2D": lambda g, op: _pool(g, op, "AveragePool"),
    "MEAN": _mean,
    "RESIZE_BILINEAR": lambda g, op: _resize(g, op, "linear"),
    "RESIZE_NEAREST_NEIGHBOR": lambda g, op: _resize(g, op, "nearest"),
    "RELU": _unary("Relu"), "RELU6": _relu6, "LOGISTIC": _unary("Sigmoid"), "TANH": _unary("Tanh"),
    "HARD_SWISH": _unary("HardSwish"), "LEAKY_RELU": _leaky_relu, "PRELU": _prelu,
    "QUANTIZE": _identity, "DEQUANTIZE": _identity, "DENSIFY": _identity,
    "RESHAPE": _reshape, "SQUEEZE": _reshape, "EXPAND_DIMS": _reshape,
    "CONCATENATION": _concatenation, "PAD": _pad, "PADV2": _pad,
    "DEPTH_TO_SPACE": _depth_to_space, "SOFTMAX": _softmax, "STRIDED_SLICE": _strided_slice,
}
