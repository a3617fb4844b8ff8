"""Lowering: the calls a row of the int8 pattern table matched (quant/patterns.py) -> the kernel's
parameters.

Each `_lower_<kernel>` derives everything its kernel needs from the matched calls (integer
parameters from the float scales, weights in the kernel layout) and raises Unsupported for
anything the kernel does not compute exactly. Kernels whose parameters depend on the integer spec
(quant/integer_spec.py) take it too (_SPEC_LOWER).
"""

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from compiler.quant import qdq_reads as r
from compiler.quant.fixed_point import INT32_MAX, ROUNDINGS
from compiler.quant.integer_spec import (
    DEQUANTIZE_BLOCK, MEAN_ROUNDING, MEAN_ROUNDING_WITHOUT_KEEP_DIMS, ONNX, QUANTIZE_BLOCK, TFLITE)
from compiler.quant.plan import SOFTMAX_QPARAMS, is_int8_softmax
from compiler.quant.qdq_reads import INT8_MAX, INT8_MIN, Unsupported
from compiler.quant.reference import add_params, concat_params, mean_params, mul_params, requantize_params
from compiler.quant.reference import litert_mean_params, litert_reference_mean_params
from compiler.quant.reference import move, prelu, resize, softmax
from compiler.quant.reference.elementwise import reciprocal
from compiler.quant.reference.conv import validate_multipliers
from compiler.quant.reference.conv16x8 import validate_quant16

MAX_WINDOW = 1 << 23  # pool windows and MEAN's H * W (kernel limit)


@dataclass(frozen=True)
class Int8Kernel:
    """A lowered match: the C params struct's fields (declaration order), the tensor inputs (relax
    exprs, in kernel argument order) and the constant arrays, already in the kernel's layout."""

    kernel: str
    params: dict
    inputs: tuple
    arrays: dict = field(default_factory=dict)  # weight, bias, multiplier, shift (conv2d, dense)


def lower_kernel(kernel: str, a: dict, spec: str = ONNX) -> Int8Kernel:
    """Kernel `kernel`'s parameters from the annotated calls `a` of its row's match."""
    if kernel in _SPEC_LOWER:
        return _SPEC_LOWER[kernel](a, spec)
    return _LOWER[kernel](a)


def _lower_mac(a, kernel) -> Int8Kernel:
    """conv2d / dense of an int8 input, or of an int16 one (TFLite's 16x8 scheme: conv2d_s16x8,
    dense_s16x8, zero points 0, int64 bias and accumulator, int16 output)."""
    op = a["op"]
    if str(op.attrs.out_dtype or "float32") not in ("float32", "void", ""):
        raise Unsupported(f"{kernel} out_dtype {op.attrs.out_dtype}")
    dtype = r.dtype_of(a["x"].args[0])
    if dtype not in r.BOUNDS:
        raise Unsupported(f"{kernel} of a {dtype} input")
    x, s_x, zp_x = r.activation_input(a["x"], dtype)
    s_y, zp_y = r.output_qparams(a["quant"], dtype)
    w_q = r.const_array(a["w"].args[0], "int8", "weight")
    in_shape, out_shape = r.static_shape(x, "input"), r.static_shape(op, "output")
    if kernel == "conv2d":
        params, weight, taps = _conv_geometry(op, in_shape, out_shape, w_q)
        o = w_q.shape[0]
    else:
        if w_q.ndim != 2 or len(in_shape) < 1 or in_shape[-1] != w_q.shape[0]:
            raise Unsupported(f"dense needs input [..., K] and weight [K, O], got {in_shape} and {w_q.shape}")
        weight, taps, o = np.ascontiguousarray(w_q.T), w_q.shape[0], w_q.shape[1]
        if out_shape != in_shape[:-1] + (o,):
            raise Unsupported(f"dense output {out_shape} for input {in_shape} and weight {w_q.shape}")
        params = dict(batches=r.i32(math.prod(in_shape[:-1]), "batches"), in_features=r.i32(taps, "in_features"),
                      out_features=r.i32(o, "out_features"))
    s_w = r.channel_scales(a["w"], o, 0 if kernel == "conv2d" else 1, "weight")
    bias = None
    if "b" in a:
        if r.static_shape(a["bias_add"], "bias add") != out_shape:
            raise Unsupported("the bias add broadcasts beyond the output shape")
        bias = checked_bias(a["b"], s_x, s_w, o, kernel)
    requant = [r.quantize_multiplier(float(s_x) * float(s) / float(s_y)) for s in s_w]
    act_min, act_max = r.act_range(a.get("act"), s_y, zp_y, dtype)
    params.update(input_zero_point=zp_x, output_zero_point=zp_y, act_min=act_min, act_max=act_max)
    arrays = dict(weight=weight, bias=bias, multiplier=np.array([m for m, _ in requant], np.int32),
                  shift=np.array([e for _, e in requant], np.int32))
    if dtype == "int16":
        return _mac16(kernel, params, x, arrays)
    bound = (0 if bias is None else int(np.abs(bias.astype(np.int64)).max())) + taps * 255 * int(
        np.abs(weight.astype(np.int64)).max(initial=0))
    if bound > INT32_MAX:
        raise Unsupported(f"its int32 accumulator could overflow (|bias| + taps x 255 x |weight| reaches {bound:,}, "
                          "over 2**31 - 1)")
    return Int8Kernel(kernel, params, (x,), arrays)


