"""Benchmark: our host target against ONNX Runtime on this CPU, float and int8, one process.

    .venv/bin/python benchmarks/host_vs_ort.py [MODEL ...] [--size 224] [--runs 50] [--threads N] [--out build/bench-host]

Models (tests/zoo_models.py, plain torch.nn, seeded weights): MobileNetV2 1.0, MobileNetV3-small,
ResNet-18, EfficientNet-Lite0, exported to ONNX (opset 17). Per model, on one seeded normal input:
  ort-fp32   ONNX Runtime's CPU provider on the float model (all graph optimisations, its default);
  ort-int8   ONNX Runtime on the QDQ model of its own quantize_static (per-channel int8 weights, int8
             activations, the same calibration samples), default session options (what a user gets;
             on CPUs without VNNI its int8 kernels may saturate: compiler/run/onnxruntime_cpu.py);
  ours-fp32  `build --target host` (convolutions on oneDNN: compiler/codegen/dnnl.py; the rest TVM, LLVM for this CPU);
  ours-int8  `build --target host --quantize int8` (int8 groups on the generated x86 AVX2 kernels).
Each: one warm-up run, then --runs timed runs (compiler/run/host.py timed_runs); median and p90 in ms.
ONNX Runtime gets --threads intra-op threads and TVM the same (TVM_NUM_THREADS, set before TVM loads).
Goals (issue 17): ours-fp32 <= 1.5x ort-fp32; ours-int8 <= 1.0x ort-fp32 and <= 1.2x ort-int8.
Writes OUT/benchmark.md and OUT/benchmark.json.
"""

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("mobilenet_v2", "mobilenet_v3_small", "resnet18", "efficientnet_lite0")
GOALS = {"ours-fp32 / ort-fp32": 1.5, "ours-int8 / ort-fp32": 1.0, "ours-int8 / ort-int8": 1.2}


def _arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", default=list(MODELS), metavar="MODEL",
                        help=f"models to run (default: {', '.join(MODELS)})")
    parser.add_argument("--size", type=int, default=224, help="input resolution (default 224)")
    parser.add_argument("--runs", type=int, default=50, help="timed runs per runtime (default 50)")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                        help="threads for every runtime (default: this process's CPUs)")
    parser.add_argument("--calib-samples", type=int, default=8, help="calibration samples (default 8)")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "bench-host", help="working directory")
    return parser.parse_args(argv)


def _ort_latency(model_path, x, threads, runs):
    import onnxruntime as ort

    from compiler.run.host import timed_runs

    ort.set_default_logger_severity(3)  # quantize_static's models make it warn about every unused initializer
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    return timed_runs(lambda: session.run(None, {"input": x}), runs)[1]


def _ort_int8_model(model_path, calib, out_path):
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.samples = iter({"input": sample} for sample in calib)

        def get_next(self):
            return next(self.samples, None)

    quantize_static(str(model_path), str(out_path), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    return out_path


def _ours_latency(model_path, folder, x_path, runs, quant):
    from compiler.build import build
    from compiler.run.host import run_host

    build(model_path, "host", folder, quant=quant)
    return run_host(folder, [x_path], repeat=runs).latencies_ms


def measure(name, args) -> dict:
    import dataclasses

    import numpy as np

    from coral_model_zoo import _quant, prepare

    folder = args.out / name
    model, calib_path, x = prepare(name, folder, args.size, args.calib_samples)
    np.save(folder / "x.npy", x)
    calib = np.load(calib_path)
    int8 = dataclasses.replace(_quant(calib_path, args.calib_samples), io="float")  # float I/O, as ORT's
    latencies = {}
    print(f"{name}: ONNX Runtime fp32 / int8 ...", file=sys.stderr)
    latencies["ort-fp32"] = _ort_latency(model, x, args.threads, args.runs)
    latencies["ort-int8"] = _ort_latency(_ort_int8_model(model, calib, folder / "ort_int8.onnx"), x, args.threads,
                                         args.runs)
    print(f"{name}: our host float and int8 builds ...", file=sys.stderr)
    latencies["ours-fp32"] = _ours_latency(model, folder / "fp32", folder / "x.npy", args.runs, None)
    latencies["ours-int8"] = _ours_latency(model, folder / "int8", folder / "x.npy", args.runs, int8)
    return {"model": name, **{runtime: {"median_ms": float(np.median(ms)), "p90_ms": float(np.percentile(ms, 90))}
                              for runtime, ms in latencies.items()}}


def _ratio(row, what):
    ours, theirs = what.split(" / ")
    return row[ours]["median_ms"] / row[theirs]["median_ms"]


def table(rows, threads, runs) -> list[str]:
    runtimes = ("ort-fp32", "ort-int8", "ours-fp32", "ours-int8")
    lines = [f"Median / p90 ms over {runs} runs, {threads} thread(s), one process:", "",
             "| model | " + " | ".join(runtimes) + " | " + " | ".join(GOALS) + " |",
             "|---|" + "---:|" * (len(runtimes) + len(GOALS))]
    for row in rows:
        times = [f"{row[r]['median_ms']:.1f} / {row[r]['p90_ms']:.1f}" for r in runtimes]
        ratios = [f"{_ratio(row, what):.1f}x (goal {goal:g}x)" for what, goal in GOALS.items()]
        lines.append(f"| {row['model']} | " + " | ".join(times + ratios) + " |")
    return lines


def main(argv=None) -> int:
    args = _arguments(argv)
    os.environ["TVM_NUM_THREADS"] = str(args.threads)  # before TVM's thread pool starts
    sys.path.insert(0, str(ROOT / "tests"))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    args.out.mkdir(parents=True, exist_ok=True)
    rows = [measure(name, args) for name in args.models]
    lines = table(rows, args.threads, args.runs)
    print("\n".join(lines))
    (args.out / "benchmark.md").write_text("\n".join(lines) + "\n")
    (args.out / "benchmark.json").write_text(json.dumps({"threads": args.threads, "runs": args.runs,
                                                         "size": args.size, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
