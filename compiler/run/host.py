"""Run a host build (model.so) in the Relax VM and time it."""

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from compiler.errors import CompilerError
from compiler.names import shown
from compiler.run.report_check import checked_report
from compiler.run.inputs import load_inputs


@dataclass
class RunResult:
    outputs: list[np.ndarray]
    output_names: list[str]
    latencies_ms: list[float]

    def median_ms(self) -> float:
        return float(np.median(self.latencies_ms))

    def p90_ms(self) -> float:
        return float(np.percentile(self.latencies_ms, 90))


def read_report(out_dir) -> dict:
    report_path = Path(out_dir) / "report.json"
    if not report_path.is_file():
        raise CompilerError(f"{shown(out_dir)}: not a build output directory (no report.json); run `build` first")
    try:
        report = json.loads(report_path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise CompilerError(f"{shown(report_path)}: not a readable report ({shown(str(err)[:100])})") from None
    return checked_report(report, report_path)


def timed_runs(run, repeat: int) -> tuple:
    """What `run --repeat N` means on every runtime that can be timed (host, LiteRT, OpenVINO,
    ONNX Runtime): run() once untimed (warm-up: caches, lazy initialisation), then `repeat` timed
    runs. Returns the warm-up's result and the timed runs' wall times in ms."""
    if repeat < 1:
        raise CompilerError(f"--repeat {repeat}: must be at least 1")
    result = run()
    latencies = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        latencies.append((time.perf_counter() - start) * 1e3)
    return result, latencies


def run_host(out_dir, input_paths, repeat=1) -> RunResult:
    import tvm
    from tvm import relax

    if repeat < 1:
        raise CompilerError(f"--repeat {repeat}: must be at least 1")
    report = read_report(out_dir)
    interface = report["interface"]
    inputs = load_inputs(input_paths, interface["inputs"])
    library = Path(out_dir) / "model.so"
    if not library.is_file():
        raise CompilerError(f"{shown(out_dir)}: no model.so (is this a host build?)")
    try:
        vm = relax.VirtualMachine(tvm.runtime.load_module(str(library)), tvm.cpu())
    except Exception as err:  # a damaged or foreign library: TVM raises its own error types
        raise CompilerError(f"{shown(library)}: cannot load the compiled model ({shown(str(err).strip()[:120])})") from None
    arguments = [tvm.runtime.tensor(array) for array in inputs]
    result, latencies = timed_runs(lambda: vm["main"](*arguments), repeat)
    outputs = [t.numpy() for t in result] if not hasattr(result, "numpy") else [result.numpy()]
    if len(outputs) != len(interface["outputs"]):
        raise CompilerError(f"{shown(library)}: returned {len(outputs)} outputs, report.json lists "
                            f"{len(interface['outputs'])}")
    return RunResult(outputs, [t["name"] for t in interface["outputs"]], latencies)
