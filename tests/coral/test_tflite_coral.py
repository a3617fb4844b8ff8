"""Full-int8 .tflite models on coral-npu: built with their own scales (no --quantize), every layer
on a generated RVV kernel, and the firmware's int8 outputs equal to the host int8 build's bit for
bit (both implement one integer spec). And a trained float MediaPipe model quantised by our PTQ."""

import numpy as np
import pytest
from mediapipe_models import mediapipe_model
from tflite_builder import TFLiteBuilder, litert_run
from tflite_int8_models import mobile_block_model, squeeze_excite_model

from compiler.build import build
from compiler.quant.quantize import QuantConfig
from compiler.run.coral import run_coral
from compiler.run.host import run_host

MODELS = {"mobile_block": mobile_block_model, "squeeze_excite": squeeze_excite_model}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_int8_tflite_on_coral_equals_host(tmp_path, name):
    path = MODELS[name](seed=0).save(tmp_path / f"{name}.tflite")
    report = build(path, "coral-npu", tmp_path / "coral", memory="highmem")
    build(path, "host", tmp_path / "host")
    layers = report["coral"]["layers"]
    assert layers and all(row["impl"] == "rvv" for row in layers if row["op"] != "reshape"), layers
    rng = np.random.default_rng(3)
    for sample in range(3):
        x = rng.integers(-128, 128, report["interface"]["inputs"][0]["shape"]).astype(np.int8)
        np.save(tmp_path / f"x{sample}.npy", x)
        on_coral = run_coral(tmp_path / "coral", [str(tmp_path / f"x{sample}.npy")]).outputs[0]
        on_host = run_host(tmp_path / "host", [str(tmp_path / f"x{sample}.npy")]).outputs[0]
        assert on_coral.dtype == np.int8
        np.testing.assert_array_equal(on_coral, on_host)


@pytest.mark.parametrize("size", [7, 29])
def test_tflite_dequantize_on_coral_equals_litert(tmp_path, size):
    """An int8 -> float32 DEQUANTIZE output: LiteRT's blocks of 8 (integer_spec.DEQUANTIZE_BLOCK)
    and the rounded-once rest, float32 bit patterns equal to LiteRT's built-in kernel."""
    b = TFLiteBuilder()
    y = b.tensor("y", [1, size], "FLOAT32")
    b.op("DEQUANTIZE", [b.input("x", [1, size], "INT8", scale=0.0123, zero_point=5)], [y], version=2)
    b.output(y)
    path = b.save(tmp_path / "dequantize.tflite")
    report = build(path, "coral-npu", tmp_path / "coral", memory="highmem")
    assert [(row["op"], row["impl"]) for row in report["coral"]["layers"]] == [("dequantize", "rvv")]
    x = np.random.default_rng(size).integers(-128, 128, (1, size)).astype(np.int8)
    np.save(tmp_path / "x.npy", x)
    on_coral = run_coral(tmp_path / "coral", [str(tmp_path / "x.npy")]).outputs[0]
    want = litert_run(path, [x], reference=False)[0]
    assert on_coral.dtype == np.float32 and np.array_equal(on_coral.view(np.uint32), want.view(np.uint32))


# The two smallest trained MediaPipe models (float; PRELU, pools, strided slices; two heads through
# RESHAPE and CONCATENATION), quantised by our PTQ on synthetic uniform [-1, 1] calibration samples,
# about 20 s each; benchmarks/mediapipe_table.py runs every MediaPipe model so.
PTQ_MODELS = {"hand_recrop": (1, 256, 256, 3), "face_detection_short_range": (1, 128, 128, 3)}


@pytest.mark.parametrize("name", sorted(PTQ_MODELS))
def test_mediapipe_model_quantised_on_coral_equals_host(tmp_path, name):
    shape = PTQ_MODELS[name]
    rng = np.random.default_rng(0)
    np.save(tmp_path / "calib.npy", rng.uniform(-1, 1, (8, *shape)).astype(np.float32))
    quant = QuantConfig(calib=str(tmp_path / "calib.npy"), samples=8, progress=False)
    report = build(mediapipe_model(name), "coral-npu", tmp_path / "coral", quant=quant, memory="soc")
    build(mediapipe_model(name), "host", tmp_path / "host", quant=quant)
    layers = report["coral"]["layers"]
    assert all(row["impl"] == "rvv" for row in layers), [row for row in layers if row["impl"] != "rvv"]
    np.save(tmp_path / "x.npy", rng.uniform(-1, 1, shape).astype(np.float32))
    on_coral = run_coral(tmp_path / "coral", [str(tmp_path / "x.npy")])
    on_host = run_host(tmp_path / "host", [str(tmp_path / "x.npy")])
    assert on_coral.total_instructions > 0 and len(on_coral.outputs) == len(on_host.outputs)
    for have, want in zip(on_coral.outputs, on_host.outputs):
        np.testing.assert_array_equal(have, want)


def test_emitted_tflite_equals_the_coral_firmware(tmp_path):
    """`--emit tflite` on coral-npu: the firmware (TFLite integer spec, RVV kernels) and LiteRT
    running OUT/model.tflite give the same int8 outputs."""
    from pathlib import Path

    digits = Path(__file__).resolve().parents[2] / "examples" / "digits"
    quant = QuantConfig(calib=str(digits / "calib.npz"), io="int8", progress=False)
    report = build(digits / "digits_cnn.onnx", "coral-npu", tmp_path / "coral", quant=quant, memory="highmem",
                   emit=("tflite",))
    assert report["tflite"]["check"]["identical"]
    rng = np.random.default_rng(4)
    for sample in range(3):
        x = rng.integers(-128, 128, (1, 1, 8, 8)).astype(np.int8)
        np.save(tmp_path / f"x{sample}.npy", x)
        on_coral = run_coral(tmp_path / "coral", [str(tmp_path / f"x{sample}.npy")]).outputs[0]
        np.testing.assert_array_equal(on_coral, litert_run(tmp_path / "coral" / "model.tflite", [x], reference=False)[0])
