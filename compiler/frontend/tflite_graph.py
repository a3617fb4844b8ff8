"""The TFLite -> ONNX conversion state: tensors, constants, QDQ pairs, node emission.

A TFLite tensor i has one float view in the ONNX graph, `float_of[i]`: the tensor itself when
it is float, the DequantizeLinear of it when it is quantised. Converters (tflite_ops.py) read
operands through `value(i)` (which materialises constants on first use) and publish a result
with `define(i, float_name)`, which adds the QuantizeLinear / DequantizeLinear pair when the
TFLite tensor is quantised. So a full-int8 model arrives in the QDQ form of ONNX's quantised
models and a float one stays float, with no converter knowing which.
"""

from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper

from compiler.errors import CompilerError
from compiler.frontend.tflite import NUMPY_TYPES, enum_names, initializer, make_model
from compiler.names import shown

MAX_ELEMENTS = 1 << 31  # larger tensors are not a model this compiler can run
# Nodes that carry an operator's data rather than compute it: named `#i OP:tensor/Transpose`, so
# the operator's own node keeps the plain `#i OP:tensor` name reports show.
_AUXILIARY = ("Transpose", "QuantizeLinear", "DequantizeLinear")


@dataclass
class Tensor:
    name: str
    type_name: str
    shape: tuple
    scale: np.ndarray | None        # float32 scales (None: not quantised)
    zero_point: np.ndarray | None
    axis: int                       # TFLite quantized_dimension
    data: np.ndarray | None         # constant contents (None: an activation)


@dataclass
class Graph:
    schema: object
    source: str
    tensors: list
    quantised_model: bool           # any quantised activation: quantised constants keep their DQ
    nodes: list = field(default_factory=list)
    initializers: list = field(default_factory=list)
    float_of: dict = field(default_factory=dict)
    constant_views: dict = field(default_factory=dict)
    integer_names: dict = field(default_factory=dict)  # tensor index -> its integer ONNX value (quantised)
    where: str = ""                 # the operator being converted, for node names and errors
    operator: str = ""              # its TFLite name and position, on every node it writes (OPERATOR_DOC)
    _names: set = field(default_factory=set)

    # ---- reading operands -------------------------------------------------------------
    def tensor(self, index: int) -> Tensor:
        if not 0 <= index < len(self.tensors):
            self.fail(f"refers to tensor {index}, which does not exist")
        return self.tensors[index]

    def constant(self, index: int) -> np.ndarray:
        """A constant operand's contents (shapes, axes, paddings); an error if computed at run time."""
        tensor = self.tensor(index)
        if tensor.data is None:
            self.fail(f"needs tensor {shown(tensor.name)} to be a constant, but it is computed at run time")
        return tensor.data

    def is_constant(self, index: int) -> bool:
        return self.tensor(index).data is not None

    def value(self, index: int, permutation=None) -> str:
        """The float view of tensor `index` (constants permuted first, e.g. OHWI -> OIHW)."""
        tensor = self.tensor(index)
        if tensor.data is None:
            if index not in self.float_of:
                self.fail(f"reads tensor {shown(tensor.name)} before any operator writes it")
            return self.float_of[index]
        key = (index, tuple(permutation) if permutation is not None else None)
        if key not in self.constant_views:
            self.constant_views[key] = self._constant_view(tensor, permutation)
        return self.constant_views[key]

    def _constant_view(self, tensor: Tensor, permutation) -> str:
        data = tensor.data if permutation is None else np.transpose(tensor.data, permutation)
        axis = tensor.axis if permutation is None else list(permutation).index(tensor.axis) if data.ndim else 0
        name = self.fresh(tensor.name)
        if tensor.scale is None or tensor.type_name in ("FLOAT32", "FLOAT16"):
            self.initializers.append(initializer(data.astype(np.float32) if data.dtype == np.float16 else data, name))
            return name
        if not self.quantised_model:  # dynamic-range weights: what the float computation uses
            self.initializers.append(initializer(dequantised(data, tensor.scale, tensor.zero_point, axis), name))
            return name
        self.initializers.append(initializer(data, name + ":q"))
        self._dequantize(name + ":q", tensor, name, axis)
        return name

    # ---- writing results --------------------------------------------------------------
    def emit(self, op_type: str, inputs, outputs=None, **attrs) -> str:
        """Append one ONNX node for the current operator; returns its (first) output name."""
        outputs = outputs or [self.fresh(f"{self.where}/{op_type}")]
        name = self.fresh(f"{self.where}/{op_type}" if op_type in _AUXILIARY else self.where)
        self.nodes.append(helper.make_node(op_type, list(inputs), list(outputs), name=name, doc_string=self.operator,
                                           **attrs))
        return outputs[0]

    def emit_constant(self, array, hint: str) -> str:
        name = self.fresh(f"{self.where}/{hint}")
        self.initializers.append(initializer(np.asarray(array), name))
        return name

    def define(self, index: int, float_name: str) -> None:
        """Tensor `index` is `float_name` (a float value); quantised tensors get their QDQ pair."""
        tensor = self.tensor(index)
        if tensor.scale is None or tensor.type_name not in ("INT8", "UINT8", "INT16"):
            self.float_of[index] = float_name
            return
        scale, zero_point = self._qparams(tensor, tensor.axis)
        quantised = self.fresh(tensor.name)
        self.emit("QuantizeLinear", [float_name, scale, zero_point], [quantised], **self._axis(tensor))
        self.float_of[index] = self._dequantize(quantised, tensor, self.fresh(tensor.name + ":float"), tensor.axis)
        self.integer_names[index] = quantised

    def _dequantize(self, quantised: str, tensor: Tensor, output: str, axis: int) -> str:
        scale, zero_point = self._qparams(tensor, axis)
        return self.emit("DequantizeLinear", [quantised, scale, zero_point], [output],
                         **({"axis": axis} if tensor.scale.size > 1 else {}))

    def _qparams(self, tensor: Tensor, axis: int):
        per_channel = tensor.scale.size > 1
        scale = tensor.scale if per_channel else tensor.scale.reshape(())
        zero_point = tensor.zero_point if per_channel else tensor.zero_point.reshape(())
        zero_type = NUMPY_TYPES[tensor.type_name][0]
        return (self.emit_constant(scale.astype(np.float32), "scale"),
                self.emit_constant(zero_point.astype(zero_type), "zero_point"))

    @staticmethod
    def _axis(tensor: Tensor) -> dict:
        return {"axis": tensor.axis} if tensor.scale.size > 1 else {}

    def fresh(self, hint: str) -> str:
        name, n = hint, 1
        while name in self._names:
            n += 1
            name = f"{hint}~{n}"
        self._names.add(name)
        return name

    def fail(self, message: str):
        raise CompilerError(f"{self.source}: {shown(self.where) if self.where else 'model'}: {message}")


