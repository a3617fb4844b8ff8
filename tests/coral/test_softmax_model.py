"""Softmax in a quantised model: TFLite's int8 SOFTMAX (output scale 1/256, zero point -128) when
its input is int8 and its output is not a float model output. With int8 I/O the classifier's
probabilities come out of the int8 kernel (generated RVV on coral-npu, bit-exact to the host
build, close to ONNX Runtime); with float I/O the final softmax stays float (finer than 1/256
and run once), and a softmax inside the graph is int8 either way."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import onnx_models
from test_coral_build import build, run

FEATURES, CLASSES = 24, 37  # 37: more classes than one vector holds, and odd


def classifier(inner_softmax=False):
    """x [2, FEATURES] -> dense -> ReLU -> dense -> Softmax (-> scaled by a dense when inner)."""
    g = onnx_models.GraphBuilder(7)
    y = g.node("Relu", [g.node("Gemm", ["x", g.rand("w1", (FEATURES, 32)), g.rand("b1", (32,))], "fc1")], "relu")
    y = g.node("Gemm", [y, g.rand("w2", (32, CLASSES), -2, 2), g.rand("b2", (CLASSES,))], "fc2")
    y = g.node("Softmax", [y], "softmax", axis=-1)
    if inner_softmax:
        y = g.node("Gemm", [y, g.rand("w3", (CLASSES, 5)), g.rand("b3", (5,))], "fc3")
    return g.model([("x", [2, FEATURES])], y, [2, 5 if inner_softmax else CLASSES])


@pytest.fixture(scope="module")
def samples():
    rng = np.random.default_rng(3)
    return rng.normal(size=(16, 2, FEATURES)).astype(np.float32), rng.normal(size=(2, FEATURES)).astype(np.float32)


def _save(tmp_path, model, calib):
    onnx.save(model, tmp_path / "m.onnx")
    np.save(tmp_path / "calib.npy", calib)
    return tmp_path / "m.onnx", tmp_path / "calib.npy"


def _layer_ops(report):
    return {row["op"]: row["impl"] for row in report["coral"]["layers"]}


def test_int8_io_softmax_runs_the_int8_kernel(tmp_path, samples):
    calib, x = samples
    model_path, calib_path = _save(tmp_path, classifier(), calib)
    reports, outputs = {}, {}
    for target in ("host", "coral-npu"):
        flags = ["--memory", "highmem"] if target == "coral-npu" else []
        reports[target] = build(model_path, calib_path, tmp_path / target, "--target", target, "--io", "int8", *flags)
        io = reports[target]["quantization"]["io"]
        q = np.clip(np.round(x / io["inputs"][0]["scale"]) + io["inputs"][0]["zero_point"], -128, 127).astype(np.int8)
        outputs[target] = run(tmp_path / target, q, tmp_path / f"run-{target}")[0]
    assert outputs["host"].dtype == np.int8
    np.testing.assert_array_equal(outputs["coral-npu"], outputs["host"])
    out_io = reports["host"]["quantization"]["io"]["outputs"][0]
    assert (out_io["scale"], out_io["zero_point"]) == (1 / 256, -128)
    assert _layer_ops(reports["coral-npu"])["softmax"] == "rvv"
    probabilities = (outputs["host"].astype(np.float64) + 128) / 256
    expected = ort.InferenceSession(classifier().SerializeToString()).run(None, {"x": x})[0]
    assert np.abs(probabilities - expected).max() <= 4 / 256  # int8 dense layers, then 1/256 steps


def test_float_output_softmax_stays_float_and_an_inner_one_is_int8(tmp_path, samples):
    calib, x = samples
    model_path, calib_path = _save(tmp_path, classifier(), calib)
    report = build(model_path, calib_path, tmp_path / "final", "--target", "coral-npu", "--memory", "highmem")
    assert "softmax" not in _layer_ops(report)  # a float op on TVM's code, after the dequantize
    (tmp_path / "inner").mkdir()
    inner_path, _ = _save(tmp_path / "inner", classifier(inner_softmax=True), calib)
    report = build(inner_path, calib_path, tmp_path / "inner_out", "--target", "coral-npu", "--memory", "highmem")
    assert _layer_ops(report)["softmax"] == "rvv"
    got = run(tmp_path / "inner_out", x, tmp_path / "run-inner")[0]
    expected = ort.InferenceSession(classifier(inner_softmax=True).SerializeToString()).run(None, {"x": x})[0]
    assert np.abs(got - expected).max() <= 0.05 * np.abs(expected).max()
