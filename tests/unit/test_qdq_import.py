"""Pre-quantised ONNX models import into the QDQ form (compiler/quant/qdq.py).

Models: ORT's quantize_static in QDQ and QOperator format (per-channel int8 weights, int8 or
uint8 activations), hand-built QLinearConv / ConvInteger / MatMulInteger models, ORT's
dynamic quantisation, and ONNX's own node cases for the quantised operators.

Numerics: the imported module runs on llvm (TVM legalises quantize/dequantize as fake
quantisation in float) against ONNX Runtime on the quantised model. Outputs of QDQ /
QLinear models are multiples of the output's quantisation step (the scale of the last
quantize), and may differ by at most one step: ORT runs fused integer kernels that
requantise with their own rounding, so a value near a rounding boundary can land one step
away. Integer outputs (ConvInteger / MatMulInteger) must be equal.
"""

import functools

import numpy as np
import pytest
from onnx import helper, numpy_helper
from tvm import relax

import onnx_models
import onnx_quantized as oq
from compiler.errors import CompilerError
from compiler.frontend import import_onnx
from compiler.frontend import onnx as frontend_onnx
from compiler.frontend import qlinear
from compiler.frontend.provenance import source_node
from compiler.passes.dead_code import eliminate_dead_code
from compiler.passes.util import bindings, bound_values, is_call_to, is_const
from relax_testing import call_ops, onnx_inputs, run_onnxruntime, run_relax


def imported(model):
    """import_onnx without the dead bindings (the uint8 producers a shifted consumer replaced)."""
    return eliminate_dead_code(import_onnx(model))


def integer_inputs(model, seed=1):
    rng = np.random.default_rng(seed)
    feeds = {}
    for value in frontend_onnx.graph_inputs(model):
        dtype = helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type)
        info = np.iinfo(dtype)
        shape = [d.dim_value for d in value.type.tensor_type.shape.dim]
        feeds[value.name] = rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)
    return feeds


def assert_within_one_step(model, mod, feeds=None):
    """Every output element within one quantisation step (the output's own scale) of ORT's."""
    feeds = onnx_inputs(model) if feeds is None else feeds
    want = run_onnxruntime(model, feeds)[0]
    got = run_relax(mod, *feeds.values())
    assert got.shape == want.shape and got.dtype == want.dtype
    if np.issubdtype(want.dtype, np.integer):  # quantised output: one step is 1
        step, got, want = 1, got.astype(np.int64), want.astype(np.int64)
    else:
        step = oq.output_scale(model)
    assert np.abs(got - want).max() <= step * (1 + 1e-5), f"max difference {np.abs(got - want).max()}, step {step}"


# -- the form --------------------------------------------------------------------------------

def _array(expr):
    return expr.value.numpy()


def assert_qdq_form(mod, symmetric_weights=True):
    """Every quantize/dequantize, conv and matmul of `main` is in the QDQ form (NCHW/OIHW).

    Activations: int8, per tensor (0-d float32 scale, 0-d int8 zero point, axis -1).
    Weights: dequantize(const int8) per channel along O (conv: axis 0; matmul [K, N]: axis 1)
    or per tensor (0-d scale), zero points 0. Biases: dequantize(const int32). Returns
    (number of weights, number of biases).
    """
    func = mod["main"]
    values = bound_values(func)
    weights = biases = 0
    for binding in bindings(func):
        call = binding.value
        for arg in getattr(call, "args", []):
            dtype = getattr(getattr(arg, "ty", None), "dtype", None)
            assert str(dtype) != "uint8", f"uint8 tensor left: {call}"
        if is_call_to(call, "relax.quantize") or (is_call_to(call, "relax.dequantize") and not is_const(call.args[0])):
            data, scale, zero_point = call.args
            assert is_const(scale) and _array(scale).shape == () and _array(scale).dtype == np.float32
            assert is_const(zero_point) and _array(zero_point).shape == () and _array(zero_point).dtype == np.int8
            assert int(call.attrs.axis) == -1
            quantised = call if call.op.name == "relax.quantize" else data
            assert str(quantised.ty.dtype) == "int8"
        elif is_call_to(call, "relax.dequantize"):
            data, scale, zero_point = (_array(arg) for arg in call.args)
            assert data.dtype in (np.int8, np.int32) and scale.dtype == np.float32 and zero_point.dtype == data.dtype
            if scale.ndim:
                assert scale.shape == zero_point.shape == (data.shape[int(call.attrs.axis)],)
            if data.dtype == np.int32:
                biases += 1
                assert not zero_point.any()
            elif symmetric_weights:
                assert not zero_point.any()
        elif is_call_to(call, "relax.nn.conv2d") or is_call_to(call, "relax.matmul"):
            data, weight = (values.get(arg, arg) for arg in call.args)
            assert is_call_to(data, "relax.dequantize") and not is_const(data.args[0]), f"activation not dequantized: {call}"
            assert is_call_to(weight, "relax.dequantize") and is_const(weight.args[0]), f"weight not int8 + dequantize: {call}"
            assert _array(weight.args[0]).dtype == np.int8
            if _array(weight.args[1]).ndim:
                assert int(weight.attrs.axis) == (0 if call.op.name == "relax.nn.conv2d" else 1)
            weights += 1
    return weights, biases


