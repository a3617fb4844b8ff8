"""Quantised ONNX operators -> the QDQ form (compiler/quant/qdq.py), in NCHW/OIHW at import time.

Converters (registered in converters.OVERRIDES):

- QuantizeLinear / DequantizeLinear: TVM's converters give R.quantize / R.dequantize with
  ONNX's axis (1 by default, even for a per-tensor scale) and whatever shape the scale has
  ([] or [1]). Ours canonicalise to the form: a per-tensor scale is a 0-d float32 constant
  with axis=-1; a constant input (a weight or bias) stays an int8/int32 constant under its
  dequantize, per-channel along ONNX's axis; QuantizeLinear of a constant (a float weight
  written as Q -> DQ) is quantised here, so the weight is an int8 constant as well.
- QLinearConv:   dequantize(x) -> conv2d(., dequantize(W_q)) [+ dequantize(B_q int32, s_x*s_w)]
                 -> quantize(y). QLinearMatMul: the same with matmul and W_q [K, N], axis 1.
- Gemm (transB=1) on a dequantized constant weight: the transpose goes into the int8 constant,
  so the weight is dequantize(W_q [K, N], axis 1) as for MatMul; other Gemms are TVM's.
- ConvInteger / MatMulInteger (int32 out, no requantisation): the same form with unit scales,
  dequantize(x, 1, zp_x) -> conv2d/matmul(., dequantize(W_q, 1, zp_w)) -> astype(int32),
  used when float32 holds every partial sum exactly (sum_k |w - zp_w| * max|x - zp_x| < 2**24,
  checked per output channel at import, so the result is bit-exact); otherwise (or when the
  weight is not a constant) the integer expression conv2d/matmul(x - zp_x, W - zp_w) in int32.

uint8 activations (ORT's QOperator format and QDQ with QUInt8) become int8 by the exact shift
q_s8 = q_u8 - 128, zp_s8 = zp_u8 - 128, applied where a uint8 tensor is consumed: a uint8
quantize is re-emitted as an int8 quantize (max-pool / reshape / transpose in between are
re-emitted on the int8 tensor, they commute with the shift); anything else gets an explicit
cast-and-subtract. The uint8 producers stay, so ONNX's types hold everywhere (a uint8 graph
output stays uint8); if only shifted consumers use them, dead-code elimination drops them. A uint8
quantize of an int8 dequantize at the same scale (TFLite's QUANTIZE to a uint8 model output) is
the integer re-zeroing clip(x - z + zp_u8, 0, 255): no float code.
uint8 constant weights are shifted in NumPy. A weight zero point that is not 0 (asymmetric
weights) is kept as is: exact, but outside the symmetric-weight form, so not offloaded.

Rejected with one line (the importer prefixes `cannot import node '<name>' (<op>)`):
int16/int4/float8 quantisation, per-channel activation quantisation, non-constant weights,
scales or zero points of QLinear ops, non-float32 scales, blocked quantisation, non-2-D convs.
"""

import numpy as np
from tvm import relax
from tvm.ir import GenericConst
from tvm.relax.frontend.onnx.onnx_frontend import OnnxOpConverter, get_constant

from compiler.quant import qdq

_EXACT_FLOAT32 = 2 ** 24  # float32 holds every integer below this exactly
_SHIFT_FREE_OPS = ("relax.nn.max_pool2d", "relax.reshape", "relax.permute_dims", "relax.squeeze",
                   "relax.expand_dims")


class UnsupportedQuantization(ValueError):
    """A quantisation the INT8 form cannot express. The importer turns it into a CompilerError."""


# -- small helpers ---------------------------------------------------------------------------

def _dtype(expr) -> str:
    return str(expr.ty.dtype)


def _check_dtype(dtype, allowed, what):
    if dtype not in allowed:
        shifted = "; uint8 is shifted to int8" if "uint8" in allowed else ""
        raise UnsupportedQuantization(f"{dtype} {what} is not supported (supported: {', '.join(allowed)}{shifted})")


