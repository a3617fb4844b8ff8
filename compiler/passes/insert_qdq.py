"""Insert quantisation: a float module partitioned into int8-op groups -> the QDQ form.

Input: the float module in NHWC, partitioned with the target's int8 families (each fused
group is one TFLite-style int8 op), and the plan (quant/plan.py): QParams per tensor id.
Output: main rewritten in the QDQ form of quant/qdq.py. Each quantised group is inlined
with dequantize on its inputs, its weights quantised per output channel (symmetric,
[-127, 127]) and its bias to int32 at scale s_in * s_w, and quantize on its output. A
tensor is kept in int8 between quantised ops and dequantized only where a float op reads
it, so no quantize(dequantize(x)) pair is ever written. Scale-preserving ops (reshape,
flatten, ...) whose plan keeps the input's parameters run on the int8 tensor directly,
except a zero pad and a bilinear resize, written dequantize -> op -> quantize with the input's
parameters (on the int8 tensor R.nn.pad would pad with 0, not the zero point, and a resize would
interpolate int8 codes; the int8 kernels take their parameters from the QDQ form).
Groups named in `keep_float` (by ONNX node) and ops without a plan stay float.

Convolutions and dense layers named in `int16_layers` run TFLite's 16x8 scheme (the higher precision
--accuracy-budget gives a layer on coral-npu): their input and output are int16 tensors at `plan16`'s
parameters (zero point 0); an int8 input is widened and the output narrowed for an int8 reader, both
written quantize(dequantize(t)), and two such layers in a row pass the int16 tensor between them. A
layer whose int16 bias would need more than 32 bits stays int8.
"""

import numpy as np
import tvm
from tvm import relax

from compiler.errors import CompilerError
from compiler.frontend.provenance import with_span
from compiler.names import shown
from compiler.frontend.provenance import node_span
from compiler.partition import UNARY, group_name, group_nodes
from compiler.passes.util import behind_tuple_var, bindings, bound_values, is_call_to, is_const
from compiler.quant import qdq
from compiler.quant.bias_correction import conv_output_shift, dense_output_shift
from compiler.quant.calibrate import tensor_ids
from compiler.quant.observers import weight_qparams
from compiler.quant.plan import callee_kind, computes_at_input_qparams, is_int8_softmax, moves_int8
from compiler.quant.reference.lut import unary_table
from compiler.quant.unary_function import evaluate

# Group patterns with an int8 kernel (the quant pattern table in quant/patterns.py).
QUANTISED_GROUPS = ("conv2d", "depthwise_conv2d", "dense", "max_pool2d", "avg_pool2d", "global_avg_pool2d", "add",
                    "sub", "mul", "prelu", UNARY)
MAC_GROUPS = ("conv2d", "depthwise_conv2d", "dense")  # group patterns with a 16x8 kernel (int16_layers)


def is_mac_group(func) -> bool:
    """A convolution or dense layer's group: one that can run 16x8."""
    return (group_name(func) or "").startswith(MAC_GROUPS)


def is_quantisable_group(pattern: str | None) -> bool:
    return pattern is not None and pattern.split("_bias")[0].split("_relu")[0].split("_clip")[0] in QUANTISED_GROUPS


IO_TYPES = ("float", "int8", "uint8")


def insert_qdq(mod: tvm.IRModule, plan: dict, input_names=None, keep_float=frozenset(), io="float",
               input_means=None, int16_layers=frozenset(), plan16=None) -> tvm.IRModule:
    """`io`: the model's inputs and outputs as float (quantised inside), or int8 / uint8 tensors
    at the plan's (scale, zero point) of each input and output (uint8: zero point + 128).
    `input_means` ({tensor id: per-channel mean}): correct each conv / dense bias for its weights'
    quantisation error (quant/bias_correction.py). `int16_layers` (ONNX nodes) run 16x8 at `plan16`'s
    (quant/plan.py plan_int16) parameters."""
    return _write(mod, plan, input_names, keep_float, instrument=False, io=io, input_means=input_means,
                  int16=(frozenset(int16_layers), plan16 or {}))[0]


def insert_qdq_instrumented(mod, plan, input_names=None, keep_float=frozenset(), input_means=None,
                            int16_layers=frozenset(), plan16=None) -> tuple[tvm.IRModule, list[str]]:
    """insert_qdq, with main returning (outputs, *every quantised tensor dequantized) and their ids.

    The report compiles this to measure each layer's int8 output against the float one.
    """
    return _write(mod, plan, input_names, keep_float, instrument=True, input_means=input_means,
                  int16=(frozenset(int16_layers), plan16 or {}))


