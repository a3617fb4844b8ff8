"""`build model.tflite`: real trained MediaPipe models (float32 I/O, float16 weights behind
DEQUANTIZE, sparse weights behind DENSIFY) on the host, and full-int8 models written as TF's
converter writes them (tests/tflite_int8_models.py) built with their own scales.

Float: every MediaPipe model LiteRT runs equal to LiteRT's built-in kernels within 1e-4 of the
output's largest magnitude (float32 sums in another order, through up to 100 layers; 1e-3 for
pose_landmark_full, see LITERT_MODELS), and NHWC kept native (no transpose layer).
Int8: every layer on an int8 kernel; the convolutions, dense layers and ADD bit-exact to LiteRT's
built-in kernels, whole models within the stated steps (see the bound's comment).
"""

import json
import subprocess
import sys

import numpy as np
import pytest
from mediapipe_models import mediapipe_model
from tflite_builder import TFLiteBuilder, litert_run
from tflite_int8_models import OPERATORS, Int8Model, mobile_block_model, single_op_model, squeeze_excite_model

from compiler.build import build
from compiler.run.host import run_host

FLOAT_TOLERANCE = 1e-4


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "compiler", *map(str, args)], capture_output=True, text=True,
                          timeout=900)


def _run(out, inputs, tmp):
    paths = []
    for index, value in enumerate(inputs):
        paths.append(str(tmp / f"input{index}.npy"))
        np.save(paths[-1], value)
    return run_host(out, paths).outputs


# Every MediaPipe model LiteRT's built-in kernels run: 11 of 14 (face_landmark_with_attention needs
# MediaPipe's Landmarks2TransformMatrix, TransformTensorBilinear and TransformLandmarks, which we do
# not convert either; the two selfie_segmentation models its Convolution2DTransposeBias, below), each
# 5-15 s. pose_landmark_full's segmentation logits (up to ~1300 on random inputs, from 5 resizes and
# long sums) differ by 4e-4 of their magnitude, as much as LiteRT's own kernels disagree among
# themselves there (BUILTIN_REF 3.4e-4 and XNNPACK 5.4e-4 from the built-in optimized kernels).
LITERT_MODELS = dict.fromkeys(["face_detection_full_range_sparse", "face_detection_short_range", "face_landmark",
                               "hand_landmark_full", "hand_landmark_lite", "hand_recrop", "iris_landmark",
                               "palm_detection_full", "palm_detection_lite", "pose_detection"], FLOAT_TOLERANCE)
LITERT_MODELS["pose_landmark_full"] = 1e-3


def test_mediapipe_model_with_custom_ops_we_lack_names_them_all(tmp_path):
    """face_landmark_with_attention: one error line naming each of its 11 MediaPipe custom operators
    with its index (read from the file with LiteRT's schema here), exit 2, no output folder left."""
    from ai_edge_litert import schema_py_generated as schema

    path = mediapipe_model("face_landmark_with_attention")
    model = schema.ModelT.InitFromPackedBuf(path.read_bytes(), 0)
    codes = model.operatorCodes
    operators = model.subgraphs[0].operators
    custom = [f"#{i} CUSTOM:{codes[op.opcodeIndex].customCode.decode()}" for i, op in enumerate(operators)
              if codes[op.opcodeIndex].customCode]
    assert len(custom) == 11
    result = _cli("build", path, "--target", "host", "-o", tmp_path / "out")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert f"11 operators are not supported: {', '.join(custom)} (supported: " in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", sorted(LITERT_MODELS))
def test_mediapipe_model_on_host_matches_litert(tmp_path, name):
    path = mediapipe_model(name)
    report = build(path, "host", tmp_path / "out")
    # no layout transpose: the only ones left are DEPTH_TO_SPACE's own move (one between reshapes each)
    transposes = [row for row in report["layers"] if row["op"] == "permute_dims"]
    assert len(transposes) == report["ops_imported"].get("DepthToSpace", 0), transposes
    rng = np.random.default_rng(0)
    inputs = [rng.uniform(-1, 1, tensor["shape"]).astype(np.float32) for tensor in report["interface"]["inputs"]]
    expected = litert_run(path, inputs, reference=False)
    got = _run(tmp_path / "out", inputs, tmp_path)
    assert len(got) == len(expected)
    for want, have in zip(expected, got):
        np.testing.assert_allclose(have, want, rtol=0, atol=LITERT_MODELS[name] * max(1.0, float(np.abs(want).max())))


