"""Our int8 model as an explicit-quantisation QDQ ONNX model: `export_onnx_qdq(qdq_module)`.

What is written is the QDQ module the int8 build runs (compiled.qdq: after our calibration, BN
folding, fusion and layout passes; quant/qdq.py), one group of ONNX nodes per int8 group of the
pattern table (quant/patterns.py), with the group's own scales, zero points, int8 weights and int32
biases. It is the form TensorRT's explicit quantisation, OpenVINO's ONNX frontend, ONNX Runtime's
QDQ fusions and the Ascend / Sophon toolchains consume:

    x_q -> DequantizeLinear(s_x, zp_x) --\\
    W_q (int8 initializer, OIHW) -> DequantizeLinear(s_w[O], 0, axis 0) -> Conv -> Relu | Clip -> QuantizeLinear(s_y, zp_y)
    B_q (int32 initializer [O]) -> DequantizeLinear(s_x * s_w[O], 0, axis 0) --/

Every activation is an int8 tensor between a QuantizeLinear and the DequantizeLinear of each reader
(our scales and zero points), every weight an int8 initializer behind a per-channel
DequantizeLinear (axis 0 for Conv, the output axis for MatMul / Gemm), every bias an int32
initializer behind a DequantizeLinear of scale s_x * s_w (or, with `bias="float"`, the float32 value
it dequantizes to: TensorRT's DequantizeLinear takes int8 but not int32), and the compute ops
between are float ONNX ops. Ops that only move int8 values (reshape, transpose, slice, nearest
resize) run on the int8 tensor itself.

Layout: the graph's inputs and outputs are the model's own (NCHW for an ONNX CNN); our NHWC
internal tensors are written NCHW wherever ONNX defines an op on NCHW (Conv, pools, global mean,
Resize, PRelu's channel slope): weights are transposed OHWI -> OIHW and a tensor is transposed only
where a reader needs another layout than its writer gave it (a Transpose of the int8 tensor; a
chain of convolutions, pools and adds has none).

Table lookups (our int8 tables for sigmoid, tanh, hard-swish, ...; quant/reference/lut.py) have no
QDQ ONNX operator. The export recognises the table of a known function (sigmoid, tanh, hard-swish,
hard-sigmoid, SiLU, ELU, GELU, leaky ReLU at common slopes: the function at the table's scales gives
the table, give or take one step at <= 4 inputs) and writes that float function between DQ and Q,
which vendors fuse; it then computes in float and rounds once, so its output may differ from our
table by 1 LSB. Any other table is written as the lookup itself (Cast -> Add 128 -> Gather of the
int8 table), which ONNX Runtime and OpenVINO compute exactly. `ExportedOnnx.float_functions` lists
the layers written as float functions.

Float ops of the int8 module (a float softmax at the output; layers kept float with --keep-float;
quantised layers the int8 kernels refused, their weights dequantized) are written as float ONNX
operators (export/onnx_float.py; `float_layers`); any other op that is not an int8 group, a move or
an integer shift of uint8 I/O is an ExportError naming the layer.

Checked in ONNX Runtime (tests/e2e/test_onnx_qdq_export.py): within 1 LSB of the host int8 build
built with the ONNX integer spec (ORT's QDQ arithmetic rounds once, as that spec does).
"""

import math
from dataclasses import dataclass, field

import numpy as np
import onnx
import tvm
from onnx import TensorProto, helper, numpy_helper
from tvm import relax

from compiler.codegen.int8 import int8_groups
from compiler.errors import CompilerError
from compiler.export.onnx_float import FLOAT_OPS, NCHW, FloatExportError, emit_float, onnx_pads
from compiler.export.onnx_float import identity as _identity
from compiler.export.qdq_walk import (QParamPlan, is_composite_call, is_op, layer_name, main_bindings, main_outputs,
                                      moves)