def dequantised(data, scale, zero_point, axis) -> np.ndarray:
    shape = [1] * data.ndim
    if scale.size > 1:
        shape[axis] = scale.size
    return ((data.astype(np.float64) - zero_point.reshape(shape)) * scale.reshape(shape)).astype(np.float32)


# ---- reading the flatbuffer ------------------------------------------------------------

def convert(model, data: bytes, schema, source: str) -> onnx.ModelProto:
    from compiler.frontend.tflite_ops import convert_operator, operator_name, require_supported

    if not model.subgraphs:
        raise CompilerError(f"{source}: the TFLite model has no subgraph")
    subgraph = model.subgraphs[0]
    tensors = [_tensor(t, model, data, schema, source) for t in subgraph.tensors or []]
    _require_integer_activations_int8(tensors, source)
    quantised = any(t.data is None and t.scale is not None and t.type_name in ("INT8", "UINT8") for t in tensors)
    graph = Graph(schema, source, tensors, quantised)
    operators = subgraph.operators or []
    op_names = [operator_name(model, op, schema, source, position) for position, op in enumerate(operators)]
    require_supported(op_names, source)
    inputs = [_graph_input(graph, i) for i in _indices(subgraph.inputs)]
    for position, (op, op_name) in enumerate(zip(operators, op_names)):
        outputs = [i for i in _indices(op.outputs) if i >= 0]
        first = graph.tensor(outputs[0]).name if outputs else "?"
        graph.where = f"#{position} {op_name}:{first}"
        graph.operator = operator_doc(position, op_name)
        convert_operator(graph, op_name, op)
    graph.where = graph.operator = ""
    outputs = [_graph_output(graph, i) for i in _indices(subgraph.outputs)]
    onnx_graph = helper.make_graph(graph.nodes, "tflite", inputs, outputs, graph.initializers)
    return make_model(onnx_graph)


def _require_integer_activations_int8(tensors: list, source: str) -> None:
    """TFLite's 16x8 mode (int16 activations) has no kernels here: say so rather than fail in ONNX checks."""
    wide = next((t for t in tensors if t.data is None and t.scale is not None and t.type_name == "INT16"), None)
    if wide is not None:
        raise CompilerError(f"{source}: tensor {shown(wide.name)}: int16 quantised activations (TFLite's 16x8 mode) "
                            "are not supported: quantise activations to int8 or uint8")


OPERATOR_DOC = "TFLite operator"  # doc_string of every ONNX node a TFLite operator becomes: "<this> <position> <name>"


def operator_doc(position: int, name: str) -> str:
    return f"{OPERATOR_DOC} {position} {name}"


def operator_of(node) -> tuple[int, str] | None:
    """(position, TFLite operator name) of an ONNX node our frontend wrote for it, else None."""
    words = node.doc_string.split(" ", 3)  # a custom operator's name is the file's own text
    if not node.doc_string.startswith(OPERATOR_DOC + " ") or len(words) != 4 or not words[2].isdigit():
        return None
    return int(words[2]), words[3]


def _indices(values) -> list:
    return [int(v) for v in (values if values is not None else [])]


