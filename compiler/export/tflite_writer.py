"""Write .tflite files: LiteRT's own flatbuffers schema, object API (no TensorFlow).

    b = TFLiteBuilder()
    x = b.input("x", [1, 8, 8, 3], "INT8", scale=0.05, zero_point=-3)
    w = b.constant("w", weights_int8, scale=per_channel_scales, axis=0)
    y = b.tensor("y", [1, 8, 8, 4], "INT8", scale=0.1, zero_point=2)
    b.op("CONV_2D", [x, w, bias], [y], padding="SAME", strideW=1, strideH=1, fusedActivationFunction="RELU")
    b.output(y)
    path = b.save("model.tflite")

Option values given as names (padding "SAME", an activation "RELU6") are looked up in the schema's
enums. The exporter (export/tflite.py) and the tests' hand-built models both write through it;
LiteRT runs what it writes and our frontend reads it.
"""

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema

_OPTIONS = {  # builtin -> its options table (BuiltinOptions member, class name)
    "CONV_2D": "Conv2DOptions", "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions",
    "FULLY_CONNECTED": "FullyConnectedOptions", "ADD": "AddOptions", "SUB": "SubOptions", "MUL": "MulOptions",
    "AVERAGE_POOL_2D": "Pool2DOptions", "MAX_POOL_2D": "Pool2DOptions", "MEAN": "ReducerOptions",
    "CONCATENATION": "ConcatenationOptions", "RESHAPE": "ReshapeOptions", "SOFTMAX": "SoftmaxOptions",
    "RESIZE_BILINEAR": "ResizeBilinearOptions", "RESIZE_NEAREST_NEIGHBOR": "ResizeNearestNeighborOptions",
    "DEPTH_TO_SPACE": "DepthToSpaceOptions", "STRIDED_SLICE": "StridedSliceOptions",
    "LEAKY_RELU": "LeakyReluOptions", "TRANSPOSE_CONV": "TransposeConvOptions", "PAD": "PadOptions",
    "HARD_SWISH": "HardSwishOptions", "TRANSPOSE": "TransposeOptions", "GATHER": "GatherOptions",
    "CAST": "CastOptions", "PADV2": "PadV2Options", "QUANTIZE": "QuantizeOptions", "DEQUANTIZE": "DequantizeOptions",
}
_ENUMS = {"padding": schema.Padding, "fusedActivationFunction": schema.ActivationFunctionType}
_TYPES = {"FLOAT32": np.float32, "FLOAT16": np.float16, "INT32": np.int32, "INT8": np.int8, "UINT8": np.uint8,
          "INT64": np.int64, "INT16": np.int16}


class TFLiteBuilder:
    def __init__(self):
        self.model = schema.ModelT()
        self.model.version = 3
        self.model.buffers = [schema.BufferT()]  # buffer 0: the empty buffer of every activation
        self.model.operatorCodes = []
        self.graph = schema.SubGraphT()
        self.graph.tensors, self.graph.operators, self.graph.inputs, self.graph.outputs = [], [], [], []
        self.model.subgraphs = [self.graph]

    def tensor(self, name, shape, type_name="FLOAT32", scale=None, zero_point=None, axis=0, data=None) -> int:
        tensor = schema.TensorT()
        tensor.name, tensor.shape = name, list(shape)
        tensor.type = getattr(schema.TensorType, type_name)
        if scale is not None:
            q = schema.QuantizationParametersT()
            q.scale = [float(s) for s in np.ravel(scale)]
            zeros = np.zeros(len(q.scale), np.int64) if zero_point is None else np.ravel(zero_point)
            q.zeroPoint = [int(z) for z in np.broadcast_to(zeros, (len(q.scale),))]
            q.quantizedDimension = axis
            tensor.quantization = q
        if data is not None:
            buffer = schema.BufferT()
            buffer.data = np.frombuffer(np.ascontiguousarray(data, _TYPES[type_name]).tobytes(), np.uint8)
            self.model.buffers.append(buffer)
            tensor.buffer = len(self.model.buffers) - 1
        self.graph.tensors.append(tensor)
        return len(self.graph.tensors) - 1

    def input(self, name, shape, type_name="FLOAT32", **quantisation) -> int:
        index = self.tensor(name, shape, type_name, **quantisation)
        self.graph.inputs.append(index)
        return index

    def constant(self, name, array, type_name=None, **quantisation) -> int:
        array = np.asarray(array)
        type_name = type_name or {v: k for k, v in _TYPES.items()}[array.dtype.type]
        return self.tensor(name, array.shape, type_name, data=array, **quantisation)

    def output(self, index: int) -> None:
        self.graph.outputs.append(index)

    def op(self, name: str, inputs, outputs, custom: str | None = None, custom_options: bytes = b"", version=1,
           **options):
        """`version`: the operator code's version (TFLite's op_version.cc; what the inputs' types need)."""
        operator = schema.OperatorT()
        operator.opcodeIndex = self._opcode(name, custom, version)
        operator.inputs, operator.outputs = list(inputs), list(outputs)
        if name in _OPTIONS:
            table = _OPTIONS[name]
            operator.builtinOptionsType = getattr(schema.BuiltinOptions, table)
            operator.builtinOptions = getattr(schema, table + "T")()
            for key, value in options.items():
                setattr(operator.builtinOptions, key, getattr(_ENUMS[key], value) if isinstance(value, str) else value)
        elif options:
            raise ValueError(f"{name} takes no options in this builder")
        if custom_options:
            operator.customOptions = list(custom_options)
        self.graph.operators.append(operator)

    def _opcode(self, name: str, custom, version: int) -> int:
        code = schema.OperatorCodeT()
        code.builtinCode = getattr(schema.BuiltinOperator, name)
        code.deprecatedBuiltinCode = min(code.builtinCode, 127)
        code.version = version
        code.customCode = custom
        for index, existing in enumerate(self.model.operatorCodes):
            if (existing.builtinCode, existing.customCode, existing.version) == (code.builtinCode, custom, version):
                return index
        self.model.operatorCodes.append(code)
        return len(self.model.operatorCodes) - 1

    def bytes(self) -> bytes:
        builder = flatbuffers.Builder(1024)
        builder.Finish(self.model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())

    def save(self, path):
        path.write_bytes(self.bytes())
        return path
