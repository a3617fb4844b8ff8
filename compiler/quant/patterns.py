"""The INT8 pattern table over the QDQ form (quant/qdq.py), and the lowering of a match to kernel parameters.

Each row matches one TFLite-style int8 op written in the QDQ form, from the dequantize of its
int8 inputs to the quantize of its output, and names the C reference kernel that runs it
(kernels/README.md). Names carry the codegen prefix "npu_ref." (MergeCompositeFunctions
derives the codegen from it; codegen/int8.py renders the rows):

    conv2d[_bias][_relu|_clip]   npu_conv2d_s8   plain, grouped and depthwise (any multiplier)
    dense[_bias][_relu|_clip]    npu_dense_s8    R.matmul(x, W[K, O])
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

`lower(row, annotated)` derives everything a kernel needs from the matched calls (integer
parameters from the float scales, weights in the kernel layout) and raises Unsupported for
anything the kernel does not implement exactly; the row's check is "lower succeeds", so a
rejected match stays in TVM (slower, never wrong). The codegen re-matches the row's pattern
on the composite function and calls the same `lower`, so check and codegen cannot disagree.
"""

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import tvm
from tvm import relax
from tvm.relax.dpl import is_const, is_op, is_tuple, wildcard

from compiler.frontend.provenance import source_node
from compiler.quant.fixed_point import INT32_MAX, ROUNDINGS, SINGLE_ROUNDING, quantize_multiplier
from compiler.quant.integer_spec import ONNX, kernel_rounding
from compiler.quant.plan import SOFTMAX_QPARAMS, is_int8_softmax
from compiler.quant.reference import add_params, concat_params, mean_params, mul_params, requantize_params
from compiler.quant.reference import move, prelu, resize, softmax

CODEGEN = "npu_ref"
MAX_CONCAT = 8  # concat rows exist for 2..MAX_CONCAT inputs (one dpl pattern per arity)
MAX_WINDOW = 1 << 23  # pool windows and MEAN's H * W (kernel limit)
INT8_MIN, INT8_MAX = -128, 127


class Unsupported(ValueError):
    """The match is not something the int8 kernel computes exactly; it stays in TVM."""


@dataclass(frozen=True)
class Int8Row:
    name: str  # "npu_ref.<op>"
    kernel: str  # conv2d, dense, add, concat, requantize, global_avg_pool2d, max_pool2d, avg_pool2d, pad, quantize,
    #              dequantize
    pattern: object
    annotations: dict = field(default_factory=dict)

    def fusion_pattern(self, keep_float=frozenset(), attrs=None) -> relax.transform.FusionPattern:
        """attrs: extra attributes of every composite function it makes (ROUNDING_ATTR)."""
        check = self.check
        if keep_float:
            check = lambda ctx: self.check(ctx) and not _computes_kept_node(ctx, keep_float)  # noqa: E731
        getter = (lambda annotated: dict(attrs)) if attrs else None
        return relax.transform.FusionPattern(self.name, self.pattern, self.annotations, check, getter)

    def check(self, ctx) -> bool:
        try:
            kernel = lower(self, ctx.annotated_expr)
        except Exception:  # noqa: BLE001 - Unsupported, or a form we did not foresee: either way TVM runs it
            return False
        return _group_reads_only(ctx, kernel.inputs) and _no_leaking_intermediates(ctx)


@dataclass(frozen=True)
class Int8Kernel:
    """A lowered match: the C params struct's fields (declaration order), the tensor inputs (relax
    exprs, in kernel argument order) and the constant arrays, already in the kernel's layout."""

    kernel: str
    params: dict
    inputs: tuple
    arrays: dict = field(default_factory=dict)  # weight, bias, multiplier, shift (conv2d, dense)


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
    rows += [_activation_row(act) for act in ("relu", "clip")]
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


def fusion_patterns(keep_float=frozenset(), spec: str = ONNX) -> list:
    """The table's patterns; none matches an op computed for a node in `keep_float` (--keep-float)."""
    attrs = {SPEC_ATTR: spec} if spec != ONNX else None
    return [row.fusion_pattern(keep_float, attrs) for row in ROWS]


