"""`build ... --emit tflite`: our int8 model as a .tflite that LiteRT runs bit-exact to our build.

Each test builds an ONNX model with our calibration and `--emit tflite`, then runs OUT/model.tflite
in LiteRT's built-in kernels (no XNNPACK) and OUT/model.so in the Relax VM on the same random
inputs, here, independently of the check the build itself makes: int8 and uint8 outputs must be
equal; float outputs (--io float) too, since the build follows LiteRT's DEQUANTIZE. A file with
float layers (--keep-float) agrees within float rounding. Reading the file back with our TFLite
frontend gives the same build again (its own scales, bit-exact).
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from edge_ops_models import (ACTIVATIONS, OPS, conv_activation_model, conv_op_conv_model, input_activation_model,
                             output_activation_model, overflowing_bias_model)
from onnx_models import depthwise_block, residual_block, tiny_cnn
from tflite_builder import litert_run

from compiler.run.host import run_host

REPO = Path(__file__).resolve().parents[2]
DIGITS = REPO / "examples" / "digits"


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "compiler", *map(str, args)], capture_output=True, text=True,
                          timeout=900)


def _build(model: onnx.ModelProto, tmp, *flags):
    """Build `model` int8 with --emit tflite from random-normal calibration; returns (OUT, report)."""
    onnx.save(model, tmp / "m.onnx")
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    np.save(tmp / "calib.npy", np.random.default_rng(1).normal(size=(24, *shape)).astype(np.float32))
    out = tmp / "out"
    result = _cli("build", tmp / "m.onnx", "-o", out, "--quantize", "int8", "--calib", tmp / "calib.npy",
                  "--emit", "tflite", *flags)
    assert result.returncode == 0, result.stderr
    return out, json.loads((out / "report.json").read_text())


def _inputs(report, rng):
    tensors = report["interface"]["inputs"]
    def sample(tensor):
        if tensor["dtype"] in ("int8", "uint8"):
            info = np.iinfo(tensor["dtype"])
            return rng.integers(info.min, info.max, tensor["shape"], endpoint=True).astype(tensor["dtype"])
        return rng.normal(size=tensor["shape"]).astype(np.float32)
    return [sample(t) for t in tensors]


def _run_both(out, tmp, inputs):
    paths = []
    for index, value in enumerate(inputs):
        paths.append(str(tmp / f"input{index}.npy"))
        np.save(paths[-1], value)
    return litert_run(out / "model.tflite", inputs, reference=False), run_host(out, paths).outputs


EXACT_MODELS = {
    "tiny CNN (conv, depthwise, pool, residual, mean, dense)": lambda: tiny_cnn(softmax=False),
    "residual block": residual_block,
    "depthwise block": depthwise_block,
    **{op: (lambda op=op: conv_op_conv_model(op)) for op in OPS if op != "ConvTranspose grouped dilated cropped"},
    **{f"{name} (table)": (lambda name=name: conv_activation_model(name)) for name in ACTIVATIONS},
    # the table reads the int8 model input, or writes the int8 output: its scale comes from the build's
    # plan (qdq.INPUT_QPARAMS_ATTR, OUTPUT_QPARAMS_ATTR)
    "Sigmoid on the model input (table)": lambda: input_activation_model("Sigmoid"),
    "Sigmoid as the model output (table)": lambda: output_activation_model("Sigmoid"),
}


# float I/O adds only the QUANTIZE / DEQUANTIZE at the ends: a few models show it
FLOAT_IO = ["tiny CNN (conv, depthwise, pool, residual, mean, dense)", "residual block", "PRelu per channel",
            "Resize linear half_pixel", "SiLU (table)"]


@pytest.mark.parametrize("name, io", [(name, "int8") for name in EXACT_MODELS] + [(name, "float") for name in FLOAT_IO])
def test_exported_tflite_equals_the_build_in_litert(tmp_path, name, io):
    out, report = _build(EXACT_MODELS[name](), tmp_path, "--io", io)
    assert report["tflite"]["check"]["identical"] and report["tflite"]["float_layers"] == []
    rng = np.random.default_rng(7)
    for _ in range(3):
        inputs = _inputs(report, rng)
        theirs, ours = _run_both(out, tmp_path, inputs)
        for want, have in zip(theirs, ours):
            assert want.dtype == have.dtype
            np.testing.assert_array_equal(have, want)


@pytest.mark.parametrize("name", ["tiny CNN (conv, depthwise, pool, residual, mean, dense)", "HardSwish (table)",
                                  "Sigmoid on the model input (table)", "Sigmoid as the model output (table)"])
def test_uint8_io_is_one_quantize_each_side_and_bit_exact(tmp_path, name):
    out, report = _build(EXACT_MODELS[name](), tmp_path, "--io", "uint8")
    assert report["tflite"]["check"]["identical"] and report["tflite"]["operators"]["QUANTIZE"] == 2
    rng = np.random.default_rng(2)
    for _ in range(3):
        theirs, ours = _run_both(out, tmp_path, _inputs(report, rng))
        assert theirs[0].dtype == np.uint8
        np.testing.assert_array_equal(ours[0], theirs[0])


def test_the_exported_file_uses_litert_builtins_for_its_tables(tmp_path):
    """HARD_SWISH's table is LiteRT's own only when our build computes it as LiteRT does; a function
    TFLite has no builtin for (SiLU) is the lookup itself (CAST, ADD, GATHER): both exact above."""
    _, report = _build(conv_activation_model("SiLU"), tmp_path)
    assert {"CAST", "GATHER"} <= set(report["tflite"]["operators"])


def test_digits_cnn_round_trips_through_our_tflite_frontend(tmp_path):
    """The exported file, built again by our TFLite frontend with its own scales, is the same model:
    equal outputs on the validation images."""
    out = tmp_path / "out"
    result = _cli("build", DIGITS / "digits_cnn.onnx", "-o", out, "--quantize", "int8", "--calib",
                  DIGITS / "calib.npz", "--emit", "tflite", "--io", "int8")
    assert result.returncode == 0, result.stderr
    again = tmp_path / "again"
    result = _cli("build", out / "model.tflite", "-o", again)
    assert result.returncode == 0, result.stderr
    report = json.loads((again / "report.json").read_text())
    assert all(row["kind"] == "int8" for row in report["layers"] if row["op"] not in ("reshape",)), report["layers"]
    rng = np.random.default_rng(3)
    for _ in range(8):
        np.save(tmp_path / "x.npy", rng.integers(-128, 128, (1, 1, 8, 8)).astype(np.int8))
        first = run_host(out, [str(tmp_path / "x.npy")]).outputs[0]
        second = run_host(again, [str(tmp_path / "x.npy")]).outputs[0]
        np.testing.assert_array_equal(second, first)


def test_kept_float_layer_is_a_float_operator_within_float_rounding(tmp_path):
    out, report = _build(tiny_cnn(softmax=False), tmp_path, "--keep-float", "pw_conv")
    tflite = report["tflite"]
    assert tflite["float_layers"] and tflite["check"]["expected"].startswith("within float rounding")
    theirs, ours = _run_both(out, tmp_path, _inputs(report, np.random.default_rng(0)))
    scale = float(np.abs(theirs[0]).max())
    np.testing.assert_allclose(ours[0], theirs[0], rtol=0, atol=1e-5 * max(scale, 1.0))


def test_a_quantised_layer_the_int8_kernels_refuse_is_a_float_operator(tmp_path):
    """Its weight and bias are dequantized constants in the build, written as float32 constants
    (as MediaPipe's hand_landmark_full at random calibration); LiteRT agrees within float rounding."""
    out, report = _build(overflowing_bias_model(), tmp_path, "--io", "int8")
    tflite = report["tflite"]
    assert [name.split(":")[0] for name in tflite["float_layers"]] == ["big_bias", "relu"], tflite["float_layers"]
    assert tflite["check"]["expected"].startswith("within float rounding")
    for _ in range(3):
        theirs, ours = _run_both(out, tmp_path, _inputs(report, np.random.default_rng(0)))
        assert np.abs(theirs[0].astype(np.int32) - ours[0]).max() <= 1


@pytest.mark.parametrize("name, io", [("face_landmark", "float"), ("hand_landmark_lite", "int8")])
def test_a_mediapipe_model_exports_bit_exact_to_litert(tmp_path, name, io):
    """Trained models, random calibration: LiteRT runs the exported file bit-exact to the build.
    face_landmark (float I/O) has residual ADDs (gemmlowp's double rounding in all three rescales,
    quant/integer_spec.py), PRELUs and its input QUANTIZE (LiteRT's blocks of 8 times the reciprocal,
    the rest divided and rounded half away); hand_landmark_lite (int8 I/O) returns the int8 output of
    a LOGISTIC table, whose scale only the build's plan holds (qdq.OUTPUT_QPARAMS_ATTR)."""
    from mediapipe_models import mediapipe_model

    out = tmp_path / "out"
    result = _cli("build", mediapipe_model(name), "-o", out, "--quantize", "int8", "--calib", "random",
                  "--calib-samples", "8", "--emit", "tflite", "--io", io)
    assert result.returncode == 0, result.stderr
    check = json.loads((out / "report.json").read_text())["tflite"]["check"]
    assert check["expected"] == "bit-exact" and check["identical"], check


def test_emit_tflite_of_a_float_build_is_one_error_line_and_no_output(tmp_path):
    result = _cli("build", DIGITS / "digits_cnn.onnx", "-o", tmp_path / "out", "--emit", "tflite")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: --emit tflite: the export writes an int8 model")
    assert not (tmp_path / "out").exists()


def test_layer_tflite_cannot_express_is_named_and_nothing_is_written(tmp_path):
    model = conv_op_conv_model("ConvTranspose grouped dilated cropped")
    onnx.save(model, tmp_path / "m.onnx")
    result = _cli("build", tmp_path / "m.onnx", "-o", tmp_path / "out", "--quantize", "int8", "--calib", "random",
                  "--emit", "tflite")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: --emit tflite: layer up:") and "grouped convolution" in last, last
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["edge_cnn_int8", "edge_cnn_uint8", "edge_ops_int8", "edge_ops_uint8"])
def test_a_tflite_converter_model_exports_to_a_file_litert_runs_identically(tmp_path, name):
    """TF's converter's full-int8 file (tests/fixtures/tflite) in, our file out: LiteRT gives the
    same outputs for both (the build is bit-exact to the first, the second to the build)."""
    original = REPO / "tests" / "fixtures" / "tflite" / f"{name}.tflite"
    out = tmp_path / "out"
    result = _cli("build", original, "-o", out, "--emit", "tflite")
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["tflite"]["check"]["identical"]
    rng = np.random.default_rng(9)
    for _ in range(3):
        inputs = _inputs(report, rng)
        for want, have in zip(litert_run(original, inputs, reference=False),
                              litert_run(out / "model.tflite", inputs, reference=False)):
            np.testing.assert_array_equal(have, want)


