"""`tune --target host` end to end: MetaSchedule tunes the LLVM-compiled PrimFuncs
(compiler/tune/host.py, whose own tests are tests/unit/test_host_tuning.py), its records go
beside the tuning database FILE (FILE.metaschedule/) with a summary line per task in FILE, and
`build --tuning-db FILE` compiles with them: same outputs as the untuned build. A coral-npu
build given the same FILE ignores the host records with a note."""

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest

import onnx_models


def cli(*args):
    return subprocess.run([sys.executable, "-m", "compiler", *map(str, args)], capture_output=True, text=True,
                          timeout=900)


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    root = tmp_path_factory.mktemp("tune_host")
    # the dense layer runs on oneDNN in a host float build (codegen/dnnl.py); the softmax is what TVM compiles
    onnx.save(onnx_models.dense_relu_softmax(batch=2, features=(16, 10)), str(root / "dense.onnx"))
    result = cli("tune", root / "dense.onnx", "--target", "host", "--tuning-db", root / "db.jsonl", "-o", root / "out",
                 "--trials", 6, "--seed", 1)
    assert result.returncode == 0, result.stderr
    return root, result


def test_records_beside_the_database_and_a_report(tuned):
    root, result = tuned
    assert (root / "db.jsonl.metaschedule" / "manifest.json").is_file()
    rows = [json.loads(line) for line in (root / "db.jsonl").read_text().splitlines()]
    assert rows and all(row["target"] == "host" and row["kernel"] == "metaschedule" for row in rows)
    assert all(0 < row["tuned_us"] <= row["default_us"] for row in rows)  # the default competes as a record
    tuning = json.loads((root / "out" / "report.json").read_text())["tuning"]
    assert {row["task"] for row in tuning["host_tasks"]} == {row["workload"] for row in rows}
    assert "## Tuning (MetaSchedule)" in (root / "out" / "report.md").read_text()
    assert "host tuning:" in result.stderr  # the progress line


def test_build_with_the_host_records_computes_the_same(tuned, tmp_path):
    root, _ = tuned
    assert cli("build", root / "dense.onnx", "--target", "host", "-o", tmp_path / "plain").returncode == 0
    x = np.random.default_rng(0).normal(0, 1, (2, 16)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    outputs = []
    for build in (root / "out", tmp_path / "plain"):
        result = cli("run", build, "--input", tmp_path / "x.npy", "--output", tmp_path / f"{build.name}.npy")
        assert result.returncode == 0, result.stderr
        outputs.append(np.load(tmp_path / f"{build.name}.npy"))
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-5, atol=1e-6)


def test_coral_build_ignores_host_records_with_a_note(tuned, tmp_path):
    root, _ = tuned
    np.save(tmp_path / "calib.npy", np.random.default_rng(1).normal(0, 1, (4, 2, 16)).astype(np.float32))
    result = cli("build", root / "dense.onnx", "--target", "coral-npu", "--memory", "highmem", "--quantize", "int8", "--calib",
                 tmp_path / "calib.npy", "--tuning-db", root / "db.jsonl", "-o", tmp_path / "coral")
    assert result.returncode == 0, result.stderr
    assert "record(s) ignored: for target host, not coral-npu" in result.stderr


def test_host_build_without_host_records_is_refused(tmp_path):
    onnx.save(onnx_models.dense_bias_relu(kind="gemm", batch=2, features=(16, 10)), str(tmp_path / "dense.onnx"))
    (tmp_path / "db.jsonl").write_text("")
    result = cli("build", tmp_path / "dense.onnx", "--target", "host", "--tuning-db", tmp_path / "db.jsonl",
                 "-o", tmp_path / "out")
    assert result.returncode == 2 and "no host records" in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "out").exists()
