"""A small tuning run end to end, real tools: `python -m compiler tune` on a small CNN for
coral-npu measures candidates in QEMU, appends the best schedule per workload to the database,
and writes a build made with it whose report has the per-layer default vs tuned table from
two whole-model firmware runs. `build --tuning-db` reproduces the tuned counts exactly.
Candidates whose output differs from kernels/ref are rejected."""

import io
import json
import math
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import onnx
import pytest

import onnx_models
from compiler.coral.simulator import check_simulator_tools
from compiler.tune.measure import Measurer, Task
from compiler.tune.space import Space
from compiler.tune.status import StatusLine
from compiler.tune.workload import workload_of


def cli(*args):
    return subprocess.run([sys.executable, "-m", "compiler", *map(str, args)], capture_output=True, text=True,
                          timeout=900)


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    check_simulator_tools()
    root = tmp_path_factory.mktemp("tune")
    onnx.save(onnx_models.tiny_cnn(seed=3, size=24, softmax=False), str(root / "model.onnx"))
    np.save(root / "calib.npy", np.random.default_rng(1).normal(0, 1, (8, 3, 24, 24)).astype(np.float32))
    model_flags = [root / "model.onnx", "--target", "coral-npu", "--memory", "highmem", "--quantize", "int8",
                   "--calib", root / "calib.npy"]
    result = cli("tune", *model_flags, "--tuning-db", root / "db.jsonl", "-o", root / "out", "--trials", 40,
                 "--seed", 3)
    assert result.returncode == 0, result.stderr
    return root, model_flags, result


def test_tune_records_the_best_schedule_per_workload(tuned):
    root, _, result = tuned
    records = [json.loads(line) for line in (root / "db.jsonl").read_text().splitlines()]
    report = json.loads((root / "out" / "report.json").read_text())["tuning"]
    assert len(records) == len(report["tasks"]) >= 7  # conv x4 shapes, pool, add, global pool, dense
    assert len({r["workload"] for r in records}) == len(records)  # identical workloads tuned once
    res_conv = next(task for task in report["tasks"] if "res_conv1" in task["layers"])
    assert res_conv["layers"] == ["res_conv1", "res_conv2"]
    for row in records:
        assert row["target"] == "coral-npu" and 0 < row["instructions"] <= row["default_instructions"]
    assert report["trials"] <= 40 + len(records)  # the budget (each task's default is measured on top)
    assert "tuning 1/" in result.stderr and "trials" in result.stderr  # the progress line


def test_report_has_default_vs_tuned_per_layer(tuned):
    root, _, result = tuned
    report = json.loads((root / "out" / "report.json").read_text())
    tuning = report["tuning"]
    assert len(tuning["layers"]) == len(report["coral"]["layers"])
    assert sum(row["tuned_instructions"] for row in tuning["layers"]) <= tuning["tuned_total"]
    assert tuning["tuned_total"] <= tuning["default_total"] and tuning["ratio"] <= 1.0
    markdown = (root / "out" / "report.md").read_text()
    assert "## Tuning" in markdown and "| tuned instr |" in markdown
    assert f"{tuning['tuned_total']:,}" in result.stdout