def _constant(expr, params, what) -> np.ndarray:
    const = get_constant(expr, params)
    if not isinstance(const, GenericConst):
        raise UnsupportedQuantization(
            f"the {what} must be a constant initializer, not a graph input or a computed tensor")
    return const.value.numpy()


def _scale(expr, params, what) -> np.ndarray:
    array = _constant(expr, params, f"{what} scale")
    if array.dtype != np.float32:
        raise UnsupportedQuantization(f"the {what} scale is {array.dtype}; only float32 scales are supported")
    return array


def _zero_point(expr, params, dtype, what) -> np.ndarray:
    return np.zeros((), dtype) if expr is None else _constant(expr, params, f"{what} zero point")


def _per_tensor(scale, zero_point, what, axis=None):
    """(scale, zero point) as 0-d arrays, or the one-line rejection of per-channel activations."""
    if scale.size != 1 or zero_point.size != 1:
        where = f", axis {axis}" if axis is not None else ""
        raise UnsupportedQuantization(
            f"per-channel quantisation of the {what} (scale shape {list(scale.shape)}{where}) is not supported: "
            "activations must be quantised per tensor")
    return scale.reshape(()), zero_point.reshape(())


def _to_int8(array, zero_point):
    """uint8 values and zero points -> the same reals as int8 (q - 128, zp - 128); int8 unchanged."""
    if array.dtype == np.uint8:
        return ((array.astype(np.int16) - 128).astype(np.int8),
                (zero_point.astype(np.int16) - 128).astype(np.int8))
    return array, zero_point.astype(array.dtype)


def _channel_params(scale, zero_point, channels, axis, what):
    """Per-tensor -> 0-d; per-channel -> 1-D of length `channels` (ONNX also allows [C] shaped scalars)."""
    if scale.size == 1 and zero_point.size == 1:
        return scale.reshape(()), zero_point.reshape(())
    if scale.reshape(-1).shape != (channels,) or zero_point.size not in (1, channels):
        raise UnsupportedQuantization(
            f"the {what} scale has shape {list(scale.shape)}, expected a scalar or [{channels}] along axis {axis}")
    return scale.reshape(-1), np.broadcast_to(zero_point.reshape(-1), (channels,)).copy()


def _quantize_to(expr, scale, zero_point, out_dtype):
    """quantize(expr) per tensor to int8 (the form) or to uint8 (kept for ONNX's type; consumers shift it)."""
    if out_dtype == "int8":
        return qdq.quantize(expr, scale, zero_point)
    return relax.op.quantize(expr, relax.const(np.asarray(scale, np.float32)),
                             relax.const(np.asarray(zero_point, out_dtype)), axis=-1, out_dtype=out_dtype)


def _quantize_array(array, scale, zero_point, axis):
    """ONNX QuantizeLinear on a constant: round half to even, saturate to the zero point's dtype."""
    shape = [1] * array.ndim
    if scale.size > 1:
        shape[axis] = scale.size
    info = np.iinfo(zero_point.dtype)
    zero_point = zero_point.reshape(shape if zero_point.size > 1 else ())
    q = np.rint(array.astype(np.float32) / scale.reshape(shape)) + zero_point.astype(np.float32)
    return np.clip(q, info.min, info.max).astype(zero_point.dtype)


def _rezeroed_to_uint8(bb, expr, scale, zero_point):
    """quantize(dequantize(x int8, s, z), s, zp uint8) -> clip(x - z + zp, 0, 255) in integers, or None
    when `expr` is not such a dequantize. The same values as the float form (equal scales: no
    rounding), without float code: TFLite's QUANTIZE int8 -> uint8 at a uint8 model output, which
    the coral-npu firmware would otherwise run as float code calling nearbyintf (no libm there)."""
    value = bb.lookup_binding(expr) if isinstance(expr, relax.Var) else None
    if getattr(getattr(value, "op", None), "name", None) != "relax.dequantize" or _dtype(value.args[0]) != "int8":
        return None
    s_in, z_in = value.args[1], value.args[2]
    if not (isinstance(s_in, GenericConst) and isinstance(z_in, GenericConst)) or s_in.value.numpy().size != 1:
        return None
    if np.float32(s_in.value.numpy().reshape(())) != np.float32(scale):
        return None
    offset = int(zero_point) - int(z_in.value.numpy().reshape(()))
    wide = relax.op.add(relax.op.astype(value.args[0], "int16"), relax.const(offset, "int16"))
    return relax.op.astype(relax.op.clip(wide, 0, 255), "uint8")


