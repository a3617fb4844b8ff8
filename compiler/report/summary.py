"""report.json: what the compiler did to a model, read back from the IR.

Everything here is derived from the modules on CompiledModel (imported / optimised /
partitioned) and the spans that name ONNX nodes, so the report cannot drift from
what was actually built.
"""

import hashlib
from collections import Counter
from pathlib import Path

import onnx
import tvm
from tvm import relax

import compiler
from compiler.analysis import macs, op_calls, param_bytes, static_shape
from compiler.frontend.onnx import graph_inputs, node_name
from compiler.frontend.provenance import source_node
from compiler.frontend.tflite import model_origin
from compiler.frontend.tflite_graph import operator_of
from compiler.partition import group_name, group_nodes
from compiler.passes.util import bindings, bound_values


def summarise(cm, model_path, quantisation=None) -> dict:
    """report.json's dict; `quantisation` is quant_summary.summarise_quantisation's, for INT8 builds."""
    names = [node_name(node, index) for index, node in enumerate(cm.model.graph.node)]
    prequantised = cm.offloaded is not None and cm.quantised is None
    layer_rows = layers(cm.offloaded if prequantised else cm.partitioned)
    if quantisation is not None or prequantised:
        in_float, in_int16 = float_nodes(cm.offloaded), int16_nodes(cm.offloaded)
        for row in layer_rows:
            nodes = set(row["onnx_nodes"])
            row["precision"] = "float" if nodes & in_float else "int16" if nodes & in_int16 else "int8"
    return {
        "compiler_version": compiler.__version__,
        "model": _model_facts(cm.model, Path(model_path)),
        "interface": _interface(cm),
        "target": cm.target.name,
        "ops_imported": dict(sorted(Counter(node.op_type for node in cm.model.graph.node).items())),
        "batchnorm": _batchnorm_facts(cm, names),
        "conv": _conv_facts(cm.model, names, layer_rows),
        "fused_groups": dict(Counter(row["op"] for row in layer_rows if row["kind"] in GROUP_KINDS).most_common()),
        "layers": layer_rows,
        "totals": {
            "layers": len(layer_rows),
            "fused_layers": sum(row["kind"] in GROUP_KINDS for row in layer_rows),
            "library_layers": dict(Counter(row["library"] for row in layer_rows if "library" in row)),
            "macs": sum(row["macs"] for row in layer_rows),
            "param_bytes": sum(row["param_bytes"] for row in layer_rows),
        },
        "compile_seconds": {stage: round(seconds, 3) for stage, seconds in cm.seconds.items()},
        "quantization": quantisation,
        **({"prequantised": _prequantised_facts(layer_rows)} if prequantised else {}),
        **({"tflite_operators": tflite_operators(cm.model, layer_rows)} if model_origin(cm.model) == "tflite" else {}),
    }


def _prequantised_facts(layer_rows) -> dict:
    """A model quantised before it came in (QDQ / QLinear ONNX, full-int8 TFLite, PT2E): its own scales;
    which layers run on the int8 kernels and which compute in float (operators its quantiser left float)."""
    floats = [name for row in layer_rows if row["precision"] == "float" for name in row["onnx_nodes"]]
    return {"scales": "the model's own", "int8_layers": sum(row["precision"] == "int8" and row["kind"] == "int8"
                                                            for row in layer_rows),
            "float_layers": sorted(set(floats))}


def tflite_operators(model: onnx.ModelProto, layer_rows) -> dict:
    """A TFLite model's operators -> how many the file has and the layers (kernel and kind) that
    compute them: {"CONV_2D": {"count": 5, "layers": {"conv2d_bias (int8)": 5}}}."""
    found = {node.name: operator_of(node) for node in model.graph.node
             if node.op_type not in ("QuantizeLinear", "DequantizeLinear") and operator_of(node)}
    result: dict = {}
    for position, name in sorted(set(found.values())):
        result.setdefault(name, {"count": 0, "layers": Counter()})["count"] += 1
    for row in layer_rows:
        for name in sorted({found[node][1] for node in row["onnx_nodes"] if node in found}):
            result[name]["layers"][f"{row['op']} ({row['kind']})"] += 1
    return {name: {"count": entry["count"], "layers": dict(entry["layers"])} for name, entry in sorted(result.items())}


