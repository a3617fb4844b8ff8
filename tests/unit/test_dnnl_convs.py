"""Host float convolutions and dense layers on oneDNN (compiler/codegen/dnnl.py): which groups are offloaded, that
the generated C computes what ONNX Runtime does, and what happens without the library.

The numerics tolerance: oneDNN sums in another order than ONNX Runtime's MLAS and uses FMA, so
float32 results differ by rounding: |ours - ort| <= 1e-4 * (1 + |ort|) on outputs of magnitude ~1-10.
"""

import json
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import tvm
from tvm import relax

from compiler.codegen import dnnl
from compiler.compile_model import compile_model
from compiler.partition import group_name, partition
from compiler.passes.fold_constants import fold_constants
from compiler.passes.fold_transposes import fold_transposes
from compiler.passes.pipeline import optimise
from compiler.passes.to_nhwc import to_nhwc
from compiler.frontend import import_onnx
from compiler.quant.calibrate import instrumented
from compiler.report.summary import layers
from compiler.targets import get_target
from onnx_models import GraphBuilder
from relax_testing import run_relax, tvm_partition



def convs_model(seed=0):
    """Every kind of group the offload takes: stride 2 with asymmetric padding, a depthwise with
    dilation, a grouped (not depthwise) conv, a residual add + ReLU, ReLU6, a conv without bias,
    and a dense layer with bias and ReLU (after a global pool, which stays in TVM)."""
    g = GraphBuilder(seed)
    x = g.node("Conv", ["x", g.rand("w0", (8, 3, 3, 3), -0.5, 0.5), g.rand("b0", (8,))], "stem",
               kernel_shape=[3, 3], pads=[1, 0, 0, 1], strides=[2, 2])
    x = g.relu6(x, "stem_relu6")
    y = g.node("Conv", [x, g.rand("w1", (8, 1, 3, 3), -0.5, 0.5), g.rand("b1", (8,))], "dw",
               kernel_shape=[3, 3], pads=[2, 2, 2, 2], dilations=[2, 2], group=8)
    y = g.node("Relu", [y], "dw_relu")
    y = g.conv(y, "grouped", 8, 8, k=1, group=2, bias=False)
    y = g.node("Add", [y, x], "residual")
    y = g.node("Relu", [y], "residual_relu")
    y = g.conv(y, "head", 8, 4, k=1)
    y = g.node("Flatten", [g.node("GlobalAveragePool", [y], "pool")], "flatten", axis=1)
    y = g.node("Gemm", [y, g.rand("fc_w", (5, 4)), g.rand("fc_b", (5,))], "fc", transB=1)
    y = g.node("Relu", [y], "fc_relu")
    return g.model([("x", (1, 3, 15, 15))], y, (1, 5))


@pytest.fixture(scope="module")
def built():
    model = convs_model()
    return model, compile_model(model, get_target("host"))


def test_every_convolution_group_is_offloaded_with_its_onnx_nodes(built):
    model, compiled = built
    rows = [row for row in layers(compiled.partitioned) if row.get("library") == "dnnl"]
    convs = [node.name for node in model.graph.node if node.op_type == "Conv"]
    assert sorted(node for row in rows for node in row["onnx_nodes"] if node in convs) == sorted(convs)
    ops = {row["op"] for row in rows}
    assert ops == {"depthwise_conv2d_bias_relu", "conv2d_add_relu", "conv2d_bias_clip", "conv2d_bias", "dense_bias_relu"}


def test_outputs_match_onnx_runtime(built):
    model, compiled = built
    vm = relax.VirtualMachine(compiled.executable, tvm.cpu())
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for seed in range(3):
        x = np.random.default_rng(seed).normal(0, 2, (1, 3, 15, 15)).astype(np.float32)
        ours = vm["main"](tvm.runtime.tensor(x)).numpy()
        expected = session.run(None, {"x": x})[0]
        assert np.count_nonzero(expected) >= 2  # a test of real values, not of zeros after the ReLU
        np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-4)


