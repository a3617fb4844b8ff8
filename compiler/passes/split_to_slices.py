"""Split -> one strided_slice per part.

R.split yields a tuple, read through TupleGetItem; every later stage (layout conversion, the
int8 table, the firmware's steps) handles single-tensor ops, and one part is exactly a
strided_slice of the input (a contiguous range along the split axis). Parts are sliced only
where they are read: a part nothing reads costs nothing.
"""

import tvm
from tvm import relax

from compiler.frontend.provenance import with_span
from compiler.passes.util import bound_values, is_call_to, map_functions


def split_to_slices(mod: tvm.IRModule) -> tvm.IRModule:
    return map_functions(mod, _rewrite)


def _rewrite(func):
    splits = {var: value for var, value in bound_values(func).items() if is_call_to(value, "relax.split")}
    if not splits:
        return func
    return relax.analysis.remove_all_unused(_SplitToSlices(splits).visit_expr(func))


def split_bounds(call) -> list[tuple[int, int]]:
    """(begin, end) along the split axis of each part of R.split `call`."""
    axis_len = int(call.args[0].ty.shape[int(call.attrs.axis)])
    sections = call.attrs.indices_or_sections
    if hasattr(sections, "__len__"):  # split points
        edges = [0] + [min(int(i), axis_len) for i in sections] + [axis_len]
    else:  # a number of equal parts (the axis divides evenly: TVM's type inference checked it)
        count = int(sections)
        edges = [axis_len * i // count for i in range(count + 1)]
    return list(zip(edges[:-1], edges[1:]))


@relax.expr_functor.mutator
class _SplitToSlices(relax.PyExprMutator):
    def __init__(self, splits):
        super().__init__()
        self.splits = splits

    def visit_var_binding_(self, binding):
        value = binding.value
        if binding.var in self.splits and not isinstance(value.ty, relax.TupleType):
            # one part (TVM types it as the tensor itself): the input unchanged
            self.set_var_remap(binding.var, self.visit_expr(value.args[0]))
            return
        if isinstance(value, relax.TupleGetItem) and value.tuple_value in self.splits:
            split = self.splits[value.tuple_value]
            begin, end = split_bounds(split)[int(value.index)]
            axis = int(split.attrs.axis) % len(split.args[0].ty.shape)
            sliced = relax.op.strided_slice(self.visit_expr(split.args[0]), axes=[axis], begin=[begin], end=[end],
                                            assume_inbound=True)
            new = self.builder_.normalize(with_span(sliced, split.span))
            var = self.builder_.emit(new) if isinstance(binding.var, relax.DataflowVar) else self.builder_.emit_output(new)
            self.set_var_remap(binding.var, var)
            return
        super().visit_var_binding_(binding)