# -- ORT's quantize_static: QDQ ---------------------------------------------------------------

FLOAT_MODELS = {
    "conv_bn_act": (onnx_models.conv_bn_act, 1),
    "residual_block": (onnx_models.residual_block, 2),
    "depthwise_block": (onnx_models.depthwise_block, 2),
    "tiny_cnn": (onnx_models.tiny_cnn, 6),
    "gemm": (lambda: onnx_models.dense_bias_relu("gemm"), 1),
    "matmul_add": (lambda: onnx_models.dense_bias_relu("matmul"), 1),
}


@pytest.mark.parametrize("activation", ["int8", "uint8"])
@pytest.mark.parametrize("name", sorted(FLOAT_MODELS))
def test_ort_qdq_model_imports_into_the_form(name, activation):
    build, layers = FLOAT_MODELS[name]
    model = oq.quantize_ort(build(), "QDQ", activation=activation)
    mod = imported(model)
    assert assert_qdq_form(mod) == (layers, layers)  # one int8 weight and one int32 bias per conv / dense
    assert_within_one_step(model, mod)


def test_ort_qdq_weights_are_per_channel_and_biases_use_input_times_weight_scale():
    model = oq.quantize_ort(onnx_models.conv_bn_act(channels=(3, 8)), "QDQ")
    func = imported(model)["main"]
    values = bound_values(func)
    conv = next(b.value for b in bindings(func) if is_call_to(b.value, "relax.nn.conv2d"))
    data, weight = (values[arg] for arg in conv.args)
    assert _array(weight.args[0]).shape == (8, 3, 3, 3) and _array(weight.args[1]).shape == (8,)
    add = next(b.value for b in bindings(func) if is_call_to(b.value, "relax.add"))
    bias = values[values[add.args[1]].args[0]]  # add(conv, reshape(dequantize(B_q)))
    np.testing.assert_allclose(_array(bias.args[1]), _array(data.args[1]) * _array(weight.args[1]), rtol=1e-6)
    assert _array(bias.args[0]).dtype == np.int32


def test_gemm_with_transposed_quantised_weight_keeps_the_int8_constant():
    """Gemm transB=1 (every exported Linear): the transpose is done on the int8 constant."""
    model = oq.quantize_ort(onnx_models.dense_bias_relu("gemm", features=(16, 10)), "QDQ")
    mod = imported(model)
    assert "relax.permute_dims" not in call_ops(mod)
    weight = next(b.value for b in bindings(mod["main"])
                  if is_call_to(b.value, "relax.dequantize") and is_const(b.value.args[0]) and b.value.args[0].ty.ndim == 2)
    assert _array(weight.args[0]).shape == (16, 10) and int(weight.attrs.axis) == 1


# -- ORT's quantize_static: QOperator (QLinearConv, QLinearMatMul) -----------------------------