def _mac16(kernel, params, x, arrays) -> Int8Kernel:
    """The 16x8 form: its int64 bias (the QDQ form's int32 widened; the int64 sums cannot overflow) and
    its shifts within the 16x8 kernels' [-31, 7] (conv16x8.validate_quant16)."""
    bias = arrays["bias"]
    arrays = dict(arrays, bias=None if bias is None else bias.astype(np.int64))
    try:
        validate_quant16(arrays["bias"], len(arrays["multiplier"]), arrays["multiplier"], arrays["shift"],
                         params["act_min"], params["act_max"])
    except ValueError as err:
        raise Unsupported(f"{kernel}_s16x8: {err}") from None
    return Int8Kernel(f"{kernel}_s16x8", params, (x,), arrays)


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
    sh, sw = r.ints(attrs.strides, 2)
    dh, dw = r.ints(attrs.dilation, 2)
    pt, pl, pb, pr = r.ints(attrs.padding, 4)
    oh = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    ow = (w + pl + pr - dw * (kw - 1) - 1) // sw + 1
    if tuple(out_shape) != (n, oh, ow, o) or min(pt, pl, pb, pr) < 0:
        raise Unsupported(f"conv2d output {out_shape} != expected {(n, oh, ow, o)}")
    params = dict(batches=n, in_h=h, in_w=w, in_c=c, out_h=oh, out_w=ow, out_c=o, kernel_h=kh, kernel_w=kw,
                  stride_h=sh, stride_w=sw, dilation_h=dh, dilation_w=dw, pad_top=pt, pad_left=pl, groups=groups)
    for key, value in params.items():
        r.i32(value, key)
    return params, np.ascontiguousarray(w_q), kh * kw * cg


def checked_bias(b, s_x, s_w, o, kernel) -> np.ndarray:
    b_q = r.const_array(b.args[0], "int32", "bias")
    allowed = [(o,), (1, 1, 1, o)] if kernel == "conv2d" else [(o,), (1, o)]
    if b_q.shape not in allowed:
        raise Unsupported(f"bias shape {b_q.shape} is not a per-channel bias of {o} channels")
    s_b = r.channel_scales(b, o, b_q.ndim - 1, "bias")
    expected = (np.float64(s_x) * s_w.astype(np.float64)).astype(np.float32)
    if not np.allclose(s_b, expected, rtol=2.0**-22, atol=0.0):
        raise Unsupported("bias scale is not s_x * s_w within float32 rounding")
    return np.ascontiguousarray(b_q.reshape(o))


def _lower_add(a) -> Int8Kernel:
    """npu_add_s8 for ADD and SUB: input1 [batches, pixels, channels], input2 the same or one value
    per channel (an add's operands swap when the broadcast one comes first)."""
    subtract = a["op"].op.name == "relax.subtract"
    (x, s1, zp1), (y, s2, zp2), layout = _broadcast_operands(a, "sub" if subtract else "add", commutes=not subtract)
    s_y, zp_y = r.output_qparams(a["quant"])
    act_min, act_max = r.act_range(a.get("act"), s_y, zp_y)
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
    first, second = r.activation_input(a["x"]), r.activation_input(a["y"])
    shape, other = r.static_shape(first[0], "input 1"), r.static_shape(second[0], "input 2")
    if commutes and other != shape and len(shape) == 4 and shape == (other[0], 1, 1, other[3]):
        first, second, shape, other = second, first, other, shape
    if r.static_shape(a["op"], "output") != shape:
        raise Unsupported(f"{what} of {shape} and {other}")
    r.i32(math.prod(shape), "size")
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
    s_y, zp_y = r.output_qparams(a["quant"])
    p = mul_params(s1, s2, s_y)
    params = dict(**layout, input1_zero_point=zp1, input2_zero_point=zp2, output_zero_point=zp_y,
                  output_multiplier=p["output_multiplier"], output_shift=p["output_shift"], act_min=INT8_MIN,
                  act_max=INT8_MAX)
    return Int8Kernel("mul", params, (x, y))