def lower_composite(func: relax.Function) -> Int8Kernel:
    """Lower a composite function FuseOpsByPattern made from one of ROWS (its body re-matched)."""
    name = str(func.attrs["Composite"])
    var2val = relax.analysis.get_var2val(func)
    for row in ROWS:
        if row.name != name:
            continue
        matched = row.pattern.extract_matched_expr(func.body.body, var2val)
        if matched is not None:
            kernel = lower(row, {key: matched[p] for key, p in row.annotations.items() if p in matched})
            return _with_rounding(kernel, kernel_rounding(str(func.attrs.get(SPEC_ATTR, ONNX)), kernel.kernel))
    raise Unsupported(f"composite {name} matches no row of the int8 pattern table")


def _with_rounding(kernel: Int8Kernel, rounding: str) -> Int8Kernel:
    if rounding == SINGLE_ROUNDING:
        return kernel
    return dataclasses.replace(kernel, params=dict(kernel.params, rounding=ROUNDINGS.index(rounding)))


# ---------------------------------------------------------------------------------------------
# Lowering: matched calls -> kernel parameters


def lower(row: Int8Row, a: dict) -> Int8Kernel:
    return _LOWER[row.kernel](a)


def _lower_mac(a, kernel) -> Int8Kernel:
    op = a["op"]
    if str(op.attrs.out_dtype or "float32") not in ("float32", "void", ""):
        raise Unsupported(f"{kernel} out_dtype {op.attrs.out_dtype}")
    x, s_x, zp_x = _activation_input(a["x"])
    s_y, zp_y = _output_qparams(a["quant"])
    w_q = _const_array(a["w"].args[0], "int8", "weight")
    in_shape, out_shape = _shape(x, "input"), _shape(op, "output")
    if kernel == "conv2d":
        params, weight, taps = _conv_geometry(op, in_shape, out_shape, w_q)
        o = w_q.shape[0]
    else:
        if w_q.ndim != 2 or len(in_shape) < 1 or in_shape[-1] != w_q.shape[0]:
            raise Unsupported(f"dense needs input [..., K] and weight [K, O], got {in_shape} and {w_q.shape}")
        weight, taps, o = np.ascontiguousarray(w_q.T), w_q.shape[0], w_q.shape[1]
        if out_shape != in_shape[:-1] + (o,):
            raise Unsupported(f"dense output {out_shape} for input {in_shape} and weight {w_q.shape}")
        params = dict(batches=_i32(math.prod(in_shape[:-1]), "batches"), in_features=_i32(taps, "in_features"),
                      out_features=_i32(o, "out_features"))
    s_w = _channel_scales(a["w"], o, 0 if kernel == "conv2d" else 1, "weight")
    bias = None
    if "b" in a:
        if _shape(a["bias_add"], "bias add") != out_shape:
            raise Unsupported("the bias add broadcasts beyond the output shape")
        bias = _bias(a["b"], s_x, s_w, o, kernel)
    bound = (0 if bias is None else int(np.abs(bias.astype(np.int64)).max())) + taps * 255 * int(
        np.abs(weight.astype(np.int64)).max(initial=0))
    if bound > INT32_MAX:
        raise Unsupported(f"the int32 accumulator could overflow (bound {bound})")
    requant = [_quantize_multiplier(float(s_x) * float(s) / float(s_y)) for s in s_w]
    act_min, act_max = _act_range(a.get("act"), s_y, zp_y)
    params.update(input_zero_point=zp_x, output_zero_point=zp_y, act_min=act_min, act_max=act_max)
    arrays = dict(weight=weight, bias=bias, multiplier=np.array([m for m, _ in requant], np.int32),
                  shift=np.array([e for _, e in requant], np.int32))
    return Int8Kernel(kernel, params, (x,), arrays)