QOPERATOR_MODELS = {
    "conv_bn_act": (onnx_models.conv_bn_act, 1),
    "depthwise_block": (onnx_models.depthwise_block, 2),
    "conv_pool_conv": (oq.conv_pool_conv, 2),
    "matmul_relu": (oq.matmul_relu, 1),
}


@pytest.mark.parametrize("activation", ["uint8", "int8"])
@pytest.mark.parametrize("name", sorted(QOPERATOR_MODELS))
def test_ort_qoperator_model_imports_into_the_form(name, activation):
    build, layers = QOPERATOR_MODELS[name]
    model = oq.quantize_ort(build(), "QOperator", activation=activation)
    assert {node.op_type for node in model.graph.node} & {"QLinearConv", "QLinearMatMul"}
    mod = imported(model)
    weights, _ = assert_qdq_form(mod)  # no uint8 left: the shift happened at every consumer
    assert weights == layers
    assert "relax.astype" not in call_ops(mod)  # every shift folded into a quantize
    assert_within_one_step(model, mod)


def test_uint8_max_pool_between_qlinear_convs_runs_on_int8():
    model = oq.quantize_ort(oq.conv_pool_conv(), "QOperator", activation="uint8")
    func = imported(model)["main"]
    pool = next(b.value for b in bindings(func) if is_call_to(b.value, "relax.nn.max_pool2d"))
    assert str(pool.ty.dtype) == "int8"


# -- hand-built QLinearConv -------------------------------------------------------------------

@pytest.mark.parametrize("variant", [
    dict(),                                             # uint8 x/y, int8 per-channel weights, bias
    dict(x_dtype="int8"),
    dict(per_channel=False),                            # per-tensor weight: 0-d scale
    dict(group=2, bias=False),
    dict(auto_pad="SAME_UPPER", stride=2),
    dict(auto_pad="SAME_LOWER", stride=2, size=8),
    dict(auto_pad="VALID"),
], ids=lambda v: ",".join(f"{k}={x}" for k, x in v.items()) or "default")
def test_qlinear_conv(variant):
    model = oq.qlinear_conv(**variant)
    mod = imported(model)
    assert assert_qdq_form(mod) == (1, 0 if variant.get("bias") is False else 1)
    bias = [] if variant.get("bias") is False else ["relax.dequantize", "relax.add"]
    assert call_ops(mod) == ["relax.quantize", "relax.dequantize", "relax.dequantize", "relax.nn.conv2d"] + bias + \
        ["relax.quantize", "relax.dequantize"]
    assert_within_one_step(model, mod)
    # a uint8 x: the int8 quantize that replaces quant_x's is emitted (and attributed) at qconv
    sources = {source_node(b.value) for b in bindings(mod["main"]) if isinstance(b.value, relax.Call)}
    assert "qconv" in sources <= {"quant_x", "qconv", "dequant_y"}


def test_qlinear_conv_bias_is_int32_with_input_times_weight_scale():
    model = oq.qlinear_conv(x_dtype="uint8")
    inits = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    func = imported(model)["main"]
    bias = next(b.value for b in bindings(func) if is_call_to(b.value, "relax.dequantize")
                and is_const(b.value.args[0]) and _array(b.value.args[0]).dtype == np.int32)
    np.testing.assert_array_equal(_array(bias.args[0]), inits["b"].reshape(1, -1, 1, 1))
    np.testing.assert_allclose(_array(bias.args[1]), inits["x_scale"] * inits["w_scale"], rtol=1e-7)
    assert int(bias.attrs.axis) == 1


def test_uint8_weights_are_shifted_to_int8_and_keep_their_zero_point():
    """uint8 weights with zero point 131: exact as int8 with zero point 3 (asymmetric, outside the
    symmetric-weight form that the INT8 kernels take, so left to the host)."""
    model = oq.qlinear_conv(w_dtype="uint8")
    mod = imported(model)
    assert_qdq_form(mod, symmetric_weights=False)
    weight = next(b.value for b in bindings(mod["main"]) if is_call_to(b.value, "relax.dequantize")
                  and is_const(b.value.args[0]) and _array(b.value.args[0]).dtype == np.int8)
    assert (_array(weight.args[2]) == 3).all()
    assert_within_one_step(model, mod)


