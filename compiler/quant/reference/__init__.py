"""NumPy reference INT8 kernels: the readable spec that kernels/ref (C) and generated code match bit for bit.

Each kernel follows TFLite's integer reference kernel of the same op, requantising with
compiler.quant.fixed_point. One import line per module, one __all__ line per name.
"""

from compiler.quant.reference.conv import conv2d_output_size, conv2d_s8
from compiler.quant.reference.dense import dense_s8
from compiler.quant.reference.elementwise import (
    add_params, add_s8, concat_params, concat_s8, dequantize, mul_params, mul_s8, pad_s8, quantize, requantize_params,
    requantize_s8)
from compiler.quant.reference.lut import lut_s8, unary_table
from compiler.quant.reference.pool import (
    avg_pool2d_s8, global_avg_pool2d_s8, litert_mean_params, litert_reference_mean_params, max_pool2d_s8, mean_params)
from compiler.quant.reference.softmax import softmax_params, softmax_s8

__all__ = [
    "conv2d_output_size",  # conv.py
    "conv2d_s8",  # conv.py
    "dense_s8",  # dense.py
    "add_params", "add_s8", "concat_params", "concat_s8", "dequantize", "pad_s8",  # elementwise.py
    "mul_params", "mul_s8",  # elementwise.py
    "quantize", "requantize_params", "requantize_s8",  # elementwise.py
    "lut_s8", "unary_table",  # lut.py
    "avg_pool2d_s8", "global_avg_pool2d_s8", "litert_mean_params", "litert_reference_mean_params",  # pool.py
    "max_pool2d_s8", "mean_params",  # pool.py
    "softmax_params", "softmax_s8",  # softmax.py
]