def _conv_geometry(op, in_shape, out_shape, w_q):
    attrs = op.attrs
    if (str(attrs.data_layout), str(attrs.kernel_layout), str(attrs.out_layout or attrs.data_layout)) != (
            "NHWC", "OHWI", "NHWC"):
        raise Unsupported(f"conv2d layouts {attrs.data_layout}/{attrs.kernel_layout}/{attrs.out_layout}")
    if len(in_shape) != 4 or w_q.ndim != 4:
        raise Unsupported("conv2d needs a 4-D input and weight")
    n, h, w, c = in_shape
    o, kh, kw, cg = w_q.shape
    groups = int(attrs.groups)
    if groups < 1 or c % groups or o % groups or cg != c // groups:
        raise Unsupported(f"conv2d groups={groups} with input channels {c} and weight {w_q.shape}")
    sh, sw = _ints(attrs.strides, 2)
    dh, dw = _ints(attrs.dilation, 2)
    pt, pl, pb, pr = _ints(attrs.padding, 4)
    oh = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    ow = (w + pl + pr - dw * (kw - 1) - 1) // sw + 1
    if tuple(out_shape) != (n, oh, ow, o) or min(pt, pl, pb, pr) < 0:
        raise Unsupported(f"conv2d output {out_shape} != expected {(n, oh, ow, o)}")
    params = dict(batches=n, in_h=h, in_w=w, in_c=c, out_h=oh, out_w=ow, out_c=o, kernel_h=kh, kernel_w=kw,
                  stride_h=sh, stride_w=sw, dilation_h=dh, dilation_w=dw, pad_top=pt, pad_left=pl, groups=groups)
    for key, value in params.items():
        _i32(value, key)
    return params, np.ascontiguousarray(w_q), kh * kw * cg


def _bias(b, s_x, s_w, o, kernel) -> np.ndarray:
    b_q = _const_array(b.args[0], "int32", "bias")
    allowed = [(o,), (1, 1, 1, o)] if kernel == "conv2d" else [(o,), (1, o)]
    if b_q.shape not in allowed:
        raise Unsupported(f"bias shape {b_q.shape} is not a per-channel bias of {o} channels")
    s_b = _channel_scales(b, o, b_q.ndim - 1, "bias")
    expected = (np.float64(s_x) * s_w.astype(np.float64)).astype(np.float32)
    if not np.allclose(s_b, expected, rtol=2.0**-22, atol=0.0):
        raise Unsupported("bias scale is not s_x * s_w within float32 rounding")
    return np.ascontiguousarray(b_q.reshape(o))


def _lower_add(a) -> Int8Kernel:
    """npu_add_s8 for ADD and SUB: input1 [batches, pixels, channels], input2 the same or one value
    per channel (an add's operands swap when the broadcast one comes first)."""
    subtract = a["op"].op.name == "relax.subtract"
    (x, s1, zp1), (y, s2, zp2), layout = _broadcast_operands(a, "sub" if subtract else "add", commutes=not subtract)
    s_y, zp_y = _output_qparams(a["quant"])
    act_min, act_max = _act_range(a.get("act"), s_y, zp_y)
    p = add_params(s1, zp1, s2, zp2, s_y, zp_y, act_min, act_max)
    params = dict(**layout, subtract=int(subtract), left_shift=p["left_shift"], input1_zero_point=zp1,
                  input1_multiplier=p["input1_multiplier"], input1_shift=p["input1_shift"], input2_zero_point=zp2,
                  input2_multiplier=p["input2_multiplier"], input2_shift=p["input2_shift"], output_zero_point=zp_y,
                  output_multiplier=p["output_multiplier"], output_shift=p["output_shift"], act_min=act_min,
                  act_max=act_max)
    return Int8Kernel("add", params, (x, y))


def _broadcast_operands(a, what, commutes):
    """((x, scale, zp), (y, scale, zp), layout) of a binary op of two dequantized int8 tensors, y of
    x's shape or [N, 1, 1, C] (one value per channel); the layout is npu_add/mul_params' batches,
    pixels, channels, broadcast. When the per-channel operand comes first the operands swap if the
    op commutes, else Unsupported."""
    first, second = _activation_input(a["x"]), _activation_input(a["y"])
    shape, other = _shape(first[0], "input 1"), _shape(second[0], "input 2")
    if commutes and other != shape and len(shape) == 4 and shape == (other[0], 1, 1, other[3]):
        first, second, shape, other = second, first, other, shape
    if _shape(a["op"], "output") != shape:
        raise Unsupported(f"{what} of {shape} and {other}")
    _i32(math.prod(shape), "size")
    if other == shape:
        layout = dict(batches=1, pixels=math.prod(shape), channels=1, broadcast=0)
    elif len(shape) == 4 and other == (shape[0], 1, 1, shape[3]):
        layout = dict(batches=shape[0], pixels=shape[1] * shape[2], channels=shape[3], broadcast=1)
    else:
        raise Unsupported(f"{what} of {shape} and {other}: only equal shapes or a per-channel [N, 1, 1, C] operand")
    return first, second, layout


