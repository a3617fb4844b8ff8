"""Memory like a real chip: the soc profile, --extmem / --dtcm, and memory-aware weight packing
(int16-packed weights while the firmware fits, int8 where it must), bit-exact either way."""

import json

import numpy as np
import onnx
import pytest

import onnx_models
from test_coral_build import cli, run

# A dense 512 -> 1000 layer: 512,000 int8 weights, 1,024,000 bytes packed as int16.
WEIGHTS = 512 * 1000


@pytest.fixture(scope="module")
def dense_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("dense")
    onnx.save(onnx_models.dense_bias_relu(batch=1, features=(512, 1000)), root / "dense.onnx")
    np.save(root / "calib.npy", np.random.default_rng(0).normal(size=(8, 1, 512)).astype(np.float32))
    return root


def build(root, name, *memory):
    out = root / name
    result = cli("build", root / "dense.onnx", "-o", out, "--target", "coral-npu", "--quantize", "int8", "--calib",
                 root / "calib.npy", *memory)
    return result, out


def test_weights_stay_int16_while_they_fit_and_become_int8_when_they_must(dense_model):
    roomy, roomy_out = build(dense_model, "soc", "--memory", "soc")
    tight, tight_out = build(dense_model, "tight", "--memory", "soc", "--extmem", "768K")
    assert roomy.returncode == 0 and tight.returncode == 0, roomy.stderr + tight.stderr
    roomy_report = json.loads((roomy_out / "report.json").read_text())["coral"]
    tight_report = json.loads((tight_out / "report.json").read_text())["coral"]
    assert roomy_report["weight_bytes"] == {"int8": WEIGHTS, "stored": 2 * WEIGHTS, "int16_packed_layers": 1}
    assert tight_report["weight_bytes"] == {"int8": WEIGHTS, "stored": WEIGHTS, "int16_packed_layers": 0}
    assert tight_report["memory_profile"] == f"soc,EXTMEM={768 * 1024}"
    extmem = next(r for r in tight_report["memory_map"] if r["region"] == "EXTMEM")
    assert extmem["size_bytes"] == 768 * 1024 and extmem["used_bytes"] <= extmem["size_bytes"]
    x = np.random.default_rng(1).normal(size=(1, 512)).astype(np.float32)
    np.testing.assert_array_equal(run(roomy_out, x, dense_model / "r1")[0], run(tight_out, x, dense_model / "r2")[0])
    assert "as int8" in (tight_out / "report.md").read_text()


def test_a_model_that_fits_nowhere_names_the_region_the_bytes_and_the_largest_consumers(dense_model):
    result, out = build(dense_model, "tiny", "--memory", "soc", "--extmem", "256K")
    assert result.returncode == 2 and not out.exists()
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: the model does not fit memory profile soc,EXTMEM=262144: EXTMEM needs")
    assert "largest: layer fc 522,000, layer output dequantize 1,024; try --memory highmem" in line


@pytest.mark.parametrize("flags, needle", [
    (["--extmem", "lots"], "--extmem lots: expected a size"),
    (["--memory", "default", "--extmem", "1M"], "memory profile default has no EXTEMEM".replace("EXTEMEM", "EXTMEM")),
    (["--memory", "soc", "--extmem", "512M"], "overlap"),
    (["--target", "host", "--dtcm", "1M"], "target host has no memory profiles"),
])
def test_bad_memory_flags_are_one_line(dense_model, flags, needle):
    result = cli("build", dense_model / "dense.onnx", "-o", dense_model / "bad", "--target", "coral-npu", *flags)
    assert result.returncode == 2, result.stderr
    assert needle in result.stderr.strip().splitlines()[-1]