GROUP_KINDS = ("fused", "int8")  # a fused group in TVM, or one on the int8 kernels


def layers(mod: tvm.IRModule) -> list[dict]:
    """One row per call in main: a fused group, a single op left to TVM's own fusion, or one row
    per composite inside each generated-C function (an int8 kernel, or a float group on oneDNN,
    whose row names the "library")."""
    rows = []
    for binding in bindings(mod["main"]):
        call = binding.value
        if not isinstance(call, relax.Call):
            continue
        if isinstance(call.op, tvm.ir.GlobalVar) and "Codegen" in (mod[call.op].attrs or {}):
            from compiler.codegen.int8 import CODEGEN, composites_in

            row = _kernel_row if mod[call.op].attrs["Codegen"] == CODEGEN else _library_row
            rows += [row(name, func) for name, func in composites_in(mod[call.op])]
            continue
        if isinstance(call.op, tvm.ir.GlobalVar):
            body, pattern = mod[call.op], group_name(mod[call.op])
            kind, op = ("fused", pattern) if pattern else ("call", call.op.name_hint)
            nodes = group_nodes(body) or _unique(source_node(inner) for inner in op_calls(body))
        else:
            body, kind, op = call, "op", call.op.name.removeprefix("relax.").removeprefix("nn.")
            nodes = _unique([source_node(call)])
        shape = static_shape(binding.var)
        rows.append({
            "name": nodes[0] if nodes else binding.var.name,
            "kind": kind,
            "op": op,
            "onnx_nodes": nodes,
            "output_shape": list(shape) if shape else None,
            "macs": macs(body),
            "param_bytes": param_bytes(body),
        })
    return rows


# Ops that compute nothing in float when they run in a quantised graph's TVM part: the boundary
# conversions themselves.
_CONVERSIONS = ("relax.quantize", "relax.dequantize")


def float_nodes(offloaded: tvm.IRModule) -> set[str]:
    """The ONNX nodes of which some op still computes in float in an int8 build (everything outside
    the int8 kernels whose result is a float tensor, the boundary conversions aside)."""
    nodes = set()
    for binding in bindings(offloaded["main"]):
        call = binding.value
        if not isinstance(call, relax.Call) or isinstance(call.op, tvm.ir.GlobalVar):
            continue
        if getattr(call.op, "name", "") in _CONVERSIONS or "float" not in str(getattr(binding.var.ty, "dtype", "")):
            continue
        if source_node(call):
            nodes.add(source_node(call))
    return nodes


def int16_nodes(offloaded: tvm.IRModule) -> set[str]:
    """The ONNX nodes computed by 16x8 kernels (int16 activations: --int16, --accuracy-budget): the
    kernels reading an int16 tensor (a narrowing rescale reads one too, but computes no node)."""
    from compiler.codegen.int8 import offloaded_composites

    return {node for _, func in offloaded_composites(offloaded)
            if any(str(getattr(p.ty, "dtype", "")) == "int16" for p in func.params) for node in computing_nodes(func)}


def kernel_nodes(func) -> list[str]:
    """The ONNX nodes an int8 kernel's composite computes, in order, from its calls' spans."""
    return _unique(source_node(inner) for inner in op_calls(func))


def computing_nodes(func) -> list[str]:
    """kernel_nodes without the boundary conversions: what a layer is named after (a QDQ model lists
    the dequantize of its input first, which belongs to the layer before)."""
    return _unique(source_node(inner) for inner in op_calls(func) if inner.op.name not in _CONVERSIONS)