def test_hard_swish_at_scales_litert_refuses_is_the_lookup(tmp_path):
    """A HARD_SWISH whose output scale is below 1/128 of its input's (LiteRT's kernel needs a
    non-positive output exponent: MediaPipe's selfie segmentation, calibrated on random inputs)
    goes in as the lookup itself (CAST, ADD, GATHER) instead of failing the export."""
    import sys as _sys

    _sys.path.insert(0, str(REPO / "tests"))
    from tflite_builder import TFLiteBuilder

    b = TFLiteBuilder()
    x = b.input("x", [1, 64])
    y = b.tensor("y", [1, 64])
    b.op("HARD_SWISH", [x], [y])
    b.output(y)
    model = b.save(tmp_path / "hswish.tflite")
    # input range [-300, 2] (scale ~1.18), output [-0.375, 1.67] (scale ~0.008): a ratio below 1/128
    calib = np.random.default_rng(2).uniform(-300, 2, (16, 1, 64)).astype(np.float32)
    calib[:, 0, :2] = [-300.0, 2.0]
    np.save(tmp_path / "calib.npy", calib)
    out = tmp_path / "out"
    result = _cli("build", model, "-o", out, "--quantize", "int8", "--calib", tmp_path / "calib.npy",
                  "--emit", "tflite")
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "report.json").read_text())
    assert "HARD_SWISH" not in report["tflite"]["operators"] and "GATHER" in report["tflite"]["operators"]
    assert report["tflite"]["check"]["identical"], report["tflite"]["check"]
    inputs = _inputs(report, np.random.default_rng(3))
    theirs, ours = _run_both(out, tmp_path, [value * 100 for value in inputs])  # across the calibrated range
    np.testing.assert_array_equal(theirs[0], ours[0])