def _lower_mul(a) -> Int8Kernel:
    """npu_mul_s8: input1 [batches, pixels, channels], input2 the same or one value per channel
    (broadcast); the operands swap when the broadcast one comes first (the product commutes)."""
    (x, s1, zp1), (y, s2, zp2), layout = _broadcast_operands(a, "mul", commutes=True)
    s_y, zp_y = _output_qparams(a["quant"])
    p = mul_params(s1, s2, s_y)
    params = dict(**layout, input1_zero_point=zp1, input2_zero_point=zp2, output_zero_point=zp_y,
                  output_multiplier=p["output_multiplier"], output_shift=p["output_shift"], act_min=INT8_MIN,
                  act_max=INT8_MAX)
    return Int8Kernel("mul", params, (x, y))


def _lower_requantize(a) -> Int8Kernel:
    x, s_x, zp_x = _activation_input(a["x"])
    s_y, zp_y = _output_qparams(a["quant"])
    act_min, act_max = _act_range(a["act"], s_y, zp_y)
    p = requantize_params(s_x, zp_x, s_y, zp_y)
    params = dict(size=_i32(math.prod(_shape(x, "input")), "size"), input_zero_point=zp_x, output_zero_point=zp_y,
                  multiplier=p["multiplier"], shift=p["shift"], act_min=act_min, act_max=act_max)
    return Int8Kernel("requantize", params, (x,))


def _lower_concat(a) -> Int8Kernel:
    op = a["op"]
    arity = sum(1 for key in a if key.startswith("x"))
    inputs = [_activation_input(a[f"x{i}"]) for i in range(arity)]
    s_y, zp_y = _output_qparams(a["quant"])
    out_shape = _shape(op, "output")
    axis = int(op.attrs.axis) % len(out_shape) if out_shape else 0
    shapes = [_shape(x, f"input {i}") for i, (x, _, _) in enumerate(inputs)]
    if not out_shape or any(len(s) != len(out_shape) for s in shapes):
        raise Unsupported("concat of tensors of different ranks")
    inner = math.prod(out_shape[axis + 1:])
    p = concat_params([s for _, s, _ in inputs], [z for _, _, z in inputs], s_y, zp_y)
    params = dict(outer=_i32(math.prod(out_shape[:axis]), "outer"), num_inputs=arity, output_zero_point=zp_y)
    for i, (s, z, m, e) in enumerate(zip(shapes, p["input_zero_points"], p["multipliers"], p["shifts"])):
        params |= {f"input{i}_size": _i32(s[axis] * inner, "size"), f"input{i}_zero_point": z,
                   f"input{i}_multiplier": m, f"input{i}_shift": e}
    return Int8Kernel("concat", params, tuple(x for x, _, _ in inputs))



def _lower_mean(a) -> Int8Kernel:
    op = a["op"]
    x, s_x, zp_x = _activation_input(a["x"])
    s_y, zp_y = _output_qparams(a["quant"])
    shape = _shape(x, "input")
    axes = sorted(int(v) % 4 for v in op.attrs.axis) if op.attrs.axis is not None and len(shape) == 4 else None
    if axes != [1, 2]:
        raise Unsupported(f"mean over axes {op.attrs.axis} of {shape}: only H, W of a 4-D tensor")
    n, h, w, c = shape
    if not 1 <= h * w <= MAX_WINDOW:
        raise Unsupported(f"mean over {h}x{w} elements")
    p = mean_params(s_x, zp_x, s_y, zp_y, h * w)
    params = dict(batches=n, in_h=h, in_w=w, channels=c, input_zero_point=zp_x, output_zero_point=zp_y,
                  multiplier=p["multiplier"], shift=p["shift"], act_min=INT8_MIN, act_max=INT8_MAX)
    return Int8Kernel("global_avg_pool2d", params, (x,))


