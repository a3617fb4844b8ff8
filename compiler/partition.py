"""Partition: group the bindings that match a target's fusion patterns into composite functions.

On the host every group stays in TVM (annotate_codegen=False) and FuseTIR turns it
into one fused loop nest; device backends (later) pass annotate_codegen=True and hand
the groups to their registered codegen.
"""

import tvm
from tvm import relax

from compiler.frontend.provenance import source_node
from compiler.patterns import rows_for

GROUP_ATTR = "Composite"
UNARY = "unary"  # the family (and group pattern name) of passes/group_unary.py
# Group function attribute listing the group's source ONNX nodes, newline-separated.
# Besides provenance it keeps groups distinct: FuseOpsByPattern merges structurally equal
# group functions (models with identical weights have many), which would leave one
# function, and one set of spans, for several call sites.
NODES_ATTR = "onnx_nodes"
_CHAIN_ORDER = ("conv", "matmul", "pool", "mul", "prelu", "bias", "residual_add", "activation")


def _provenance_attrs(annotated) -> dict[str, str]:
    calls = [annotated[key] for key in _CHAIN_ORDER if key in annotated]
    return {NODES_ATTR: "\n".join(dict.fromkeys(filter(None, map(source_node, calls))))}


def fusion_patterns(families, codegen: str | None = None, check=None) -> list[relax.transform.FusionPattern]:
    """The rows of `families` as FusionPatterns, named "<codegen>.<row>" for a codegen's offload;
    `check(ctx)`, if given, must hold besides each row's own check."""
    def both(row_check):
        return lambda ctx: check(ctx) and (row_check is None or row_check(ctx))

    return [relax.transform.FusionPattern(f"{codegen}.{row.name}" if codegen else row.name, row.pattern,
                                          row.annotations, both(row.check) if check else row.check, _provenance_attrs)
            for row in rows_for(families)]


def partition(mod: tvm.IRModule, families, annotate_codegen=False) -> tvm.IRModule:
    """Fuse the rows of `families`. The family "unary" is not a pattern row but a pass
    (passes/group_unary.py), and it runs first: x * sigmoid(x) is one function of x (one int8
    table), which the "mul" row would otherwise take as a product of two tensors."""
    if UNARY in families:
        from compiler.passes.group_unary import group_unary

        mod = group_unary(mod)
    rows = [family for family in families if family != UNARY]
    fuse = relax.transform.FuseOpsByPattern(fusion_patterns(rows), bind_constants=True, annotate_codegen=annotate_codegen)
    return fuse(mod)


def group_name(func) -> str | None:
    """The pattern name of a fused group's function, or None for anything else."""
    attrs = getattr(func, "attrs", None)
    if attrs is None or GROUP_ATTR not in attrs:
        return None
    return str(attrs[GROUP_ATTR])


def group_nodes(func) -> list[str]:
    """The source ONNX node names recorded on a fused group's function, in chain order."""
    attrs = getattr(func, "attrs", None)
    if attrs is None or NODES_ATTR not in attrs:
        return []
    return [name for name in str(attrs[NODES_ATTR]).split("\n") if name]
