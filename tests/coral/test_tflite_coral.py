"""Full-int8 .tflite models on coral-npu: built with their own scales (no --quantize), every layer
on a generated RVV kernel, and the firmware's int8 outputs equal to the host int8 build's bit for
bit (both implement one integer spec)."""

import numpy as np
import pytest
from tflite_int8_models import mobile_block_model, squeeze_excite_model

from compiler.build import build
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
