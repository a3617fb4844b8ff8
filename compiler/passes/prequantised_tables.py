"""Pre-quantised models: elementwise functions as int8 tables, moves on int8. IRModule -> IRModule.

A model that carries its own quantisation (QDQ ONNX, full-int8 TFLite) writes a sigmoid or a
hard-swish as dequantize(x_q) -> the float op(s) -> quantize, and a reshape as dequantize ->
reshape -> quantize with the same parameters. Our own quantiser (insert_qdq) never writes
either: it tabulates the function and moves the int8 tensor. This pass brings a pre-quantised
graph to that form, so the same int8 kernels take it:

  quantize(f(dequantize(x_q, s, z)), s', z')  ->  take(table, astype(x_q, int32) + 128)
      f a region of elementwise ops of one tensor (passes/group_unary.py's regions), the table
      quant/reference/lut.py's for f at (s, z) -> (s', z');
  quantize(move(dequantize(x_q, s, z)), s, z)  ->  move(x_q)
      move a reshape / permute_dims / squeeze / expand_dims: it changes no value, and
      quantize(dequantize(q)) with equal parameters is q.

Per-tensor int8 parameters only; a function that is NaN somewhere on the input range stays float.
"""

import numpy as np
import tvm
from tvm import relax

from compiler.frontend.provenance import with_span
from compiler.passes.group_unary import group_function, unary_regions
from compiler.passes.util import bound_values, is_call_to, is_const, var_use_counts
from compiler.quant import qdq
from compiler.quant.reference.lut import unary_table
from compiler.quant.unary_function import evaluate

_MOVES = ("relax.reshape", "relax.permute_dims", "relax.squeeze", "relax.expand_dims")


def prequantised_tables(mod: tvm.IRModule) -> tvm.IRModule:
    main = mod["main"]
    rewriter = _Rewriter(main)
    if not rewriter.replacements:
        return mod
    new_main = relax.analysis.remove_all_unused(rewriter.visit_expr(main))
    rewriter.builder_.update_func(mod.get_global_var("main"), new_main)
    return rewriter.builder_.get()


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
    def __init__(self, main):
        super().__init__()
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
            elif any(is_call_to(self.bound.get(produced), op) for op in _MOVES):
                self._move(var, self.bound[produced], out)

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
        try:
            table = unary_table(evaluate(func), params[0], params[1], out[0], out[1])
        except ValueError:
            return
        span = region[-1].value.span

        def lookup(int8):
            wide = self.builder_.emit(with_span(relax.op.astype(int8, "int32"), span))
            index = self.builder_.emit(with_span(relax.op.add(wide, relax.const(qdq.TABLE_OFFSET, "int32")), span))
            return with_span(qdq.table_lookup(table, index), span)
        self.replacements[var] = (source, lookup)

    def _move(self, var, move, out) -> None:
        source, params = self._dequantized(move.args[0])
        if source is None or params != out:
            return
        self.replacements[var] = (source, lambda int8: relax.Call(move.op, [int8] + list(move.args[1:]), move.attrs,
                                                                  span=move.span))

    def visit_var_binding_(self, binding):
        if binding.var not in self.replacements:
            return super().visit_var_binding_(binding)
        source, make = self.replacements[binding.var]
        value = self.builder_.normalize(make(self.visit_expr(source)))
        var = self.builder_.emit(value) if isinstance(binding.var, relax.DataflowVar) else self.builder_.emit_output(value)
        self.set_var_remap(binding.var, var)
