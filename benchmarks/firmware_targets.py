"""Benchmark: MobileNet V1 0.25 224x224 int8 on every firmware target, side by side (QEMU instruction counts).

    .venv/bin/python benchmarks/firmware_targets.py [--alpha 0.25] [--size 224] [--out build/bench-firmware-targets]

The same model, calibration and input as benchmarks/coral_mobilenet_v1.py (seeded random weights,
int8 in and out), built with each target's generated kernels for
  coral-npu       RV32IMF + Zve32x, VLEN 128 (memory profile highmem), in qemu-system-riscv32;
  rvv256-rv64     RV64GCV, VLEN 256 (its default profile: 64 MB DRAM), in qemu-system-riscv64;
  arm64-neon      Cortex-A76 class (NEON, dot product), in qemu-aarch64 user mode;
  arm64-neon-a72  Cortex-A72 class (NEON, no dot product), likewise;
the RISC-V ones counted with -icount shift=0, the arm64 ones by the counting TCG plugin. The backend
is one (compiler/coral/, cpp/): the targets differ by their target.toml and emitter family.
Outputs must be identical (all are bit-exact to the int8 spec). Prints the instructions per layer
group and in total, and writes OUT/benchmark.md and OUT/benchmark.json. Instructions are not
cycles: the cores retire different numbers per cycle.
"""

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from coral_mobilenet_v1 import build_and_run, prepare_from_args  # noqa: E402

TARGETS = {"coral-npu": "highmem", "rvv256-rv64": None, "arm64-neon": None, "arm64-neon-a72": None}  # -> memory profile


def _group(row) -> str:
    """The layer group of a MobileNet layer row (as the README's table groups them; the model's
    layers are named conv0, dw<i>, pw<i>, ...)."""
    op, name = row["op"], row["name"]
    if op.startswith("conv2d"):
        return {"conv": "stem conv 3x3 s2", "dw": "depthwise 3x3", "pw": "pointwise 1x1"}[name.rstrip("0123456789")]
    return {"global_avg_pool2d": "global average pool", "transpose": "layout transpose (NCHW->NHWC)"}.get(
        op, "dense" if op.startswith("dense") else op)


def _groups(run) -> dict:
    totals = {}
    for row in run.layers:
        macs, instructions = totals.get(_group(row), (0, 0))
        totals[_group(row)] = (macs + row["macs"], instructions + row["instructions"])
    return totals


def _table(runs: dict) -> list[str]:
    names = list(runs)
    lines = ["| layers | MACs | " + " | ".join(names) + " |", "|---|---:|" + "---:|" * len(names)]
    groups = {name: _groups(run) for name, run in runs.items()}
    first = names[0]
    for group, (macs, _) in groups[first].items():
        counts = [groups[name][group][1] for name in names]
        lines.append(f"| {group} | {macs:,} | " + " | ".join(f"{count:,}" for count in counts) + " |")
    totals = [runs[name].total_instructions for name in names]
    macs = sum(row["macs"] for row in runs[first].layers)
    lines.append(f"| **total** | {macs:,} | " + " | ".join(f"**{total:,}**" for total in totals) + " |")
    lines.append("| MACs per instruction | | " + " | ".join(f"{macs / total:.2f}" for total in totals) + " |")
    lines.append("")
    lines.append("instructions per layer group (QEMU's exact counts); not cycles")
    return lines


def main(argv=None) -> int:
    args, model_path, calib_path, input_path = prepare_from_args(__doc__, "bench-firmware-targets", argv)
    runs = {target: build_and_run(target, model_path, calib_path, input_path, args.out, None, target, memory)
            for target, memory in TARGETS.items()}
    outputs = [run.outputs for run in runs.values()]
    identical = all(np.array_equal(a, b) for other in outputs[1:] for a, b in zip(outputs[0], other))
    lines = [f"# MobileNet V1 {args.alpha} {args.size}x{args.size} int8 on the firmware targets, QEMU instruction counts", ""]
    lines += _table(runs) + [f"outputs of the builds identical: {identical}"]
    text = "\n".join(lines)
    print(text)
    (args.out / "benchmark.md").write_text(text + "\n")
    (args.out / "benchmark.json").write_text(json.dumps({
        "model": f"mobilenet_v1_{args.alpha}_{args.size}", "identical_outputs": identical,
        **{target: {"total_instructions": run.total_instructions, "layers": run.layers} for target, run in runs.items()},
    }, indent=2) + "\n")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
