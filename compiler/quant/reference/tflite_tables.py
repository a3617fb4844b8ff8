"""The int8 tables of TFLite's own elementwise kernels, for models imported from TFLite.

Our tables (lut.py) are the correctly rounded quantisation of the exact function. LiteRT's built-in
kernels compute some functions differently, and a TFLite model must match LiteRT bit for bit, so
for those models the table is built by running LiteRT's arithmetic over the 256 int8 inputs:

  HARD_SWISH  TFLite's fixed-point algorithm (reference_ops::HardSwish, the same in the optimized
              kernel): the input on a 2^7 finer scale, a "relu-ish" factor in [0, 1] as Q0.15 from
              gemmlowp's rounding doubling high multiply, a non-rounding doubling high multiply of
              the two, a rounding shift to the output scale. Multipliers are int32 QuantizeMultiplier
              results scaled down to int16 (DownScaleInt32ToInt16Multiplier), from float32 scales.
  LOGISTIC,   LiteRT's LUTPopulate: float32 throughout (dequantise, f, multiply by 1 / s_out,
  TANH        round half away from zero, add the zero point, clamp).
  LEAKY_RELU  two fixed-point multipliers (identity, alpha), gemmlowp's double rounding (ties away).
  QUANTIZE    int8 -> int8 requantisation: one multiplier, double rounding with ties up (ruy's).

Checked against LiteRT on random scales over every int8 input (tests/unit/test_tflite_tables.py).
"""

import numpy as np

from compiler.quant.fixed_point import DOUBLE_ROUNDING, MULTIPLY, quantize_multiplier, rounding_divide_by_pot
from compiler.quant.reference.lut import INPUTS, INT8_MAX, INT8_MIN

_I16_MIN, _I16_MAX = -(1 << 15), (1 << 15) - 1


def _srdhm16(a, b):
    """gemmlowp's SaturatingRoundingDoublingHighMul on int16."""
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    product = a * b
    total = product + np.where(product >= 0, 1 << 14, 1 - (1 << 14))
    high = np.where(total >= 0, total >> 15, -((-total) >> 15))  # C division by 2^15: toward zero
    return np.where((a == _I16_MIN) & (b == _I16_MIN), _I16_MAX, high)


def _doubling_high16(a, b):
    """TFLite's SaturatingDoublingHighMul on int16: (a b) / 2^15 truncated toward zero."""
    product = np.asarray(a, np.int64) * np.asarray(b, np.int64)
    high = np.where(product >= 0, product >> 15, -((-product) >> 15))
    return np.where((np.asarray(a) == _I16_MIN) & (np.asarray(b) == _I16_MIN), _I16_MAX, high)


def _saturating_left_shift16(x, amount: int):
    return np.clip(np.asarray(x, np.int64) << amount, _I16_MIN, _I16_MAX)


def _int16_multiplier(real: float) -> tuple[int, int]:
    """QuantizeMultiplier, then DownScaleInt32ToInt16Multiplier: (Q0.15 multiplier, exponent)."""
    multiplier, exponent = quantize_multiplier(real)
    if multiplier >= (1 << 31) - 1 - (1 << 15):
        return _I16_MAX, exponent
    return (multiplier + (1 << 15)) >> 16, exponent


def hard_swish_table(input_scale, input_zero_point, output_scale, output_zero_point) -> np.ndarray:
    """int8[256]: TFLite's int8 HARD_SWISH of every input (index q + 128)."""
    hires = np.float32(np.float32(1.0 / 128.0) * np.float32(input_scale))
    out_multiplier, out_exponent = _int16_multiplier(float(np.float32(hires / np.float32(output_scale))))
    relu_multiplier, relu_exponent = _int16_multiplier(float(np.float32(hires / np.float32(3.0 / 32768.0))))
    if out_exponent > 0:
        raise ValueError(f"HARD_SWISH: output scale {output_scale} is too small for input scale {input_scale} "
                         "(TFLite requires a non-positive output exponent)")
    hires_input = (INPUTS - int(input_zero_point)) * (1 << 7)
    preshift_output = _srdhm16(hires_input, out_multiplier)
    reluish = hires_input
    if relu_exponent > 0:
        reluish = _saturating_left_shift16(reluish, relu_exponent - 1)
    reluish = _srdhm16(reluish, relu_multiplier)
    if relu_exponent > 0:
        reluish = _saturating_left_shift16(reluish, 1)
    if relu_exponent < 0:
        reluish = rounding_divide_by_pot(reluish, -relu_exponent)
    reluish = (reluish + (1 << 15)) >> 1
    output = rounding_divide_by_pot(_doubling_high16(reluish, preshift_output), -out_exponent)
    output = (output + int(output_zero_point) + (1 << 15)) % (1 << 16) - (1 << 15)  # the C code's int16 sum
    return np.clip(output, INT8_MIN, INT8_MAX).astype(np.int8)