def _lower_requantize(a) -> Int8Kernel:
    x, s_x, zp_x = r.activation_input(a["x"])
    s_y, zp_y = r.output_qparams(a["quant"])
    return Int8Kernel("requantize", _requantize_fields(x, s_x, zp_x, s_y, zp_y, *r.act_range(a["act"], s_y, zp_y)), (x,))


def _requantize_fields(x, s_x, zp_x, s_y, zp_y, act_min, act_max) -> dict:
    """npu_requantize_params of a rescale of tensor x from (s_x, zp_x) to (s_y, zp_y), clamped."""
    p = requantize_params(s_x, zp_x, s_y, zp_y)
    return dict(size=r.i32(math.prod(r.static_shape(x, "input")), "size"), input_zero_point=zp_x,
                output_zero_point=zp_y, multiplier=p["multiplier"], shift=p["shift"], act_min=act_min, act_max=act_max)


# The rescales around a 16x8 layer: (input dtype, output dtype) -> kernel
_RESCALES = {("int8", "int16"): "requantize_s8_s16", ("int16", "int8"): "requantize_s16_s8"}


def _lower_rescale(a) -> Int8Kernel:
    """quantize(dequantize(x)) between int8 and int16: npu_requantize_s8_s16 (widening an int8 tensor for a
    16x8 layer) or npu_requantize_s16_s8 (narrowing a 16x8 layer's output for an int8 reader)."""
    source, target = r.dtype_of(a["x"].args[0]), str(a["quant"].attrs.out_dtype)
    kernel = _RESCALES.get((source, target))
    if kernel is None:
        raise Unsupported(f"rescale {source} -> {target}")
    x, s_x, zp_x = r.activation_input(a["x"], source)
    s_y, zp_y = r.output_qparams(a["quant"], target)
    params = _requantize_fields(x, s_x, zp_x, s_y, zp_y, *r.BOUNDS[target])
    try:
        validate_multipliers(params["multiplier"], params["shift"], 1, max_shift=30)
    except ValueError as err:
        raise Unsupported(f"{kernel}: {err}") from None
    return Int8Kernel(kernel, params, (x,))


def _lower_concat(a) -> Int8Kernel:
    op = a["op"]
    arity = sum(1 for key in a if key.startswith("x"))
    inputs = [r.activation_input(a[f"x{i}"]) for i in range(arity)]
    s_y, zp_y = r.output_qparams(a["quant"])
    out_shape = r.static_shape(op, "output")
    axis = int(op.attrs.axis) % len(out_shape) if out_shape else 0
    shapes = [r.static_shape(x, f"input {i}") for i, (x, _, _) in enumerate(inputs)]
    if not out_shape or any(len(s) != len(out_shape) for s in shapes):
        raise Unsupported("concat of tensors of different ranks")
    inner = math.prod(out_shape[axis + 1:])
    p = concat_params([s for _, s, _ in inputs], [z for _, _, z in inputs], s_y, zp_y)
    params = dict(outer=r.i32(math.prod(out_shape[:axis]), "outer"), num_inputs=arity, output_zero_point=zp_y)
    for i, (s, z, m, e) in enumerate(zip(shapes, p["input_zero_points"], p["multipliers"], p["shifts"])):
        params |= {f"input{i}_size": r.i32(s[axis] * inner, "size"), f"input{i}_zero_point": z,
                   f"input{i}_multiplier": m, f"input{i}_shift": e}
    return Int8Kernel("concat", params, tuple(x for x, _, _ in inputs))



# A TFLite model's MEAN by keep_dims: LiteRT's optimized int8 MEAN with it, its reference MEAN
# without (quant/reference/pool.py).
_TFLITE_MEAN = {True: (litert_mean_params, MEAN_ROUNDING), False: (litert_reference_mean_params,
                                                                    MEAN_ROUNDING_WITHOUT_KEEP_DIMS)}