def _lower_pool(a, kernel) -> Int8Kernel:
    op, attrs = a["op"], a["op"].attrs
    x, s_x, zp_x = _activation_input(a["x"])
    s_y, zp_y = _output_qparams(a["quant"])
    if (s_y, zp_y) != (s_x, zp_x):
        raise Unsupported(f"{kernel} must keep the input's scale and zero point")
    if (str(attrs.layout), str(attrs.out_layout or attrs.layout)) != ("NHWC", "NHWC"):
        raise Unsupported(f"{kernel} layout {attrs.layout}/{attrs.out_layout}")
    if _ints(attrs.dilation, 2) != (1, 1):
        raise Unsupported(f"{kernel} dilation {attrs.dilation}")
    shape = _shape(x, "input")
    n, h, w, c = shape if len(shape) == 4 else (0,) * 4
    kh, kw = _ints(attrs.pool_size, 2)
    sh, sw = _ints(attrs.strides, 2)
    pt, pl, pb, pr = _ints(attrs.padding, 4)
    if kernel == "avg_pool2d" and bool(attrs.count_include_pad) and (pt or pl or pb or pr):
        raise Unsupported("avg_pool2d counting the padding")
    oh, ow = (h + pt + pb - kh) // sh + 1, (w + pl + pr - kw) // sw + 1
    if len(shape) != 4 or _shape(op, "output") != (n, oh, ow, c) or kh * kw > MAX_WINDOW or min(pt, pl, pb, pr) < 0:
        raise Unsupported(f"{kernel} geometry (input {shape}, output {_shape(op, 'output')})")
    for out, size, k, s, pad in ((oh, h, kh, sh, pt), (ow, w, kw, sw, pl)):
        if any(not (o * s - pad < size and o * s - pad + k > 0) for o in range(out)):
            raise Unsupported(f"{kernel} has a window entirely in the padding")
    params = dict(batches=n, in_h=h, in_w=w, channels=c, out_h=oh, out_w=ow, kernel_h=kh, kernel_w=kw,
                  stride_h=sh, stride_w=sw, pad_top=pt, pad_left=pl, act_min=INT8_MIN, act_max=INT8_MAX)
    return Int8Kernel(kernel, params, (x,))


def _lower_pad(a) -> Int8Kernel:
    """npu_pad_s8 pads a 4-D row-major tensor; a tensor of lower rank is padded as [1, ..., 1, *shape]."""
    op, attrs = a["op"], a["op"].attrs
    x, s_x, zp_x = _activation_input(a["x"])
    if _output_qparams(a["quant"]) != (s_x, zp_x):
        raise Unsupported("pad must keep the input's scale and zero point")
    if str(attrs.pad_mode) != "constant" or float(attrs.pad_value) != 0.0:
        raise Unsupported(f"pad mode {attrs.pad_mode} value {attrs.pad_value}: only a constant pad with 0.0")
    shape = _shape(x, "input")
    if not 1 <= len(shape) <= 4:
        raise Unsupported(f"pad of a {len(shape)}-D tensor")
    width = _ints(attrs.pad_width, 2 * len(shape))
    before, after = width[0::2], width[1::2]
    if min(width) < 0 or _shape(op, "output") != tuple(b + d + e for b, d, e in zip(before, shape, after)):
        raise Unsupported(f"pad widths {width} of {shape} (output {_shape(op, 'output')})")
    lead = (0,) * (4 - len(shape))
    in_dims = (1,) * len(lead) + shape
    _i32(math.prod(b + d + e for b, d, e in zip(lead + before, in_dims, lead + after)), "output size")
    return Int8Kernel("pad", dict(in_dims=in_dims, pad_before=lead + before, pad_after=lead + after, pad_value=zp_x),
                      (x,))


def _lower_lut(a) -> Int8Kernel:
    op, x = a["op"], a["astype"].args[0]  # the argument itself (a var), not the value the wildcard matched
    table = _const_array(a["table"], "int8", "table")
    offset = _const_array(a["offset"], "int32", "table offset")
    if table.shape != (256,) or offset.size != 1 or int(offset.reshape(-1)[0]) != 128:
        raise Unsupported(f"take of a {table.shape} table at offset {offset}: not an int8 table lookup")
    if _dtype(x) != "int8" or str(a["astype"].attrs.dtype) != "int32" or int(op.attrs.axis or 0) != 0:
        raise Unsupported("table lookup of a tensor that is not int8")
    return Int8Kernel("lut", dict(size=_i32(math.prod(_shape(x, "input")), "size")), (x,), dict(table=table))


