"""An int8 global mean that drops its reduced axes keeps them, and a reshape on the int8 result drops them.

    quantize(mean(dequantize(x_q), axes, keepdims=False))
 -> reshape(quantize(mean(dequantize(x_q), axes, keepdims=True)), shape)

The same values: a reshape only moves int8 values. It is for the TFLite integer spec of our own
int8 models (build --emit tflite): LiteRT computes int8 MEAN with keep_dims in one arithmetic
(optimized_integer_ops::Mean, which the TFLite spec's mean kernel matches bit for bit) and
without it in another, so the build and the exported file both use the first. A TFLite
model's own MEAN is left as its converter wrote it.
"""

import tvm
from tvm import relax

from compiler.passes.util import bound_values, is_call_to, map_functions


def mean_keepdims(mod: tvm.IRModule) -> tvm.IRModule:
    return map_functions(mod, lambda func: relax.analysis.remove_all_unused(_KeepDims(func).visit_expr(func)))


@relax.expr_functor.mutator
class _KeepDims(relax.PyExprMutator):
    def __init__(self, func):
        super().__init__()
        self.bound = bound_values(func)

    def visit_var_binding_(self, binding):
        value = binding.value
        mean = self.bound.get(value.args[0]) if is_call_to(value, "relax.quantize") else None
        if not is_call_to(mean, "relax.mean") or bool(mean.attrs.keepdims) or mean.attrs.axis is None:
            super().visit_var_binding_(binding)
            return
        kept = self.builder_.emit(relax.op.mean(self.visit_expr(mean.args[0]), mean.attrs.axis, keepdims=True))
        quantized = self.builder_.emit(relax.op.quantize(kept, value.args[1], value.args[2], axis=int(value.attrs.axis),
                                                         out_dtype=str(value.attrs.out_dtype)))
        self.set_var_remap(binding.var, self.builder_.emit(relax.op.reshape(quantized, value.ty.shape)))
