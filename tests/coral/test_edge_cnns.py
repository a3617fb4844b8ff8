"""Today's edge CNNs (tests/zoo_models.py: torchvision / timm architectures in plain torch.nn,
exported by torch.onnx with seeded weights) on coral-npu, at a small input so that the suite stays
fast (the 224x224 figures are benchmarks/coral_model_zoo.py's):

  - EfficientNet-Lite0 imports although its TensorFlow "SAME" padding is computed from Shape ops;
  - MobileNetV3-small's hard-swish, squeeze-excite (mean, hard-sigmoid, broadcast multiply), 5x5
    depthwise and every other layer run on generated RVV kernels: nothing on kernels/ref or TVM,
    no layer computing in float, and no layout transpose but the one at the NCHW input (LCNet-0.5,
    the same operators again, is benchmarks/coral_model_zoo.py's only: the suite's time);
  - the logits equal the host int8 build's bit for bit, and stay close to ONNX Runtime's float.
"""

import json

import numpy as np
import onnxruntime as ort
import pytest

from test_coral_build import cli, run
from zoo_models import export

SIZE = 32


@pytest.mark.parametrize("name", ["mobilenet_v3_small", "efficientnet_lite0"])
def test_edge_cnn_runs_entirely_on_rvv_kernels_bit_exact_to_host(tmp_path, name):
    model = export(name, tmp_path / f"{name}.onnx", size=SIZE, seed=0)
    rng = np.random.default_rng(0)
    np.save(tmp_path / "calib.npy", rng.normal(size=(8, 1, 3, SIZE, SIZE)).astype(np.float32))
    x = rng.normal(size=(1, 3, SIZE, SIZE)).astype(np.float32)
    outputs = {}
    for target, flags in (("coral-npu", ["--memory", "soc"]), ("host", [])):
        result = cli("build", model, "-o", tmp_path / target, "--target", target, "--quantize", "int8", "--calib",
                     tmp_path / "calib.npy", "--calib-samples", "8", *flags)
        assert result.returncode == 0, result.stderr
        outputs[target] = run(tmp_path / target, x, tmp_path / f"run-{target}")[0]
    np.testing.assert_array_equal(outputs["coral-npu"], outputs["host"])
    report = json.loads((tmp_path / "coral-npu" / "report.json").read_text())
    impls = [row["impl"] for row in report["coral"]["layers"]]
    assert set(impls) <= {"rvv", "transpose"} and impls.count("transpose") == 1, impls
    assert report["quantization"]["float_layers"] == []
    assert all(row["precision"] == "int8" for row in report["layers"])
    expected = ort.InferenceSession(str(model)).run(None, {"input": x})[0]
    cosine = float(np.sum(outputs["host"] * expected) / (np.linalg.norm(outputs["host"]) * np.linalg.norm(expected)))
    assert cosine > 0.99, cosine


def test_a_mean_without_keepdims_is_the_int8_global_pool(tmp_path):
    """ReduceMean over H and W with keepdims=0 (timm's head, LCNet's squeeze-excite) feeding a Gemm."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(3)
    inits = [numpy_helper.from_array(rng.normal(0, 0.3, (16, 3, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(rng.normal(0, 0.3, (10, 16)).astype(np.float32), "fc"),
             numpy_helper.from_array(np.array([2, 3], np.int64), "axes")]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("ReduceMean", ["r", "axes"], ["m"], name="mean", keepdims=0),
             helper.make_node("Gemm", ["m", "fc"], ["y"], name="fc", transB=1)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 12, 12])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    onnx.save(model, tmp_path / "m.onnx")
    np.save(tmp_path / "calib.npy", rng.normal(size=(8, 1, 3, 12, 12)).astype(np.float32))
    result = cli("build", tmp_path / "m.onnx", "-o", tmp_path / "out", "--target", "coral-npu", "--memory", "highmem",
                 "--quantize", "int8", "--calib", tmp_path / "calib.npy")
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    layers = report["coral"]["layers"]
    assert "global_avg_pool2d" in [row["op"] for row in layers] and report["quantization"]["float_layers"] == []
    assert {row["impl"] for row in layers} <= {"rvv", "transpose"}
    assert sum(row["impl"] == "transpose" for row in layers) == 1  # the NCHW input's, nothing inside
