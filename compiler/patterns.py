"""Fusion patterns, as a table: name -> (relax.dpl pattern, annotations, check function).

A target lists the pattern families it fuses (targets/*/target.toml); partition.py
turns the chosen rows into FusionPatterns. Names spell the chain, op by op:
conv2d_bias_add_relu is conv2d + per-channel bias + residual add + ReLU. ReLU6 and any
constant-bounds Clip are `clip`. BatchNorm does not appear: it is folded into the conv
before partitioning (passes/fold_batchnorm.py), so conv+BN+ReLU arrives as conv2d_bias_relu.
Rows are ordered longest chain first, because FuseOpsByPattern takes the first match.
Every op of a chain is annotated (conv/matmul/pool, bias, residual_add, activation):
partition.py records the ONNX nodes of the annotated calls on each group.
"""

import itertools
import math
from dataclasses import dataclass, field
from typing import Callable

from tvm import relax
from tvm.relax.dpl import is_const, is_op, wildcard

from compiler.analysis import static_shape
from compiler.passes.util import is_const as is_constant_expr


@dataclass(frozen=True)
class PatternRow:
    name: str
    family: str
    pattern: object
    annotations: dict = field(default_factory=dict)
    check: Callable | None = None


def _activation(kind, x, annotations):
    if kind == "relu":
        annotations["activation"] = is_op("relax.nn.relu")(x)
    elif kind == "clip":
        annotations["activation"] = is_op("relax.clip")(x, wildcard(), wildcard())
    elif kind == "hardswish":
        annotations["activation"] = _hardswish(x, annotations)
    return annotations.get("activation", x)


def _hardswish(x, annotations):
    """x * clip(x + 3, 0, 6) / 6, as TVM imports ONNX's HardSwish (the division first) and as older
    exporters write it (the division last); `x` is one pattern, so both uses must be the same tensor."""
    gate = annotations["hardswish_clip"] = is_op("relax.clip")(is_op("relax.add")(x, is_const()), wildcard(), wildcard())
    first = annotations["hardswish_divide_first"] = is_op("relax.divide")(gate, is_const())
    product = is_op("relax.multiply")(x, gate) | is_op("relax.multiply")(gate, x)
    last = annotations["hardswish_divide_last"] = is_op("relax.divide")(product, is_const())
    return is_op("relax.multiply")(x, first) | is_op("relax.multiply")(first, x) | last


def is_hardswish(ctx) -> bool:
    """The hardswish chain's constants are 3, (0, 6) and 6."""
    clip = ctx.annotated_expr["hardswish_clip"]
    found = [ctx.annotated_expr.get(key) for key in ("hardswish_divide_first", "hardswish_divide_last")]
    divide = next(expr for expr in found if expr is not None)
    return (_scalar(clip.args[1]), _scalar(clip.args[2]), _scalar(divide.args[1])) == (0.0, 6.0, 6.0) and _adds_three(ctx, clip)


def _adds_three(ctx, clip) -> bool:
    """The clip's input is x + 3 (through its bound variable in a dataflow block)."""
    add = clip.args[0]
    if isinstance(add, relax.Var):
        add = ctx.matched_bindings.get(add)
    return isinstance(add, relax.Call) and _scalar(add.args[1]) == 3.0


def _scalar(expr):
    """A scalar constant's or a PrimValue's value as a float, else None."""
    from compiler.quant.unary_function import scalar_value

    value = scalar_value(expr)
    return value if value is not None else scalar_value(getattr(expr, "value", None))


def _chain_name(base, bias, residual, activation):
    return "_".join([base] + ["bias"] * bias + ["add"] * residual + [activation] * bool(activation))


def _conv_row(depthwise, bias, residual, activation) -> PatternRow:
    conv = is_op("relax.nn.conv2d")(wildcard(), is_const())
    annotations = {"conv": conv}
    out = conv
    if bias:
        out = annotations["bias"] = is_op("relax.add")(out, is_const())
    if residual:
        shortcut = annotations["shortcut"] = wildcard()
        out = annotations["residual_add"] = is_op("relax.add")(out, shortcut) | is_op("relax.add")(shortcut, out)
    out = _activation(activation, out, annotations)
    base = "depthwise_conv2d" if depthwise else "conv2d"

    def check(ctx):
        conv_call = ctx.annotated_expr["conv"]
        return (_conv_layout(conv_call) is not None
                and _is_depthwise(conv_call) == depthwise
                and (not bias or _is_channel_bias(ctx.annotated_expr["bias"], conv_call))
                and (not residual or _is_same_shape_tensor(ctx.annotated_expr["shortcut"], conv_call))
                and (activation != "hardswish" or is_hardswish(ctx))
                and _no_leaking_intermediates(ctx))

    family = base + ("_residual" if residual else "") + ("_hardswish" if activation == "hardswish" else "")
    return PatternRow(_chain_name(base, bias, residual, activation), family, out, annotations, check)


