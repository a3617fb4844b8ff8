"""Hand-off packages (compiler/backends/handoff.py): `ascend` (float ONNX, atc.sh, aipp.cfg) and `sophon`
(float ONNX, TPU-MLIR calibration table, deploy.sh) for the digits CNN with its calibration set.

The vendor tools are not here, so the tests check what this machine can: the files and scripts, the
calibration table read back as TPU-MLIR reads it against the scales report.json records (an independent
record of our plan), and the packaged ONNX in ONNX Runtime against our float host build.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from compiler.backends.sophon import ENTRY, parse_table, tpu_mlir_qparams

REPO = Path(__file__).resolve().parents[2]
DIGITS = REPO / "examples" / "digits"
QUANT = ["--quantize", "int8", "--calib", DIGITS / "calib.npz"]


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "compiler", *map(str, args)], capture_output=True, text=True,
                          timeout=600)


def _build(out, target, *flags):
    result = _cli("build", DIGITS / "digits_cnn.onnx", "--target", target, "-o", out, *flags)
    assert result.returncode == 0, result.stderr
    return json.loads((out / "report.json").read_text())


@pytest.fixture(scope="module")
def sophon(tmp_path_factory):
    out = tmp_path_factory.mktemp("sophon") / "out"
    return out, _build(out, "sophon", *QUANT)


@pytest.fixture(scope="module")
def ascend(tmp_path_factory):
    out = tmp_path_factory.mktemp("ascend") / "out"
    return out, _build(out, "ascend", *QUANT)


def test_sophon_package(sophon):
    out, report = sophon
    for name in ("model.onnx", "model_cali_table", "deploy.sh"):
        assert (out / name).is_file(), name
    script = (out / "deploy.sh").read_text()
    for word in ("model_transform.py", "--model_def model.onnx", "--input_shapes '[[1,1,8,8]]'", "model_deploy.py",
                 "--quantize INT8", "--calibration_table model_cali_table", "--chip bm1684x", "model_int8.bmodel"):
        assert word in script, word
    assert subprocess.run(["sh", "-n", out / "deploy.sh"]).returncode == 0
    assert all(c["passed"] for c in report["backend"]["verified"]), report["backend"]["verified"]
    assert "TPU-MLIR" in " ".join(report["backend"]["not_run_here"])
    assert "Not run on this machine" in (out / "report.md").read_text()


def test_calibration_table_reads_back_to_our_scales(sophon):
    """Every tensor report.json lists with an ONNX node: the table's min/max give our scale and zero point
    (TPU-MLIR --asymmetric), its threshold our scale where symmetric int8 (/127) or uint8 (/255) holds it."""
    out, report = sophon
    text = (out / "model_cali_table").read_text()
    lines = text.splitlines()
    assert lines[0].startswith("# genetated time: ") and lines[1].startswith("# histogram number: ")
    assert lines[2] == f"# sample number: {report['quantization']['calibration']['samples']}"
    assert all(line.startswith("#") or ENTRY.fullmatch(line) for line in lines)
    table = parse_table(text)
    model = onnx.load(out / "model.onnx")
    outputs = {node.name: node.output[0] for node in model.graph.node}
    outputs.update((value.name, value.name) for value in model.graph.input)
    rows = [(outputs[row["onnx_node"]], row) for row in report["quantization"]["tensors"] if row["onnx_node"] in outputs]
    assert len({name for name, _ in rows}) == 11  # input, 9 groups, flatten
    for name, row in rows:
        entry, scale, zero_point = table[name], row["scale"], row["zero_point"]
        theirs, theirs_zero_point, signed = tpu_mlir_qparams(entry, asymmetric=True)
        assert theirs == pytest.approx(scale, rel=1e-6)
        assert theirs_zero_point - (0 if signed else 128) == zero_point
        symmetric, _, signed = tpu_mlir_qparams(entry, asymmetric=False)
        if zero_point == 0:  # symmetric int8: threshold / 127
            assert signed and np.float32(symmetric) == np.float32(scale)
        elif zero_point == -128:  # uint8: threshold / 255
            assert entry.min == 0 and not signed and np.float32(symmetric) == np.float32(scale)
        else:
            assert entry.threshold == max(abs(entry.min), abs(entry.max))
    # intermediate tensors of our fused groups carry ONNX Runtime's range (here a Conv before its BN)
    assert table["/features/features.0/Conv_output_0"].min < 0


def test_packaged_onnx_matches_float_build(sophon, tmp_path):
    out, _ = sophon
    host = tmp_path / "host"
    _build(host, "host")
    sample = np.load(DIGITS / "sample.npy")
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    theirs = session.run(None, {"image": sample})[0]
    result = _cli("run", host, "--input", DIGITS / "sample.npy", "--output", tmp_path / "host.npy")
    assert result.returncode == 0, result.stderr
    ours = np.load(tmp_path / "host.npy")
    assert np.abs(theirs - ours).max() <= 1e-4 * np.abs(ours).max()
    # `run` on a hand-off OUT executes its ONNX in ONNX Runtime and says so
    result = _cli("run", out, "--input", DIGITS / "sample.npy", "--output", tmp_path / "sophon.npy")
    assert result.returncode == 0, result.stderr
    assert "ONNX Runtime" in result.stdout
    np.testing.assert_array_equal(np.load(tmp_path / "sophon.npy"), theirs)


def test_ascend_package(ascend):
    out, report = ascend
    for name in ("model.onnx", "atc.sh", "aipp.cfg", "quant_params.json"):
        assert (out / name).is_file(), name
    script = (out / "atc.sh").read_text()
    for word in ("atc ", "--framework=5", '--model="$MODEL"', "MODEL=model.onnx", "--output=model",
                 "--soc_version=", "Ascend310", "--input_shape=image:1,1,8,8", "--insert_op_conf=aipp.cfg",
                 "amct_onnx calibration", "--data_dir=calib"):
        assert word in script, word
    assert subprocess.run(["sh", "-n", out / "atc.sh"]).returncode == 0
    aipp = (out / "aipp.cfg").read_text()
    fields = dict(re.findall(r"^\s*(\w+)\s*:\s*(\S+)", aipp, re.M))
    assert fields["aipp_mode"] == "static" and fields["input_format"] == "YUV400_U8"
    assert fields["src_image_size_w"] == fields["src_image_size_h"] == "8"
    assert fields["var_reci_chn_0"] == "1.0" and "identity" in aipp
    samples = sorted((out / "calib").glob("*.bin"))
    assert len(samples) == 100 and samples[0].stat().st_size == 64 * 4
    params = json.loads((out / "quant_params.json").read_text())
    assert params["image"]["zero_point"] == -128 and "logits" in params
    assert all(c["passed"] for c in report["backend"]["verified"]), report["backend"]["verified"]


def test_ascend_float_build(tmp_path):
    """A float build hands off the float ONNX without our parameters or samples."""
    out = tmp_path / "out"
    report = _build(out, "ascend")
    assert not (out / "quant_params.json").exists() and not (out / "calib").exists()
    assert "amct_onnx" not in (out / "atc.sh").read_text()
    assert all(c["passed"] for c in report["backend"]["verified"])


def test_sophon_needs_our_calibration(tmp_path):
    result = _cli("build", DIGITS / "digits_cnn.onnx", "--target", "sophon", "-o", tmp_path / "out")
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "--quantize int8" in errors[0]
    assert not (tmp_path / "out").exists()