def _graph_input(graph: Graph, index: int):
    tensor = graph.tensor(index)
    graph.where = f"input {tensor.name}"
    if tensor.data is not None:
        graph.fail(f"model input {shown(tensor.name)} is a constant")
    onnx_type = _onnx_type(graph, tensor)
    graph._names.add(tensor.name)
    if tensor.scale is not None and tensor.type_name in ("INT8", "UINT8", "INT16"):
        graph.integer_names[index] = tensor.name
        graph.float_of[index] = graph._dequantize(tensor.name, tensor, graph.fresh(tensor.name + ":float"), tensor.axis)
    else:
        graph.float_of[index] = tensor.name
    return helper.make_tensor_value_info(tensor.name, onnx_type, list(tensor.shape))


def _graph_output(graph: Graph, index: int):
    tensor = graph.tensor(index)
    produced = graph.integer_names.get(index) or graph.float_of.get(index)
    if produced is None:
        graph.fail(f"model output {shown(tensor.name)} is never written")
    name = graph.fresh(tensor.name) if produced != tensor.name else produced
    if produced != name:
        graph.nodes.append(helper.make_node("Identity", [produced], [name], name=graph.fresh(f"output {tensor.name}")))
    return helper.make_tensor_value_info(name, _onnx_type(graph, tensor), list(tensor.shape))


def _onnx_type(graph: Graph, tensor: Tensor) -> int:
    if tensor.type_name not in NUMPY_TYPES:
        graph.fail(f"tensor {shown(tensor.name)} has type {tensor.type_name}, which is not supported")
    return TensorProto.FLOAT if tensor.scale is None and tensor.type_name == "FLOAT16" else NUMPY_TYPES[tensor.type_name][1]


def _tensor(t, model, data: bytes, schema, source: str) -> Tensor:
    name = (t.name or b"").decode("utf-8", "replace") or "tensor"
    type_name = enum_names(schema.TensorType).get(t.type, str(t.type))
    shape = tuple(int(d) for d in (t.shape if t.shape is not None else []))
    where = f"{source}: tensor {shown(name)}"
    if any(d <= 0 for d in shape) or int(np.prod(shape, dtype=np.float64)) > MAX_ELEMENTS:
        raise CompilerError(f"{where}: shape {list(shape)} is not a static positive shape")
    scale = zero_point = None
    axis = 0
    q = t.quantization
    if q is not None and q.scale is not None and len(q.scale):
        scale = np.asarray(q.scale, dtype=np.float32)
        zero_point = np.asarray(q.zeroPoint if q.zeroPoint is not None else np.zeros(scale.size), dtype=np.int64)
        axis = int(q.quantizedDimension)
        if zero_point.size != scale.size or not np.all(np.isfinite(scale)) or np.any(scale <= 0):
            raise CompilerError(f"{where}: invalid quantisation (scales must be positive, one zero point each)")
        if scale.size > 1 and (not 0 <= axis < len(shape) or shape[axis] != scale.size):
            raise CompilerError(f"{where}: {scale.size} scales do not match dimension {axis} of {list(shape)}")
    if t.sparsity is None:
        return Tensor(name, type_name, shape, scale, zero_point, axis, _buffer(t, model, data, type_name, shape, where))
    from compiler.frontend.tflite_densify import densify

    values = _buffer(t, model, data, type_name, None, where)
    if values is None:
        raise CompilerError(f"{where}: a sparse tensor without values")
    return Tensor(name, type_name, shape, scale, zero_point, axis, densify(values, shape, t.sparsity, where))


def _buffer(t, model, data: bytes, type_name: str, shape, where: str):
    buffers = model.buffers or []
    if not t.buffer:
        return None
    if not 0 <= t.buffer < len(buffers):
        raise CompilerError(f"{where}: refers to buffer {t.buffer}, which does not exist")
    buffer = buffers[t.buffer]
    raw = _buffer_bytes(buffer, data, where)
    if raw is None:
        return None
    if type_name not in NUMPY_TYPES:
        raise CompilerError(f"{where}: constant of type {type_name} is not supported")
    dtype = np.dtype(NUMPY_TYPES[type_name][0])
    if shape is None:  # the values of a sparse tensor
        if len(raw) % dtype.itemsize:
            raise CompilerError(f"{where}: buffer of {len(raw)} bytes is not a whole number of {type_name}")
        return np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype)
    count = int(np.prod(shape, dtype=np.int64))
    if len(raw) != count * dtype.itemsize:
        raise CompilerError(f"{where}: buffer holds {len(raw)} bytes, shape {list(shape)} of {type_name} needs "
                            f"{count * dtype.itemsize}")
    return np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(shape)


def _buffer_bytes(buffer, data: bytes, where: str):
    if buffer.offset and buffer.offset > 1:  # a model larger than 2 GB keeps buffers after the flatbuffer
        end = buffer.offset + buffer.size
        if end > len(data):
            raise CompilerError(f"{where}: its buffer lies past the end of the file")
        return data[buffer.offset:end]
    if buffer.data is None or len(buffer.data) == 0:
        return None
    return bytes(np.asarray(buffer.data, dtype=np.uint8))
