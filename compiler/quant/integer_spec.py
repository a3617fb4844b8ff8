"""The int8 spec's requantisation rounding per kernel, by the model's origin: data, not branches.

The integer arithmetic is the same everywhere except how a requantisation rounds
(quant/fixed_point.py ROUNDINGS). ONNX models round once (ONNX Runtime agreement). TFLite models
follow LiteRT's built-in kernels (BUILTIN_WITHOUT_DEFAULT_DELEGATES), which differ per operator:
ruy's double rounding with ties up for the matrix kernels and QUANTIZE, gemmlowp's with ties away
from zero for ADD and SUB (all three rescales), MUL, PRELU and LEAKY_RELU (measured:
tests/unit/test_tflite_rounding.py, tests/unit/test_tflite_tables.py,
benchmarks/tflite_op_exactness.py). A kernel not listed rounds once.
"""

from compiler.quant.fixed_point import (BLOCKS_OF_8_ROUNDING, DOUBLE_ROUNDING, DOUBLE_ROUNDING_TIES_UP,
                                        ROUNDING_BLOCK, SINGLE_ROUNDING)

ONNX, TFLITE = "onnx", "tflite"
KERNEL_ROUNDING = {
    ONNX: {},
    TFLITE: {"conv2d": DOUBLE_ROUNDING_TIES_UP, "dense": DOUBLE_ROUNDING_TIES_UP, "add": DOUBLE_ROUNDING,
             "mul": DOUBLE_ROUNDING, "prelu": DOUBLE_ROUNDING},
}

# MEAN over H, W with keep_dims (global_avg_pool2d): (rounding of whole blocks of 16 channels, of
# the other channels). ONNX models: quant/reference/pool.py mean_params, rounded once. TFLite
# models: LiteRT's optimized int8 MEAN (litert_mean_params: float32 multiplier, the input zero
# point moved past the rounding), whose SIMD loop takes whole blocks of 16 channels and rounds
# as ruy, its scalar loop the rest as gemmlowp (measured: quant/reference/pool.py).
MEAN_ROUNDING = {ONNX: (SINGLE_ROUNDING, SINGLE_ROUNDING), TFLITE: (DOUBLE_ROUNDING_TIES_UP, DOUBLE_ROUNDING)}
# The same without keep_dims (TensorFlow's converter writes it for Keras' GlobalAveragePooling2D).
# TFLite models: LiteRT's reference int8 MEAN (litert_reference_mean_params: 1/n folded into the
# multiplier in integers), gemmlowp's rounding in every channel. ONNX models: as with keep_dims.
MEAN_ROUNDING_WITHOUT_KEEP_DIMS = {ONNX: MEAN_ROUNDING[ONNX], TFLITE: (DOUBLE_ROUNDING, DOUBLE_ROUNDING)}

# DEQUANTIZE (int8 -> float32): the block of npu_quantize_params. ONNX models: 0, every element
# float32(scale * (q - zp)), rounded once. TFLite models: LiteRT's optimized DEQUANTIZE, whose
# vector loop takes whole blocks of 8 elements as float32(q * scale) + float32(-zp * scale) (two
# rounded products, then the sum) and its scalar loop the rest rounded once (measured:
# quant/reference/elementwise.py dequantize).
DEQUANTIZE_BLOCK = {ONNX: 0, TFLITE: 8}
# QUANTIZE (float32 -> int8): the block of npu_quantize_params. ONNX models: 0, every element
# round_half_to_even(x / scale) (ONNX Runtime's QuantizeLinear). TFLite models: LiteRT's built-in
# QUANTIZE, whose vector loop takes whole blocks of 8 elements as round_half_to_even(x * (1 / scale))
# and its scalar loop the rest as round_half_away_from_zero(x / scale) (measured:
# tests/unit/test_quantize_rounding.py).
QUANTIZE_BLOCK = {ONNX: 0, TFLITE: 8}


def kernel_rounding(spec: str, kernel: str) -> str:
    """The rounding of `kernel` (an int8 kernel name: conv2d, mul, ...) under integer spec `spec`."""
    return KERNEL_ROUNDING[spec].get(kernel, SINGLE_ROUNDING)


def conv_rounding_code(spec: str, params: dict) -> int | None:
    """A conv2d's rounding code when it is not its kernel's (kernel_rounding): a TFLite model's
    depthwise convolution whose output channels are not whole blocks of 8. LiteRT's built-in
    DEPTHWISE_CONV_2D rounds ties up (as CONV_2D) in whole blocks of 8 output channels and as
    gemmlowp in the rest (measured: tests/unit/test_tflite_rounding.py): fixed_point.BLOCKS_OF_8_ROUNDING,
    which every conv2d kernel takes."""
    depthwise = params["groups"] > 1 and params["groups"] == params["in_c"]
    if spec == TFLITE and depthwise and params["out_c"] % ROUNDING_BLOCK:
        return BLOCKS_OF_8_ROUNDING
    return None
