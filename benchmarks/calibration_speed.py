"""Benchmark: how long an int8 host build spends calibrating and measuring its accuracy (--val).

    .venv/bin/python benchmarks/calibration_speed.py [--repeat 3] [--baseline REV] [--out build/bench-calibration]

Per model, `build --target host --quantize int8 --calib C --val V` (the command a user runs), timed
in a fresh process each repeat (median reported):
  build       the whole command's wall time (Python start and imports included);
  calibrate   quant/quantize.py quantise(): the float probe's compile and the calibration runs;
  measure     build.py _measure_quantisation(): layer errors on the held-out samples and --val's
              float and int8 top-1 (the int8 twin's C now compiles during the deployed module's
              compile, inside "int8 codegen", so its time shows in `build`, not here).
Models: examples/digits (the committed CNN, 100 calibration samples, 540 --val images) and
MobileNetV2 1.0 224 (tests/zoo_models.py via coral_model_zoo.prepare, seeded weights; 32 seeded
calibration samples, 8 more held out, 30 --val images with random labels: the accuracy means
nothing, the time is real).
--baseline REV runs the same commands on revision REV of this repository as well (a git worktree
under OUT, with this venv's native modules; the editable install's import hook is bypassed so
that REV's own Python runs). Issue 17's "today" is 70d9fb3, the commit before the issue's work.
Writes OUT/benchmark.md and OUT/benchmark.json.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

# Run in a child process with the tree to time first on sys.path: wraps the two functions with
# timers, runs the CLI's build, prints the timings as JSON on the last line.
DRIVER = r"""
import json, sys, time
tree, argv = sys.argv[1], sys.argv[2:]
if tree != %(root)r:  # another revision: without the editable install's hook, which maps `compiler` here
    sys.meta_path = [f for f in sys.meta_path if "skbc" not in type(f).__module__]
    sys.path = [tree] + [p for p in sys.path if p not in ("", tree, %(root)r)]
import compiler
assert compiler.__file__.startswith(tree), compiler.__file__
try:  # as `python -m compiler` does for a model that is no .pt2: torch is not imported
    from compiler.no_torch import block_torch
    block_torch()
except ImportError:  # a revision from before compiler/no_torch.py
    pass
import compiler.build as build_module
import compiler.compile_model as compile_module
seconds = {"calibrate": 0.0, "measure": 0.0}
def timed(name, function):
    def run(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            seconds[name] += time.perf_counter() - start
    return run
compile_module.quantise = timed("calibrate", compile_module.quantise)
build_module._measure_quantisation = timed("measure", build_module._measure_quantisation)
from compiler.cli import main
code = main(argv)
print(json.dumps(dict(seconds, code=code)))
"""


def _arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="fresh processes per measurement (default 3)")
    parser.add_argument("--baseline", metavar="REV", help="also time revision REV (e.g. 70d9fb3)")
    parser.add_argument("--models", nargs="*", default=["digits", "mobilenet_v2"], help="digits, mobilenet_v2")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "bench-calibration", help="working directory")
    return parser.parse_args(argv)


def _inputs(name: str, out: Path) -> tuple[Path, list[str]]:
    """(model path, build flags after the model) for one of the models."""
    if name == "digits":
        digits = ROOT / "examples" / "digits"
        return digits / "digits_cnn.onnx", ["--calib", str(digits / "calib.npz"), "--val", str(digits / "val.npz")]
    from coral_model_zoo import prepare

    folder = out / name
    _, calib, _ = prepare(name, folder, 224, 40)  # 32 calibrate, 8 are held out
    rng = np.random.default_rng(1)
    np.savez(folder / "val.npz", input=rng.normal(0.0, 1.0, (30, 1, 3, 224, 224)).astype(np.float32),
             label=rng.integers(0, 1000, 30))
    return folder / f"{name}.onnx", ["--calib", str(calib), "--calib-samples", "32", "--val", str(folder / "val.npz")]


def _baseline_tree(rev: str, out: Path) -> Path:
    """A worktree of REV with this venv's native modules copied in (REV's Python needs them in place)."""
    tree = out / f"tree-{rev}"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), rev], check=True,
                   capture_output=True)
    installed = Path(sys.prefix) / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages" / "compiler"
    for library in installed.rglob("*.so"):
        shutil.copy2(library, tree / "compiler" / library.relative_to(installed))
    return tree


def _time_once(tree: Path, model: Path, flags: list[str], out: Path) -> dict:
    import time

    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-c", DRIVER % {"root": str(ROOT)}, str(tree), "build", str(model), "--target", "host",
               "--quantize", "int8", *flags, "-o", str(out)]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, cwd=tree, env=dict(os.environ, PYTHONSAFEPATH="1"))
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"build failed in {tree}:\n{proc.stderr[-2000:]}")
    timings = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"build": wall, "calibrate": timings["calibrate"], "measure": timings["measure"]}


def measure(tree: Path, label: str, model: Path, flags: list[str], args) -> dict:
    runs = []
    for i in range(args.repeat):
        print(f"{model.stem} on {label}: run {i + 1}/{args.repeat} ...", file=sys.stderr)
        runs.append(_time_once(tree, model, flags, args.out / "builds" / label / model.stem))
    row = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    row["calibrate + measure"] = row["calibrate"] + row["measure"]
    return {"model": model.stem, "tree": label, **row}


def table(rows: list[dict]) -> list[str]:
    keys = ["build", "calibrate", "measure", "calibrate + measure"]
    lines = ["| model | code | " + " | ".join(f"{key} (s)" for key in keys) + " |",
             "|---|---|" + "---:|" * len(keys)]
    for row in rows:
        lines.append(f"| {row['model']} | {row['tree']} | " + " | ".join(f"{row[key]:.2f}" for key in keys) + " |")
    by_model = {}
    for row in rows:
        by_model.setdefault(row["model"], {})[row["tree"]] = row
    for model, trees in by_model.items():
        if len(trees) == 2:
            (old_label, old), (new_label, new) = sorted(trees.items(), key=lambda item: item[0] == "this tree")
            lines.append(f"\n{model}: {new_label} vs {old_label}: build {old['build'] / new['build']:.1f}x faster, "
                         f"calibrate + measure {old['calibrate + measure'] / new['calibrate + measure']:.1f}x faster")
    return lines


def main(argv=None) -> int:
    args = _arguments(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    trees = [(ROOT, "this tree")]
    if args.baseline:
        trees.append((_baseline_tree(args.baseline, args.out), args.baseline))
    rows = []
    try:
        for name in args.models:
            model, flags = _inputs(name, args.out)
            rows += [measure(tree, label, model, flags, args) for tree, label in trees]
    finally:
        for tree, _ in trees[1:]:  # no worktree left registered in the repository
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], capture_output=True)
    lines = ["# int8 host build: calibration and --val measurement time", "", *table(rows), "",
             f"median of {args.repeat} fresh processes; {os.cpu_count()} CPUs"]
    print("\n".join(lines))
    (args.out / "benchmark.md").write_text("\n".join(lines) + "\n")
    (args.out / "benchmark.json").write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
