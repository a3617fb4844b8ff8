"""Benchmark: Arm Vela's estimate for our int8 models on ethos-u55-128, ethos-u55-256 and ethos-u65-256.

    .venv/bin/python benchmarks/ethos_u.py [--out build/bench-ethos-u] [--io int8|float]

Builds three models with `--quantize int8 --io int8` (the float <-> int8 conversions stay with the
caller, as in a TFLite int8 deployment; `--io float` adds a QUANTIZE and a DEQUANTIZE on the CPU) for
each Ethos-U target (compiler/backends/vela.py) and prints Vela's estimate as a Markdown table:

    digits CNN            examples/digits (calibrated on calib.npz)
    MobileNet V1 0.25     224x224, 1000 classes, seeded random weights (tests/onnx_models.py), calibrated
                          on 16 seeded normal samples: cycles and memory do not depend on weight values
    conv-SiLU-conv        tests/edge_ops_models.py: SiLU is a table lookup (GATHER), which Vela leaves to
                          the CPU

Cycles are Vela's estimate of the NPU part (the CPU operators' time is not in it); inferences/s are at
the target's clock (target.toml [vela] core_clock_hz); SRAM, flash and DRAM are the bytes Vela places in
each memory. Writes OUT/benchmark.md and OUT/benchmark.json.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import onnx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from edge_ops_models import conv_activation_model  # noqa: E402
from onnx_models import mobilenet_v1  # noqa: E402

from compiler.build import build  # noqa: E402
from compiler.quant.quantize import QuantConfig  # noqa: E402

TARGETS = ["ethos-u55-128", "ethos-u55-256", "ethos-u65-256"]
DIGITS = ROOT / "examples" / "digits"


def _models(out: Path) -> dict[str, tuple[Path, Path]]:
    """name -> (model file, calibration file)."""
    found = {"digits CNN": (DIGITS / "digits_cnn.onnx", DIGITS / "calib.npz")}
    rng = np.random.default_rng(0)
    for name, model in (("MobileNet V1 0.25 224", mobilenet_v1(alpha=0.25, size=224, seed=0)),
                        ("conv-SiLU-conv", conv_activation_model("SiLU"))):
        stem = name.split()[0].lower()
        shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
        onnx.save(model, str(out / f"{stem}.onnx"))
        np.save(out / f"{stem}_calib.npy", rng.normal(0.0, 1.0, (16, *shape)).astype(np.float32))
        found[name] = (out / f"{stem}.onnx", out / f"{stem}_calib.npy")
    return found


def measure(out: Path, io: str) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, (model, calib) in _models(out).items():
        for target in TARGETS:
            print(f"building {name} for {target} ...", file=sys.stderr)
            quant = QuantConfig(calib=str(calib), samples=100, method="minmax", percentile=99.99, keep_float=(),
                                io=io, progress=False)
            folder = out / f"{model.stem}-{target}"
            report = build(model, target, folder, quant=quant, warn=lambda note: None)
            entry = report["backend"]
            performance, memory, fallback = entry["performance"], entry["memory"], entry["operators"]["fallback"]
            rows.append({"model": name, "target": target, "cycles": performance["value"],
                         "inferences_per_second": performance["inferences_per_second"],
                         "clock_mhz": performance["clock_hz"] / 1e6, "macs": performance["macs"],
                         "sram_bytes": memory["sram_bytes"], "flash_bytes": memory["flash_bytes"],
                         "dram_bytes": memory["dram_bytes"], "cpu_operators": [layer.split()[0] for layer in
                                                                                fallback["layers"]],
                         "checks_passed": all(c["passed"] for c in entry["verified"])})
    return rows


def table(rows) -> list[str]:
    lines = ["| model | target | cycles | inferences/s (clock) | SRAM | flash | DRAM | CPU operators |",
             "|---|---|---:|---:|---:|---:|---:|---|"]
    for row in rows:
        cpu = ", ".join(row["cpu_operators"]) or "none"
        lines.append(f"| {row['model']} | {row['target']} | {row['cycles']:,} | {row['inferences_per_second']:,.0f} "
                     f"({row['clock_mhz']:g} MHz) | {row['sram_bytes']:,} | {row['flash_bytes']:,} | "
                     f"{row['dram_bytes']:,} | {cpu} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(ROOT / "build" / "bench-ethos-u"))
    parser.add_argument("--io", default="int8", choices=["int8", "float"])
    args = parser.parse_args()
    out = Path(args.out)
    rows = measure(out, args.io)
    lines = table(rows)
    print("\n".join(lines))
    (out / "benchmark.md").write_text("\n".join(lines) + "\n")
    (out / "benchmark.json").write_text(json.dumps(rows, indent=2) + "\n")
    return 0 if all(row["checks_passed"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