@pytest.mark.parametrize("dtype", ["uint8", "int8"])
def test_qlinear_conv_with_quantised_graph_input_and_output(dtype):
    """A uint8 graph input is shifted by an explicit cast-and-subtract; the output keeps its ONNX dtype."""
    model = oq.qlinear_conv(x_dtype=dtype, quantised_io=True)
    mod = imported(model)
    shift = ["relax.astype", "relax.subtract", "relax.astype"] if dtype == "uint8" else []
    assert call_ops(mod)[:len(shift) + 1] == shift + ["relax.dequantize"]
    assert str(mod["main"].ret_ty.dtype) == dtype
    assert_within_one_step(model, mod, integer_inputs(model))


@pytest.mark.parametrize("scale_out, integer", [(0.05, True), (0.04, False)])
def test_int8_to_uint8_at_the_same_scale_is_an_integer_shift(scale_out, integer):
    """DequantizeLinear(int8) -> QuantizeLinear(uint8) at the same scale (TFLite's QUANTIZE at a
    uint8 model's output) is x - zp + zp_u8 clipped, in integers; another scale keeps the float
    quantize. Every int8 value equals ONNX Runtime's result."""
    nodes = [helper.make_node("DequantizeLinear", ["x", "s", "zp"], ["f"]),
             helper.make_node("QuantizeLinear", ["f", "s_out", "zp_out"], ["y"])]
    constants = [numpy_helper.from_array(np.array(v, dtype), name) for v, dtype, name in [
        (0.05, np.float32, "s"), (-3, np.int8, "zp"), (scale_out, np.float32, "s_out"), (250, np.uint8, "zp_out")]]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", 3, [256])],
                              [helper.make_tensor_value_info("y", 2, [256])], constants)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    mod = imported(model)
    assert ("relax.quantize" not in call_ops(mod)) == integer
    x = np.arange(-128, 128, dtype=np.int8)
    np.testing.assert_array_equal(run_relax(mod, x), run_onnxruntime(model, {"x": x})[0])


# -- ConvInteger / MatMulInteger ----------------------------------------------------------------

UNIT_SCALE_FORM = ["relax.dequantize", "relax.dequantize"]


@pytest.mark.parametrize("make, kwargs, form", [
    (oq.conv_integer, dict(), True),
    (oq.conv_integer, dict(x_dtype="int8", w_dtype="int8"), True),
    (oq.conv_integer, dict(x_dtype="uint8", w_dtype="int8"), True),
    (oq.conv_integer, dict(channels=(256, 2), size=4), False),   # partial sums beyond 2**24: int32 conv
    (oq.matmul_integer, dict(), True),
    (oq.matmul_integer, dict(a_dtype="int8"), True),
    (oq.matmul_integer, dict(b_dtype="uint8"), True),
    (oq.matmul_integer, dict(features=(2400, 3)), False),
], ids=lambda v: str(v) if isinstance(v, dict) else getattr(v, "__name__", str(v)))
def test_integer_ops_are_exact(make, kwargs, form):
    model = make(**kwargs)
    mod = imported(model)
    ops = call_ops(mod)
    assert (ops[:2] == UNIT_SCALE_FORM and ops[-1] == "relax.astype") == form, ops
    feeds = integer_inputs(model)
    got, want = run_relax(mod, *feeds.values()), run_onnxruntime(model, feeds)[0]
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, want)


def test_conv_integer_unit_scale_form_equals_the_integer_path(monkeypatch):
    """Per-channel weight zero points (ORT cannot run them): both lowerings give the same int32."""
    model = oq.conv_integer(w_zero_per_channel=True, w_range=40)
    feeds = integer_inputs(model)
    form = imported(model)
    monkeypatch.setattr(qlinear, "_EXACT_FLOAT32", 0)
    integer = imported(model)
    assert call_ops(form)[:2] == UNIT_SCALE_FORM and call_ops(integer)[-1] == "relax.nn.conv2d"
    np.testing.assert_array_equal(run_relax(form, *feeds.values()), run_relax(integer, *feeds.values()))


