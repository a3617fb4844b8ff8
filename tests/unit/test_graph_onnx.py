"""graph.onnx export: valid ONNX, one node per binding of main, provenance, shapes, weights.

Models are compiled for the host once per module; expectations come from the source
ONNX models (node names, shapes) and from the partitioned IR (calls, constants), never
from the exporter's own code.
"""

import functools
import os

import numpy as np
import onnx
import pytest
import tvm
from onnx import TensorProto, helper, numpy_helper
from tvm import relax

import onnx_models
from relax_testing import tvm_partition
from compiler.frontend import import_onnx, load_onnx
from compiler.frontend.onnx import node_name
from compiler.partition import group_name
from compiler.passes.util import bindings, is_const
from compiler.report.graph_onnx import FUSED_DOMAIN, RELAX_DOMAIN, export_graph

# conv node -> the ONNX nodes that must be fused with it (BN, residual add, activation)
FUSED_WITH = {
    "conv_bn_act": {"conv": {"bn", "act"}},
    "residual_block": {"conv1": {"bn1", "relu1"}, "conv2": {"bn2", "add", "relu2"}},
    "depthwise_block": {"dw": {"bn_dw", "relu6_dw"}, "pw": {"bn_pw", "relu6_pw"}},
    "tiny_cnn": {"stem_conv": {"stem_bn", "stem_relu"}, "dw_conv": {"dw_bn", "dw_relu6"},
                 "pw_conv": {"pw_bn", "pw_relu6"}, "res_conv1": {"res_bn1", "res_relu1"},
                 "res_conv2": {"res_bn2", "res_add", "res_relu2"}},
}
LIGHT_RESNET50 = os.path.join(os.path.dirname(onnx.__file__), "backend/test/data/light/light_resnet50.onnx")


@functools.cache
def compiled(name):
    """(name, source model, partitioned module, exported graph) for a builder in tests/onnx_models.py."""
    model = getattr(onnx_models, name)()
    mod = tvm_partition(model)
    return name, model, mod, export_graph(mod)


@pytest.fixture(params=sorted(FUSED_WITH))
def case(request):
    return compiled(request.param)


def attr(node, name):
    found = [a for a in node.attribute if a.name == name]
    if not found:
        return None
    value = helper.get_attribute_value(found[0])
    return [v.decode() for v in value] if isinstance(value, list) and value and isinstance(value[0], bytes) else value


def main_calls(mod):
    return [b.value for b in bindings(mod["main"]) if isinstance(b.value, relax.Call)]


def ir_constants(mod):
    """Unique constants used by main's calls and by the group functions they call."""
    seen = {}
    for call in main_calls(mod):
        calls = [call]
        if isinstance(call.op, tvm.ir.GlobalVar):
            calls += [b.value for b in bindings(mod[call.op]) if isinstance(b.value, relax.Call)]
        for inner in calls:
            for arg in inner.args:
                if is_const(arg):
                    seen.setdefault(arg, arg.value.numpy())
    return list(seen.values())


def tensor_type(value_info):
    t = value_info.type.tensor_type
    return t.elem_type, [d.dim_value for d in t.shape.dim]


def test_valid_onnx_with_declared_domains(case):
    _, _, _, graph = case
    onnx.checker.check_model(graph, full_check=True)
    assert graph.ir_version == 10
    domains = {o.domain: o.version for o in graph.opset_import}
    assert domains[FUSED_DOMAIN] == 1 and domains[RELAX_DOMAIN] == 1 and "" in domains


def test_one_node_per_call_binding_in_order(case):
    _, _, mod, graph = case
    calls = main_calls(mod)
    assert len(graph.graph.node) == len(calls)
    for node, call in zip(graph.graph.node, calls):
        if isinstance(call.op, tvm.ir.GlobalVar):
            assert (node.domain, node.op_type) == (FUSED_DOMAIN, group_name(mod[call.op]))
            assert attr(node, "ops") == [b.value.op.name for b in bindings(mod[call.op])]
        else:
            assert node.domain == RELAX_DOMAIN
            assert node.op_type == call.op.name.removeprefix("relax.").removeprefix("nn.")
    assert len({n.name for n in graph.graph.node}) == len(graph.graph.node)


