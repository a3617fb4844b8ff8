"""`build --emit tflite`: the compiler's int8 model written as a .tflite of builtin int8 operators.

What is written is the QDQ module the int8 build runs (after our calibration, fusion and
layout passes), one TFLite operator per int8 group of the pattern table (quant/patterns.py):
the group's own scales, zero points, int8 weights and int32 biases, in TFLite's layouts. The
build compiles with the TFLite integer spec (quant/integer_spec.py), so LiteRT's built-in kernels
compute the same integers as our kernels and the file's outputs equal the build's bit for bit
(export/verify.py checks that on every build).

Where TFLite has no builtin for what a group computes, the export says so in one line naming the
layer, rather than writing an approximation: an elementwise function that is not one of
LiteRT's own tables (HARD_SWISH, LOGISTIC, TANH) is written as the table lookup it is
(CAST -> ADD 128 -> GATHER), which LiteRT computes exactly.
"""

from dataclasses import dataclass

import numpy as np
import tvm
from tvm import relax

from compiler.codegen.int8 import int8_groups
from compiler.errors import CompilerError
from compiler.export.tflite_float import FLOAT_OPS, emit_float
from compiler.export.qdq_walk import QParamPlan, main_bindings, main_outputs
from compiler.export.qdq_walk import is_composite_call as _is_composite_call, is_op as _is_op
from compiler.export.qdq_walk import layer_name as _layer_name, moves as _moves
from compiler.export.tflite_writer import TFLiteBuilder
from compiler.frontend.provenance import source_node
from compiler.quant import patterns
from compiler.quant import qdq_reads as reads
from compiler.quant.lowering import checked_bias, slice_window
from compiler.quant.integer_spec import TFLITE
from compiler.quant.reference.tflite_tables import hard_swish_table, logistic_table, tanh_table

# Operator versions for int8 operands (TFLite's op_version.cc): what LiteRT, TFLite Micro and Vela
# expect of a converter's int8 model. Operators not listed are version 1.
INT8_VERSIONS = {"CONV_2D": 3, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 4, "ADD": 2, "SUB": 2, "MUL": 2,
                 "AVERAGE_POOL_2D": 2, "MAX_POOL_2D": 2, "CONCATENATION": 2, "MEAN": 2, "PAD": 2, "PADV2": 2,
                 "SOFTMAX": 2, "LOGISTIC": 2, "TANH": 2, "TRANSPOSE": 2, "STRIDED_SLICE": 2, "DEQUANTIZE": 2,
                 "GATHER": 2, "RESIZE_BILINEAR": 2, "RESIZE_NEAREST_NEIGHBOR": 2, "RELU": 2, "RELU6": 2,
                 "RELU_N1_TO_1": 2}
_DTYPES = {"float32": "FLOAT32", "int8": "INT8", "int32": "INT32", "uint8": "UINT8"}
# TFLite's fused activations, as the clamp each is (a bound None: none)
_FUSED = {"NONE": (None, None), "RELU": (0.0, None), "RELU_N1_TO_1": (-1.0, 1.0), "RELU6": (0.0, 6.0)}


class ExportError(CompilerError):
    pass


@dataclass
class Exported:
    data: bytes               # the .tflite file
    float_layers: list[str]   # layers written as float32 operators (--keep-float, a float softmax output)


def export_tflite(qdq: tvm.IRModule) -> Exported:
    """The .tflite of a QDQ-form int8 module (quant/qdq.py, NHWC)."""
    exporter = _Exporter(int8_groups(qdq, TFLITE))
    return Exported(exporter.run(), exporter.float_layers)


