"""Tuned schedules that do not fit together: each candidate is measured alone, so the tuned
kernels of a model can need more code memory than the profile has even though every one of
them fits. The build then drops the tuned schedules that save the fewest instructions until
the firmware fits, and says so; a model that does not fit even untuned fails as before."""

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest

import onnx_models
from compiler.codegen.int8 import int8_groups
from compiler.compile_model import compile_model
from compiler.coral.build import _fitting, build_firmware, qdq_module
from compiler.coral.graph import extract_graph
from compiler.errors import FitError
from compiler.frontend import load_onnx
from compiler.quant.quantize import QuantConfig
from compiler.targets import get_target
from compiler.tune import database
from compiler.tune.apply import TunedWorkload, kernel_steps, step_workload

CORAL = get_target("coral-npu")
# Code-heavy but valid schedules for the depthwise block's two layers (8 channels at 8x8): more
# channel and pixel blocks, each emitted unrolled. Together with the rest of the firmware they
# overflow the default profile's 8 KB ITCM; each alone fits (checked below).
HEAVY = {
    "dw": {"oc_tile": 1, "px_tile": 3, "lmul": 8, "loop_order": "oc_px", "unroll": 1, "weight_pack": "i16"},
    "pw": {"oc_tile": 12, "px_tile": 5, "lmul": 1, "loop_order": "oc_px", "unroll": 8, "weight_pack": "i8"},
}
# What the forged records claim each saves (dw the least: it is the one to drop).
SAVED = {"dw": 10, "pw": 1000}


@pytest.fixture(scope="module")
def block(tmp_path_factory):
    root = tmp_path_factory.mktemp("fit")
    onnx.save(onnx_models.depthwise_block(channels=8, size=8), str(root / "model.onnx"))
    np.save(root / "calib.npy", np.random.default_rng(0).normal(0, 1, (16, 8, 8, 8)).astype(np.float32))
    quant = QuantConfig(calib=str(root / "calib.npy"), io="int8")
    compiled = compile_model(load_onnx(root / "model.onnx"), CORAL, {}, source="model.onnx", quant=quant)
    steps = {step.name: step for step in kernel_steps(extract_graph(int8_groups(qdq_module(compiled))))}
    records = [database.record(CORAL, step_workload(steps[name]), HEAVY[name], 5000 - SAVED[name], 5000, seed=0)
               for name in HEAVY]
    database.append(root / "db.jsonl", records)
    return root, compiled, steps


def test_the_heavy_schedules_fit_alone_but_not_together(block, tmp_path):
    _, compiled, steps = block
    with pytest.raises(FitError, match="ITCM"):
        build_firmware(compiled, tmp_path / "both", schedules={steps[name].index: HEAVY[name] for name in HEAVY})
    for name in HEAVY:
        build_firmware(compiled, tmp_path / name, schedules={steps[name].index: HEAVY[name]})


def test_build_drops_the_tuned_schedule_saving_least(block, tmp_path):
    root, _, _ = block
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "compiler", "build", root / "model.onnx", "--target", "coral-npu",
                             "--quantize", "int8", "--calib", root / "calib.npy", "--io", "int8",
                             "--tuning-db", root / "db.jsonl", "-o", out], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "tuned schedule of dw is not used" in result.stderr and "ITCM" in result.stderr
    coral = json.loads((out / "report.json").read_text())["coral"]
    rows = {row["name"]: row for row in coral["layers"]}
    assert rows["pw"]["tuned"] and rows["pw"]["schedule"] == HEAVY["pw"]
    assert not rows["dw"]["tuned"] and rows["dw"]["schedule"] != HEAVY["dw"]
    (dropped,) = coral["tuning_db"]["dropped"]
    assert dropped["layers"] == ["dw"] and dropped["saved_instructions"] == SAVED["dw"]
    itcm = next(region for region in coral["memory_map"] if region["region"] == "ITCM")
    assert itcm["used_bytes"] <= itcm["size_bytes"]
    assert "tuned schedule not used for `dw`" in (out / "report.md").read_text()


# ---- the policy alone, on a stand-in for the linker ----


def workloads(**saved):
    return [TunedWorkload(name, {}, amount, [name], [index]) for index, (name, amount) in enumerate(saved.items())]


def linker(budget: int, sizes: dict, base: int):
    """link(tuned) of a firmware of `base` bytes plus each kept workload's size."""
    calls = []

    def link(tuned):
        calls.append([entry.key for entry in tuned])
        size = base + sum(sizes[entry.key] for entry in tuned)
        if size > budget:
            raise FitError(f"needs {size} bytes, has {budget}")
        return size
    return link, calls


def test_policy_keeps_everything_that_fits():
    link, calls = linker(100, {"a": 10, "b": 10}, base=50)
    size, kept, dropped = _fitting(link, workloads(a=5, b=7))
    assert size == 70 and [e.key for e in kept] == ["a", "b"] and dropped == [] and len(calls) == 1


def test_policy_drops_the_smallest_savings_first():
    link, calls = linker(100, {"a": 30, "b": 10, "c": 20}, base=50)
    size, kept, dropped = _fitting(link, workloads(a=100, b=1, c=5))
    # all (110) -> default check (50) -> without b (100: fits)
    assert calls == [["a", "b", "c"], [], ["a", "c"]]
    assert size == 100 and [e.key for e in kept] == ["a", "c"]
    assert [(e.key, str(error)) for e, error in dropped] == [("b", "needs 110 bytes, has 100")]


def test_policy_falls_back_to_the_default_and_fails_like_it():
    link, _ = linker(60, {"a": 30}, base=50)
    size, kept, dropped = _fitting(link, workloads(a=100))
    assert size == 50 and kept == [] and [e.key for e, _ in dropped] == ["a"]
    link, calls = linker(40, {"a": 30}, base=50)
    with pytest.raises(FitError, match="needs 50 bytes"):  # the default's own error, not the tuned one's
        _fitting(link, workloads(a=100))
    assert calls == [["a"], []]
