"""Tuning the second RVV target, rvv256-rv64 (rv64 RVV 1.0, VLEN 256, targets/rvv_vlen256), end to
end with real tools: the Coral backend's tuner, driven by that target's data alone (its [isa] shapes
the space, its QEMU measures, its manifest keys the records). As for coral-npu (test_tune_run.py):
every record is for this target and no worse than the default; the tuned build is no worse than
the default build, layer by layer; `build --tuning-db` reproduces the tuned firmware byte for byte
and its counts exactly; a record for another target is ignored, with a note."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from compiler.coral.simulator import check_simulator_tools
from compiler.targets import get_target
from compiler.tune.database import target_manifest

REPO = Path(__file__).resolve().parents[2]
DIGITS = REPO / "examples" / "digits"
TARGET = "rvv256-rv64"
MODEL_FLAGS = [DIGITS / "digits_cnn.onnx", "--target", TARGET, "--quantize", "int8", "--calib", DIGITS / "calib.npz"]


def cli(*args):
    return subprocess.run([sys.executable, "-m", "compiler", *map(str, args)], capture_output=True, text=True,
                          timeout=900)


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    check_simulator_tools(get_target(TARGET))
    root = tmp_path_factory.mktemp("tune_rvv")
    result = cli("tune", *MODEL_FLAGS, "--tuning-db", root / "db.jsonl", "-o", root / "out", "--trials", 24,
                 "--seed", 3)
    assert result.returncode == 0, result.stderr
    return root, result


def test_records_are_this_targets_and_never_worse(tuned):
    root, result = tuned
    records = [json.loads(line) for line in (root / "db.jsonl").read_text().splitlines()]
    tuning = json.loads((root / "out" / "report.json").read_text())["tuning"]
    assert len(records) == len(tuning["tasks"]) >= 8  # 4 conv shapes, pool, add, global pool, dense, (de)quantise
    assert len({row["workload"] for row in records}) == len(records)
    manifest = target_manifest(get_target(TARGET))
    for row in records:
        assert row["target"] == TARGET and row["target_manifest"] == manifest
        assert 0 < row["instructions"] <= row["default_instructions"]
    assert "tuning 1/" in result.stderr and "Traceback" not in result.stderr


def test_tuned_build_is_never_worse_than_the_default(tuned):
    root, result = tuned
    report = json.loads((root / "out" / "report.json").read_text())
    tuning = report["tuning"]
    assert report["target"] == TARGET and len(tuning["layers"]) == len(report["coral"]["layers"])
    for row in tuning["layers"]:
        assert 0 < row["tuned_instructions"] <= row["default_instructions"], row["name"]
    assert 0 < tuning["tuned_total"] <= tuning["default_total"] and tuning["ratio"] <= 1.0
    assert f"{tuning['default_total']:,} -> {tuning['tuned_total']:,} instructions" in result.stdout
    assert "## Tuning" in (root / "out" / "report.md").read_text()


def test_build_with_the_database_reproduces_the_tuned_firmware(tuned, tmp_path):
    root, _ = tuned
    best = json.loads((root / "db.jsonl").read_text().splitlines()[0])
    # the same workload's record for coral-npu, claiming a far better count: it must not be used here
    (tmp_path / "coral.jsonl").write_text(json.dumps({**best, "target": "coral-npu", "instructions": 1}) + "\n")
    result = cli("build", *MODEL_FLAGS, "--tuning-db", root / "db.jsonl", "--tuning-db", tmp_path / "coral.jsonl",
                 "-o", tmp_path / "again")
    assert result.returncode == 0, result.stderr
    assert f"1 record(s) ignored: for target coral-npu, not {TARGET}" in result.stderr
    assert (tmp_path / "again" / "firmware.elf").read_bytes() == (root / "out" / "firmware.elf").read_bytes()
    ran = cli("run", tmp_path / "again", "--input", DIGITS / "sample.npy")
    assert ran.returncode == 0, ran.stderr
    run = json.loads((tmp_path / "again" / "run.json").read_text())
    tuning = json.loads((root / "out" / "report.json").read_text())["tuning"]
    # the generated kernels' counts do not depend on the data: every layer here runs one
    assert [row["instructions"] for row in run["layers"]] == [row["tuned_instructions"] for row in tuning["layers"]]