def test_build_with_the_database_reproduces_the_tuned_counts(tuned, tmp_path):
    root, model_flags, _ = tuned
    result = cli("build", *model_flags, "--tuning-db", root / "db.jsonl", "-o", tmp_path / "again")
    assert result.returncode == 0, result.stderr
    layers = json.loads((tmp_path / "again" / "report.json").read_text())["coral"]["layers"]
    assert sum(row["tuned"] for row in layers) >= 9
    x = np.random.default_rng(0).normal(0, 1, (1, 3, 24, 24)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    assert cli("run", tmp_path / "again", "--input", tmp_path / "x.npy").returncode == 0
    counts = [row["instructions"] for row in json.loads((tmp_path / "again" / "run.json").read_text())["layers"]]
    tuning = json.loads((root / "out" / "report.json").read_text())["tuning"]
    # the generated kernels' counts do not depend on the data; reference/float layers might
    for count, row, layer in zip(counts, tuning["layers"], layers):
        if layer["impl"] == "rvv":
            assert count == row["tuned_instructions"], layer["name"]


def test_a_wrong_kernel_is_rejected(tmp_path):
    check_simulator_tools()
    rng = np.random.default_rng(0)
    params = dict(batches=1, pixels=64, channels=1, broadcast=0, subtract=0, left_shift=20, input1_zero_point=1,
                  input1_multiplier=1 << 30, input1_shift=-1,
                  input2_zero_point=2, input2_multiplier=1 << 30, input2_shift=-1, output_zero_point=0,
                  output_multiplier=1 << 30, output_shift=-1, act_min=-128, act_max=127)
    inputs = [rng.integers(-128, 128, 64, dtype=np.int8) for _ in range(2)]
    task = Task(workload_of("add", params, {}), "add", params, {}, inputs, (64,), ["add"])
    measurer = Measurer(tmp_path, jobs=2)
    expected = measurer.reference(task)
    (right,) = measurer.measure(task, [Space.for_task("add", params, 1 << 20).default])
    assert right.instructions > 0 and right.error == ""
    task.expected = expected.copy()
    task.expected[5] ^= 1  # as if the generated kernel were off by one somewhere
    (wrong,) = measurer.measure(task, [right.schedule])
    assert wrong.instructions is None and "1 of 64 values differ from kernels/ref" in wrong.error


def test_bad_time_budget_is_one_line(tmp_path):
    result = cli("tune", tmp_path / "m.onnx", "--tuning-db", tmp_path / "db", "-o", tmp_path / "o",
                 "--time-budget", "15x")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: --time-budget 15x: not a duration")


def test_a_time_budget_alone_lifts_the_trial_limit():
    from compiler.cli import tune_options

    assert tune_options(None, None, 0).trials == 1000
    assert tune_options(None, 900.0, 0).trials is None  # the clock (or a pass without progress) ends it
    assert tune_options(50, 900.0, 0).trials == 50


def test_progress_line_without_a_trial_limit():
    result = SimpleNamespace(best=SimpleNamespace(instructions=750), default=SimpleNamespace(instructions=1000),
                             measured=[None] * 41)
    stream = io.StringIO()
    status = StatusLine(3, stream)
    status.label = "tuning 1/3 pw7"
    for trials in (math.inf, 60):
        status.logged = -math.inf  # a log line is due (one every 15 s when not on a terminal)
        status.round(result, trials)
    assert stream.getvalue().splitlines() == ["tuning 1/3 pw7: 41 trials, best 750 (0.75x default), 0s",
                                              "tuning 1/3 pw7: 41/60 trials, best 750 (0.75x default), 0s"]


def test_same_seed_same_records(tmp_path):
    """Counts are exact and the search is seeded: with a trial budget (no clock involved) two
    runs record the same schedules and counts."""
    check_simulator_tools()
    onnx.save(onnx_models.residual_block(channels=8, size=8, seed=2), str(tmp_path / "model.onnx"))
    np.save(tmp_path / "calib.npy", np.random.default_rng(1).normal(0, 1, (4, 8, 8, 8)).astype(np.float32))
    runs = []
    for run in ("a", "b"):
        result = cli("tune", tmp_path / "model.onnx", "--target", "coral-npu", "--memory", "highmem", "--quantize",
                     "int8", "--calib", tmp_path / "calib.npy", "--tuning-db", tmp_path / f"{run}.jsonl",
                     "-o", tmp_path / f"out_{run}", "--trials", 16, "--seed", 5)
        assert result.returncode == 0, result.stderr
        rows = [json.loads(line) for line in (tmp_path / f"{run}.jsonl").read_text().splitlines()]
        runs.append([(row["workload"], row["schedule"], row["instructions"]) for row in rows])
    assert runs[0] == runs[1]


def test_ctrl_c_keeps_what_was_found(tmp_path):
    """An interrupted search still records its best schedules and builds OUT with them."""
    import signal
    import time

    check_simulator_tools()
    onnx.save(onnx_models.tiny_cnn(seed=3, size=24, softmax=False), str(tmp_path / "model.onnx"))
    np.save(tmp_path / "calib.npy", np.random.default_rng(1).normal(0, 1, (4, 3, 24, 24)).astype(np.float32))
    command = [sys.executable, "-m", "compiler", "tune", str(tmp_path / "model.onnx"), "--target", "coral-npu",
               "--memory", "highmem", "--quantize", "int8", "--calib", str(tmp_path / "calib.npy"),
               "--tuning-db", str(tmp_path / "db.jsonl"), "-o", str(tmp_path / "out"), "--trials", "100000"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    seen = []
    for line in process.stderr:  # the first task's final line: the search is under way
        seen.append(line)
        if line.startswith("tuning 1/") and "done" in line:
            break
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, "".join(seen) + stderr
    assert "tuning interrupted after" in stderr and "Traceback" not in stderr
    records = (tmp_path / "db.jsonl").read_text().splitlines()
    assert len(records) >= 7  # every workload: the default at least
    assert json.loads((tmp_path / "out" / "report.json").read_text())["tuning"]["tuned_total"] > 0


def test_a_model_that_does_not_fit_fails_before_the_search(tmp_path):
    onnx.save(onnx_models.conv_bn_act(channels=(3, 8), size=64), str(tmp_path / "big.onnx"))  # 128 KB float input
    np.save(tmp_path / "calib.npy", np.random.default_rng(1).normal(0, 1, (2, 3, 64, 64)).astype(np.float32))
    result = cli("tune", tmp_path / "big.onnx", "--target", "coral-npu", "--quantize", "int8", "--calib",
                 tmp_path / "calib.npy", "--tuning-db", tmp_path / "db.jsonl", "-o", tmp_path / "out")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "does not fit the default memory profile" in last and "--memory highmem" in last
    assert "tuning 1/" not in result.stderr and not (tmp_path / "db.jsonl").exists()
    assert not (tmp_path / "out").exists()


def test_an_output_directory_that_is_not_a_build_is_refused_first(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    result = cli("tune", tmp_path / "missing.onnx", "--tuning-db", tmp_path / "db.jsonl", "-o", tmp_path / "out")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "out" in result.stderr.strip().splitlines()[-1]
    assert (tmp_path / "out" / "notes.txt").read_text() == "mine"


def _moves_and_bare_matmul():
    """A channel slice (copy), a pad that feeds no convolution and a MatMul without bias: kernels
    whose params hold arrays (copy's shape and strides, pad's dims) and a dense without a bias."""
    g = onnx_models.GraphBuilder(6)
    y = g.node("Relu", [g.conv("x", "c1", 3, 8, k=3, pad=1)], "r1")
    y = g.node("Slice", [y, g.const("b", np.array([2], np.int64)), g.const("e", np.array([6], np.int64)),
                         g.const("ax", np.array([1], np.int64))], "slice")
    y = g.node("Pad", [y, g.const("pads", np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64))], "pad", mode="constant")
    y = g.node("Flatten", [g.node("GlobalAveragePool", [y], "gap")], "flat")
    return g.model([("x", [1, 3, 8, 8])], g.node("MatMul", [y, g.rand("mm", (4, 5))], "mm"), [1, 5])


def test_tune_takes_data_movement_and_a_matmul_without_bias(tmp_path):
    check_simulator_tools()
    onnx.save(_moves_and_bare_matmul(), str(tmp_path / "model.onnx"))
    np.save(tmp_path / "calib.npy", np.random.default_rng(1).normal(0, 1, (4, 3, 8, 8)).astype(np.float32))
    result = cli("tune", tmp_path / "model.onnx", "--target", "coral-npu", "--memory", "highmem", "--quantize",
                 "int8", "--calib", tmp_path / "calib.npy", "--tuning-db", tmp_path / "db.jsonl", "-o",
                 tmp_path / "out", "--trials", 12, "--seed", 1)
    assert result.returncode == 0, result.stderr
    layers = json.loads((tmp_path / "out" / "report.json").read_text())["coral"]["layers"]
    assert {"copy", "pad", "dense"} <= {row["op"] for row in layers}
    workloads = [json.loads(line)["workload"] for line in (tmp_path / "db.jsonl").read_text().splitlines()]
    assert any(key.startswith("copy(") and "in_stride_5=" in key for key in workloads), workloads