from compiler.frontend.provenance import source_node
from compiler.quant import patterns
from compiler.quant import qdq_reads as reads
from compiler.quant.integer_spec import ONNX
from compiler.quant.lowering import slice_window
from compiler.quant.reference.lut import unary_table

OPSET = 13  # per-axis QuantizeLinear / DequantizeLinear; the newest opset every vendor frontend here reads
IR_VERSION = 7
WHAT = "QDQ ONNX export"
_DTYPES = {"float32": TensorProto.FLOAT, "int8": TensorProto.INT8, "uint8": TensorProto.UINT8,
           "int32": TensorProto.INT32}


class ExportError(CompilerError):
    pass


@dataclass
class ExportedOnnx:
    model: onnx.ModelProto
    float_functions: dict = field(default_factory=dict)  # layer -> function written in float (a table's)
    tables: list = field(default_factory=list)           # layers written as the int8 table lookup itself
    float_layers: list = field(default_factory=list)     # float ops of the int8 module (a float softmax output)
    output_homes: list = field(default_factory=list)     # per main output: (the ONNX tensor holding it, its axis order)


def export_onnx_qdq(qdq_module: tvm.IRModule, output_names=None, bias: str = "int32") -> onnx.ModelProto:
    """The QDQ ONNX model of a QDQ-form int8 module (compiled.qdq). `output_names`: the graph
    outputs' names (default: the model's own when main's outputs carry them, else output<i>);
    `bias`: "int32" (DequantizeLinear of the int32 bias) or "float" (its float32 value)."""
    return export_onnx_qdq_details(qdq_module, output_names, bias).model


def export_onnx_qdq_details(qdq_module: tvm.IRModule, output_names=None, bias: str = "int32") -> ExportedOnnx:
    """export_onnx_qdq, with the layers written as float functions or as table lookups."""
    if bias not in ("int32", "float"):
        raise ValueError(f"bias={bias!r}: int32 or float")
    exporter = _Exporter(int8_groups(qdq_module, ONNX), bias)
    model = exporter.run(output_names)
    return ExportedOnnx(model, exporter.float_functions, exporter.tables, exporter.float_layers, exporter.output_homes)


def _per_tensor(scale, zero_point, axis):
    """A per-tensor scale and zero point as ONNX scalars: the TFLite frontend's are 1-element arrays,
    which ONNX reads as per-axis and ONNX Runtime's QLinear fusions (QLinearAdd) refuse."""
    if axis is None:
        scale, zero_point = np.asarray(scale), np.asarray(zero_point)
        if scale.size == 1 and zero_point.size == 1:
            return scale.reshape(()), zero_point.reshape(())
    return scale, zero_point


