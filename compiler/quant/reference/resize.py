"""INT8 spatial resize (nearest neighbour and bilinear) of NHWC tensors, TFLite-exact, in NumPy.

The spec for kernels/ref/resize_s8.c (declared in kernels/include/npu_kernels_resize.h) and for
the generated kernels (cpp/src/resize.cc); tests demand bit equality between them
(tests/kernels/test_resize.py, tests/coral/test_kernels_resize.py). Input and output share scale
and zero point, so both kernels work on the int8 values themselves. The source coordinates are
compile-time tables, computed here; one kernel then serves every coordinate mode.

Nearest: out[b][y][x][c] = in[b][y_index[y]][x_index[x]][c], a gather. The index tables come
from TFLite's GetNearestNeighbor (tflite_nearest_index) or from ONNX Resize's nearest mode
(onnx_nearest_index), whose float64 coordinates are computed as onnx.reference computes them.
(onnx.reference 1.23 picks the neighbours from the coordinate + 1 of its edge padding, which in
a rare float64 accident rounds onto an integer the coordinate is not, and then reads one input
too low; onnx_nearest_index follows the coordinate, as onnxruntime does: tests/kernels/test_resize.py.)

Bilinear (TFLite reference_ops::ResizeBilinearInteger, int8 version, in
tensorflow/lite/kernels/internal/reference/resize_bilinear.h): per axis a table of
{lower, upper, fraction} rows (tflite_bilinear_tables), from a 10-bit fixed-point scale

    scale_10 = ((1 << 10) * in + out / 2) / out                      (C integer division)
    scale_10 = ((1 << 10) * (in - 1) + (out - 1) / 2) / (out - 1)    with align_corners, out > 1
    scaled   = v * scale_10  (+ scale_10 / 2 - (1 << 9) with half_pixel_centers)
    lower    = max(scaled / 1024, 0)                    (C division: toward zero)
    upper    = min((scaled + 1023) / 1024, in - 1)
    fraction = scaled - 1024 * lower                    (ComputeInterpolationValuesInteger)

and with a = in[y0][x0], b = in[y1][x0], c = in[y0][x1], d = in[y1][x1]:

    s   = a*(1024-fy)*(1024-fx) + b*fy*(1024-fx) + c*(1024-fy)*fx + d*fy*fx
    out = clamp((s > 0 ? s + 2^19 : s - 2^19) / 2^20, -128, 127)     (C division: toward zero)

i.e. s / 2^20 rounded half away from zero. TFLite's fractions lie in [0, 1023] except on edge rows
whose two indices are equal (weight 1024 on one row), so s / 2^20 is a weighted mean of a, b, c,
d and the clamp never acts; the kernels accept any table with |fraction| <= 2048.

Where TFLite's lower bound passes the last row (huge magnifications whose 10-bit scale rounded up,
e.g. 2 -> 4000 rows: scale_10 = 1, and rows 2048.. have lower = 2 and more), TFLite reads outside
the input; the table here takes the last row instead ({in - 1, in - 1, 0}), which is also what a
float resize gives there (every coordinate past in - 1 clamps to it).

ONNX's linear coordinate modes map onto TFLite's flags (bilinear_tables_for_onnx): half_pixel and
pytorch_half_pixel (for out > 1) are half_pixel_centers, align_corners is align_corners,
asymmetric is neither. The 10-bit scale places a source coordinate up to about
(out / 2 + 1) / 1024 pixels from the float one, so against a float resize the int8 result is
within 1 step where that offset times the local slope of the image stays below one step (always
where the scale is exact: 2x, 4x, 0.5x...).
"""

import math

import numpy as np

from compiler.quant.reference.elementwise import _int8_array, _int_value

__all__ = [
    "MAX_FRACTION",
    "MAX_SIZE",
    "bilinear_tables_for_onnx",
    "check_bilinear_args",
    "check_nearest_args",
    "onnx_nearest_index",
    "resize_bilinear_s8",
    "resize_nearest_s8",
    "tflite_bilinear_tables",
    "tflite_nearest_index",
]

