"""Host tuning with MetaSchedule (compiler/tune/host.py): tasks, database, merging, applying, manifest.

A small float model (Gemm + Relu + Softmax, whose host build has the PrimFuncs matmul, add, relu
and softmax) is tuned once for the module with one trial per task; the tests read what that run
left behind, copying it where they change it. Latencies are never compared across schedules (the
machine is shared): only what MetaSchedule must produce deterministically is asserted.
"""

import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import tvm
from tvm import relax
from tvm.s_tir import meta_schedule as ms

from compiler import __version__
from compiler.errors import CompilerError
from compiler.targets import get_target
from compiler.tune.host import (MANIFEST, apply_host_tuning, host_tasks, legalise_for_host, metaschedule_dir,
                                tune_host)
from onnx_models import dense_relu_softmax
from relax_testing import tvm_partition

TRIALS = 4  # one per task
RECORDS = "database_tuning_record.json"
WORKLOADS = "database_workload.json"


@pytest.fixture(scope="module")
def model():
    host = get_target("host")
    # the float module as TVM compiles it (a host build gives the dense layer to oneDNN and tunes the rest)
    lowered = tvm_partition(dense_relu_softmax())
    return SimpleNamespace(lowered=lowered, target=host.tvm())


@pytest.fixture(scope="module")
def tuned(model, tmp_path_factory):
    db_path = tmp_path_factory.mktemp("host_tuning") / "tuning.jsonl"
    messages = []
    rows = tune_host(model.lowered, model.target, db_path, trials=TRIALS, time_budget=None, seed=0,
                     progress=messages.append)
    return SimpleNamespace(db_path=db_path, directory=metaschedule_dir(db_path), rows=rows, messages=messages)


def copy_tuning(tuned, tmp_path):
    """A copy of the tuned database beside a new FILE in tmp_path, for tests that change it."""
    db_path = tmp_path / "tuning.jsonl"
    shutil.copytree(tuned.directory, metaschedule_dir(db_path))
    return db_path


def run(mod, target, x):
    vm = relax.VirtualMachine(tvm.compile(mod, target=target), tvm.cpu())
    return vm["main"](tvm.runtime.tensor(x)).numpy()


def random_input(seed=0):
    return np.random.default_rng(seed).uniform(-2.0, 2.0, (4, 32)).astype("float32")


def primfunc_names(mod):
    return {gvar.name_hint for gvar, func in mod.functions.items() if isinstance(func, tvm.tirx.PrimFunc)}


def lines(path):
    return path.read_text().splitlines()


def test_the_database_lives_beside_the_file_with_a_manifest(tuned, model):
    assert tuned.directory == tuned.db_path.parent / "tuning.jsonl.metaschedule"
    assert (tuned.directory / RECORDS).is_file() and (tuned.directory / WORKLOADS).is_file()
    manifest = json.loads((tuned.directory / MANIFEST).read_text())
    assert manifest == {"compiler_version": __version__, "target": str(model.target)}


def test_the_tasks_are_the_primfuncs_llvm_compiles(tuned, model):
    names = primfunc_names(legalise_for_host(model.lowered, model.target))
    assert names == {"matmul", "add", "relu", "softmax"}
    assert sorted(row["task"] for row in tuned.rows) == sorted(names)


def test_reshapes_are_not_tasks(model):
    """The build turns a reshape's call into a view of its input: there is no kernel to tune."""
    builder = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((4, 32), "float32"))
    with builder.function("main", [x]):
        with builder.dataflow():
            y = builder.emit(relax.op.reshape(x, (8, 16)))
            z = builder.emit_output(relax.op.nn.relu(y))
        builder.emit_func_output(z)
    mod = builder.get()
    assert primfunc_names(legalise_for_host(mod, model.target)) == {"reshape", "relu"}
    assert [task.task_name for task in host_tasks(mod, model.target)] == ["relu"]


def test_rows_count_trials_and_latencies(tuned):
    assert 1 <= sum(row["trials"] for row in tuned.rows) <= TRIALS
    for row in tuned.rows:
        assert 0 < row["default_us"] < 1e6 and 0 < row["tuned_us"] < 1e6
        # the default is measured as a record too, so the best record is never worse than it
        assert row["tuned_us"] <= row["default_us"]
    assert any("trials" in message for message in tuned.messages)


def test_every_task_has_records(tuned, model):
    database = ms.database.JSONDatabase(work_dir=str(tuned.directory))
    for task in host_tasks(model.lowered, model.target):
        assert database.has_workload(task.dispatched[0]), task.task_name
        assert database.get_top_k(database.commit_workload(task.dispatched[0]), 1), task.task_name
    assert len(lines(tuned.directory / WORKLOADS)) == 4


