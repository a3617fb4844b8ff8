"""Whole models on coral-npu: `build --target coral-npu` + `run` in qemu-system-riscv32.

The firmware's outputs must equal the host build of the same quantised model bit for bit
(both implement the same int8 spec; the host runs kernels/ref through TVM), the report
must carry the memory map and per-layer MACs, `run` records per-layer instruction counts,
and the firmware must hold no vector-float instruction (the chip is Zve32x).
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

import onnx_models
from compiler.coral.toolchain import Toolchain
from compiler.targets import get_target

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "examples" / "digits"


def cli(*args):
    return subprocess.run([sys.executable, "-m", "compiler", *map(str, args)], capture_output=True, text=True,
                          timeout=900)


def build(model, calib, out, *extra):
    result = cli("build", model, "-o", out, "--quantize", "int8", "--calib", calib, *extra)
    assert result.returncode == 0, result.stderr
    return json.loads((out / "report.json").read_text())


def run(out, x: np.ndarray, tmp: Path) -> tuple[np.ndarray, str]:
    tmp.mkdir(parents=True, exist_ok=True)
    np.save(tmp / "x.npy", x)
    result = cli("run", out, "--input", tmp / "x.npy", "--output", tmp / "y.npy")
    assert result.returncode == 0, result.stderr
    return np.load(tmp / "y.npy"), result.stdout


def coral_equals_host(model_path: Path, calib: Path, x: np.ndarray, tmp: Path) -> tuple[np.ndarray, dict]:
    """Build the model int8 for host and coral-npu (highmem), run both on x and check the outputs
    are bit-identical; returns the output and the coral-npu report."""
    outputs = {}
    for target in ("host", "coral-npu"):
        flags = ["--memory", "highmem"] if target == "coral-npu" else []
        build(model_path, calib, tmp / target, "--target", target, *flags)
        outputs[target] = run(tmp / target, x, tmp / f"run-{target}")[0]
    np.testing.assert_array_equal(outputs["coral-npu"], outputs["host"])
    return outputs["host"], json.loads((tmp / "coral-npu" / "report.json").read_text())


def assert_failure(result, out: Path, *needles):
    assert result.returncode == 2, (result.returncode, result.stderr)
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in last, (needle, last)
    assert not out.exists()


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits")
    model, calib = DIGITS / "digits_cnn.onnx", DIGITS / "calib.npz"
    coral = build(model, calib, root / "coral", "--target", "coral-npu", "--memory", "highmem")
    build(model, calib, root / "host", "--target", "host")
    return root, coral


def digits_equal_host(built: Path, host: Path, tmp: Path, count: int = 4) -> str:
    """Runs the first `count` digits validation images on a firmware build and the host build of
    the digits CNN and checks their float outputs bit for bit; returns the firmware's last `run` stdout."""
    with np.load(DIGITS / "val.npz") as data:
        images = data["image"][:count]
    for index, image in enumerate(images):
        x = image.reshape(1, 1, 8, 8).astype(np.float32)
        on_firmware, stdout = run(built, x, tmp / f"firmware{index}")
        on_host, _ = run(host, x, tmp / f"host{index}")
        assert on_firmware.dtype == on_host.dtype == np.float32
        assert np.array_equal(on_firmware.view(np.uint32), on_host.view(np.uint32)), (on_firmware, on_host)
    return stdout


def test_digits_on_coral_equals_the_host_build_bit_for_bit(digits, tmp_path):
    root, _ = digits
    stdout = digits_equal_host(root / "coral", root / "host", tmp_path)
    assert "| **total** |" in stdout and "MACs/instr" in stdout


