"""--quantize dynamic: int8 weights, activations quantised per tensor at run time (ONNX Runtime's
quantize_dynamic and TFLite's dynamic-range models do the same; no calibration data).

Every conv2d / matmul with a constant weight (NCHW float graph, after BatchNorm folding) becomes
    lo, hi  = min(min(x), 0), max(max(x), 0)                       per call, per tensor
    s_x     = (hi - lo) / 255  (1 when x is all zero)               as DynamicQuantizeLinear (uint8)
    zp      = clip(round(-lo / s_x), 0, 255)                         round half to even
    x_q     = clip(round(x / s_x) + zp, 0, 255) - zp                 int32, 0 is a real 0 (zero padding)
    acc     = conv2d(x_q, W_q) in int32                              exact integer sums
    y       = float32(acc) * (s_x * s_w[c])                          then the float bias and activation
with W_q = round(W / s_w) per output channel, symmetric in [-127, 127] (the int8 scheme's weights).
Everything else stays float. The pass is pure IRModule -> IRModule; dynamic_layers(mod) counts the
calls it rewrites.
"""

import numpy as np
import tvm
from tvm import relax

from compiler.frontend.provenance import with_span
from compiler.passes.insert_qdq import quantize_weight
from compiler.passes.util import is_call_to, is_const, is_nchw_conv_with_const_weight, map_functions

LEVELS = 255.0


def dynamic_quant(mod: tvm.IRModule) -> tvm.IRModule:
    return map_functions(mod, lambda func: _Rewriter().visit_expr(func))


def dynamic_layers(mod: tvm.IRModule) -> int:
    from compiler.analysis import op_calls

    return sum(1 for func in mod.functions.values() if isinstance(func, relax.Function)
               for call in op_calls(func) if _rewritable(call))


def _rewritable(call) -> bool:
    if is_nchw_conv_with_const_weight(call):
        return True
    return (is_call_to(call, "relax.matmul") and is_const(call.args[1])
            and len(call.args[1].ty.shape) == 2 and call.args[1].ty.dtype == "float32")


@relax.expr_functor.mutator
class _Rewriter(relax.PyExprMutator):
    def visit_call_(self, call):
        call = super().visit_call_(call)
        if not _rewritable(call):
            return call
        conv = is_call_to(call, "relax.nn.conv2d")
        weight_q, weight_scales = quantize_weight(call.args[1].value.numpy(), axis=0 if conv else 1)
        x_q, x_scale = self._quantised_input(call.args[0])
        weight = relax.op.astype(relax.const(weight_q), "int32")  # stored as int8: the model's bytes are int8
        if conv:
            a = call.attrs
            acc = relax.op.nn.conv2d(x_q, weight, a.strides, a.padding, a.dilation, a.groups, a.data_layout,
                                     a.kernel_layout, a.out_layout, out_dtype="int32")
            scale_shape = (1, -1, 1, 1)
        else:
            acc = relax.op.matmul(x_q, weight, out_dtype="int32")
            scale_shape = (-1,)
        acc = self.builder_.emit(with_span(acc, call.span))
        output_scale = relax.op.multiply(x_scale, relax.const(weight_scales.astype(np.float32).reshape(scale_shape)))
        return relax.op.multiply(relax.op.astype(acc, "float32"), output_scale)

    def _quantised_input(self, x):
        emit = self.builder_.emit
        zero, one = relax.const(0.0, "float32"), relax.const(1.0, "float32")
        lo = emit(relax.op.minimum(relax.op.min(x), zero))
        hi = emit(relax.op.maximum(relax.op.max(x), zero))
        spread = emit(relax.op.divide(relax.op.subtract(hi, lo), relax.const(LEVELS, "float32")))
        scale = emit(relax.op.where(relax.op.greater(spread, zero), spread, one))
        zero_point = emit(relax.op.clip(relax.op.round(relax.op.divide(relax.op.negative(lo), scale)), 0, 255))
        q = relax.op.clip(relax.op.add(relax.op.round(relax.op.divide(x, scale)), zero_point), 0, 255)
        return emit(relax.op.astype(relax.op.subtract(q, zero_point), "int32")), scale
