"""passes/group_unary.py alone: elementwise functions of one tensor become one "unary" group,
however the exporter spelled them; anything that is not such a function stays as it was."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from tvm import relax

from compiler.frontend.onnx import import_onnx
from compiler.partition import group_name
from compiler.passes.group_unary import group_unary
from compiler.quant.unary_function import evaluate


def model(nodes, inputs=("x",), inits=()):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 4, 3, 3]) for n in inputs],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 3, 3])], list(inits))
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 10
    return import_onnx(m)


def groups(mod):
    return {gv.name_hint: func for gv, func in mod.functions.items() if group_name(func) == "unary"}


def ops(func):
    return [b.value.op.name for block in func.body.blocks for b in block.bindings if isinstance(b.value, relax.Call)]


def const(name, value):
    return onnx.numpy_helper.from_array(np.array(value, dtype=np.float32), name)


SPELLINGS = {  # name -> (nodes, initializers, the float function)
    "HardSwish op": ([helper.make_node("HardSwish", ["x"], ["y"])], [], lambda x: x * np.clip(x + 3, 0, 6) / 6),
    "hard-swish spelled out": ([helper.make_node("Add", ["x", "three"], ["a"]),
                                helper.make_node("Clip", ["a", "zero", "six"], ["c"]),
                                helper.make_node("Mul", ["x", "c"], ["m"]), helper.make_node("Div", ["m", "six"], ["y"])],
                               [const("three", 3), const("zero", 0), const("six", 6)],
                               lambda x: x * np.clip(x + 3, 0, 6) / 6),
    "SiLU": ([helper.make_node("Sigmoid", ["x"], ["s"]), helper.make_node("Mul", ["x", "s"], ["y"])], [],
             lambda x: x / (1 + np.exp(-x))),
    "HardSigmoid": ([helper.make_node("HardSigmoid", ["x"], ["y"], alpha=0.25, beta=0.5)], [],
                    lambda x: np.clip(0.25 * x + 0.5, 0, 1)),
    "LeakyRelu then Tanh": ([helper.make_node("LeakyRelu", ["x"], ["l"], alpha=0.2), helper.make_node("Tanh", ["l"], ["y"])],
                            [], lambda x: np.tanh(np.where(x >= 0, x, 0.2 * x))),
}


@pytest.mark.parametrize("name", SPELLINGS)
def test_each_spelling_is_one_group_computing_the_function(name):
    nodes, inits, function = SPELLINGS[name]
    grouped = group_unary(model(nodes, inits=inits))
    (func,) = groups(grouped).values()
    calls = [b.value for block in grouped["main"].body.blocks for b in block.bindings if isinstance(b.value, relax.Call)]
    assert len(calls) == 1  # main calls the group and nothing else
    x = np.linspace(-8, 8, 101)
    np.testing.assert_allclose(evaluate(func)(x), function(x), rtol=1e-6, atol=1e-6)


def test_a_lone_relu_is_left_to_the_int8_relu():
    assert not groups(group_unary(model([helper.make_node("Relu", ["x"], ["y"])])))


def test_two_tensors_are_not_a_function_of_one():
    mod = model([helper.make_node("Sigmoid", ["x"], ["s"]), helper.make_node("Mul", ["x2", "s"], ["y"])],
                inputs=("x", "x2"))
    grouped = group_unary(mod)
    (func,) = groups(grouped).values()  # the sigmoid alone; the product of two tensors stays
    assert ops(func) == ["relax.sigmoid"]


def test_an_intermediate_read_elsewhere_keeps_the_region_apart():
    mod = model([helper.make_node("Sigmoid", ["x"], ["s"]), helper.make_node("Tanh", ["s"], ["t"]),
                 helper.make_node("Add", ["s", "t"], ["u"]), helper.make_node("Mul", ["u", "x2"], ["y"])],
                inputs=("x", "x2"))
    # s, t and u are all functions of x, and only u leaves: one group of three ops
    (func,) = groups(group_unary(mod)).values()
    assert ops(func) == ["relax.sigmoid", "relax.tanh", "relax.add"]


def test_a_broadcast_constant_is_not_scalar():
    mod = model([helper.make_node("Mul", ["x", "scale"], ["m"]), helper.make_node("Sigmoid", ["m"], ["y"])],
                inits=[const("scale", np.ones((1, 4, 1, 1)))])
    (func,) = groups(group_unary(mod)).values()
    assert ops(func) == ["relax.sigmoid"]