class _Exporter:
    def __init__(self, mod: tvm.IRModule, bias: str):
        self.mod, self.bias = mod, bias
        self.nodes, self.initializers = [], []
        self.forms: dict = {}   # relax var -> {perm: ONNX tensor name}: the var's tensor with axes permuted by perm
        self.names: set = set()
        self.float_functions: dict = {}
        self.tables: list = []
        self.float_layers: list = []
        self.folded: dict = {}  # relax var -> float32 array: a dequantized constant a float layer reads
        self.output_homes: list = []

    def run(self, output_names) -> onnx.ModelProto:
        main = self.mod["main"]
        bindings = main_bindings(self.mod)
        self.plan = QParamPlan(self.mod, bindings, WHAT)
        inputs = []
        for param in main.params:
            self.forms[param] = {_identity(param): self._name(param.name)}
            inputs.append(helper.make_tensor_value_info(param.name, _dtype(param), _shape(param)))
        for binding in bindings:
            self._emit(binding)
        outputs, returned = [], main_outputs(self.mod)
        self.output_homes = [(name, perm) for perm, name in (next(iter(self.forms[out].items())) for out in returned)]
        for index, out in enumerate(returned):
            name = output_names[index] if output_names and index < len(output_names) else f"output{index}"
            self._node("Identity", [self.form(out, _identity(out))], name)
            outputs.append(helper.make_tensor_value_info(name, _dtype(out), _shape(out)))
        graph = helper.make_graph(self.nodes, "qdq_int8", inputs, outputs, self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="edge-npu-compiler", ir_version=IR_VERSION)
        onnx.checker.check_model(model)
        return model

    # -- tensors ------------------------------------------------------------------------------

    def _name(self, base: str) -> str:
        name, index = base, 1
        while name in self.names:
            name, index = f"{base}_{index}", index + 1
        self.names.add(name)
        return name

    def const(self, base: str, array) -> str:
        name = self._name(base)
        array = np.asarray(array)  # (np.ascontiguousarray would make a scalar a 1-element array)
        self.initializers.append(numpy_helper.from_array(array if array.flags.c_contiguous else array.copy(), name))
        return name

    def _node(self, op: str, inputs: list, output: str | None = None, node_name: str | None = None, **attrs) -> str:
        out = output or self._name(f"{inputs[0]}/{op}")
        if output:
            self.names.add(output)
        name = self._name(node_name or f"{op}_{len(self.nodes)}")
        self.nodes.append(helper.make_node(op, inputs, [out], name=name, **attrs))
        return out

    def form(self, var, perm: tuple) -> str:
        """The ONNX tensor of relax var `var` with its axes in order `perm`, transposed from the form it
        was written in when that is another."""
        forms = self.forms[var]
        if perm not in forms:
            home, name = next(iter(forms.items()))
            forms[perm] = self._node("Transpose", [name], perm=[home.index(axis) for axis in perm])
        return forms[perm]

    def home(self, var) -> tuple:
        """The axis order var was written in."""
        return next(iter(self.forms[var]))

    def dq(self, tensor: str, scale, zero_point, axis=None, base=None) -> str:
        scale, zero_point = _per_tensor(scale, zero_point, axis)
        inputs = [tensor, self.const(f"{base or tensor}/scale", np.asarray(scale, np.float32)),
                  self.const(f"{base or tensor}/zero_point", np.asarray(zero_point))]
        return self._node("DequantizeLinear", inputs, **({"axis": axis} if axis is not None else {}))

    def q(self, tensor: str, scale, zero_point, base) -> str:
        scale, zero_point = _per_tensor(scale, zero_point, None)
        inputs = [tensor, self.const(f"{base}/scale", np.asarray(scale, np.float32)),
                  self.const(f"{base}/zero_point", np.asarray(zero_point))]
        return self._node("QuantizeLinear", inputs, self._name(base))

    def input_dq(self, args, dq_call, perm) -> str:
        """The float tensor a group's dequantize of a composite parameter reads, in `perm`."""
        var = args[dq_call.args[0]]
        x, scale, zero_point = dq_call.args
        return self.dq(self.form(var, perm), reads.const_array(scale, "float32", "scale"),
                       zero_point.value.numpy(), base=f"{self.forms[var][perm]}/dq")

    def output_q(self, var, tensor: str, quant_call, perm) -> None:
        _, scale, zero_point = quant_call.args
        self.forms[var] = {perm: self.q(tensor, scale.value.numpy(), zero_point.value.numpy(), var.name)}

    # -- bindings -----------------------------------------------------------------------------

    def _emit(self, binding) -> None:
        value, var = binding.value, binding.var
        if isinstance(value, relax.Var):
            self.forms[var] = self.forms[value]
        elif is_composite_call(self.mod, value):
            func = self.mod[value.op]
            row, a = patterns.match_composite(func)
            args = dict(zip(func.params, value.args))
            layer = layer_name(func) or var.name
            try:
                kernel = patterns.lower(row, a, ONNX)  # the build's own checks: what it runs is what is written
                _COMPOSITES[row.kernel](self, a, kernel, args, var, layer)
            except reads.Unsupported as err:
                raise ExportError(f"{WHAT}: layer {layer}: {err}") from None
        elif isinstance(value, relax.Call) and moves(value):
            self._move(value, var)
        elif self.plan.integer_shift(value) is not None:  # uint8 model I/O: the same scale, the zero point moved
            source = self.plan.integer_shift(value)[0]
            scale, zero_point = self.plan.qparams[source]
            out_scale, out_zero_point = self.plan.qparams[var]
            perm = self.home(source)
            x = self.dq(self.forms[source][perm], scale, np.asarray(zero_point, str(source.ty.dtype)))
            self.forms[var] = {perm: self.q(x, out_scale, np.asarray(out_zero_point, str(var.ty.dtype)), var.name)}
        elif self.plan.is_widening_step(value):
            pass  # inside an integer shift (written as one DQ -> Q above)
        elif is_op(value, "relax.dequantize") and reads.is_const(value.args[0]):
            self.folded[var] = reads.dequantized_constant(value)  # a quantised layer the int8 kernels refused
        elif isinstance(value, relax.Call) and isinstance(value.op, tvm.ir.Op) and value.op.name in FLOAT_OPS:
            try:
                emit_float(self, value, var)
            except (FloatExportError, reads.Unsupported) as err:
                raise ExportError(f"{WHAT}: {err}") from None
        else:
            what = value.op.name if isinstance(value, relax.Call) and isinstance(value.op, tvm.ir.Op) else \
                type(value).__name__
            layer = source_node(value) if isinstance(value, relax.Call) else None
            raise ExportError(f"{WHAT}: layer {layer or var.name} runs {what} in float, which the QDQ ONNX export does "
                              "not write (int8 groups, moves and common float operators only)")

    def _move(self, call, var) -> None:
        source = call.args[0]
        if call.op.name == "relax.reshape":
            if len(_shape(var)) == 4 and _same_elements(_shape(var), NCHW, _shape(source)) and \
                    _identity(source) in self.forms[source]:
                self.forms[var] = {NCHW: self.forms[source][_identity(source)]}  # NCHW <-> NHWC of one channel
                return
            # a form of the source whose element order is the identity's (only axes of size 1 moved) reshapes as well
            src = next((name for perm, name in self.forms[source].items() if _same_elements(
                _shape(source), perm, [_shape(source)[axis] for axis in perm])), None)
            shape = self.const(f"{var.name}/shape", np.array(_shape(var), np.int64))
            self.forms[var] = {_identity(var): self._node("Reshape", [src or self.form(source, _identity(source)), shape],
                                                          self._name(var.name))}
            return
        rank = len(_shape(var))
        axes = [int(v) for v in call.attrs.axes] if call.attrs.axes is not None else list(range(rank))[::-1]
        # var with its axes in order p is source with its axes in order axes[p]: written already, or one Transpose
        self.forms[var] = {tuple(_inverse_compose(axes, perm)): name for perm, name in self.forms[source].items()}


