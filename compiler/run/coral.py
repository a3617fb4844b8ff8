"""Run a firmware target's build (firmware.elf: coral-npu, rvv256-rv64, arm64-neon) in its QEMU and read back its counters.

The firmware (coral/firmware.py) reads the inputs from the simulator's input stream and sends
output i under record tag i and the counters under COUNTERS_TAG (coral/simulator.py: the sandbox).
Instruction counts are exact (npu_instret around every layer: rdinstret under -icount shift=0 on
the RISC-V targets, a TCG plugin's count in qemu-aarch64); they are recorded in OUT/run.json beside
the build's report.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from compiler.coral.build import FIRMWARE
from compiler.coral.firmware import COUNTERS_TAG
from compiler.coral.simulator import counting_method, run_firmware
from compiler.targets import get_target
from compiler.errors import CompilerError
from compiler.names import md_code
from compiler.output_dir import write_text_atomic
from compiler.run.host import read_report
from compiler.run.inputs import load_inputs

RUN_JSON = "run.json"


@dataclass
class CoralRun:
    outputs: list[np.ndarray]
    output_names: list[str]
    layers: list[dict]         # the report's layers, each with "instructions" and "macs_per_instruction"
    total_instructions: int
    seconds: float             # QEMU's wall time (not a performance figure)
    simulator: str = ""        # the QEMU that ran it (the target's runner)
    counting: str = ""         # how it counted ([simulator] counting)


@dataclass
class ElfRun:
    """One inference of a firmware: its records by tag, its counters (one per layer, then the total)."""
    records: dict
    counters: np.ndarray
    seconds: float

    @property
    def total_instructions(self) -> int:
        return int(self.counters[-1])


def run_coral(out_dir, input_paths, timeout: float | None = None) -> CoralRun:
    out_dir = Path(out_dir)
    report = read_report(out_dir)
    coral = report.get("coral")
    elf = out_dir / FIRMWARE
    if coral is None or not elf.is_file():
        raise CompilerError(f"{out_dir}: no {FIRMWARE} (is this the build of an RVV target, such as coral-npu or rvv256-rv64?)")
    interface = report["interface"]
    inputs = load_inputs(input_paths, interface["inputs"])
    target = get_target(report["target"])
    result = run_elf(elf, coral, inputs, target, timeout)
    outputs = [_read(result.records, index, tensor, spec)
               for index, (tensor, spec) in enumerate(zip(coral["outputs"], interface["outputs"]))]
    layers = _with_counts(coral["layers"], result.counters)
    run = CoralRun(outputs, [spec["name"] for spec in interface["outputs"]], layers, result.total_instructions,
                   result.seconds, target.runner, counting_method(target))
    _write_run_json(out_dir, run)
    return run


def run_elf(elf, coral: dict, inputs: list, target, timeout: float | None = None) -> ElfRun:
    """One inference of a built firmware (`coral`: its build record, report.json's "coral") on `inputs`
    (arrays in the interface's order) in the target's QEMU."""
    streams = [np.ascontiguousarray(array, dtype=tensor["dtype"]).tobytes() for array, tensor in zip(inputs, coral["inputs"])]
    sent = sum(tensor["bytes"] for tensor in coral["outputs"]) + 4 * (len(coral["layers"]) + 1)
    result = run_firmware(elf, inputs=streams, timeout=timeout, expected_output_bytes=sent, target=target)
    counters = np.frombuffer(_record(result.records, COUNTERS_TAG, 4 * (len(coral["layers"]) + 1), "counters"),
                             dtype=np.uint32)
    return ElfRun(result.records, counters, result.seconds)


def _record(records: dict, tag: int, size: int, what: str) -> bytes:
    data = records.get(tag)
    if data is None or len(data) != size:
        got = "nothing" if data is None else f"{len(data):,} bytes"
        raise CompilerError(f"the firmware sent {got} for {what}, expected {size:,} bytes")
    return data


def _read(records: dict, index: int, tensor: dict, spec: dict) -> np.ndarray:
    data = _record(records, index, tensor["bytes"], f"output {index}")
    return np.frombuffer(data, dtype=tensor["dtype"]).reshape(spec["shape"]).copy()


def _with_counts(layers: list[dict], counters: np.ndarray) -> list[dict]:
    if len(counters) != len(layers) + 1:
        raise CompilerError(f"firmware wrote {len(counters)} counters for {len(layers)} layers")
    rows = []
    for layer, count in zip(layers, counters[:-1].tolist()):
        row = {key: layer[key] for key in ("index", "name", "op", "impl", "macs")}
        row["instructions"] = count
        row["macs_per_instruction"] = round(layer["macs"] / count, 2) if count else 0.0
        rows.append(row)
    return rows


def _write_run_json(out_dir: Path, run: CoralRun) -> None:
    total_macs = sum(row["macs"] for row in run.layers)
    write_text_atomic(out_dir / RUN_JSON, json.dumps({
        "total_instructions": run.total_instructions,
        "total_macs": total_macs,
        "macs_per_instruction": round(total_macs / run.total_instructions, 2) if run.total_instructions else 0.0,
        "layers": run.layers,
    }, indent=2) + "\n")


def layer_table(run: CoralRun) -> str:
    """The per-layer table `run` prints (Markdown)."""
    lines = ["| # | layer | op | impl | MACs | instructions | MACs/instr |", "|---:|---|---|---|---:|---:|---:|"]
    for row in run.layers:
        lines.append(f"| {row['index']} | {md_code(row['name'])} | {row['op']} | {row['impl']} | {row['macs']:,} | "
                     f"{row['instructions']:,} | {row['macs_per_instruction']:.2f} |")
    total_macs = sum(row["macs"] for row in run.layers)
    ratio = total_macs / run.total_instructions if run.total_instructions else 0.0
    lines.append(f"| | **total** | | | {total_macs:,} | {run.total_instructions:,} | {ratio:.2f} |")
    return "\n".join(lines)
