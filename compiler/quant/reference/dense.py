"""INT8 fully connected layer, TFLite-exact, in NumPy.

The spec for kernels/ref/dense_s8.c (declared in kernels/include/npu_kernels_conv.h).
Semantics are TFLite's reference_integer_ops::FullyConnectedPerChannel with symmetric
weights (filter zero point 0):

    acc[n, o] = bias[o] + sum over k of (input[n, k] - input_zero_point) * weight[o, k]
    output    = clamp(multiply_by_quantized_multiplier(acc, multiplier[o], shift[o])
                      + output_zero_point, act_min, act_max)

Per-tensor requantisation is the same with multiplier and shift of length 1. The
accumulator is int32; this reference raises OverflowError if a sum leaves int32.
"""

from typing import NamedTuple

import numpy as np

from compiler.quant.reference.conv import (INT8_MAX, INT8_MIN, QuantArgs, _int8_array, requantize_accumulator,
                                           validate_quant_args)


def dense_s8(x, w, bias=None, *, input_zero_point, output_zero_point, multiplier, shift, act_min=INT8_MIN,
             act_max=INT8_MAX, rounding=0):
    """Quantised fully connected layer: int8 [N, K] x int8 [O, K] -> int8 [N, O].

    bias: int32 [O] or None. multiplier, shift: [O] (per output feature) or [1] (per tensor),
    as produced by fixed_point.quantize_multiplier. Zero points and act_min <= act_max in
    [-128, 127]. rounding: as conv2d_s8's. Raises ValueError on inconsistent shapes or out-of-range arguments.
    """
    a = validate_dense_args(x, w, bias, input_zero_point=input_zero_point, output_zero_point=output_zero_point,
                            multiplier=multiplier, shift=shift, act_min=act_min, act_max=act_max, rounding=rounding)
    acc = (a.x.astype(np.int64) - a.quant.input_zero_point) @ a.w.astype(np.int64).T
    return requantize_accumulator(acc, a.quant, "dense accumulator")


class DenseArgs(NamedTuple):
    """Checked dense_s8 arguments (validate_dense_args); shared with the C binding (compiler/quant/_ref_conv.pyx)."""

    x: np.ndarray  # int8 [N, K] (as given: not necessarily contiguous)
    w: np.ndarray  # int8 [O, K], O, K >= 1
    quant: QuantArgs


def validate_dense_args(x, w, bias, *, input_zero_point, output_zero_point, multiplier, shift, act_min,
                        act_max, rounding=0) -> DenseArgs:
    """dense_s8's arguments checked (ValueError on inconsistent shapes or out-of-range values) and normalised."""
    x = _int8_array(x, "input", 2)
    w = _int8_array(w, "weight", 2)
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"input features {x.shape[1]} != weight in_features {w.shape[1]} (weight is [O, K])")
    if w.shape[0] < 1 or w.shape[1] < 1:
        raise ValueError(f"empty weight shape {w.shape}")
    quant = validate_quant_args(bias, w.shape[0], input_zero_point=input_zero_point,
                                output_zero_point=output_zero_point, multiplier=multiplier, shift=shift,
                                act_min=act_min, act_max=act_max, rounding=rounding)
    return DenseArgs(x, w, quant)
