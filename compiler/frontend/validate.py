"""Checks at import, before any work: a model that is invalid, or too big to run, fails here with
one line naming the node or tensor, instead of deep inside TVM or after hours of allocation.

    check_header(model, source)          IR version and opset this compiler understands; graph
                                         inputs and outputs named once each
    check_initializers(model, source)    every initializer holds data of its type and dims
    check_shapes(model, shapes, source)  -> the shape-annotated model: ONNX's shape inference in strict mode with the inputs'
                                         static shapes (negative pads, zero dilations, declared
                                         shapes that contradict the graph, ...), then every tensor
                                         non-empty and within the size limits
    check_relax_shapes(mod, source)      the same limits on the imported Relax module, whose shapes
                                         TVM computed itself

A tensor may hold at most MAX_ELEMENTS elements, and no more bytes than the machine has memory.
"""

import re
from pathlib import Path

import numpy as np
import onnx
import onnx.numpy_helper
import tvm
from tvm import relax

from compiler.errors import CompilerError
from compiler.frontend.provenance import source_node
from compiler.names import shown

MAX_ELEMENTS = 2**31 - 1  # the kernels index with int32
_ONNX_DOMAINS = ("", "ai.onnx")
_INFERENCE_ERROR = re.compile(r"\(op_type:([^,]*), node name: (.*?)\): \[\w+\] (.*)", re.S)


def memory_bytes() -> int:
    """What the machine has: a tensor larger than this cannot be allocated."""
    import psutil

    return int(psutil.virtual_memory().total)


def read_model_file(path) -> bytes:
    """A model file's bytes; a missing file or one larger than memory is a one-line CompilerError."""
    from compiler.names import shown

    name = shown(path)
    if not Path(path).is_file():
        raise CompilerError(f"{name}: no such file")
    if Path(path).stat().st_size > memory_bytes():
        raise CompilerError(f"{name}: larger than this machine's memory")
    return Path(path).read_bytes()


def check_header(model: onnx.ModelProto, source: str) -> None:
    if model.ir_version > onnx.IR_VERSION:
        raise CompilerError(f"{source}: ONNX IR version {model.ir_version} is newer than this compiler reads "
                            f"(at most {onnx.IR_VERSION})")
    newest = onnx.defs.onnx_opset_version()
    for opset in model.opset_import:
        if opset.domain in _ONNX_DOMAINS and not 1 <= opset.version <= newest:
            raise CompilerError(f"{source}: opset {opset.version} of the ONNX domain is not one this compiler knows "
                                f"(1 to {newest})")
    if not model.graph.output:
        raise CompilerError(f"{source}: the graph has no outputs")
    _unique(source, "graph input", [value.name for value in model.graph.input])
    _unique(source, "graph output", [value.name for value in model.graph.output])
    for what, values in (("graph input", model.graph.input), ("graph output", model.graph.output)):
        for value in values:
            if _numpy_dtype(value.type.tensor_type.elem_type) is None:
                raise CompilerError(f"{source}: {what} '{shown(value.name)}' has no numeric tensor type "
                                    f"(elem_type {value.type.tensor_type.elem_type})")


def _numpy_dtype(elem_type):
    if elem_type in (onnx.TensorProto.UNDEFINED, onnx.TensorProto.STRING):
        return None
    try:
        return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type))
    except (KeyError, TypeError, ValueError):
        return None


def check_initializers(model: onnx.ModelProto, source: str) -> None:
    """Every initializer decodes to an array of its declared type and dims (after external data)."""
    for tensor in model.graph.initializer:
        try:
            onnx.numpy_helper.to_array(tensor)
        except (ValueError, TypeError, KeyError, OverflowError, MemoryError) as err:
            text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise CompilerError(f"{source}: initializer '{shown(tensor.name)}' does not hold data of its type and "
                                f"shape ({shown(text)})") from None


def _unique(source: str, what: str, names: list[str]) -> None:
    seen = set()
    for name in names:
        if name in seen:
            raise CompilerError(f"{source}: {what} '{shown(name)}' is listed twice")
        seen.add(name)