def _lut_populate(function, input_scale, input_zero_point, output_scale, output_zero_point) -> np.ndarray:
    real = (np.float32(input_scale) * (INPUTS - int(input_zero_point)).astype(np.float32)).astype(np.float32)
    with np.errstate(over="ignore"):
        transformed = function(real).astype(np.float32)
    scaled = (transformed * (np.float32(1.0) / np.float32(output_scale))).astype(np.float32)
    rounded = np.sign(scaled) * np.floor(np.abs(scaled) + np.float32(0.5))
    return np.clip(rounded.astype(np.int64) + int(output_zero_point), INT8_MIN, INT8_MAX).astype(np.int8)


def logistic_table(input_scale, input_zero_point, output_scale, output_zero_point) -> np.ndarray:
    one = np.float32(1.0)
    return _lut_populate(lambda v: one / (one + np.exp(-v)), input_scale, input_zero_point, output_scale,
                         output_zero_point)


def tanh_table(input_scale, input_zero_point, output_scale, output_zero_point) -> np.ndarray:
    return _lut_populate(np.tanh, input_scale, input_zero_point, output_scale, output_zero_point)


_PROBE = np.linspace(-12.0, 12.0, 4801)
_FUNCTIONS = (  # (the function in float64, LiteRT's table for it)
    (lambda x: x * np.clip(x + 3.0, 0.0, 6.0) / 6.0, hard_swish_table),
    (lambda x: 0.5 * (1.0 + np.tanh(0.5 * x)), logistic_table),
    (np.tanh, tanh_table),
)


def litert_table(function, input_scale, input_zero_point, output_scale, output_zero_point):
    """LiteRT's table when `function` (float64 -> float64, however a model spells it) is hard-swish,
    sigmoid, tanh or a leaky ReLU (equal to within float64 rounding on [-12, 12]), else None."""
    with np.errstate(all="ignore"):
        values = np.asarray(function(_PROBE), dtype=np.float64)
    if values.shape != _PROBE.shape:
        return None
    for exact, table in _FUNCTIONS:
        if np.allclose(values, exact(_PROBE), rtol=1e-9, atol=1e-12):
            return table(input_scale, input_zero_point, output_scale, output_zero_point)
    alpha = -float(np.asarray(function(np.array([-1.0])), dtype=np.float64)[0])
    if 0.0 <= alpha < 1.0 and np.allclose(values, np.where(_PROBE >= 0, _PROBE, alpha * _PROBE), rtol=1e-9, atol=1e-12):
        # LiteRT's QuantizeLeakyRelu rounds with gemmlowp's ties-away shift (tests/unit/test_tflite_tables.py)
        return leaky_relu_table(alpha, input_scale, input_zero_point, output_scale, output_zero_point, DOUBLE_ROUNDING)
    return None


def requantize_table(input_scale, input_zero_point, output_scale, output_zero_point, rounding) -> np.ndarray:
    """int8[256]: TFLite's int8 -> int8 QUANTIZE (Requantize): (q - zp_in) times QuantizeMultiplier(
    double(s_in) / double(s_out)) with the given rounding (fixed_point.ROUNDINGS), + zp_out."""
    multiplier, shift = quantize_multiplier(float(np.float64(np.float32(input_scale)) / np.float64(np.float32(output_scale))))
    scaled = MULTIPLY[rounding](INPUTS - int(input_zero_point), multiplier, shift).astype(np.int64)
    return np.clip(scaled + int(output_zero_point), INT8_MIN, INT8_MAX).astype(np.int8)


def leaky_relu_table(alpha, input_scale, input_zero_point, output_scale, output_zero_point, rounding) -> np.ndarray:
    """int8[256]: TFLite's int8 LEAKY_RELU: (q - zp_in) times the identity multiplier s_in / s_out when
    q >= zp_in, else times alpha * s_in / s_out (each QuantizeMultiplier of a double), + zp_out."""
    ratio = np.float64(np.float32(input_scale)) / np.float64(np.float32(output_scale))
    identity = quantize_multiplier(float(ratio))
    negative = quantize_multiplier(float(ratio * np.float64(np.float32(alpha))))
    centred = INPUTS - int(input_zero_point)
    scaled = np.where(centred >= 0, MULTIPLY[rounding](centred, *identity), MULTIPLY[rounding](centred, *negative))
    return np.clip(scaled.astype(np.int64) + int(output_zero_point), INT8_MIN, INT8_MAX).astype(np.int8)