def test_digits_report_and_run_record(digits, tmp_path):
    root, report = digits
    coral = report["coral"]
    regions = {row["region"]: row for row in coral["memory_map"]}
    assert set(regions) == {"ITCM", "DTCM", "EXTMEM"}
    assert regions["ITCM"]["size_bytes"] == regions["DTCM"]["size_bytes"] == 1 << 20
    assert all(0 < row["used_bytes"] <= row["size_bytes"] for row in regions.values())
    assert regions["EXTMEM"]["used_bytes"] >= coral["constant_bytes"] > 0  # weights live in EXTMEM
    layers = coral["layers"]
    assert sum(row["macs"] for row in layers) == report["totals"]["macs"]
    convs = [row for row in layers if row["op"].startswith("conv2d")]
    assert len(convs) == 5 and all(row["impl"] == "rvv" and row["fallback"] is None for row in convs)
    assert {row["op"] for row in layers if row["impl"] == "ref"} <= {"dequantize"}
    sources = {path.name for path in (root / "coral" / "src").iterdir()}
    assert {"main.c", "layers.h"} <= sources and {f"{row['function']}.c" for row in layers} <= sources
    run(root / "coral", np.zeros((1, 1, 8, 8), np.float32), tmp_path)
    record = json.loads((root / "coral" / "run.json").read_text())
    assert [row["name"] for row in record["layers"]] == [row["name"] for row in layers]
    assert all(row["instructions"] > 0 for row in record["layers"])
    assert record["total_instructions"] >= sum(row["instructions"] for row in record["layers"])


def test_firmware_has_no_vector_float_instructions(digits):
    root, _ = digits
    toolchain = Toolchain.for_target(get_target("coral-npu"))
    assert "vwmacc" in toolchain.disassemble(root / "coral" / "firmware.elf")  # it is vector code...
    assert toolchain.vector_float_instructions(root / "coral" / "firmware.elf") == []  # ...and integer only


def keras_stride2(seed=2, size=13):
    """ZeroPadding2D before a stride-2 conv, as Keras' MobileNets export: the pad is folded into
    the conv's padding (passes/fold_pad.py), no layer of its own."""
    g = onnx_models.GraphBuilder(seed)
    y = g.node("Pad", ["x", g.const("pads", np.array([0, 0, 0, 0, 0, 0, 1, 1], np.int64))], "zero_pad", mode="constant")
    y = g.node("Relu", [g.node("Conv", [y, g.rand("s2_w", (8, 3, 3, 3))], "s2", kernel_shape=[3, 3], strides=[2, 2])],
               "s2_relu")
    return g.model([("x", [1, 3, size, size])], g.conv(y, "head", 8, 4, k=1), [1, 4, 6, 6])


def concat_of_convs(seed=0, size=12):
    """Two conv branches joined by a channel Concat (a generated concat kernel)."""
    g = onnx_models.GraphBuilder(seed)
    left = g.node("Relu", [g.conv("x", "left", 3, 4)], "left_relu")
    right = g.node("Relu", [g.conv("x", "right", 3, 4, k=1)], "right_relu")
    y = g.node("Concat", [left, right], "concat", axis=1)
    return g.model([("x", [1, 3, size, size])], g.conv(y, "head", 8, 8), [1, 8, size, size])


def kitchen_sink(seed=4):
    """Odd sizes and the less common conv forms: 5x5 stride 2, grouped, depth multiplier 2,
    dilation 2, average pool with padding left out of the count, max pool, concat, pad,
    global pool, MatMul without bias."""
    g = onnx_models.GraphBuilder(seed)
    y = g.node("Relu", [g.conv("x", "c5", 3, 12, k=5, stride=2, pad=2)], "r5")
    y = g.node("Relu", [g.conv(y, "grp", 12, 12, k=3, group=3)], "rg")
    y = g.node("Conv", [y, g.rand("dw_w", (24, 1, 3, 3))], "dwm", kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=12)
    y = g.node("Conv", [y, g.rand("dil_w", (16, 24, 3, 3))], "dil", kernel_shape=[3, 3], pads=[2, 2, 2, 2],
               dilations=[2, 2])
    y = g.node("AveragePool", [y], "ap", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=0)
    left = g.node("Relu", [g.conv(y, "br1", 16, 8, k=1)], "b1")
    right = g.conv(g.node("MaxPool", [y], "mp", kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1]), "br2", 16, 8, k=1)
    y = g.node("Concat", [left, right], "cat", axis=1)
    y = g.node("Pad", [y, g.const("pads", np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64))], "pad", mode="constant")
    y = g.node("Flatten", [g.node("GlobalAveragePool", [y], "gap")], "flat")
    return g.model([("x", [1, 3, 33, 31])], g.node("MatMul", [y, g.rand("mm", (16, 10))], "mm"), [1, 10])