def test_each_conv_fused_with_its_bn_and_activation(case):
    name, model, _, graph = case
    convs = [n.name for n in model.graph.node if n.op_type == "Conv"]
    assert sorted(convs) == sorted(FUSED_WITH[name])
    for conv in convs:
        holders = [n for n in graph.graph.node if conv in (attr(n, "onnx_nodes") or [])]
        assert len(holders) == 1, conv
        assert holders[0].domain == FUSED_DOMAIN
        assert FUSED_WITH[name][conv] <= set(attr(holders[0], "onnx_nodes"))
        assert attr(holders[0], "ops")[0] == "relax.nn.conv2d"


def test_conv_bn_act_is_one_conv2d_bias_relu_node():
    _, _, _, graph = compiled("conv_bn_act")
    (node,) = graph.graph.node
    assert (node.op_type, node.name) == ("conv2d_bias_relu", "conv")
    assert attr(node, "onnx_nodes") == ["conv", "bn", "act"]
    assert attr(node, "strides") == [1, 1] and attr(node, "padding") == [1, 1, 1, 1] and attr(node, "groups") == 1
    assert list(node.input) == ["x", "conv_weight", "conv_bias"]


def test_graph_inputs_and_outputs_match_source(case):
    _, model, _, graph = case
    assert [tensor_type(v) for v in graph.graph.input] == [tensor_type(v) for v in model.graph.input]
    assert [tensor_type(v) for v in graph.graph.output] == [tensor_type(v) for v in model.graph.output]


def test_every_edge_has_dtype_and_shape(case):
    _, _, _, graph = case
    g = graph.graph
    known = {v.name for v in g.input} | {t.name for t in g.initializer}
    infos = {v.name: v for v in list(g.value_info) + list(g.output)}
    for node in g.node:
        assert all(i in known for i in node.input), node.name  # wired to something defined before
        for out in node.output:
            elem, dims = tensor_type(infos[out])
            assert elem == TensorProto.FLOAT and dims and all(d > 0 for d in dims)
            known.add(out)
    assert {v.name for v in g.value_info}.isdisjoint(v.name for v in g.output)


def test_initializers_are_the_ir_constants(case):
    _, _, mod, graph = case
    constants = ir_constants(mod)
    inits = [numpy_helper.to_array(t) for t in graph.graph.initializer]
    assert len(inits) == len(constants)
    assert sum(a.nbytes for a in inits) == sum(c.nbytes for c in constants)
    assert len({t.name for t in graph.graph.initializer}) == len(inits)
    used = {i for n in graph.graph.node for i in n.input}
    assert all(t.name in used for t in graph.graph.initializer)


def test_save_load_round_trip(case, tmp_path):
    _, _, _, graph = case
    path = tmp_path / "graph.onnx"
    onnx.save(graph, path)
    loaded = onnx.load(path)
    onnx.checker.check_model(str(path))
    assert loaded.SerializeToString() == graph.SerializeToString()


def test_plain_op_attributes_and_non_tensor_args():
    _, _, _, graph = compiled("tiny_cnn")
    nodes = {n.name: n for n in graph.graph.node}
    assert attr(nodes["stem_conv"], "strides") == [2, 2]
    assert nodes["softmax"].op_type == "softmax" and attr(nodes["softmax"], "axis") == -1
    reshape = nodes["flatten"]
    assert reshape.op_type == "reshape" and attr(reshape, "shape") == [1, 16]
    assert list(reshape.input) == [nodes["gap"].output[0]]  # the shape is an attribute, not an input
    assert attr(nodes["gap"], "axis") == [2, 3]


