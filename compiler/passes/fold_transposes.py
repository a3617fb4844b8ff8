"""Fold chains of permute_dims and reshape into at most one permute_dims (between reshapes).

to_nhwc brackets every operator it does not convert with NHWC -> NCHW and back; where the
model itself reshapes and transposes there (ShuffleNet's channel shuffle: reshape to
[N, g, C/g, H, W], swap g and C/g, reshape back), three transposes move the tensor where one
suffices: in NHWC the shuffle is [N*H*W, g, C/g] -> [N*H*W, C/g, g]. And a transpose that only
moves axes of extent 1 is a reshape.

A chain is a run of permute_dims / reshape bindings, each intermediate used only by the next.
Its element permutation (output position -> input position) is computed with numpy on the
static shapes, then read back as the fewest axes: from the innermost output axis out, the
longest run of positions a constant stride apart is one axis. Sorted by stride these axes are
the input's own (a mixed radix, or the chain is left alone), so the chain is
reshape(x, input axes) -> permute_dims -> reshape(output shape), each step dropped when it does
nothing. The result is checked against the permutation before it replaces the chain, which is
replaced only when that removes a transpose.
"""

import math

import numpy as np
import tvm
from tvm import relax

from compiler.analysis import static_shape
from compiler.frontend.provenance import with_span
from compiler.passes.util import bindings, is_call_to, map_functions, var_use_counts

_MOVES = ("relax.permute_dims", "relax.reshape")
_MAX_ELEMENTS = 1 << 24  # the permutation is an int64 array of this many entries


def fold_transposes(mod: tvm.IRModule) -> tvm.IRModule:
    return map_functions(mod, _fold_function)


def _fold_function(func: relax.Function) -> relax.Function:
    folder = _ChainFolder(func)
    if not folder.ends:
        return func
    return relax.analysis.remove_all_unused(folder.visit_expr(func))


@relax.expr_functor.mutator
class _ChainFolder(relax.PyExprMutator):
    def __init__(self, func):
        super().__init__()
        uses = var_use_counts(func)
        self.bound = {binding.var: binding.value for binding in bindings(func)}
        # a chain link: a move whose input is a move's output used by it alone
        self.link = {var: value.args[0] for var, value in self.bound.items()
                     if _is_move(value) and _is_move(self.bound.get(value.args[0])) and uses.get(value.args[0]) == 1}
        inner = set(self.link.values())
        self.ends = {var: plan for var in self.bound if var not in inner and _is_move(self.bound[var])
                     for plan in [self._plan(var)] if plan is not None}

    def _plan(self, end):
        """(source, [reshape shape | None, axes | None, reshape shape | None]) for the chain ending at
        `end`, when folding it removes a transpose; else None."""
        chain = [end]
        while chain[-1] in self.link:
            chain.append(self.link[chain[-1]])
        source = self.bound[chain[-1]].args[0]
        transposes = sum(is_call_to(self.bound[var], "relax.permute_dims") for var in chain)
        in_shape, out_shape = static_shape(source), static_shape(end)
        if transposes == 0 or in_shape is None or out_shape is None or math.prod(in_shape) > _MAX_ELEMENTS:
            return None
        positions = np.arange(math.prod(in_shape), dtype=np.int64).reshape(in_shape)
        for var in reversed(chain):
            positions = _apply(self.bound[var], positions)
            if positions is None:
                return None
        steps = _fewest_axes(positions.reshape(-1), in_shape, out_shape)
        if steps is None or (steps[1] is not None and transposes == 1):
            return None
        return source, steps

    def visit_var_binding_(self, binding):
        plan = self.ends.get(binding.var)
        if plan is None:
            return super().visit_var_binding_(binding)
        source, (in_dims, axes, out_shape) = plan
        x = self.visit_expr(source)
        if in_dims is not None:
            x = self.builder_.emit(relax.op.reshape(x, in_dims))
        if axes is not None:
            x = relax.op.permute_dims(x, axes)
            if out_shape is not None:
                x = self.builder_.emit(x)
        if out_shape is not None:
            x = relax.op.reshape(x, out_shape)
        if not isinstance(x, relax.Call):  # the whole chain was the identity
            if isinstance(binding.var, relax.DataflowVar) or not isinstance(x, relax.DataflowVar):
                self.set_var_remap(binding.var, x)  # readers take the source itself
                return
            x = relax.op.reshape(x, static_shape(binding.var))  # a dataflow block's output must be bound
        value = self.builder_.normalize(with_span(x, binding.value.span))
        self.builder_.emit_normalized(relax.VarBinding(binding.var, value))


def _is_move(value) -> bool:
    return any(is_call_to(value, op) for op in _MOVES)


def _apply(call, positions):
    if is_call_to(call, "relax.reshape"):
        shape = static_shape(call)
        return None if shape is None else positions.reshape(shape)
    axes = call.attrs.axes
    return positions.transpose(None if axes is None else [int(a) for a in axes])


def _fewest_axes(p: np.ndarray, in_shape, out_shape):
    """[input reshape | None, axes | None, output reshape | None] computing p (output position ->
    input position), or None when p is not one transpose of a reshape."""
    axes = []  # (extent, input stride), innermost output axis first
    q = p
    while q.size > 1:
        stride, run = int(q[1] - q[0]), 2
        while run < q.size and q[run] - q[run - 1] == stride:
            run += 1
        if q.size % run:
            return None
        block = q.reshape(-1, run)
        if not np.array_equal(block, block[:, :1] + stride * np.arange(run)):
            return None
        axes.append((run, stride))
        q = block[:, 0]
    axes.reverse()  # outermost first
    by_stride = sorted(axes, key=lambda axis: -axis[1])
    extents = [extent for extent, _ in by_stride]
    if [stride for _, stride in by_stride] != [math.prod(extents[k + 1:]) for k in range(len(extents))]:
        return None
    order = [by_stride.index(axis) for axis in axes]
    identity = order == sorted(order)
    in_dims = tuple(extents) if not identity else tuple(extent for extent, _ in axes)
    candidate = np.arange(p.size, dtype=np.int64).reshape(in_dims or (1,))
    if not identity:
        candidate = candidate.transpose(order)
    if not np.array_equal(candidate.reshape(-1), p):
        return None
    if identity:
        return [None, None, tuple(out_shape) if tuple(out_shape) != tuple(in_shape) else None]
    return [in_dims if in_dims != tuple(in_shape) else None, order,
            tuple(out_shape) if tuple(candidate.shape) != tuple(out_shape) else None]
