"""to_nhwc: the convolutional part of a graph in NHWC, with permutes only at its edges."""

import numpy as np
import onnx
import pytest
import tvm
from tvm import relax

import edge_ops_models
import onnx_models
from compiler.frontend import import_onnx
from compiler.passes.fold_constants import fold_constants
from compiler.passes.fold_transposes import fold_transposes
from compiler.passes.pipeline import optimise
from compiler.passes.to_nhwc import to_nhwc
from relax_testing import assert_matches_onnxruntime, assert_ir_close, call_ops


def optimised(model):
    return optimise(import_onnx(model))


@pytest.mark.parametrize("build, permutes", [
    (onnx_models.tiny_cnn, 2),         # the input, and the NCHW view Flatten needs
    (onnx_models.residual_block, 2),   # the input and the output
    (onnx_models.depthwise_block, 2),
    (lambda: onnx_models.conv_bn_act(activation="relu6"), 2),
])
def test_numerics_unchanged_and_permutes_only_at_edges(build, permutes):
    model = build()
    mod = fold_constants(to_nhwc(optimised(model)))
    assert call_ops(mod).count("relax.permute_dims") == permutes
    assert all(call.attrs.data_layout == "NHWC" for call in _convs(mod))
    assert_matches_onnxruntime(model, mod)


def _convs(mod):
    found = []
    relax.analysis.post_order_visit(mod["main"], lambda e: found.append(e) if isinstance(e, relax.Call) and getattr(e.op, "name", "") == "relax.nn.conv2d" else None)
    return found


def _conv_bias_relu6(layout, weight, bias):
    x = relax.Var("x", relax.TensorType((1, 3, 6, 6), "float32"))
    bb = relax.BlockBuilder()
    with bb.function("main", [x]):
        with bb.dataflow():
            if layout == "NCHW":
                conv = bb.emit(relax.op.nn.conv2d(x, relax.const(weight), padding=1))
                out = bb.emit(relax.op.clip(bb.emit(relax.op.add(conv, relax.const(bias))), 0.0, 6.0))
            else:
                data = bb.emit(relax.op.permute_dims(x, [0, 2, 3, 1]))
                conv = bb.emit(relax.op.nn.conv2d(data, relax.const(weight.transpose(0, 2, 3, 1)), padding=1,
                                                  data_layout="NHWC", kernel_layout="OHWI", out_layout="NHWC"))
                added = bb.emit(relax.op.add(conv, relax.const(bias.reshape(1, 1, 1, -1))))
                out = bb.emit(relax.op.clip(added, 0.0, 6.0))
            if layout == "NHWC":  # the NCHW view is made where the output alias uses it
                out = bb.emit(relax.op.permute_dims(out, [0, 3, 1, 2]))
            result = bb.emit_output(out)
        bb.emit_func_output(result)
    return bb.get()


def test_structure_of_conv_bias_relu6():
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    bias = rng.standard_normal((1, 4, 1, 1)).astype(np.float32)
    before = _conv_bias_relu6("NCHW", weight, bias)
    assert_ir_close(to_nhwc(before), _conv_bias_relu6("NHWC", weight, bias))


def test_input_module_untouched_and_conv_free_module_unchanged():
    model = onnx_models.conv_bn_act()
    before = optimised(model)
    snapshot = before.script()
    to_nhwc(before)
    assert before.script() == snapshot
    x = relax.Var("x", relax.TensorType((2, 3), "float32"))
    bb = relax.BlockBuilder()
    with bb.function("main", [x]):
        with bb.dataflow():
            out = bb.emit_output(relax.op.nn.relu(x))
        bb.emit_func_output(out)
    plain = bb.get()
    tvm.ir.assert_structural_equal(to_nhwc(plain), plain)


def conv_pad_conv(pads, value=None, seed=0):
    """x -> Conv -> Pad(constant, ONNX pads [n0, c0, h0, w0, n1, c1, h1, w1], value) -> Conv (no padding)."""
    g = onnx_models.GraphBuilder(seed)
    inputs = [g.conv("x", "conv1", 3, 6), g.const("pads", np.array(pads, np.int64))]
    if value is not None:
        inputs.append(g.const("pad_value", np.float32(value)))
    y = g.node("Pad", inputs, "pad", mode="constant")
    channels, h, w = 6 + pads[1] + pads[5], 7 + pads[2] + pads[6], 7 + pads[3] + pads[7]
    y = g.conv(y, "conv2", channels, 4, pad=0)
    return g.model([("x", [1, 3, 7, 7])], y, [1, 4, h - 2, w - 2])


@pytest.mark.parametrize("value", [None, 0.0, 0.75])
def test_pad_between_convs_stays_nhwc(value):
    """The pad_width pairs are reordered N, C, H, W -> N, H, W, C; only the input and output are permuted."""
    model = conv_pad_conv([0, 1, 1, 2, 0, 2, 3, 0], value)
    mod = fold_constants(to_nhwc(optimised(model)))
    assert call_ops(mod).count("relax.permute_dims") == 2
    (pad,) = [b.value for block in mod["main"].body.blocks for b in block.bindings
              if isinstance(b.value, relax.Call) and getattr(b.value.op, "name", "") == "relax.nn.pad"]
    assert [int(w) for w in pad.attrs.pad_width] == [0, 0, 1, 3, 2, 0, 1, 2]
    assert float(pad.attrs.pad_value) == (value or 0.0)
    assert tuple(int(d) for d in pad.ty.shape) == (1, 11, 9, 9)
    assert_matches_onnxruntime(model, mod)


