"""The tuning database: JSON lines written by `tune`, merged across runs and files, the best
record per workload applied, records of another target, target manifest or compiler version
ignored with a note, and damaged files refused with the file and line."""

import json

import numpy as np
import pytest

from compiler import __version__
from compiler.errors import CompilerError
from compiler.targets import get_target
from compiler.tune import database
from compiler.tune.workload import workload_of

CORAL = get_target("coral-npu")
SCHEDULE = {"lmul": 8, "oc_tile": 32, "px_tile": 2, "loop_order": "oc_px", "unroll": 16, "weight_pack": "i16"}


def workload(size=14):
    params = dict(batches=1, in_h=size, in_w=size, in_c=32, out_h=size, out_w=size, out_c=32, kernel_h=1, kernel_w=1,
                  stride_h=1, stride_w=1, pad_top=0, pad_left=0, dilation_h=1, dilation_w=1, groups=1,
                  input_zero_point=0, output_zero_point=0, act_min=-128, act_max=127)
    return workload_of("conv2d", params, {"weight": np.zeros((32, 1, 1, 32), np.int8)})


def test_round_trip_and_merge_keep_the_best(tmp_path):
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    database.append(first, [database.record(CORAL, workload(), {**SCHEDULE, "px_tile": 1}, 900, 1000, seed=0)])
    database.append(first, [database.record(CORAL, workload(), {**SCHEDULE, "px_tile": 3}, 800, 1000, seed=1)])  # a second run
    database.append(second, [database.record(CORAL, workload(), SCHEDULE, 850, 1000, seed=2),
                             database.record(CORAL, workload(7), SCHEDULE, 70, 100, seed=2)])
    db = database.load([first, second], CORAL)
    assert db.records == 4 and db.ignored == {}
    assert db.schedule_for(workload()) == {**SCHEDULE, "px_tile": 3}  # the fewest instructions wins
    assert db.schedule_for(workload(7)) == SCHEDULE
    assert db.schedule_for(workload(28)) is None
    row = json.loads(first.read_text().splitlines()[0])
    assert row["compiler_version"] == __version__ and row["target"] == "coral-npu" and row["workload"] == workload().key


@pytest.mark.parametrize("field, value, reason", [
    ("target", "host", "for target host"),
    ("target_manifest", "0" * 64, "another coral-npu target.toml"),
    ("compiler_version", "0.0.1", "compiler version 0.0.1"),
])
def test_records_for_other_code_are_ignored_with_a_note(tmp_path, field, value, reason):
    path = tmp_path / "db.jsonl"
    stale = {**database.record(CORAL, workload(), SCHEDULE, 500, 1000, seed=0), field: value}
    database.append(path, [stale, database.record(CORAL, workload(), {**SCHEDULE, "px_tile": 1}, 900, 1000, seed=0)])
    db = database.load([path], CORAL)
    assert db.schedule_for(workload()) == {**SCHEDULE, "px_tile": 1}  # not the stale, faster one
    (note,) = db.notes()
    assert "1 record(s) ignored" in note and reason in note


def test_damaged_or_missing_files_are_refused(tmp_path):
    with pytest.raises(CompilerError, match="no such file"):
        database.load([tmp_path / "missing.jsonl"], CORAL)
    path = tmp_path / "db.jsonl"
    database.append(path, [database.record(CORAL, workload(), SCHEDULE, 500, 1000, seed=0)])
    with path.open("a") as out:
        out.write('{"workload": "x"}\n')
    with pytest.raises(CompilerError, match=r"db.jsonl:2: not a tuning record"):
        database.load([path], CORAL)
