"""Benchmark: MobileNet V1 0.25 224x224 int8 on coral-npu (highmem), instruction counts in QEMU.

    .venv/bin/python benchmarks/coral_mobilenet_v1.py [--alpha 0.25] [--size 224] [--out build/bench-mobilenet]

Builds the architecture with seeded random weights (tests/onnx_models.py mobilenet_v1:
instruction counts do not depend on weight values), quantises it with seeded normal
calibration samples and int8 input and output (`--io int8`: like the TFLite int8 model the
published figures are for, the float <-> int8 conversions stay with the caller), and builds
it twice for coral-npu:
  generated  the Coral codegen's RVV kernels (cpp/), the product;
  reference  the same graph on kernels/ref compiled by clang-19 -O3 with _zvl128b
             auto-vectorisation: what a Coral user without optimised kernels gets.
Both run in qemu-system-riscv32 -icount shift=0 on the same input; their outputs must be
identical (both are bit-exact to the int8 spec). Prints the per-layer table and the totals
beside the published figures for this model on Coral's simulator (about 136M instructions
with stock kernels, 26-33M with hand-optimised ones) and the goals (at most 8M, and at least
5x fewer than the reference). Writes OUT/benchmark.md and OUT/benchmark.json.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import onnx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from onnx_models import mobilenet_v1  # noqa: E402

from compiler.build import build  # noqa: E402
from compiler.coral.build import REFERENCE_BUILD  # noqa: E402
from compiler.quant.quantize import QuantConfig  # noqa: E402
from compiler.run.coral import run_coral  # noqa: E402

PUBLISHED = {"stock kernels (published)": 136_000_000, "hand-optimised (published)": 26_000_000}
GOAL_TOTAL = 8_000_000
GOAL_SPEEDUP = 5.0


def prepare_model(out: Path, alpha: float, size: int, samples: int) -> tuple[Path, Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    model_path, calib_path, input_path = out / "model.onnx", out / "calib.npy", out / "input.npy"
    onnx.save(mobilenet_v1(alpha=alpha, size=size, seed=0), str(model_path))
    rng = np.random.default_rng(0)
    np.save(calib_path, rng.normal(0.0, 1.0, (samples, 3, size, size)).astype(np.float32))
    np.save(input_path, rng.integers(-128, 128, (1, 3, size, size), dtype=np.int8))
    return model_path, calib_path, input_path


def build_and_run(name, model_path, calib_path, input_path, out: Path, options, target="coral-npu", memory="highmem"):
    """Quantises (int8 in and out) and builds the model for an RVV target, runs it in QEMU: a CoralRun."""
    quant = QuantConfig(calib=str(calib_path), samples=1000, method="minmax", percentile=99.99, keep_float=(),
                        io="int8", progress=False)
    print(f"building {name} ...", file=sys.stderr)
    build(model_path, target, out / name, quant=quant, memory=memory, firmware_options=options)
    print(f"running {name} in QEMU ...", file=sys.stderr)
    return run_coral(out / name, [input_path])


def _table(generated, reference) -> list[str]:
    lines = ["| # | layer | op | MACs | reference instr | generated instr | MACs/instr | speed-up |",
             "|---:|---|---|---:|---:|---:|---:|---:|"]
    for ours, ref in zip(generated.layers, reference.layers):
        speedup = ref["instructions"] / ours["instructions"] if ours["instructions"] else 0.0
        lines.append(f"| {ours['index']} | {ours['name']} | {ours['op']} | {ours['macs']:,} | {ref['instructions']:,} | "
                     f"{ours['instructions']:,} | {ours['macs_per_instruction']:.2f} | {speedup:.1f}x |")
    macs = sum(row["macs"] for row in generated.layers)
    lines.append(f"| | **total** | | {macs:,} | {reference.total_instructions:,} | {generated.total_instructions:,} | "
                 f"{macs / generated.total_instructions:.2f} | "
                 f"{reference.total_instructions / generated.total_instructions:.1f}x |")
    return lines


def _summary(generated, reference) -> list[str]:
    total, ref_total = generated.total_instructions, reference.total_instructions
    speedup = ref_total / total
    lines = ["", "| build | instructions |", "|---|---:|"]
    lines += [f"| {name} | ~{count / 1e6:.0f}M |" for name, count in PUBLISHED.items()]
    lines += [f"| kernels/ref, clang -O3 auto-vectorised | {ref_total:,} |", f"| **generated (ours)** | **{total:,}** |",
              "", f"goal: at most {GOAL_TOTAL:,} instructions: {'met' if total <= GOAL_TOTAL else 'NOT met'} ({total:,}); "
              f"at least {GOAL_SPEEDUP:.0f}x fewer than the reference: {'met' if speedup >= GOAL_SPEEDUP else 'NOT met'} "
              f"({speedup:.1f}x)"]
    return lines


def prepare_from_args(doc: str, out: str, argv=None):
    """The MobileNet benchmarks' command line (--alpha, --size, --calib-samples, --out, default
    build/OUT) and prepare_model's files for it: (args, model path, calib path, input path)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--alpha", type=float, default=0.25, help="width multiplier (default 0.25)")
    parser.add_argument("--size", type=int, default=224, help="input resolution (default 224)")
    parser.add_argument("--calib-samples", type=int, default=8, help="calibration samples (default 8)")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / out, help="working directory")
    args = parser.parse_args(argv)
    return (args, *prepare_model(args.out, args.alpha, args.size, args.calib_samples))


def main(argv=None) -> int:
    args, model_path, calib_path, input_path = prepare_from_args(__doc__, "bench-mobilenet", argv)
    generated = build_and_run("generated", model_path, calib_path, input_path, args.out, None)
    reference = build_and_run("reference", model_path, calib_path, input_path, args.out, REFERENCE_BUILD)
    identical = all(np.array_equal(a, b) for a, b in zip(generated.outputs, reference.outputs))
    title = f"# MobileNet V1 {args.alpha} {args.size}x{args.size} int8 on coral-npu (highmem), QEMU instruction counts"
    lines = [title, ""] + _table(generated, reference) + _summary(generated, reference)
    lines.append(f"outputs of the two builds identical: {identical}")
    text = "\n".join(lines)
    print(text)
    (args.out / "benchmark.md").write_text(text + "\n")
    (args.out / "benchmark.json").write_text(json.dumps({
        "model": f"mobilenet_v1_{args.alpha}_{args.size}", "identical_outputs": identical,
        "generated": {"total_instructions": generated.total_instructions, "layers": generated.layers},
        "reference": {"total_instructions": reference.total_instructions, "layers": reference.layers},
    }, indent=2) + "\n")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
