"""The INT8 pattern table over the QDQ form (quant/qdq.py), and the lowering of a match to kernel parameters.

Each row matches one TFLite-style int8 op written in the QDQ form, from the dequantize of its
int8 inputs to the quantize of its output, and names the C reference kernel that runs it
(kernels/README.md). Names carry the codegen prefix "npu_ref." (MergeCompositeFunctions
derives the codegen from it; codegen/int8.py renders the rows):

    conv2d[_bias][_relu|_clip]   npu_conv2d_s8   plain, grouped and depthwise (any multiplier); of an int16
                                 (npu_conv2d_s16x8) input: TFLite's 16x8 scheme, int16 output
    dense[_bias][_relu|_clip]    npu_dense_s8    R.matmul(x, W[K, O]); of an int16 input npu_dense_s16x8
    rescale                      npu_requantize_s8_s16 / _s16_s8   quantize(dequantize(x)) between int8 and
                                 int16: the conversions around a 16x8 layer (--accuracy-budget's int16)
    add[_relu|_clip]             npu_add_s8      two same-shape dequantized int8 tensors
    mul                          npu_mul_s8      two dequantized int8 tensors, the second the same shape or
                                                 [N, 1, 1, C] (squeeze-excite), TFLite's int8 MUL
    concat                       npu_concat_s8   any axis, 2..MAX_CONCAT inputs, each requantised
    requantize_relu|_clip        npu_requantize_s8  a ReLU / Clip on its own between a dequantize and a quantize
                                                 (TFLite's int8 RELU: rescale, then the activation clamp)
    global_avg_pool2d            npu_global_avg_pool_s8   R.mean over axes [1, 2] of a 4-D tensor
    max_pool2d, avg_pool2d       npu_max_pool_s8, npu_avg_pool_s8   NHWC, scale and zero point kept
    pad                          npu_pad_s8      R.nn.pad constant 0.0 of a tensor of rank <= 4, scale and
                                                 zero point kept (the kernel pads with the zero point)
    lut                          npu_lut_s8      take(int8[256] table, astype(x, int32) + 128): any elementwise
                                                 function of one tensor (quant/reference/lut.py)
    prelu                        npu_prelu_s8    PReLU of a dequantized tensor by a dequantized constant slope
                                                 (per channel or one), TFLite's int8 PRELU
    resize_bilinear              npu_resize_bilinear_s8  R.image.resize2d linear, NHWC, scale and zero point
                                                 kept, TFLite's ResizeBilinearInteger (quant/reference/resize.py)
    resize_nearest               npu_resize_nearest_s8   R.image.resize2d nearest on the int8 tensor itself: a gather
    copy                         npu_copy_s8     R.strided_slice on the int8 tensor itself (Slice, Split's parts)
    softmax                      npu_softmax_s8  R.nn.softmax along the last axis, TFLite's int8 SOFTMAX (output
                                                 1/256, -128: quant/plan.py SOFTMAX_QPARAMS)
    quantize                     npu_quantize_f32_s8     a float tensor -> int8 (model input)
    dequantize                   npu_dequantize_s8_f32   int8 -> float (model output)

quantize and dequantize are offloaded so that the float boundaries follow TFLite's rounding
(half away from zero; R.quantize rounds half to even). They never take a constant input: a
dequantized weight that no row claimed stays in TVM.

`lower(row, annotated)` (quant/lowering.py) derives everything a kernel needs from the matched calls (integer
parameters from the float scales, weights in the kernel layout) and raises Unsupported for
anything the kernel does not implement exactly; the row's check is "lower succeeds", so a
rejected match stays in TVM (slower, never wrong). The codegen re-matches the row's pattern
on the composite function and calls the same `lower`, so check and codegen cannot disagree.
"""

import dataclasses
from dataclasses import dataclass, field

import tvm
from tvm import relax
from tvm.relax.dpl import is_const, is_op, is_tuple, wildcard

from compiler.frontend.provenance import source_node
from compiler.quant.fixed_point import ROUNDINGS, SINGLE_ROUNDING
from compiler.quant.integer_spec import ONNX, conv_rounding_code, kernel_rounding
from compiler.quant.lowering import Int8Kernel, lower_kernel
from compiler.quant.qdq_reads import Unsupported

