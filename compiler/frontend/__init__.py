"""Frontends: a model file in, a Relax IRModule out (every Call's span names its source node).

ONNX files are read as they are; .tflite files (tflite.py) and PyTorch programs saved with
torch.export.save (.pt2, torch_program.py) are converted to the same ONNX forms first, so all share
one import."""

from compiler.frontend.onnx import import_onnx, load_onnx, parse_input_shapes
from compiler.frontend.tflite import is_tflite, load_tflite
from compiler.frontend.torch_program import is_pt2, load_pt2


def load_model(path):
    """An ONNX model from a .onnx, .tflite or .pt2 file (one-line CompilerError on bad input)."""
    if is_tflite(path):
        return load_tflite(path)
    return load_pt2(path) if is_pt2(path) else load_onnx(path)


__all__ = ["import_onnx", "load_model", "load_onnx", "parse_input_shapes"]
