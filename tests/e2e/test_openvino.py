"""openvino-cpu: our int8 model as OpenVINO IR, run by the OpenVINO runtime here. Bounds from
measurement (report.json's backend section, README "OpenVINO"): the digits CNN meets the issue's
goal (measured: max 1 LSB, 99.75% of 2000 logits identical to our host int8 build), a MobileNet V1
0.25 (96x96, 28 int8 layers: one-step differences of the runtimes' requantisation rounding compound)
within 2, and both within 1 LSB layer by layer (qdq_layers.py); every convolution executed in int8; latency
beside ONNX Runtime's on the same QDQ model. On an x86 CPU without VNNI OpenVINO's int8 convolutions
saturate (openvino.py's docstring; MobileNet measured 13 LSB off on an AVX2 EPYC): there the bound
is not OpenVINO's to meet, and the test checks that the report says so instead.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx_models import mobilenet_v1, tiny_cnn

from compiler.backends import qdq_check
from compiler.cpu_features import x86_without_vnni

REPO = Path(__file__).resolve().parents[2]
DIGITS = REPO / "examples" / "digits"


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "compiler", *map(str, args)], capture_output=True, text=True,
                          timeout=900)


def _backend(out):
    return json.loads((out / "report.json").read_text())["backend"]


def test_digits_cnn_as_openvino_ir(tmp_path):
    out = tmp_path / "out"
    result = _cli("build", DIGITS / "digits_cnn.onnx", "--target", "openvino-cpu", "--quantize", "int8", "--calib",
                  DIGITS / "calib.npz", "-o", out)
    assert result.returncode == 0, result.stderr
    assert {"model.xml", "model.bin", "model_qdq.onnx"} <= {p.name for p in out.iterdir()}
    backend = _backend(out)
    openvino, ort = backend["agreement"]["openvino"], backend["agreement"]["onnxruntime"]
    if x86_without_vnni():
        assert any("has no VNNI" in note for note in backend["notes"]), backend["notes"]
    else:  # the goal: read_model's IR keeps the residual Add as the graph's own node
        assert openvino["passed"] and openvino["max_lsb"] <= 1 and openvino["identical_percent"] >= 99, openvino
    assert ort["passed"] and ort["max_lsb"] <= 1 and ort["values"] >= qdq_check.MIN_VALUES, ort
    layers = backend["agreement"]["onnxruntime_layers"]
    assert layers["passed"] and layers["layers"] == 11, layers
    assert backend["operators"]["int8_convolutions"] == backend["operators"]["convolutions"] == 5
    assert not [layer["fused_adds"] for layer in backend["operators"]["layers"] if layer["fused_adds"]]
    assert "OpenVINO against ONNX Runtime" in (out / "report.md").read_text()
    assert backend["performance"]["value"] > 0 and backend["performance"]["onnxruntime_ms"] > 0
    assert "Target artefact" in (out / "report.md").read_text()
    ran = _cli("run", out, "--input", DIGITS / "sample.npy", "--output", tmp_path / "y.npy")
    assert ran.returncode == 0 and "OpenVINO" in ran.stdout, ran.stderr
    host = tmp_path / "host"
    assert _cli("build", DIGITS / "digits_cnn.onnx", "--quantize", "int8", "--calib", DIGITS / "calib.npz",
                "-o", host).returncode == 0
    assert _cli("run", host, "--input", DIGITS / "sample.npy", "--output", tmp_path / "h.npy").returncode == 0
    assert np.load(tmp_path / "y.npy").argmax() == np.load(tmp_path / "h.npy").argmax()


def test_mobilenet_as_openvino_ir(tmp_path):
    from compiler.build import build
    from compiler.quant.quantize import QuantConfig

    onnx.save(mobilenet_v1(alpha=0.25, size=96, classes=100), tmp_path / "m.onnx")
    np.save(tmp_path / "calib.npy", np.random.default_rng(1).normal(size=(32, 1, 3, 96, 96)).astype(np.float32))
    report = build(tmp_path / "m.onnx", "openvino-cpu", tmp_path / "out",
                   quant=QuantConfig(calib=str(tmp_path / "calib.npy"), samples=32, progress=False))
    backend = report["backend"]
    openvino, ort = backend["agreement"]["openvino"], backend["agreement"]["onnxruntime"]
    if x86_without_vnni():
        assert any("has no VNNI" in note for note in backend["notes"]), backend["notes"]
    else:
        assert openvino["max_lsb"] <= 2 and openvino["identical_percent"] >= 85, openvino
    assert ort["max_lsb"] <= 1 and ort["identical_percent"] >= 85, ort
    # the two float runtimes drift apart from each other as much as from us (openvino.py's docstring)
    assert backend["agreement"]["openvino_vs_onnxruntime"]["values"] == openvino["values"] == qdq_check.MIN_VALUES
    # ... while each int8 layer of the file, fed our int8 inputs, is ours within 1 LSB (rounding ties)
    layers = backend["agreement"]["onnxruntime_layers"]
    assert layers["passed"] and layers["max_lsb"] <= 1 and layers["differing_percent"] < 0.01, layers
    assert backend["operators"]["int8_convolutions"] == backend["operators"]["convolutions"] == 27


def test_a_layer_kept_float_runs_in_float_on_openvino(tmp_path):
    """--keep-float pw_conv: the QDQ ONNX has it as a float Conv (export/onnx_float.py), OpenVINO runs it
    in f32, and the report counts it apart from the int8 convolutions; the outputs still equal the
    host build's."""
    onnx.save(tiny_cnn(softmax=False), tmp_path / "m.onnx")
    out = tmp_path / "out"
    result = _cli("build", tmp_path / "m.onnx", "--target", "openvino-cpu", "--quantize", "int8", "--calib", "random",
                  "--keep-float", "pw_conv", "-o", out)
    assert result.returncode == 0, result.stderr
    backend = _backend(out)
    assert backend["operators"]["float_in_the_build"] == ["pw_conv"]
    assert backend["operators"]["convolutions"] == 4  # the other four
    assert any("float layers: pw_conv" in note for note in backend["notes"]), backend["notes"]
    openvino = backend["agreement"]["openvino"]
    assert openvino["max_lsb"] <= 1 and openvino["identical_percent"] >= 99, openvino
    ort = backend["agreement"]["onnxruntime"]  # op by op: the file's own rounding around the float layer
    assert ort["passed"], ort


def test_a_float_build_is_refused(tmp_path):
    result = _cli("build", DIGITS / "digits_cnn.onnx", "--target", "openvino-cpu", "-o", tmp_path / "out")
    assert result.returncode == 2 and "--quantize int8" in result.stderr and not (tmp_path / "out").exists()