# ---------------------------------------------------------------------------------------------
# One emitter per int8 kernel: (exporter, annotated calls, lowered kernel, composite param -> main var,
# the group's output var, layer name)


def _conv2d(ex, a, kernel, args, var, layer) -> None:
    attrs = a["op"].attrs
    if (str(attrs.data_layout), str(attrs.kernel_layout)) != ("NHWC", "OHWI"):
        raise reads.Unsupported(f"conv2d layouts {attrs.data_layout}/{attrs.kernel_layout}, not NHWC/OHWI")
    w_q = reads.const_array(a["w"].args[0], "int8", "weight")
    o = w_q.shape[0]
    s_w = reads.channel_scales(a["w"], o, 0, "weight")
    weight = ex.dq(ex.const(f"{layer}/weight", w_q.transpose(0, 3, 1, 2)), s_w, np.zeros(o, np.int8), axis=0)
    top, left, bottom, right = reads.ints(attrs.padding, 4)
    inputs = [ex.input_dq(args, a["x"], NCHW), weight] + ([_bias(ex, a["b"], o, layer)] if "b" in a else [])
    y = ex._node("Conv", inputs, kernel_shape=list(w_q.shape[1:3]), strides=list(reads.ints(attrs.strides, 2)),
                 dilations=list(reads.ints(attrs.dilation, 2)), pads=[top, left, bottom, right],
                 group=int(attrs.groups))
    ex.output_q(var, _activation(ex, a, y), a["quant"], NCHW)


