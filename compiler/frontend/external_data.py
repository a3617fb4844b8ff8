"""ONNX external data, read from the model's own folder and nowhere else.

A model's large tensors may live in files beside it (TensorProto.external_data: location,
offset, length). The location is a string from the model: it may be absolute, climb out with
'..', or be a symbolic link to anywhere. We read a tensor's bytes only when its file, with every
link resolved, lies inside the folder of the model file, whatever the working directory; the
byte range must lie inside the file and match the tensor's size. Anything else is refused with
one line naming the tensor.
"""

import os
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto
from onnx.external_data_helper import ExternalDataInfo, uses_external_data

from compiler.errors import CompilerError
from compiler.names import shown


def load_external_data(model: onnx.ModelProto, model_path: Path, max_bytes: int) -> None:
    """Fill every external tensor of `model` (in place) from files in model_path's folder."""
    folder = model_path.resolve().parent
    total = 0
    for tensor in _tensors(model.graph):
        if not uses_external_data(tensor):
            continue
        data = _read(tensor, folder, model_path)
        total += len(data)
        if total > max_bytes:
            raise CompilerError(f"{shown(model_path)}: the external data exceeds {max_bytes:,} bytes")
        tensor.raw_data = data
        del tensor.external_data[:]
        tensor.data_location = TensorProto.DEFAULT


def _tensors(graph: onnx.GraphProto):
    """Initializers and constant attribute tensors of a graph and of its subgraphs."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            if attribute.HasField("g"):
                yield from _tensors(attribute.g)
            for subgraph in attribute.graphs:
                yield from _tensors(subgraph)


def _read(tensor: TensorProto, folder: Path, model_path: Path) -> bytes:
    name = f"{shown(model_path)}: initializer '{shown(tensor.name)}'"
    try:
        info = ExternalDataInfo(tensor)
    except (ValueError, TypeError) as err:
        raise CompilerError(f"{name}: unreadable external_data entry ({shown(err)})") from None
    location = info.location or ""
    if not location or os.path.isabs(location) or ".." in Path(location).parts or "\0" in location:
        raise CompilerError(f"{name}: external data location '{shown(location)}' must be a plain path inside "
                            "the model's folder")
    path = (folder / location).resolve()
    if folder not in path.parents:
        raise CompilerError(f"{name}: external data '{shown(location)}' leads outside the model's folder "
                            f"(to {shown(path)})")
    if not path.is_file():
        raise CompilerError(f"{name}: external data file '{shown(location)}' is missing beside the model")
    size = path.stat().st_size
    offset = int(info.offset or 0)
    expected = _byte_size(tensor)
    length = int(info.length) if info.length else (expected if expected is not None else size - offset)
    if offset < 0 or length < 0 or offset + length > size:
        raise CompilerError(f"{name}: bytes {offset}..{offset + length} lie outside '{shown(location)}' "
                            f"({size:,} bytes)")
    if expected is not None and length != expected:
        raise CompilerError(f"{name}: {length:,} bytes of external data for a tensor of {expected:,} bytes")
    with open(path, "rb") as file:
        file.seek(offset)
        return file.read(length)


def _byte_size(tensor: TensorProto) -> int | None:
    """Bytes of a tensor's raw data from its dims and type (None for strings and unknown types)."""
    if tensor.data_type in (TensorProto.STRING, TensorProto.UNDEFINED):
        return None
    try:
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type)
    except (KeyError, ValueError, TypeError):
        return None
    if any(dim < 0 for dim in tensor.dims):
        return None
    count = int(np.prod(tensor.dims, dtype=object)) if tensor.dims else 1
    bits = {TensorProto.INT4: 4, TensorProto.UINT4: 4}.get(tensor.data_type, np.dtype(dtype).itemsize * 8)
    return (count * bits + 7) // 8