def _lower_mean(a, spec) -> Int8Kernel:
    op = a["op"]
    x, s_x, zp_x = r.activation_input(a["x"])
    s_y, zp_y = r.output_qparams(a["quant"])
    shape = r.static_shape(x, "input")
    axes = sorted(int(v) % 4 for v in op.attrs.axis) if op.attrs.axis is not None and len(shape) == 4 else None
    if axes != [1, 2]:
        raise Unsupported(f"mean over axes {op.attrs.axis} of {shape}: only H, W of a 4-D tensor")
    n, h, w, c = shape
    if not 1 <= h * w <= MAX_WINDOW:
        raise Unsupported(f"mean over {h}x{w} elements")
    params = dict(batches=n, in_h=h, in_w=w, channels=c)
    if spec == TFLITE:
        derive, roundings = _TFLITE_MEAN[bool(op.attrs.keepdims)]
        params |= derive(s_x, zp_x, s_y, zp_y, h * w)
        block, other = roundings[spec]
        params |= dict(rounding=ROUNDINGS.index(other), block_rounding=ROUNDINGS.index(block))
    else:
        params |= mean_params(s_x, zp_x, s_y, zp_y, h * w)
    return Int8Kernel("global_avg_pool2d", params | dict(act_min=INT8_MIN, act_max=INT8_MAX), (x,))


def _lower_pool(a, kernel) -> Int8Kernel:
    op, attrs = a["op"], a["op"].attrs
    x, s_x, zp_x = r.activation_input(a["x"])
    s_y, zp_y = r.output_qparams(a["quant"])
    if (s_y, zp_y) != (s_x, zp_x):
        raise Unsupported(f"{kernel} must keep the input's scale and zero point")
    if (str(attrs.layout), str(attrs.out_layout or attrs.layout)) != ("NHWC", "NHWC"):
        raise Unsupported(f"{kernel} layout {attrs.layout}/{attrs.out_layout}")
    if r.ints(attrs.dilation, 2) != (1, 1):
        raise Unsupported(f"{kernel} dilation {attrs.dilation}")
    shape = r.static_shape(x, "input")
    n, h, w, c = shape if len(shape) == 4 else (0,) * 4
    kh, kw = r.ints(attrs.pool_size, 2)
    sh, sw = r.ints(attrs.strides, 2)
    pt, pl, pb, pr = r.ints(attrs.padding, 4)
    if kernel == "avg_pool2d" and bool(attrs.count_include_pad) and (pt or pl or pb or pr):
        raise Unsupported("avg_pool2d counting the padding")
    oh, ow = (h + pt + pb - kh) // sh + 1, (w + pl + pr - kw) // sw + 1
    if len(shape) != 4 or r.static_shape(op, "output") != (n, oh, ow, c) or kh * kw > MAX_WINDOW or min(pt, pl, pb, pr) < 0:
        raise Unsupported(f"{kernel} geometry (input {shape}, output {r.static_shape(op, 'output')})")
    for out, size, k, s, pad in ((oh, h, kh, sh, pt), (ow, w, kw, sw, pl)):
        if any(not (o * s - pad < size and o * s - pad + k > 0) for o in range(out)):
            raise Unsupported(f"{kernel} has a window entirely in the padding")
    params = dict(batches=n, in_h=h, in_w=w, channels=c, out_h=oh, out_w=ow, kernel_h=kh, kernel_w=kw,
                  stride_h=sh, stride_w=sw, pad_top=pt, pad_left=pl, act_min=INT8_MIN, act_max=INT8_MAX)
    return Int8Kernel(kernel, params, (x,))


def _lower_pad(a) -> Int8Kernel:
    """npu_pad_s8 pads a 4-D row-major tensor; a tensor of lower rank is padded as [1, ..., 1, *shape]."""
    op, attrs = a["op"], a["op"].attrs
    x, s_x, zp_x = r.activation_input(a["x"])
    if r.output_qparams(a["quant"]) != (s_x, zp_x):
        raise Unsupported("pad must keep the input's scale and zero point")
    if str(attrs.pad_mode) != "constant" or float(attrs.pad_value) != 0.0:
        raise Unsupported(f"pad mode {attrs.pad_mode} value {attrs.pad_value}: only a constant pad with 0.0")
    shape = r.static_shape(x, "input")
    if not 1 <= len(shape) <= 4:
        raise Unsupported(f"pad of a {len(shape)}-D tensor")
    width = r.ints(attrs.pad_width, 2 * len(shape))
    before, after = width[0::2], width[1::2]
    if min(width) < 0 or r.static_shape(op, "output") != tuple(b + d + e for b, d, e in zip(before, shape, after)):
        raise Unsupported(f"pad widths {width} of {shape} (output {r.static_shape(op, 'output')})")
    lead = (0,) * (4 - len(shape))
    in_dims = (1,) * len(lead) + shape
    r.i32(math.prod(b + d + e for b, d, e in zip(lead + before, in_dims, lead + after)), "output size")
    return Int8Kernel("pad", dict(in_dims=in_dims, pad_before=lead + before, pad_after=lead + after, pad_value=zp_x),
                      (x,))