class _Exporter:
    def __init__(self, mod: tvm.IRModule):
        self.mod, self.b = mod, TFLiteBuilder()
        self.tensors: dict = {}   # relax var -> TFLite tensor index
        self.qparams: dict = {}   # int8 relax var -> (scale, zero point)
        self.float_layers: list[str] = []  # layers written as float32 operators
        self.folded: dict = {}    # relax var -> float32 array: a dequantized constant a float layer reads

    def run(self) -> bytes:
        main = self.mod["main"]
        bindings = main_bindings(self.mod)
        plan = QParamPlan(self.mod, bindings, "--emit tflite")
        self.qparams, self._integer_shift, self._is_widening_step = plan.qparams, plan.integer_shift, plan.is_widening_step
        for param in main.params:
            self.b.graph.inputs.append(self._tensor(param))
        for binding in bindings:
            self._emit(binding)
        for out in main_outputs(self.mod):
            self.b.output(self.tensors[out])
        return self.b.bytes()

    # -- tensors ------------------------------------------------------------------------------

    def _tensor(self, var, name=None) -> int:
        """A TFLite tensor for relax var `var` (its shape, dtype and, if int8, scale and zero point)."""
        dtype = str(var.ty.dtype)
        if dtype not in _DTYPES:
            raise ExportError(f"--emit tflite: tensor {var.name} is {dtype}; TFLite export writes int8 and float32")
        quant = {}
        if dtype in ("int8", "uint8"):
            if var not in self.qparams:
                raise ExportError(f"--emit tflite: int8 tensor {var.name} has no scale (no quantize writes it, "
                                  "no dequantize reads it)")
            scale, zero_point = self.qparams[var]
            quant = dict(scale=scale, zero_point=zero_point)
        index = self.b.tensor(name or var.name, reads.static_shape(var, var.name), _DTYPES[dtype], **quant)
        self.tensors[var] = index
        return index

    def _const(self, name, array, **quant) -> int:
        return self.b.constant(name, np.ascontiguousarray(array), **quant)

    def _op(self, name, inputs, outputs, **options):
        self.b.op(name, inputs, outputs, version=INT8_VERSIONS.get(name, 1), **options)

    # -- bindings -----------------------------------------------------------------------------

    def _emit(self, binding) -> None:
        value, var = binding.value, binding.var
        if isinstance(value, relax.Var):
            self.tensors[var] = self.tensors[value]
        elif _is_composite_call(self.mod, value):
            func = self.mod[value.op]
            row, a = patterns.match_composite(func)
            args = {param: self.tensors[arg] for param, arg in zip(func.params, value.args)}
            layer = _layer_name(func) or var.name
            try:
                kernel = patterns.lower(row, a, TFLITE)  # the build's own checks: what it runs is what is written
                _COMPOSITES[row.kernel](self, a, kernel, args, self._tensor(var, layer), layer)
            except reads.Unsupported as err:
                raise ExportError(f"--emit tflite: layer {layer}: {err}") from None
        elif isinstance(value, relax.Call) and _moves(value):
            self._move(value, var)
        elif self._integer_shift(value) is not None:
            self._op("QUANTIZE", [self.tensors[self._integer_shift(value)[0]]], [self._tensor(var)])
        elif self._is_widening_step(value):
            pass  # inside an integer shift (written as one QUANTIZE above)
        elif _is_op(value, "relax.dequantize") and reads.is_const(value.args[0]):
            self.folded[var] = reads.dequantized_constant(value)  # a quantised layer the int8 kernels refused
        elif isinstance(value, relax.Call) and isinstance(value.op, tvm.ir.Op) and value.op.name in FLOAT_OPS:
            layer = source_node(value) or var.name
            try:
                emit_float(self, value, self._tensor(var, layer), layer)
            except reads.Unsupported as err:
                raise ExportError(f"--emit tflite: float layer {layer}: {err}") from None
            if layer not in self.float_layers:  # a layer of several float ops (conv, then its bias add)
                self.float_layers.append(layer)
        else:
            what = value.op.name if isinstance(value, relax.Call) and isinstance(value.op, tvm.ir.Op) else type(value)
            layer = source_node(value) if isinstance(value, relax.Call) else None
            raise ExportError(f"--emit tflite: layer {layer or var.name} runs {what}, which the TFLite export does "
                              "not write (int8 kernels, moves and common float operators only)")

    def _move(self, call, var) -> None:
        x = self.tensors[call.args[0]]
        out = self._tensor(var)
        if call.op.name == "relax.reshape":
            shape = reads.static_shape(var, "reshape")
            self._op("RESHAPE", [x, self._const(f"{var.name}/shape", np.array(shape, np.int32))], [out],
                     newShape=list(shape))
        else:
            perm = [int(v) for v in call.attrs.axes] if call.attrs.axes is not None else \
                list(range(len(reads.static_shape(var, "transpose"))))[::-1]
            self._op("TRANSPOSE", [x, self._const(f"{var.name}/perm", np.array(perm, np.int32))], [out])

    def input_of(self, args, dq) -> int:
        """The TFLite tensor of a dequantized composite parameter."""
        return args[dq.args[0]]


