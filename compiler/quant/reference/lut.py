"""Int8 functions of one element as 256-entry tables (kernels/ref npu_lut_s8), the spec.

An int8 input has 256 values, so any elementwise function of one tensor (sigmoid, tanh,
hard-swish, hard-sigmoid, SiLU x*sigmoid(x), GELU, leaky ReLU, ELU, and every decomposition
exporters write for them) is exactly a table computed at compile time, as TFLite does for
LOGISTIC and TANH (LUTPopulate). The table for input (s_in, zp_in) and output (s_out, zp_out):

    table[q + 128] = clamp(round_half_away(f(s_in * (q - zp_in)) / s_out) + zp_out, -128, 127)

with f and the arithmetic in float64: the int8 result is the correctly rounded quantisation of
the exact function (TFLite's float32 LUTPopulate can differ from it by one step where f lands
within float32 rounding of a half-step). The kernel is then out = table[in + 128].
"""

import numpy as np

INT8_MIN, INT8_MAX = -128, 127
INPUTS = np.arange(INT8_MIN, INT8_MAX + 1, dtype=np.int64)  # table index i holds input i - 128


def unary_table(function, input_scale: float, input_zero_point: int, output_scale: float,
                output_zero_point: int) -> np.ndarray:
    """The int8[256] table of `function` (float64 array -> float64 array) at these parameters.
    ValueError when the function is NaN at some input (the table would be undefined)."""
    for name, scale in (("input_scale", input_scale), ("output_scale", output_scale)):
        if not (np.isfinite(scale) and scale > 0):
            raise ValueError(f"{name} {scale} must be a positive finite float")
    for name, zero_point in (("input_zero_point", input_zero_point), ("output_zero_point", output_zero_point)):
        if not INT8_MIN <= int(zero_point) <= INT8_MAX:
            raise ValueError(f"{name} {zero_point} is not an int8 value")
    real = np.float64(input_scale) * (INPUTS - int(input_zero_point)).astype(np.float64)
    with np.errstate(all="ignore"):
        result = np.asarray(function(real), dtype=np.float64)
    if result.shape != real.shape:
        raise ValueError(f"the function returned shape {result.shape} for {real.shape} inputs")
    if np.isnan(result).any():
        bad = INPUTS[np.isnan(result)][0]
        raise ValueError(f"the function is undefined (NaN) at input {int(bad)}")
    with np.errstate(all="ignore"):
        steps = result / np.float64(output_scale)
    rounded = np.sign(steps) * np.floor(np.abs(steps) + 0.5)
    return np.clip(np.nan_to_num(rounded, posinf=1e9, neginf=-1e9) + int(output_zero_point),
                   INT8_MIN, INT8_MAX).astype(np.int8)


def check_lut_args(x, table):
    x = np.asarray(x)
    if x.dtype != np.int8:
        raise ValueError(f"input must be an int8 array, got {x.dtype}")
    table = np.ascontiguousarray(table)
    if table.dtype != np.int8 or table.shape != (256,):
        raise ValueError(f"table must be int8[256], got {table.dtype}{list(table.shape)}")
    return x, table


def lut_s8(x, table) -> np.ndarray:
    """out = table[x + 128], elementwise; int8 of the input's shape."""
    x, table = check_lut_args(x, table)
    return table[x.astype(np.int64) + 128]
