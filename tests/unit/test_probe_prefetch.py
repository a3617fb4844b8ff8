"""An int8 build's instrumented twin (compile_model(probe=True), compiler/build.py's layer errors).

Its C compiles beside the deployed module's (c_module's object store), and the layer errors and
top-1 it gives are those of the twin lowered afterwards, as before. A target with its own artefact
compiles no host int8 module unless something asks for it.
"""

import numpy as np
import pytest

import onnx_models
from compiler.build import _measure_quantisation
from compiler.codegen import c_module
from compiler.compile_model import compile_model
from compiler.quant.quantize import QuantConfig
from compiler.targets import get_target


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    model = onnx_models.tiny_cnn(seed=3)
    folder = tmp_path_factory.mktemp("probe")
    rng = np.random.default_rng(11)
    np.savez(folder / "calib.npz", input=rng.uniform(-2, 2, (24, 3, 16, 16)).astype(np.float32))
    images = rng.uniform(-2, 2, (16, 3, 16, 16)).astype(np.float32)
    validation = (images, rng.integers(0, 10, 16), (1, 3, 16, 16))
    # 16 samples calibrate, 8 are held out for the layer errors
    return model, QuantConfig(calib=str(folder / "calib.npz"), samples=16, progress=False), validation


def test_the_prefetched_twin_measures_as_the_twin_lowered_later(setup):
    model, quant, validation = setup
    prefetched = compile_model(model, get_target("host"), quant=quant, probe=True)
    assert prefetched.probe is not None
    compiled_by_the_build = c_module._OBJECTS.compiled
    measured = _measure_quantisation(prefetched, validation)
    assert c_module._OBJECTS.compiled == compiled_by_the_build  # the measurement linked the prefetched object

    later = compile_model(model, get_target("host"), quant=quant)
    assert later.probe is None
    reference = _measure_quantisation(later, validation)
    assert measured["layer_errors"] and measured["layer_errors"] == reference["layer_errors"]
    assert measured["accuracy"] == reference["accuracy"]


def test_a_firmware_target_compiles_the_host_int8_module_only_when_asked(setup):
    _, quant, _ = setup
    model = onnx_models.tiny_cnn(seed=4)  # C the other test has not compiled
    compiled = compile_model(model, get_target("coral-npu"), quant=quant)
    assert compiled.host_lowered is None
    started = c_module._OBJECTS.compiled
    lowered = compiled.lowered  # e.g. --emit tflite's check against the host build
    assert lowered is not None and compiled.host_lowered is lowered
    assert c_module._OBJECTS.compiled == started + 1
    assert compiled.lowered is lowered and c_module._OBJECTS.compiled == started + 1
