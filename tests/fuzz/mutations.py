"""Seeded mutations of valid ONNX models, for the fuzz tests: each returns the bytes of a model
file a careless exporter, a damaged download or an attacker might hand the compiler.

    case = mutate(model, rng)     # (what was done, file bytes)

Protobuf-level mutations edit one field of a valid model (dims, attributes, opset, dtypes,
graph wiring); byte-level ones flip, cut or splice the serialised file.
"""

import numpy as np
import onnx
from onnx import TensorProto

_DIMS = [0, -1, -7, 1, 2, 3, 1000, 2**31, 2**40, 2**63 - 1]
_INTS = [-2**63, -5, -1, 0, 1, 2, 3, 7, 64, 2**20, 2**31, 2**62]
_TYPES = [TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.INT8, TensorProto.UINT8, TensorProto.INT32,
          TensorProto.INT64, TensorProto.BOOL, TensorProto.STRING, TensorProto.UNDEFINED, 9999]
_OPS = ["Relu", "Conv", "Add", "MatMul", "Reshape", "Concat", "Softmax", "MaxPool", "Gather", "Transpose",
        "QuantizeLinear", "If", "Loop", "NotAnOp", ""]


def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    clone = onnx.ModelProto()
    clone.CopyFrom(model)
    return clone


def _value_infos(model):
    graph = model.graph
    return list(graph.input) + list(graph.output) + list(graph.value_info)


def dims(model, rng):
    values = [v for v in _value_infos(model) if v.type.tensor_type.shape.dim]
    inits = [t for t in model.graph.initializer if t.dims]
    if inits and (not values or rng.random() < 0.5):
        tensor = inits[rng.integers(len(inits))]
        tensor.dims[rng.integers(len(tensor.dims))] = int(rng.choice(_DIMS[:-3]))
        return f"initializer {tensor.name} dims {list(tensor.dims)}"
    value = values[rng.integers(len(values))]
    dim = value.type.tensor_type.shape.dim[rng.integers(len(value.type.tensor_type.shape.dim))]
    dim.dim_value = int(rng.choice(_DIMS))
    return f"{value.name} dim -> {dim.dim_value}"


def attribute(model, rng):
    nodes = [n for n in model.graph.node if n.attribute]
    if not nodes:
        return opset(model, rng)
    node = nodes[rng.integers(len(nodes))]
    attr = node.attribute[rng.integers(len(node.attribute))]
    if attr.ints:
        attr.ints[rng.integers(len(attr.ints))] = int(rng.choice(_INTS))
        if rng.random() < 0.3:
            attr.ints.append(int(rng.choice(_INTS)))
    elif attr.type == onnx.AttributeProto.INT:
        attr.i = int(rng.choice(_INTS))
    elif attr.type == onnx.AttributeProto.FLOAT:
        attr.f = float(rng.choice([np.nan, np.inf, -1.0, 0.0, 1e38]))
    else:
        attr.type = onnx.AttributeProto.STRING
        attr.s = b"\xff\xfe"
    return f"{node.name}.{attr.name} mutated"


def opset(model, rng):
    model.opset_import[0].version = int(rng.choice([0, 1, 6, 10, 12, 23, 99, -1, 2**40]))
    return f"opset {model.opset_import[0].version}"


def dtype(model, rng):
    targets = list(model.graph.input) + list(model.graph.output)
    if model.graph.initializer and rng.random() < 0.5:
        tensor = model.graph.initializer[rng.integers(len(model.graph.initializer))]
        tensor.data_type = int(rng.choice(_TYPES))
        return f"initializer {tensor.name} dtype {tensor.data_type}"
    value = targets[rng.integers(len(targets))]
    value.type.tensor_type.elem_type = int(rng.choice(_TYPES))
    return f"{value.name} dtype {value.type.tensor_type.elem_type}"


def dangling(model, rng):
    node = model.graph.node[rng.integers(len(model.graph.node))]
    if not node.input:
        return op_type(model, rng)
    slot = rng.integers(len(node.input))
    node.input[slot] = str(rng.choice(["nowhere", "", node.output[0]]))
    return f"{node.name} input {slot} -> {node.input[slot]!r}"


def cycle(model, rng):
    nodes = model.graph.node
    if len(nodes) < 2:
        return dangling(model, rng)
    first, later = sorted(rng.choice(len(nodes), 2, replace=False))
    if nodes[first].input:
        nodes[first].input[0] = nodes[later].output[0]
    return f"{nodes[first].name} reads {nodes[later].name}'s output"


def duplicate_output(model, rng):
    nodes = model.graph.node
    a, b = rng.integers(len(nodes)), rng.integers(len(nodes))
    nodes[b].output[0] = nodes[a].output[0]
    return f"{nodes[b].name} writes {nodes[a].output[0]}"


def op_type(model, rng):
    node = model.graph.node[rng.integers(len(model.graph.node))]
    node.op_type = str(rng.choice(_OPS))
    return f"{node.name} -> {node.op_type or 'empty op'}"


def initializer_data(model, rng):
    if not model.graph.initializer:
        return dims(model, rng)
    tensor = model.graph.initializer[rng.integers(len(model.graph.initializer))]
    raw = tensor.raw_data
    tensor.raw_data = raw[: int(rng.integers(0, max(len(raw), 1)))] if rng.random() < 0.7 else raw + raw
    return f"initializer {tensor.name} {len(raw)} -> {len(tensor.raw_data)} bytes"


def remove(model, rng):
    what = rng.integers(3)
    if what == 0 and model.graph.initializer:
        del model.graph.initializer[rng.integers(len(model.graph.initializer))]
        return "an initializer removed"
    if what == 1 and len(model.graph.node) > 1:
        del model.graph.node[rng.integers(len(model.graph.node))]
        return "a node removed"
    del model.graph.output[:]
    return "every graph output removed"


PROTO_MUTATIONS = [dims, attribute, opset, dtype, dangling, cycle, duplicate_output, op_type, initializer_data, remove]


def flip_bytes(data: bytes, rng) -> tuple[str, bytes]:
    buffer = bytearray(data)
    for _ in range(int(rng.integers(1, 8))):
        buffer[rng.integers(len(buffer))] ^= 1 << int(rng.integers(8))
    return "bits flipped", bytes(buffer)


def truncate(data: bytes, rng) -> tuple[str, bytes]:
    cut = int(rng.integers(0, len(data)))
    return f"cut at {cut}", data[:cut]


def splice(data: bytes, rng) -> tuple[str, bytes]:
    start, length = int(rng.integers(len(data))), int(rng.integers(1, 64))
    return "a block repeated", data[:start] + data[start:start + length] * int(rng.integers(2, 5)) + data[start:]


BYTE_MUTATIONS = [flip_bytes, truncate, splice]


def mutate(model: onnx.ModelProto, rng) -> tuple[str, bytes]:
    """One seeded mutation (two thirds protobuf-level, one third byte-level)."""
    if rng.random() < 2 / 3:
        clone = _copy(model)
        mutation = PROTO_MUTATIONS[rng.integers(len(PROTO_MUTATIONS))]
        what = mutation(clone, rng)
        return f"{mutation.__name__}: {what}", clone.SerializeToString()
    mutation = BYTE_MUTATIONS[rng.integers(len(BYTE_MUTATIONS))]
    what, data = mutation(model.SerializeToString(), rng)
    return f"{mutation.__name__}: {what}", data
