"""--accuracy-budget end to end on the outlier-channel hard cases (examples/outlier_channel/make_model.py):
equalisation alone meets the budget on the first (0 layers raised, on the host and coral-npu); on the
shared variant, which equalisation cannot fix, the search raises layers until the drop is within budget
(on coral-npu, each step costed in instructions), and the final build's own top-1 is the search's last
figure. Bad input: one `error:` line, exit 2. The host's step cost (latency) is tested in
tests/unit/test_budget_search.py."""

import sys

import numpy as np
import onnx
import pytest

from test_bad_input import assert_clean_failure
from test_equalize import DIGITS, OUTLIER, cli, build_report as build


@pytest.mark.parametrize("target", ["host", "coral-npu"])
def test_equalisation_meets_the_budget_with_no_layer_raised(tmp_path, target):
    memory = ["--memory", "highmem"] if target == "coral-npu" else []
    report = build(OUTLIER / "digits_outlier.onnx", tmp_path / "out", "--target", target, *memory,
                   "--accuracy-budget", "1")
    budget = report["quantization"]["accuracy_budget"]
    assert budget["int8_drop"] >= 3.0 and budget["equalize"]["drop_after"] <= 1.0, budget
    assert budget["raised"] == [] and report["quantization"]["accuracy"]["drop_points"] <= 1.0
    assert (tmp_path / "out" / "layer_sensitivity.png").stat().st_size > 1000


def test_search_raises_layers_when_equalisation_cannot_help(tmp_path):
    """On coral-npu: the search raises layers until the drop is within budget, each step's mix rebuilt and
    run in QEMU for its instruction count (a layer raised to float runs TVM's scalar code instead of an int8
    kernel: every step costs more than int8), the final build is the last step's mix (its own top-1, and
    `run` on the first validation image prints the last step's count)."""
    sys.path.insert(0, str(OUTLIER))
    import make_model

    onnx.save(make_model.shared_outlier_model(onnx.load(make_model.SOURCE)), tmp_path / "shared.onnx")
    report = build(tmp_path / "shared.onnx", tmp_path / "out", "--target", "coral-npu", "--memory", "highmem",
                   "--accuracy-budget", "1")
    quant = report["quantization"]
    budget = quant["accuracy_budget"]
    assert budget["equalize"]["drop_after"] > 1.0 and 1 <= len(budget["raised"]) <= 2, budget
    assert [row["layer"] for row in budget["sensitivity"]] and budget["steps"][-1]["drop_after"] <= 1.0
    # the rebuilt model is the searched one: its own measurement, its float layers, its bytes
    assert quant["accuracy"]["drop_points"] == budget["final_drop"]
    assert set(budget["raised"]) <= set(quant["kept_float"]) and quant["float_layers"]
    assert quant["model_bytes"]["int8"] == budget["steps"][-1]["model_bytes"]
    int8 = budget["int8_cost"]["instructions"]
    assert all(step["instructions"] > int8 for step in budget["steps"]), (int8, budget["steps"])
    np.save(tmp_path / "first.npy", np.load(DIGITS / "val.npz")["image"][:1])
    run = cli("run", tmp_path / "out", "--input", tmp_path / "first.npy")
    assert run.returncode == 0, run.stderr
    assert f"{budget['steps'][-1]['instructions']:,}" in run.stdout, run.stdout
    report_md = (tmp_path / "out" / "report.md").read_text()
    assert "### Accuracy budget" in report_md and "![accuracy_vs_cost.png](accuracy_vs_cost.png)" in report_md
    assert "instructions (one inference)" in report_md and "(int8, searched from)" in report_md


FIRST_LAYERS = "/features/features.0/Conv,/features/features.3/Conv"  # the outlier tensor's producer and reader