def _dense(ex, a, kernel, args, var, layer) -> None:
    x_var = args[a["x"].args[0]]
    w_q = reads.const_array(a["w"].args[0], "int8", "weight")  # [K, O]
    o = w_q.shape[1]
    s_w = reads.channel_scales(a["w"], o, 1, "weight")
    weight = ex.dq(ex.const(f"{layer}/weight", w_q), s_w, np.zeros(o, np.int8), axis=1)
    x = ex.input_dq(args, a["x"], _identity(x_var))
    if "b" in a and len(_shape(x_var)) == 2:
        y = ex._node("Gemm", [x, weight, _bias(ex, a["b"], o, layer)])
    else:
        y = ex._node("MatMul", [x, weight])
        if "b" in a:
            y = ex._node("Add", [y, _bias(ex, a["b"], o, layer)])
    ex.output_q(var, _activation(ex, a, y), a["quant"], _identity(var))


def _bias(ex, dq_call, channels, layer) -> str:
    b_q = reads.const_array(dq_call.args[0], "int32", "bias").reshape(-1)
    scale = np.broadcast_to(reads.const_array(dq_call.args[1], "float32", "bias scale").reshape(-1), (channels,))
    if b_q.shape != (channels,):
        raise reads.Unsupported(f"bias of shape {b_q.shape} for {channels} channels")
    if ex.bias == "float":
        return ex.const(f"{layer}/bias", (b_q.astype(np.float64) * scale.astype(np.float64)).astype(np.float32))
    return ex.dq(ex.const(f"{layer}/bias", b_q), scale.astype(np.float32), np.zeros(channels, np.int32), axis=0)


def _activation(ex, a, y) -> str:
    act = a.get("act")
    if act is None:
        return y
    if is_op(act, "relax.nn.relu"):
        return ex._node("Relu", [y])
    lo, hi = (reads.prim_float(v) for v in act.args[1:3])
    return ex._node("Clip", [y, ex.const(f"{y}/min", np.array(lo, np.float32)),
                             ex.const(f"{y}/max", np.array(hi, np.float32))])


def _elementwise(ex, a, args, keys, op, var) -> None:
    """op of the dequantized inputs (in the first one's layout), its activation, the quantize."""
    perm = ex.home(args[a[keys[0]].args[0]])
    y = ex._node(op, [ex.input_dq(args, a[key], perm) for key in keys])
    ex.output_q(var, _activation(ex, a, y), a["quant"], perm)


def _add(ex, a, kernel, args, var, layer) -> None:
    _elementwise(ex, a, args, ["x", "y"], "Sub" if is_op(a["op"], "relax.subtract") else "Add", var)


def _mul(ex, a, kernel, args, var, layer) -> None:
    _elementwise(ex, a, args, ["x", "y"], "Mul", var)


def _requantize(ex, a, kernel, args, var, layer) -> None:
    _elementwise(ex, a, args, ["x"], "Identity", var)


def _concat(ex, a, kernel, args, var, layer) -> None:
    keys = sorted((k for k in a if k[0] == "x" and k[1:].isdigit()), key=lambda k: int(k[1:]))
    perm = ex.home(args[a[keys[0]].args[0]])
    axis = perm.index(int(a["op"].attrs.axis) % len(perm))
    y = ex._node("Concat", [ex.input_dq(args, a[key], perm) for key in keys], axis=axis)
    ex.output_q(var, y, a["quant"], perm)


