"""split_to_slices: each part of R.split that is read becomes one strided_slice of the input."""

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from compiler.frontend import import_onnx
from compiler.passes.split_to_slices import split_to_slices
from relax_testing import assert_matches_onnxruntime, call_ops


def split_model(axis, sizes, outputs_read):
    """x [1, 6, 5, 7] split along `axis` (sizes, or equal parts when None); the parts named in
    `outputs_read` are graph outputs (the others are read by nothing)."""
    parts = [f"p{i}" for i in range(len(sizes) if sizes else 3)]
    inputs = ["x", "sizes"] if sizes else ["x"]
    inits = [numpy_helper.from_array(np.array(sizes, np.int64), "sizes")] if sizes else []
    attrs = {} if sizes else {"num_outputs": 3}
    node = helper.make_node("Split", inputs, parts, axis=axis, **attrs)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6, 5, 7])],
                              [helper.make_tensor_value_info(parts[i], TensorProto.FLOAT, None) for i in outputs_read],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    return model


@pytest.mark.parametrize("axis, sizes, read, slices", [
    (1, [2, 4], [0, 1], 2),          # channels, uneven
    (-1, [3, 1, 3], [0, 2], 2),      # last axis, negative, the middle part unread
    (2, [5], [0], 0),                # one part: the input itself
    (1, None, [0, 1, 2], 3),         # equal parts
])
def test_parts_become_slices_with_the_same_values(axis, sizes, read, slices):
    model = split_model(axis, sizes, read)
    mod = split_to_slices(import_onnx(model))
    ops = call_ops(mod)
    assert "relax.split" not in ops and ops.count("relax.strided_slice") == slices
    assert_matches_onnxruntime(model, mod)


def test_module_without_split_is_returned_unchanged():
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6, 5, 7])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    mod = import_onnx(model)
    assert split_to_slices(mod)["main"].same_as(mod["main"])
