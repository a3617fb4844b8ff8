"""ONNX external data is read from the model's own folder, whatever the working directory, and
never from outside it: absolute locations, '..', symbolic links leaving the folder, missing files
and byte ranges outside the file are refused with one line naming the initializer."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto
from onnx.external_data_helper import convert_model_to_external_data

import onnx_models


def cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "compiler", *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def save_external(folder: Path, name="model.onnx", location="weights.bin") -> Path:
    model = onnx_models.conv_bn_act(size=6, seed=4)
    convert_model_to_external_data(model, all_tensors_to_one_file=True, location=location, size_threshold=0)
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, folder / name)
    return folder / name


def first_output(out: Path, cwd: Path, x: np.ndarray) -> np.ndarray:
    np.save(cwd / "x.npy", x)
    result = cli("run", out, "--input", cwd / "x.npy", "--output", cwd / "y.npy", cwd=cwd)
    assert result.returncode == 0, result.stderr
    return np.load(cwd / "y.npy")


def test_weights_beside_the_model_are_used_from_any_working_directory(tmp_path):
    model = save_external(tmp_path / "models")
    decoy_dir = tmp_path / "elsewhere"
    save_external(decoy_dir, "decoy.onnx")  # a different weights.bin in the working directory...
    other = onnx_models.conv_bn_act(size=6, seed=99)
    convert_model_to_external_data(other, all_tensors_to_one_file=True, location="weights.bin", size_threshold=0)
    onnx.save(other, decoy_dir / "decoy.onnx")  # ...with other values
    result = cli("build", model, "-o", tmp_path / "out", cwd=decoy_dir)
    assert result.returncode == 0, result.stderr
    x = np.random.default_rng(0).normal(size=(1, 3, 6, 6)).astype(np.float32)
    import onnxruntime as ort

    expected = ort.InferenceSession(str(model)).run(None, {"x": x})[0]
    np.testing.assert_allclose(first_output(tmp_path / "out", decoy_dir, x), expected, rtol=1e-4, atol=1e-5)


def _point_at(model_path: Path, location: str) -> None:
    model = onnx.load(model_path, load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    onnx.save(model, model_path)


@pytest.mark.parametrize("location, why", [
    ("/etc/passwd", "must be a plain path inside the model's folder"),
    ("../secret.bin", "must be a plain path inside the model's folder"),
    ("sub/../../secret.bin", "must be a plain path inside the model's folder"),
    ("link.bin", "leads outside the model's folder"),
    ("missing.bin", "is missing beside the model"),
])
def test_locations_leaving_the_folder_are_refused(tmp_path, location, why):
    model = save_external(tmp_path / "models")
    (tmp_path / "secret.bin").write_bytes(bytes(4096))
    (tmp_path / "models" / "link.bin").symlink_to(tmp_path / "secret.bin")
    _point_at(model, location)
    result = cli("build", model, "-o", tmp_path / "out", cwd=tmp_path)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert why in result.stderr and "initializer '" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_byte_range_outside_the_file_is_refused(tmp_path):
    model = save_external(tmp_path / "models")
    loaded = onnx.load(model, load_external_data=False)
    tensor = next(t for t in loaded.graph.initializer if t.data_location == TensorProto.EXTERNAL)
    for entry in tensor.external_data:
        if entry.key == "offset":
            entry.value = str(10**9)
    onnx.save(loaded, model)
    result = cli("build", model, "-o", tmp_path / "out", cwd=tmp_path)
    assert result.returncode == 2 and "lie outside 'weights.bin'" in result.stderr, result.stderr
