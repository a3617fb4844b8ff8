"""Property test: a model whose every node, tensor, input, output and initializer carries a hostile
name (tests/fuzz/hostile_names.py) builds for host float, host int8 and coral-npu; its outputs
equal those of the same model with plain names, bit for bit; and no generated file holds one of
those names outside an escaped context (report.json keeps them exactly, as JSON strings)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

import onnx_models
from compiler.names import c_comment, md_code, md_text, shown
from fuzz.hostile_names import hostile_names, rename

TARGETS = {
    "host-float": [],
    "host-int8": ["--quantize", "int8", "--calib", "{calib}"],
    "coral-npu": ["--target", "coral-npu", "--memory", "highmem", "--quantize", "int8", "--calib", "{calib}"],
}
SEEDS = {"host-float": [0, 1, 2], "host-int8": [3, 4], "coral-npu": [5]}


def cli(*args):
    return subprocess.run([sys.executable, "-m", "compiler", *map(str, args)], capture_output=True, text=True,
                          timeout=600)


def plain_model() -> onnx.ModelProto:
    model = onnx_models.tiny_cnn(size=16)
    for node in model.graph.node:  # unnamed nodes are labelled from their output tensor's name
        if node.op_type in ("MaxPool", "Flatten"):
            node.name = ""
    return model


def build_and_run(folder: Path, model: onnx.ModelProto, target: str) -> tuple[Path, np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, folder / "model.onnx")
    rng = np.random.default_rng(11)
    np.save(folder / "calib.npy", rng.normal(size=(16, 1, 3, 16, 16)).astype(np.float32))
    np.save(folder / "x.npy", rng.normal(size=(1, 3, 16, 16)).astype(np.float32))
    flags = [flag.replace("{calib}", str(folder / "calib.npy")) for flag in TARGETS[target]]
    built = cli("build", folder / "model.onnx", "-o", folder / "out", *flags)
    assert built.returncode == 0, built.stderr[-3000:]
    assert "\x1b" not in built.stdout + built.stderr and "\u202e" not in built.stdout + built.stderr
    ran = cli("run", folder / "out", "--input", folder / "x.npy", "--output", folder / "y.npy")
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "\x1b" not in ran.stdout + ran.stderr
    return folder / "out", np.load(folder / "y.npy")


@pytest.fixture(scope="module")
def plain_outputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("plain")
    return {target: build_and_run(root / target, plain_model(), target)[1] for target in TARGETS}


def escaped_forms(name: str, path: Path) -> list[str]:
    """How `name` is allowed to appear in `path`: escaped for that file's medium."""
    if path.suffix in (".c", ".h", ".py"):
        return [c_comment(name)]
    if path.suffix == ".md":
        return [md_code(name).strip("`").strip(), md_text(name)]
    return [shown(name)]


def assert_no_raw_names(out: Path, names: list[str]) -> None:
    """No file but the JSON ones holds a name except inside one of its escaped forms."""
    for path in out.rglob("*"):
        if not path.is_file() or path.suffix in (".so", ".elf", ".o"):
            continue
        if path.suffix == ".json":
            json.loads(path.read_text())  # report.json, run.json: names live there as JSON strings
            continue
        data = path.read_bytes()
        for name in names:
            rest = data
            for form in sorted(escaped_forms(name, path), key=len, reverse=True):
                rest = rest.replace(form.encode(), b"")
            if name.encode() in rest:
                raise AssertionError(f"{path.relative_to(out)} holds the raw name {shown(name, 60)!r}")


@pytest.mark.parametrize("target, seed", [(t, s) for t, seeds in SEEDS.items() for s in seeds])
def test_hostile_names_build_and_compute_what_plain_names_do(tmp_path, plain_outputs, target, seed):
    model = plain_model()
    count = sum(1 for _ in model.graph.initializer) + 3 * len(model.graph.node) + 2
    names = hostile_names(np.random.default_rng(seed), count)
    hostile, mapping = rename(model, names)
    onnx.checker.check_model(hostile)
    out, output = build_and_run(tmp_path, hostile, target)
    np.testing.assert_array_equal(output, plain_outputs[target])
    assert_no_raw_names(out, list(mapping.values()))
    report = json.loads((out / "report.json").read_text())
    assert report["interface"]["outputs"][0]["name"] == mapping[plain_model().graph.output[0].name]
