"""ethos-u55-128, ethos-u55-256, ethos-u65-256: our int8 model through Arm Vela.

build: the int8 module (compiled.qdq, built with the TFLite integer spec) -> export/tflite.py ->
OUT/model.tflite, checked in LiteRT's built-in kernels against the host int8 build (export/verify.py:
bit-exact) -> Vela (`python -m ethosu.vela`, a subprocess in a folder inside the staging folder) for
the target's [vela] accelerator, system configuration and memory mode, at the target's clock (an .ini
copy of the system configuration in Vela's own Arm/vela.ini, with core_clock replaced) ->

    OUT/model_vela.tflite   NPU command streams (CUSTOM ethos-u operators) between the operators
                            Vela leaves to the CPU
    OUT/vela_summary.csv    Vela's estimate: cycles, inferences/s, memory used per area
    OUT/vela.log            Vela's console (the reason it gives for each CPU operator)

The report's section: cycles and inferences/s at the clock (Vela's estimate; the CPU operators' time
is not in it), SRAM / flash / DRAM bytes, and which operators run where, read from model_vela.tflite
(every operator that is not ethos-u stays on the CPU) with Vela's reason for each.

run: OUT/model.tflite in LiteRT (the pre-Vela file, bit-exact to our host int8 build); the NPU
itself needs Arm's Fixed Virtual Platform (Corstone-300/310 FVP) or silicon, which this does not run.
"""

import collections
import csv
import importlib.metadata
import importlib.util
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from compiler.backends import missing_package
from compiler.errors import CompilerError
from compiler.names import one_line, shown
from compiler.quant.integer_spec import TFLITE
from compiler.report.backend import check, section
from compiler.run.host import RunResult

INTEGER_SPEC = TFLITE
PACKAGE, PIP, VELA_MODULE = "ethos-u-vela", "ethos-u-vela==5.2.0", "ethosu.vela"
WRITES_TFLITE = True  # build() writes and checks OUT/model.tflite itself: --emit tflite adds nothing (build.py)
TFLITE_FILE, VELA_FILE, SUMMARY_FILE, LOG_FILE = "model.tflite", "model_vela.tflite", "vela_summary.csv", "vela.log"
ARM_INI = "Arm/vela.ini"  # Vela's own configuration file (inside ethosu/config_files)
NPU_OP = b"ethos-u"  # the custom operator code of Vela's NPU command streams
VELA_TIMEOUT = 900    # seconds
CONFIG_KEYS = ("accelerator", "system_config", "memory_mode", "core_clock_hz")  # target.toml [vela]
NOT_RUN = ("NPU execution (model_vela.tflite) needs Arm's Fixed Virtual Platform (Corstone-300/310 FVP) or "
           "silicon; `run` executes the pre-Vela model.tflite in LiteRT on this CPU instead")
# Vela's reason for leaving an operator to the CPU: its C++ core (U55/U65 in 5.2) and its Python core
_REGOR_REASON = re.compile(r"^Warning \(supported operators\) operator: (\S+), ofm: '(.*)'$")
_LEGACY_REASON = re.compile(r"^(?:Warning|Info): (?:Unsupported TensorFlow Lite semantics for )?(\S+) '(.*)'"
                            r"(?: is not supported on the NPU| is a CPU only op|\. Placing on CPU)")
_CPU_COUNT = re.compile(r"^(CPU|NPU) operators = (\d+)")


def _version() -> str:
    return importlib.metadata.version(PACKAGE)


def _require_vela(target) -> None:
    try:
        found = importlib.util.find_spec(VELA_MODULE) is not None
    except ModuleNotFoundError:  # its parent package (ethosu) is missing
        found = False
    if not found:
        raise missing_package(PACKAGE, PIP, target.name)


