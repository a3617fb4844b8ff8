"""--quantize fp16: the weights stored as float16, computed in float32 (TFLite's float16 quantisation
as its CPU kernels run it: half the model bytes, no calibration, errors of float16 rounding only,
relative 2^-11 per weight).

Every float32 constant with at least FP16_MIN_ELEMENTS elements that a conv2d, matmul or add reads
becomes float16, read through an astype to float32 at the use: the artefact stores the float16 array
and widens it at run time. Small constants (scalars, clip bounds) stay float32. The pass is pure
IRModule -> IRModule; halved_constants(mod) counts the constants it stores in float16.
"""

import numpy as np
import tvm
from tvm import relax

from compiler.passes.util import is_call_to, is_const, map_functions

FP16_MIN_ELEMENTS = 2
READERS = ("relax.nn.conv2d", "relax.matmul", "relax.add")


def fp16_weights(mod: tvm.IRModule) -> tvm.IRModule:
    return map_functions(mod, lambda func: _Rewriter().visit_expr(func))


def halved_constants(mod: tvm.IRModule) -> int:
    from compiler.analysis import op_calls

    return sum(1 for func in mod.functions.values() if isinstance(func, relax.Function)
               for call in op_calls(func) if any(call.op.name == name for name in READERS)
               for arg in call.args if _halvable(arg))


def _halvable(expr) -> bool:
    if not is_const(expr):
        return False
    value = expr.value.numpy()
    return value.dtype == np.float32 and value.size >= FP16_MIN_ELEMENTS and np.all(np.abs(value) <= 65504)


@relax.expr_functor.mutator
class _Rewriter(relax.PyExprMutator):
    def visit_call_(self, call):
        call = super().visit_call_(call)
        if not any(is_call_to(call, name) for name in READERS) or not any(map(_halvable, call.args)):
            return call
        args = [relax.op.astype(relax.const(arg.value.numpy().astype(np.float16)), "float32") if _halvable(arg) else arg
                for arg in call.args]
        return relax.Call(call.op, args, call.attrs, call.ty_args, span=call.span)
