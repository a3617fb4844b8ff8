"""PReLU, Resize (nearest and bilinear, each coordinate mode), Slice, Split and DepthToSpace between
convolutions: the int8 build runs each on its own kernel (no float layer), coral-npu runs them as
generated RVV kernels bit-exact to the host int8 build, and the int8 model stays close to ONNX Runtime's
float result."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edge_ops_models import OPS, conv_op_conv_model
from test_coral_build import coral_equals_host


@pytest.mark.parametrize("op", OPS)
def test_op_runs_on_int8_kernels_on_coral_bit_exact_to_host(tmp_path, op):
    model = conv_op_conv_model(op)
    onnx.save(model, tmp_path / "m.onnx")
    rng = np.random.default_rng(1)
    np.save(tmp_path / "calib.npy", rng.normal(size=(16, 3, 10, 10)).astype(np.float32))
    x = rng.normal(size=(1, 3, 10, 10)).astype(np.float32)
    output, report = coral_equals_host(tmp_path / "m.onnx", tmp_path / "calib.npy", x, tmp_path)
    assert report["quantization"]["float_layers"] == []
    layers = report["coral"]["layers"]
    kernel = OPS[op][2]
    if kernel is not None:
        rows = [row for row in layers if row["op"] == kernel or row["op"].startswith(kernel + "_")]  # add_relu
        assert rows and all(row["impl"] == "rvv" for row in rows), layers
    expected = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
    assert np.abs(output - expected).max() <= 0.05 * np.abs(expected).max()