def _dense_row(bias, activation) -> PatternRow:
    matmul = is_op("relax.matmul")(wildcard(), is_const())
    annotations = {"matmul": matmul}
    out = matmul
    if bias:
        out = annotations["bias"] = is_op("relax.add")(out, is_const())

    def check(ctx):
        call = ctx.annotated_expr["matmul"]
        weight_shape = static_shape(call.args[1])
        if weight_shape is None or len(weight_shape) != 2:
            return False
        if bias and static_shape(ctx.annotated_expr["bias"].args[1]) not in ((weight_shape[1],), (1, weight_shape[1])):
            return False  # a per-output-feature bias; e.g. an (N, 1) constant is per row
        return _no_leaking_intermediates(ctx)

    return PatternRow(_chain_name("dense", bias, False, activation), "dense", _activation(activation, out, annotations), annotations, check)


def _pool_rows() -> list[PatternRow]:
    def global_mean(ctx):
        call = ctx.matched_expr
        axes = sorted(int(a) for a in call.attrs.axis) if call.attrs.axis is not None else []
        spatial = {"NCHW": [2, 3], "NHWC": [1, 2]}.values()
        return axes in spatial and len(static_shape(call.args[0]) or ()) == 4

    def single(name, op_pattern, check=None):
        return PatternRow(name, "pooling", op_pattern, {"pool": op_pattern}, check)

    return [
        single("max_pool2d", is_op("relax.nn.max_pool2d")(wildcard())),
        single("avg_pool2d", is_op("relax.nn.avg_pool2d")(wildcard())),
        single("global_avg_pool2d", is_op("relax.mean")(wildcard()), check=global_mean),
    ]


# conv2d layouts we fuse: (data, kernel, out) -> channel axis of the data
_CONV_LAYOUTS = {("NCHW", "OIHW", "NCHW"): 1, ("NHWC", "OHWI", "NHWC"): 3}


def _conv_layout(call) -> str | None:
    """"NCHW" or "NHWC" for the two plain conv layouts we fuse, else None."""
    attrs = call.attrs
    layouts = (attrs.data_layout, attrs.kernel_layout, attrs.out_layout)
    return layouts[0] if layouts in _CONV_LAYOUTS else None


def _is_depthwise(call) -> bool:
    groups = int(call.attrs.groups)
    in_shape, weight_shape = static_shape(call.args[0]), static_shape(call.args[1])
    if in_shape is None or groups <= 1:
        return False
    in_channels = in_shape[1] if _conv_layout(call) == "NCHW" else in_shape[3]
    per_group_inputs = weight_shape[1] if _conv_layout(call) == "NCHW" else weight_shape[3]
    return groups == in_channels and per_group_inputs == 1


def _is_channel_bias(add_call, conv_call) -> bool:
    bias_shape = static_shape(add_call.args[1])
    out_channels = static_shape(conv_call.args[1])[0]  # O leads both OIHW and OHWI
    if _conv_layout(conv_call) == "NHWC":
        return bias_shape in ((1, 1, 1, out_channels), (out_channels,))
    return bias_shape in ((1, out_channels, 1, 1), (out_channels, 1, 1))


def _is_same_shape_tensor(shortcut, conv_call) -> bool:
    return not is_constant_expr(shortcut) and static_shape(shortcut) == static_shape(conv_call)


def _no_leaking_intermediates(ctx) -> bool:
    """Values inside the group may not be used outside it (only the group's output may)."""
    inside = set(ctx.matched_bindings.keys())
    root = ctx.value_to_bound_var.get(ctx.matched_expr)
    for var in inside:
        if var.same_as(root):
            continue
        if any(user not in inside for user in ctx.var_usages.get(var, [])):
            return False
    return True