def _mean(ex, a, kernel, args, var, layer) -> None:
    op = a["op"]
    x_var = args[a["x"].args[0]]
    axes = sorted(int(v) % len(_shape(x_var)) for v in op.attrs.axis)
    if len(_shape(x_var)) == 4 and axes == [1, 2] and bool(op.attrs.keepdims):
        ex.output_q(var, ex._node("GlobalAveragePool", [ex.input_dq(args, a["x"], NCHW)]), a["quant"], NCHW)
        return
    perm = ex.home(x_var)
    kept = [axis for axis in perm if axis not in axes]
    y = ex._node("ReduceMean", [ex.input_dq(args, a["x"], perm)], axes=[perm.index(axis) for axis in axes],
                 keepdims=int(bool(op.attrs.keepdims)))
    out_perm = perm if bool(op.attrs.keepdims) else tuple(sorted(kept).index(axis) for axis in kept)
    ex.output_q(var, y, a["quant"], out_perm)


def _pool(name):
    def emit(ex, a, kernel, args, var, layer):
        attrs = a["op"].attrs
        if str(attrs.layout) != "NHWC":
            raise reads.Unsupported(f"pool layout {attrs.layout}")
        options = dict(kernel_shape=list(reads.ints(attrs.pool_size, 2)), strides=list(reads.ints(attrs.strides, 2)),
                       pads=list(reads.ints(attrs.padding, 4)), ceil_mode=int(bool(attrs.ceil_mode)))
        if name == "MaxPool":
            options["dilations"] = list(reads.ints(attrs.dilation, 2))
        else:
            if reads.ints(attrs.dilation, 2) != (1, 1):
                raise reads.Unsupported("a dilated average pool (ONNX AveragePool has no dilations at opset 13)")
            options["count_include_pad"] = int(bool(attrs.count_include_pad))
        y = ex._node(name, [ex.input_dq(args, a["x"], NCHW)], **options)
        ex.output_q(var, y, a["quant"], NCHW)
    return emit


def _pad(ex, a, kernel, args, var, layer) -> None:
    perm = ex.home(args[a["x"].args[0]])
    y = ex._node("Pad", [ex.input_dq(args, a["x"], perm), ex.const(f"{layer}/pads", onnx_pads(a["op"].attrs, perm)),
                         ex.const(f"{layer}/value", np.array(0.0, np.float32))], mode="constant")
    ex.output_q(var, y, a["quant"], perm)


def _prelu(ex, a, kernel, args, var, layer) -> None:
    x_var = args[a["x"].args[0]]
    perm = ex.home(x_var)
    alpha_q, s_alpha, zp_alpha = a["alpha_dq"].args
    alpha = reads.const_array(alpha_q, "int8", "slope").reshape(-1)
    axis = int(a["op"].attrs.axis) % len(perm)
    shape = [1] * len(perm)
    shape[perm.index(axis)] = alpha.size
    slope = ex.dq(ex.const(f"{layer}/slope", alpha.reshape(shape)), reads.tensor_scale(s_alpha),
                  np.asarray(reads.tensor_zero_point(zp_alpha), np.int8))
    y = ex._node("PRelu", [ex.input_dq(args, a["x"], perm), slope])
    ex.output_q(var, y, a["quant"], perm)


def _resize(ex, x: str, var, op, mode, layer) -> str:
    attrs = op.attrs
    if str(attrs.layout) != "NHWC":
        raise reads.Unsupported(f"resize layout {attrs.layout}")
    n, h, w, c = _shape(var)
    options = dict(mode=mode, coordinate_transformation_mode=str(attrs.coordinate_transformation_mode))
    if mode == "nearest":
        options["nearest_mode"] = str(attrs.rounding_method) or "round_prefer_floor"
    sizes = ex.const(f"{layer}/sizes", np.array([n, c, h, w], np.int64))
    return ex._node("Resize", [x, "", "", sizes], **options)


