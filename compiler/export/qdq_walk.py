"""The walk every exporter of the int8 model shares (export/tflite.py, export/onnx_qdq.py): the QDQ
module's int8 groups (codegen/int8.py int8_groups) as main's bindings, and the scale and zero point
of every int8 tensor between them.

An int8 tensor's parameters are those of the quantize that writes it (a group's output) or of the
dequantize that reads it (a table lookup's output, an int8 model input), carried through the ops
that only move int8 values (reshape, transpose) and through uint8 model I/O, which our QDQ form
writes as an integer shift (astype int16, +- offset, clamp, astype): the same scale, the zero point
moved by the offset.
"""

import numpy as np
import tvm
from tvm import relax

from compiler.errors import CompilerError
from compiler.passes.util import behind_tuple_var, bindings, bound_values
from compiler.quant import patterns
from compiler.quant import qdq_reads as reads
from compiler.quant.qdq import io_qparams


def main_bindings(mod: tvm.IRModule) -> list:
    """main's bindings that compute a tensor, in order (not the tuple a model of several outputs binds
    them into, nor its aliases: main_outputs reads that)."""
    return [b for b in bindings(mod["main"]) if not isinstance(b.var.ty, relax.TupleType)]


def main_outputs(mod: tvm.IRModule) -> list:
    """main's returned vars: each output of a model of several outputs, whether main returns the
    tuple itself or a var bound to it (the TFLite frontend's form)."""
    result = behind_tuple_var(bound_values(mod["main"]), mod["main"].body.body)
    return list(result.fields) if isinstance(result, relax.Tuple) else [result]


class QParamPlan:
    """(scale, zero point) of every int8 (and uint8) var of main: `qparams[var]`. `what` prefixes
    the error when a tensor is read at one scale and written at another ("--emit tflite")."""

    def __init__(self, mod: tvm.IRModule, bindings: list, what: str):
        self.mod, self.what = mod, what
        self.bound = {b.var: b.value for b in bindings}
        self.qparams: dict = {}
        inputs, outputs = io_qparams(mod["main"])  # int8 / uint8 model I/O (--io): a table there carries none
        for param in mod["main"].params:
            if param.name in inputs:
                self._agree(param, inputs[param.name])
        for var, qparams in zip(main_outputs(mod), outputs):
            if qparams is not None:
                self._agree(var, qparams)
        self._plan(bindings)
        self._plan_uint8(bindings)
        self._plan(bindings)  # what a uint8 output's shift gave its int8 source, back through moves

    def _plan(self, bindings) -> None:
        for _ in range(2):  # forward then backward through moves reaches every tensor
            for binding in bindings:
                value = binding.value
                if is_composite_call(self.mod, value):
                    func = self.mod[value.op]
                    _, a = patterns.match_composite(func)
                    if "quant" in a or "op" in a and is_op(a["op"], "relax.quantize"):
                        quant = a.get("quant", a.get("op"))
                        self._agree(binding.var, reads.output_qparams(quant))
                    for expr in dequantized_params(a):
                        arg = value.args[[q.same_as(expr.args[0]) for q in func.params].index(True)]
                        self._agree(arg, (reads.tensor_scale(expr.args[1]), reads.tensor_zero_point(expr.args[2])))
                elif isinstance(value, relax.Call) and moves(value):
                    source = value.args[0]
                    if source in self.qparams:
                        self._agree(binding.var, self.qparams[source])
                    elif binding.var in self.qparams:
                        self._agree(source, self.qparams[binding.var])
                elif isinstance(value, relax.Var) and value in self.qparams:
                    self._agree(binding.var, self.qparams[value])
                elif isinstance(value, relax.Var) and binding.var in self.qparams:  # an alias of an int8 output
                    self._agree(value, self.qparams[binding.var])

    def _plan_uint8(self, bindings) -> None:
        for binding in bindings:
            shift = self.integer_shift(binding.value)
            if shift is None:
                continue
            source, offset = shift
            if source in self.qparams:
                scale, zero_point = self.qparams[source]
                self._agree(binding.var, (scale, zero_point + offset))
            elif binding.var in self.qparams:
                scale, zero_point = self.qparams[binding.var]
                self._agree(source, (scale, zero_point - offset))

    def integer_shift(self, value):
        """(x, offset) when value is astype(clip?(astype(x, int16) +- offset), int8 | uint8), x int8 or
        uint8 and the clip (if any) the result type's range; else None."""
        if not is_op(value, "relax.astype") or str(value.attrs.dtype) not in ("int8", "uint8"):
            return None
        info = np.iinfo(str(value.attrs.dtype))
        shifted = self.bound.get(value.args[0])
        if is_op(shifted, "relax.clip"):
            if [reads.prim_float(v) for v in shifted.args[1:3]] != [info.min, info.max]:
                return None
            shifted = self.bound.get(shifted.args[0])
        if not (is_op(shifted, "relax.add") or is_op(shifted, "relax.subtract")):
            return None
        widened, offset = self.bound.get(shifted.args[0]), shifted.args[1]
        if not (is_op(widened, "relax.astype") and reads.is_const(offset) and offset.value.numpy().size == 1):
            return None
        source = widened.args[0]
        if str(source.ty.dtype) not in ("int8", "uint8"):
            return None
        amount = int(offset.value.numpy().reshape(()))
        return source, amount if is_op(shifted, "relax.add") else -amount

    def is_widening_step(self, value) -> bool:
        """astype(int8 | uint8 -> int16), an offset of it or its clamp: the first steps of an integer shift."""
        if is_op(value, "relax.astype") and str(value.attrs.dtype) == "int16":
            return str(value.args[0].ty.dtype) in ("int8", "uint8")
        return any(is_op(value, op) for op in ("relax.add", "relax.subtract", "relax.clip")) and \
            self.is_widening_step(self.bound.get(value.args[0]))

    def _agree(self, var, qparams) -> None:
        known = self.qparams.setdefault(var, qparams)
        if known != qparams:
            raise CompilerError(f"{self.what}: int8 tensor {var.name} is read at scale {qparams} but written at "
                                f"{known}")


def layer_name(func) -> str | None:
    """The ONNX node (or TFLite operator) a composite function computes, as reports name it."""
    from compiler.report.summary import computing_nodes

    names = computing_nodes(func)
    return names[0] if names else None


def is_op(call, name) -> bool:
    return isinstance(call, relax.Call) and isinstance(call.op, tvm.ir.Op) and call.op.name == name


def moves(call) -> bool:
    """An op that only moves values: reshape, transpose."""
    return is_op(call, "relax.reshape") or is_op(call, "relax.permute_dims")


def is_composite_call(mod, value) -> bool:
    if not (isinstance(value, relax.Call) and isinstance(value.op, relax.GlobalVar)):
        return False
    func = mod[value.op]
    return isinstance(func, relax.Function) and func.attrs is not None and "Composite" in func.attrs


def dequantized_params(a) -> list:
    """The dequantize calls of a match that read a composite parameter (not a constant)."""
    return [expr for expr in a.values() if is_op(expr, "relax.dequantize") and isinstance(expr.args[0], relax.Var)]