def _as_int8(bb, expr):
    """An int8 expression for a uint8 activation `expr` (the same reals with zero point - 128)."""
    if _dtype(expr) == "int8":
        return expr
    value = bb.lookup_binding(expr) if isinstance(expr, relax.Var) else None
    op = getattr(getattr(value, "op", None), "name", None)
    if op == "relax.quantize" and isinstance(value.args[2], GenericConst):
        zero_point = value.args[2].value.numpy().astype(np.int16) - 128
        shifted = relax.op.quantize(value.args[0], value.args[1], relax.const(zero_point.astype(np.int8)),
                                    axis=int(value.attrs.axis), out_dtype="int8")
    elif op in _SHIFT_FREE_OPS:  # max / reshape / transpose commute with subtracting 128
        shifted = relax.Call(value.op, [_as_int8(bb, value.args[0])] + list(value.args[1:]), value.attrs)
    else:
        wide = relax.op.subtract(relax.op.astype(expr, "int16"), relax.const(128, "int16"))
        shifted = relax.op.astype(wide, "int8")
    return bb.emit(shifted)


def _activation(bb, expr, scale, zero_point, params, what):
    """dequantize(x_q) per tensor (x_q int8; a uint8 x_q is shifted to int8)."""
    _check_dtype(_dtype(expr), ("int8", "uint8"), f"{what} quantisation")
    scale = _scale(scale, params, what)
    zero_point = _zero_point(zero_point, params, _dtype(expr), what)
    scale, zero_point = _per_tensor(scale, zero_point, what)
    if _dtype(expr) == "uint8":
        zero_point = zero_point.astype(np.int16) - 128
    return qdq.dequantize(_as_int8(bb, expr), scale, zero_point.astype(np.int8))


def _weight(weight, scale, zero_point, axis, what="weight"):
    """dequantize(const int8 W) per channel along `axis` (per tensor: 0-d scale), zero point as given."""
    _check_dtype(str(weight.dtype), ("int8", "uint8"), f"{what} quantisation")
    weight, zero_point = _to_int8(weight, zero_point)
    scale, zero_point = _channel_params(scale, zero_point, weight.shape[axis], axis, what)
    return qdq.dequantize(relax.const(weight), scale, zero_point, axis=axis if scale.ndim else -1), scale


def _out_dtype(zero_point, what):
    dtype = str(zero_point.dtype)
    _check_dtype(dtype, ("int8", "uint8"), f"{what} quantisation")
    return dtype


# -- conv attributes ---------------------------------------------------------------------------

