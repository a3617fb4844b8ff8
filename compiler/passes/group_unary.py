"""Group every elementwise function of one tensor into a "unary" group: IRModule -> IRModule.

Exporters write hard-swish as x * clip(x + 3, 0, 6) / 6, SiLU as x * sigmoid(x), hard-sigmoid
as clip(0.2 x + 0.5, 0, 1); TVM's importer turns ONNX's HardSwish and HardSigmoid into the same
arithmetic. Whatever the spelling, a connected region of elementwise ops (quant/unary_function.py)
whose only tensor input is one tensor x, whose other operands are scalar constants and whose
intermediate values nobody else reads computes f(x) element by element: in int8 that is one
256-entry table (quant/reference/lut.py), however many ops the float graph spells it with.

Each such region of main becomes a call of a function with attribute Composite = "unary" (and
the region's ONNX nodes, as the fusion groups carry them), so the quantiser treats it like any
fused group. A region that is a lone ReLU or Clip is left alone: TFLite's int8 RELU
(requantize_relu / requantize_clip) already runs those, and runs them exactly.
"""

import tvm
from tvm import relax

from compiler.frontend.provenance import source_node
from compiler.partition import GROUP_ATTR, NODES_ATTR, UNARY
from compiler.passes.util import bindings
from compiler.quant.unary_function import ELEMENTWISE, scalar_value

PATTERN = UNARY
_LEFT_TO_REQUANTIZE = {"relax.nn.relu", "relax.clip"}


def group_unary(mod: tvm.IRModule) -> tvm.IRModule:
    main = mod["main"]
    regions = unary_regions(main)
    if not regions:
        return mod
    grouper = _Grouper(mod, regions)
    new_main = relax.analysis.remove_all_unused(grouper.visit_expr(main))
    grouper.builder_.update_func(mod.get_global_var("main"), new_main)
    return grouper.builder_.get()


def _tensor_args(call) -> list:
    return [arg for arg in call.args if isinstance(arg, relax.Var)]


def _candidate(call) -> bool:
    """An elementwise float op whose non-tensor operands are scalars and whose output has the shape of
    each tensor operand (no broadcasting)."""
    if not isinstance(call, relax.Call) or not isinstance(call.op, tvm.ir.Op) or call.op.name not in ELEMENTWISE:
        return False
    if str(getattr(call.ty, "dtype", "")) != "float32":
        return False
    tensors = _tensor_args(call)
    others = [arg for arg in call.args if not isinstance(arg, relax.Var)]
    shape = _shape(call)
    return (bool(tensors) and shape is not None and all(_shape(t) == shape for t in tensors)
            and all(scalar_value(arg) is not None for arg in others))


def _shape(expr):
    ty = getattr(expr, "ty", None)
    try:
        return tuple(int(d) for d in ty.shape)
    except (AttributeError, TypeError, ValueError):
        return None


def unary_regions(main) -> list[list]:
    """Regions as lists of bindings in program order; each has one source tensor and one output."""
    order = {binding.var: index for index, binding in enumerate(bindings(main))}
    source, parent, members = {}, {}, {}  # candidate var -> source tensor / union-find parent / region

    def find(var):
        while parent[var] is not var:
            var = parent[var]
        return var

    for binding in bindings(main):
        call, var = binding.value, binding.var
        if not _candidate(call):
            continue
        sources = {source.get(arg, arg) for arg in _tensor_args(call)}
        if len(sources) != 1:
            continue
        parent[var], source[var], members[var] = var, sources.pop(), [binding]
        for arg in _tensor_args(call):
            if arg in parent and find(arg) is not find(var):
                root, mine = find(arg), find(var)
                parent[mine] = root
                members[root] += members.pop(mine)
    regions = [sorted(group, key=lambda b: order[b.var]) for group in members.values()]
    return [group for group in regions
            if {b.var for b in group[:-1]}.isdisjoint(_escaping(main, group))
            and not all(b.value.op.name in _LEFT_TO_REQUANTIZE for b in group)]


def _escaping(main, group) -> set:
    """The region's vars read by a binding outside it or by the function's result."""
    inside = {b.var for b in group}
    readers = [b.value for b in bindings(main) if b.var not in inside] + [main.body.body]
    return {var for value in readers
            for var in ([value] if isinstance(value, relax.Var) else relax.analysis.free_vars(value)) if var in inside}


def group_function(region, name: str) -> tuple[relax.Function, relax.Var]:
    """The region as a function of its one source tensor, and that source."""
    inside = {b.var for b in region}
    (x,) = {arg for b in region for arg in _tensor_args(b.value) if arg not in inside}
    param = relax.Var("x", x.ty)
    local = {x: param}
    nodes = list(dict.fromkeys(filter(None, (source_node(b.value) for b in region))))
    builder = relax.BlockBuilder()
    with builder.function(name, [param], attrs={GROUP_ATTR: PATTERN, NODES_ATTR: "\n".join(nodes), "Primitive": True},
                          private=True):
        with builder.dataflow():
            for number, b in enumerate(region):
                call = b.value
                args = [local.get(arg, arg) for arg in call.args]
                emit = builder.emit_output if number == len(region) - 1 else builder.emit
                local[b.var] = emit(relax.Call(call.op, args, call.attrs, call.ty_args, span=call.span))
        builder.emit_func_output(local[region[-1].var])
    return builder.get()[name], x


@relax.expr_functor.mutator
class _Grouper(relax.PyExprMutator):
    """main with each region's last binding rebound to a call of the region's group function (the
    rest of the region becomes unused and is removed)."""

    def __init__(self, mod, regions):
        super().__init__(mod)
        self.calls = {}
        for number, region in enumerate(regions):
            func, x = group_function(region, f"fused_unary{number}")
            self.calls[region[-1].var] = (self.builder_.add_func(func, f"fused_unary{number}"), x)

    def visit_var_binding_(self, binding):
        if binding.var not in self.calls:
            return super().visit_var_binding_(binding)
        gv, x = self.calls[binding.var]
        value = self.builder_.normalize(relax.Call(gv, [self.visit_expr(x)]))
        self.builder_.emit_normalized(relax.VarBinding(binding.var, value))