def _lower_prelu(a) -> Int8Kernel:
    """npu_prelu_s8: [outer, C] NHWC by a slope per channel (a single slope repeated)."""
    op = a["op"]
    x, s_x, zp_x = _activation_input(a["x"])
    alpha_q, s_alpha, zp_alpha = _activation_input(a["alpha_dq"])
    alpha_q = _const_array(alpha_q, "int8", "slope")
    s_y, zp_y = _output_qparams(a["quant"])
    shape = _shape(x, "input")
    if not shape or int(op.attrs.axis) % len(shape) != len(shape) - 1:
        raise Unsupported("PReLU's slope must run along the last (channel) axis")
    channels = shape[-1]
    if alpha_q.size not in (1, channels):
        raise Unsupported(f"PReLU slope of {alpha_q.size} values for {channels} channels")
    p = prelu.prelu_params(s_x, s_alpha, s_y)
    params = dict(outer=_i32(math.prod(shape[:-1]), "outer"), channels=channels, input_zero_point=zp_x,
                  alpha_zero_point=zp_alpha, output_zero_point=zp_y, **p, act_min=INT8_MIN, act_max=INT8_MAX)
    return Int8Kernel("prelu", params, (x,), dict(alpha=np.broadcast_to(alpha_q.reshape(-1), (channels,)).copy()))


def _resize_geometry(op, x) -> tuple[dict, str]:
    """npu_resize_params of an NHWC R.image.resize2d and its coordinate mode."""
    attrs = op.attrs
    if str(attrs.layout) != "NHWC":
        raise Unsupported(f"resize in layout {attrs.layout}")
    (n, in_h, in_w, c), (_, out_h, out_w, _) = _shape(x, "input"), _shape(op, "output")
    _i32(n * out_h * out_w * c, "output size")
    params = dict(batches=n, in_h=in_h, in_w=in_w, channels=c, out_h=out_h, out_w=out_w)
    return params, str(attrs.coordinate_transformation_mode)


def _lower_resize_bilinear(a) -> Int8Kernel:
    op = a["op"]
    x, s_x, zp_x = _activation_input(a["x"])
    if _output_qparams(a["quant"]) != (s_x, zp_x):
        raise Unsupported("resize must keep the input's scale and zero point")
    if str(op.attrs.method) != "linear":
        raise Unsupported(f"resize method {op.attrs.method}")
    params, mode = _resize_geometry(op, x)
    try:
        y_lerp = resize.bilinear_tables_for_onnx(params["in_h"], params["out_h"], mode)
        x_lerp = resize.bilinear_tables_for_onnx(params["in_w"], params["out_w"], mode)
    except ValueError as err:
        raise Unsupported(str(err)) from None
    return Int8Kernel("resize_bilinear", params, (x,), dict(y_lerp=y_lerp, x_lerp=x_lerp))


def _lower_resize_nearest(a) -> Int8Kernel:
    op, x = a["op"], a["op"].args[0]
    if _dtype(x) != "int8" or str(op.attrs.method) != "nearest_neighbor":
        raise Unsupported("nearest resize of a tensor that is not int8")
    params, mode = _resize_geometry(op, x)
    rounding = str(op.attrs.rounding_method) or "round_prefer_floor"
    try:
        y_index = resize.onnx_nearest_index(params["in_h"], params["out_h"], params["out_h"] / params["in_h"], mode,
                                            rounding)
        x_index = resize.onnx_nearest_index(params["in_w"], params["out_w"], params["out_w"] / params["in_w"], mode,
                                            rounding)
    except ValueError as err:
        raise Unsupported(str(err)) from None
    return Int8Kernel("resize_nearest", params, (x,), dict(y_index=y_index, x_index=x_index))


def _lower_copy(a) -> Int8Kernel:
    """npu_copy_s8 for R.strided_slice of an int8 tensor (positive strides)."""
    op, x = a["op"], a["op"].args[0]
    if _dtype(x) != "int8":
        raise Unsupported("slice of a tensor that is not int8")
    shape = _shape(x, "input")
    starts, ends, steps = [0] * len(shape), list(shape), [1] * len(shape)
    axes, begin, end, *strides = ([int(v.value) for v in arg.fields] for arg in op.args[1:])
    for i, axis in enumerate(axes):
        axis %= len(shape)
        steps[axis] = strides[0][i] if strides else 1
        if steps[axis] <= 0:
            raise Unsupported(f"slice step {steps[axis]}")
        starts[axis], ends[axis] = (_slice_bound(v, shape[axis]) for v in (begin[i], end[i]))
    try:
        params = move.slice_plan(shape, starts, ends, steps)
    except ValueError as err:
        raise Unsupported(str(err)) from None
    if tuple(len(range(b, e, st)) for b, e, st in zip(starts, ends, steps)) != _shape(op, "output"):
        raise Unsupported(f"slice output shape {_shape(op, 'output')}")
    return Int8Kernel("copy", params, (x,))