def _lower_lut(a) -> Int8Kernel:
    op, x = a["op"], a["astype"].args[0]  # the argument itself (a var), not the value the wildcard matched
    table = r.const_array(a["table"], "int8", "table")
    offset = r.const_array(a["offset"], "int32", "table offset")
    if table.shape != (256,) or offset.size != 1 or int(offset.reshape(-1)[0]) != 128:
        raise Unsupported(f"take of a {table.shape} table at offset {offset}: not an int8 table lookup")
    if r.dtype_of(x) != "int8" or str(a["astype"].attrs.dtype) != "int32" or int(op.attrs.axis or 0) != 0:
        raise Unsupported("table lookup of a tensor that is not int8")
    return Int8Kernel("lut", dict(size=r.i32(math.prod(r.static_shape(x, "input")), "size")), (x,), dict(table=table))


def _lower_prelu(a) -> Int8Kernel:
    """npu_prelu_s8: [outer, C] NHWC by a slope per channel (a single slope repeated)."""
    op = a["op"]
    x, s_x, zp_x = r.activation_input(a["x"])
    alpha_q, s_alpha, zp_alpha = r.activation_input(a["alpha_dq"])
    alpha_q = r.const_array(alpha_q, "int8", "slope")
    s_y, zp_y = r.output_qparams(a["quant"])
    shape = r.static_shape(x, "input")
    if not shape or int(op.attrs.axis) % len(shape) != len(shape) - 1:
        raise Unsupported("PReLU's slope must run along the last (channel) axis")
    channels = shape[-1]
    if alpha_q.size not in (1, channels):
        raise Unsupported(f"PReLU slope of {alpha_q.size} values for {channels} channels")
    p = prelu.prelu_params(s_x, s_alpha, s_y)
    params = dict(outer=r.i32(math.prod(shape[:-1]), "outer"), channels=channels, input_zero_point=zp_x,
                  alpha_zero_point=zp_alpha, output_zero_point=zp_y, **p, act_min=INT8_MIN, act_max=INT8_MAX)
    return Int8Kernel("prelu", params, (x,), dict(alpha=np.broadcast_to(alpha_q.reshape(-1), (channels,)).copy()))


def _resize_geometry(op, x) -> tuple[dict, str]:
    """npu_resize_params of an NHWC R.image.resize2d and its coordinate mode."""
    attrs = op.attrs
    if str(attrs.layout) != "NHWC":
        raise Unsupported(f"resize in layout {attrs.layout}")
    (n, in_h, in_w, c), (_, out_h, out_w, _) = r.static_shape(x, "input"), r.static_shape(op, "output")
    r.i32(n * out_h * out_w * c, "output size")
    params = dict(batches=n, in_h=in_h, in_w=in_w, channels=c, out_h=out_h, out_w=out_w)
    return params, str(attrs.coordinate_transformation_mode)


def _lower_resize_bilinear(a) -> Int8Kernel:
    op = a["op"]
    x, s_x, zp_x = r.activation_input(a["x"])
    if r.output_qparams(a["quant"]) != (s_x, zp_x):
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
    if r.dtype_of(x) != "int8" or str(op.attrs.method) != "nearest_neighbor":
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
    if r.dtype_of(x) != "int8":
        raise Unsupported("slice of a tensor that is not int8")
    shape = r.static_shape(x, "input")
    starts, ends, steps = slice_window(op, shape)
    if min(steps) <= 0:
        raise Unsupported(f"slice step {min(steps)}")
    try:
        params = move.slice_plan(shape, starts, ends, steps)
    except ValueError as err:
        raise Unsupported(str(err)) from None
    if tuple(len(range(b, e, st)) for b, e, st in zip(starts, ends, steps)) != r.static_shape(op, "output"):
        raise Unsupported(f"slice output shape {r.static_shape(op, 'output')}")
    return Int8Kernel("copy", params, (x,))