__all__ = ["CODEGEN", "ROWS", "Int8Kernel", "Int8Row", "Unsupported", "fusion_patterns", "lower", "lower_composite",
           "match_composite"]

CODEGEN = "npu_ref"
MAX_CONCAT = 8  # concat rows exist for 2..MAX_CONCAT inputs (one dpl pattern per arity)


@dataclass(frozen=True)
class Int8Row:
    name: str  # "npu_ref.<op>"
    kernel: str  # conv2d, dense, add, concat, requantize, global_avg_pool2d, max_pool2d, avg_pool2d, pad, quantize,
    #              dequantize
    pattern: object
    annotations: dict = field(default_factory=dict)

    def fusion_pattern(self, keep_float=frozenset(), attrs=None, refusals=None) -> relax.transform.FusionPattern:
        """attrs: extra attributes of every composite function it makes (SPEC_ATTR); refusals: check's."""
        spec = (attrs or {}).get(SPEC_ATTR, ONNX)
        check = lambda ctx: self.check(ctx, spec, refusals)  # noqa: E731
        if keep_float:
            check = lambda ctx: self.check(ctx, spec, refusals) and not _computes_kept_node(ctx, keep_float)  # noqa: E731
        getter = (lambda annotated: dict(attrs)) if attrs else None
        return relax.transform.FusionPattern(self.name, self.pattern, self.annotations, check, getter)

    def check(self, ctx, spec: str = ONNX, refusals: dict | None = None) -> bool:
        """Does the match lower to its kernel? `refusals` (node -> why) gets the kernel's reason when
        it does not (the first row to try a node: the longest), for the report's float layers."""
        try:
            kernel = lower(self, ctx.annotated_expr, spec)
        except Exception as err:  # noqa: BLE001 - Unsupported, or a form we did not foresee: either way TVM runs it
            if refusals is not None and isinstance(err, Unsupported) and "op" in ctx.annotated_expr:
                node = source_node(ctx.annotated_expr["op"])
                if node:
                    refusals.setdefault(node, f"{self.kernel}: {err}")
            return False
        return _group_reads_only(ctx, kernel.inputs) and _no_leaking_intermediates(ctx)


# ---------------------------------------------------------------------------------------------
# Patterns


def _dq(data=None):
    return is_op("relax.dequantize")(data if data is not None else wildcard(), is_const(), is_const())


def _quant(x):
    return is_op("relax.quantize")(x, is_const(), is_const())


def _activation(kind, x, annotations):
    if kind == "relu":
        x = annotations["act"] = is_op("relax.nn.relu")(x)
    elif kind == "clip":
        x = annotations["act"] = is_op("relax.clip")(x, wildcard(), wildcard())
    return x


def _suffix(bias, act):
    return "_bias" * bias + (f"_{act}" if act else "")


def _mac_row(kernel, bias, act) -> Int8Row:
    a = {"x": _dq(), "w": _dq(is_const())}
    op = "relax.nn.conv2d" if kernel == "conv2d" else "relax.matmul"
    out = a["op"] = is_op(op)(a["x"], a["w"])
    if bias:
        a["b"] = _dq(is_const())
        out = a["bias_add"] = is_op("relax.add")(out, a["b"]) | is_op("relax.add")(a["b"], out)
    out = a["quant"] = _quant(_activation(act, out, a))
    return Int8Row(f"{CODEGEN}.{kernel}{_suffix(bias, act)}", kernel, out, a)


def _add_row(act) -> Int8Row:
    """ADD and SUB: one kernel (npu_add_params.subtract)."""
    a = {"x": _dq(), "y": _dq()}
    out = a["op"] = is_op("relax.add")(a["x"], a["y"]) | is_op("relax.subtract")(a["x"], a["y"])
    out = a["quant"] = _quant(_activation(act, out, a))
    return Int8Row(f"{CODEGEN}.add{_suffix(False, act)}", "add", out, a)


def _mul_row() -> Int8Row:
    a = {"x": _dq(), "y": _dq()}
    a["op"] = is_op("relax.multiply")(a["x"], a["y"])
    a["quant"] = _quant(a["op"])
    return Int8Row(f"{CODEGEN}.mul", "mul", a["quant"], a)


