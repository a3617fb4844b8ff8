"""Operators outside the int8 kernel table on coral-npu: TVM's LLVM backend for riscv32
(compiler/coral/tvm_fallback.py) compiles them and the firmware calls them through the packed
C ABI. A float Softmax after the output dequantize and layers kept float with --keep-float (a
depthwise conv: float conv + BN add + ReLU6 clip; a max pool; a residual add + ReLU) run in QEMU; the result must match the host build of the same model
(TVM's LLVM code for x86 with the C library's expf): the float layers to 1e-6 relative (the
runtime's expf is within 1 ulp, tests/coral/test_mathf.py; a softmax sums ten of them).
"""

import json

import numpy as np
import onnx
import pytest
import tvm
from tvm import relax
from tvm.script import relax as R

import onnx_models
from compiler.coral import tvm_fallback
from compiler.coral.simulator import check_simulator_tools, run_firmware
from compiler.coral.toolchain import Toolchain
from compiler.targets import get_target
from test_coral_build import build, run


def main_call(mod):
    (binding,) = mod["main"].body.blocks[0].bindings
    return binding.value


def test_softmax_lowers_to_one_primfunc_with_its_workspace():
    @tvm.script.ir_module
    class Softmax:
        @R.function
        def main(x: R.Tensor((1, 1000), "float32")):
            with R.dataflow():
                y = R.nn.softmax(x, axis=-1)
                R.output(y)
            return y

    tir_call, inputs = tvm_fallback.lower_call(main_call(Softmax), "softmax")
    assert isinstance(tir_call.func, tvm.tirx.PrimFunc) and len(tir_call.func.params) == 2  # x, output
    assert tir_call.args == [("input", 0)] and len(inputs) == 1
    # temporaries: max (4 B), exp (1000 x 4 B), sum (4 B), each rounded up to 64 bytes
    assert tvm_fallback.workspace_bytes(tir_call.func) == 64 + 4032 + 64


def test_constant_operands_become_constant_arguments():
    weight = np.arange(2 * 3 * 3 * 3, dtype=np.float32).reshape(2, 3, 3, 3)
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, 3, 5, 5), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            y = bb.emit_output(relax.op.nn.conv2d(x, relax.const(weight)))
        bb.emit_func_output(y)
    tir_call, inputs = tvm_fallback.lower_call(main_call(bb.get()), "conv")
    assert [kind for kind, _ in tir_call.args] == ["input", "constant"] and len(inputs) == 1
    np.testing.assert_array_equal(tir_call.args[1][1], weight)


def test_workspace_overflow_stops_the_firmware(tmp_path):
    check_simulator_tools()
    toolchain = Toolchain.for_target(get_target("coral-npu"))
    (tmp_path / "main.c").write_text(r"""
        #include "npu_runtime.h"
        void* TVMBackendAllocWorkspace(int, int, uint64_t, int, int);
        static uint8_t scratch[256] __attribute__((aligned(64)));
        int main(void) {
            npu_tvm_workspace(scratch, sizeof scratch);
            void* a = TVMBackendAllocWorkspace(1, 0, 100, 2, 32);  /* 128 after rounding */
            void* b = TVMBackendAllocWorkspace(1, 0, 128, 2, 32);
            if (a != scratch || b != scratch + 128) return 20;
            if (TVMBackendAllocWorkspace(1, 0, 1, 2, 32) != 0) return 21;  /* full */
            npu_tvm_failed("layer7");
        }""")
    elf = toolchain.build_firmware([tmp_path / "main.c"], tmp_path / "firmware.elf")
    result = run_firmware(elf, tmp_path, timeout=20, check=False)
    assert result.exit_code == 5, result
    assert "TVM workspace exhausted: 1 bytes requested, 0 left" in result.stdout
    assert "error: layer7: the TVM-compiled layer failed" in result.stdout


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    root = tmp_path_factory.mktemp("tvm_fallback")
    onnx.save(onnx_models.tiny_cnn(seed=3, size=24, softmax=True), str(root / "model.onnx"))
    rng = np.random.default_rng(11)
    np.save(root / "calib.npy", rng.normal(0, 1, (8, 3, 24, 24)).astype(np.float32))
    flags = ("--keep-float", "dw_conv,res_add,pool1")
    report = build(root / "model.onnx", root / "calib.npy", root / "coral", "--target", "coral-npu",
                   "--memory", "highmem", *flags)
    build(root / "model.onnx", root / "calib.npy", root / "host", "--target", "host", *flags)
    return root, report


