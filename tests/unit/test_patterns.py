"""Fusion patterns + partition: which composite groups each family produces, and that they compute right.

Models come from tests/onnx_models.py through the real front half of the compiler
(import_onnx, then the graph pass pipeline, so BatchNorm is already folded); a direct
BlockBuilder module gives the structural before/expected test of a fused group.
Numerics: the partitioned module, compiled for llvm, against ONNX Runtime on the ONNX model.
"""

import numpy as np
import pytest
import tvm
from tvm import relax

import onnx_models as models
from compiler.frontend import import_onnx
from compiler.frontend.provenance import node_span, with_span
from compiler.partition import group_name, partition
from compiler.passes.pipeline import optimise
from compiler.patterns import FAMILIES, rows_for
from relax_testing import assert_matches_onnxruntime, run_relax

RTOL, ATOL = 1e-4, 1e-5


def partitioned(model, families=FAMILIES):
    return partition(optimise(import_onnx(model)), families)


def main_calls(mod) -> list[str]:
    """main's calls in order: a fused group as its pattern name, any other call as its op name."""
    names = []
    for block in mod["main"].body.blocks:
        for binding in block.bindings:
            value = binding.value
            if not isinstance(value, relax.Call):
                continue
            if isinstance(value.op, tvm.ir.GlobalVar):
                names.append(group_name(mod[value.op]) or value.op.name_hint)
            else:
                names.append(value.op.name)
    return names


def group_ops(mod, pattern) -> list[list[str]]:
    """For every group named `pattern`, the ops of its body in order."""
    return [[b.value.op.name for block in func.body.blocks for b in block.bindings]
            for func in mod.functions.values() if group_name(func) == pattern]


