"""Fold shape arithmetic at import, once the input shapes are known: ONNX -> ONNX.

Exporters compute shapes at run time: timm's TensorFlow "SAME" padding reads x.shape and builds
the Pad amounts from it (Shape -> Gather -> Sub/Div/Max -> Concat -> Pad), torch's `chunk`
derives Slice ends from Shape, `flatten` builds a Reshape target. With static input shapes every
such value is a constant, and TVM's importer needs them as constants (a Pad or Reshape with a
computed argument has no static shape). This pass, on the model ONNX's shape inference has
annotated (frontend/validate.check_shapes):

  - replaces Shape(x) and Size(x) of a tensor with a fully known shape by a constant;
  - evaluates, with ONNX's reference implementation (onnx.reference), every node whose inputs
    are all small constants (at most SMALL elements: shape vectors and scalars, never weights),
    except the quantisation operators, whose constant form the int8 path must see;
  - removes nodes whose outputs nobody reads any more.

Folded nodes compute no data: the reports count the model's own nodes as before.
"""

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from compiler.errors import CompilerError
from compiler.names import shown

SMALL = 1024  # elements: shape vectors, pads, scalars
_NEVER_FOLD = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "QLinearConv", "QLinearMatMul",
               "ConvInteger", "MatMulInteger", "If", "Loop", "Scan", "RandomNormal", "RandomUniform",
               "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli"}


MAX_ROUNDS = 8  # folding a Pad's amounts lets inference know the next Shape; chains are short


def fold_shape_subgraphs(model: onnx.ModelProto, source: str = "model") -> onnx.ModelProto:
    """`model` (shape-inferred, static inputs) with its shape arithmetic folded into initializers.
    Folding can make more shapes known (a Pad's amounts, a Reshape's target), so inference and
    folding alternate until nothing changes."""
    for _ in range(MAX_ROUNDS):
        folded = _fold_once(model, source)
        if folded is model:
            return model
        model = onnx.shape_inference.infer_shapes(folded, data_prop=True)
    return model


def _fold_once(model: onnx.ModelProto, source: str) -> onnx.ModelProto:
    graph = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
    constants = {init.name: init for init in graph.initializer}
    shapes = _static_shapes(model)
    kept, folded = [], {}
    for node in graph.node:
        values = _fold(node, constants, folded, shapes, opset, source)
        if values is None:
            kept.append(node)
            continue
        for name, value in zip(node.output, values):
            folded[name] = numpy_helper.from_array(np.asarray(value), name)
    if not folded:
        return model
    result = onnx.ModelProto()
    result.CopyFrom(model)
    del result.graph.node[:]
    result.graph.node.extend(_live(kept, result.graph))
    used = {name for node in result.graph.node for name in node.input} | {v.name for v in result.graph.output}
    result.graph.initializer.extend(tensor for name, tensor in folded.items() if name in used)
    return result


def _static_shapes(model: onnx.ModelProto) -> dict[str, list[int]]:
    values = list(model.graph.input) + list(model.graph.value_info) + list(model.graph.output)
    shapes = {}
    for value in values:
        dims = value.type.tensor_type.shape.dim
        if value.type.tensor_type.HasField("shape") and all(d.HasField("dim_value") for d in dims):
            shapes[value.name] = [d.dim_value for d in dims]
    for init in model.graph.initializer:
        shapes[init.name] = list(init.dims)
    return shapes


def _fold(node, constants: dict, folded: dict, shapes: dict, opset: int, source: str):
    """The node's output values when it can be folded, else None."""
    if node.domain not in ("", "ai.onnx") or node.op_type in _NEVER_FOLD:
        return None
    if node.op_type in ("Shape", "Size") and node.input and node.input[0] in shapes:
        shape = np.array(shapes[node.input[0]], dtype=np.int64)
        if node.op_type == "Size":
            return [np.array(int(np.prod(shape)), dtype=np.int64)]
        attrs = {a.name: a.i for a in node.attribute}
        return [shape[attrs.get("start", 0):attrs.get("end", len(shape))]]
    inputs = [name for name in node.input if name]
    known = {name: folded[name] if name in folded else constants.get(name) for name in inputs}
    if node.op_type != "Constant" and (not inputs or any(t is None for t in known.values())):
        return None
    arrays = {name: numpy_helper.to_array(tensor) for name, tensor in known.items()}
    if any(array.size > SMALL for array in arrays.values()):
        return None
    try:
        outputs = _evaluate(node, arrays, opset)
    except Exception as err:  # the reference implementation's own complaint about this node
        raise CompilerError(f"{source}: node '{shown(node.name or node.op_type)}' ({node.op_type}) cannot be "
                            f"evaluated on its constant inputs: {shown(str(err).strip()[:200])}") from None
    if any(np.asarray(value).size > SMALL for value in outputs):
        return None
    return outputs


def _evaluate(node, arrays: dict, opset: int) -> list:
    inputs = [helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(array.dtype), array.shape)
              for name, array in arrays.items()]
    outputs = [helper.make_tensor_value_info(name, onnx.TensorProto.UNDEFINED, None) for name in node.output]
    graph = helper.make_graph([node], "fold", inputs, outputs)
    evaluator = ReferenceEvaluator(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]))
    return evaluator.run(None, arrays)


def _live(nodes: list, graph) -> list:
    """`nodes` without those whose outputs nobody reads (walking back from the graph outputs)."""
    needed = {value.name for value in graph.output}
    live = []
    for node in reversed(nodes):
        if any(output in needed for output in node.output):
            live.append(node)
            needed.update(name for name in node.input if name)
    return list(reversed(live))