def test_float_layers_run_on_tvm_code_and_match_the_host_build(builds):
    root, _ = builds
    rng = np.random.default_rng(5)
    for index in range(3):
        x = rng.normal(0, 1, (1, 3, 24, 24)).astype(np.float32)
        on_coral, stdout = run(root / "coral", x, root / f"coral{index}")
        on_host, _ = run(root / "host", x, root / f"host{index}")
        np.testing.assert_allclose(on_coral, on_host, rtol=1e-6, atol=0)
        assert np.argmax(on_coral) == np.argmax(on_host)
    assert "| `softmax` | nn.softmax | tvm |" in stdout
    run_record = json.loads((root / "coral" / "run.json").read_text())
    softmax = next(row for row in run_record["layers"] if row["name"] == "softmax")
    assert softmax["instructions"] > 0


def test_report_names_the_tvm_layers_and_why(builds):
    root, report = builds
    layers = {row["name"]: row for row in report["coral"]["layers"]}
    # a kept add or pool is not taken back by the int8 partitioner (dequantize -> float op ->
    # quantize is also the QDQ form of an int8 op)
    for name, op in (("softmax", "nn.softmax"), ("dw_conv", "nn.conv2d"), ("dw_relu6", "clip"), ("res_add", "add"),
                     ("pool1", "nn.max_pool2d")):
        assert layers[name]["impl"] == "tvm" and layers[name]["op"] == op
        assert "not an int8 kernel" in layers[name]["fallback"]
    # the float <-> int8 conversions around the float layers are named after them
    assert {"input quantize", "dequantize for pool1", "quantize after dw_relu6", "dequantize for softmax"} <= set(layers)
    assert layers["softmax"]["scratch_bytes"] == 3 * 64  # max, exp and sum of 10 floats
    source = root / "coral" / "src"
    assert (source / "tvm_fallback.o").exists() and "def layer" in (source / "tvm_fallback_tir.py").read_text()
    assert "__tvm_ffi_" in (source / f"{layers['softmax']['function']}.c").read_text()
    markdown = (root / "coral" / "report.md").read_text()
    assert "| `softmax` | nn.softmax |" in markdown and "tvm (" in markdown


def test_tvm_code_has_no_vector_float_instructions(builds):
    root, _ = builds
    toolchain = Toolchain.for_target(get_target("coral-npu"))
    assert toolchain.vector_float_instructions(root / "coral" / "firmware.elf") == []


def float_tail(seed=0):
    """An int8 conv, then float element-wise ops whose TVM lowering calls the runtime's expf and
    logf (sigmoid, tanh, exp, log_softmax) or the FPU's square root."""
    g = onnx_models.GraphBuilder(seed)
    y = g.node("Relu", [g.conv("x", "c1", 3, 8)], "r1")
    y = g.node("Add", [g.node("Sigmoid", [y], "sig"), g.node("Tanh", [y], "tanh")], "sum")
    y = g.node("Sqrt", [g.node("Exp", [y], "exp")], "sqrt")
    y = g.node("LogSoftmax", [g.node("Flatten", [y], "flat")], "lsm")
    return g.model([("x", [1, 3, 6, 6])], y, [1, 288])


def test_float_math_ops_run_on_tvm_code(tmp_path):
    onnx.save(float_tail(), str(tmp_path / "m.onnx"))
    rng = np.random.default_rng(0)
    np.save(tmp_path / "calib.npy", rng.normal(0, 1, (4, 3, 6, 6)).astype(np.float32))
    # In int8 the element-wise chain is one table (compiler/passes/group_unary.py); kept float, it
    # runs on TVM's code, which is what this test is about.
    keep = ["--keep-float", "sig,tanh,sum,exp,sqrt"]
    report = build(tmp_path / "m.onnx", tmp_path / "calib.npy", tmp_path / "coral", "--target", "coral-npu",
                   "--memory", "highmem", *keep)
    build(tmp_path / "m.onnx", tmp_path / "calib.npy", tmp_path / "host", "--target", "host", *keep)
    on_tvm = {row["op"] for row in report["coral"]["layers"] if row["impl"] == "tvm"}
    assert {"sigmoid", "tanh", "exp", "sqrt", "nn.log_softmax"} <= on_tvm
    x = rng.normal(0, 1, (1, 3, 6, 6)).astype(np.float32)
    on_coral, _ = run(tmp_path / "coral", x, tmp_path / "run_coral")
    on_host, _ = run(tmp_path / "host", x, tmp_path / "run_host")
    np.testing.assert_allclose(on_coral, on_host, rtol=1e-6, atol=1e-7)