def _concat_row(arity) -> Int8Row:
    a = {f"x{i}": _dq() for i in range(arity)}
    a["op"] = is_op("relax.concat")(is_tuple([a[f"x{i}"] for i in range(arity)]))
    a["quant"] = _quant(a["op"])
    return Int8Row(f"{CODEGEN}.concat", "concat", a["quant"], a)


def _activation_row(act) -> Int8Row:
    a = {"x": _dq()}
    a["op"] = _activation(act, a["x"], a)
    a["quant"] = _quant(a["op"])
    return Int8Row(f"{CODEGEN}.requantize_{act}", "requantize", a["quant"], a)


def _unary_row(kernel, op) -> Int8Row:
    a = {"x": _dq()}
    a["op"] = is_op(op)(a["x"])
    a["quant"] = _quant(a["op"])
    return Int8Row(f"{CODEGEN}.{kernel}", kernel, a["quant"], a)


def _rescale_row() -> Int8Row:
    a = {"x": _dq()}
    a["quant"] = _quant(a["x"])
    return Int8Row(f"{CODEGEN}.rescale", "rescale", a["quant"], a)


def _lut_row() -> Int8Row:
    a = {"x": wildcard(), "offset": is_const()}
    a["astype"] = is_op("relax.astype")(a["x"])
    a["index"] = is_op("relax.add")(a["astype"], a["offset"])
    a["table"] = is_const()
    a["op"] = is_op("relax.take")(a["table"], a["index"])
    return Int8Row(f"{CODEGEN}.lut", "lut", a["op"], a)


def _prelu_row() -> Int8Row:
    # the slope: a dequantized constant, or its reshape (TVM's PRelu import makes a [1, 1, C] slope [C])
    a = {"x": _dq(), "alpha_dq": _dq(is_const())}
    a["op"] = is_op("relax.nn.prelu")(a["x"], a["alpha_dq"] | is_op("relax.reshape")(a["alpha_dq"], wildcard()))
    a["quant"] = _quant(a["op"])
    return Int8Row(f"{CODEGEN}.prelu", "prelu", a["quant"], a)


def _resize_bilinear_row() -> Int8Row:
    a = {"x": _dq()}
    a["op"] = is_op("relax.image.resize2d")(a["x"], wildcard())
    a["quant"] = _quant(a["op"])
    return Int8Row(f"{CODEGEN}.resize_bilinear", "resize_bilinear", a["quant"], a)


def _int8_move_row(kernel, op) -> Int8Row:
    """An op that only moves int8 values, written on the int8 tensor (quant/plan.py moves_int8)."""
    a = {"x": wildcard()}
    a["op"] = is_op(op)(a["x"], varg_default_wildcard=True)
    return Int8Row(f"{CODEGEN}.{kernel}", kernel, a["op"], a)


def _boundary_rows() -> list[Int8Row]:
    q = is_op("relax.quantize")(wildcard(), is_const(), is_const())
    d = is_op("relax.dequantize")(wildcard(), is_const(), is_const())
    return [Int8Row(f"{CODEGEN}.quantize", "quantize", q, {"op": q}),
            Int8Row(f"{CODEGEN}.dequantize", "dequantize", d, {"op": d})]


def pattern_table() -> list[Int8Row]:
    """Every row, longest chain first (FuseOpsByPattern takes the first match)."""
    rows = [_mac_row(kernel, bias, act) for kernel in ("conv2d", "dense") for bias in (True, False)
            for act in ("relu", "clip", None)]
    rows += [_add_row(act) for act in ("relu", "clip", None)] + [_mul_row()]
    rows += [_concat_row(arity) for arity in range(MAX_CONCAT, 1, -1)]
    rows += [_activation_row(act) for act in ("relu", "clip")] + [_rescale_row()]
    rows += [_unary_row("global_avg_pool2d", "relax.mean"), _unary_row("max_pool2d", "relax.nn.max_pool2d"),
             _unary_row("avg_pool2d", "relax.nn.avg_pool2d"), _unary_row("pad", "relax.nn.pad")]
    rows += [_prelu_row(), _resize_bilinear_row(), _int8_move_row("resize_nearest", "relax.image.resize2d"),
             _int8_move_row("copy", "relax.strided_slice"), _unary_row("softmax", "relax.nn.softmax")]
    rows += [_lut_row()] + _boundary_rows()
    return sorted(rows, key=lambda row: -len(row.annotations))  # stable


