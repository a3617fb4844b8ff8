"""Fold inference BatchNorm into the Conv2D that feeds it.

conv2d(x, W) [+ b]  ->  batch_norm(gamma, beta, mean, var, eps)
becomes
conv2d(x, W * s) + ((b - mean) * s + beta),   s = gamma / sqrt(var + eps)   per output channel.

TVM's FoldBatchnormToConv2D misses convs that carry a bias (ONNX Conv with a B input
imports as conv2d + add), which is most exported models; this pass handles both.
A conv whose output has other users is left alone: folding would change them too.
Run after FoldConstant (weights must be constants) and DeadCodeElimination (unused
mean/var outputs of batch_norm would otherwise count as users).

Written as a binding mutator rather than with dpl.rewrite_call because rewrite_call
drops the span of the call it substitutes, and spans carry ONNX provenance: the new
conv keeps the Conv node's span and the new bias add takes the BatchNorm node's span.
"""

import numpy as np
import tvm
from tvm import relax

from compiler.frontend.provenance import with_span
from compiler.passes.util import (bound_values, is_call_to, is_const, is_nchw_conv_with_const_weight, map_functions,
                                  var_use_counts)


def fold_batchnorm(mod: tvm.IRModule) -> tvm.IRModule:
    return map_functions(mod, lambda func: _BatchNormFolder(func).visit_expr(func))


@relax.expr_functor.mutator
class _BatchNormFolder(relax.PyExprMutator):
    def __init__(self, func):
        super().__init__()
        self.bound = bound_values(func)
        self.uses = var_use_counts(func)

    def visit_var_binding_(self, binding):
        match = self._match(binding.value)
        if match is None:
            return super().visit_var_binding_(binding)
        conv, bias, norm = match
        new_weight, new_bias = _folded_params(conv, bias, norm)
        data = self.visit_expr(conv.args[0])
        new_conv = self.builder_.emit(with_span(relax.Call(conv.op, [data, relax.const(new_weight)], conv.attrs), conv.span))
        add = relax.Call(tvm.ir.Op.get("relax.add"), [new_conv, relax.const(new_bias)], span=norm.span)
        self.builder_.emit_normalized(relax.VarBinding(binding.var, self.builder_.normalize(add)))

    def _match(self, value):
        """(conv, bias add or None, batch_norm) if `value` is bn(conv [+ bias])[0] and foldable."""
        if not isinstance(value, relax.TupleGetItem) or value.index != 0:
            return None
        norm = self.bound.get(value.tuple_value)
        if not is_call_to(norm, "relax.nn.batch_norm") or not all(map(is_const, norm.args[1:])):
            return None
        if bool(norm.attrs.training) or int(norm.attrs.axis) != 1 or self.uses.get(value.tuple_value) != 1:
            return None
        producer_var = norm.args[0]
        producer = self.bound.get(producer_var)
        bias = None
        if is_call_to(producer, "relax.add") and is_const(producer.args[1]) and self.uses.get(producer_var) == 1:
            bias, producer_var = producer, producer.args[0]
            producer = self.bound.get(producer_var)
        if not is_nchw_conv_with_const_weight(producer) or self.uses.get(producer_var) != 1:
            return None
        out_channels = int(producer.args[1].ty.shape[0])
        if bias is not None and bias.args[1].value.numpy().shape not in ((1, out_channels, 1, 1), (out_channels, 1, 1)):
            return None  # not a per-channel bias (a (C,) constant broadcasts along W): some other add
        return producer, bias, norm


def _folded_params(conv, bias, norm):
    """Folded (weight, bias) in the weight's dtype; the arithmetic is done in float64."""
    gamma, beta, mean, var = (arg.value.numpy().astype(np.float64) for arg in norm.args[1:])
    if not bool(norm.attrs.scale):  # batch_norm ignores gamma (beta) when scale (center) is off
        gamma = np.ones_like(gamma)
    if not bool(norm.attrs.center):
        beta = np.zeros_like(beta)
    scale = gamma / np.sqrt(var + float(norm.attrs.epsilon))
    weight = conv.args[1].value.numpy()
    old_bias = bias.args[1].value.numpy().reshape(-1) if bias is not None else np.zeros(weight.shape[0])
    new_weight = (weight * scale.reshape(-1, 1, 1, 1)).astype(weight.dtype)
    new_bias = ((old_bias - mean) * scale + beta).astype(weight.dtype).reshape(1, -1, 1, 1)
    return new_weight, new_bias