FRACTION_BITS = 10
ONE = 1 << FRACTION_BITS  # 1.0 in TFLite's 10-bit fixed point
MAX_FRACTION = 2 * ONE  # |fraction| the kernels accept (TFLite's tables stay in [-512, 1023])
MAX_SIZE = 1 << 20  # in and out sizes: TFLite's (1 << 10) * in and v * scale_10 stay within int32
INT32_MAX = 2**31 - 1

ONNX_COORDINATE_MODES = ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn")
ONNX_NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


# ----------------------------------------------------------------------------------------
# Coordinate tables


def tflite_bilinear_tables(in_size: int, out_size: int, align_corners: bool = False,
                           half_pixel_centers: bool = False) -> np.ndarray:
    """int32 [out_size, 3]: {lower, upper, fraction} of every output row (or column), exactly as
    TFLite's ResizeBilinearInteger computes them (scale_10 and ComputeInterpolationValuesInteger
    above). TFLite's Prepare rejects align_corners together with half_pixel_centers; the formulas
    are applied as written all the same. A lower bound past in - 1 (where TFLite reads outside
    the input) becomes the last row."""
    in_size, out_size = _size(in_size, "in_size"), _size(out_size, "out_size")
    if align_corners and out_size > 1:
        scale_10 = (ONE * (in_size - 1) + (out_size - 1) // 2) // (out_size - 1)
    else:
        scale_10 = (ONE * in_size + out_size // 2) // out_size
    scaled = np.arange(out_size, dtype=np.int64) * scale_10  # operands >= 0: // is C's division
    if half_pixel_centers:
        scaled += scale_10 // 2 - (1 << (FRACTION_BITS - 1))  # may go negative, down to -512
    lower = np.maximum(_c_divide(scaled, ONE), 0)
    upper = np.minimum(_c_divide(scaled + ONE - 1, ONE), in_size - 1)
    fraction = scaled - ONE * lower
    beyond = lower > in_size - 1
    lower[beyond], upper[beyond], fraction[beyond] = in_size - 1, in_size - 1, 0
    return np.stack([lower, upper, fraction], axis=1).astype(np.int32)


def tflite_nearest_index(in_size: int, out_size: int, align_corners: bool = False,
                         half_pixel_centers: bool = False) -> np.ndarray:
    """int32 [out_size]: TFLite's GetNearestNeighbor for every output row (or column), in float32
    as TFLite computes it (reference_ops/resize_nearest_neighbor.h):

        scale = float(in) / float(out), or float(in - 1) / float(out - 1) with align_corners, out > 1
        v     = (float(i) + (half_pixel_centers ? 0.5f : 0.0f)) * scale
        index = min(align_corners ? round_half_away(v) : floor(v), in - 1), and >= 0 with half pixels
    """
    in_size, out_size = _size(in_size, "in_size"), _size(out_size, "out_size")
    if align_corners and out_size > 1:
        scale = np.float32(in_size - 1) / np.float32(out_size - 1)
    else:
        scale = np.float32(in_size) / np.float32(out_size)
    offset = np.float32(0.5 if half_pixel_centers else 0.0)
    v = ((np.arange(out_size).astype(np.float32) + offset) * scale).astype(np.float64)  # float32 products
    # v >= 0; float64(v) + 0.5 is exact for a float32 v, so floor() rounds half away from zero exactly
    index = np.floor(v + 0.5) if align_corners else np.floor(v)
    index = np.minimum(index.astype(np.int64), in_size - 1)
    if half_pixel_centers:
        index = np.maximum(index, 0)
    return index.astype(np.int32)


def onnx_nearest_index(in_size: int, out_size: int, scale: float, coordinate_transformation_mode: str = "half_pixel",
                       nearest_mode: str = "round_prefer_floor") -> np.ndarray:
    """int32 [out_size]: the input index ONNX Resize (mode "nearest") reads for every output row
    (or column), clamped to [0, in_size - 1]. `scale` is ONNX's per-axis scale (the given scale,
    or out / in when sizes are given). The source coordinate is computed in float64 exactly as
    onnx.reference does, with length_resized = scale * in_size (a float):

        half_pixel            (i + 0.5) / scale - 0.5
        pytorch_half_pixel    length_resized == 1 ? 0 : (i + 0.5) / scale - 0.5
        align_corners         length_resized == 1 ? 0 : i * (in - 1) / (length_resized - 1)
        asymmetric            i / scale
        tf_half_pixel_for_nn  (i + 0.5) / scale

    then rounded by nearest_mode: round_prefer_floor / round_prefer_ceil (to the nearest integer,
    ties down / up), floor or ceil. ValueError names an unknown or unsupported mode."""
    in_size, out_size = _size(in_size, "in_size"), _size(out_size, "out_size")
    scale = _positive_float(scale, "scale")
    mode = _choice(coordinate_transformation_mode, ONNX_COORDINATE_MODES, "coordinate_transformation_mode",
                   "nearest resize")
    rounding = _choice(nearest_mode, ONNX_NEAREST_MODES, "nearest_mode", "nearest resize")
    i = np.arange(out_size, dtype=np.float64)
    length_resized = scale * in_size
    if mode == "half_pixel" or (mode == "pytorch_half_pixel" and length_resized != 1):
        source = (i + 0.5) / scale - 0.5
    elif mode == "align_corners" and length_resized != 1:
        source = i * (in_size - 1) / (length_resized - 1)
    elif mode == "asymmetric":
        source = i / scale
    elif mode == "tf_half_pixel_for_nn":
        source = (i + 0.5) / scale
    else:  # pytorch_half_pixel or align_corners with a single output
        source = np.zeros(out_size)
    below = np.floor(source)
    ratio = source - below  # 0 exactly when the coordinate is an integer: that index, in every mode
    if rounding == "round_prefer_floor":
        index = np.where(ratio <= 0.5, below, below + 1)
    elif rounding == "round_prefer_ceil":
        index = np.where(ratio < 0.5, below, below + 1)
    elif rounding == "floor":
        index = below
    else:
        index = np.ceil(source)
    index = np.where(ratio == 0, source, index)
    return np.clip(index, 0, in_size - 1).astype(np.int32)


def bilinear_tables_for_onnx(in_size: int, out_size: int, coordinate_transformation_mode: str) -> np.ndarray:
    """tflite_bilinear_tables for ONNX Resize (mode "linear") along one axis with scale out / in:
    half_pixel -> half_pixel_centers; pytorch_half_pixel -> half_pixel_centers when out_size > 1,
    else neither (ONNX reads index 0 for a single output, as does TFLite's asymmetric table);
    align_corners -> align_corners; asymmetric -> neither. ValueError for any other mode."""
    mode = coordinate_transformation_mode
    if mode == "half_pixel" or (mode == "pytorch_half_pixel" and out_size > 1):
        return tflite_bilinear_tables(in_size, out_size, half_pixel_centers=True)
    if mode == "align_corners":
        return tflite_bilinear_tables(in_size, out_size, align_corners=True)
    if mode in ("asymmetric", "pytorch_half_pixel"):
        return tflite_bilinear_tables(in_size, out_size)
    raise ValueError(f"bilinear resize: coordinate_transformation_mode {mode!r} has no TFLite equivalent "
                     "(half_pixel, pytorch_half_pixel, align_corners and asymmetric do)")


# ----------------------------------------------------------------------------------------
# Kernels


def resize_nearest_s8(x, y_index, x_index) -> np.ndarray:
    """out[b][y][x][c] = x[b][y_index[y]][x_index[x]][c]: int8 [N, out_h, out_w, C] from int8 NHWC x."""
    x, y_index, x_index = check_nearest_args(x, y_index, x_index)
    return x[:, y_index][:, :, x_index]


def resize_bilinear_s8(x, y_lerp, x_lerp) -> np.ndarray:
    """TFLite's ResizeBilinearInteger with the given {lower, upper, fraction} tables (y_lerp
    [out_h, 3], x_lerp [out_w, 3]): int8 [N, out_h, out_w, C] from int8 NHWC x, in int64."""
    x, y_lerp, x_lerp = check_bilinear_args(x, y_lerp, x_lerp)
    q = x.astype(np.int64)
    row0, row1 = q[:, y_lerp[:, 0]], q[:, y_lerp[:, 1]]  # [N, out_h, in_w, C]
    a, c = row0[:, :, x_lerp[:, 0]], row0[:, :, x_lerp[:, 1]]
    b, d = row1[:, :, x_lerp[:, 0]], row1[:, :, x_lerp[:, 1]]
    fy = y_lerp[:, 2].astype(np.int64)[None, :, None, None]
    fx = x_lerp[:, 2].astype(np.int64)[None, None, :, None]
    s = a * (ONE - fy) * (ONE - fx) + b * fy * (ONE - fx) + c * (ONE - fy) * fx + d * fy * fx
    rounded = _c_divide(np.where(s > 0, s + (1 << 19), s - (1 << 19)), 1 << 20)
    return np.clip(rounded, -128, 127).astype(np.int8)


# ----------------------------------------------------------------------------------------
# Argument checking, shared with the C binding (compiler/quant/_ref_resize.pyx)


def check_nearest_args(x, y_index, x_index):
    """(int8 NHWC x, int32 y_index, int32 x_index) checked: each index table one-dimensional, of
    integers inside the input's height / width; ValueError otherwise."""
    x = _nhwc_input(x)
    y_index = _table(y_index, "y_index", 1, x.shape[1], "in_h")
    x_index = _table(x_index, "x_index", 1, x.shape[2], "in_w")
    _elements((x.shape[0], y_index.shape[0], x_index.shape[0], x.shape[3]), "output")
    return x, y_index, x_index


def check_bilinear_args(x, y_lerp, x_lerp):
    """(int8 NHWC x, int32 y_lerp [out_h, 3], int32 x_lerp [out_w, 3]) checked: rows {lower,
    upper, fraction} with both indices inside the input and |fraction| <= MAX_FRACTION."""
    x = _nhwc_input(x)
    y_lerp = _table(y_lerp, "y_lerp", 2, x.shape[1], "in_h")
    x_lerp = _table(x_lerp, "x_lerp", 2, x.shape[2], "in_w")
    _elements((x.shape[0], y_lerp.shape[0], x_lerp.shape[0], x.shape[3]), "output")
    return x, y_lerp, x_lerp


def _nhwc_input(x):
    x = _int8_array(x, "input", 4)
    if x.shape[1] < 1 or x.shape[2] < 1:
        raise ValueError(f"input of shape {x.shape} has no rows or columns to resize from")
    _elements(x.shape, "input")
    return x


def _table(values, name, ndim, limit, limit_name):
    table = np.asarray(values)
    if table.dtype.kind not in "iu":
        raise ValueError(f"{name} must be an integer array, got {table.dtype}")
    if ndim == 2 and (table.ndim != 2 or table.shape[1] != 3):
        raise ValueError(f"{name} must have shape [out, 3] ({{lower, upper, fraction}} rows), got {table.shape}")
    if ndim == 1 and table.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {table.shape}")
    indices = table if ndim == 1 else table[:, :2]
    if indices.size and (indices.min() < 0 or indices.max() >= limit):
        raise ValueError(f"{name} holds indices outside [0, {limit}) ({limit_name} = {limit})")
    if ndim == 2 and table.size and np.abs(table[:, 2].astype(np.int64)).max() > MAX_FRACTION:
        raise ValueError(f"{name} holds fractions outside [-{MAX_FRACTION}, {MAX_FRACTION}]")
    return np.ascontiguousarray(table, dtype=np.int32)


def _elements(shape, what):
    if math.prod(shape) > INT32_MAX:
        raise ValueError(f"{what} of shape {tuple(shape)} has more elements than int32 holds")


def _size(value, name):
    return _int_value(value, name, 1, MAX_SIZE)


def _positive_float(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value}")
    return value


def _choice(value, choices, name, what):
    if value not in choices:
        raise ValueError(f"{what}: {name} {value!r} is not supported (one of {', '.join(choices)})")
    return value


def _c_divide(numerator, denominator: int):
    """C's integer division (toward zero) of an int64 array by a positive integer."""
    numerator = np.asarray(numerator, dtype=np.int64)
    magnitude = np.abs(numerator) // denominator
    return np.where(numerator < 0, -magnitude, magnitude)
