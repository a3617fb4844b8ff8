"""ONNX -> Relax import.

TVM's importer does the conversion; we add what a compiler needs around it:
clear errors for bad files, fixed input shapes, converter overrides (converters.py),
and provenance: every Call in the imported module carries a span whose source name is
the ONNX node it came from, so that later stages (fusion report, graph.onnx) can say
which ONNX nodes each fused group holds. Spans survive TVM's passes; var names do not.
"""

import contextlib
import io
import re
from pathlib import Path

import onnx
import tvm
from google.protobuf.message import DecodeError
from tvm import relax
from tvm.relax.frontend.onnx import onnx_frontend as stock

from compiler.errors import CompilerError
from compiler.frontend.converters import OVERRIDES
from compiler.frontend.external_data import load_external_data
from compiler.frontend.fold_shapes import fold_shape_subgraphs
from compiler.frontend.provenance import tag_spans
from compiler.frontend.validate import (check_header, check_initializers, check_relax_shapes, check_shapes,
                                       memory_bytes, read_model_file)
from compiler.names import shown

_ONNX_DOMAINS = ("", "ai.onnx")


def load_onnx(path) -> onnx.ModelProto:
    """Read and validate an ONNX file, with its external data from its own folder only
    (frontend/external_data.py); every failure is a one-line CompilerError."""
    path = Path(path)
    name = shown(path)
    data = read_model_file(path)
    try:
        model = onnx.load_model_from_string(data)
    except (DecodeError, RuntimeError, ValueError) as err:
        raise CompilerError(f"{name}: not a readable ONNX model (truncated or not ONNX: {shown(_first_line(err))})")
    if not model.graph.node or not model.opset_import:
        raise CompilerError(f"{name}: not an ONNX model (no graph nodes or no opset import)")
    check_header(model, name)
    load_external_data(model, path, memory_bytes())
    try:
        onnx.checker.check_model(model)
    except (onnx.checker.ValidationError, ValueError) as err:
        raise CompilerError(f"{name}: invalid ONNX model: {shown(_checker_message(err))}") from None
    check_initializers(model, name)
    return model


def node_name(node: onnx.NodeProto, index: int) -> str:
    """The name we report for a node: its own, or (unnamed nodes) OpType:first_output."""
    if node.name:
        return node.name
    return f"{node.op_type}:{node.output[0]}" if node.output else f"{node.op_type}#{index}"


def parse_input_shapes(specs) -> dict[str, tuple[int, ...]]:
    """['data=1x3x224x224', ...] -> {'data': (1, 3, 224, 224)}."""
    shapes = {}
    for spec in specs or []:
        match = re.fullmatch(r"(.+)=(0*[1-9]\d*(?:x0*[1-9]\d*)*)", spec.strip())
        if not match:
            raise CompilerError(f"--input-shape {spec!r}: expected NAME=DIMxDIMx... with positive DIMs (e.g. data=1x3x224x224)")
        shapes[match.group(1)] = tuple(int(d) for d in match.group(2).split("x"))
    return shapes


def graph_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    """The model's real inputs: graph inputs that are not initializers (IR < 4 lists both)."""
    initializers = {init.name for init in model.graph.initializer}
    return [value for value in model.graph.input if value.name not in initializers]


def resolve_input_shapes(model, fixed: dict, source="model") -> dict[str, tuple[int, ...]]:
    """Every input's static shape, taking --input-shape values for dynamic dimensions."""
    inputs = graph_inputs(model)
    known = {value.name for value in inputs}
    for name in fixed:
        if name not in known:
            raise CompilerError(f"--input-shape {shown(name)}: the model has no input '{shown(name)}' "
                                f"(inputs: {', '.join(shown(k) for k in sorted(known))})")
    shapes = {}
    for value in inputs:
        dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                for d in value.type.tensor_type.shape.dim]
        if value.name in fixed:
            shapes[value.name] = _merge_shape(value.name, dims, fixed[value.name])
        elif None in dims or not value.type.tensor_type.HasField("shape"):
            dims_text = "x".join("?" if d is None else str(d) for d in dims) or "unknown"
            raise CompilerError(
                f"{source}: input {value.name!r} has a dynamic shape ({dims_text}); "
                f"fix it with --input-shape {value.name}=" + "x".join(str(d or 1) for d in dims or [1]))
        else:
            shapes[value.name] = tuple(dims)
    return shapes