CASES = {
    # id: (model builder, groups and loose ops in main, in order)
    "conv_bias_bn_relu": (lambda: models.conv_bn_act(bias=True, activation="relu"), ["conv2d_bias_relu"]),
    "conv_nobias_bn_relu6": (lambda: models.conv_bn_act(bias=False, activation="relu6"), ["conv2d_bias_clip"]),
    "conv_bn": (lambda: models.conv_bn_act(activation=None), ["conv2d_bias"]),
    "residual_block": (models.residual_block, ["conv2d_bias_relu", "conv2d_bias_add_relu"]),
    "depthwise_block": (models.depthwise_block, ["depthwise_conv2d_bias_clip", "conv2d_bias_clip"]),
    "gemm_bias_relu": (lambda: models.dense_bias_relu("gemm"), ["dense_bias_relu"]),
    "matmul_bias_relu": (lambda: models.dense_bias_relu("matmul"), ["dense_bias_relu"]),
    "max_pool": (lambda: models.pooling("MaxPool"), ["relax.nn.relu", "max_pool2d"]),
    "avg_pool": (lambda: models.pooling("AveragePool"), ["relax.nn.relu", "avg_pool2d"]),
    "global_avg_pool": (lambda: models.pooling("GlobalAveragePool"), ["relax.nn.relu", "global_avg_pool2d"]),
    # negative: the conv+bias output also feeds the final Add, so it cannot be inside a conv+ReLU group;
    # relu(y) + y is then one function of y (the "unary" family: one int8 table)
    "outside_user": (models.conv_shared_output, ["conv2d_bias", "unary"]),
    # negative: an Add of a per-channel constant is a bias, never a residual
    "add_channel_const": (lambda: models.conv_add_const_relu((1, 8, 1, 1)), ["conv2d_bias_relu"]),
    # negative: an Add of a full-shape constant is neither a bias nor a residual
    "add_full_const": (lambda: models.conv_add_const_relu((1, 8, 8, 8)), ["conv2d", "relax.add", "relax.nn.relu"]),
    # negative: a (N, 1) constant added to a (N, N) matmul is per row, not a per-feature bias
    "matmul_row_const": (lambda: models.dense_bias_relu("matmul", batch=10, bias_shape=(10, 1)),
                         ["dense", "relax.add", "relax.nn.relu"]),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    build, groups = CASES[request.param]
    model = build()
    return model, partitioned(model), groups


def test_groups(case):
    model, mod, groups = case
    assert main_calls(mod) == groups


def test_matches_onnxruntime(case):
    model, mod, _ = case
    assert_matches_onnxruntime(model, mod, rtol=RTOL, atol=ATOL)


def test_group_bodies_spell_the_chain():
    mod = partitioned(models.residual_block())
    assert group_ops(mod, "conv2d_bias_add_relu") == [["relax.nn.conv2d", "relax.add", "relax.add", "relax.nn.relu"]]
    mod = partitioned(models.depthwise_block())
    assert group_ops(mod, "depthwise_conv2d_bias_clip") == [["relax.nn.conv2d", "relax.add", "relax.clip"]]
    (dw,) = [f for f in mod.functions.values() if group_name(f) == "depthwise_conv2d_bias_clip"]
    conv = dw.body.blocks[0].bindings[0].value
    assert int(conv.attrs.groups) == 8


def test_residual_shortcut_is_the_block_input():
    mod = partitioned(models.residual_block())
    main = mod["main"]
    (call,) = [b.value for b in main.body.blocks[0].bindings
               if isinstance(b.value, relax.Call) and group_name(mod[b.value.op]) == "conv2d_bias_add_relu"]
    assert any(arg.same_as(main.params[0]) for arg in call.args)


def test_families_restrict_the_groups():
    model = models.tiny_cnn()
    mod = optimise(import_onnx(model))
    only_pooling = main_calls(partition(mod, ["pooling"]))
    assert {"max_pool2d", "global_avg_pool2d"} <= set(only_pooling)
    assert not any(name.startswith(("conv2d", "depthwise", "dense")) for name in only_pooling)
    everything = main_calls(partition(mod, FAMILIES))
    assert everything == ["conv2d_bias_relu", "max_pool2d", "depthwise_conv2d_bias_clip", "conv2d_bias_clip",
                          "conv2d_bias_relu", "conv2d_bias_add_relu", "global_avg_pool2d", "relax.reshape",
                          "dense_bias", "relax.nn.softmax"]
    with pytest.raises(ValueError, match="unknown pattern families"):
        rows_for(["conv3d"])


# --- structural before/expected: a conv2d + bias + ReLU chain becomes one conv2d_bias_relu group ---

W = np.random.default_rng(0).uniform(-0.5, 0.5, (4, 3, 3, 3)).astype("float32")
B = np.random.default_rng(1).uniform(-1, 1, (1, 4, 1, 1)).astype("float32")
IN = (1, 3, 6, 6)
FUSED = "fused_relax_nn_conv2d_relax_add_relax_nn_relu"  # FuseOpsByPattern's name for the group


def _conv_bias_relu(bb, x):
    """conv2d + bias + ReLU, with the spans the ONNX import gives them (bias add from the Conv node)."""
    conv = bb.emit(with_span(relax.op.nn.conv2d(x, relax.const(W), padding=1), node_span("conv")))
    biased = bb.emit(with_span(relax.op.add(conv, relax.const(B)), node_span("conv")))
    return with_span(relax.op.nn.relu(biased), node_span("act"))


def conv_bias_relu_before():
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType(IN, "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            out = bb.emit_output(bb.emit(_conv_bias_relu(bb, x)))
        bb.emit_func_output(out)
    return bb.get()


def conv_bias_relu_expected():
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType(IN, "float32"))
    attrs = {"Composite": "conv2d_bias_relu", "Primitive": True, "onnx_nodes": "conv\nact"}
    with bb.function(FUSED, [x], attrs=attrs, private=True):
        with bb.dataflow():
            out = bb.emit_output(_conv_bias_relu(bb, x))
        bb.emit_func_output(out)
    fused = bb.get().get_global_var(FUSED)
    x = relax.Var("x", relax.TensorType(IN, "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            out = bb.emit_output(bb.emit(relax.Call(fused, [x])))
        bb.emit_func_output(out)
    return bb.get()


def test_conv2d_bias_relu_structure():
    before = conv_bias_relu_before()
    after = partition(before, ["conv2d"])
    tvm.ir.assert_structural_equal(after, conv_bias_relu_expected())
    x = np.random.default_rng(2).uniform(-1, 1, IN).astype("float32")
    np.testing.assert_allclose(run_relax(after, x), run_relax(before, x), rtol=RTOL, atol=ATOL)


def test_partition_does_not_mutate_input():
    before = conv_bias_relu_before()
    snapshot = before.script(show_meta=True)
    partition(before, FAMILIES)
    assert before.script(show_meta=True) == snapshot


def test_family_not_chosen_is_not_fused():
    before = conv_bias_relu_before()
    tvm.ir.assert_structural_equal(partition(before, ["dense", "pooling"]), before)
