"""Small helpers the passes share."""

import tvm
from tvm import relax


def map_functions(mod: tvm.IRModule, rewrite) -> tvm.IRModule:
    """A new module with `rewrite` applied to every Relax function (the input is untouched)."""
    functions = {gv: rewrite(func) if isinstance(func, relax.Function) else func for gv, func in mod.functions.items()}
    return tvm.IRModule(functions, attrs=mod.attrs)


def bindings(func: relax.Function):
    return [binding for block in func.body.blocks for binding in block.bindings]


def bound_values(func: relax.Function) -> dict:
    """Var -> the value bound to it, for every binding in the function body."""
    return {binding.var: binding.value for binding in bindings(func)}


def behind_tuple_var(bound: dict, expr):
    """expr, or the relax.Tuple a var of tuple type is bound to (through aliases): how the TFLite
    frontend returns a model's several outputs. `bound`: bound_values of the function."""
    while isinstance(expr, relax.Var) and isinstance(expr.ty, relax.TupleType) and \
            isinstance(bound.get(expr), (relax.Var, relax.Tuple)):
        expr = bound[expr]
    return expr


def var_use_counts(func: relax.Function) -> dict:
    """Var -> how many bindings (plus the function's return) use it."""
    counts = {}
    users = [binding.value for binding in bindings(func)] + [func.body.body]
    for user in users:
        for var in relax.analysis.free_vars(user):
            counts[var] = counts.get(var, 0) + 1
    return counts


def is_call_to(expr, op_name: str) -> bool:
    return isinstance(expr, relax.Call) and isinstance(expr.op, tvm.ir.Op) and expr.op.name == op_name


def is_const(expr) -> bool:
    return isinstance(expr, tvm.ir.GenericConst)


def is_nchw_conv_with_const_weight(call) -> bool:
    if not is_call_to(call, "relax.nn.conv2d") or not is_const(call.args[1]):
        return False
    attrs = call.attrs
    return (attrs.data_layout, attrs.kernel_layout, attrs.out_layout) == ("NCHW", "OIHW", "NCHW")
