"""--quantize dynamic and --quantize fp16 end to end on the host: the digits CNN keeps its top-1 without
calibration data, its weights shrink (int8: under a third; float16: half), the report says what ran,
`run` executes it; flags that belong to calibrated int8, and non-host targets, are one-line errors."""

import json

import pytest

from test_bad_input import assert_clean_failure
from test_equalize import DIGITS, cli

# mode -> (what it reduced on the digits CNN, the largest fraction of the float bytes it may keep)
EXPECTED = {"dynamic": (6, 1 / 3), "fp16": (12, 0.5)}  # 5 convs + classifier; their 6 weights and 6 biases


@pytest.mark.parametrize("mode", sorted(EXPECTED))
def test_digits_reduced_precision_build(tmp_path, mode):
    result = cli("build", DIGITS / "digits_cnn.onnx", "-o", tmp_path / "out", "--quantize", mode,
                 "--val", DIGITS / "val.npz")
    assert result.returncode == 0, result.stderr
    reduced = json.loads((tmp_path / "out" / "report.json").read_text())["reduced_precision"]
    count, fraction = EXPECTED[mode]
    assert reduced["mode"] == mode and reduced["reduced"] == count
    assert reduced["model_bytes"][mode] <= fraction * reduced["model_bytes"]["float"]
    assert reduced["accuracy"]["drop_points"] <= 1.0
    assert f"## Reduced precision: --quantize {mode}" in (tmp_path / "out" / "report.md").read_text()
    run = cli("run", tmp_path / "out", "--input", DIGITS / "sample.npy")
    assert run.returncode == 0 and "argmax" in run.stdout, run.stderr


@pytest.mark.parametrize("mode, args, needles", [
    ("dynamic", ["--calib", DIGITS / "calib.npz"], ["--calib", "not used by --quantize dynamic"]),
    ("fp16", ["--equalize"], ["--equalize", "not used by --quantize fp16"]),
    ("dynamic", ["--target", "coral-npu"], ["--quantize dynamic", "host", "coral-npu"]),
    ("fp16", ["--target", "rvv256-rv64"], ["--quantize fp16", "host", "rvv256-rv64"]),
], ids=["dynamic_calib", "fp16_equalize", "dynamic_coral", "fp16_rvv"])
def test_reduced_precision_bad_flags(tmp_path, mode, args, needles):
    result = cli("build", DIGITS / "digits_cnn.onnx", "-o", tmp_path / "out", "--quantize", mode, *args)
    assert_clean_failure(result, *needles)
    assert not (tmp_path / "out").exists()
