"""Which int8 TFLite operators our build computes bit-exactly as LiteRT does, operator by operator.

    .venv/bin/python benchmarks/tflite_op_exactness.py [--samples 5] [--out build/bench-tflite-ops]

Each operator is a one-operator full-int8 model (tests/tflite_int8_models.py single_op_model: random
seeded scales and zero points, per-channel weights) built for the host without --quantize and run
on random int8 inputs beside LiteRT's built-in kernels (BUILTIN_WITHOUT_DEFAULT_DELEGATES). Prints
a Markdown table (outputs compared, outputs that differ, largest difference in steps) and writes
OUT/exactness.md and OUT/exactness.json. The to-do list of issue 13's bit-exactness item.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from tflite_builder import litert_run  # noqa: E402
from tflite_int8_models import OPERATORS, single_op_model  # noqa: E402

from compiler.build import build  # noqa: E402
from compiler.errors import CompilerError  # noqa: E402
from compiler.run.host import run_host  # noqa: E402

def measure(name, folder: Path, samples: int) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    path = single_op_model(name).save(folder / "model.tflite")
    try:
        report = build(path, "host", folder / "out")
    except CompilerError as err:
        return {"operator": name, "error": str(err)}
    rng = np.random.default_rng(0)
    compared = differ = worst = 0
    for sample in range(samples):
        inputs = []
        for index, tensor in enumerate(report["interface"]["inputs"]):
            inputs.append(rng.integers(-128, 128, tensor["shape"]).astype(np.int8))
            np.save(folder / f"x{index}.npy", inputs[-1])
        want = litert_run(path, inputs, reference=False)[0].astype(np.int32)
        have = run_host(folder / "out", [str(folder / f"x{i}.npy") for i in range(len(inputs))]).outputs[0]
        steps = np.abs(have.astype(np.int32) - want)
        compared, differ, worst = compared + steps.size, differ + int(np.count_nonzero(steps)), max(worst, int(steps.max()))
    float_layers = [row["name"] for row in report["layers"]
                    if row["kind"] != "int8" and row["op"] not in ("reshape", "permute_dims")]  # moves run on int8
    return {"operator": name, "compared": compared, "differ": differ, "max_steps": worst, "float_layers": float_layers}


def table(rows) -> str:
    lines = ["| operator | outputs compared | differ | max steps | note |", "|---|---:|---:|---:|---|"]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['operator']} | | | | build failed: {row['error'][:80]} |")
            continue
        note = "bit-exact" if row["differ"] == 0 else ""
        if row["float_layers"]:
            note = (note + "; " if note else "") + f"float layers: {len(row['float_layers'])}"
        lines.append(f"| {row['operator']} | {row['compared']:,} | {row['differ']:,} | {row['max_steps']} | {note} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("operators", nargs="*", default=list(OPERATORS))
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--out", default=str(ROOT / "build" / "bench-tflite-ops"))
    args = parser.parse_args(argv)
    out = Path(args.out)
    rows = []
    for number, name in enumerate(args.operators, 1):
        print(f"[{number}/{len(args.operators)}] {name} ...", file=sys.stderr)
        rows.append(measure(name, out / f"op{number}", args.samples))
    text = "# int8 TFLite operators against LiteRT's built-in kernels\n\n" + table(rows)
    print(text)
    (out / "exactness.md").write_text(text + "\n")
    (out / "exactness.json").write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