def _slice_bound(value: int, extent: int) -> int:
    """A slice begin / end as an index in [0, extent] (negative counts from the end)."""
    return min(max(value + extent if value < 0 else value, 0), extent)


def _lower_softmax(a) -> Int8Kernel:
    """npu_softmax_s8: TFLite's int8 SOFTMAX along the last axis, beta 1, output at 1/256 and -128."""
    op = a["op"]
    x, s_x, _ = _activation_input(a["x"])
    if not is_int8_softmax(op):
        raise Unsupported("softmax along an axis that is not the last")
    if _output_qparams(a["quant"]) != (SOFTMAX_QPARAMS.scale, SOFTMAX_QPARAMS.zero_point):
        raise Unsupported("int8 softmax output must have scale 1/256 and zero point -128")
    shape = _shape(x, "input")
    try:
        p = softmax.softmax_params(s_x, beta=1.0)
    except ValueError as err:
        raise Unsupported(str(err)) from None
    params = dict(rows=_i32(math.prod(shape[:-1]), "rows"), depth=_i32(shape[-1], "depth"), **p)
    return Int8Kernel("softmax", params, (x,))


def _lower_quantize(a) -> Int8Kernel:
    op = a["op"]
    x = op.args[0]
    if _is_const(x) or _dtype(x) != "float32":
        raise Unsupported("quantize of a constant or non-float32 tensor")
    scale, zp = _output_qparams(op)
    return Int8Kernel("quantize", dict(size=_i32(math.prod(_shape(x, "input")), "size"), scale=scale,
                                       zero_point=zp), (x,))


def _lower_dequantize(a) -> Int8Kernel:
    op = a["op"]
    x, scale, zp = _activation_input(op)
    if _is_const(x):
        raise Unsupported("dequantize of a constant (a weight) stays in TVM")
    return Int8Kernel("dequantize", dict(size=_i32(math.prod(_shape(x, "input")), "size"), scale=scale,
                                         zero_point=zp), (x,))


_LOWER: dict[str, Callable] = {
    "conv2d": lambda a: _lower_mac(a, "conv2d"),
    "dense": lambda a: _lower_mac(a, "dense"),
    "add": _lower_add,
    "mul": _lower_mul,
    "concat": _lower_concat,
    "requantize": _lower_requantize,
    "global_avg_pool2d": _lower_mean,
    "max_pool2d": lambda a: _lower_pool(a, "max_pool2d"),
    "avg_pool2d": lambda a: _lower_pool(a, "avg_pool2d"),
    "pad": _lower_pad,
    "lut": _lower_lut,
    "prelu": _lower_prelu,
    "resize_bilinear": _lower_resize_bilinear,
    "resize_nearest": _lower_resize_nearest,
    "copy": _lower_copy,
    "softmax": _lower_softmax,
    "quantize": _lower_quantize,
    "dequantize": _lower_dequantize,
}


# ---------------------------------------------------------------------------------------------
# Checked reads of the QDQ form


def _is_const(expr) -> bool:
    return isinstance(expr, tvm.ir.GenericConst)


def _dtype(expr) -> str:
    return str(getattr(expr.ty, "dtype", ""))


def _shape(expr, what) -> tuple:
    shape = getattr(expr.ty, "shape", None)
    try:
        return tuple(int(d) for d in shape)
    except (TypeError, ValueError):
        raise Unsupported(f"{what} has no static shape ({expr.ty})") from None


def _ints(values, count) -> tuple:
    values = tuple(int(v) for v in values)
    if len(values) != count:
        raise Unsupported(f"expected {count} values, got {values}")
    return values


def _i32(value, what) -> int:
    if not 0 <= int(value) <= INT32_MAX:
        raise Unsupported(f"{what}={value} does not fit the kernel's int32")
    return int(value)


def _const_array(expr, dtype, what) -> np.ndarray:
    if not _is_const(expr):
        raise Unsupported(f"{what} is not a constant")
    array = expr.value.numpy()
    if str(array.dtype) != dtype:
        raise Unsupported(f"{what} is {array.dtype}, not {dtype}")
    return array


def _scale(expr) -> float:
    s = _const_array(expr, "float32", "scale")
    if s.ndim != 0 or not (math.isfinite(float(s)) and float(s) > 0.0):
        raise Unsupported(f"scale {s} is not a positive per-tensor float32")
    return float(s)


