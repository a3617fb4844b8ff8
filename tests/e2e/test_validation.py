"""Validation before work: invalid models, tensors beyond the limits and bad flags fail with one
`error:` line naming the node, tensor or flag, exit code 2, no traceback and no output folder."""

import json
import shutil
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import onnx_models


def cli(*args):
    return subprocess.run([sys.executable, "-m", "compiler", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def one_error(result, *needles):
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def conv_model(pads=(1, 1, 1, 1), dilations=(1, 1), kernel=3, size=8, opset=17, declared=None, outputs=1):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, size, size])
    weight = helper.make_tensor("w", TensorProto.FLOAT, [4, 2, kernel, kernel], np.ones(8 * kernel * kernel))
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="the_conv", pads=list(pads), dilations=list(dilations))
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, declared or [1, 4, "h", "w"])
    graph = helper.make_graph([node], "g", [x], [y] * outputs, [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    return model


@pytest.mark.parametrize("model, needles", [
    (conv_model(pads=(-1, -1, -1, -1)), ["node 'the_conv' (Conv)", "pads must not contain negative values"]),
    (conv_model(pads=(0, 0, 0, 0), kernel=9), ["node 'the_conv' (Conv)", "empty tensor (1x4x0x0)"]),
    (conv_model(dilations=(100, 100)), ["node 'the_conv' (Conv)", "empty tensor"]),
    (conv_model(dilations=(0, 0)), ["node 'the_conv' (Conv)", "dilations must only contain positive values"]),
    (conv_model(opset=99), ["opset 99", "not one this compiler knows"]),
    (conv_model(declared=[1, 4, 3, 3]), ["node 'the_conv' (Conv)", "existing shape differ"]),
    (conv_model(outputs=2), ["graph output 'y' is listed twice"]),
], ids=["negative-pads", "kernel-beyond-input", "huge-dilation", "zero-dilation", "opset-99", "declared-shape",
        "duplicate-outputs"])
@pytest.mark.parametrize("target", ["host", "coral-npu"])
def test_invalid_models_are_refused_at_import(tmp_path, model, needles, target):
    path = tmp_path / "bad.onnx"
    onnx.save(model, path)
    extra = ["--quantize", "int8", "--calib", "random"] if target == "coral-npu" else []
    one_error(cli("build", path, "--target", target, "-o", tmp_path / "out", *extra), *needles)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.onnx"]


def test_an_ir_version_from_the_future_is_refused(tmp_path):
    model = conv_model()
    model.ir_version = 99
    onnx.save(model, tmp_path / "m.onnx")
    one_error(cli("build", tmp_path / "m.onnx", "-o", tmp_path / "out"), "IR version 99")


def test_a_huge_input_is_refused_before_anything_is_allocated(tmp_path):
    model = onnx_models.conv_bn_act()
    for dim, size in zip(model.graph.input[0].type.tensor_type.shape.dim, (1, 3, 100000, 100000)):
        dim.dim_value = size
    del model.graph.output[0].type.tensor_type.shape.dim[:]
    onnx.save(model, tmp_path / "huge.onnx")
    result = cli("build", tmp_path / "huge.onnx", "-o", tmp_path / "out", "--quantize", "int8", "--calib", "random")
    one_error(result, "input 'x' of shape 1x3x100000x100000", "30,000,000,000 elements")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("built")
    onnx.save(onnx_models.conv_bn_act(), root / "m.onnx")
    assert cli("build", root / "m.onnx", "-o", root / "out").returncode == 0
    np.save(root / "x.npy", np.random.default_rng(0).normal(size=(1, 3, 8, 8)).astype(np.float32))
    return root


@pytest.mark.parametrize("flags, needle", [
    (["--repeat", "0"], "--repeat"), (["--repeat", "-1"], "--repeat"), (["--timeout", "nan"], "--timeout"),
    (["--timeout", "-5"], "--timeout"), (["--timeout", "inf"], "--timeout"),
    (["--output", "y.txt"], "name it .npy (one output) or .npz"),
])
def test_run_flags_are_checked(built, flags, needle):
    one_error(cli("run", built / "out", "--input", built / "x.npy", *flags), needle)


def test_output_npz_is_written_under_the_name_given(built):
    result = cli("run", built / "out", "--input", built / "x.npy", "--output", built / "y.npz")
    assert result.returncode == 0, result.stderr
    assert (built / "y.npz").is_file() and not (built / "y.npz.npy").exists()
    with np.load(built / "y.npz") as archive:
        assert archive.files == ["act_out"]  # the output's own name


def test_a_nan_input_is_refused(built):
    x = np.load(built / "x.npy")
    x[0, 0, 0, 0] = np.nan
    np.save(built / "nan.npy", x)
    one_error(cli("run", built / "out", "--input", built / "nan.npy"), "1 NaN value(s)", "'x'")


@pytest.mark.parametrize("edit, needle", [
    (lambda text: "{ not json", "not a readable report"),
    (lambda text: json.dumps({k: v for k, v in json.loads(text).items() if k != "interface"}), "no 'interface'"),
    (lambda text: json.dumps({**json.loads(text), "interface": {**json.loads(text)["interface"], "inputs": [
        {"name": "x", "shape": [-1, 3, 8, 8], "dtype": "float32"}]}}), "interface.inputs[0].shape"),
])
def test_a_damaged_report_is_one_line(built, tmp_path, edit, needle):
    out = tmp_path / "out"
    shutil.copytree(built / "out", out)
    (out / "report.json").write_text(edit((out / "report.json").read_text()))
    one_error(cli("run", out, "--input", built / "x.npy"), "report.json", needle)


def test_calibration_needs_at_least_one_sample(tmp_path):
    onnx.save(onnx_models.conv_bn_act(), tmp_path / "m.onnx")
    for count in ("0", "-3"):
        one_error(cli("build", tmp_path / "m.onnx", "-o", tmp_path / "out", "--quantize", "int8", "--calib", "random",
                      "--calib-samples", count), "--calib-samples")


@pytest.mark.parametrize("images, labels, needle", [
    (np.zeros((0, 1, 3, 8, 8), np.float32), np.zeros(0, np.int64), "no samples"),
    (np.zeros((2, 1, 3, 8, 8), np.float32), np.array([0, 500]), "label 500 is out of range"),
    (np.zeros((2, 1, 3, 8, 8), np.float32), np.array([0.5, 1.0]), "class index"),
])
def test_validation_data_is_checked(tmp_path, images, labels, needle):
    model = onnx_models.tiny_cnn(size=8, classes=10)
    onnx.save(model, tmp_path / "m.onnx")
    np.savez(tmp_path / "val.npz", x=images.reshape(len(images), *images.shape[2:]), label=labels)
    one_error(cli("build", tmp_path / "m.onnx", "-o", tmp_path / "out", "--quantize", "int8", "--calib", "random",
                  "--val", tmp_path / "val.npz"), needle)
    assert not (tmp_path / "out").exists()
