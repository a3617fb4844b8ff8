"""Float layers of an int8 model in the .tflite export: what `--keep-float` kept, and float model
outputs the build leaves in float (a softmax at the output), as TFLite's float32 builtins.

One Relax op of main becomes one TFLite operator (a table, as the int8 emitters in tflite.py).
LiteRT's float kernels and TVM's compute the same functions with their own float rounding, so
an export with float layers agrees with the build within float rounding, not bit for bit
(export/verify.py states which of the two it checked).
"""

import numpy as np
from tvm import relax

from compiler.quant import qdq_reads as reads

_UNARY = {"relax.nn.relu": "RELU", "relax.sigmoid": "LOGISTIC", "relax.tanh": "TANH", "relax.exp": "EXP",
          "relax.sqrt": "SQRT", "relax.negative": "NEG", "relax.abs": "ABS"}
_BINARY = {"relax.add": "ADD", "relax.subtract": "SUB", "relax.multiply": "MUL", "relax.divide": "DIV",
           "relax.maximum": "MAXIMUM", "relax.minimum": "MINIMUM"}
FLOAT_OPS = {*_UNARY, *_BINARY, "relax.clip", "relax.nn.softmax", "relax.nn.conv2d", "relax.matmul", "relax.mean",
             "relax.nn.max_pool2d", "relax.nn.avg_pool2d", "relax.concat"}


def emit_float(ex, call: relax.Call, out: int, layer: str) -> None:
    """Write one float op of main (call) whose output tensor is `out`."""
    name = call.op.name
    if name in _UNARY:
        ex._op(_UNARY[name], [operand(ex, call.args[0], layer)], [out])
    elif name in _BINARY:
        ex._op(_BINARY[name], [operand(ex, arg, layer) for arg in call.args[:2]], [out])
    else:
        _OTHERS[name](ex, call, out, layer)


def operand(ex, expr, layer) -> int:
    """The tensor of a main var, or a float32 constant written for this layer."""
    array = constant(ex, expr)
    if array is not None:
        return ex._const(f"{layer}/const{len(ex.b.graph.tensors)}", array)
    return ex.tensors[expr]


def constant(ex, expr) -> np.ndarray | None:
    return reads.float_constant(expr, ex.folded)


def _clip(ex, call, out, layer) -> None:
    lo, hi = (reads.prim_float(v) for v in call.args[1:3])
    x = operand(ex, call.args[0], layer)
    fused = {(0.0, 6.0): "RELU6", (-1.0, 1.0): "RELU_N1_TO_1"}.get((lo, hi))
    if fused:
        ex._op(fused, [x], [out])
        return
    shape = list(ex.b.graph.tensors[out].shape)
    low = ex.b.tensor(f"{layer}/max", shape, "FLOAT32")
    ex._op("MAXIMUM", [x, ex._const(f"{layer}/lo", np.array(lo, np.float32))], [low])
    ex._op("MINIMUM", [low, ex._const(f"{layer}/hi", np.array(hi, np.float32))], [out])


def _softmax(ex, call, out, layer) -> None:
    if int(call.attrs.axis) not in (-1, len(reads.static_shape(call, "softmax")) - 1):
        raise reads.Unsupported("softmax along an axis that is not the last")
    ex._op("SOFTMAX", [operand(ex, call.args[0], layer)], [out], beta=1.0)


def _conv2d(ex, call, out, layer) -> None:
    from compiler.export.tflite import padded_input

    attrs = call.attrs
    if (str(attrs.data_layout), str(attrs.kernel_layout)) != ("NHWC", "OHWI"):
        raise reads.Unsupported(f"float conv2d in layout {attrs.data_layout}/{attrs.kernel_layout}")
    w = constant(ex, call.args[1])
    if w is None:
        raise reads.Unsupported("float conv2d of a weight that is not a constant")
    o, kh, kw, cg = w.shape
    c = reads.static_shape(call.args[0], "input")[3]
    groups = int(attrs.groups)
    (sh, sw), (dh, dw) = reads.ints(attrs.strides, 2), reads.ints(attrs.dilation, 2)
    x, padding = padded_input(ex, operand(ex, call.args[0], layer), call.args[0], reads.ints(attrs.padding, 4), (kh, kw),
                              (sh, sw), (dh, dw), layer)
    bias = ex._const(f"{layer}/bias", np.zeros(o, np.float32))
    options = dict(padding=padding, strideH=sh, strideW=sw, dilationHFactor=dh, dilationWFactor=dw,
                   fusedActivationFunction="NONE")
    if groups == 1:
        ex._op("CONV_2D", [x, ex._const(f"{layer}/weight", w), bias], [out], **options)
    elif groups == c and cg == 1:
        ex._op("DEPTHWISE_CONV_2D", [x, ex._const(f"{layer}/weight", w.transpose(3, 1, 2, 0)), bias], [out],
               depthMultiplier=o // c, **options)
    else:
        raise reads.Unsupported(f"a grouped float convolution ({groups} groups)")


def _matmul(ex, call, out, layer) -> None:
    w = constant(ex, call.args[1])
    if w is None or w.ndim != 2:
        raise reads.Unsupported("float matmul by something other than a constant [K, O] matrix")
    bias = ex._const(f"{layer}/bias", np.zeros(w.shape[1], np.float32))
    ex._op("FULLY_CONNECTED", [operand(ex, call.args[0], layer), ex._const(f"{layer}/weight", w.T.copy()), bias],
           [out], keepNumDims=len(reads.static_shape(call.args[0], "input")) > 2)


def _mean(ex, call, out, layer) -> None:
    rank = len(reads.static_shape(call.args[0], "input"))
    axes = sorted(int(v) % rank for v in call.attrs.axis) if call.attrs.axis is not None else list(range(rank))
    ex._op("MEAN", [operand(ex, call.args[0], layer), ex._const(f"{layer}/axes", np.array(axes, np.int32))], [out],
           keepDims=bool(call.attrs.keepdims))


def _pool(name):
    def emit(ex, call, out, layer):
        from compiler.export.tflite import padded_input

        attrs = call.attrs
        if str(attrs.layout) != "NHWC" or (name == "AVERAGE_POOL_2D" and bool(attrs.count_include_pad)
                                           and any(reads.ints(attrs.padding, 4))):
            raise reads.Unsupported(f"float {name.lower()} in layout {attrs.layout} or counting its padding")
        (kh, kw), (sh, sw) = reads.ints(attrs.pool_size, 2), reads.ints(attrs.strides, 2)
        x, padding = padded_input(ex, operand(ex, call.args[0], layer), call.args[0], reads.ints(attrs.padding, 4),
                                  (kh, kw), (sh, sw), (1, 1), layer, max_pool=name == "MAX_POOL_2D")
        ex._op(name, [x], [out], padding=padding, strideH=sh, strideW=sw, filterHeight=kh, filterWidth=kw,
               fusedActivationFunction="NONE")
    return emit


def _concat(ex, call, out, layer) -> None:
    rank = len(reads.static_shape(call, "output"))
    ex._op("CONCATENATION", [operand(ex, x, layer) for x in call.args[0].fields], [out],
           axis=int(call.attrs.axis) % rank)


_OTHERS = {"relax.clip": _clip, "relax.nn.softmax": _softmax, "relax.nn.conv2d": _conv2d, "relax.matmul": _matmul,
           "relax.mean": _mean, "relax.nn.max_pool2d": _pool("MAX_POOL_2D"),
           "relax.nn.avg_pool2d": _pool("AVERAGE_POOL_2D"), "relax.concat": _concat}