def _write(mod, plan, input_names, keep_float, instrument, io="float", input_means=None, int16=(frozenset(), {})):
    if io not in IO_TYPES:
        raise ValueError(f"io must be one of {IO_TYPES}, not {io!r}")
    ids = {var: tensor_id for tensor_id, var in tensor_ids(mod["main"], input_names)}
    writer = _QDQWriter(mod, plan, ids, frozenset(keep_float), io, input_means or {}, int16)
    new_main = writer.rewrite(mod["main"], instrument)
    functions = dict(mod.functions)
    functions[mod.get_global_var("main")] = new_main
    cleaned = relax.transform.DeadCodeElimination(entry_functions=["main"])(tvm.IRModule(functions, attrs=mod.attrs))
    if keep_float:
        # Between a dequantize and a quantize, a float add or pool is exactly the QDQ form of an
        # int8 op: the int8 partitioner would take it back. It reads this to leave them float.
        cleaned = cleaned.with_attr(KEEP_FLOAT_ATTR, ",".join(sorted(keep_float)))
    return cleaned, writer.instrumented_ids


KEEP_FLOAT_ATTR = "npu_keep_float"


def kept_float_nodes(mod: tvm.IRModule) -> frozenset:
    """The ONNX nodes --keep-float named, as insert_qdq recorded them on the module."""
    attrs = mod.attrs
    if attrs is None or KEEP_FLOAT_ATTR not in attrs:
        return frozenset()
    return frozenset(name for name in str(attrs[KEEP_FLOAT_ATTR]).split(",") if name)


