"""The quantisation part of report.json: parameters, per-layer error, size, accuracy."""

import numpy as np
import tvm
from tvm import relax

from compiler.analysis import module_param_bytes
from compiler.frontend.provenance import source_node
from compiler.passes.util import bindings

SCHEME = ("int8, TFLite scheme: activations per-tensor asymmetric, weights per-channel symmetric "
          "[-127, 127], int32 bias, fixed-point requantisation")


def int8_layers(offloaded: tvm.IRModule) -> list[dict]:
    """Every group handed to the int8 kernels: kernel pattern and the ONNX nodes it computes."""
    from compiler.codegen.int8 import offloaded_composites
    from compiler.report.summary import kernel_nodes

    return [{"kernel": name, "onnx_nodes": kernel_nodes(func)} for name, func in offloaded_composites(offloaded)]


def tensor_nodes(mod: tvm.IRModule, input_names) -> dict[str, str]:
    """Tensor id -> the ONNX node that produced it (its group's last node), for the report.

    Layout permutes that the compiler inserted have no ONNX node: they read "permute_dims of X".
    """
    from compiler.partition import group_nodes
    from compiler.quant.calibrate import tensor_ids

    values = {b.var: b.value for b in bindings(mod["main"])}
    ids, names = tensor_ids(mod["main"], input_names), {}
    by_var = {var: tensor_id for tensor_id, var in ids}
    for tensor_id, var in ids:
        value = values.get(var)
        if value is None:
            names[tensor_id] = tensor_id  # a graph input: its own name
        elif isinstance(value.op, tvm.ir.GlobalVar):
            nodes = group_nodes(mod[value.op])
            names[tensor_id] = nodes[-1] if nodes else tensor_id
        elif source_node(value):
            names[tensor_id] = source_node(value)
        else:
            source = next((a for a in value.args if isinstance(a, relax.Var)), None)
            names[tensor_id] = f"{value.op.name.removeprefix('relax.')} of {names.get(by_var.get(source), '?')}"
    return names


def summarise_quantisation(cm, errors, accuracy) -> dict:
    quantised = cm.quantised
    config = quantised.config
    nodes = tensor_nodes(cm.partitioned, quantised.input_names)
    tensors = [{"tensor": tensor_id, "onnx_node": nodes.get(tensor_id, tensor_id), "scale": q.scale,
                "zero_point": q.zero_point, "range": [float(v) for v in quantised.ranges.get(tensor_id, (np.nan, np.nan))]}
               for tensor_id, q in quantised.plan.items()]
    for row in errors:
        row["onnx_node"] = nodes.get(row["tensor"], row["tensor"])
    int8 = int8_layers(cm.offloaded)
    return {
        "scheme": SCHEME,
        "calibration": {"source": config.calib, "method": config.method,
                        "percentile": config.percentile if config.method == "percentile" else None,
                        "samples": quantised.calibration_samples,
                        "held_out_samples": len(quantised.held_out) if quantised.held_out is not None else 0},
        "kept_float": list(config.keep_float),
        "int16_layers": list(config.int16_layers),
        "equalized": {"asked": config.equalize, "pairs": [list(pair) for pair in quantised.equalized]},
        "io": _io_params(cm),
        "int8_layers": int8,
        "float_layers": [row["name"] for row in _float_layers(cm)],
        "float_reasons": _float_reasons(cm),
        "model_bytes": {"float": module_param_bytes(cm.partitioned), "int8": module_param_bytes(cm.quantised.qdq)},
        "tensors": tensors,
        "layer_errors": errors,
        "accuracy": accuracy,
    }


def _float_layers(cm):
    """Layers of which some op runs in float (not only those with MACs: a float sigmoid or
    transpose between int8 layers costs conversions and float code too)."""
    from compiler.report.summary import float_nodes, layers

    in_float = float_nodes(cm.offloaded)
    return [row for row in layers(cm.partitioned) if set(row["onnx_nodes"]) & in_float]


def _float_reasons(cm) -> dict:
    """{float layer: why the int8 kernel refused it} (codegen/int8.py refusals), for the float layers
    the user did not keep float."""
    from compiler.codegen.int8 import refusals

    why = refusals(cm.offloaded)
    kept = set(cm.quantised.config.keep_float)
    return {row["name"]: why[node] for row in _float_layers(cm) for node in row["onnx_nodes"][:1]
            if node in why and node not in kept}


def _io_params(cm) -> dict:
    """The (scale, zero point) a caller needs to feed and read an int8/uint8 interface."""
    from compiler.quant.calibrate import tensor_ids

    quantised = cm.quantised
    io, shift = quantised.config.io, 128 if quantised.config.io == "uint8" else 0
    main = cm.partitioned["main"]
    ids = {var: tensor_id for tensor_id, var in tensor_ids(main, quantised.input_names)}
    aliases = {b.var: b.value for b in bindings(main) if isinstance(b.value, relax.Var)}
    body = main.body.body
    outputs = list(body.fields) if isinstance(body, relax.Tuple) else [body]
    output_names = [value.name for value in cm.model.graph.output]

    def entry(name, var):
        while var in aliases:
            var = aliases[var]
        q = quantised.plan.get(ids.get(var))
        if io == "float" or q is None:
            return {"name": name, "dtype": "float32"}
        return {"name": name, "dtype": io, "scale": q.scale, "zero_point": q.zero_point + shift}

    return {"mode": io,
            "inputs": [entry(name, param) for name, param in zip(quantised.input_names, main.params)],
            "outputs": [entry(name, var) for name, var in zip(output_names, outputs)]}