def _merge_shape(name, dims, given):
    if dims and len(dims) != len(given):
        raise CompilerError(f"--input-shape {shown(name)}: rank {len(given)} but the model's input has rank {len(dims)}")
    for axis, (model_dim, user_dim) in enumerate(zip(dims, given)):
        if model_dim is not None and model_dim != user_dim:
            raise CompilerError(f"--input-shape {shown(name)}: dimension {axis} is fixed to {model_dim} in the model, not {user_dim}")
    return tuple(given)


def check_supported(model, source="model"):
    """Name every operator TVM cannot import, and every node using it, in one message."""
    convertible = set(stock._get_convert_map()) | set(OVERRIDES) | {"Constant", "If"}
    unsupported = {}
    for index, node in enumerate(model.graph.node):
        if node.domain not in _ONNX_DOMAINS or node.op_type not in convertible:
            op = node.op_type if node.domain in _ONNX_DOMAINS else f"{node.domain}.{node.op_type}"
            unsupported.setdefault(op, []).append(node_name(node, index))
    if unsupported:
        parts = [f"{shown(op)} (node{'s' if len(nodes) > 1 else ''} {', '.join(shown(n) for n in nodes[:8])}"
                 + (f" +{len(nodes) - 8} more" if len(nodes) > 8 else "") + ")" for op, nodes in sorted(unsupported.items())]
        raise CompilerError(f"{source}: unsupported operator{'s' if len(parts) > 1 else ''}: " + "; ".join(parts))


def import_onnx(model: onnx.ModelProto, input_shapes=None, source="model") -> tvm.IRModule:
    """ONNX model -> Relax IRModule with static input shapes and per-node spans."""
    check_supported(model, source)
    shapes = resolve_input_shapes(model, input_shapes or {}, source)
    model = fold_shape_subgraphs(check_shapes(model, shapes, source), source)
    dtypes = {value.name: onnx.helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type).name
              for value in graph_inputs(model)}
    importer = _Importer(shapes, dtypes, source)
    try:
        mod = importer.from_onnx(model.graph, _onnx_opset(model))
    except CompilerError:
        # the builder's dataflow scope opens a new binding block as the error unwinds it; close
        # it, or TVM warns on stderr that the builder was destroyed with blocks remaining
        importer.bb._end_block()
        raise
    mod["main"] = tag_spans(mod["main"], importer.node_outputs)
    check_relax_shapes(mod, source)
    return mod


def _onnx_opset(model) -> int:
    return next((op.version for op in model.opset_import if op.domain in _ONNX_DOMAINS), 1)


class _SingleNodeGraph:
    """Lets the stock importer convert one node at a time (it only reads graph.node)."""

    def __init__(self, node):
        self.node = [node]


class _Importer(stock.ONNXGraphImporter):
    """TVM's importer with our converter overrides and a record of each node's outputs."""

    def __init__(self, shapes, dtypes, source):
        super().__init__(shapes, dtypes, keep_params_in_input=False, sanitize=True)
        self.source = source
        self.node_outputs: list[tuple[str, list]] = []

    def _check_for_unsupported_ops(self, graph):
        """check_supported (which knows our OVERRIDES) has already named every unsupported node."""

    def _construct_nodes(self, graph):
        for index, node in enumerate(graph.node):
            name = node_name(node, index)
            try:
                with contextlib.redirect_stdout(io.StringIO()):  # the stock importer prints on failure
                    super()._construct_nodes(_SingleNodeGraph(node))
            except CompilerError:
                raise
            except Exception as err:  # any converter failure is about this node's input
                raise CompilerError(f"{self.source}: cannot import node '{shown(name)}' ({shown(node.op_type)}): "
                                    f"{shown(_first_line(err))}") from None
            self.node_outputs.append((name, [self._bind(out) for out in node.output if out in self._nodes]))

    def _bind(self, output_name):
        """Bind a node's output call here, so its binding sits at the node boundary.

        Converters may return an unbound call that the next node would bind; binding it
        now keeps each node's bindings contiguous. Constants, shapes and tuples stay as
        they are because later converters inspect them.
        """
        expr = self._nodes[output_name]
        if isinstance(expr, relax.Call):
            expr = self._nodes[output_name] = self.bb.emit(expr)
        return expr

    def _convert_operator(self, op_name, inputs, attrs, opset):
        if op_name not in OVERRIDES:
            return super()._convert_operator(op_name, inputs, attrs, opset)
        converter = OVERRIDES[op_name].get_converter(opset)
        result = converter(self.bb, inputs, attrs, [self._nodes, self._params])
        return self.bb.normalize(result) if isinstance(result, relax.Expr) else result


def _checker_message(err) -> str:
    """The checker's message on one line (it may print the offending node over several)."""
    return " ".join(line.strip() for line in str(err).strip().splitlines() if line.strip())[:400]


def _first_line(err) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