def _conv2d_attrs(attr, x_shape, w_shape, op_name):
    if len(x_shape) != 4:
        raise UnsupportedQuantization(f"only 2-D {op_name} (4-D input) is supported, not a {len(x_shape)}-D input")
    strides = list(attr.get("strides", [1, 1]))
    dilations = list(attr.get("dilations", [1, 1]))
    pads = list(attr.get("pads", [0, 0, 0, 0]))
    auto_pad = attr.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        begin, end = [], []
        for size, kernel, stride, dilation in zip(x_shape[2:], w_shape[2:], strides, dilations):
            total = max((-(-size // stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
            small = total // 2
            begin.append(small if auto_pad == "SAME_UPPER" else total - small)
            end.append(total - begin[-1])
        pads = begin + end
    elif auto_pad == "VALID":
        pads = [0, 0, 0, 0]
    return dict(strides=strides, padding=pads, dilation=dilations, groups=int(attr.get("group", 1)))


def _static_shape(expr):
    return [int(d) for d in expr.ty.shape]


# -- converters --------------------------------------------------------------------------------

class QuantizeLinear(OnnxOpConverter):
    """QuantizeLinear -> quantize(x, 0-d scale, 0-d zero point, axis=-1); of a constant: the int8 constant."""

    @classmethod
    def _impl_v10(cls, bb, inputs, attr, params):
        if attr.get("block_size", 0):
            raise UnsupportedQuantization("blocked quantisation (block_size) is not supported")
        x = inputs[0]
        output_dtype = attr.get("output_dtype", 0)
        zp_dtype = np.uint8 if output_dtype == 0 else _onnx_np_dtype(output_dtype)
        scale = _scale(inputs[1], params, "output")
        zero_point = _zero_point(inputs[2], params, zp_dtype, "output")
        out_dtype = _out_dtype(zero_point, "output")
        if isinstance(get_constant(x, params), GenericConst):  # a float weight written as Q -> DQ
            array = get_constant(x, params).value.numpy()
            axis = attr.get("axis", 1) % max(array.ndim, 1)
            return relax.const(_quantize_array(array, scale, zero_point, axis))
        scale, zero_point = _per_tensor(scale, zero_point, "input", attr.get("axis", 1))
        if out_dtype == "uint8":
            shifted = _rezeroed_to_uint8(bb, x, scale, zero_point)
            if shifted is not None:
                return shifted
        return _quantize_to(x, scale, zero_point, out_dtype)


class DequantizeLinear(OnnxOpConverter):
    """DequantizeLinear -> dequantize of an int8 activation (per tensor) or of an integer constant.

    A constant input (weight int8, bias int32) stays a constant under its dequantize, per
    channel along ONNX's axis; a uint8 input is shifted to int8.
    """

    @classmethod
    def _impl_v10(cls, bb, inputs, attr, params):
        if attr.get("block_size", 0):
            raise UnsupportedQuantization("blocked quantisation (block_size) is not supported")
        x = inputs[0]
        scale = _scale(inputs[1], params, "input")
        const = get_constant(x, params)
        if isinstance(const, GenericConst):
            array = const.value.numpy()
            _check_dtype(str(array.dtype), ("int8", "uint8", "int32"), "constant quantisation")
            zero_point = _zero_point(inputs[2], params, array.dtype, "input")
            array, zero_point = _to_int8(array, zero_point)
            if array.ndim == 0 or (scale.size == 1 and zero_point.size == 1):
                return qdq.dequantize(relax.const(array), scale.reshape(()), zero_point.reshape(()),
                                      zero_point_dtype=str(array.dtype))
            axis = attr.get("axis", 1) % array.ndim
            scale, zero_point = _channel_params(scale, zero_point, array.shape[axis], axis, "input")
            axis = -1 if array.ndim == 1 else axis  # a [O] bias: the form's axis=-1
            return qdq.dequantize(relax.const(array), scale, zero_point, axis=axis,
                                  zero_point_dtype=str(array.dtype))
        return _activation(bb, x, inputs[1], inputs[2], params, "input")


class QLinearConv(OnnxOpConverter):
    """QLinearConv -> dequantize -> conv2d(., dequantize(W_q)) [+ dequantize(B_q)] -> quantize."""

    @classmethod
    def _impl_v10(cls, bb, inputs, attr, params):
        x, w = inputs[0], inputs[3]
        x_dq = _activation(bb, x, inputs[1], inputs[2], params, "input")
        weight = _constant(w, params, "weight")
        w_dq, w_scale = _weight(weight, _scale(inputs[4], params, "weight"),
                                _zero_point(inputs[5], params, weight.dtype, "weight"), axis=0)
        conv_attrs = _conv2d_attrs(attr, _static_shape(x), list(weight.shape), "QLinearConv")
        y = relax.op.nn.conv2d(x_dq, w_dq, **conv_attrs, data_layout="NCHW", kernel_layout="OIHW", out_layout="NCHW")
        x_scale = _scale(inputs[1], params, "input").reshape(())
        if inputs[8] is not None:
            bias = _constant(inputs[8], params, "bias")
            _check_dtype(str(bias.dtype), ("int32",), "bias")
            channels = weight.shape[0]
            scale = (x_scale * w_scale).astype(np.float32)
            axis = 1 if scale.ndim else -1
            y = relax.op.add(y, qdq.bias(bias.reshape(1, channels, 1, 1), scale, axis=axis))
        return _quantized_output(y, inputs[6], inputs[7], params)


class QLinearMatMul(OnnxOpConverter):
    """QLinearMatMul -> matmul(dequantize(a), dequantize(W_q [K, N], per column: axis 1)) -> quantize."""

    @classmethod
    def _impl_v10(cls, bb, inputs, attr, params):
        a_dq = _activation(bb, inputs[0], inputs[1], inputs[2], params, "input")
        weight = _constant(inputs[3], params, "weight (input B)")
        if weight.ndim != 2:
            raise UnsupportedQuantization(f"the weight (input B) must be 2-D [K, N], not of shape {list(weight.shape)}")
        w_dq, _ = _weight(weight, _scale(inputs[4], params, "weight"),
                          _zero_point(inputs[5], params, weight.dtype, "weight"), axis=1)
        return _quantized_output(relax.op.matmul(a_dq, w_dq), inputs[6], inputs[7], params)


def _quantized_output(y, scale, zero_point, params):
    scale = _scale(scale, params, "output")
    zero_point = _zero_point(zero_point, params, np.uint8, "output")
    out_dtype = _out_dtype(zero_point, "output")
    scale, zero_point = _per_tensor(scale, zero_point, "output")
    return _quantize_to(y, scale, zero_point, out_dtype)


class ConvInteger(OnnxOpConverter):
    """ConvInteger -> int32 conv of zero-point-shifted operands (see the module docstring)."""

    @classmethod
    def _impl_v10(cls, bb, inputs, attr, params):
        x, w = inputs[0], inputs[1]
        _check_dtype(_dtype(x), ("int8", "uint8"), "input quantisation")
        conv_attrs = _conv2d_attrs(attr, _static_shape(x), _static_shape(w), "ConvInteger")
        form = _unit_scale_form(x, w, inputs[2], inputs[3], params, axis=0)
        if form is not None:
            x_dq, w_dq = form
            y = relax.op.nn.conv2d(x_dq, w_dq, **conv_attrs, data_layout="NCHW", kernel_layout="OIHW",
                                   out_layout="NCHW")
            return relax.op.astype(y, "int32")
        x_zp, w_zp = _integer_zero_points(bb, inputs[2], inputs[3])
        x32 = relax.op.subtract(relax.op.astype(x, "int32"), x_zp)
        w32 = relax.op.subtract(relax.op.astype(w, "int32"), w_zp)
        return relax.op.nn.conv2d(x32, w32, **conv_attrs, out_dtype="int32")


class MatMulInteger(OnnxOpConverter):
    """MatMulInteger -> int32 matmul of zero-point-shifted operands (see the module docstring)."""

    @classmethod
    def _impl_v10(cls, bb, inputs, attr, params):
        _check_dtype(_dtype(inputs[0]), ("int8", "uint8"), "input quantisation")
        form = None
        if inputs[1].ty.ndim == 2:
            form = _unit_scale_form(inputs[0], inputs[1], inputs[2], inputs[3], params, axis=1)
        if form is not None:
            return relax.op.astype(relax.op.matmul(*form), "int32")
        from tvm.relax.frontend.onnx.onnx_frontend import MatMulInteger as Stock

        return Stock._impl_v10(bb, inputs, attr, params)


def _unit_scale_form(x, w, x_zp, w_zp, params, axis):
    """(dequantize(x, 1, zp_x), dequantize(W_q, 1, zp_w)) if float32 computes the integer result
    exactly (every partial sum below 2**24), else None."""
    weight = get_constant(w, params)
    x_zp_const = get_constant(x_zp, params) if x_zp is not None else relax.const(np.zeros((), _dtype(x)))
    if not isinstance(weight, GenericConst) or not isinstance(x_zp_const, GenericConst):
        return None
    x_zero = x_zp_const.value.numpy()
    if x_zero.size != 1:
        return None
    weight = weight.value.numpy()
    _check_dtype(str(weight.dtype), ("int8", "uint8"), "weight quantisation")
    w_zero = _zero_point(w_zp, params, weight.dtype, "weight")
    weight, w_zero = _to_int8(weight, w_zero)
    ones = np.ones(weight.shape[axis], np.float32)
    _, w_zero = _channel_params(ones, w_zero, weight.shape[axis], axis, "weight")
    info = np.iinfo(x_zero.dtype)
    x_max = max(int(x_zero.reshape(())) - info.min, info.max - int(x_zero.reshape(())))
    shape = [1] * weight.ndim
    shape[axis] = -1
    others = tuple(a for a in range(weight.ndim) if a != axis)
    magnitude = np.abs(weight.astype(np.int64) - w_zero.reshape(shape)).sum(axis=others)  # per output channel
    if int(magnitude.max(initial=0)) * x_max >= _EXACT_FLOAT32:
        return None
    x_dq = qdq.dequantize(x, 1.0, x_zero.reshape(()), zero_point_dtype=str(x_zero.dtype))
    w_dq = qdq.dequantize(relax.const(weight), ones, w_zero, axis=axis)
    return x_dq, w_dq


def _integer_zero_points(bb, x_zp, w_zp):
    """ConvInteger's zero points as int32 expressions broadcasting against x (NCHW) and W (OIHW)."""
    x32 = relax.const(0, "int32") if x_zp is None else relax.op.astype(x_zp, "int32")
    if w_zp is None:
        return x32, relax.const(0, "int32")
    w32 = relax.op.astype(w_zp, "int32")
    if w_zp.ty.ndim == 1:  # per output channel
        w32 = relax.op.reshape(bb.normalize(w32), [-1, 1, 1, 1])
    return x32, w32


class Gemm(OnnxOpConverter):
    """Gemm with transB=1 on B = dequantize(const W_q [N, K]): the transpose moves into the constant.

    The stock Gemm would give matmul(A, permute_dims(dequantize(W_q))); this gives the form's
    matmul(A, dequantize(W_q.T [K, N], axis 1)). Every other Gemm is the stock one.
    """

    @classmethod
    def _impl_v1(cls, bb, inputs, attr, params):
        from tvm.relax.frontend.onnx.onnx_frontend import Gemm as Stock, onnx_input

        weight = inputs[1]
        value = bb.lookup_binding(weight) if isinstance(weight, relax.Var) else weight
        if attr.get("transB", 0) and _is_const_dequantize(value) and value.args[0].ty.ndim == 2:
            per_tensor = value.args[1].value.numpy().size == 1
            axis = int(value.attrs.axis) % 2
            transposed = relax.op.dequantize(relax.const(np.ascontiguousarray(value.args[0].value.numpy().T)),
                                             value.args[1], value.args[2], axis=-1 if per_tensor else 1 - axis,
                                             out_dtype=value.attrs.out_dtype)
            inputs = onnx_input([inputs[0], bb.emit(transposed)] + list(inputs[2:]))
            attr = dict(attr, transB=0)
        return Stock._impl_v13(bb, inputs, attr, params)


def _is_const_dequantize(expr):
    return (isinstance(expr, relax.Call) and getattr(expr.op, "name", None) == "relax.dequantize"
            and all(isinstance(arg, GenericConst) for arg in expr.args))


def _onnx_np_dtype(onnx_type):
    import onnx

    try:
        return onnx.helper.tensor_dtype_to_np_dtype(onnx_type)
    except (KeyError, ValueError):
        raise UnsupportedQuantization(f"output_dtype {onnx_type} is not supported") from None


QLINEAR_OVERRIDES = {
    "QuantizeLinear": QuantizeLinear,
    "DequantizeLinear": DequantizeLinear,
    "QLinearConv": QLinearConv,
    "QLinearMatMul": QLinearMatMul,
    "ConvInteger": ConvInteger,
    "MatMulInteger": MatMulInteger,
    "Gemm": Gemm,
}