# ---------------------------------------------------------------------------------------------
# One emitter per int8 kernel: (exporter, annotated calls, lowered kernel, composite param -> tensor,
# output tensor, layer name)


def _conv2d(ex, a, kernel, args, out, layer) -> None:
    attrs = a["op"].attrs
    x_var = a["x"].args[0]
    x = ex.input_of(args, a["x"])
    s_x = reads.tensor_scale(a["x"].args[1])
    w_q = reads.const_array(a["w"].args[0], "int8", "weight")
    o, kh, kw, cg = w_q.shape
    n, h, w, c = reads.static_shape(x_var, "input")
    groups = int(attrs.groups)
    s_w = reads.channel_scales(a["w"], o, 0, "weight")
    bias = checked_bias(a["b"], s_x, s_w, o, "conv2d") if "b" in a else np.zeros(o, np.int32)
    (sh, sw), (dh, dw) = reads.ints(attrs.strides, 2), reads.ints(attrs.dilation, 2)
    x, padding = padded_input(ex, x, x_var, reads.ints(attrs.padding, 4), (kh, kw), (sh, sw), (dh, dw), layer)
    bias_t = ex._const(f"{layer}/bias", bias, scale=(np.float64(s_x) * s_w.astype(np.float64)).astype(np.float32),
                       axis=0)
    options = dict(padding=padding, strideH=sh, strideW=sw, dilationHFactor=dh, dilationWFactor=dw,
                   fusedActivationFunction=_fused_activation(a, layer))
    if groups == 1:
        weight = ex._const(f"{layer}/weight", w_q, scale=s_w, axis=0)
        ex._op("CONV_2D", [x, weight, bias_t], [out], **options)
    elif groups == c and cg == 1:
        weight = ex._const(f"{layer}/weight", w_q.transpose(3, 1, 2, 0), scale=s_w, axis=3)
        ex._op("DEPTHWISE_CONV_2D", [x, weight, bias_t], [out], depthMultiplier=o // c, **options)
    else:
        raise reads.Unsupported(f"a grouped convolution ({groups} groups of {cg} channels) has no int8 TFLite builtin")


def _dense(ex, a, kernel, args, out, layer) -> None:
    x_var = a["x"].args[0]
    s_x = reads.tensor_scale(a["x"].args[1])
    w_q = reads.const_array(a["w"].args[0], "int8", "weight")  # [K, O]
    o = w_q.shape[1]
    s_w = reads.channel_scales(a["w"], o, 1, "weight")
    bias = checked_bias(a["b"], s_x, s_w, o, "dense") if "b" in a else np.zeros(o, np.int32)
    per_tensor = bool(np.all(s_w == s_w[0]))
    weight = ex._const(f"{layer}/weight", w_q.T, scale=s_w[:1] if per_tensor else s_w, axis=0)
    s_b = (np.float64(s_x) * s_w.astype(np.float64)).astype(np.float32)
    bias_t = ex._const(f"{layer}/bias", bias, scale=s_b[:1] if per_tensor else s_b, axis=0)
    ex._op("FULLY_CONNECTED", [ex.input_of(args, a["x"]), weight, bias_t], [out],
           fusedActivationFunction=_fused_activation(a, layer), keepNumDims=len(reads.static_shape(x_var, "input")) > 2)


def _binary(name):
    def emit(ex, a, kernel, args, out, layer):
        op_name = "SUB" if _is_op(a["op"], "relax.subtract") else name
        options = dict(fusedActivationFunction=_fused_activation(a, layer)) if op_name != "MUL" else {}
        ex._op(op_name, [ex.input_of(args, a["x"]), ex.input_of(args, a["y"])], [out], **options)
    return emit


def _concat(ex, a, kernel, args, out, layer) -> None:
    inputs = [ex.input_of(args, a[key]) for key in sorted((k for k in a if k[0] == "x" and k[1:].isdigit()),
                                                          key=lambda k: int(k[1:]))]
    rank = len(reads.static_shape(a["op"], "output"))
    ex._op("CONCATENATION", inputs, [out], axis=int(a["op"].attrs.axis) % rank)


def _requantize(ex, a, kernel, args, out, layer) -> None:
    """A ReLU / clip on its own: TFLite's int8 RELU, RELU6 or RELU_N1_TO_1 (a rescale, then the clamp)."""
    name = _fused_activation(a, layer)
    if name == "NONE":
        ex._op("QUANTIZE", [ex.input_of(args, a["x"])], [out])
    else:
        ex._op(name, [ex.input_of(args, a["x"])], [out])


def _mean(ex, a, kernel, args, out, layer) -> None:
    ex._op("MEAN", [ex.input_of(args, a["x"]), ex._const(f"{layer}/axes", np.array([1, 2], np.int32))], [out],
           keepDims=bool(a["op"].attrs.keepdims))


def _pool(name):
    def emit(ex, a, kernel, args, out, layer):
        attrs = a["op"].attrs
        (kh, kw), (sh, sw) = reads.ints(attrs.pool_size, 2), reads.ints(attrs.strides, 2)
        x, padding = padded_input(ex, ex.input_of(args, a["x"]), a["x"].args[0], reads.ints(attrs.padding, 4), (kh, kw),
                                  (sh, sw), (1, 1), layer, max_pool=name == "MAX_POOL_2D")
        ex._op(name, [x], [out], padding=padding, strideH=sh, strideW=sw, filterHeight=kh, filterWidth=kw,
               fusedActivationFunction="NONE")
    return emit


def _pad(ex, a, kernel, args, out, layer) -> None:
    rank = len(reads.static_shape(a["x"].args[0], "input"))
    widths = np.stack([kernel.params["pad_before"], kernel.params["pad_after"]], axis=1)[-rank:].astype(np.int32)
    ex._op("PAD", [ex.input_of(args, a["x"]), ex._const(f"{layer}/paddings", widths)], [out])


def _lut(ex, a, kernel, args, out, layer) -> None:
    """LiteRT's own HARD_SWISH / LOGISTIC / TANH when the table is theirs, else the lookup itself."""
    x_var = kernel.inputs[0]
    x = args[x_var]
    (s_x, zp_x), (s_y, zp_y) = _qparams(ex, x), _qparams(ex, out)
    table = kernel.arrays["table"]
    for name, build, fixed in (("HARD_SWISH", hard_swish_table, None), ("LOGISTIC", logistic_table, (1 / 256, -128)),
                               ("TANH", tanh_table, (1 / 128, 0))):
        if (fixed is None or (np.float32(fixed[0]), fixed[1]) == (np.float32(s_y), zp_y)) and np.array_equal(
                _litert_table(build, s_x, zp_x, s_y, zp_y), table):
            ex._op(name, [x], [out])
            return
    shape = list(ex.b.graph.tensors[out].shape)
    wide = ex.b.tensor(f"{layer}/int32", shape, "INT32")
    ex._op("CAST", [x], [wide], inDataType=9, outDataType=2)  # TensorType INT8 -> INT32
    index = ex.b.tensor(f"{layer}/index", shape, "INT32")
    ex._op("ADD", [wide, ex._const(f"{layer}/offset", np.array(128, np.int32))], [index],
           fusedActivationFunction="NONE")
    params = ex._const(f"{layer}/table", table, scale=s_y, zero_point=zp_y)
    ex._op("GATHER", [params, index], [out], axis=0)


def _litert_table(build, s_x, zp_x, s_y, zp_y):
    """LiteRT's table of an operator at these scales, or None where LiteRT refuses them (HARD_SWISH
    with an output scale below 1/128 of the input's: a positive output exponent): the lookup then
    goes in as the GATHER below, the same values."""
    try:
        return build(s_x, zp_x, s_y, zp_y)
    except ValueError:
        return None


def _prelu(ex, a, kernel, args, out, layer) -> None:
    _, s_alpha, zp_alpha = reads.activation_input(a["alpha_dq"])
    alpha = ex._const(f"{layer}/alpha", kernel.arrays["alpha"], scale=s_alpha, zero_point=zp_alpha)
    ex._op("PRELU", [ex.input_of(args, a["x"]), alpha], [out])


def _resize_bilinear(ex, a, kernel, args, out, layer) -> None:
    mode = str(a["op"].attrs.coordinate_transformation_mode)
    flags = {"align_corners": (True, False), "half_pixel": (False, True), "asymmetric": (False, False)}
    if mode not in flags:
        raise reads.Unsupported(f"bilinear resize with coordinate mode {mode} has no TFLite option")
    size = np.array([kernel.params["out_h"], kernel.params["out_w"]], np.int32)
    ex._op("RESIZE_BILINEAR", [ex.input_of(args, a["x"]), ex._const(f"{layer}/size", size)], [out],
           alignCorners=flags[mode][0], halfPixelCenters=flags[mode][1])


def _resize_nearest(ex, a, kernel, args, out, layer) -> None:
    q = kernel.params
    for align, half in ((False, False), (False, True), (True, False)):
        if (np.array_equal(_tflite_nearest(q["in_h"], q["out_h"], align, half), kernel.arrays["y_index"]) and
                np.array_equal(_tflite_nearest(q["in_w"], q["out_w"], align, half), kernel.arrays["x_index"])):
            size = np.array([q["out_h"], q["out_w"]], np.int32)
            ex._op("RESIZE_NEAREST_NEIGHBOR", [args[kernel.inputs[0]], ex._const(f"{layer}/size", size)], [out],
                   alignCorners=align, halfPixelCenters=half)
            return
    raise reads.Unsupported("this nearest resize reads rows TFLite's RESIZE_NEAREST_NEIGHBOR does not (coordinate mode "
                        f"{a['op'].attrs.coordinate_transformation_mode}, rounding {a['op'].attrs.rounding_method})")


def _tflite_nearest(in_size, out_size, align_corners, half_pixel) -> np.ndarray:
    """TFLite's ResizeNearestNeighbor source index per output index (float32, as its kernel)."""
    scale = np.float32((in_size - 1) / (out_size - 1) if align_corners and out_size > 1 else in_size / out_size)
    offset = np.float32(0.5 if half_pixel else 0.0)
    coord = (np.arange(out_size, dtype=np.float32) + offset) * scale
    index = np.where(coord >= 0, np.floor(coord + 0.5), -np.floor(-coord + 0.5)) if align_corners else np.floor(coord)
    index = np.minimum(index.astype(np.int64), in_size - 1)
    return np.maximum(index, 0) if half_pixel else index


def _copy(ex, a, kernel, args, out, layer) -> None:
    op = a["op"]
    x_var = op.args[0]
    begin, end, steps = slice_window(op, reads.static_shape(x_var, "input"))
    consts = [ex._const(f"{layer}/{what}", np.array(v, np.int32)) for what, v in
              (("begin", begin), ("end", end), ("strides", steps))]
    ex._op("STRIDED_SLICE", [args[x_var], *consts], [out])


def _softmax(ex, a, kernel, args, out, layer) -> None:
    ex._op("SOFTMAX", [ex.input_of(args, a["x"])], [out], beta=1.0)


def _quantize(ex, a, kernel, args, out, layer) -> None:
    ex._op("QUANTIZE", [args[a["op"].args[0]]], [out])


def _dequantize(ex, a, kernel, args, out, layer) -> None:
    ex._op("DEQUANTIZE", [args[a["op"].args[0]]], [out])


_COMPOSITES = {
    "conv2d": _conv2d, "dense": _dense, "add": _binary("ADD"), "mul": _binary("MUL"), "concat": _concat,
    "requantize": _requantize, "global_avg_pool2d": _mean, "max_pool2d": _pool("MAX_POOL_2D"),
    "avg_pool2d": _pool("AVERAGE_POOL_2D"), "pad": _pad, "lut": _lut, "prelu": _prelu,
    "resize_bilinear": _resize_bilinear, "resize_nearest": _resize_nearest, "copy": _copy, "softmax": _softmax,
    "quantize": _quantize, "dequantize": _dequantize,
}


# ---------------------------------------------------------------------------------------------
# Helpers


def padded_input(ex, x: int, x_var, pads, kernel, strides, dilation, layer, max_pool=False) -> tuple[int, str]:
    """(input tensor, TFLite padding) for a window op with explicit pads (top, left, bottom, right):
    VALID or SAME when the pads are theirs, else a PAD in front of a VALID op (an int8 tensor pads
    with its zero point, which is what an int8 conv pads with) or, for a max pool, a PADV2 of the
    lowest value (never the maximum of a window that holds a real value: lower() checks)."""
    top, left, bottom, right = pads
    if not any(pads):
        return x, "VALID"
    n, h, w, c = reads.static_shape(x_var, "input")
    if _same_pads(h, kernel[0], strides[0], dilation[0]) == (top, bottom) and \
            _same_pads(w, kernel[1], strides[1], dilation[1]) == (left, right):
        return x, "SAME"
    source = ex.b.graph.tensors[x]
    int8 = source.quantization is not None and len(source.quantization.scale or []) > 0
    quant = dict(zip(("scale", "zero_point"), _qparams(ex, x))) if int8 else {}
    padded = ex.b.tensor(f"{layer}/padded", [n, h + top + bottom, w + left + right, c], "INT8" if int8 else "FLOAT32",
                         **quant)
    widths = ex._const(f"{layer}/paddings", np.array([[0, 0], [top, bottom], [left, right], [0, 0]], np.int32))
    if max_pool:
        lowest = np.array(-128, np.int8) if int8 else np.array(np.finfo(np.float32).min, np.float32)
        ex._op("PADV2", [x, widths, ex._const(f"{layer}/pad_value", lowest, **quant)], [padded])
    else:
        ex._op("PAD", [x, widths], [padded])
    return padded, "VALID"


def _same_pads(size, kernel, stride, dilation) -> tuple[int, int]:
    """TFLite's SAME padding (before, after) of one spatial axis."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _fused_activation(a, layer) -> str:
    """The TFLite fused activation whose int8 clamp equals the group's (CalculateActivationRangeQuantized)."""
    s_y, zp_y = reads.output_qparams(a["quant"])
    wanted = reads.act_range(a.get("act"), s_y, zp_y)
    for name, (lo, hi) in _FUSED.items():
        bounds = (max(reads.INT8_MIN, reads.quantize_bound(lo, s_y, zp_y)) if lo is not None else reads.INT8_MIN,
                  min(reads.INT8_MAX, reads.quantize_bound(hi, s_y, zp_y)) if hi is not None else reads.INT8_MAX)
        if bounds == wanted:
            return name
    raise reads.Unsupported(f"its activation clamps to int8 [{wanted[0]}, {wanted[1]}], which no TFLite fused "
                        "activation (RELU, RELU6, RELU_N1_TO_1) does at this output scale")


def _qparams(ex, tensor: int) -> tuple:
    """(scale, zero point) of an int8 TFLite tensor."""
    quant = ex.b.graph.tensors[tensor].quantization
    return quant.scale[0], quant.zeroPoint[0]
