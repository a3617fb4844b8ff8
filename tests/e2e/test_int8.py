"""INT8 builds end to end through the CLI: accuracy, report, --keep-float, bad input."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from test_bad_input import assert_clean_failure

DIGITS = Path(__file__).resolve().parents[2] / "examples" / "digits"


def cli(*args):
    return subprocess.run([sys.executable, "-m", "compiler", *map(str, args)], capture_output=True, text=True, timeout=600)


def build_digits(out, *extra):
    result = cli("build", DIGITS / "digits_cnn.onnx", "-o", out, "--quantize", "int8",
                 "--calib", DIGITS / "calib.npz", "--val", DIGITS / "val.npz", *extra)
    assert result.returncode == 0, result.stderr
    return json.loads((out / "report.json").read_text())


@pytest.fixture(scope="module", params=["minmax", "percentile", "entropy"])
def digits_report(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param) / "out"
    return request.param, out, build_digits(out, "--calib-method", request.param)


def test_digits_int8_accuracy_drops_at_most_one_point(digits_report):
    method, _, report = digits_report
    accuracy = report["quantization"]["accuracy"]
    assert report["quantization"]["calibration"]["method"] == method
    assert accuracy["samples"] == 540
    assert accuracy["float_top1"] >= 97.0
    assert accuracy["drop_points"] <= 1.0, accuracy


def test_digits_report_explains_the_quantisation(digits_report):
    _, out, report = digits_report
    quant = report["quantization"]
    # every conv, the dense layer, the residual add and the pools run on int8 kernels
    assert quant["float_layers"] == []
    kernels = [row["kernel"] for row in quant["int8_layers"]]
    assert sum(k.startswith("npu_ref.conv2d") for k in kernels) == 5 and "npu_ref.add_relu" in kernels
    assert all(row["precision"] == "int8" for row in report["layers"] if row["macs"])
    # parameters: a scale and zero point for every tensor, zero exactly representable
    for tensor in quant["tensors"]:
        lo, hi = tensor["range"]
        assert tensor["scale"] > 0 and -128 <= tensor["zero_point"] <= 127
        assert lo - tensor["scale"] <= tensor["scale"] * (-128 - tensor["zero_point"]) <= 0 <= hi
    errors = quant["layer_errors"]
    assert len(errors) >= 9 and [e["sqnr_db"] for e in errors] == sorted(e["sqnr_db"] for e in errors)
    assert all(e["sqnr_db"] > 20 and e["cosine"] > 0.99 for e in errors)
    assert quant["model_bytes"]["int8"] < quant["model_bytes"]["float"] / 3
    markdown = (out / "report.md").read_text()
    assert "## INT8 quantisation" in markdown and "worst first" in markdown
    # the SQNR of every layer output as a chart too, shown under the table
    assert quant["plots"] == ["layer_sqnr.png"] and (out / "layer_sqnr.png").stat().st_size > 1000
    assert "![layer_sqnr.png](layer_sqnr.png)" in markdown
    # graph.onnx: one node per int8 kernel, naming the ONNX nodes it computes
    import onnx

    graph = onnx.load(out / "graph.onnx")
    onnx.checker.check_model(graph)
    int8_nodes = [n for n in graph.graph.node if n.domain == "compiler.int8"]
    convs = [n for n in int8_nodes if n.op_type.startswith("conv2d")]
    assert len(convs) == 5
    sources = {n.name: [s.decode() for a in n.attribute if a.name == "onnx_nodes" for s in a.strings] for n in convs}
    assert all(any(src.endswith("/Conv") for src in nodes) for nodes in sources.values())


def test_int8_build_runs_from_the_cli(digits_report, tmp_path):
    _, out, _ = digits_report
    with np.load(DIGITS / "val.npz") as val:
        images, labels = val["image"][:20], val["label"][:20]
    predictions = []
    for index, image in enumerate(images):
        np.save(tmp_path / "x.npy", image.reshape(1, 1, 8, 8))
        result = cli("run", out, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
        assert result.returncode == 0, result.stderr
        predictions.append(int(np.load(tmp_path / "y.npy").argmax()))
        if index == 2:
            break
    assert predictions == labels[: len(predictions)].tolist()


def test_keep_float_shows_in_the_report(tmp_path):
    report = build_digits(tmp_path / "out", "--keep-float", "/classifier/Gemm")
    quant = report["quantization"]
    assert quant["kept_float"] == ["/classifier/Gemm"]
    assert quant["float_layers"] == ["/classifier/Gemm"]
    dense = next(row for row in report["layers"] if row["op"].startswith("dense"))
    assert dense["precision"] == "float"
    assert quant["accuracy"]["drop_points"] <= 1.0


def test_a_layer_the_int8_kernels_refuse_is_float_and_the_report_says_why(tmp_path):
    """A bias beyond int32 at s_in x s_w (edge_ops_models.overflowing_bias_model): the conv's int32
    accumulator could overflow, so the int8 kernel refuses it and it computes in float; report.json,
    report.md and the summary on stdout give that reason (a layer kept by --keep-float has none)."""
    import onnx
    from edge_ops_models import overflowing_bias_model

    onnx.save(overflowing_bias_model(), tmp_path / "m.onnx")
    result = cli("build", tmp_path / "m.onnx", "-o", tmp_path / "out", "--quantize", "int8", "--calib", "random",
                 "--keep-float", "pw")
    assert result.returncode == 0, result.stderr
    quant = json.loads((tmp_path / "out" / "report.json").read_text())["quantization"]
    assert set(quant["float_layers"]) == {"big_bias", "pw"}
    assert list(quant["float_reasons"]) == ["big_bias"]
    assert quant["float_reasons"]["big_bias"].startswith("conv2d: its int32 accumulator could overflow")
    assert "`big_bias` (conv2d: its int32 accumulator could overflow" in (tmp_path / "out" / "report.md").read_text()
    assert "big_bias: conv2d: its int32 accumulator could overflow" in result.stdout + result.stderr


def test_keep_float_holds_for_adds_and_pools(tmp_path):
    # dequantize -> float add (or pool) -> quantize is also the QDQ form of an int8 add: the int8
    # partitioner must not take a layer the user kept float back
    report = build_digits(tmp_path / "out", "--keep-float", "/features/features.10/Add,/features/features.9/MaxPool")
    kept = {"/features/features.10/Add", "/features/features.9/MaxPool"}
    rows = [row for row in report["layers"] if kept & set(row["onnx_nodes"])]
    assert len(rows) == 2 and all(row["precision"] == "float" for row in rows), rows
    assert report["quantization"]["accuracy"]["drop_points"] <= 1.0


@pytest.mark.parametrize("args, needles", [
    (["--quantize", "int8"], ["--calib"]),
    (["--calib", "random"], ["--calib", "--quantize int8"]),
    (["--quantize", "int8", "--calib", "random", "--keep-float", "no_such_node"], ["--keep-float", "no_such_node"]),
    (["--quantize", "int8", "--calib", "/nonexistent/calib.npz"], ["calib.npz"]),
])
def test_bad_quantisation_flags(tmp_path, args, needles):
    result = cli("build", DIGITS / "digits_cnn.onnx", "-o", tmp_path / "out", *args)
    assert_clean_failure(result, *needles)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("samples, needle", [
    (np.zeros((10, 1, 9, 9), np.float32), "image"),            # wrong shape
    (np.zeros((10, 1, 8, 8), np.float64), "float64"),          # wrong dtype
    (np.zeros((0, 1, 8, 8), np.float32), "empty"),             # empty set
    (np.full((10, 1, 8, 8), np.nan, np.float32), "NaN"),       # NaN in the data
])
def test_bad_calibration_data(tmp_path, samples, needle):
    np.savez(tmp_path / "calib.npz", image=samples)
    result = cli("build", DIGITS / "digits_cnn.onnx", "-o", tmp_path / "out", "--quantize", "int8",
                 "--calib", tmp_path / "calib.npz")
    assert_clean_failure(result, "calib.npz", needle)


def test_random_calibration_warns(tmp_path):
    result = cli("build", DIGITS / "digits_cnn.onnx", "-o", tmp_path / "out", "--quantize", "int8", "--calib", "random")
    assert result.returncode == 0, result.stderr
    assert "warning:" in result.stderr and "random" in result.stderr


def test_integer_io_is_the_float_build_without_its_boundary_conversions(tmp_path):
    """int8 in/out (quantised by the caller with report.json's parameters) equals the float-io build
    bit for bit: the float build only adds quantize at the input and dequantize at the output."""
    from compiler.quant.reference import dequantize, quantize

    reports = {}
    for io in ("float", "int8", "uint8"):
        result = cli("build", DIGITS / "digits_cnn.onnx", "-o", tmp_path / io, "--quantize", "int8",
                     "--calib", DIGITS / "calib.npz", "--calib-samples", "50", "--io", io)
        assert result.returncode == 0, result.stderr
        reports[io] = json.loads((tmp_path / io / "report.json").read_text())
    io8 = reports["int8"]["quantization"]["io"]
    assert reports["int8"]["interface"]["inputs"][0]["dtype"] == "int8"
    assert reports["uint8"]["quantization"]["io"]["inputs"][0]["zero_point"] == io8["inputs"][0]["zero_point"] + 128
    (inp,), (out,) = io8["inputs"], io8["outputs"]
    with np.load(DIGITS / "val.npz") as val:
        image = val["image"][7].reshape(1, 1, 8, 8)
    feeds = {"float": image, "int8": quantize(image, inp["scale"], inp["zero_point"])}
    feeds["uint8"] = (feeds["int8"].astype(np.int16) + 128).astype(np.uint8)
    outputs = {}
    for io, x in feeds.items():
        np.save(tmp_path / f"x_{io}.npy", x)
        result = cli("run", tmp_path / io, "--input", tmp_path / f"x_{io}.npy", "--output", tmp_path / f"y_{io}.npy")
        assert result.returncode == 0, result.stderr
        outputs[io] = np.load(tmp_path / f"y_{io}.npy")
    assert outputs["int8"].dtype == np.int8 and outputs["uint8"].dtype == np.uint8
    np.testing.assert_array_equal(outputs["uint8"].astype(np.int16) - 128, outputs["int8"])
    np.testing.assert_array_equal(dequantize(outputs["int8"], out["scale"], out["zero_point"]), outputs["float"])


def test_committed_digits_split_is_scikit_learns():
    """calib.npz / val.npz are regenerated from sklearn's bundled digits and compared exactly."""
    result = subprocess.run([sys.executable, str(DIGITS / "train.py"), "--check"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_weights_that_cannot_be_quantised_name_the_layer(tmp_path):
    # a BatchNorm with negative variances folds into NaN conv weights
    import onnx
    from onnx import numpy_helper

    import onnx_models

    model = onnx_models.conv_bn_act(channels=(3, 8), size=8)
    for index, tensor in enumerate(model.graph.initializer):
        if tensor.name.endswith("_var"):
            model.graph.initializer[index].CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(tensor), tensor.name))
    onnx.save(model, str(tmp_path / "m.onnx"))
    result = cli("build", tmp_path / "m.onnx", "-o", tmp_path / "out", "--quantize", "int8", "--calib", "random")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "cannot quantise its weights" in last and "NaN" in last
    assert not (tmp_path / "out").exists()
