"""Float layers of an int8 model in the QDQ ONNX export (export/onnx_qdq.py): a float softmax at the
output, layers kept float with --keep-float, and quantised layers the int8 kernels refused (whose
weights and biases are dequantized constants: `dequantized_constant`), as float ONNX operators.

One Relax op of main becomes one ONNX operator (a table, as tflite_float.py does for TFLite), in the
layout ONNX defines it on: Conv and the pools read and write NCHW (the exporter's `form` transposes
our NHWC tensors where a reader needs it), the others the tensor's own axis order. Vendors run these
in float (OpenVINO: f32 convolutions in its report), so the file agrees with the build within float
rounding there, not bit for bit.
"""

import numpy as np
from tvm import relax

from compiler.errors import CompilerError
from compiler.frontend.provenance import source_node
from compiler.quant import qdq_reads as reads

NCHW = (0, 3, 1, 2)  # physical axis j holds NHWC axis NCHW[j]
FLOAT_CONV_PREFIX = "float/"  # a float Conv node's name: the prefix and its layer (vendors' reports keep it)
_ELEMENTWISE = {"relax.nn.relu": "Relu", "relax.sigmoid": "Sigmoid", "relax.tanh": "Tanh", "relax.exp": "Exp",
                "relax.sqrt": "Sqrt", "relax.negative": "Neg", "relax.abs": "Abs", "relax.add": "Add",
                "relax.subtract": "Sub", "relax.multiply": "Mul", "relax.divide": "Div", "relax.maximum": "Max",
                "relax.minimum": "Min"}


class FloatExportError(CompilerError):
    pass


def emit_float(ex, call: relax.Call, var) -> None:
    """Write float op `call` of main, bound to `var`; ex.float_layers gets its layer once."""
    _EMITTERS.get(call.op.name, _elementwise)(ex, call, var)
    layer = source_node(call) or var.name
    if layer not in ex.float_layers:
        ex.float_layers.append(layer)


def operand(ex, expr, var, perm=None) -> str:
    """The ONNX tensor of a main var (in `perm`, its own axis order if None), or a float32 constant."""
    array = constant(ex, expr, var)
    if array is not None:
        return ex.const(f"{var.name}/const", array)
    return ex.form(expr, perm if perm is not None else identity(expr))


def constant(ex, expr, var) -> np.ndarray | None:
    try:
        return reads.float_constant(expr, ex.folded)
    except reads.Unsupported as err:
        raise FloatExportError(f"float layer {var.name}: {err}") from None


def identity(var) -> tuple:
    """A var's own axis order (the form key of a tensor written as it is)."""
    return tuple(range(len(reads.static_shape(var, var.name))))


def _elementwise(ex, call, var) -> None:
    name = call.op.name
    if name not in _ELEMENTWISE:
        raise FloatExportError(f"float layer {source_node(call) or var.name} runs {name}")
    ex.forms[var] = {identity(var): ex._node(_ELEMENTWISE[name], [operand(ex, arg, var) for arg in call.args],
                                         ex._name(var.name))}


def _clip(ex, call, var) -> None:
    lo, hi = (reads.prim_float(v) for v in call.args[1:3])
    ex.forms[var] = {identity(var): ex._node("Clip", [operand(ex, call.args[0], var),
                                                  ex.const(f"{var.name}/min", np.array(lo, np.float32)),
                                                  ex.const(f"{var.name}/max", np.array(hi, np.float32))],
                                         ex._name(var.name))}


def _softmax(ex, call, var) -> None:
    ex.forms[var] = {identity(var): ex._node("Softmax", [operand(ex, call.args[0], var)], ex._name(var.name),
                                         axis=int(call.attrs.axis))}


# conv2d layouts (data, kernel, out) -> (the axis order ONNX's NCHW reads our tensors in, OHWI -> OIHW or none)
_CONV_LAYOUTS = {("NHWC", "OHWI", "NHWC"): (NCHW, (0, 3, 1, 2)), ("NCHW", "OIHW", "NCHW"): ((0, 1, 2, 3), None)}


