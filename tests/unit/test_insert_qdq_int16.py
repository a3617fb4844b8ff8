"""insert_qdq with layers raised to TFLite's 16x8 scheme (int16_layers), on tiny_cnn: where the int16
tensors are, what is widened and narrowed, and the layers it leaves int8."""

import dataclasses

import numpy as np
from tvm import relax

from compiler.passes.insert_qdq import insert_qdq
from compiler.passes.util import bindings, is_call_to
from compiler.quant.calibrate import tensor_ids
from compiler.quant.plan import QParams, int16_qparams, plan_int16
from relax_testing import run_relax

RAISED = frozenset({"dw_conv", "pw_conv"})  # maxpool -> depthwise -> pointwise -> (res_conv1, res_add)


def _quantizes(main, dtype):
    return [b for b in bindings(main) if is_call_to(b.value, "relax.quantize") and str(b.value.attrs.out_dtype) == dtype]


def _producer(main):
    return {b.var: b.value for b in bindings(main)}


def test_int16_plan_is_symmetric_over_the_larger_end():
    assert int16_qparams(-0.5, 3.0) == QParams(float(np.float32(3.0 / 32767)), 0)
    assert int16_qparams(-4.0, 1.0).scale == np.float32(4.0 / 32767)
    assert int16_qparams(0.0, 0.0).scale == np.float32(1 / 32767)  # always zero: any positive scale


def test_raised_layers_pass_int16_between_them_and_convert_at_the_ends(tiny):
    _, mod, ranges, plan = tiny
    main = insert_qdq(mod, plan, ["input"], int16_layers=RAISED, plan16=plan_int16(ranges))["main"]
    values = _producer(main)
    wide = _quantizes(main, "int16")
    # three quantize to int16: the depthwise input widened from the pool's int8, and each raised layer's output
    widened = [b for b in wide if is_call_to(values.get(b.value.args[0]), "relax.dequantize")]
    assert len(wide) == 3 and len(widened) == 1
    source = values[widened[0].value.args[0]].args[0]
    assert str(source.ty.dtype) == "int8" and is_call_to(values[values[source].args[0]], "relax.nn.max_pool2d")
    # each conv reads dequantize(quantize(...)): the pointwise one the depthwise's int16 output itself (its
    # ReLU6 quantized straight to int16: no int8 tensor between the raised layers)
    convs = [b.value for b in bindings(main) if is_call_to(b.value, "relax.nn.conv2d")]
    reads = [values[conv.args[0]].args[0] for conv in convs]  # what each conv's dequantize reads
    assert [str(x.ty.dtype) for x in reads] == ["int8", "int16", "int16", "int8", "int8"]
    assert is_call_to(values[values[reads[2]].args[0]], "relax.clip")
    # the pointwise output is narrowed once to int8 for its two int8 readers (res_conv1 and res_add)
    narrowed = [b for b in _quantizes(main, "int8") if is_call_to(values.get(b.value.args[0]), "relax.dequantize")
                and str(values[b.value.args[0]].args[0].ty.dtype) == "int16"]
    assert len(narrowed) == 1


def test_raised_layers_are_closer_to_float(tiny):
    """The QDQ graph evaluated in float by TVM: with the two layers in int16 the output moves towards the
    float model's (the rest is still int8, so it does not reach it)."""
    _, mod, ranges, plan = tiny
    x = np.random.default_rng(5).uniform(-1, 1, (1, 3, 16, 16)).astype(np.float32)
    want = run_relax(mod, x)
    err = {}
    for name, raised in (("int8", frozenset()), ("int16", RAISED)):
        got = run_relax(insert_qdq(mod, plan, ["input"], int16_layers=raised, plan16=plan_int16(ranges)), x)
        err[name] = float(np.abs(got - want).max())
    assert err["int16"] < err["int8"], err


def test_a_bias_too_wide_for_int32_leaves_the_layer_int8(tiny):
    """An int16 input scale so fine that the depthwise bias at s_in * s_w needs more than 32 bits: that layer
    stays int8; the pointwise conv after it is still raised (its input widened from int8)."""
    _, mod, ranges, plan = tiny
    ids = dict((var, tensor_id) for tensor_id, var in tensor_ids(mod["main"], ["input"]))
    pooled = next(ids[b.var] for b in bindings(mod["main"]) if "max_pool2d" in str(b.value.op))
    plan16 = plan_int16(ranges)
    plan16[pooled] = dataclasses.replace(plan16[pooled], scale=1e-12)
    main = insert_qdq(mod, plan, ["input"], int16_layers=RAISED, plan16=plan16)["main"]
    convs = [b.value for b in bindings(main) if is_call_to(b.value, "relax.nn.conv2d")]
    values = _producer(main)
    inputs = [str(values[conv.args[0]].args[0].ty.dtype) for conv in convs]  # what each conv's dequantize reads
    assert inputs[:3] == ["int8", "int8", "int16"], inputs  # stem, depthwise (left int8), pointwise (raised)
    assert isinstance(convs[1].args[0], relax.Var)
