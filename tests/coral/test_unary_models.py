"""Elementwise functions of one tensor in real positions (after convolutions, in the exporters'
spellings) run as int8 tables: on coral-npu every layer is a generated RVV kernel, the outputs equal
the host int8 build bit for bit, and the int8 model stays close to the float one."""


import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edge_ops_models import ACTIVATIONS, conv_activation_model
from test_coral_build import coral_equals_host

@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activation_runs_as_a_table_on_coral_bit_exact_to_host(tmp_path, activation):
    model = conv_activation_model(activation)
    onnx.save(model, tmp_path / "m.onnx")
    rng = np.random.default_rng(1)
    np.save(tmp_path / "calib.npy", rng.normal(size=(32, 1, 3, 10, 10)).astype(np.float32))
    x = rng.normal(size=(1, 3, 10, 10)).astype(np.float32)
    output, report = coral_equals_host(tmp_path / "m.onnx", tmp_path / "calib.npy", x, tmp_path)
    layers = report["coral"]["layers"]
    assert {row["impl"] for row in layers} <= {"rvv", "transpose"} and [r["op"] for r in layers].count("lut") == 1
    expected = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
    scale = np.abs(expected).max()
    assert np.abs(output - expected).max() <= 0.05 * scale  # int8 tables and convs: a few steps