def _conv2d(ex, call, var) -> None:
    attrs = call.attrs
    layout = _CONV_LAYOUTS.get((str(attrs.data_layout), str(attrs.kernel_layout), str(attrs.out_layout)))
    if layout is None:
        raise FloatExportError(f"float conv2d {var.name} in layout {attrs.data_layout}/{attrs.kernel_layout}")
    perm, weight_perm = layout
    w = constant(ex, call.args[1], var)
    if w is None:
        raise FloatExportError(f"float conv2d {var.name} of a weight that is not a constant")
    kernel_shape = w.shape[1:3] if weight_perm else w.shape[2:4]
    w = w.transpose(weight_perm) if weight_perm else w
    top, left, bottom, right = reads.ints(attrs.padding, 4)
    y = ex._node("Conv", [operand(ex, call.args[0], var, perm), ex.const(f"{var.name}/weight", w)],
                 node_name=FLOAT_CONV_PREFIX + (source_node(call) or var.name),
                 kernel_shape=list(kernel_shape), strides=list(reads.ints(attrs.strides, 2)),
                 dilations=list(reads.ints(attrs.dilation, 2)), pads=[top, left, bottom, right],
                 group=int(attrs.groups))
    ex.forms[var] = {perm: y}


def _matmul(ex, call, var) -> None:
    w = constant(ex, call.args[1], var)
    if w is None or w.ndim != 2:
        raise FloatExportError(f"float matmul {var.name} by something other than a constant [K, O] matrix")
    ex.forms[var] = {identity(var): ex._node("MatMul", [operand(ex, call.args[0], var),
                                                    ex.const(f"{var.name}/weight", w)])}


def _mean(ex, call, var) -> None:
    x = call.args[0]
    rank = len(reads.static_shape(x, "input"))
    axes = sorted(int(v) % rank for v in call.attrs.axis) if call.attrs.axis is not None else list(range(rank))
    keep = bool(call.attrs.keepdims)
    y = ex._node("ReduceMean", [operand(ex, x, var)], axes=axes, keepdims=int(keep))
    ex.forms[var] = {identity(var): y}


def _pool(name):
    def emit(ex, call, var):
        attrs = call.attrs
        perm = {"NHWC": NCHW, "NCHW": (0, 1, 2, 3)}.get(str(attrs.layout))
        if perm is None or str(attrs.out_layout) != str(attrs.layout):
            raise FloatExportError(f"float pool {var.name} in layout {attrs.layout}")
        options = dict(kernel_shape=list(reads.ints(attrs.pool_size, 2)), strides=list(reads.ints(attrs.strides, 2)),
                       pads=list(reads.ints(attrs.padding, 4)), ceil_mode=int(bool(attrs.ceil_mode)))
        if name == "MaxPool":
            options["dilations"] = list(reads.ints(attrs.dilation, 2))
        elif reads.ints(attrs.dilation, 2) != (1, 1):
            raise FloatExportError(f"float average pool {var.name} is dilated (AveragePool at opset 13 is not)")
        else:
            options["count_include_pad"] = int(bool(attrs.count_include_pad))
        ex.forms[var] = {perm: ex._node(name, [operand(ex, call.args[0], var, perm)], **options)}
    return emit


def _concat(ex, call, var) -> None:
    rank = len(reads.static_shape(var, var.name))
    ex.forms[var] = {identity(var): ex._node("Concat", [operand(ex, x, var) for x in call.args[0].fields],
                                         axis=int(call.attrs.axis) % rank)}


def onnx_pads(pad_attrs, perm: tuple) -> np.ndarray:
    """relax.nn.pad's pad_width ([before, after] per axis) as ONNX Pad's pads (every axis's before,
    then every after) for the tensor in axis order `perm`."""
    width = reads.ints(pad_attrs.pad_width, 2 * len(perm))
    return np.array([width[2 * axis] for axis in perm] + [width[2 * axis + 1] for axis in perm], np.int64)


def _pad(ex, call, var) -> None:
    attrs = call.attrs
    if str(attrs.pad_mode) != "constant":
        raise FloatExportError(f"float pad {var.name} in mode {attrs.pad_mode}")
    x = call.args[0]
    perm = ex.home(x) if x in ex.forms else identity(x)  # pad the tensor in the form it was written in
    inputs = [operand(ex, x, var, perm), ex.const(f"{var.name}/pads", onnx_pads(attrs, perm)),
              ex.const(f"{var.name}/value", np.array(float(attrs.pad_value), np.float32))]
    ex.forms[var] = {perm: ex._node("Pad", inputs, mode="constant")}


_EMITTERS = {"relax.clip": _clip, "relax.nn.pad": _pad, "relax.nn.softmax": _softmax, "relax.nn.conv2d": _conv2d,
             "relax.matmul": _matmul, "relax.mean": _mean, "relax.nn.max_pool2d": _pool("MaxPool"),
             "relax.nn.avg_pool2d": _pool("AveragePool"), "relax.concat": _concat}
FLOAT_OPS = {*_ELEMENTWISE, *_EMITTERS}
