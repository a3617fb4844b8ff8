"""Arm Ethos-U targets (compiler/backends/vela.py): ethos-u55-128, ethos-u55-256, ethos-u65-256.

Each build exports our int8 model as .tflite, checks it in LiteRT against the host int8 build, and
hands it to Arm Vela. The tests check what Vela reports (positive cycles, memory, the operators left
on the CPU, named with Vela's reason), that model_vela.tflite is written and model.tflite loads in
LiteRT, and that `run` (LiteRT on model.tflite) equals a host int8 build of the same model with
`--emit tflite` (the same TFLite integer spec) bit for bit; and the bad inputs: a float build, missing
input files, a missing Vela package.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from edge_ops_models import conv_activation_model
from onnx_models import depthwise_block, tiny_cnn

from compiler.backends import vela
from compiler.build import build
from compiler.errors import CompilerError
from compiler.export.verify import litert_interpreter
from compiler.quant.quantize import QuantConfig
from compiler.run.host import run_host

REPO = Path(__file__).resolve().parents[2]
DIGITS = REPO / "examples" / "digits"
TARGETS = ["ethos-u55-128", "ethos-u55-256", "ethos-u65-256"]
SMALL = {"tiny CNN": lambda: tiny_cnn(softmax=False), "depthwise block": depthwise_block}


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "compiler", *map(str, args)], capture_output=True, text=True,
                          timeout=600)


def _quant(calib, io="float"):
    return QuantConfig(calib=str(calib), samples=100, method="minmax", percentile=99.99, keep_float=(), io=io,
                       progress=False)


def _inputs(report, rng, count=3):
    def sample(tensor):
        if tensor["dtype"] in ("int8", "uint8"):
            info = np.iinfo(tensor["dtype"])
            return rng.integers(info.min, info.max, tensor["shape"], endpoint=True).astype(tensor["dtype"])
        return rng.normal(size=tensor["shape"]).astype(np.float32)
    return [[sample(t) for t in report["interface"]["inputs"]] for _ in range(count)]


def _save(folder: Path, inputs) -> list[str]:
    paths = []
    for index, value in enumerate(inputs):
        paths.append(str(folder / f"input{index}.npy"))
        np.save(paths[-1], value)
    return paths


def _check_estimate(out: Path, report: dict, target: str) -> None:
    entry = report["backend"]
    assert entry["tool"].startswith("Arm Vela 5.2")
    assert all(c["passed"] for c in entry["verified"]), entry["verified"]
    assert entry["performance"]["figure"] == "cycles" and entry["performance"]["value"] > 0
    assert entry["performance"]["inferences_per_second"] > 0
    memory = entry["memory"]
    assert memory["sram_bytes"] > 0
    # weights: off-chip flash on the U55 systems (Shared_Sram), DRAM on the U65 (Dedicated_Sram)
    assert (memory["dram_bytes"] if target == "ethos-u65-256" else memory["flash_bytes"]) > 0
    assert entry["vela"]["accelerator"] == target and entry["operators"]["on_target"] >= 1
    assert any("FVP" in line for line in entry["not_run_here"])
    assert (out / "model_vela.tflite").is_file() and (out / "vela_summary.csv").is_file()
    assert report["tflite"]["check"]["identical"]
    litert_interpreter(model_path=str(out / "model.tflite"))  # loads and allocates
    assert "Arm Vela" in (out / "report.md").read_text()


@pytest.fixture(scope="module")
def digits_host(tmp_path_factory):
    out = tmp_path_factory.mktemp("digits") / "host"
    result = _cli("build", DIGITS / "digits_cnn.onnx", "-o", out, "--quantize", "int8", "--calib", DIGITS / "calib.npz",
                  "--emit", "tflite")
    assert result.returncode == 0, result.stderr
    return out


@pytest.mark.parametrize("target", TARGETS)
def test_digits_cnn_through_vela_and_run_equals_the_host_int8_build(tmp_path, digits_host, target):
    out = tmp_path / "out"
    result = _cli("build", DIGITS / "digits_cnn.onnx", "--target", target, "-o", out, "--quantize", "int8",
                  "--calib", DIGITS / "calib.npz")
    assert result.returncode == 0, result.stderr
    assert "Arm Vela" in result.stdout and "model_vela.tflite" in result.stdout
    # float input and output: the QUANTIZE and DEQUANTIZE at the edges stay on the CPU, said on stderr
    assert f"note: --target {target}: Vela leaves 1 QUANTIZE on the CPU (the model's float input" in result.stderr
    report = json.loads((out / "report.json").read_text())
    _check_estimate(out, report, target)
    assert sorted(layer.split()[0] for layer in report["backend"]["operators"]["fallback"]["layers"]) == \
        ["DEQUANTIZE", "QUANTIZE"]
    sample = np.load(DIGITS / "sample.npy").astype(np.float32)
    np.save(tmp_path / "x.npy", sample)
    result = _cli("run", out, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    assert result.returncode == 0, result.stderr
    assert "LiteRT" in result.stdout and "FVP" in result.stdout
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), run_host(digits_host, [str(tmp_path / "x.npy")]).outputs[0])
    for index, inputs in enumerate(_inputs(report, np.random.default_rng(5))):
        paths = _save(tmp_path, inputs)
        theirs = vela.run(out, paths, report).outputs
        for have, want in zip(theirs, run_host(digits_host, paths).outputs):
            assert have.dtype == want.dtype
            np.testing.assert_array_equal(have, want, err_msg=f"input {index}")


@pytest.fixture(scope="module", params=list(SMALL))
def small_model(request, tmp_path_factory):
    """(folder, model file, calibration, host int8 build with --emit tflite)."""
    folder = tmp_path_factory.mktemp("small")
    model = SMALL[request.param]()
    onnx.save(model, folder / "m.onnx")
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    np.save(folder / "calib.npy", np.random.default_rng(1).normal(size=(16, *shape)).astype(np.float32))
    build(folder / "m.onnx", "host", folder / "host", quant=_quant(folder / "calib.npy", "int8"), emit=("tflite",))
    return folder


@pytest.mark.parametrize("target", TARGETS)
def test_small_models_int8_io_run_entirely_on_the_npu_and_bit_exact(small_model, target):
    out = small_model / target
    notes = []
    report = build(small_model / "m.onnx", target, out, quant=_quant(small_model / "calib.npy", "int8"),
                   warn=notes.append)
    _check_estimate(out, report, target)
    assert report["backend"]["operators"]["fallback"]["count"] == 0 and notes == [], notes
    for inputs in _inputs(report, np.random.default_rng(9)):
        paths = _save(small_model, inputs)
        for have, want in zip(vela.run(out, paths, report).outputs, run_host(small_model / "host", paths).outputs):
            assert have.dtype == np.int8
            np.testing.assert_array_equal(have, want)


def test_an_operator_vela_cannot_place_is_named_with_its_fallback(tmp_path):
    """SiLU is exported as its int8 table lookup (CAST, ADD 128, GATHER); Vela has no GATHER."""
    model = conv_activation_model("SiLU")
    onnx.save(model, tmp_path / "silu.onnx")
    np.save(tmp_path / "calib.npy", np.random.default_rng(1).normal(size=(16, 1, 3, 10, 10)).astype(np.float32))
    out = tmp_path / "out"
    result = _cli("build", tmp_path / "silu.onnx", "--target", "ethos-u55-128", "-o", out, "--quantize", "int8",
                  "--calib", tmp_path / "calib.npy", "--io", "int8")
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stderr.splitlines() if "GATHER" in line)
    assert line.startswith("note: --target ethos-u55-128: Vela leaves 1 GATHER on the CPU: silu_sigmoid"), line
    assert "Unsupported opType" in line and "TFLite GATHER kernel" in line
    report = json.loads((out / "report.json").read_text())
    fallback = report["backend"]["operators"]["fallback"]
    assert fallback["kind"] == "CPU" and "GATHER silu_sigmoid" in fallback["layers"]
    assert fallback["reasons"]["GATHER silu_sigmoid"] == "Unsupported opType"
    assert any("GATHER" in note for note in report["backend"]["notes"])
    assert "`GATHER silu_sigmoid`" in (out / "report.md").read_text()


def test_float_build_on_an_ethos_target_is_one_error_line_and_no_output(tmp_path):
    result = _cli("build", DIGITS / "digits_cnn.onnx", "--target", "ethos-u55-256", "-o", tmp_path / "out")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == ("error: --target ethos-u55-256: Vela takes an int8 model; build "
                                                       "with --quantize int8 (or from a quantised model)")
    assert not (tmp_path / "out").exists()


def test_missing_inputs_are_one_error_line(tmp_path):
    out = tmp_path / "out"
    result = _cli("build", DIGITS / "digits_cnn.onnx", "--target", "ethos-u65-256", "-o", out, "--quantize", "int8",
                  "--calib", DIGITS / "calib.npz")
    assert result.returncode == 0, result.stderr
    result = _cli("run", out, "--input", tmp_path / "missing.npy")
    assert result.returncode == 2 and result.stderr.strip().splitlines()[-1].endswith("missing.npy: no such file")
    np.save(tmp_path / "x.npy", np.zeros((1, 1, 8, 8), np.float32))
    result = _cli("run", out, "--input", tmp_path / "x.npy", "--input", tmp_path / "x.npy")
    assert result.returncode == 2 and "the model has 1 input(s)" in result.stderr.strip().splitlines()[-1]
    (out / "model.tflite").unlink()
    result = _cli("run", out, "--input", tmp_path / "x.npy")
    assert result.returncode == 2 and result.stderr.strip().splitlines()[-1].endswith(
        "no model.tflite (is this an Ethos-U build?)")


def test_missing_vela_package_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setattr(vela, "VELA_MODULE", "ethosu_not_installed.vela")
    onnx.save(depthwise_block(), tmp_path / "m.onnx")
    np.save(tmp_path / "calib.npy", np.random.default_rng(1).normal(size=(8, 1, 8, 8, 8)).astype(np.float32))
    with pytest.raises(CompilerError, match=r"--target ethos-u55-128 needs the Python package ethos-u-vela: install "
                                            r"it with `.venv/bin/pip install ethos-u-vela==5\.2\.0`"):
        build(tmp_path / "m.onnx", "ethos-u55-128", tmp_path / "out", quant=_quant(tmp_path / "calib.npy"))
    assert not (tmp_path / "out").exists()


def test_targets_lists_the_ethos_u_targets():
    result = _cli("targets")
    assert result.returncode == 0
    for target in TARGETS:
        assert f"{target}: Arm Ethos-U" in result.stdout
        assert "artefact: model_vela.tflite; runs with: vela" in result.stdout


def test_a_system_configuration_vela_does_not_have_is_named():
    from compiler.targets import get_target

    target = get_target("ethos-u55-128")
    config = {**target.data["vela"], "system_config": "Ethos_U55_Nowhere"}
    with pytest.raises(CompilerError, match=r"system_config 'Ethos_U55_Nowhere' is not a system configuration of "
                                            r"Vela's Arm/vela.ini"):
        vela._system_config(target, config)
    text = vela._system_config(target, target.data["vela"])  # vela.ini's section, the target's clock
    assert text.startswith("[System_Config.Ethos_U55_High_End_Embedded_500000000Hz]\n")
    assert "core_clock=500000000\n" in text and "Sram_max_reads=4\n" in text


def test_mediapipe_face_detector_through_vela(tmp_path):
    """A trained model with TFLite's same-scale constraints and 28-channel depthwise layers (MediaPipe's
    BlazeFace: two heads' convolutions reshaped into one CONCATENATION, channel-padding residuals):
    the exported .tflite is bit-exact to the build in LiteRT, Vela compiles it and runs no operator on
    the CPU. (LiteRT refused the CONCATENATION before plan_activations' tflite_scales; the
    depthwise rounding and the input QUANTIZE's ties each put an output 1 LSB off; --io int8 left
    both outputs float, and Vela two DEQUANTIZE on the CPU.)"""
    from mediapipe_models import mediapipe_model

    with pytest.warns(Warning):  # calibrating on random samples
        report = build(mediapipe_model("face_detection_short_range"), "ethos-u55-128", tmp_path / "out",
                       quant=QuantConfig(calib="random", samples=8, io="int8", progress=False))
    assert report["tflite"]["check"]["identical"], report["tflite"]["check"]
    assert report["tflite"]["operators"]["CONCATENATION"] == 2
    # --io int8 reaches both outputs of a model whose frontend binds them into a tuple
    assert [output["dtype"] for output in report["interface"]["outputs"]] == ["int8", "int8"]
    backend = report["backend"]
    assert all(check["passed"] for check in backend["verified"]), backend["verified"]
    assert backend["operators"]["fallback"]["count"] == 0, backend["operators"]["fallback"]
    assert backend["performance"]["value"] > 0 and (tmp_path / "out" / "model_vela.tflite").is_file()
