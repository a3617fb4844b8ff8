"""The command line end to end: build, run, targets, --help, on real models."""

import json
import os
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime
import pytest

import onnx_models

LIGHT_MODELS = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "compiler", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=600)


def reference_output(model, x):
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


@pytest.fixture(scope="module")
def tiny_build(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    model = onnx_models.tiny_cnn(seed=3, size=24)
    onnx.save(model, root / "tiny.onnx")
    result = cli("build", root / "tiny.onnx", "--target", "host", "-o", root / "out")
    assert result.returncode == 0, result.stderr
    return root, model, result


def test_build_writes_artefact_reports_and_graph(tiny_build):
    root, model, result = tiny_build
    out = root / "out"
    assert sorted(p.name for p in out.iterdir()) == [".compiler-build.json", "graph.onnx", "model.so", "report.json",
                                                     "report.md"]
    assert json.loads((out / ".compiler-build.json").read_text())["files"] == ["graph.onnx", "model.so", "report.json",
                                                                               "report.md"]
    assert not [p for p in root.iterdir() if ".partial-" in p.name]
    report = json.loads((out / "report.json").read_text())
    assert report["batchnorm"]["total"] == 5 and len(report["batchnorm"]["folded"]) == 5
    assert report["conv"] == {"total": 5, "in_fused_groups": 5, "not_fused": []}
    residual = [row for row in report["layers"] if row["op"] == "conv2d_bias_add_relu"]
    assert [row["onnx_nodes"] for row in residual] == [["res_conv2", "res_bn2", "res_add", "res_relu2"]]
    # MACs of the stem: 3x3 conv, 3->8 channels, stride 2 on 24x24 -> 12x12 output
    stem = next(row for row in report["layers"] if "stem_conv" in row["onnx_nodes"])
    assert stem["macs"] == 8 * 12 * 12 * 3 * 3 * 3
    markdown = (out / "report.md").read_text()
    assert "BatchNorms folded into Conv: 5 of 5" in markdown and "`res_add`" in markdown
    onnx.checker.check_model(onnx.load(out / "graph.onnx"))
    assert "BatchNorms folded: 5/5" in result.stdout


def test_run_matches_onnxruntime(tiny_build):
    root, model, _ = tiny_build
    x = np.random.default_rng(7).standard_normal((1, 3, 24, 24)).astype(np.float32)
    np.save(root / "x.npy", x)
    result = cli("run", root / "out", "--input", root / "x.npy", "--output", root / "y.npy", "--repeat", "5")
    assert result.returncode == 0, result.stderr
    assert "latency over 5 run(s): median" in result.stdout and "p90" in result.stdout
    np.testing.assert_allclose(np.load(root / "y.npy"), reference_output(model, x), rtol=1e-4, atol=1e-6)


def test_rebuild_replaces_an_earlier_build_but_never_a_users_file(tiny_build):
    root, _, _ = tiny_build
    (root / "out" / "report.md").write_text("from an earlier build")
    assert cli("build", root / "tiny.onnx", "-o", root / "out").returncode == 0
    assert (root / "out" / "report.md").read_text().startswith("# Build report")
    (root / "out" / "my-notes.txt").write_text("mine")
    result = cli("build", root / "tiny.onnx", "-o", root / "out")
    assert result.returncode == 2 and "files the build did not write (my-notes.txt)" in result.stderr
    assert (root / "out" / "my-notes.txt").read_text() == "mine"


def test_light_resnet50_folds_every_batchnorm_and_fuses_every_conv(tmp_path):
    result = cli("build", os.path.join(LIGHT_MODELS, "light_resnet50.onnx"), "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["batchnorm"]["total"] == 53 and len(report["batchnorm"]["folded"]) == 53
    assert report["conv"]["total"] == 53 and report["conv"]["in_fused_groups"] == 53


def test_targets_lists_host():
    result = cli("targets")
    assert result.returncode == 0 and result.stdout.startswith("host:")


@pytest.mark.parametrize("command", [[], ["build"], ["run"], ["targets"]])
def test_every_command_has_help(command):
    result = cli(*command, "--help")
    assert result.returncode == 0 and "usage:" in result.stdout