def test_int16_layers_fix_the_outlier_activation_bit_exact_on_coral(tmp_path):
    """--int16 on the outlier tensor's producer and reader (TFLite's 16x8 scheme): the tensor between them
    is int16, the drop of minmax int8 (>= 3 points) is gone; on coral-npu every layer runs a generated RVV
    kernel (the 16x8 convolutions and the int8 <-> int16 rescales too), as on the second RVV target
    (rv64, VLEN 256), and the logits on validation images equal the host build's bit for bit."""
    reports = {target: build(OUTLIER / "digits_outlier.onnx", tmp_path / target, "--target", target, "--int16",
                             FIRST_LAYERS, *(["--memory", "highmem"] if target == "coral-npu" else []))
               for target in ("host", "coral-npu", "rvv256-rv64")}
    quant = reports["coral-npu"]["quantization"]
    assert quant["accuracy"]["drop_points"] <= 1.0 and quant["float_layers"] == [], quant["accuracy"]
    precision = {row["name"]: row["precision"] for row in reports["coral-npu"]["layers"]}
    assert [precision[name] for name in FIRST_LAYERS.split(",")] == ["int16", "int16"]
    assert list(precision.values()).count("int16") == 2
    for target in ("coral-npu", "rvv256-rv64"):
        layers = reports[target]["coral"]["layers"]
        assert all(row["impl"] == "rvv" for row in layers), layers
        assert sum(row["op"] == "rescale" for row in layers) == 2  # widen before the pair, narrow after it
    images = np.load(DIGITS / "val.npz")["image"][:3]
    outputs = {}
    for target in reports:
        for index, image in enumerate(images):
            np.save(tmp_path / f"x{index}.npy", image[None])
            result = cli("run", tmp_path / target, "--input", tmp_path / f"x{index}.npy", "--output",
                         tmp_path / f"{target}{index}.npy")
            assert result.returncode == 0, result.stderr
            outputs.setdefault(target, []).append(np.load(tmp_path / f"{target}{index}.npy"))
    for target in ("coral-npu", "rvv256-rv64"):
        np.testing.assert_array_equal(np.stack(outputs[target]), np.stack(outputs["host"]))


def test_the_search_picks_int16_where_it_serves():
    """The search itself (quant/budget.raise_precision with coral-npu's precisions, int16 before float) on the
    outlier model without equalisation: int16 meets the budget, so no layer needs float, and at most the
    two layers around the outlier tensor are raised."""
    import onnx

    from compiler.accuracy_budget import _evaluator
    from compiler.compile_model import compile_model
    from compiler.quant.budget import raise_precision
    from compiler.quant.quantize import QuantConfig
    from compiler.targets import get_target

    coral = get_target("coral-npu")
    assert coral.higher_precisions == ("int16", "float")
    compiled = compile_model(onnx.load(OUTLIER / "digits_outlier.onnx"), get_target("host"),
                             quant=QuantConfig(calib=str(DIGITS / "calib.npz"), progress=False))
    val = np.load(DIGITS / "val.npz")
    evaluator = _evaluator(compiled, (val["image"], val["label"], (1, 1, 8, 8)))
    assert evaluator.drop(frozenset()) >= 3.0
    result = raise_precision(evaluator, 1.0, progress=False, precisions=coral.higher_precisions)
    assert set(result["precisions"].values()) == {"int16"} and len(result["raised"]) <= 2, result["steps"]
    assert set(result["raised"]) <= set(FIRST_LAYERS.split(",")) and result["steps"][-1]["drop_after"] <= 1.0


@pytest.mark.parametrize("args, needles", [
    (["--int16", "/features/features.9/MaxPool"], ["--int16", "/features/features.9/MaxPool", "convolution or dense layer"]),
    (["--int16", "/features/features.0/Conv", "--emit", "tflite"], ["--int16", "--emit tflite", "16x8"]),
    (["--int16", "/features/features.0/Conv", "--target", "ethos-u55-128"], ["--int16", "ethos-u55-128", "16x8"]),
], ids=["not_a_conv", "tflite_export", "vendor_backend"])
def test_bad_int16_flags_are_one_line(tmp_path, args, needles):
    result = cli("build", DIGITS / "digits_cnn.onnx", "-o", tmp_path / "out", "--quantize", "int8", "--calib",
                 "random", *args)
    assert_clean_failure(result, *needles)
    assert not (tmp_path / "out").exists()


def test_digits_needs_nothing(tmp_path):
    budget = build(DIGITS / "digits_cnn.onnx", tmp_path / "out", "--accuracy-budget", "0")["quantization"]["accuracy_budget"]
    assert budget["int8_drop"] == 0.0 and budget["raised"] == [] and budget["equalize"] is None


@pytest.mark.parametrize("args, needles", [
    (["--quantize", "int8", "--calib", "random", "--accuracy-budget", "1"], ["--accuracy-budget", "--val"]),
    (["--quantize", "int8", "--calib", "random", "--accuracy-budget", "-1"], ["--accuracy-budget", "'-1'"]),
    (["--accuracy-budget", "1"], ["--accuracy-budget", "--quantize int8"]),
], ids=["without_val", "negative", "without_quantize"])
def test_bad_budget_flags(tmp_path, args, needles):
    assert_clean_failure(cli("build", DIGITS / "digits_cnn.onnx", "-o", tmp_path / "out", *args), *needles)
    assert not (tmp_path / "out").exists()
