"""Checked reads of the QDQ form (quant/qdq.py): shapes, constants, scales and zero points of the
matched calls, each raising Unsupported for anything the int8 kernels do not compute exactly.
Shared by the lowering (quant/lowering.py) and the TFLite export (export/tflite.py).
"""

import math

import numpy as np
import tvm
from tvm import relax

from compiler.quant import fixed_point
from compiler.quant.fixed_point import INT32_MAX

INT8_MIN, INT8_MAX = -128, 127
# an activation dtype's (min, max); int16 tensors are TFLite's 16x8 activations (zero point 0)
BOUNDS = {"int8": (INT8_MIN, INT8_MAX), "int16": (-32768, 32767)}


class Unsupported(ValueError):
    """The match is not something the int8 kernel computes exactly; it stays in TVM."""


def is_const(expr) -> bool:
    return isinstance(expr, tvm.ir.GenericConst)


def dtype_of(expr) -> str:
    return str(getattr(expr.ty, "dtype", ""))


def static_shape(expr, what) -> tuple:
    shape = getattr(expr.ty, "shape", None)
    try:
        return tuple(int(d) for d in shape)
    except (TypeError, ValueError):
        raise Unsupported(f"{what} has no static shape ({expr.ty})") from None


def ints(values, count) -> tuple:
    values = tuple(int(v) for v in values)
    if len(values) != count:
        raise Unsupported(f"expected {count} values, got {values}")
    return values


def i32(value, what) -> int:
    if not 0 <= int(value) <= INT32_MAX:
        raise Unsupported(f"{what}={value} does not fit the kernel's int32")
    return int(value)


def const_array(expr, dtype, what) -> np.ndarray:
    if not is_const(expr):
        raise Unsupported(f"{what} is not a constant")
    array = expr.value.numpy()
    if str(array.dtype) != dtype:
        raise Unsupported(f"{what} is {array.dtype}, not {dtype}")
    return array


def tensor_scale(expr) -> float:
    s = const_array(expr, "float32", "scale")
    if s.ndim != 0 or not (math.isfinite(float(s)) and float(s) > 0.0):
        raise Unsupported(f"scale {s} is not a positive per-tensor float32")
    return float(s)


def tensor_zero_point(expr, lo=INT8_MIN, hi=INT8_MAX) -> int:
    if not is_const(expr):
        raise Unsupported("zero point is not a constant")
    z = expr.value.numpy()
    if z.ndim != 0 or z.dtype.kind not in "iu" or not lo <= int(z) <= hi:
        raise Unsupported(f"zero point {z} is not a per-tensor value in [{lo}, {hi}]")
    return int(z)


def activation_input(dq, dtype="int8") -> tuple:
    """dequantize(x_q, scalar float32 scale, scalar zero point) -> (x, scale, zero point), x_q int8, or
    int16 with zero point 0 (dtype="int16")."""
    x, scale, zp = dq.args
    if dtype_of(x) != dtype or str(dq.attrs.out_dtype) != "float32":
        raise Unsupported(f"dequantize {dtype_of(x)} -> {dq.attrs.out_dtype}, not {dtype} -> float32")
    return x, tensor_scale(scale), _zero_point(zp, dtype)


def output_qparams(q, dtype="int8") -> tuple:
    """quantize(y, scalar float32 scale, scalar zero point) to int8 (or int16, zero point 0) -> (scale,
    zero point)."""
    if str(q.attrs.out_dtype) != dtype:
        raise Unsupported(f"quantize to {q.attrs.out_dtype}, not {dtype}")
    return tensor_scale(q.args[1]), _zero_point(q.args[2], dtype)


def _zero_point(expr, dtype) -> int:
    return tensor_zero_point(expr) if dtype == "int8" else tensor_zero_point(expr, 0, 0)