def test_pad_of_an_nchw_tensor_is_left_alone():
    """A pad whose input is not NHWC (here the model input) keeps its NCHW pad_width."""
    g = onnx_models.GraphBuilder(1)
    y = g.node("Pad", ["x", g.const("pads", np.array([0, 0, 1, 0, 0, 0, 0, 1], np.int64))], "pad", mode="constant")
    y = g.conv(g.node("Relu", [y], "relu"), "conv", 3, 4, pad=0)  # the Relu: not folded into the conv (fold_pad)
    model = g.model([("x", [1, 3, 6, 6])], y, [1, 4, 5, 5])
    mod = fold_constants(to_nhwc(optimised(model)))
    (pad,) = [b.value for block in mod["main"].body.blocks for b in block.bindings
              if isinstance(b.value, relax.Call) and getattr(b.value.op, "name", "") == "relax.nn.pad"]
    assert [int(w) for w in pad.attrs.pad_width] == [0, 0, 0, 0, 1, 0, 0, 1]
    assert call_ops(mod).count("relax.permute_dims") == 2
    assert_matches_onnxruntime(model, mod)


@pytest.mark.parametrize("mode, pads", [("reflect", [0, 0, 1, 1, 0, 0, 1, 1]), ("constant", [0, 0, -1, 0, 0, 0, 1, -1])])
def test_pads_without_relax_pad_keep_the_stock_lowering(mode, pads):
    """Only a constant pad with non-negative widths imports as R.nn.pad; reflect pads and crops stay
    TVM's call_tir and are bracketed by permutes, numerics unchanged."""
    g = onnx_models.GraphBuilder(2)
    y = g.node("Pad", [g.conv("x", "conv1", 3, 4), g.const("pads", np.array(pads, np.int64))], "pad", mode=mode)
    h, w = 6 + pads[2] + pads[6], 6 + pads[3] + pads[7]
    model = g.model([("x", [1, 3, 6, 6])], g.conv(y, "conv2", 4, 2), [1, 2, h, w])
    mod = fold_constants(to_nhwc(optimised(model)))
    assert "relax.nn.pad" not in call_ops(mod)
    assert call_ops(mod).count("relax.permute_dims") == 4  # the input, both sides of the pad, the output
    assert_matches_onnxruntime(model, mod)


def test_opset10_pad_attributes_import_as_relax_pad():
    """Pad-2 (opsets 2 to 10) takes pads and value as attributes."""
    g = onnx_models.GraphBuilder(3)
    y = g.node("Pad", [g.conv("x", "conv1", 3, 4)], "pad", mode="constant", pads=[0, 0, 2, 1, 0, 1, 0, 1], value=-0.5)
    y = g.conv(y, "conv2", 5, 2)
    graph = onnx.helper.make_graph(g.nodes, "pad10", [onnx.helper.make_tensor_value_info("x", 1, [1, 3, 6, 6])],
                                   [onnx.helper.make_tensor_value_info(y, 1, [1, 2, 8, 8])], g.initializers)
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 10)])
    model.ir_version = 10
    onnx.checker.check_model(model)
    mod = fold_constants(to_nhwc(optimised(model)))
    assert "relax.nn.pad" in call_ops(mod) and call_ops(mod).count("relax.permute_dims") == 2
    assert_matches_onnxruntime(model, mod)


@pytest.mark.parametrize("op", edge_ops_models.OPS)
def test_edge_ops_stay_nhwc(op):
    """PReLU (slope axis 1 -> 3), Resize (layout NHWC), Slice and Split's parts (axes renumbered) carry
    the layout: the only permute is the input's; DepthToSpace's reshape -> transpose -> reshape comes
    back to NHWC (one more permute, its NCHW view and the way back folded in by fold_transposes), so
    the ReLU and the pool after it run in NHWC."""
    model = edge_ops_models.conv_op_conv_model(op)
    mod = fold_constants(fold_transposes(to_nhwc(optimised(model))))
    expected = 2 if op.startswith("DepthToSpace") else 1
    assert call_ops(mod).count("relax.permute_dims") == expected
    assert "relax.split" not in call_ops(mod)
    means = [call for call in _calls(mod) if call.op.name == "relax.mean"]
    assert means and all([int(a) for a in call.attrs.axis] == [1, 2] for call in means)  # H and W of NHWC
    assert_matches_onnxruntime(model, mod)


def _calls(mod):
    found = []
    relax.analysis.post_order_visit(mod["main"], lambda e: found.append(e) if isinstance(e, relax.Call)
                                    and isinstance(e.op, tvm.ir.Op) else None)
    return found