def _add_row(kind, activation) -> PatternRow:
    """An add ("add") or difference ("sub") of two tensors of one shape, or of a tensor and one value
    per channel ([N, 1, 1, C]; for a difference only as the second operand) (+ activation): one
    INT8 op of its own (TFLite's ADD / SUB)."""
    lhs, rhs = wildcard(), wildcard()
    add = is_op("relax.add" if kind == "add" else "relax.subtract")(lhs, rhs)
    annotations = {"residual_add": add, "lhs": lhs, "rhs": rhs}

    def check(ctx):
        a, b = ctx.annotated_expr["lhs"], ctx.annotated_expr["rhs"]
        same_shape = static_shape(a) is not None and static_shape(a) == static_shape(b)
        shapes = same_shape or _broadcast_channels(a, b) or (kind == "add" and _broadcast_channels(b, a))
        return shapes and not is_constant_expr(a) and not is_constant_expr(b) and _no_leaking_intermediates(ctx)

    name = "_".join([kind] + [activation] * bool(activation))
    return PatternRow(name, "add", _activation(activation, add, annotations), annotations, check)


def _broadcast_channels(a, b) -> bool:
    """b is a's shape, or a's [N, 1, 1, C] (one value per channel, squeeze-excite's scale)."""
    sa, sb = static_shape(a), static_shape(b)
    if sa is None or sb is None or len(sa) != 4:
        return False
    return sb == sa or sb == (sa[0], 1, 1, sa[3])


def _mul_row() -> PatternRow:
    """A product of two tensors, one possibly per channel (squeeze-excite): one INT8 op (MUL)."""
    lhs, rhs = wildcard(), wildcard()
    mul = is_op("relax.multiply")(lhs, rhs)
    annotations = {"mul": mul, "lhs": lhs, "rhs": rhs}

    def check(ctx):
        a, b = ctx.annotated_expr["lhs"], ctx.annotated_expr["rhs"]
        tensors = not is_constant_expr(a) and not is_constant_expr(b)
        return tensors and (_broadcast_channels(a, b) or _broadcast_channels(b, a)) and _no_leaking_intermediates(ctx)

    return PatternRow("mul", "mul", mul, annotations, check)


def _prelu_row() -> PatternRow:
    """PReLU with a constant slope, per channel or one for all: one INT8 op (TFLite's PRELU)."""
    prelu = is_op("relax.nn.prelu")(wildcard(), is_const())
    annotations = {"prelu": prelu}

    def check(ctx):
        call = ctx.annotated_expr["prelu"]
        shape, alpha = static_shape(call.args[0]), static_shape(call.args[1])
        if shape is None or alpha is None or not shape:
            return False
        channel_axis = int(call.attrs.axis) % len(shape)
        return channel_axis == len(shape) - 1 and math.prod(alpha) in (1, shape[-1]) and _no_leaking_intermediates(ctx)

    return PatternRow("prelu", "prelu", prelu, annotations, check)


def pattern_table() -> list[PatternRow]:
    """Every row we know, longest chains first."""
    rows = []
    for depthwise in (True, False):
        for bias, residual, activation in itertools.product((True, False), (True, False), ("relu", "clip", None)):
            rows.append(_conv_row(depthwise, bias, residual, activation))
        rows += [_conv_row(depthwise, bias, False, "hardswish") for bias in (True, False)]
    rows += [_dense_row(bias, activation) for bias in (True, False) for activation in ("relu", "clip", None)]
    rows += _pool_rows()
    rows += [_add_row(kind, activation) for kind in ("add", "sub") for activation in ("relu", "clip", None)]
    rows += [_mul_row(), _prelu_row()]
    return sorted(rows, key=lambda row: -row.name.count("_"))  # stable: longer chains first


# conv2d_residual rows fuse conv + residual add (+ act) into one kernel; quantisation
# instead keeps the add as an op of its own (family "add"), as TFLite's int8 scheme does:
# the conv output is requantised before the add.
# "unary" has no rows: partition.py runs passes/group_unary.py for it.
# conv2d_hardswish rows end in x * clip(x + 3, 0, 6) / 6: float convolutions on oneDNN take it as a
# post-op (codegen/dnnl.py); no int8 kernel fuses it (an int8 HardSwish is a table of its own).
FAMILIES = ("conv2d", "conv2d_residual", "depthwise_conv2d", "depthwise_conv2d_residual", "conv2d_hardswish",
            "depthwise_conv2d_hardswish", "dense", "pooling", "add", "mul", "prelu", "unary")


def rows_for(families) -> list[PatternRow]:
    unknown = set(families) - set(FAMILIES)
    if unknown:
        raise ValueError(f"unknown pattern families {sorted(unknown)}; known: {FAMILIES}")
    return [row for row in pattern_table() if row.family in families]
