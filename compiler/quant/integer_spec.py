"""The int8 spec's requantisation rounding per kernel, by the model's origin: data, not branches.

The integer arithmetic is the same everywhere except how a requantisation rounds
(quant/fixed_point.py ROUNDINGS). ONNX models round once (ONNX Runtime agreement). TFLite models
follow LiteRT's built-in kernels (BUILTIN_WITHOUT_DEFAULT_DELEGATES), which differ per operator:
ruy's double rounding with ties up for the matrix kernels and QUANTIZE, gemmlowp's with ties away
from zero for MUL, PRELU and LEAKY_RELU (measured: tests/unit/test_tflite_rounding.py,
tests/unit/test_tflite_tables.py, benchmarks/tflite_op_exactness.py). A kernel not listed rounds
once.
"""

from compiler.quant.fixed_point import DOUBLE_ROUNDING, DOUBLE_ROUNDING_TIES_UP, SINGLE_ROUNDING

ONNX, TFLITE = "onnx", "tflite"
KERNEL_ROUNDING = {
    ONNX: {},
    TFLITE: {"conv2d": DOUBLE_ROUNDING_TIES_UP, "dense": DOUBLE_ROUNDING_TIES_UP, "mul": DOUBLE_ROUNDING},
}


def kernel_rounding(spec: str, kernel: str) -> str:
    """The rounding of `kernel` (an int8 kernel name: conv2d, mul, ...) under integer spec `spec`."""
    return KERNEL_ROUNDING[spec].get(kernel, SINGLE_ROUNDING)