def build(compiled, staging, target, warn) -> dict:
    from compiler.export.tflite import export_tflite
    from compiler.export.verify import write_tflite

    if compiled.qdq is None:
        raise CompilerError(f"--target {target.name}: Vela takes an int8 model; build with --quantize int8 (or from "
                            "a quantised model)")
    _require_vela(target)
    config = _config(target)
    exported = write_tflite(export_tflite(compiled.qdq), compiled, staging, warn)
    console, summary = _run_vela(staging, target, config)
    estimate = _estimate(summary)
    placement = _placement((staging / VELA_FILE).read_bytes(), _reasons(console))
    tflite_check = exported["check"]
    verified = [
        check(f"{TFLITE_FILE} in LiteRT against our host int8 build",
              f"{tflite_check['reference']}, {tflite_check['inputs']} random inputs over the int8 input ranges",
              ("identical" if tflite_check["identical"] else f"differ by up to {tflite_check['max_abs_difference']:.4g}")
              + f" (expected: {tflite_check['expected']})",
              tflite_check["identical"] or bool(exported["float_layers"])),
        check("Vela compiled the configuration asked for", f"{SUMMARY_FILE}: accelerator, system configuration, "
              "memory mode, clock", f"{summary['accelerator_configuration']}, {summary['system_config']}, "
              f"{summary['memory_mode']}, {float(summary['core_clock']) / 1e6:g} MHz",
              _configured(summary, config)),
        _placement_check(console, placement),
    ]
    performance = {"figure": "cycles", "value": estimate["cycles"],
                   "source": f"Arm Vela's estimate: {estimate['inferences_per_second']:,.1f} inferences/s at "
                             f"{config['core_clock_hz'] / 1e6:g} MHz ({config['system_config']}, {config['memory_mode']}); "
                             "the CPU operators' time is not in it",
                   **{key: estimate[key] for key in ("inferences_per_second", "npu_cycles", "macs")},
                   "clock_hz": config["core_clock_hz"]}
    notes = _fallback_notes(target, placement, warn)
    entry = section(f"Arm Vela {_version()}", [VELA_FILE, TFLITE_FILE, SUMMARY_FILE, LOG_FILE], verified, [NOT_RUN],
                    performance, estimate["memory"], operators=_operators(placement), notes=notes)
    entry["vela"] = {key: config[key] for key in CONFIG_KEYS}
    entry["tflite"] = exported  # report["tflite"], as --emit tflite writes it (build.py)
    return entry


def _config(target) -> dict:
    config = target.data.get("vela", {})
    missing = [key for key in CONFIG_KEYS if key not in config]
    if missing:
        raise CompilerError(f"--target {target.name}: target.toml [vela] lacks {', '.join(missing)}")
    return config


def _run_vela(staging: Path, target, config) -> tuple[str, dict]:
    """Vela on OUT/model.tflite; moves its outputs into OUT; returns (its console, its summary row)."""
    work = Path(tempfile.mkdtemp(prefix="vela-", dir=staging))
    try:
        (work / "system.ini").write_text(_system_config(target, config))
        command = [sys.executable, "-m", VELA_MODULE, str((staging / TFLITE_FILE).resolve()),
                   "--accelerator-config", config["accelerator"], "--config", ARM_INI,
                   "--config", str((work / "system.ini").resolve()), "--system-config", _system_name(config),
                   "--memory-mode", config["memory_mode"], "--output-dir", str(work.resolve()), "--show-cpu-operations"]
        try:
            result = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=VELA_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise CompilerError(f"--target {target.name}: Arm Vela did not finish {TFLITE_FILE} in {VELA_TIMEOUT} s") from None
        console = result.stdout + result.stderr
        summaries = sorted(work.glob("*_summary_*.csv"))
        if result.returncode != 0 or not (work / "model_vela.tflite").is_file() or not summaries:
            last = [line for line in console.splitlines() if line.strip()][-1:] or [f"exit code {result.returncode}"]
            raise CompilerError(f"--target {target.name}: Arm Vela failed on {TFLITE_FILE}: {one_line(shown(last[0], 300))}")
        shutil.move(work / "model_vela.tflite", staging / VELA_FILE)
        shutil.move(summaries[0], staging / SUMMARY_FILE)
        (staging / LOG_FILE).write_text(console)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    with open(staging / SUMMARY_FILE, newline="") as stream:
        rows = list(csv.DictReader(stream))
    return console, rows[0]


