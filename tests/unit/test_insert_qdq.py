"""Quantisation plan and QDQ insertion, each alone, on small models."""

import numpy as np
import tvm
from tvm import relax

from compiler.frontend.provenance import source_node
from compiler.passes.insert_qdq import insert_qdq, quantize_bias, quantize_weight
from compiler.passes.util import bindings, is_call_to, is_const
from compiler.quant.calibrate import tensor_ids
from compiler.quant.observers import activation_qparams
from compiler.quant.plan import QParams, plan_activations
from qdq_testing import int8_partitioned
from relax_testing import call_ops, run_relax


def test_quantize_weight_is_symmetric_per_output_channel():
    # rows are channels (axis 0); row 1 has max 127/128, so its scale is exactly 1/128
    weight = np.array([[1.0, -0.5], [127 / 128, 63.5 / 128]], np.float32)
    q, scales = quantize_weight(weight, axis=0)
    np.testing.assert_allclose(scales, [1 / 127, 1 / 128], rtol=1e-6)
    assert q.tolist() == [[127, -64], [127, 64]]  # -63.5 -> -64 and 63.5 -> 64: half away from zero


def test_quantize_bias_uses_input_times_weight_scale():
    q, scales = quantize_bias(np.array([0.5, -0.25], np.float32), 0.5, np.array([0.01, 0.1], np.float32))
    np.testing.assert_allclose(scales, [0.005, 0.05], rtol=1e-6)
    assert q.tolist() == [100, -5]


def test_plan_propagates_through_pooling_and_reshape(tiny):
    _, mod, ranges, plan = tiny
    ids = dict(tensor_ids(mod["main"], ["input"]))
    by_var = {var: tensor_id for tensor_id, var in ids.items()}
    for binding in bindings(mod["main"]):
        value = binding.value
        source = next((a for a in value.args if isinstance(a, relax.Var)), None) if isinstance(value, relax.Call) else None
        tensor_id = by_var.get(binding.var)
        if tensor_id is None:
            continue
        is_max_pool = isinstance(value.op, tvm.ir.GlobalVar) and "max_pool2d" in value.op.name_hint
        if is_max_pool or is_call_to(value, "relax.reshape"):
            assert plan[tensor_id] == plan[by_var[source]]
        elif is_call_to(value, "relax.nn.softmax"):  # TFLite's int8 softmax output
            assert plan[tensor_id] == QParams(1 / 256, -128)
        else:
            assert plan[tensor_id] == QParams(*activation_qparams(*ranges[tensor_id]))


def test_qdq_structure(tiny):
    _, mod, _, plan = tiny
    qmod = insert_qdq(mod, plan, ["input"])
    main = qmod["main"]
    convs = [b.value for b in bindings(main) if is_call_to(b.value, "relax.nn.conv2d")]
    assert len(convs) == 5
    values = {b.var: b.value for b in bindings(main)}
    for conv in convs:
        weight = values[conv.args[1]]
        assert is_call_to(weight, "relax.dequantize") and weight.args[0].value.numpy().dtype == np.int8
        assert np.abs(weight.args[0].value.numpy()).max() == 127  # symmetric, per channel: every channel hits 127
        assert weight.args[1].value.numpy().shape == (conv.args[1].ty.shape[0],)
        assert is_call_to(values[conv.args[0]], "relax.dequantize")
    ops = call_ops(main)
    for first, second in zip(ops, ops[1:]):
        assert (first, second) != ("relax.dequantize", "relax.quantize")
    assert not [gv for gv, func in qmod.functions.items() if isinstance(func, relax.Function) and gv.name_hint != "main"]


def test_qdq_numerics_close_to_float(tiny):
    model, mod, _, plan = tiny
    qmod = insert_qdq(mod, plan, ["input"])
    x = np.random.default_rng(9).uniform(-1, 1, (1, 3, 16, 16)).astype(np.float32)
    float_out, int8_out = run_relax(mod, x), run_relax(qmod, x)
    # softmax probabilities: int8 noise moves them by a few hundredths at most on this model
    assert np.abs(float_out - int8_out).max() < 0.05
    assert float_out.argmax() == int8_out.argmax()


def test_keep_float_leaves_the_named_group_in_float(tiny):
    _, mod, _, plan = tiny
    qmod = insert_qdq(mod, plan, ["input"], keep_float={"res_conv1"})
    calls = [b.value for b in bindings(qmod["main"]) if isinstance(b.value, relax.Call)]
    assert not [c for c in calls if isinstance(c.op, tvm.ir.GlobalVar)]  # inlined as plain float ops
    convs = {source_node(c): c for c in calls if is_call_to(c, "relax.nn.conv2d")}
    assert len(convs) == 5
    assert is_const(convs["res_conv1"].args[1]) and convs["res_conv1"].args[1].value.numpy().dtype == np.float32
    values = {b.var: b.value for b in bindings(qmod["main"])}
    assert all(is_call_to(values[c.args[1]], "relax.dequantize") for name, c in convs.items() if name != "res_conv1")


