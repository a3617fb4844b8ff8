"""Facts about Relax calls that several stages need: MACs, parameter bytes, shapes."""

import numpy as np
import tvm
from tvm import relax

from compiler.passes.util import is_const


def static_shape(expr) -> tuple[int, ...] | None:
    shape = getattr(expr.ty, "shape", None)
    if shape is None:
        return None
    try:
        return tuple(int(dim) for dim in shape)
    except TypeError:  # symbolic dimension
        return None


def _conv2d_macs(call):
    out, weight = static_shape(call), static_shape(call.args[1])
    # weight is OIHW with I = in_channels / groups: each output element needs I*kh*kw MACs
    return int(np.prod(out)) * int(np.prod(weight[1:]))


def _matmul_macs(call):
    return int(np.prod(static_shape(call))) * static_shape(call.args[0])[-1]


# op name -> MAC count of one call. Ops not listed do no multiply-accumulates worth counting.
MAC_COUNTERS = {
    "relax.nn.conv2d": _conv2d_macs,
    "relax.matmul": _matmul_macs,
}


def op_calls(expr) -> list[relax.Call]:
    """Every call to a relax Op inside expr, in post order."""
    calls = []
    relax.analysis.post_order_visit(expr, lambda e: calls.append(e) if isinstance(e, relax.Call) and isinstance(e.op, tvm.ir.Op) else None)
    return calls


def constants(expr) -> list:
    found = []
    relax.analysis.post_order_visit(expr, lambda e: found.append(e) if is_const(e) else None)
    return found


def macs(expr) -> int:
    return sum(MAC_COUNTERS[call.op.name](call) for call in op_calls(expr) if call.op.name in MAC_COUNTERS)


def module_macs(mod) -> int:
    """MACs of every Relax function of `mod` (main and the layer groups it calls)."""
    from tvm import relax

    return sum(macs(func) for func in mod.functions.values() if isinstance(func, relax.Function))


def param_bytes(expr) -> int:
    return sum(int(const.value.numpy().nbytes) for const in constants(expr))


def module_param_bytes(mod) -> int:
    """Constant bytes of every Relax function of `mod` (main and the layer groups it calls)."""
    from tvm import relax

    return sum(param_bytes(func) for func in mod.functions.values() if isinstance(func, relax.Function))