MODELS = {
    # a channel concat and a pad that feeds no convolution (both generated)
    "concat": concat_of_convs,
    # depthwise s1/s2, pointwise with 8..32 channels, the 3-channel stem, global pool, dense
    "mobilenet": lambda: onnx_models.mobilenet_v1(alpha=0.25, size=32, classes=10, blocks=4, seed=5),
    # max pool, residual add, depthwise-separable block, dense
    "tiny_cnn": lambda: onnx_models.tiny_cnn(seed=3, size=24, softmax=False),
    "kitchen_sink": kitchen_sink,
    "keras_stride2": keras_stride2,
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_models_on_coral_equal_the_host_build(name, tmp_path):
    model = MODELS[name]()
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    onnx.save(model, str(tmp_path / "model.onnx"))
    rng = np.random.default_rng(11)
    np.save(tmp_path / "calib.npy", rng.normal(0, 1, (8, *shape[1:])).astype(np.float32))
    build(tmp_path / "model.onnx", tmp_path / "calib.npy", tmp_path / "coral", "--target", "coral-npu",
          "--memory", "highmem")
    build(tmp_path / "model.onnx", tmp_path / "calib.npy", tmp_path / "host", "--target", "host")
    for index in range(3):
        x = rng.normal(0, 1, shape).astype(np.float32)
        on_coral, _ = run(tmp_path / "coral", x, tmp_path / f"coral{index}")
        on_host, _ = run(tmp_path / "host", x, tmp_path / f"host{index}")
        assert np.array_equal(on_coral.view(np.uint32), on_host.view(np.uint32)), index
    layers = json.loads((tmp_path / "coral" / "report.json").read_text())["coral"]["layers"]
    if name == "keras_stride2":
        assert [row["op"] for row in layers if row["impl"] != "transpose"] == [
            "quantize", "conv2d_relu", "conv2d_bias", "dequantize"]  # no pad of its own
    for row in layers:
        assert row["impl"] != "ref" and row["fallback"] is None, row


# ---- bad input ----


def test_weights_too_big_for_the_default_profile(tmp_path):
    out = tmp_path / "out"
    result = cli("build", DIGITS / "digits_cnn.onnx", "-o", out, "--target", "coral-npu", "--quantize", "int8",
                 "--calib", DIGITS / "calib.npz")
    assert_failure(result, out, "ITCM", "memory profile default", "--memory highmem")


def test_activations_too_big_for_the_default_profile(tmp_path):
    model = onnx_models.conv_bn_act(channels=(3, 8), size=64)  # a 128 KB float input alone
    onnx.save(model, str(tmp_path / "model.onnx"))
    out = tmp_path / "out"
    result = cli("build", tmp_path / "model.onnx", "-o", out, "--target", "coral-npu", "--quantize", "int8",
                 "--calib", "random")
    assert_failure(result, out, "DTCM", "bytes", "--memory highmem")


def test_float_builds_are_refused(tmp_path):
    out = tmp_path / "out"
    result = cli("build", DIGITS / "digits_cnn.onnx", "-o", out, "--target", "coral-npu")
    assert_failure(result, out, "--quantize int8")


def test_memory_flag_needs_a_target_with_profiles(tmp_path):
    out = tmp_path / "out"
    result = cli("build", DIGITS / "digits_cnn.onnx", "-o", out, "--memory", "highmem")
    assert_failure(result, out, "--memory highmem", "host")


def test_unknown_memory_profile(tmp_path):
    out = tmp_path / "out"
    result = cli("build", DIGITS / "digits_cnn.onnx", "-o", out, "--target", "coral-npu", "--memory", "huge",
                 "--quantize", "int8", "--calib", DIGITS / "calib.npz")
    assert_failure(result, out, "--memory huge", "highmem")