ROWS = pattern_table()


# The integer spec (quant/integer_spec.py: the model's origin, which fixes each kernel's
# requantisation rounding), when it is not ONNX's: an attribute of every composite function
# (partition_int8 sets it), so each kernel lowered from the IR carries it.
SPEC_ATTR = "integer_spec"


def fusion_patterns(keep_float=frozenset(), spec: str = ONNX, refusals: dict | None = None) -> list:
    """The table's patterns; none matches an op computed for a node in `keep_float` (--keep-float).
    `refusals`, if given, collects why a kernel refused a node (Int8Row.check)."""
    attrs = {SPEC_ATTR: spec} if spec != ONNX else None
    return [row.fusion_pattern(keep_float, attrs, refusals) for row in ROWS]


def match_composite(func: relax.Function) -> tuple[Int8Row, dict]:
    """The row a composite function FuseOpsByPattern made from ROWS, and its annotated calls (the
    composite's body re-matched: annotation name -> expr)."""
    name = str(func.attrs["Composite"])
    var2val = relax.analysis.get_var2val(func)
    for row in ROWS:
        if row.name != name:
            continue
        matched = row.pattern.extract_matched_expr(func.body.body, var2val)
        if matched is not None:
            return row, {key: matched[p] for key, p in row.annotations.items() if p in matched}
    raise Unsupported(f"composite {name} matches no row of the int8 pattern table")


def lower_composite(func: relax.Function) -> Int8Kernel:
    """Lower a composite function FuseOpsByPattern made from one of ROWS, with its spec's rounding."""
    spec = str(func.attrs.get(SPEC_ATTR, ONNX))
    kernel = lower(*match_composite(func), spec)
    code = conv_rounding_code(spec, kernel.params) if kernel.kernel == "conv2d" else None
    if code is not None:
        return dataclasses.replace(kernel, params=dict(kernel.params, rounding=code))
    return _with_rounding(kernel, kernel_rounding(spec, kernel.kernel))


def _with_rounding(kernel: Int8Kernel, rounding: str) -> Int8Kernel:
    if rounding == SINGLE_ROUNDING:
        return kernel
    return dataclasses.replace(kernel, params=dict(kernel.params, rounding=ROUNDINGS.index(rounding)))


def lower(row: Int8Row, a: dict, spec: str = ONNX) -> Int8Kernel:
    """The kernel of a match (quant/lowering.py); `spec` (quant/integer_spec.py) shapes the
    parameters of some kernels (the roundings of all are lower_composite's)."""
    return lower_kernel(row.kernel, a, spec)


def _computes_kept_node(ctx, keep_float) -> bool:
    """Does the match compute an op of a node the user kept float? (Its dequantize / quantize
    may carry a neighbour's node: only the compute ops count.)"""
    for value in ctx.matched_bindings.values():
        if (isinstance(value, relax.Call) and isinstance(value.op, tvm.ir.Op)
                and value.op.name not in ("relax.quantize", "relax.dequantize") and source_node(value) in keep_float):
            return True
    return False


def _group_reads_only(ctx, inputs) -> bool:
    """The group's bindings read nothing but each other and the kernel's inputs (so its composite
    takes exactly the tensors the kernel reads, e.g. no float tensor from a dequantize left out)."""
    allowed = set(ctx.matched_bindings.keys()) | {x for x in inputs if isinstance(x, relax.Var)}
    return all(var in allowed for value in ctx.matched_bindings.values() for var in relax.analysis.free_vars(value))


def _no_leaking_intermediates(ctx) -> bool:
    """Values inside the group may not be used outside it (only the group's output may)."""
    inside = set(ctx.matched_bindings.keys())
    root = ctx.value_to_bound_var.get(ctx.matched_expr)
    for var in inside:
        if root is not None and var.same_as(root):
            continue
        if any(user not in inside for user in ctx.var_usages.get(var, [])):
            return False
    return True
