"""Benchmark: autotuning MobileNet V1 0.25 224x224 int8 on coral-npu (highmem).

    .venv/bin/python benchmarks/coral_tune_mobilenet_v1.py [--time-budget 900] [--trials 100000] [--seed 0]

Same model, calibration and int8 I/O as benchmarks/coral_mobilenet_v1.py. Runs `tune` with
the time budget (default 15 minutes; the issue's figure is for 2 cores), then rebuilds the
model from the database alone (`build --tuning-db`) and runs it in QEMU: the tuned total must
be reproduced exactly. Prints the per-layer default vs tuned table, the totals and the goal
(tuned at most 0.75x the default schedules' total). Writes OUT/tuning-benchmark.md and .json;
the database is OUT/tuning.jsonl (appended to by every run: delete it for a cold start).
"""

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from coral_mobilenet_v1 import prepare_model  # noqa: E402

from compiler.build import build  # noqa: E402
from compiler.quant.quantize import QuantConfig  # noqa: E402
from compiler.report.tuning_markdown import render_tuning  # noqa: E402
from compiler.run.coral import run_coral  # noqa: E402
from compiler.tune.tune import TuneOptions, tune_model  # noqa: E402

GOAL_RATIO = 0.75


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--time-budget", type=float, default=900.0, help="seconds of search (default 900)")
    parser.add_argument("--trials", type=int, default=100_000, help="candidate limit (default: the time decides)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT.parent / "build" / "bench-tune-mobilenet")
    args = parser.parse_args(argv)
    model_path, calib_path, input_path = prepare_model(args.out, 0.25, 224, 8)
    quant = QuantConfig(calib=str(calib_path), samples=1000, io="int8", progress=False)
    db = args.out / "tuning.jsonl"
    options = TuneOptions(trials=args.trials, time_budget=args.time_budget, seed=args.seed)
    report = tune_model(model_path, "coral-npu", args.out / "tuned", db, quant=quant, memory="highmem", options=options)
    tuning = report["tuning"]
    print("rebuilding from the database alone ...", file=sys.stderr)
    build(model_path, "coral-npu", args.out / "from-db", quant=quant, memory="highmem", tuning_db=[db])
    again = run_coral(args.out / "from-db", [input_path]).total_instructions
    ratio = tuning["ratio"]
    lines = [f"# Tuning MobileNet V1 0.25 224x224 int8 on coral-npu (highmem), {os.cpu_count()} cores, "
             f"{args.time_budget:.0f} s budget", ""] + render_tuning(tuning) + [
        f"rebuilt from {db.name} alone: {again:,} instructions ({'reproduced' if again == tuning['tuned_total'] else 'DIFFERENT'})",
        f"goal: tuned at most {GOAL_RATIO}x the default: {'met' if ratio <= GOAL_RATIO else 'NOT met'} ({ratio:.3f}x)"]
    text = "\n".join(lines)
    print(text)
    (args.out / "tuning-benchmark.md").write_text(text + "\n")
    (args.out / "tuning-benchmark.json").write_text(json.dumps({**tuning, "rebuilt_total": again,
                                                                 "cores": os.cpu_count()}, indent=2) + "\n")
    return 0 if again == tuning["tuned_total"] else 1


if __name__ == "__main__":
    sys.exit(main())
