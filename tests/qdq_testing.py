"""Small quantisation set-ups shared by the unit tests (test_insert_qdq.py, test_insert_qdq_int16.py)."""

import os
import tempfile

import numpy as np

import onnx_models
from compiler.frontend import import_onnx
from compiler.partition import partition
from compiler.passes.fold_constants import fold_constants
from compiler.passes.pipeline import optimise
from compiler.passes.to_nhwc import to_nhwc
from compiler.quant.calib_data import input_specs, load_calibration
from compiler.quant.calibrate import calibrate
from compiler.quant.plan import plan_activations
from compiler.targets import get_target

INT8_FAMILIES = get_target("host").int8_families


def int8_partitioned(model):
    return partition(fold_constants(to_nhwc(optimise(import_onnx(model)))), INT8_FAMILIES)


def calibrated_tiny_cnn():
    """(tiny_cnn 16x16, its int8-partitioned module, ranges over 40 uniform samples, their plan)."""
    model = onnx_models.tiny_cnn(size=16)
    mod = int8_partitioned(model)
    samples = np.random.default_rng(0).uniform(-1, 1, (40, 3, 16, 16)).astype(np.float32)
    path = os.path.join(tempfile.mkdtemp(), "calib.npz")
    np.savez(path, input=samples)
    calibration = load_calibration(path, input_specs(mod, ["input"]), limit=40)
    ranges = calibrate(mod, calibration, progress=False)
    return model, mod, ranges, plan_activations(mod, ranges, ["input"])