def test_selfie_segmentation_with_mediapipe_custom_op_builds(tmp_path):
    """Convolution2DTransposeBias (a MediaPipe custom op LiteRT cannot run: its equivalence to
    TRANSPOSE_CONV is checked in tests/unit/test_tflite_frontend.py) and HARD_SWISH."""
    result = _cli("build", mediapipe_model("selfie_segmentation"), "--target", "host", "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["interface"]["outputs"][0]["shape"] == [1, 256, 256, 1]
    assert any("CUSTOM:Convolution2DTransposeBias" in node for row in report["layers"] for node in row["onnx_nodes"])
    x = np.random.default_rng(0).uniform(0, 1, (1, 256, 256, 3)).astype(np.float32)
    mask = _run(tmp_path / "out", [x], tmp_path)[0]
    assert mask.shape == (1, 256, 256, 1) and np.all((mask >= 0) & (mask <= 1))  # the model ends in LOGISTIC


# Steps between our host int8 build and LiteRT's built-in kernels, measured on 20 random inputs.
# CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED follow LiteRT's requantisation exactly (double
# rounding, ties up: test_mac_layers_are_bit_exact_to_litert), and so does MEAN, with keep_dims
# (squeeze_excite: LiteRT's optimized MEAN) and without (mobile_block: its reference MEAN), see
# tests/unit/test_tflite_mean.py: both models are bit-exact.
INT8_STEPS = {"mobile_block": (mobile_block_model, 0), "squeeze_excite": (squeeze_excite_model, 0)}


def _worst_steps(path, out, tmp, samples=20) -> tuple[int, float]:
    """(largest difference in steps, fraction of identical outputs) against LiteRT."""
    rng = np.random.default_rng(1)
    shapes = [tensor["shape"] for tensor in json.loads((out / "report.json").read_text())["interface"]["inputs"]]
    worst, same, total = 0, 0, 0
    for _ in range(samples):
        inputs = [rng.integers(-128, 128, shape).astype(np.int8) for shape in shapes]
        want = litert_run(path, inputs, reference=False)[0]
        have = _run(out, inputs, tmp)[0]
        assert have.dtype == np.int8 and have.shape == want.shape
        steps = np.abs(have.astype(np.int32) - want)
        worst, same, total = max(worst, int(steps.max())), same + int(np.sum(steps == 0)), total + steps.size
    return worst, same / total


@pytest.mark.parametrize("name", sorted(INT8_STEPS))
def test_full_int8_model_builds_with_its_own_scales(tmp_path, name):
    make, steps = INT8_STEPS[name]
    path = make(seed=0).save(tmp_path / f"{name}.tflite")
    report = build(path, "host", tmp_path / "out")
    assert report["interface"]["inputs"][0]["dtype"] == "int8"
    computing = [row for row in report["layers"] if row["op"] not in ("reshape",)]
    assert computing and all(row["kind"] == "int8" for row in computing), report["layers"]
    worst, _ = _worst_steps(path, tmp_path / "out", tmp_path)
    assert worst <= steps


@pytest.mark.parametrize("last", ["stem", "dw", "pw", "residual"])
def test_mac_layers_are_bit_exact_to_litert(tmp_path, last):
    """conv 3x3 s2 -> depthwise -> pointwise -> ADD, cut after each: LiteRT's output bit for bit."""
    builder = mobile_block_model(seed=0)
    names = [t.name for t in builder.graph.tensors]
    builder.graph.outputs = [names.index(last)]
    builder.graph.operators = builder.graph.operators[:["stem", "dw", "pw", "residual"].index(last) + 1]
    path = builder.save(tmp_path / f"{last}.tflite")
    build(path, "host", tmp_path / "out")
    worst, identical = _worst_steps(path, tmp_path / "out", tmp_path, samples=5)
    assert (worst, identical) == (0, 1.0)


def test_float_tflite_quantised_with_calibration(tmp_path):
    path = mediapipe_model("face_detection_short_range")
    rng = np.random.default_rng(0)
    np.save(tmp_path / "calib.npy", rng.uniform(-1, 1, (8, 1, 128, 128, 3)).astype(np.float32))
    result = _cli("build", path, "--target", "host", "-o", tmp_path / "out", "--quantize", "int8",
                  "--calib", tmp_path / "calib.npy")
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["quantization"]["float_layers"] == []
    x = rng.uniform(-1, 1, (1, 128, 128, 3)).astype(np.float32)
    # 8 noise images calibrate it: both heads (box regressors, scores) stay within cosine 0.98 of float
    for have, want in zip(_run(tmp_path / "out", [x], tmp_path), litert_run(path, [x], reference=False)):
        cosine = float(have.ravel() @ want.ravel() / (np.linalg.norm(have) * np.linalg.norm(want)))
        assert cosine > 0.98, cosine


def _quantised_relu(activation_type="INT8", scales=(0.05,), zero_points=(0,)) -> bytes:
    """x -> RELU -> y, y quantised as given (per channel when several scales)."""
    builder = TFLiteBuilder()
    x = builder.input("x", [1, 4], activation_type, scale=0.01, zero_point=0)
    y = builder.tensor("y", [1, 4], activation_type, scale=np.array(scales, np.float32),
                       zero_point=np.array(zero_points, np.int64), axis=1)
    builder.op("RELU", [x], [y])
    builder.output(y)
    return builder.bytes()


@pytest.mark.parametrize("content, needle", [
    (b"TFL", "not a TFLite model"),
    (b"\x10\x00\x00\x00TFL3" + b"\x00" * 8, "model.tflite"),
    (_quantised_relu("INT16"), "tensor x: int16 quantised activations (TFLite's 16x8 mode) are not supported"),
    (_quantised_relu(scales=(0.1, 0.2, 0.1, 0.3), zero_points=(0, 1, 0, 0)),
     "'#0 RELU:y/QuantizeLinear' (QuantizeLinear): per-channel quantisation of the input (scale shape [4], axis 1)"),
    (_quantised_relu(scales=(-0.05,)), "tensor y: invalid quantisation (scales must be positive"),
], ids=["short", "empty_flatbuffer", "int16_activations", "per_channel_activation", "negative_scale"])
def test_bad_tflite_on_the_command_line(tmp_path, content, needle):
    (tmp_path / "model.tflite").write_bytes(content)
    result = _cli("build", tmp_path / "model.tflite", "--target", "host", "-o", tmp_path / "out")
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and needle in last and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


# One-operator models our host int8 build computes exactly as LiteRT's built-in kernels do
# (benchmarks/tflite_op_exactness.py prints the whole table): all of them.


def _int8_build(name, tmp_path):
    """The one-operator model `name` built for the host: every layer an int8 kernel (or a move on int8)."""
    path = single_op_model(name).save(tmp_path / "model.tflite")
    report = build(path, "host", tmp_path / "out")
    moves = ("reshape", "permute_dims")
    assert all(row["kind"] == "int8" or row["op"] in moves for row in report["layers"]), report["layers"]
    return path


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_operator_is_bit_exact_to_litert(tmp_path, name):
    path = _int8_build(name, tmp_path)
    worst, identical = _worst_steps(path, tmp_path / "out", tmp_path, samples=2)
    assert (worst, identical) == (0, 1.0)


@pytest.mark.parametrize("op", ["TRANSPOSE_CONV", "CONV_2D"])
def test_convolutions_round_exact_ties_up_as_litert(tmp_path, op):
    """Power-of-two scales (requantisation by 2^-11) make exact ties common: LiteRT's TRANSPOSE_CONV
    rounds them as its CONV_2D does (ruy: ties up), which our zero-inserted convolution follows
    (rounding them away from zero makes a few of these outputs differ: measured, this test then fails)."""
    rng = np.random.default_rng(5)
    m = Int8Model(seed=5)
    x = m.activation("x", [1, 9, 10, 16], scale=2**-5, zero_point=3, model_input=True)
    w_scale = np.full(16, 2**-7, np.float32)
    w = m.b.constant("w", rng.integers(-127, 128, (16, 3, 3, 16)).astype(np.int8), scale=w_scale,
                     zero_point=np.zeros(16, np.int64), axis=0)
    if op == "TRANSPOSE_CONV":
        y = m.activation("y", [1, 18, 20, 16], scale=2**-1, zero_point=-5)
        shape = m.b.constant("shape", np.array([1, 18, 20, 16], np.int32))
        m.b.op(op, [shape, w, x, m.bias("b", x, w_scale)], [y], padding="SAME", strideH=2, strideW=2)
    else:
        y = m.activation("y", [1, 9, 10, 16], scale=2**-1, zero_point=-5)
        m.b.op(op, [x, w, m.bias("b", x, w_scale)], [y], padding="SAME", strideH=1, strideW=1)
    m.b.output(y)
    path = m.b.save(tmp_path / "model.tflite")
    build(path, "host", tmp_path / "out")
    worst, identical = _worst_steps(path, tmp_path / "out", tmp_path, samples=6)
    assert (worst, identical) == (0, 1.0)