@pytest.mark.parametrize("build", [onnx_models.conv_bn_act, oq.matmul_relu], ids=["conv", "matmul"])
def test_ort_dynamic_quantisation(build):
    """DynamicQuantizeLinear (TVM's converter) + ConvInteger / MatMulInteger (runtime zero point: int32 path)."""
    model = oq.quantize_dynamic_ort(build())
    assert {node.op_type for node in model.graph.node} & {"ConvInteger", "MatMulInteger"}
    feeds = onnx_inputs(model)
    np.testing.assert_allclose(run_relax(imported(model), *feeds.values()), run_onnxruntime(model, feeds)[0],
                               rtol=1e-5, atol=1e-5)


# -- what is rejected --------------------------------------------------------------------------

def _non_constant_weight():
    model = oq.qlinear_conv(x_dtype="int8")
    weight = next(init for init in model.graph.initializer if init.name == "w")
    model.graph.initializer.remove(weight)
    model.graph.input.append(helper.make_tensor_value_info("w", weight.data_type, list(weight.dims)))
    return model


@pytest.mark.parametrize("build, node, problem", [
    (lambda: oq.qdq_conv(activation="int16"), "quant_x", "int16 output quantisation is not supported"),
    (lambda: oq.qdq_conv(per_channel_activation=True), "quant_x",
     "per-channel quantisation of the input (scale shape [3], axis 1) is not supported"),
    (_non_constant_weight, "qconv", "the weight must be a constant"),
], ids=["int16", "per-channel-activation", "non-constant-weight"])
def test_unsupported_quantisation_is_one_line_naming_the_node(build, node, problem):
    with pytest.raises(CompilerError) as error:
        import_onnx(build())
    message = str(error.value)
    assert "\n" not in message and f"node {node!r}" in message and problem in message, message


# -- ONNX's own node cases -----------------------------------------------------------------------

@functools.cache
def _onnx_node_cases():
    """ONNX's node test cases for the quantised ops, generated by running their export functions
    (the wheel ships the generators, not the data) into a fresh list."""
    import importlib
    import inspect

    import onnx.backend.test.case.node as node_cases
    from onnx.backend.test.case.base import Base

    modules = [importlib.import_module(f"onnx.backend.test.case.node.{name}") for name in
               ("quantizelinear", "dequantizelinear", "qlinearconv", "qlinearmatmul", "convinteger", "matmulinteger")]
    saved = node_cases._NodeTestCases, node_cases._existing_names, node_cases._TargetOpType
    node_cases._NodeTestCases, node_cases._existing_names, node_cases._TargetOpType = [], {}, None
    try:
        for module in modules:
            for cls in vars(module).values():
                if inspect.isclass(cls) and issubclass(cls, Base) and cls is not Base:
                    for attr in [a for a in vars(cls) if a.startswith("export")]:
                        np.random.seed(0)
                        getattr(cls, attr)()
        return {case.name: case for case in node_cases._NodeTestCases}
    finally:
        node_cases._NodeTestCases, node_cases._existing_names, node_cases._TargetOpType = saved


SUPPORTED_NODE_CASES = ["test_quantizelinear", "test_dequantizelinear", "test_qlinearconv",
                        "test_qlinearmatmul_2D_uint8_float32", "test_qlinearmatmul_2D_int8_float32",
                        "test_convinteger_with_padding", "test_convinteger_without_padding", "test_matmulinteger"]


@pytest.mark.parametrize("name", SUPPORTED_NODE_CASES)
def test_onnx_node_case_is_exact(name):
    """The case's model with every input after the first made a constant, as real models have it."""
    case = _onnx_node_cases()[name]
    inputs, outputs = case.data_sets[0]
    graph = case.model.graph
    constants = [numpy_helper.from_array(np.asarray(value), info.name) for info, value in zip(graph.input[1:], inputs[1:])]
    model = helper.make_model(helper.make_graph(graph.node, graph.name, graph.input[:1], graph.output, constants),
                              opset_imports=case.model.opset_import)
    model.ir_version = 10
    got = run_relax(import_onnx(model), inputs[0])
    assert got.dtype == outputs[0].dtype
    np.testing.assert_array_equal(got, outputs[0])