def round_half_away(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def quantize_weight(weight: np.ndarray, axis: int):
    """(int8 weight, float32 per-channel scales): symmetric, zero point 0, values in [-127, 127]."""
    scales = weight_qparams(weight, axis=axis).astype(np.float32)
    shape = [1] * weight.ndim
    shape[axis] = -1
    q = np.clip(round_half_away(weight.astype(np.float64) / scales.reshape(shape)), -127, 127)
    return q.astype(np.int8), scales


class _BiasTooWide(ValueError):
    """A 16x8 layer's bias at s_in * s_w does not fit the QDQ form's int32 (the layer stays int8)."""


def quantize_bias(bias: np.ndarray, input_scale: float, weight_scales: np.ndarray, exact=False):
    """(int32 bias, float32 scales s_in * s_w[c]) for a per-channel bias of any broadcast shape, saturated
    to int32; exact=True raises _BiasTooWide instead of saturating (a 16x8 layer's, 256x finer)."""
    scales = (np.float64(input_scale) * weight_scales.astype(np.float64)).astype(np.float32)
    flat = round_half_away(bias.reshape(-1).astype(np.float64) / scales)
    if exact and np.any(np.abs(flat) > 2**31 - 1):
        raise _BiasTooWide()
    q = np.clip(flat, -(2**31), 2**31 - 1).astype(np.int32)
    return q.reshape(bias.shape), scales


def _quantize_layer_weight(group, weight: np.ndarray, axis: int):
    """quantize_weight, with a weight that cannot be quantised (NaN or inf, e.g. a BatchNorm with
    a negative variance folded in) reported against the layer's ONNX node."""
    try:
        return quantize_weight(weight, axis)
    except ValueError as err:
        nodes = group_nodes(group)
        raise CompilerError(f"{shown(nodes[0]) if nodes else 'a layer'}: cannot quantise its weights: {err}") from None


def _output_shift(call, weight, weight_q, weight_scales, input_mean):
    """(W_q - W) E[x] per output channel of a conv2d / matmul, or None without a measured input mean."""
    if input_mean is None:
        return None
    conv = is_call_to(call, "relax.nn.conv2d")
    shape = [1] * weight.ndim
    shape[0 if conv else 1] = -1
    error = weight_q.astype(np.float64) * weight_scales.astype(np.float64).reshape(shape) - weight
    if conv:
        return conv_output_shift(error, str(call.attrs.kernel_layout), int(call.attrs.groups), input_mean)
    return dense_output_shift(error, input_mean)


def _quantised_slope(group, alpha: np.ndarray):
    """dequantize(const int8 slope): PReLU's slope quantised per tensor (symmetric, as a weight),
    the form TFLite's int8 PRELU takes."""
    alpha_q, scales = _quantize_layer_weight(group, alpha.reshape(1, -1), axis=0)
    return qdq.dequantize(relax.const(alpha_q.reshape(alpha.shape)), float(scales[0]), 0)


class _Tensor:
    """A tensor of the new main: its float var and/or its int8 var with parameters, and an int16 var
    with its own where a 16x8 layer writes or reads it."""

    def __init__(self, float_var=None, int8_var=None, qparams=None, int16_var=None, qparams16=None):
        self.float, self.int8, self.qparams = float_var, int8_var, qparams
        self.int16, self.qparams16 = int16_var, qparams16
        self.written_int16 = int16_var is not None  # by a 16x8 layer: int16 is its finest view


def _float_outputs(main: relax.Function) -> set:
    """The vars main returns, and the vars they alias, gather into the returned tuple or only
    reshape into an output (a classifier's Softmax -> Reshape)."""
    body = main.body.body
    outputs = set(body.fields) if isinstance(body, relax.Tuple) else {body}
    for binding in reversed(list(bindings(main))):
        value = binding.value
        if binding.var not in outputs:
            continue
        if isinstance(value, relax.Var):
            outputs.add(value)
        elif isinstance(value, relax.Tuple):
            outputs.update(field for field in value.fields if isinstance(field, relax.Var))
        elif any(is_call_to(value, op) for op in _RESHAPES) and isinstance(value.args[0], relax.Var):
            outputs.add(value.args[0])
    return outputs


_RESHAPES = ("relax.reshape", "relax.squeeze", "relax.expand_dims", "relax.flatten")


class _QDQWriter:
    def __init__(self, mod, plan, ids, keep_float, io="float", input_means=None, int16=(frozenset(), {})):
        self.mod, self.plan, self.ids, self.keep_float, self.io = mod, plan, ids, keep_float, io
        self.input_means = input_means or {}
        self.int16_layers, self.plan16 = int16

    def rewrite(self, main: relax.Function, instrument=False) -> relax.Function:
        self.bb = relax.BlockBuilder()
        try:
            return self._rewrite(main, instrument)
        except Exception:
            # An error inside the builder's scopes leaves a block open, and TVM prints a warning
            # about it when the builder is freed: after the one-line error. Close it quietly.
            try:
                self.bb._end_block()
            except Exception:  # noqa: BLE001 - nothing open: nothing to close
                pass
            raise

    def _rewrite(self, main: relax.Function, instrument) -> relax.Function:
        integer_io = [self.io != "float" and self.plan.get(self.ids.get(p)) is not None for p in main.params]
        params = [relax.Var(p.name, relax.TensorType(p.ty.shape, self.io) if integer else p.ty)
                  for p, integer in zip(main.params, integer_io)]
        self.integer_outputs = []  # _output_expr's: (scale, zero point) of each output, None if float
        with self.bb.function("main", params, attrs=dict(main.attrs) if main.attrs else None):
            with self.bb.dataflow():
                self.env = {}
                for old, new, integer in zip(main.params, params, integer_io):
                    qparams = self.plan.get(self.ids.get(old))
                    self.env[old] = (_Tensor(int8_var=self._from_io(new), qparams=qparams) if integer
                                     else _Tensor(float_var=new, qparams=qparams))
                self.float_outputs = _float_outputs(main) if self.io == "float" else set()
                for binding in bindings(main):
                    self.env[binding.var] = self._binding(binding)
                self.bound = bound_values(main)
                result = self._output_expr(main.body.body)
                self.instrumented_ids = []
                if instrument:
                    result = self._with_quantised_tensors(main, result)
                output = self.bb.emit_output(result)
            self.bb.emit_func_output(output)
        integer_inputs = {p.name: self._io_qparams(self.plan[self.ids[p]])
                          for p, integer in zip(main.params, integer_io) if integer}
        return qdq.with_io_qparams(self.bb.get()["main"], integer_inputs, self.integer_outputs)

    def _io_qparams(self, qparams) -> tuple:
        """(scale, zero point) of an int8 / uint8 model input or output (uint8: the int8 zero point + 128)."""
        return qparams.scale, qparams.zero_point + (128 if self.io == "uint8" else 0)

    def _output_expr(self, expr):
        """The function's result: float, or the int8/uint8 view of each quantised output."""
        if self.io == "float":
            return self._float_expr(expr)
        expr = behind_tuple_var(self.bound, expr)
        if isinstance(expr, relax.Tuple):
            return relax.Tuple([self._output_expr(field) for field in expr.fields])
        if isinstance(expr, relax.Var) and self._has_qparams(expr):
            self.integer_outputs.append(self._io_qparams(self.env[expr].qparams))
            return self._to_io(self._int8(expr))
        self.integer_outputs.append(None)
        return self._float_expr(expr)

    def _from_io(self, param):
        """An integer model input as int8 (uint8 inputs are shifted by -128, as their zero point is)."""
        if self.io == "int8":
            return param
        wide = relax.op.subtract(relax.op.astype(param, "int16"), relax.const(128, "int16"))
        return self.bb.emit(relax.op.astype(wide, "int8"))

    def _to_io(self, int8_var):
        if self.io == "int8":
            return int8_var
        wide = relax.op.add(relax.op.astype(int8_var, "int16"), relax.const(128, "int16"))
        return self.bb.emit(relax.op.astype(wide, "uint8"))

    def _with_quantised_tensors(self, main, result):
        observed = [(self.ids[var], var) for var in [*main.params, *(b.var for b in bindings(main))]
                    if var in self.ids and (self.env[var].int8 is not None or self.env[var].int16 is not None)]
        self.instrumented_ids = [tensor_id for tensor_id, _ in observed]
        outputs = list(result.fields) if isinstance(result, relax.Tuple) else [result]
        return relax.Tuple(outputs + [self._float(var) for _, var in observed])

    # -- views of a tensor -------------------------------------------------------------

    def _float(self, var):
        tensor = self.env[var]
        if tensor.float is None:
            tensor.float = self.bb.emit(self._dequantized(tensor))
        return tensor.float

    def _int8(self, var):
        """The int8 view: the float tensor quantised, or a 16x8 layer's int16 output narrowed."""
        tensor = self.env[var]
        if tensor.int8 is None:
            source = tensor.float if tensor.float is not None else self._dequantized(tensor)
            tensor.int8 = self.bb.emit(qdq.quantize(source, tensor.qparams.scale, tensor.qparams.zero_point))
        return tensor.int8

    def _int16(self, var):
        """The int16 view a 16x8 layer reads: the float tensor quantised, or the int8 one widened."""
        tensor = self.env[var]
        if tensor.int16 is None:
            q16 = self.plan16[self.ids[var]]
            source = tensor.float if tensor.float is not None else self._dequantized(tensor)
            tensor.int16 = self.bb.emit(qdq.quantize(source, q16.scale, 0, dtype="int16"))
            tensor.qparams16 = q16
        return tensor.int16

    def _dequantized(self, tensor):
        """dequantize of the tensor's own integer view (int16 where a 16x8 layer wrote it)."""
        if tensor.written_int16:
            return _dequantize16(tensor.int16, tensor.qparams16)
        return qdq.dequantize(tensor.int8, tensor.qparams.scale, tensor.qparams.zero_point)

    def _float_expr(self, expr):
        if isinstance(expr, relax.Var):
            return self._float(expr)
        if isinstance(expr, relax.Tuple):
            return relax.Tuple([self._float_expr(field) for field in expr.fields])
        if isinstance(expr, relax.Call):
            return relax.Call(expr.op, [self._float_expr(a) for a in expr.args], expr.attrs, expr.ty_args, span=expr.span)
        if isinstance(expr, relax.TupleGetItem):
            return relax.TupleGetItem(self._float_expr(expr.tuple_value), expr.index)
        return expr

    def _has_qparams(self, expr) -> bool:
        return isinstance(expr, relax.Var) and self.env[expr].qparams is not None

    # -- bindings ----------------------------------------------------------------------

    def _binding(self, binding) -> _Tensor:
        value, out_qparams = binding.value, self.plan.get(self.ids.get(binding.var))
        if isinstance(value, relax.Var):
            return self.env[value]
        if isinstance(value, relax.Call) and out_qparams is not None:
            kind = callee_kind(self.mod, value)
            tensor_args = [a for a in value.args if isinstance(a, relax.Var)]
            if isinstance(value.op, tvm.ir.GlobalVar) and self._quantises(value, kind, tensor_args):
                return self._quantised_group(value, out_qparams, self.plan16.get(self.ids.get(binding.var)))
            same_qparams = len(tensor_args) == 1 and self.env[tensor_args[0]].qparams == out_qparams
            if (computes_at_input_qparams(value) and same_qparams) or self._int8_softmax(binding, tensor_args):
                args = [self._float_from_int8(a) if isinstance(a, relax.Var) else a for a in value.args]
                computed = self.bb.emit(relax.Call(value.op, args, value.attrs, value.ty_args, span=value.span))
                return _Tensor(int8_var=self.bb.emit(qdq.quantize(computed, out_qparams.scale, out_qparams.zero_point)),
                               qparams=out_qparams)
            # (a group call here is one --keep-float named: it is inlined as float below)
            # (a float-only tensor, a float softmax, reshaped into a float model output stays float)
            float_output = binding.var in self.float_outputs and same_qparams and self.env[tensor_args[0]].int8 is None
            if (moves_int8(self.mod, value) and same_qparams and not isinstance(value.op, tvm.ir.GlobalVar)
                    and not float_output):
                args = [self._int8(a) if isinstance(a, relax.Var) else a for a in value.args]
                return _Tensor(int8_var=self.bb.emit(relax.Call(value.op, args, value.attrs, value.ty_args, span=value.span)),
                               qparams=out_qparams)
            if is_call_to(value, "relax.concat") and all(self._has_qparams(f) for f in value.args[0].fields):
                fields = relax.Tuple([self._float(f) for f in value.args[0].fields])
                joined = self.bb.emit(relax.Call(value.op, [fields], value.attrs, span=value.span))
                return _Tensor(int8_var=self.bb.emit(qdq.quantize(joined, out_qparams.scale, out_qparams.zero_point)),
                               qparams=out_qparams)
        if isinstance(value, relax.Call) and isinstance(value.op, tvm.ir.GlobalVar) and group_name(self.mod[value.op]):
            return _Tensor(float_var=self._inlined_float_group(value), qparams=out_qparams)
        float_var = self.bb.emit(self._float_expr(value))
        return _Tensor(float_var=float_var, qparams=out_qparams)

    def _int8_softmax(self, binding, tensor_args) -> bool:
        """A softmax of an int8 tensor becomes TFLite's int8 SOFTMAX (dequantize -> softmax ->
        quantize at SOFTMAX_QPARAMS), except when it is a float model output: there the float
        softmax is both cheap (once per inference) and finer than int8's 1/256 steps."""
        return (is_int8_softmax(binding.value) and len(tensor_args) == 1 and self._has_qparams(tensor_args[0])
                and binding.var not in self.float_outputs)

    def _inlined_float_group(self, call):
        """A group left in float becomes its plain ops: only int8 kernels' groups stay composite."""
        func = self.mod[call.op]
        local = {param: self._float_expr(arg) for param, arg in zip(func.params, call.args)}
        for binding in bindings(func):
            value = binding.value
            args = [local.get(a, a) for a in value.args]
            local[binding.var] = self.bb.emit(with_span(relax.Call(value.op, args, value.attrs, value.ty_args), value.span))
        return local[func.body.body]

    def _quantises(self, call, kind, tensor_args) -> bool:
        func = self.mod[call.op]
        if not is_quantisable_group(kind) or set(group_nodes(func)) & self.keep_float:
            return False
        return bool(tensor_args) and all(self._has_qparams(a) for a in tensor_args)

    def _quantised_group(self, call, out_qparams, out16=None) -> _Tensor:
        """`out16`: the output's int16 parameters, used when the group is an int16 layer."""
        func = self.mod[call.op]
        if group_name(func) == UNARY:
            return self._table_lookup(call, func, out_qparams)
        if out16 is not None and self._runs_16x8(call, func):
            try:
                return self._mac_group(call, func, out_qparams, out16)
            except _BiasTooWide:
                pass
        return self._mac_group(call, func, out_qparams)

    def _runs_16x8(self, call, func) -> bool:
        """A convolution or dense layer --accuracy-budget raised to int16 (its inputs planned)."""
        return (is_mac_group(func) and bool(set(group_nodes(func)) & self.int16_layers)
                and all(self.ids.get(arg) in self.plan16 for arg in call.args if isinstance(arg, relax.Var)))

    def _mac_group(self, call, func, out_qparams, out16=None) -> _Tensor:
        """The group inlined with quantised weights and bias: int8, or 16x8 given `out16`."""
        wide = out16 is not None
        local, local_qparams = {}, {}
        for param, arg in zip(func.params, call.args):
            local[param] = self._float_from_int16(arg) if wide else self._float_from_int8(arg)
            local_qparams[param] = self.env[arg].qparams16 if wide else self.env[arg].qparams
        weight_scales = shift = None
        input_means = {param: self.input_means.get(self.ids.get(arg)) for param, arg in zip(func.params, call.args)}
        for binding in bindings(func):
            value = binding.value
            args = [local.get(a, a) for a in value.args]
            if (is_call_to(value, "relax.nn.conv2d") or is_call_to(value, "relax.matmul")) and is_const(value.args[1]):
                conv = is_call_to(value, "relax.nn.conv2d")
                weight = value.args[1].value.numpy()
                weight_q, weight_scales = _quantize_layer_weight(func, weight, axis=0 if conv else 1)
                input_scale = local_qparams[value.args[0]].scale
                args[1] = self.bb.emit(qdq.weight(weight_q, weight_scales, axis=0 if conv else 1))
                shift = _output_shift(value, weight, weight_q, weight_scales, input_means.get(value.args[0]))
            elif is_call_to(value, "relax.nn.prelu") and is_const(value.args[1]):
                args[1] = self.bb.emit(_quantised_slope(func, value.args[1].value.numpy()))
            elif is_call_to(value, "relax.add") and is_const(value.args[1]) and weight_scales is not None:
                bias = value.args[1].value.numpy()
                if shift is not None:  # bias correction: the float bias the quantised weights need
                    bias = (bias.astype(np.float64) - shift.reshape(bias.shape)).astype(bias.dtype)
                bias_q, bias_scales = quantize_bias(bias, input_scale, weight_scales, wide)
                args[1] = self.bb.emit(qdq.bias(bias_q, bias_scales, axis=-1))
            # arguments are bound vars, so emitting does not rebuild the call (which would drop its span)
            new_call = with_span(relax.Call(value.op, args, value.attrs, value.ty_args), value.span)
            local[binding.var] = self.bb.emit(new_call)
        result = local[func.body.body]
        if wide:
            quantised = self.bb.emit(qdq.quantize(result, out16.scale, 0, dtype="int16"))
            return _Tensor(qparams=out_qparams, int16_var=quantised, qparams16=out16)
        quantised = self.bb.emit(qdq.quantize(result, out_qparams.scale, out_qparams.zero_point))
        return _Tensor(int8_var=quantised, qparams=out_qparams)

    def _table_lookup(self, call, func, out_qparams) -> _Tensor:
        """A function of one tensor as its int8 table: take(table, x_q + 128) (quant/qdq.py). A function
        undefined somewhere on the input's int8 range (NaN) stays float."""
        (arg,) = call.args
        in_qparams = self.env[arg].qparams
        try:
            table = unary_table(evaluate(func), in_qparams.scale, in_qparams.zero_point, out_qparams.scale,
                                out_qparams.zero_point)
        except ValueError:
            return _Tensor(float_var=self._inlined_float_group(call), qparams=out_qparams)
        nodes = group_nodes(func)
        span = node_span(nodes[0]) if nodes else None
        wide = self.bb.emit(with_span(relax.op.astype(self._int8(arg), "int32"), span))
        index = self.bb.emit(with_span(relax.op.add(wide, relax.const(qdq.TABLE_OFFSET, "int32")), span))
        return _Tensor(int8_var=self.bb.emit(with_span(qdq.table_lookup(table, index), span)), qparams=out_qparams)

    def _float_from_int8(self, var):
        """A dequantize of the int8 view, made fresh for each group so each group owns its dequantize."""
        tensor = self.env[var]
        return self.bb.emit(qdq.dequantize(self._int8(var), tensor.qparams.scale, tensor.qparams.zero_point))

    def _float_from_int16(self, var):
        """A 16x8 layer's own dequantize of the int16 view."""
        return self.bb.emit(_dequantize16(self._int16(var), self.env[var].qparams16))


def _dequantize16(int16_var, qparams16):
    return qdq.dequantize(int16_var, qparams16.scale, 0, zero_point_dtype="int16")
