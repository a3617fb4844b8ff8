"""-o never destroys what the user owns: only an earlier build (by the marker the compiler wrote,
holding nothing else) is replaced; the working directory, the model's folder and their parents,
symbolic links and plain folders are refused before any work; concurrent builds and signals
leave no staging folder; the result has the permissions the umask gives."""

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import onnx
import pytest

import onnx_models

MARKER = ".compiler-build.json"


def cli(*args, cwd=None, **options):
    return subprocess.run([sys.executable, "-m", "compiler", *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=cwd, **options)


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("model")
    path = folder / "tiny.onnx"
    onnx.save(onnx_models.conv_bn_act(size=6), path)
    return path


def refused(result, *needles):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: -o "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_the_working_directory_is_refused_and_untouched(model, tmp_path):
    (tmp_path / "precious.txt").write_text("mine")
    onnx.save(onnx.load(model), tmp_path / "m.onnx")
    refused(cli("build", "m.onnx", "-o", ".", cwd=tmp_path), "is the working directory")
    # even when it looks like an earlier build
    (tmp_path / "report.json").write_text("{}")
    refused(cli("build", model, "-o", ".", cwd=tmp_path), "is the working directory")
    refused(cli("build", model, "-o", "..", cwd=tmp_path), "contains the working directory")
    assert (tmp_path / "precious.txt").read_text() == "mine"


def test_the_models_folder_and_its_parents_are_refused(model):
    refused(cli("build", model, "-o", model.parent), "is the folder of")
    refused(cli("build", model, "-o", model.parent.parent), "contains the folder of")
    assert model.is_file()


def test_a_folder_with_a_report_json_but_no_marker_is_not_a_build(model, tmp_path):
    out = tmp_path / "results"
    out.mkdir()
    (out / "report.json").write_text("{}")
    (out / "thesis.tex").write_text("years of work")
    refused(cli("build", model, "-o", out), f"no {MARKER}")
    assert (out / "thesis.tex").read_text() == "years of work"


def test_a_forged_or_broken_marker_is_not_a_build(model, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / MARKER).write_text("not json")
    refused(cli("build", model, "-o", out), "not an earlier build")
    (out / MARKER).write_text(json.dumps({"kind": "something else", "files": []}))
    refused(cli("build", model, "-o", out), "not an earlier build")


def test_a_symlinked_output_is_refused_before_the_build(model, tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    started = time.monotonic()
    refused(cli("build", model, "-o", tmp_path / "link"), "symbolic link")
    assert time.monotonic() - started < 20  # refused up front, not after compiling
    assert list(real.iterdir()) == [] and not list(tmp_path.glob(".*partial*"))


def test_a_file_is_refused(model, tmp_path):
    (tmp_path / "file").write_text("x")
    refused(cli("build", model, "-o", tmp_path / "file"), "is not a folder")


def test_a_rebuild_replaces_the_build_with_the_umask_permissions(model, tmp_path):
    out = tmp_path / "out"
    for umask in (0o022, 0o077):
        result = cli("build", model, "-o", out, preexec_fn=lambda: os.umask(umask))
        assert result.returncode == 0, result.stderr
        assert (out.stat().st_mode & 0o777) == 0o777 & ~umask
    assert sorted(json.loads((out / MARKER).read_text())["files"]) == sorted(
        p.name for p in out.iterdir() if p.name != MARKER)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]


def test_ten_concurrent_builds_to_one_folder_all_succeed_and_leave_nothing_behind(model, tmp_path):
    out = tmp_path / "out"
    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(lambda _: cli("build", model, "-o", out), range(10)))
    assert [r.returncode for r in results] == [0] * 10, [r.stderr for r in results if r.returncode]
    assert all("Traceback" not in r.stderr for r in results)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert (out / "model.so").is_file() and (out / MARKER).is_file()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_during_the_build_removes_the_staging_folder(tmp_path, signum):
    path = tmp_path / "slow.onnx"  # big enough that the build is still running when the signal comes
    onnx.save(onnx_models.mobilenet_v1(size=96), path)
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-m", "compiler", "build", str(path), "-o", str(out)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".out.partial-*")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "the build ended before it staged anything"
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signum or (signum == signal.SIGINT and process.returncode == 130), stderr
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["slow.onnx"]


HALF_BUILT = """
import os, signal, sys
import compiler.cli as cli

class HalfBuilt:  # as TVM's TempDirectory when the signal lands inside its __init__
    def __init__(self):
        os.kill(os.getpid(), signal.{signal})
        self.path = "never set"

    def __del__(self):
        self.path

cli._targets = lambda args: HalfBuilt()
raise SystemExit(cli.main(["targets"]))
"""


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
def test_a_signal_inside_a_constructor_still_prints_one_line(signame):
    """The half-built object's failing __del__ (run when the unwound frames are freed) prints nothing."""
    result = subprocess.run([sys.executable, "-c", HALF_BUILT.format(signal=signame)], capture_output=True, text=True)
    assert result.returncode in (128 + getattr(signal, signame), 130), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr


def test_a_staging_folder_left_by_a_killed_build_is_cleaned_up(model, tmp_path):
    stale = tmp_path / ".out.partial-999999999-abc"  # no such process
    stale.mkdir()
    (stale / "model.so").write_text("half")
    assert cli("build", model, "-o", tmp_path / "out").returncode == 0
    assert not stale.exists()