def _resize_bilinear(ex, a, kernel, args, var, layer) -> None:
    y = _resize(ex, ex.input_dq(args, a["x"], NCHW), var, a["op"], "linear", layer)
    ex.output_q(var, y, a["quant"], NCHW)


def _resize_nearest(ex, a, kernel, args, var, layer) -> None:
    ex.forms[var] = {NCHW: _resize(ex, ex.form(args[a["op"].args[0]], NCHW), var, a["op"], "nearest", layer)}


def _copy(ex, a, kernel, args, var, layer) -> None:
    op = a["op"]
    x_var = args[op.args[0]]
    perm, shape = ex.home(x_var), _shape(x_var)
    begin, end, steps = slice_window(op, shape)  # every axis, in the relax tensor's order
    consts = [ex.const(f"{layer}/{what}", np.array(v, np.int64)) for what, v in
              (("starts", begin), ("ends", end), ("axes", [perm.index(axis) for axis in range(len(shape))]),
               ("steps", steps))]
    ex.forms[var] = {perm: ex._node("Slice", [ex.forms[x_var][perm], *consts])}


def _softmax(ex, a, kernel, args, var, layer) -> None:
    perm = ex.home(args[a["x"].args[0]])
    axis = perm.index(int(a["op"].attrs.axis) % len(perm))
    ex.output_q(var, ex._node("Softmax", [ex.input_dq(args, a["x"], perm)], axis=axis), a["quant"], perm)


def _quantize(ex, a, kernel, args, var, layer) -> None:
    source = args[a["op"].args[0]]
    perm = ex.home(source)
    ex.output_q(var, ex.forms[source][perm], a["op"], perm)


def _dequantize(ex, a, kernel, args, var, layer) -> None:
    source = args[a["op"].args[0]]
    perm = ex.home(source)
    _, scale, zero_point = a["op"].args
    ex.forms[var] = {perm: ex.dq(ex.forms[source][perm], scale.value.numpy(), zero_point.value.numpy(),
                                 base=var.name)}


def _lut(ex, a, kernel, args, var, layer) -> None:
    """The float function whose table this is, between DQ and Q; else the table lookup itself."""
    x_var = args[kernel.inputs[0]]
    perm = ex.home(x_var)
    x = ex.forms[x_var][perm]
    table = kernel.arrays["table"]
    (s_x, zp_x), (s_y, zp_y) = ex.plan.qparams.get(x_var, (None, None)), ex.plan.qparams.get(var, (None, None))
    found = _known_function(table, s_x, zp_x, s_y, zp_y) if s_x is not None and s_y is not None else None
    if found is not None:
        name, write = found
        ex.float_functions[layer] = name
        y = write(ex, ex.dq(x, s_x, np.asarray(zp_x, np.int8)))
        ex.forms[var] = {perm: ex.q(y, s_y, np.asarray(zp_y, np.int8), var.name)}
        return
    ex.tables.append(layer)
    index = ex._node("Add", [ex._node("Cast", [x], to=TensorProto.INT32),
                             ex.const(f"{layer}/offset", np.array(128, np.int32))])
    ex.forms[var] = {perm: ex._node("Gather", [ex.const(f"{layer}/table", table), index], axis=0)}


_COMPOSITES = {
    "conv2d": _conv2d, "dense": _dense, "add": _add, "mul": _mul, "concat": _concat, "requantize": _requantize,
    "global_avg_pool2d": _mean, "max_pool2d": _pool("MaxPool"), "avg_pool2d": _pool("AveragePool"), "pad": _pad,
    "lut": _lut, "prelu": _prelu, "resize_bilinear": _resize_bilinear, "resize_nearest": _resize_nearest,
    "copy": _copy, "softmax": _softmax, "quantize": _quantize, "dequantize": _dequantize,
}


# ---------------------------------------------------------------------------------------------
# Tables: the float functions recognised, as (numpy float64 function, writer of ONNX nodes)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _erf(x):
    return np.vectorize(math.erf)(x)