def slice_window(op, shape) -> tuple[list, list, list]:
    """(starts, ends, steps) over every axis of R.strided_slice `op` of a tensor of `shape`."""
    starts, ends, steps = [0] * len(shape), list(shape), [1] * len(shape)
    axes, begin, end, *strides = ([int(v.value) for v in arg.fields] for arg in op.args[1:])
    for i, axis in enumerate(axes):
        axis %= len(shape)
        steps[axis] = strides[0][i] if strides else 1
        starts[axis], ends[axis] = (slice_bound(v, shape[axis]) for v in (begin[i], end[i]))
    return starts, ends, steps


def slice_bound(value: int, extent: int) -> int:
    """A slice begin / end as an index in [0, extent] (negative counts from the end)."""
    return min(max(value + extent if value < 0 else value, 0), extent)


def _lower_softmax(a) -> Int8Kernel:
    """npu_softmax_s8: TFLite's int8 SOFTMAX along the last axis, beta 1, output at 1/256 and -128."""
    op = a["op"]
    x, s_x, _ = r.activation_input(a["x"])
    if not is_int8_softmax(op):
        raise Unsupported("softmax along an axis that is not the last")
    if r.output_qparams(a["quant"]) != (SOFTMAX_QPARAMS.scale, SOFTMAX_QPARAMS.zero_point):
        raise Unsupported("int8 softmax output must have scale 1/256 and zero point -128")
    shape = r.static_shape(x, "input")
    try:
        p = softmax.softmax_params(s_x, beta=1.0)
    except ValueError as err:
        raise Unsupported(str(err)) from None
    params = dict(rows=r.i32(math.prod(shape[:-1]), "rows"), depth=r.i32(shape[-1], "depth"), **p)
    return Int8Kernel("softmax", params, (x,))


def _lower_quantize(a, spec) -> Int8Kernel:
    """npu_quantize_f32_s8; a block and the scale's reciprocal (TFLite models: LiteRT's QUANTIZE) only
    when the block is not 0, so that an ONNX model's params are as before."""
    op = a["op"]
    x = op.args[0]
    if r.is_const(x) or r.dtype_of(x) != "float32":
        raise Unsupported("quantize of a constant or non-float32 tensor")
    scale, zp = r.output_qparams(op)
    params = dict(size=r.i32(math.prod(r.static_shape(x, "input")), "size"), scale=scale, zero_point=zp)
    if QUANTIZE_BLOCK[spec]:
        params.update(block=QUANTIZE_BLOCK[spec], reciprocal=float(reciprocal(scale)))
    return Int8Kernel("quantize", params, (x,))


def _lower_dequantize(a, spec) -> Int8Kernel:
    """npu_dequantize_s8_f32; a block (TFLite models: LiteRT's vector blocks) only when not 0, so
    that an ONNX model's params are as before."""
    op = a["op"]
    x, scale, zp = r.activation_input(op)
    if r.is_const(x):
        raise Unsupported("dequantize of a constant (a weight) stays in TVM")
    params = dict(size=r.i32(math.prod(r.static_shape(x, "input")), "size"), scale=scale, zero_point=zp)
    if DEQUANTIZE_BLOCK[spec]:
        params["block"] = DEQUANTIZE_BLOCK[spec]
    return Int8Kernel("dequantize", params, (x,))


_LOWER: dict[str, Callable] = {
    "conv2d": lambda a: _lower_mac(a, "conv2d"),
    "dense": lambda a: _lower_mac(a, "dense"),
    "add": _lower_add,
    "mul": _lower_mul,
    "concat": _lower_concat,
    "requantize": _lower_requantize,
    "rescale": _lower_rescale,
    "max_pool2d": lambda a: _lower_pool(a, "max_pool2d"),
    "avg_pool2d": lambda a: _lower_pool(a, "avg_pool2d"),
    "pad": _lower_pad,
    "lut": _lower_lut,
    "prelu": _lower_prelu,
    "resize_bilinear": _lower_resize_bilinear,
    "resize_nearest": _lower_resize_nearest,
    "copy": _lower_copy,
    "softmax": _lower_softmax,
}

_SPEC_LOWER: dict[str, Callable] = {"global_avg_pool2d": _lower_mean, "dequantize": _lower_dequantize,
                                     "quantize": _lower_quantize}