def test_applied_module_compiles_to_the_same_numbers(tuned, model):
    applied = apply_host_tuning(model.lowered, model.target, tuned.db_path)
    scheduled = {gvar.name_hint for gvar, func in applied.functions.items()
                 if isinstance(func, tvm.tirx.PrimFunc) and func.attrs.get("tirx.is_scheduled")}
    assert scheduled == {"matmul", "add", "relu", "softmax"}
    x = random_input()
    np.testing.assert_allclose(run(applied, model.target, x), run(model.lowered, model.target, x), rtol=1e-5)


def test_tuned_schedules_compute_the_same_numbers(tuned, model, tmp_path):
    """The best record is often the default; keep only MetaSchedule's own schedules and apply those."""
    db_path = tmp_path / "tuned_only.jsonl"
    directory = metaschedule_dir(db_path)
    directory.mkdir()
    shutil.copy(tuned.directory / MANIFEST, directory / MANIFEST)
    source = ms.database.JSONDatabase(work_dir=str(tuned.directory))
    target_db = ms.database.JSONDatabase(work_dir=str(directory))
    searched = [record for record in source.get_all_tuning_records() if len(record.trace.insts) > 2]
    assert searched, "the search measured no schedule of its own"
    for record in searched:
        workload = target_db.commit_workload(record.workload.mod)
        target_db.commit_tuning_record(
            ms.database.TuningRecord(record.trace, workload, record.run_secs, record.target, record.args_info))
    applied = apply_host_tuning(model.lowered, model.target, db_path)
    x = random_input(1)
    np.testing.assert_allclose(run(applied, model.target, x), run(model.lowered, model.target, x), rtol=1e-5)


def test_a_second_run_adds_records_and_keeps_the_first(tuned, model, tmp_path):
    db_path = copy_tuning(tuned, tmp_path)
    directory = metaschedule_dir(db_path)
    records_before, workloads_before = lines(directory / RECORDS), lines(directory / WORKLOADS)
    tune_host(model.lowered, model.target, db_path, trials=2, time_budget=None, seed=1)
    records_after = lines(directory / RECORDS)
    assert len(records_after) > len(records_before)
    assert records_after[:len(records_before)] == records_before
    assert lines(directory / WORKLOADS) == workloads_before  # same PrimFuncs: no new workloads


def test_a_spent_time_budget_measures_only_the_defaults(model, tmp_path):
    db_path = tmp_path / "tuning.jsonl"
    rows = tune_host(model.lowered, model.target, db_path, trials=TRIALS, time_budget=1e-3, seed=0)
    assert [row["trials"] for row in rows] == [0, 0, 0, 0]
    assert all(row["tuned_us"] == row["default_us"] for row in rows)
    assert len(lines(metaschedule_dir(db_path) / RECORDS)) == 4  # one default record per task


@pytest.mark.parametrize("key, value, reason", [("compiler_version", "0.0.0", "compiler version"),
                                                ("target", '{"kind":"llvm","mcpu":"other"}', "target")])
def test_records_for_another_compiler_or_target_are_ignored(tuned, model, tmp_path, key, value, reason):
    db_path = copy_tuning(tuned, tmp_path)
    manifest_path = metaschedule_dir(db_path) / MANIFEST
    manifest_path.write_text(json.dumps(dict(json.loads(manifest_path.read_text()), **{key: value})))
    notes = []
    assert apply_host_tuning(model.lowered, model.target, db_path, note=notes.append) is model.lowered
    assert len(notes) == 1 and reason in notes[0] and "ignored" in notes[0] and "\n" not in notes[0]
    with pytest.raises(CompilerError, match=reason):  # and tuning will not mix measurements into them
        tune_host(model.lowered, model.target, db_path, trials=TRIALS, time_budget=None, seed=0)


def test_a_module_without_primfuncs_has_nothing_to_tune(model, tmp_path):
    builder = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((4, 32), "float32"))
    with builder.function("main", [x]):
        builder.emit_func_output(x)
    db_path = tmp_path / "tuning.jsonl"
    assert tune_host(builder.get(), model.target, db_path, trials=TRIALS, time_budget=None, seed=0) == []
    assert not metaschedule_dir(db_path).exists()


def test_no_directory_means_no_change(model, tmp_path):
    notes = []
    assert apply_host_tuning(model.lowered, model.target, tmp_path / "absent.jsonl", note=notes.append) is model.lowered
    assert notes == []


@pytest.mark.parametrize("target, trials, budget, message", [
    ({"kind": "c"}, TRIALS, None, "LLVM"), (None, 0, None, "--trials"), (None, TRIALS, 0.0, "--time-budget")])
def test_bad_arguments_are_compiler_errors(model, tmp_path, target, trials, budget, message):
    target = model.target if target is None else tvm.target.Target(target)
    with pytest.raises(CompilerError, match=message):
        tune_host(model.lowered, target, tmp_path / "tuning.jsonl", trials=trials, time_budget=budget, seed=0)