def _zero_point(expr, lo=INT8_MIN, hi=INT8_MAX) -> int:
    if not _is_const(expr):
        raise Unsupported("zero point is not a constant")
    z = expr.value.numpy()
    if z.ndim != 0 or z.dtype.kind not in "iu" or not lo <= int(z) <= hi:
        raise Unsupported(f"zero point {z} is not a per-tensor int8 value")
    return int(z)


def _activation_input(dq) -> tuple:
    """dequantize(x_q int8, scalar float32 scale, scalar int8 zero point) -> (x, scale, zero point)."""
    x, scale, zp = dq.args
    if _dtype(x) != "int8" or str(dq.attrs.out_dtype) != "float32":
        raise Unsupported(f"dequantize {_dtype(x)} -> {dq.attrs.out_dtype}, not int8 -> float32")
    return x, _scale(scale), _zero_point(zp)


def _output_qparams(q) -> tuple:
    """quantize(y, scalar float32 scale, scalar int8 zero point) to int8 -> (scale, zero point)."""
    if str(q.attrs.out_dtype) != "int8":
        raise Unsupported(f"quantize to {q.attrs.out_dtype}")
    return _scale(q.args[1]), _zero_point(q.args[2])


def _channel_scales(dq, channels, axis, what) -> np.ndarray:
    """Scales of dequantize(const, s, zeros, axis): per tensor or per `axis` channel, zero points all 0."""
    data, scale, zp = dq.args
    ndim = len(_shape(data, what))
    s = _const_array(scale, "float32", f"{what} scale")
    if not _is_const(zp):
        raise Unsupported(f"{what} zero point is not a constant")
    z = zp.value.numpy()
    if z.dtype.kind not in "iu" or np.any(z != 0) or z.ndim > 1 or z.size not in (1, channels):
        raise Unsupported(f"{what} zero points must be 0")
    if s.ndim > 1 or (s.ndim == 1 and (s.shape[0] != channels or int(dq.attrs.axis) % ndim != axis)):
        raise Unsupported(f"{what} scales {s.shape} are not per tensor or per channel along axis {axis}")
    if not np.all(np.isfinite(s) & (s > 0)) or str(dq.attrs.out_dtype) != "float32":
        raise Unsupported(f"{what} scales must be positive finite float32")
    return np.broadcast_to(s, (channels,)).astype(np.float32)


def _quantize_multiplier(real: float) -> tuple[int, int]:
    try:
        return quantize_multiplier(real)
    except ValueError as err:
        raise Unsupported(str(err)) from None


def _act_range(act, s_y: float, zp_y: int) -> tuple[int, int]:
    """TFLite's CalculateActivationRangeQuantized for relu / clip(lo, hi): a bound b becomes
    zp_y + TfLiteRound(float32(b) / float32(s_y)) (float32 division, round half away from zero),
    then act_min = max(-128, .), act_max = min(127, .)."""
    if act is None:
        return INT8_MIN, INT8_MAX
    if act.op.name == "relax.nn.relu":
        lo, hi = 0.0, math.inf
    else:
        lo, hi = (_prim_float(v) for v in act.args[1:3])
    act_min = max(INT8_MIN, _quantize_bound(lo, s_y, zp_y))
    act_max = min(INT8_MAX, _quantize_bound(hi, s_y, zp_y))
    if act_min > act_max:
        raise Unsupported(f"activation range [{lo}, {hi}] is empty at output scale {s_y}")
    return act_min, act_max


def _prim_float(value) -> float:
    if isinstance(value, relax.PrimValue if hasattr(relax, "PrimValue") else ()):
        value = value.value
    if type(value).__name__ not in ("FloatImm", "IntImm") or isinstance(value.value, bool):
        raise Unsupported(f"clip bound {value} is not a constant")
    return float(value.value)


def _quantize_bound(bound: float, s_y: float, zp_y: int) -> int:
    if math.isnan(bound):
        raise Unsupported("NaN clip bound")
    with np.errstate(over="ignore"):
        t = float(np.float32(bound) / np.float32(s_y))
    if math.isinf(t) or abs(t) > 2.0**31:
        return INT32_MAX if t > 0 else -INT32_MAX
    return zp_y + int(math.copysign(math.floor(abs(t) + 0.5), t))


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