def _kernel_row(name, func) -> dict:
    nodes = kernel_nodes(func)
    shape = static_shape(func.body.body)
    return {"name": (computing_nodes(func) or nodes or [name])[0], "kind": "int8", "op": name.split(".", 1)[-1], "onnx_nodes": nodes,
            "output_shape": list(shape) if shape else None, "macs": macs(func), "param_bytes": param_bytes(func),
            "precision": "int8"}


def _library_row(name, func) -> dict:
    """A float group another codegen's library runs (codegen/dnnl.py: "dnnl.conv2d_bias_clip"), not TVM."""
    row = _kernel_row(name, func)
    row.pop("precision")
    return {**row, "kind": "fused", "library": name.split(".", 1)[0]}


def _unique(names) -> list[str]:
    return list(dict.fromkeys(name for name in names if name))


def _model_facts(model: onnx.ModelProto, path: Path) -> dict:
    def tensor(value):
        tensor_type = value.type.tensor_type
        return {"name": value.name,
                "shape": [d.dim_value if d.HasField("dim_value") else d.dim_param for d in tensor_type.shape.dim],
                "dtype": onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type).name}

    return {
        "path": str(path),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None,
        "producer": f"{model.producer_name} {model.producer_version}".strip(),
        "opset": next((op.version for op in model.opset_import if op.domain in ("", "ai.onnx")), None),
        "nodes": len(model.graph.node),
        "inputs": [tensor(value) for value in graph_inputs(model)],
        "outputs": [tensor(value) for value in model.graph.output],
    }


def _batchnorm_facts(cm, names) -> dict:
    all_bn = [name for name, node in zip(names, cm.model.graph.node) if node.op_type == "BatchNormalization"]
    remaining = {source_node(call): call for call in op_calls(cm.optimised["main"]) if call.op.name == "relax.nn.batch_norm"}
    producers = bound_values(cm.optimised["main"])
    return {
        "total": len(all_bn),
        "folded": [name for name in all_bn if name not in remaining],
        "not_folded": [{"node": name, "reason": _why_not_folded(remaining[name], producers)}
                       for name in all_bn if name in remaining],
    }


def _why_not_folded(call, producers) -> str:
    producer = producers.get(call.args[0])
    if not isinstance(producer, relax.Call) or not isinstance(producer.op, tvm.ir.Op):
        return "its input is a graph input, not a Conv output"
    op = producer.op.name.removeprefix("relax.")
    if op in ("nn.conv2d", "add"):
        return "the Conv output it normalises has other users (folding would change them)"
    return f"its input comes from {op} ({source_node(producer) or 'unnamed'}), not from a Conv"


def _conv_facts(model, names, layer_rows) -> dict:
    convs = [name for name, node in zip(names, model.graph.node) if node.op_type == "Conv"]
    fused = {node for row in layer_rows if row["kind"] in GROUP_KINDS for node in row["onnx_nodes"]}
    return {"total": len(convs), "in_fused_groups": sum(c in fused for c in convs),
            "not_fused": [c for c in convs if c not in fused]}


def _interface(cm) -> dict:
    """The built artefact's inputs and outputs (names, shapes, dtypes): what `run` must feed."""
    main = (cm.quantised.qdq if cm.quantised is not None else cm.partitioned)["main"]
    returned = main.ret_ty if hasattr(main, "ret_ty") else main.body.body.ty
    output_types = list(returned.fields) if hasattr(returned, "fields") else [returned]
    inputs = graph_inputs(cm.model)
    return {
        "inputs": [{"name": value.name, "shape": list(static_shape(param)), "dtype": str(param.ty.dtype)}
                   for value, param in zip(inputs, main.params)],
        "outputs": [{"name": value.name, "shape": [int(d) for d in ty.shape], "dtype": str(ty.dtype)}
                    for value, ty in zip(cm.model.graph.output, output_types)],
    }