def _hard_sigmoid(alpha, beta):
    return (lambda x: np.clip(alpha * x + beta, 0.0, 1.0),
            lambda ex, x: ex._node("HardSigmoid", [x], alpha=alpha, beta=beta))


def _times_x(op, **attrs):
    return lambda ex, x: ex._node("Mul", [x, ex._node(op, [x], **attrs)])


def _gelu(ex, x):
    root2 = ex.const(f"{x}/sqrt2", np.array(math.sqrt(2.0), np.float32))
    half = ex.const(f"{x}/half", np.array(0.5, np.float32))
    one = ex.const(f"{x}/one", np.array(1.0, np.float32))
    erf = ex._node("Erf", [ex._node("Div", [x, root2])])
    return ex._node("Mul", [ex._node("Mul", [x, half]), ex._node("Add", [erf, one])])


KNOWN_FUNCTIONS = {
    "sigmoid": (_sigmoid, lambda ex, x: ex._node("Sigmoid", [x])),
    "tanh": (np.tanh, lambda ex, x: ex._node("Tanh", [x])),
    "hard-swish": (lambda x: x * np.clip(x + 3.0, 0.0, 6.0) / 6.0, _times_x("HardSigmoid", alpha=1 / 6, beta=0.5)),
    "hard-sigmoid": _hard_sigmoid(0.2, 0.5),
    "hard-sigmoid (1/6)": _hard_sigmoid(1 / 6, 0.5),
    "SiLU": (lambda x: x * _sigmoid(x), _times_x("Sigmoid")),
    "ELU": (lambda x: np.where(x > 0, x, np.expm1(x)), lambda ex, x: ex._node("Elu", [x], alpha=1.0)),
    "GELU": (lambda x: 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0))), _gelu),
    **{f"leaky ReLU {alpha}": (lambda x, alpha=alpha: np.where(x >= 0, x, alpha * x),
                               lambda ex, x, alpha=alpha: ex._node("LeakyRelu", [x], alpha=alpha))
       for alpha in (0.01, 0.1, 0.2, 0.3)},
}
TABLE_SLACK = 4  # a known function's table may differ from ours by one step at this many inputs (float64 spellings)


def _known_function(table, s_x, zp_x, s_y, zp_y):
    """(name, writer) of the known function whose table at these scales is `table`, or None."""
    best = None
    for name, (function, write) in KNOWN_FUNCTIONS.items():
        ours = unary_table(function, s_x, zp_x, s_y, zp_y).astype(np.int32)
        gap = np.abs(ours - table.astype(np.int32))
        if gap.max() <= 1 and np.count_nonzero(gap) <= TABLE_SLACK and (best is None or
                                                                        np.count_nonzero(gap) < best[0]):
            best = (np.count_nonzero(gap), name, write)
    return None if best is None else best[1:]


# ---------------------------------------------------------------------------------------------
# Helpers

def _shape(var) -> list:
    return list(reads.static_shape(var, var.name))


def _dtype(var) -> int:
    dtype = str(var.ty.dtype)
    if dtype not in _DTYPES:
        raise ExportError(f"{WHAT}: tensor {var.name} is {dtype}; the export writes float32, int8 and uint8 I/O")
    return _DTYPES[dtype]


def _inverse_compose(axes, perm) -> list:
    """y = permute_dims(x, axes) and x written in axis order `perm`: the axis order of y that tensor is."""
    # x's tensor holds x axis perm[j] at position j; y axis i is x axis axes[i]
    return [list(axes).index(axis) for axis in perm]


def _same_elements(shape, perm, other) -> bool:
    """Is a tensor of `shape` with its axes in order `perm` the tensor of shape `other`, element for
    element (only axes of size 1 move)?"""
    moved = [shape[axis] for axis in perm]
    kept = [axis for axis in perm if shape[axis] != 1]
    return moved == list(other) and kept == sorted(kept)