def test_offload_takes_convolutions_only_in_nhwc():
    """The pass alone: in an NCHW graph only the dense layer goes (its layout is the same); after
    to_nhwc the convolutions go too and none is left to TVM."""
    imported = optimise(import_onnx(convs_model(), None, "convs"))
    for mod, offloaded_kinds in ((imported, {"dense"}), (to_nhwc(imported), {"dense", "conv2d", "depthwise_conv2d"})):
        offloaded = dnnl.offload_float_convs(mod)
        kinds = {name.split(".")[1].split("_bias")[0].split("_add")[0] for name, _ in _composites(offloaded)}
        assert kinds == offloaded_kinds
        left = [call for func in offloaded.functions.values() if isinstance(func, relax.Function)
                and not (func.attrs and "Codegen" in func.attrs) for call in _conv_calls(func)]
        assert bool(left) == (mod is imported)


def test_without_the_library_convolutions_stay_in_tvm_with_a_note(monkeypatch):
    monkeypatch.setattr(dnnl, "dnnl_library", lambda: None)
    notes = []
    compiled = compile_model(convs_model(), get_target("host"), note=notes.append)
    assert not _dnnl_functions(compiled.partitioned)
    assert any("oneDNN is not installed" in note and "requirements.txt" in note for note in notes)


def _composites(mod):
    from compiler.codegen.int8 import composites_in

    return [found for gv in _dnnl_functions(mod) for found in composites_in(mod[gv])]


def _dnnl_functions(mod):
    return [gv for gv, func in mod.functions.items() if func.attrs and func.attrs.get("Codegen") == dnnl.CODEGEN]


def _conv_calls(func):
    found = []
    relax.analysis.post_order_visit(func, lambda e: found.append(e) if isinstance(e, relax.Call)
                                    and isinstance(e.op, tvm.ir.Op) and e.op.name == "relax.nn.conv2d" else None)
    return found


def test_the_report_says_which_layers_run_on_onednn(tmp_path):
    onnx.save(convs_model(), str(tmp_path / "convs.onnx"))
    result = subprocess.run([sys.executable, "-m", "compiler", "build", str(tmp_path / "convs.onnx"), "--target", "host",
                             "-o", str(tmp_path / "out")], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["totals"]["library_layers"] == {"dnnl": 5}  # stem, dw, grouped + residual, head, fc
    assert sum(row.get("library") == "dnnl" for row in report["layers"]) == 5
    assert "; 5 on oneDNN" in (tmp_path / "out" / "report.md").read_text()
    assert "; 5 on oneDNN" in result.stdout + result.stderr


def test_graph_onnx_shows_each_onednn_group_as_its_pattern(built):
    from compiler.report.graph_onnx import FUSED_DOMAIN, export_graph

    _, compiled = built
    nodes = {node.name: node for node in export_graph(compiled.partitioned).graph.node}
    assert (nodes["dw"].domain, nodes["dw"].op_type) == (FUSED_DOMAIN, "depthwise_conv2d_bias_relu")
    onnx_nodes = next(a.strings for a in nodes["grouped"].attribute if a.name == "onnx_nodes")
    assert [name.decode() for name in onnx_nodes] == ["grouped", "residual", "residual_relu"]


def _int8_partitioned(model):
    """The float module as an int8 build calibrates it: NHWC, one group per int8 op (compile_model)."""
    native = fold_constants(fold_transposes(to_nhwc(optimise(import_onnx(model, None, "convs")))))
    return partition(native, get_target("host").int8_families)


def test_the_calibration_probe_runs_its_groups_on_onednn_returning_the_same_tensors():
    """offload_groups on an instrumented main: every conv and dense group becomes a oneDNN call,
    main's bindings stay, so each returned tensor is the one TVM's probe returns at that position
    (calibration's ids), equal within the module's float tolerance."""
    partitioned = _int8_partitioned(convs_model(seed=2))
    variant, ids = instrumented(partitioned)
    on_library = dnnl.offload_groups(variant)
    groups = [group_name(func) for func in partitioned.functions.values()]
    assert len(_dnnl_functions(on_library)) == sum(name in dnnl._ROWS for name in groups) == 5
    assert not _conv_calls(on_library["main"]) and len(ids) > 5
    x = np.random.default_rng(5).normal(0, 2, (1, 3, 15, 15)).astype(np.float32)
    expected, ours = run_relax(variant, x), run_relax(dnnl.run_codegen(on_library), x)
    assert len(ours) == len(expected) == len(ids) + 1  # the model's output, then one tensor per id
    for tensor_id, want, got in zip(["output", *ids], expected, ours):
        assert np.count_nonzero(want) >= 2, tensor_id
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4, err_msg=tensor_id)


