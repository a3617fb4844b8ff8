"""TFLite -> the ONNX form every later stage takes.

A .tflite file is read with LiteRT's own generated flatbuffers schema (ai_edge_litert's
schema_py_generated: no TensorFlow at run time) and rewritten, operator by operator
(tflite_ops.py), as an in-memory ONNX graph in the two forms the ONNX path already imports:
  - float tensors stay float; float16 constants behind DEQUANTIZE (MediaPipe) and the int8
    weights of a dynamic-range model are widened to float32 constants here;
  - a quantised tensor (int8 / uint8 / int32 with scales) becomes the QDQ pair ONNX uses
    for it (QuantizeLinear -> DequantizeLinear with the tensor's scales, per channel where
    TFLite has them), so a full-int8 model builds with its own scales as a QDQ ONNX does.
Going through ONNX rather than straight to Relax shares everything downstream: the hardened
import, shape folding, provenance spans, validation data, reports and graph.onnx. Layout:
TFLite tensors are NHWC and stay so; only the operators whose ONNX form is NCHW (conv, pools,
resize, depth-to-space) are wrapped in a transpose pair, which to_nhwc and fold_transposes
cancel against the operator's own NHWC lowering, so no transpose is left between layers.
Provenance: every ONNX node made for TFLite operator #i is named `#i OP_NAME:output tensor`.
The model's origin is recorded in metadata (ORIGIN_KEY) for the integer spec (rounding).
"""

import functools
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from compiler.errors import CompilerError
from compiler.frontend.validate import read_model_file
from compiler.names import shown

ORIGIN_KEY, ORIGIN_TFLITE = "compiler.origin", "tflite"
OPSET = 17
_IDENTIFIER = b"TFL3"


def _schema():
    try:
        from ai_edge_litert import schema_py_generated
    except ImportError:
        raise CompilerError("reading .tflite needs ai-edge-litert: run `make python-deps` "
                            "(or .venv/bin/pip install ai-edge-litert==2.3.0)") from None
    return schema_py_generated


@functools.cache
def enum_names(enum_class) -> dict:
    """value -> name of one of the schema's enums (TensorType, BuiltinOperator): built once."""
    return {v: k for k, v in vars(enum_class).items() if not k.startswith("_")}


def is_tflite(path) -> bool:
    return Path(path).suffix.lower() == ".tflite"


def load_tflite(path) -> onnx.ModelProto:
    """Read a .tflite file and return it as an ONNX model; every failure is one CompilerError line."""
    path = Path(path)
    name = shown(path)
    data = read_model_file(path)
    if len(data) < 8 or data[4:8] != _IDENTIFIER:
        raise CompilerError(f"{name}: not a TFLite model (no 'TFL3' flatbuffer identifier)")
    schema = _schema()
    try:
        model = schema.ModelT.InitFromPackedBuf(data, 0)
    except Exception as err:  # a hostile buffer fails anywhere in the generated reader
        raise CompilerError(f"{name}: not a readable TFLite model ({shown(type(err).__name__)})") from None
    from compiler.frontend.tflite_graph import convert

    onnx_model = convert(model, data, schema, name)
    try:
        onnx.checker.check_model(onnx_model)
    except (onnx.checker.ValidationError, ValueError) as err:
        raise CompilerError(f"{name}: could not be converted ({shown(str(err).splitlines()[0])})") from None
    return onnx_model


def model_origin(model: onnx.ModelProto) -> str:
    """'tflite' for a model this frontend converted, else 'onnx'."""
    return next((prop.value for prop in model.metadata_props if prop.key == ORIGIN_KEY), "onnx")


def make_model(graph: onnx.GraphProto) -> onnx.ModelProto:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="compiler.tflite")
    model.ir_version = 10
    helper.set_model_props(model, {ORIGIN_KEY: ORIGIN_TFLITE})
    return model


# TFLite tensor types -> (numpy dtype, ONNX element type)
NUMPY_TYPES = {
    "FLOAT32": (np.float32, TensorProto.FLOAT), "FLOAT16": (np.float16, TensorProto.FLOAT16),
    "INT32": (np.int32, TensorProto.INT32), "UINT8": (np.uint8, TensorProto.UINT8),
    "INT64": (np.int64, TensorProto.INT64), "INT16": (np.int16, TensorProto.INT16),
    "INT8": (np.int8, TensorProto.INT8), "BOOL": (np.bool_, TensorProto.BOOL),
}


def initializer(array: np.ndarray, name: str) -> onnx.TensorProto:
    return numpy_helper.from_array(np.ascontiguousarray(array), name)
