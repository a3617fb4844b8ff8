"""Cross-layer equalisation (Nagel et al. 2019, "Data-Free Quantization Through Weight Equalization
and Bias Correction", section 4.1), on the float graph before calibration.

For two convolutions joined through a positively homogeneous path (conv1 [+ bias] [-> relu] -> conv2,
every value read once), channel i of conv1's output may be scaled by 1/s_i and conv2's input channel i
by s_i without changing the function: relu(x / s) = relu(x) / s for s > 0. Choosing
s_i = sqrt(r1_i / r2_i), with r1_i the range (max |w|) of conv1's output channel i and r2_i that of
conv2's input channel i, makes both ranges sqrt(r1_i r2_i): one channel that is 100x larger than its
neighbours (which ruins a per-tensor int8 activation scale) comes back into line with them. ReLU6 and
other clips are not homogeneous (clip(x / s, 0, 6) != clip(x, 0, 6 s) / s), so paths through them
are left alone, as in the paper. conv2 may be a regular or a depthwise convolution; chains of
several convolutions are equalised pair by pair, repeatedly, until the scales settle (ITERATIONS).

The pass is a pure IRModule -> IRModule function; equalized_pairs(mod) says which convolution pairs
it would touch (the build reports them, or a note when there are none).
"""

import numpy as np
import tvm
from tvm import relax

from compiler.passes.util import (bindings, bound_values, is_call_to, is_const, is_nchw_conv_with_const_weight,
                                  map_functions, var_use_counts)

ITERATIONS = 20
SETTLED = 1e-6  # stop once every scale of a sweep is within this of 1


def equalize(mod: tvm.IRModule) -> tvm.IRModule:
    return map_functions(mod, _equalize_function)


def equalized_pairs(mod: tvm.IRModule) -> list[tuple[str, str]]:
    """(conv1, conv2) names (their spans, else binding names) of every pair equalize() rescales."""
    pairs = []
    for func in mod.functions.values():
        if isinstance(func, relax.Function):
            pairs += [(_name(p.first_var, p.first), _name(p.second_var, p.second)) for p in _pairs(func)]
    return pairs


class _Pair:
    """conv1 (+ optional bias add, + optional relu) feeding conv2, with the vars that bind them."""

    def __init__(self, first_var, first, bias_var, second_var, second):
        self.first_var, self.first, self.bias_var = first_var, first, bias_var
        self.second_var, self.second = second_var, second


def _pairs(func: relax.Function) -> list[_Pair]:
    bound, uses = bound_values(func), var_use_counts(func)
    found = []
    for binding in bindings(func):
        second = binding.value
        if not is_nchw_conv_with_const_weight(second):
            continue
        path = _homogeneous_path(second.args[0], bound, uses)
        if path is not None:
            found.append(_Pair(*path, binding.var, second))
    return [pair for pair in found if _channels_match(pair) and _bias_per_channel(pair, bound)]


def _homogeneous_path(var, bound, uses):
    """(conv1 var, conv1 call, bias var or None) if `var` is conv1 [+ const bias] [-> relu], each read once."""
    value = bound.get(var)
    if uses.get(var) != 1:
        return None
    if is_call_to(value, "relax.nn.relu"):
        var = value.args[0]
        value = bound.get(var)
        if uses.get(var) != 1:
            return None
    bias_var = None
    if is_call_to(value, "relax.add") and is_const(value.args[1]):
        bias_var, var = var, value.args[0]
        value = bound.get(var)
        if uses.get(var) != 1:
            return None
    if not is_nchw_conv_with_const_weight(value) or not (int(value.attrs.groups) == 1 or _depthwise(value)):
        return None
    return var, value, bias_var


def _depthwise(conv) -> bool:
    weight = conv.args[1].value.numpy()
    groups = int(conv.attrs.groups)
    return groups > 1 and weight.shape[1] == 1 and groups == weight.shape[0]


def _channels_match(pair: _Pair) -> bool:
    out_channels = pair.first.args[1].value.numpy().shape[0]
    weight = pair.second.args[1].value.numpy()
    if int(pair.second.attrs.groups) == 1:
        return weight.shape[1] == out_channels
    return _depthwise(pair.second) and weight.shape[0] == out_channels


def _equalize_function(func: relax.Function) -> relax.Function:
    pairs = _pairs(func)
    if not pairs:
        return func
    weights = {var: call.args[1].value.numpy().astype(np.float64)
               for p in pairs for var, call in ((p.first_var, p.first), (p.second_var, p.second))}
    biases = _biases(func, pairs)
    for _ in range(ITERATIONS):
        settled = True
        for pair in pairs:
            scale = _scales(weights[pair.first_var], weights[pair.second_var], pair.second)
            settled &= bool(np.all(np.abs(scale - 1) < SETTLED))
            weights[pair.first_var] /= scale.reshape(-1, 1, 1, 1)
            weights[pair.second_var] *= scale.reshape((-1, 1, 1, 1) if _depthwise(pair.second) else (1, -1, 1, 1))
            if pair.bias_var is not None:
                biases[pair.bias_var] /= scale.reshape(biases[pair.bias_var].shape)
        if settled:
            break
    return _Rewriter(pairs, weights, biases).visit_expr(func)


def _biases(func, pairs) -> dict:
    bound = bound_values(func)
    return {p.bias_var: bound[p.bias_var].args[1].value.numpy().astype(np.float64) for p in pairs if p.bias_var is not None}


def _bias_per_channel(pair: _Pair, bound) -> bool:
    """A bias that is not one value per channel (a (C,) constant broadcasts along W) cannot be rescaled."""
    if pair.bias_var is None:
        return True
    channels = pair.first.args[1].value.numpy().shape[0]
    return bound[pair.bias_var].args[1].value.numpy().shape in ((1, channels, 1, 1), (channels, 1, 1))


def _scales(first: np.ndarray, second: np.ndarray, second_call) -> np.ndarray:
    r1 = np.abs(first).max(axis=(1, 2, 3))
    r2 = np.abs(second).max(axis=(1, 2, 3) if _depthwise(second_call) else (0, 2, 3))
    scale = np.sqrt(np.divide(r1, r2, out=np.ones_like(r1), where=(r1 > 0) & (r2 > 0)))
    return np.where(scale > 0, scale, 1.0)


@relax.expr_functor.mutator
class _Rewriter(relax.PyExprMutator):
    """Replaces the constants of the equalised convolutions and bias adds, keeping every span."""

    def __init__(self, pairs, weights, biases):
        super().__init__()
        self.constants = {}
        for pair in pairs:
            for var, call in ((pair.first_var, pair.first), (pair.second_var, pair.second)):
                self.constants[var] = (1, weights[var].astype(call.args[1].value.numpy().dtype))
        bias_dtypes = {p.bias_var: p.first.args[1].value.numpy().dtype for p in pairs if p.bias_var is not None}
        for var, bias in biases.items():
            self.constants[var] = (1, bias.astype(bias_dtypes[var]))

    def visit_var_binding_(self, binding):
        replacement = self.constants.get(binding.var)
        if replacement is None:
            return super().visit_var_binding_(binding)
        position, array = replacement
        call = binding.value
        args = [self.visit_expr(arg) for arg in call.args]
        args[position] = relax.const(array)
        new = relax.Call(call.op, args, call.attrs, span=call.span)
        self.builder_.emit_normalized(relax.VarBinding(binding.var, self.builder_.normalize(new)))


def _name(var, call) -> str:
    span = call.span
    return span.source_name.name if span is not None and span.source_name is not None else var.name