def test_groups_the_library_refuses_stay_in_tvm():
    """In the model's NCHW layout only the dense group goes to oneDNN."""
    variant, _ = instrumented(tvm_partition(convs_model(seed=2)))
    on_library = dnnl.offload_groups(variant)
    assert [name.split(".")[1] for name, _ in _composites(on_library)] == ["dense_bias_relu"]
    assert sum(len(_conv_calls(func)) for func in on_library.functions.values()) == 4  # the 4 convolutions in TVM


def test_calibration_takes_the_library_for_models_worth_its_compile(monkeypatch):
    """A small model's probe stays on TVM, compiled at LLVM opt level 1 (the library's compile, and
    LLVM's full optimisation, would cost more than they save); above calibrate.LIBRARY_MACS its groups go to
    oneDNN and the rest is optimised."""
    from compiler.quant import calibrate

    variant, _ = instrumented(_int8_partitioned(convs_model(seed=2)))
    assert calibrate.probe_plan(variant) == (variant, 1)
    monkeypatch.setattr(calibrate, "LIBRARY_MACS", 0)
    module, opt_level = calibrate.probe_plan(variant)
    assert "external_mods" in module.attrs and opt_level == 3


def hardswish_model(seed=0):
    """A convolution ending in ONNX's HardSwish (TVM imports it as x * (clip(x + 3, 0, 6) / 6)), a
    depthwise one ending in the older exporters' x * clip(x + 3, 0, 6) / 6 (the division last), and
    one ending in x * clip(x + 2, 0, 6) / 6, which is not a hard-swish."""
    g = GraphBuilder(seed)
    three, two, six = g.const("three", np.float32(3)), g.const("two", np.float32(2)), g.const("six", np.float32(6))
    zero = g.const("zero", np.float32(0))

    def spelled(x, name, offset):
        gate = g.node("Clip", [g.node("Add", [x, offset], name + "_add"), zero, six], name + "_clip")
        return g.node("Div", [g.node("Mul", [x, gate], name + "_mul"), six], name + "_div")

    x = g.node("HardSwish", [g.conv("x", "stem", 3, 8, k=3, stride=2)], "stem_hswish")
    x = spelled(g.conv(x, "dw", 8, 8, k=3, group=8), "dw_hswish", three)
    x = spelled(g.conv(x, "head", 8, 6, k=1), "head_not_hswish", two)
    return g.model([("x", (1, 3, 16, 16))], x, (1, 6, 8, 8))


def test_hardswish_runs_as_the_convolutions_post_op():
    """Both spellings of hard-swish after a convolution are oneDNN's hardswish post-op, one group each;
    x * clip(x + 2, 0, 6) / 6 stays in TVM after a plain conv group; outputs as ONNX Runtime's."""
    model = hardswish_model()
    compiled = compile_model(model, get_target("host"))
    ops = [row["op"] for row in layers(compiled.partitioned) if row.get("library") == "dnnl"]
    assert ops == ["conv2d_bias_hardswish", "depthwise_conv2d_bias_hardswish", "conv2d_bias"]
    vm = relax.VirtualMachine(compiled.executable, tvm.cpu())
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for seed in range(3):
        x = np.random.default_rng(seed).normal(0, 3, (1, 3, 16, 16)).astype(np.float32)
        expected = session.run(None, {"x": x})[0]
        assert np.count_nonzero(expected) > expected.size // 2
        np.testing.assert_allclose(vm["main"](tvm.runtime.tensor(x)).numpy(), expected, rtol=1e-4, atol=1e-4)