def _system_config(target, config) -> str:
    """The target's system configuration: a copy of vela.ini's with core_clock replaced by the target's clock."""
    import configparser

    ini = configparser.ConfigParser()
    ini.optionxform = str  # Vela's keys are case-sensitive (Sram_clock_scale)
    ini.read(Path(importlib.util.find_spec(VELA_MODULE.split(".")[0]).submodule_search_locations[0]) / "config_files" / ARM_INI)
    name = f"System_Config.{config['system_config']}"
    if not ini.has_section(name) or ini.has_option(name, "inherit"):
        raise CompilerError(f"--target {target.name}: [vela] system_config {config['system_config']!r} is not a "
                            f"system configuration of Vela's {ARM_INI} (see `vela --list-configs {ARM_INI}`)")
    values = {**dict(ini.items(name)), "core_clock": str(int(config["core_clock_hz"]))}
    return f"[System_Config.{_system_name(config)}]\n" + "".join(f"{key}={value}\n" for key, value in values.items())


def _system_name(config) -> str:
    """The copy's name: vela.ini's name first, because Vela's C++ core reads the AXI width from it (a name
    starting with Ethos_U55 gets the U55's 64-bit ports: half the bandwidth, twice the memory cycles)."""
    return f"{config['system_config']}_{int(config['core_clock_hz'])}Hz"


def _configured(summary, config) -> bool:
    return (summary["accelerator_configuration"].lower().replace("_", "-") == config["accelerator"]
            and summary["system_config"] == _system_name(config) and summary["memory_mode"] == config["memory_mode"]
            and round(float(summary["core_clock"])) == int(config["core_clock_hz"]))


def _estimate(summary: dict) -> dict:
    """Vela's summary row: cycles, inferences/s and bytes per memory area (it writes KiB)."""
    def kib(key):
        return round(float(summary.get(key) or 0) * 1024)

    memory = {"sram_bytes": kib("sram_memory_used"),
              "flash_bytes": kib("off_chip_flash_memory_used") + kib("on_chip_flash_memory_used"),
              "dram_bytes": kib("dram_memory_used"),
              "weights_in": summary.get("weights_storage_area", ""),
              "feature_maps_in": summary.get("feature_map_storage_area", "")}
    return {"cycles": int(float(summary["cycles_total"])), "npu_cycles": int(float(summary["cycles_npu"])),
            "inferences_per_second": round(float(summary["inferences_per_second"]), 2),
            "macs": int(float(summary["nn_macs"])), "memory": memory}


def _reasons(console: str) -> dict:
    """(TFLite operator, output tensor) -> the reason Vela printed for leaving it to the CPU."""
    found, key = {}, None
    for line in console.splitlines():
        match = _REGOR_REASON.match(line) or _LEGACY_REASON.match(line)
        if match:
            key = (match.group(1), match.group(2))
            found.setdefault(key, [])
            if "is a CPU only op" in line:
                found[key].append("a CPU-only operator")
        elif key is not None and line.strip():
            found[key].append(line.strip().removeprefix("Reason: ").removeprefix("- ").strip())
        else:
            key = None
    return {key: " ".join(lines) for key, lines in found.items()}


def _placement(vela_file: bytes, reasons: dict) -> dict:
    """Which operators of model_vela.tflite are NPU command streams and which stay on the CPU."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(vela_file, 0)
    names = {value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
    graph = model.subgraphs[0]
    inputs, outputs = {int(i) for i in graph.inputs}, {int(i) for i in graph.outputs}
    npu, cpu = 0, []
    for op in graph.operators:
        code = model.operatorCodes[op.opcodeIndex]
        if code.customCode == NPU_OP:
            npu += 1
            continue
        kind = names.get(max(code.builtinCode, code.deprecatedBuiltinCode), f"builtin {code.builtinCode}")
        if code.customCode:
            kind = f"CUSTOM {code.customCode.decode(errors='replace')}"
        first_in, first_out = _first(op.inputs), _first(op.outputs)
        tensor = graph.tensors[first_out].name if first_out is not None else b""
        tensor = tensor.decode(errors="replace") if isinstance(tensor, bytes) else str(tensor or "")
        io = ("float input" if kind == "QUANTIZE" and first_in in inputs else
              "float output" if kind == "DEQUANTIZE" and first_out in outputs else None)
        cpu.append({"op": kind, "tensor": tensor, "reason": reasons.get((kind, tensor), "not given by Vela"), "io": io})
    return {"npu_islands": npu, "cpu": cpu}


def _first(indices):
    """The first tensor index of an operator's inputs or outputs (a numpy array, or None when empty)."""
    return int(indices[0]) if indices is not None and len(indices) else None


