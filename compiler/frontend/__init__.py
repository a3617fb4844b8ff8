"""Frontends: a model file in, a Relax IRModule out (every Call's span names its source node).

ONNX files are read as they are; .tflite files are converted to the same ONNX forms first
(tflite.py), so both share one import."""

from compiler.frontend.onnx import import_onnx, load_onnx, parse_input_shapes
from compiler.frontend.tflite import is_tflite, load_tflite


def load_model(path):
    """An ONNX model from a .onnx or .tflite file (one-line CompilerError on bad input)."""
    return load_tflite(path) if is_tflite(path) else load_onnx(path)


__all__ = ["import_onnx", "load_model", "load_onnx", "parse_input_shapes"]
