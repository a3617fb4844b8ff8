"""Pre-quantised models: elementwise functions as int8 tables, moves on int8. IRModule -> IRModule.

A model that carries its own quantisation (QDQ ONNX, full-int8 TFLite) writes a sigmoid or a
hard-swish as dequantize(x_q) -> the float op(s) -> quantize, and a reshape as dequantize ->
reshape -> quantize with the same parameters. Our own quantiser (insert_qdq) never writes
either: it tabulates the function and moves the int8 tensor. This pass brings a pre-quantised
graph to that form, so the same int8 kernels take it:

  quantize(f(dequantize(x_q, s, z)), s', z')  ->  take(table, astype(x_q, int32) + 128)
      f a region of elementwise ops of one tensor (passes/group_unary.py's regions), the table
      quant/reference/lut.py's for f at (s, z) -> (s', z');
  quantize(moves(dequantize(x_q, s, z)), s, z)  ->  moves(x_q)
      moves a chain of reshape / permute_dims / squeeze / expand_dims / strided_slice / nearest
      resize: they only move or select values, and quantize(dequantize(q)) with equal parameters is q.

Per-tensor int8 parameters only; a function that is NaN somewhere on the input range stays float.
For a TFLite model a region that is hard-swish, sigmoid, tanh or a leaky ReLU takes the table
LiteRT's own kernel computes, and an int8 -> int8 QUANTIZE (quantize(dequantize(x_q)) with other
parameters) becomes LiteRT's requantisation as a table (quant/reference/tflite_tables.py), so the
model stays bit-exact to LiteRT.
"""

import numpy as np
import tvm
from tvm import relax

from compiler.frontend.provenance import with_span
from compiler.passes.group_unary import group_function, unary_regions
from compiler.passes.util import bound_values, is_call_to, is_const, var_use_counts
from compiler.quant import qdq
from compiler.quant.fixed_point import DOUBLE_ROUNDING_TIES_UP
from compiler.quant.integer_spec import ONNX, TFLITE
from compiler.quant.reference.lut import unary_table
from compiler.quant.reference.tflite_tables import litert_table, requantize_table
from compiler.quant.unary_function import evaluate

_MOVES = ("relax.reshape", "relax.permute_dims", "relax.squeeze", "relax.expand_dims", "relax.strided_slice")


def prequantised_tables(mod: tvm.IRModule, spec: str = ONNX) -> tvm.IRModule:
    """spec: the integer spec (quant/integer_spec.py); a TFLite model's takes LiteRT's own tables
    (quant/reference/tflite_tables.py)."""
    main = mod["main"]
    rewriter = _Rewriter(main, tflite=spec == TFLITE)
    if not rewriter.replacements:
        return mod
    new_main = relax.analysis.remove_all_unused(rewriter.visit_expr(main))
    rewriter.builder_.update_func(mod.get_global_var("main"), new_main)
    return rewriter.builder_.get()


def _is_move(value) -> bool:
    """An op that only moves or selects elements: a reshape-like op, a slice, a nearest-neighbour resize."""
    if is_call_to(value, "relax.image.resize2d"):
        return str(value.attrs.method) == "nearest_neighbor"
    return any(is_call_to(value, op) for op in _MOVES)


def _per_tensor_int8(call) -> tuple | None:
    """(scale, zero point) of a per-tensor int8 quantize / dequantize call."""
    if not (is_const(call.args[1]) and is_const(call.args[2])):
        return None
    scale, zero_point = call.args[1].value.numpy(), call.args[2].value.numpy()
    if scale.size != 1 or zero_point.dtype != np.int8:
        return None
    return float(scale.reshape(-1)[0]), int(zero_point.reshape(-1)[0])


@relax.expr_functor.mutator
class _Rewriter(relax.PyExprMutator):
    def __init__(self, main, tflite=False):
        super().__init__()
        self.tflite = tflite
        self.bound, uses = bound_values(main), var_use_counts(main)
        self.replacements = {}  # quantize binding var -> builder(int8 source) of its replacement
        region_of = {region[-1].var: region for region in unary_regions(main)}
        for var, value in self.bound.items():
            if not is_call_to(value, "relax.quantize") or str(value.attrs.out_dtype) != "int8":
                continue
            out = _per_tensor_int8(value)
            produced = value.args[0]
            if out is None or uses.get(produced) != 1:
                continue
            if produced in region_of:
                self._table(var, region_of[produced], out)
            elif self.tflite and is_call_to(self.bound.get(produced), "relax.dequantize"):
                self._requantize(var, produced, out)
            elif _is_move(self.bound.get(produced)):
                self._moves(var, produced, out, uses)

    def _dequantized(self, expr):
        value = self.bound.get(expr)
        if is_call_to(value, "relax.dequantize") and str(value.args[0].ty.dtype) == "int8":
            params = _per_tensor_int8(value)
            if params is not None:
                return value.args[0], params
        return None, None

    def _table(self, var, region, out) -> None:
        func, x = group_function(region, "unary")
        source, params = self._dequantized(x)
        if source is None:
            return
        function = evaluate(func)
        try:
            table = litert_table(function, *params, *out) if self.tflite else None
            if table is None:
                table = unary_table(function, *params, *out)
        except ValueError:
            return
        self.replacements[var] = (source, self._lookup(table, region[-1].value.span))

    def _lookup(self, table, span):
        def lookup(int8):
            wide = self.builder_.emit(with_span(relax.op.astype(int8, "int32"), span))
            index = self.builder_.emit(with_span(relax.op.add(wide, relax.const(qdq.TABLE_OFFSET, "int32")), span))
            return with_span(qdq.table_lookup(table, index), span)
        return lookup

    def _requantize(self, var, produced, out) -> None:
        """A TFLite model's int8 -> int8 QUANTIZE: LiteRT's rounding as a table (tflite_tables.py)."""
        source, params = self._dequantized(produced)
        if source is None or params == out:
            return
        table = requantize_table(*params, *out, DOUBLE_ROUNDING_TIES_UP)
        self.replacements[var] = (source, self._lookup(table, self.bound[var].span))

    def _moves(self, var, produced, out, uses) -> None:
        """A chain of moves (DepthToSpace is reshape -> transpose -> reshape), each read only by the next."""
        chain = [self.bound[produced]]
        while _is_move(self.bound.get(chain[-1].args[0])) and uses.get(chain[-1].args[0]) == 1:
            chain.append(self.bound[chain[-1].args[0]])
        source, params = self._dequantized(chain[-1].args[0])
        if source is None or params != out:
            return

        def moved(int8):
            for move in reversed(chain[1:]):
                int8 = self.builder_.emit(relax.Call(move.op, [int8] + list(move.args[1:]), move.attrs, span=move.span))
            return relax.Call(chain[0].op, [int8] + list(chain[0].args[1:]), chain[0].attrs, span=chain[0].span)
        self.replacements[var] = (source, moved)

    def visit_var_binding_(self, binding):
        if binding.var not in self.replacements:
            return super().visit_var_binding_(binding)
        source, make = self.replacements[binding.var]
        value = self.builder_.normalize(make(self.visit_expr(source)))
        var = self.builder_.emit(value) if isinstance(binding.var, relax.DataflowVar) else self.builder_.emit_output(value)
        self.set_var_remap(binding.var, var)
