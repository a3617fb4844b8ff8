"""Benchmark: today's edge CNNs on coral-npu (--memory soc), int8 in and out, QEMU instruction counts.

    .venv/bin/python benchmarks/coral_model_zoo.py [MODEL ...] [--size 224] [--no-reference] [--out build/bench-zoo]

Models (tests/zoo_models.py, plain torch.nn, seeded weights): MobileNetV2 1.0,
MobileNetV3-small and -large, EfficientNet-Lite0, LCNet-0.5, ResNet-18. Each is exported to ONNX
(opset 17), quantised with seeded normal calibration samples (int8 I/O, as the TFLite int8
models published figures are for), and built three times:
  coral      the Coral codegen's RVV kernels: the product (run in qemu-system-riscv32);
  reference  the same graph on kernels/ref compiled by clang-19 -O3 with _zvl128b
             auto-vectorisation (what a user without optimised kernels gets); --no-reference skips it;
  host       the host int8 build: the coral logits must equal its logits bit for bit.
Per model: MACs, instructions, MACs per instruction, the reference's instructions and the
speed-up, layers by implementation (rvv / ref / tvm), whether the logits are bit-exact to the
host int8 build, and the cosine of the dequantized int8 logits to ONNX Runtime's float logits.
Writes OUT/benchmark.md and OUT/benchmark.json; exits 1 when a model is not bit-exact or fails
to build or run (the others are still measured).
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from zoo_models import ZOO, export  # noqa: E402

from compiler.build import build  # noqa: E402
from compiler.coral.build import REFERENCE_BUILD  # noqa: E402
from compiler.errors import CompilerError  # noqa: E402
from compiler.quant.quantize import QuantConfig  # noqa: E402
from compiler.run.coral import run_coral  # noqa: E402
from compiler.run.host import run_host  # noqa: E402

GOAL_MACS_PER_INSTRUCTION = {"mobilenet_v2": 8.0, "efficientnet_lite0": 8.0}
GOAL_SPEEDUP, GOAL_COSINE = 20.0, 0.99


def prepare(name: str, folder: Path, size: int, samples: int):
    folder.mkdir(parents=True, exist_ok=True)
    model = export(name, folder / f"{name}.onnx", size=size, seed=0)
    rng = np.random.default_rng(0)
    np.save(folder / "calib.npy", rng.normal(0.0, 1.0, (samples, 1, 3, size, size)).astype(np.float32))
    x = rng.normal(0.0, 1.0, (1, 3, size, size)).astype(np.float32)
    return model, folder / "calib.npy", x


def _quant(calib: Path, samples: int) -> QuantConfig:
    return QuantConfig(calib=str(calib), samples=samples, method="minmax", percentile=99.99, keep_float=(), io="int8",
                       progress=False)


def _int8_input(report: dict, x: np.ndarray, folder: Path) -> Path:
    io = report["quantization"]["io"]["inputs"][0]
    q = np.clip(np.round(x / io["scale"]) + io["zero_point"], -128, 127).astype(np.int8)
    np.save(folder / "input.npy", q)
    return folder / "input.npy"


def _dequantized(report: dict, y: np.ndarray) -> np.ndarray:
    io = report["quantization"]["io"]["outputs"][0]
    return io["scale"] * (y.astype(np.float64) - io["zero_point"])


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def measure(name: str, out: Path, size: int, samples: int, reference: bool) -> dict:
    folder = out / name
    model, calib, x = prepare(name, folder, size, samples)
    quant = _quant(calib, samples)
    print(f"{name}: building for coral-npu ...", file=sys.stderr)
    report = build(model, "coral-npu", folder / "coral", quant=quant, memory="soc")
    input_path = _int8_input(report, x, folder)
    print(f"{name}: running in qemu-system-riscv32 ...", file=sys.stderr)
    coral = run_coral(folder / "coral", [input_path])
    print(f"{name}: host int8 build ...", file=sys.stderr)
    build(model, "host", folder / "host", quant=quant)
    host = run_host(folder / "host", [input_path])
    row = {"model": name, "macs": sum(layer["macs"] for layer in coral.layers),
           "instructions": coral.total_instructions,
           "impl": {impl: sum(layer["impl"] == impl for layer in coral.layers) for impl in ("rvv", "ref", "tvm", "transpose")},
           "bit_exact_to_host": bool(np.array_equal(coral.outputs[0], host.outputs[0])),
           "cosine_to_float": _cosine(_dequantized(report, coral.outputs[0]),
                                      ort.InferenceSession(str(model)).run(None, {"input": x})[0]),
           "memory_map": report["coral"]["memory_map"], "weight_bytes": report["coral"]["weight_bytes"]}
    row["macs_per_instruction"] = row["macs"] / row["instructions"]
    if reference:
        print(f"{name}: reference build (kernels/ref) and run ...", file=sys.stderr)
        build(model, "coral-npu", folder / "reference", quant=quant, memory="soc", firmware_options=REFERENCE_BUILD)
        row["reference_instructions"] = run_coral(folder / "reference", [input_path]).total_instructions
    return row


def table(rows: list[dict]) -> list[str]:
    lines = ["| model | MACs | kernels/ref, clang -O3 auto-vectorised | generated RVV | MACs/instr | speed-up | "
             "layers rvv / ref / tvm | logits = host int8 | cosine to float |",
             "|---|---:|---:|---:|---:|---:|---|---|---:|"]
    for r in rows:
        ref = r.get("reference_instructions")
        reference = f"{ref:,}" if ref else "-"
        speedup = f"{ref / r['instructions']:.0f}x" if ref else "-"
        exact = "bit-exact" if r["bit_exact_to_host"] else "DIFFERENT"
        lines.append(f"| {r['model']} | {r['macs']:,} | {reference} | {r['instructions']:,} | "
                     f"{r['macs_per_instruction']:.2f} | {speedup} | "
                     f"{r['impl']['rvv']} / {r['impl']['ref']} / {r['impl']['tvm']} | {exact} | {r['cosine_to_float']:.4f} |")
    return lines


def goals(rows: list[dict]) -> list[str]:
    lines = []
    for r in rows:
        checks = [("every layer on generated RVV kernels", r["impl"]["ref"] == 0 and r["impl"]["tvm"] == 0),
                  ("bit-exact to host int8", r["bit_exact_to_host"]),
                  (f"cosine to float >= {GOAL_COSINE}", r["cosine_to_float"] >= GOAL_COSINE)]
        if r["model"] in GOAL_MACS_PER_INSTRUCTION:
            goal = GOAL_MACS_PER_INSTRUCTION[r["model"]]
            checks.append((f">= {goal:g} MACs/instruction", r["macs_per_instruction"] >= goal))
        if "reference_instructions" in r:
            checks.append((f">= {GOAL_SPEEDUP:g}x fewer than kernels/ref",
                           r["reference_instructions"] >= GOAL_SPEEDUP * r["instructions"]))
        lines.append(f"- {r['model']}: " + "; ".join(f"{what}: {'met' if ok else 'NOT met'}" for what, ok in checks))
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", default=list(ZOO), metavar="MODEL",
                        help=f"models to run (default: all of {', '.join(ZOO)})")
    parser.add_argument("--size", type=int, default=224, help="input resolution (default 224)")
    parser.add_argument("--calib-samples", type=int, default=8, help="calibration samples (default 8)")
    parser.add_argument("--no-reference", action="store_true", help="skip the kernels/ref build (slow on big models)")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "bench-zoo", help="working directory")
    args = parser.parse_args(argv)
    unknown = [name for name in args.models if name not in ZOO]
    if unknown:
        parser.error(f"unknown model {unknown[0]} (known: {', '.join(ZOO)})")
    rows, failures = [], []
    for name in args.models:
        try:
            rows.append(measure(name, args.out, args.size, args.calib_samples, not args.no_reference))
        except CompilerError as err:  # one model failing still reports the others
            print(f"{name}: error: {err}", file=sys.stderr)
            failures.append(f"- {name}: FAILED: {err}")
    text = "\n".join([f"# Edge CNNs on coral-npu ({args.size}x{args.size}, int8 I/O, --memory soc), QEMU instruction "
                      "counts", ""] + table(rows) + [""] + goals(rows) + failures)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "benchmark.md").write_text(text + "\n")
    (args.out / "benchmark.json").write_text(json.dumps(rows, indent=2) + "\n")
    return 0 if all(r["bit_exact_to_host"] for r in rows) and not failures else 1


if __name__ == "__main__":
    sys.exit(main())