def channel_scales(dq, channels, axis, what) -> np.ndarray:
    """Scales of dequantize(const, s, zeros, axis): per tensor or per `axis` channel, zero points all 0."""
    data, scale, zp = dq.args
    ndim = len(static_shape(data, what))
    s = const_array(scale, "float32", f"{what} scale")
    if not is_const(zp):
        raise Unsupported(f"{what} zero point is not a constant")
    z = zp.value.numpy()
    if z.dtype.kind not in "iu" or np.any(z != 0) or z.ndim > 1 or z.size not in (1, channels):
        raise Unsupported(f"{what} zero points must be 0")
    if s.ndim > 1 or (s.ndim == 1 and (s.shape[0] != channels or int(dq.attrs.axis) % ndim != axis)):
        raise Unsupported(f"{what} scales {s.shape} are not per tensor or per channel along axis {axis}")
    if not np.all(np.isfinite(s) & (s > 0)) or str(dq.attrs.out_dtype) != "float32":
        raise Unsupported(f"{what} scales must be positive finite float32")
    return np.broadcast_to(s, (channels,)).astype(np.float32)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """QuantizeMultiplier, Unsupported where it has no int32 form."""
    try:
        return fixed_point.quantize_multiplier(real)
    except ValueError as err:
        raise Unsupported(str(err)) from None


def act_range(act, s_y: float, zp_y: int, dtype="int8") -> tuple[int, int]:
    """TFLite's CalculateActivationRangeQuantized for relu / clip(lo, hi): a bound b becomes
    zp_y + TfLiteRound(float32(b) / float32(s_y)) (float32 division, round half away from zero),
    then act_min = max(-128, .), act_max = min(127, .) (int16's bounds for an int16 output)."""
    low, high = BOUNDS[dtype]
    if act is None:
        return low, high
    if act.op.name == "relax.nn.relu":
        lo, hi = 0.0, math.inf
    else:
        lo, hi = (prim_float(v) for v in act.args[1:3])
    act_min = max(low, quantize_bound(lo, s_y, zp_y))
    act_max = min(high, quantize_bound(hi, s_y, zp_y))
    if act_min > act_max:
        raise Unsupported(f"activation range [{lo}, {hi}] is empty at output scale {s_y}")
    return act_min, act_max


def prim_float(value) -> float:
    if isinstance(value, relax.PrimValue if hasattr(relax, "PrimValue") else ()):
        value = value.value
    if type(value).__name__ not in ("FloatImm", "IntImm") or isinstance(value.value, bool):
        raise Unsupported(f"clip bound {value} is not a constant")
    return float(value.value)


def quantize_bound(bound: float, s_y: float, zp_y: int) -> int:
    if math.isnan(bound):
        raise Unsupported("NaN clip bound")
    with np.errstate(over="ignore"):
        t = float(np.float32(bound) / np.float32(s_y))
    if math.isinf(t) or abs(t) > 2.0**31:
        return INT32_MAX if t > 0 else -INT32_MAX
    return zp_y + int(math.copysign(math.floor(abs(t) + 0.5), t))


def dequantized_constant(call) -> np.ndarray:
    """R.dequantize of a constant (the weight or bias of a quantised layer that computes in float: the
    int8 kernels refused it) as the float32 constant it stands for: float32(q - zero point) * scale,
    per channel along its axis, as TVM computes it. The exporters write it so."""
    q = call.args[0].value.numpy()
    scale, zero_point = (np.asarray(arg.value.numpy(), np.float32) for arg in call.args[1:3])
    shape = [1] * q.ndim
    axis_shape = lambda a: a.reshape(shape) if a.size > 1 else a.reshape(())  # noqa: E731
    if scale.size > 1 or zero_point.size > 1:
        shape[int(call.attrs.axis) % q.ndim] = max(scale.size, zero_point.size)
    return ((q.astype(np.float32) - axis_shape(zero_point)) * axis_shape(scale)).astype(np.float32)


def float_constant(expr, folded: dict) -> np.ndarray | None:
    """The float32 array of a constant, or of a var bound to a dequantized constant (`folded`: var ->
    array, the exporters' dequantized_constant); None for any other expr."""
    if is_const(expr):
        array = expr.value.numpy()
        if array.dtype != np.float32:
            raise Unsupported(f"a {array.dtype} constant operand")
        return array
    return folded.get(expr)