def test_concat_inputs_share_the_concat_parameters():
    """Two convs feeding only a concat get the concat's (scale, zero point): the int8 concat copies."""
    from onnx_models import GraphBuilder

    g = GraphBuilder(3)
    a = g.node("Relu", [g.conv("x", "conv_a", 3, 4)], "relu_a")
    b = g.conv("x", "conv_b", 3, 4)  # no ReLU: a wider, signed range
    y = g.node("Concat", [a, b], "concat", axis=1)
    model = g.model([("x", [1, 3, 6, 6])], y, [1, 8, 6, 6])
    mod = int8_partitioned(model)
    ids = {var: tensor_id for tensor_id, var in tensor_ids(mod["main"], ["x"])}
    ranges = {tensor_id: (-float(i), float(i + 1)) for i, tensor_id in enumerate(ids.values())}
    plan = plan_activations(mod, ranges, ["x"])
    concat_var = next(b.var for b in bindings(mod["main"]) if is_call_to(b.value, "relax.concat"))
    fields = next(b.value for b in bindings(mod["main"]) if b.var.same_as(concat_var)).args[0].fields
    members = [ids[concat_var]] + [ids[f] for f in fields]
    assert len({plan[m] for m in members}) == 1
    lo = min(ranges[m][0] for m in members)
    hi = max(ranges[m][1] for m in members)
    assert plan[ids[concat_var]] == QParams(*activation_qparams(lo, hi))


def _conv_pad_conv(value):
    from onnx_models import GraphBuilder

    g = GraphBuilder(4)
    pads = g.const("pads", np.array([0, 0, 1, 0, 0, 0, 0, 2], np.int64))
    y = g.node("Pad", [g.conv("x", "conv1", 3, 4), pads, g.const("pad_value", np.float32(value))], "pad",
               mode="constant")
    # the Relu keeps the pad a layer of its own (passes/fold_pad.py folds a zero pad read by a conv)
    model = g.model([("x", [1, 3, 6, 6])], g.conv(g.node("Relu", [y], "relu"), "conv2", 4, 2, pad=0), [1, 2, 5, 6])
    mod = int8_partitioned(model)
    ids = {var: tensor_id for tensor_id, var in tensor_ids(mod["main"], ["x"])}
    pad_var = next(b.var for b in bindings(mod["main"]) if is_call_to(b.value, "relax.nn.pad"))
    source = next(b.value for b in bindings(mod["main"]) if b.var.same_as(pad_var)).args[0]
    ranges = {tensor_id: (-1.0 - i, 2.0 + i) for i, tensor_id in enumerate(ids.values())}
    return mod, ids, ids[pad_var], ids[source], ranges


def _pads(qmod):
    values = {b.var: b.value for b in bindings(qmod["main"])}
    return values, [b for b in bindings(qmod["main"]) if is_call_to(b.value, "relax.nn.pad")]


def test_zero_pad_keeps_the_input_parameters_in_qdq_form():
    """pad(0.0) keeps its input's (scale, zero point) and is written dequantize -> pad(0.0) -> quantize
    (on the int8 tensor, R.nn.pad would pad with 0 instead of the zero point)."""
    mod, _, pad_id, source_id, ranges = _conv_pad_conv(0.0)
    plan = plan_activations(mod, ranges, ["x"])
    assert plan[pad_id] == plan[source_id] != QParams(*activation_qparams(*ranges[pad_id]))
    assert plan[source_id].zero_point != 0
    qmod = insert_qdq(mod, plan, ["x"])
    values, (pad,) = _pads(qmod)
    dequantized = values[pad.value.args[0]]
    assert is_call_to(dequantized, "relax.dequantize") and str(dequantized.args[0].ty.dtype) == "int8"
    assert float(dequantized.args[1].value.numpy()) == np.float32(plan[source_id].scale)
    assert int(dequantized.args[2].value.numpy()) == plan[source_id].zero_point
    (user,) = [b.value for b in bindings(qmod["main"]) if pad.var in list(getattr(b.value, "args", []))]
    assert is_call_to(user, "relax.quantize") and int(user.args[2].value.numpy()) == plan[source_id].zero_point
    assert float(user.args[1].value.numpy()) == np.float32(plan[source_id].scale)


def test_non_zero_pad_stays_float():
    """pad(0.5) gets parameters of its own and runs on the float tensor, even when they happen to
    equal its input's (an int8 pad would pad with the wrong value)."""
    mod, _, pad_id, source_id, ranges = _conv_pad_conv(0.5)
    plan = plan_activations(mod, ranges, ["x"])
    assert plan[pad_id] == QParams(*activation_qparams(*ranges[pad_id])) != plan[source_id]
    for forced in (plan, {**plan, pad_id: plan[source_id]}):
        values, (pad,) = _pads(insert_qdq(mod, forced, ["x"]))
        assert float(pad.value.attrs.pad_value) == 0.5
        assert str(pad.value.args[0].ty.dtype) == "float32" and str(pad.var.ty.dtype) == "float32"