def _placement_check(console, placement) -> dict:
    """Vela's own count of CPU operators against the operators model_vela.tflite leaves outside the NPU."""
    counts = {kind: int(number) for kind, number in (m.groups() for m in map(_CPU_COUNT.match, console.splitlines()) if m)}
    cpu = len(placement["cpu"])
    said = counts.get("CPU")
    return check(f"{VELA_FILE}: operators on the NPU and on the CPU", "its operators read back (CUSTOM ethos-u = an "
                 "NPU command stream), against the CPU operator count Vela prints",
                 f"{placement['npu_islands']} NPU command stream(s) holding {counts.get('NPU', '?')} operators, "
                 f"{cpu} CPU operator(s)" + ("" if said in (None, cpu) else f" (Vela says {said})"),
                 placement["npu_islands"] > 0 and said in (None, cpu))


def _label(op: dict) -> str:
    return f"{op['op']} {shown(op['tensor'], 80)}"


def _operators(placement) -> dict:
    cpu = placement["cpu"]
    return {"on_target": placement["npu_islands"], "on_target_kind": "NPU command streams (CUSTOM ethos-u)",
            "fallback": {"count": len(cpu), "kind": "CPU", "layers": [_label(op) for op in cpu],
                         "reasons": {_label(op): op["reason"] for op in cpu}}}


def _fallback_notes(target, placement, warn) -> list[str]:
    """One note (and one warning) per kind of operator Vela leaves to the CPU, with its reason."""
    groups = collections.defaultdict(list)
    for op in placement["cpu"]:
        groups[(op["op"], op["reason"], op["io"])].append(shown(op["tensor"], 80))
    notes = []
    for (kind, reason, io), tensors in groups.items():
        where = f" (the model's {io}: build with --io int8 to hand the NPU int8 tensors)" if io else ""
        notes.append(f"--target {target.name}: Vela leaves {len(tensors)} {kind} on the CPU{where}: "
                     f"{', '.join(tensors[:8])}{' ...' if len(tensors) > 8 else ''}; Vela's reason: {shown(reason, 300)}; "
                     f"the CPU runs it as the TFLite {kind} kernel (TFLite Micro) between the NPU command streams")
    if warn is not None:
        for note in notes:
            warn(note)
    return notes


def run(out_dir, input_paths, report, repeat=1) -> RunResult:
    """OUT/model.tflite in LiteRT's built-in kernels (bit-exact to our host int8 build): one warm-up
    run, then `repeat` timed runs."""
    from compiler.export.verify import litert_interpreter
    from compiler.run.host import timed_runs
    from compiler.run.inputs import load_inputs

    path = Path(out_dir) / TFLITE_FILE
    if not path.is_file():
        raise CompilerError(f"{shown(out_dir)}: no {TFLITE_FILE} (is this an Ethos-U build?)")
    inputs = load_inputs(input_paths, report["interface"]["inputs"])
    interpreter = litert_interpreter(model_path=str(path))
    for detail, value in zip(interpreter.get_input_details(), inputs):
        interpreter.set_tensor(detail["index"], value)
    _, latencies = timed_runs(interpreter.invoke, repeat)
    outputs = [interpreter.get_tensor(detail["index"]) for detail in interpreter.get_output_details()]
    print(f"ran {TFLITE_FILE} (before Vela) in LiteRT's built-in kernels on this CPU; {NOT_RUN.split(';')[0]}")
    return RunResult(outputs, [t["name"] for t in report["interface"]["outputs"]], latencies)
