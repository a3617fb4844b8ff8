"""A pre-quantised conv2d or dense layer whose bias is still float gets the int32 bias the int8 kernels take.

PT2E-quantised PyTorch programs (XNNPACK's quantizer) and some QDQ exporters leave the bias of a
quantised convolution in float: conv2d(dequantize(x), dequantize(W)) + b. The integer kernel adds an
int32 bias at scale s_x * s_w[c], which is what XNNPACK and ONNX Runtime do with such a bias at run
time; this pass writes it in the form ONNX Runtime's QDQ models import as (reshape of a per-channel
dequantize of an int32 constant), so the int8 conv pattern matches:
    b  ->  reshape(dequantize(round(b / (s_x s_w)) as int32, s_x s_w, 0, axis=-1), [1, C, 1, 1])
The rounding of b is the only difference from the float reference: at most half a step of the
accumulator's scale. Pure IRModule -> IRModule; only layers whose input and weight are dequantized
with constant scales (per-tensor input, per-channel or per-tensor weight) are touched.
"""

import numpy as np
import tvm
from tvm import relax

from compiler.passes.util import bindings, bound_values, is_call_to, is_const, map_functions


def quantize_float_bias(mod: tvm.IRModule) -> tvm.IRModule:
    return map_functions(mod, _rewrite)


def _rewrite(func: relax.Function) -> relax.Function:
    bound = bound_values(func)
    biases = {}
    for binding in bindings(func):
        quantised = _int32_bias(binding.value, bound)
        if quantised is not None:
            biases[binding.var] = quantised
    return _Rewriter(biases).visit_expr(func) if biases else func


def _int32_bias(value, bound):
    """(int32 bias, scales, shape) when `value` is conv2d / matmul(dq(x), dq(W)) + a float per-channel constant."""
    if not is_call_to(value, "relax.add") or not is_const(value.args[1]):
        return None
    bias = value.args[1].value.numpy()
    layer = bound.get(value.args[0])
    conv = is_call_to(layer, "relax.nn.conv2d") and layer.attrs.data_layout == "NCHW"
    if bias.dtype != np.float32 or not (conv or is_call_to(layer, "relax.matmul")):
        return None
    x_dq, w_dq = bound.get(layer.args[0]), bound.get(layer.args[1])
    if not (_dequantize_with_const_scale(x_dq) and _dequantize_with_const_scale(w_dq) and is_const(w_dq.args[0])):
        return None
    s_x, s_w = x_dq.args[1].value.numpy(), w_dq.args[1].value.numpy()
    weight_shape = w_dq.args[0].value.numpy().shape
    channels = int(weight_shape[0] if conv else weight_shape[-1])  # conv OIHW; matmul W [K, N]
    shapes = ((1, channels, 1, 1), (channels, 1, 1)) if conv else ((channels,), (1, channels))
    if s_x.size != 1 or s_w.size not in (1, channels) or bias.shape not in shapes:
        return None
    scales = (np.float64(s_x.reshape(())) * np.broadcast_to(s_w.astype(np.float64).reshape(-1), (channels,)))
    scales = scales.astype(np.float32)
    q = np.clip(np.round(bias.reshape(-1).astype(np.float64) / scales), -(2**31), 2**31 - 1).astype(np.int32)
    return q, scales, bias.shape


def _dequantize_with_const_scale(call) -> bool:
    return is_call_to(call, "relax.dequantize") and is_const(call.args[1])


@relax.expr_functor.mutator
class _Rewriter(relax.PyExprMutator):
    def __init__(self, biases):
        super().__init__()
        self.biases = biases

    def visit_var_binding_(self, binding):
        if binding.var not in self.biases:
            return super().visit_var_binding_(binding)
        q, scales, shape = self.biases[binding.var]
        dequantized = self.builder_.emit(relax.op.dequantize(relax.const(q), relax.const(scales),
                                                             relax.const(np.zeros(q.size, np.int32)), axis=-1))
        bias = dequantized if len(shape) == 1 else self.builder_.emit(relax.op.reshape(dequantized, shape))
        add = binding.value
        new = relax.Call(add.op, [self.visit_expr(add.args[0]), bias], add.attrs, span=add.span)
        self.builder_.emit_normalized(relax.VarBinding(binding.var, self.builder_.normalize(new)))
