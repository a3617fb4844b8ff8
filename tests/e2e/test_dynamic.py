"""--quantize dynamic end to end on the host: the digits CNN keeps its top-1 (int8 weights, activations
quantised at run time, no calibration data), the report says what ran, `run` executes it; flags that
belong to calibrated int8 and non-host targets are one-line errors."""

import json

import pytest

from test_bad_input import assert_clean_failure
from test_equalize import DIGITS, cli


def test_digits_dynamic_build(tmp_path):
    result = cli("build", DIGITS / "digits_cnn.onnx", "-o", tmp_path / "out", "--quantize", "dynamic",
                 "--val", DIGITS / "val.npz")
    assert result.returncode == 0, result.stderr
    dynamic = json.loads((tmp_path / "out" / "report.json").read_text())["dynamic_quantization"]
    assert dynamic["dynamic_layers"] == 6  # 5 convs + the classifier
    assert dynamic["model_bytes"]["dynamic"] * 3 < dynamic["model_bytes"]["float"]
    assert dynamic["accuracy"]["drop_points"] <= 1.0
    assert "## Dynamic quantisation" in (tmp_path / "out" / "report.md").read_text()
    run = cli("run", tmp_path / "out", "--input", DIGITS / "sample.npy")
    assert run.returncode == 0 and "argmax" in run.stdout, run.stderr


@pytest.mark.parametrize("args, needles", [
    (["--calib", DIGITS / "calib.npz"], ["--calib", "not used by --quantize dynamic"]),
    (["--equalize"], ["--equalize", "not used by --quantize dynamic"]),
    (["--target", "coral-npu"], ["--quantize dynamic", "host", "coral-npu"]),
], ids=["calib", "equalize", "coral"])
def test_dynamic_bad_flags(tmp_path, args, needles):
    result = cli("build", DIGITS / "digits_cnn.onnx", "-o", tmp_path / "out", "--quantize", "dynamic", *args)
    assert_clean_failure(result, *needles)
    assert not (tmp_path / "out").exists()