def check_shapes(model: onnx.ModelProto, shapes: dict, source: str) -> onnx.ModelProto:
    """Strict shape inference over `model` with its inputs fixed to `shapes`; then the limits.
    Returns the model with its inputs fixed and every inferred shape annotated."""
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    for value in fixed.graph.input:
        if value.name in shapes:
            dims = value.type.tensor_type.shape.dim
            del dims[:]
            for size in shapes[value.name]:
                dims.add().dim_value = size
    _check_size(source, "input", shapes.items(), model)
    try:
        inferred = onnx.shape_inference.infer_shapes(fixed, check_type=True, strict_mode=True, data_prop=True)
    except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError, RuntimeError, ValueError) as err:
        raise CompilerError(_inference_message(source, str(err))) from None
    producers = {output: node for node in inferred.graph.node for output in node.output}
    values = list(inferred.graph.value_info) + list(inferred.graph.output)
    for value in values:
        if not value.type.HasField("tensor_type") or not value.type.tensor_type.HasField("shape"):
            continue
        dims = value.type.tensor_type.shape.dim
        if any(d.HasField("dim_value") and d.dim_value <= 0 for d in dims):
            node = producers.get(value.name)
            shape = "x".join(str(d.dim_value) if d.HasField("dim_value") else "?" for d in dims)
            where = f"node '{shown(node.name)}' ({shown(node.op_type)})" if node is not None else f"tensor '{shown(value.name)}'"
            raise CompilerError(f"{source}: {where} would produce an empty tensor ({shape}): check its attributes "
                                "against its input's shape")
    static = [(value.name, [d.dim_value for d in value.type.tensor_type.shape.dim])
              for value in values if value.type.HasField("tensor_type")
              and all(d.HasField("dim_value") for d in value.type.tensor_type.shape.dim)]
    _check_size(source, "tensor", static, inferred)
    return inferred


def _inference_message(source: str, text: str) -> str:
    found = _INFERENCE_ERROR.search(text)
    if found:
        op_type, node, why = found.groups()
        return f"{source}: node '{shown(node)}' ({shown(op_type)}): {shown(why.strip().splitlines()[0])}"
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return f"{source}: invalid model: {shown(lines[0] if lines else 'shape inference failed')}"


def _check_size(source: str, what: str, named_shapes, model) -> None:
    elem_types = {value.name: value.type.tensor_type.elem_type for value in
                  list(model.graph.input) + list(model.graph.value_info) + list(model.graph.output)}
    limit = memory_bytes()
    for name, dims in named_shapes:
        elements = int(np.prod([int(d) for d in dims], dtype=object)) if len(dims) else 1
        itemsize = _itemsize(elem_types.get(name))
        if elements > MAX_ELEMENTS or elements * itemsize > limit:
            shape = "x".join(map(str, dims))
            raise CompilerError(f"{source}: {what} '{shown(name)}' of shape {shape} has {elements:,} elements "
                                f"({elements * itemsize:,} bytes); the limit is {MAX_ELEMENTS:,} elements and "
                                f"{limit:,} bytes (this machine's memory)")


def _itemsize(elem_type) -> int:
    dtype = _numpy_dtype(elem_type)
    return dtype.itemsize if dtype is not None else 4


def check_relax_shapes(mod: tvm.IRModule, source: str) -> None:
    """Every tensor TVM's importer computed must be non-empty and within the limits."""
    limit = memory_bytes()
    for block in mod["main"].body.blocks:
        for binding in block.bindings:
            ty = binding.var.ty
            if not isinstance(ty, relax.TensorType) or not isinstance(ty.shape, relax.ShapeExpr):
                continue
            dims = [int(d) if isinstance(d, tvm.tirx.IntImm) else None for d in ty.shape.values]
            known = [d for d in dims if d is not None]
            elements = int(np.prod(known, dtype=object)) if known else 1
            bytes_ = elements * max(tvm.DataType(str(ty.dtype)).bits // 8, 1) if str(ty.dtype) else elements
            # Shape arithmetic may legitimately carry empty integer tensors; data tensors may not.
            empty = any(d < 0 for d in known) or (any(d == 0 for d in known) and str(ty.dtype).startswith("float"))
            if empty or elements > MAX_ELEMENTS or bytes_ > limit:
                node = source_node(binding.value) or binding.var.name
                shape = "x".join("?" if d is None else str(d) for d in dims)
                problem = "an empty tensor" if empty else "a tensor beyond the size limits"
                raise CompilerError(f"{source}: node '{shown(node)}' computes {problem} ({shape})")