def split_model():
    """x -> Split(2) -> Relu | Sigmoid -> Concat -> Clip(0, 6); the Sigmoid is a second output."""
    nodes = [helper.make_node("Split", ["x"], ["a", "b"], name="split", axis=1, num_outputs=2),
             helper.make_node("Relu", ["a"], ["ra"], name="relu"),
             helper.make_node("Sigmoid", ["b"], ["sb"], name="sig"),
             helper.make_node("Concat", ["ra", "sb"], ["y"], name="cat", axis=1),
             helper.make_node("Clip", ["y", "lo", "hi"], ["z"], name="clip")]
    graph = helper.make_graph(
        nodes, "split", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 2, 2])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 4, 2, 2]),
         helper.make_tensor_value_info("sb", TensorProto.FLOAT, [1, 2, 2, 2])],
        [numpy_helper.from_array(np.float32(0), "lo"), numpy_helper.from_array(np.float32(6), "hi")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    return model


def test_tuple_outputs_and_tuple_get_item():
    """The imported graph still holds R.split's tuple (the pipeline later slices it: split_to_slices)."""
    model = split_model()
    graph = export_graph(import_onnx(model))
    onnx.checker.check_model(graph, full_check=True)
    nodes = {n.name: n for n in graph.graph.node}
    assert [n.op_type for n in graph.graph.node] == ["split", "relu", "sigmoid", "concat", "clip"]
    split = nodes["split"]
    assert len(split.output) == 2  # the tuple's fields; TupleGetItem adds no node
    assert list(nodes["relu"].input) == [split.output[0]] and list(nodes["sig"].input) == [split.output[1]]
    assert list(nodes["cat"].input) == [nodes["relu"].output[0], nodes["sig"].output[0]]
    assert list(nodes["clip"].input) == [nodes["cat"].output[0]]  # bounds are attributes
    assert (attr(nodes["clip"], "min"), attr(nodes["clip"], "max")) == (0.0, 6.0)
    assert [o.name for o in graph.graph.output] == [nodes["clip"].output[0], nodes["sig"].output[0]]
    assert [tensor_type(v) for v in graph.graph.output] == [tensor_type(v) for v in model.graph.output]


def test_shapes_constants_nested_tuples_and_input_as_output():
    """Hand-built main: shape value, bound constant, inline TupleGetItem, nested tuple return."""
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((2, 3), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            shape = bb.emit(relax.op.shape_of(x))
            y = bb.emit(relax.op.reshape(x, shape))
            ones = bb.emit(relax.const(np.ones((2, 3), "float32")))
            parts = bb.emit(relax.op.split(bb.emit(relax.op.add(y, ones)), 3, axis=1))
            w = bb.emit(relax.op.multiply(relax.TupleGetItem(parts, 2), relax.const(np.float32(2))))
            out = bb.emit_output(relax.Tuple([w, parts, x]))
        bb.emit_func_output(out)
    graph = export_graph(bb.get())
    onnx.checker.check_model(graph, full_check=True)
    g = graph.graph
    nodes = {n.name: n for n in g.node}
    assert [n.op_type for n in g.node] == ["shape_of", "reshape", "add", "split", "multiply"]
    assert list(nodes["reshape"].input) == ["x", "shape_of_out"]  # a shape computed at run time is an edge
    assert tensor_type(next(v for v in g.value_info if v.name == "shape_of_out")) == (TensorProto.INT64, [2])
    assert nodes["multiply"].input[0] == nodes["split"].output[2]
    assert sorted(numpy_helper.to_array(t).size for t in g.initializer) == [1, 6]
    assert [o.name for o in g.output] == [nodes["multiply"].output[0], *nodes["split"].output, "x"]


needs_resnet = pytest.mark.skipif(not os.path.exists(LIGHT_RESNET50), reason="onnx wheel without light_resnet50")


@pytest.fixture(scope="module")
def resnet50():
    model = load_onnx(LIGHT_RESNET50)
    mod = tvm_partition(model)
    return model, mod, export_graph(mod)


@needs_resnet
def test_light_resnet50_is_valid_and_complete(resnet50):
    _, mod, graph = resnet50
    onnx.checker.check_model(graph, full_check=True)
    assert len(graph.graph.node) == len(main_calls(mod))
    assert len(graph.graph.initializer) == len(ir_constants(mod))
    assert len({n.name for n in graph.graph.node}) == len(graph.graph.node)


@needs_resnet
def test_light_resnet50_every_conv_inside_exactly_one_fused_node(resnet50):
    model, _, graph = resnet50
    convs = [node_name(n, i) for i, n in enumerate(model.graph.node) if n.op_type == "Conv"]
    assert len(convs) == 53
    owners = {}
    for node in graph.graph.node:
        if node.domain == FUSED_DOMAIN:
            for source in attr(node, "onnx_nodes"):
                owners.setdefault(source, []).append(node.name)
    assert [conv for conv in convs if len(owners.get(conv, [])) != 1] == []


