"""`build --target coral-npu`: the quantised model -> OUT/firmware.elf and OUT/src/.

    QDQ module -> int8 groups (codegen/int8.py) -> FirmwareGraph (coral/graph.py)
      -> C sources (coral/firmware.py) -> clang-19 + ld.lld-19 (coral/toolchain.py)
      (+ operators outside the int8 table: TVM's LLVM backend -> src/tvm_fallback.o)

The report section (report.json "coral") holds the per-layer plan (implementation, MACs,
schedule, fallback reason) and the memory map read back from the linked ELF.
"""

import shutil
from pathlib import Path

import tvm
import tvm_ffi.libinfo

from compiler.codegen.int8 import int8_groups
from compiler.coral import codegen
from compiler.coral.firmware import generate_firmware
from compiler.coral.graph import extract_graph
from compiler.coral.memory import profile_for, profiles_for
from compiler.coral.toolchain import Toolchain
from compiler.coral.tvm_fallback import compile_object
from compiler.coral.weight_fit import all_int8, check_constants_fit, pack_for_fit, stored_weight_bytes, weight_elements
from compiler.errors import CompilerError, FitError
from compiler.resources import data_dir
from compiler.tune.apply import schedules_of, tuned_workloads

FIRMWARE = "firmware.elf"
SOURCE_DIR = "src"
TVM_OBJECT = "tvm_fallback.o"  # in src/: layers compiled by TVM's LLVM backend
TVM_TIR = "tvm_fallback_tir.py"  # in src/: their TIR, as TVMScript


def qdq_module(compiled):
    """The int8 (QDQ-form) module of a quantised or pre-quantised build."""
    if compiled.qdq is not None:
        return compiled.qdq
    raise CompilerError(f"--target {compiled.target.name} runs int8 models: build with --quantize int8 --calib DATA "
                        "(or give a model quantised with QDQ / QLinear operators)")


# The baseline a Coral user without optimised kernels gets: kernels/ref at -O3 with clang's
# auto-vectorisation, which needs to know VLEN >= 128 (_zvl128b) to vectorise at all.
REFERENCE_BUILD = {"kernels": "ref", "opt": "-O3", "march_suffix": "_zvl128b"}


def build_firmware(compiled, out_dir: Path, memory: str | None = None, schedules=None, warn=None,
                   kernels: str = "generated", opt: str = "-O2", march_suffix: str = "", tuning=None) -> dict:
    """Writes OUT/src/*.c and OUT/firmware.elf; returns the report's "coral" section.
    kernels/opt/march_suffix: see REFERENCE_BUILD. tuning: a tuning database
    (compiler/tune/database.py) whose best schedules the layers use; `schedules` (step index ->
    schedule) overrides both."""
    target = compiled.target
    profile = profile_for(target, memory)
    toolchain = Toolchain.for_target(target)  # fail on a missing compiler before the long part
    graph = extract_graph(int8_groups(qdq_module(compiled), compiled.integer_spec))

    def link(tuned: list):
        chosen = {**schedules_of(tuned), **(schedules or {})}
        return _link_firmware(graph, profile, toolchain, out_dir, chosen, kernels, opt, march_suffix)

    tuned = tuned_workloads(graph, tuning) if tuning is not None else []
    (firmware, elf, notes), tuned, dropped = _fitting(link, tuned)
    for note in notes + [_dropped_note(entry, error) for entry, error in dropped]:
        if warn is not None:
            warn(note)
    section = _section(graph, firmware, profile, toolchain.region_usage(elf))
    section["build"] = {"kernels": kernels, "opt": opt, "march": toolchain.isa["march"] + march_suffix,
                        "arch": codegen.family(target)}
    tuned_steps = set(schedules_of(tuned))
    for row in section["layers"]:
        row["tuned"] = row["index"] in tuned_steps
    if tuning is not None:
        section["tuning_db"] = {"records": tuning.records, "layers_tuned": len(tuned_steps),
                                "ignored": dict(tuning.ignored),
                                "dropped": [{"workload": entry.key, "layers": entry.layers, "saved_instructions": entry.saved,
                                             "why": str(error)} for entry, error in dropped]}
    return section


def _fitting(link, tuned: list):
    """link(tuned workloads) with every tuned schedule; when that firmware does not fit
    the memory profile but the default one does (tuned kernels can be larger: each was measured
    alone), the tuned workloads saving the fewest instructions are dropped until it fits.
    -> (link's result, the tuned workloads kept, [(dropped workload, the error it caused)])."""
    try:
        return link(tuned), tuned, []
    except FitError as error:
        if not tuned:
            raise
        too_big = error
    link([])  # a model that does not fit even untuned fails here, with its own error
    kept, dropped = sorted(tuned, key=lambda entry: -entry.saved), []
    while True:  # ends: with nothing kept, this is the default build, which fits
        dropped.append((kept.pop(), too_big))
        try:
            return link(kept), kept, dropped
        except FitError as error:
            too_big = error


def _dropped_note(entry, error) -> str:
    layers = entry.layers[0] + (f" (+{len(entry.layers) - 1} more)" if len(entry.layers) > 1 else "")
    return (f"tuning database: the tuned schedule of {layers} is not used (the default is): with it, {error}; "
            f"it would save {entry.saved:,} instructions")


def _link_firmware(graph, profile, toolchain, out_dir: Path, schedules: dict, kernels, opt, march_suffix):
    """OUT/src/*.c and OUT/firmware.elf for `schedules` -> (firmware, elf, the build's warnings:
    held back while build_firmware may still try other schedules). Layers without a chosen
    schedule keep int16-packed weights while the firmware fits, int8 where it must (weight_fit.py)."""
    def generate(chosen):
        notes = []
        return generate_firmware(graph, profile, schedules=chosen, warn=notes.append, kernels=kernels,
                                 target=toolchain.target), notes

    firmware, notes = generate(schedules)
    if kernels == "generated":
        packed = pack_for_fit(firmware, profile, schedules)
        if packed:
            firmware, notes = generate({**packed, **schedules})
        check_constants_fit(firmware, profile, profiles_for(toolchain.target))  # before any C is compiled
    try:
        return firmware, _compile_and_link(firmware, profile, toolchain, out_dir, march_suffix, opt), notes
    except FitError:
        packed = all_int8(firmware, schedules) if kernels == "generated" else {}
        if not packed:  # nothing left to shrink: the error names the region
            raise
        firmware, notes = generate({**packed, **schedules})
        return firmware, _compile_and_link(firmware, profile, toolchain, out_dir, march_suffix, opt), notes


def _compile_and_link(firmware, profile, toolchain, out_dir: Path, march_suffix: str, opt: str) -> Path:
    source_dir = out_dir / SOURCE_DIR
    if source_dir.exists():
        shutil.rmtree(source_dir)  # a retry's sources replace the first attempt's
    source_dir.mkdir(parents=True)
    for name, text in firmware.files.items():
        (source_dir / name).write_text(text)
    sources = [source_dir / name for name in sorted(firmware.files) if name.endswith(".c")]
    sources += [data_dir("kernels") / path for path in firmware.ref_sources]
    march = [f"-march={toolchain.isa['march']}{march_suffix}"] if march_suffix else []
    objects, include_dirs = [], [source_dir]
    if firmware.tir_functions:
        objects.append(_tvm_object(toolchain.target, firmware.tir_functions, source_dir))
        include_dirs += [tvm_ffi.libinfo.find_include_path(), tvm_ffi.libinfo.find_dlpack_include_path()]
    elf = toolchain.build_firmware(sources, out_dir / FIRMWARE, profile, include_dirs=include_dirs, opt=opt,
                                   cflags=march, objects=objects)
    vector_float = [] if toolchain.vector_float else toolchain.vector_float_instructions(elf)
    if vector_float:  # Zve32x has no float vector unit: such a firmware would trap on the chip
        raise CompilerError(f"internal error: {FIRMWARE} contains vector-float instructions ({vector_float[0]})")
    return elf


def _tvm_object(target, functions: dict, source_dir: Path) -> Path:
    """The layers outside the int8 table, compiled by TVM's LLVM backend into src/ (with their
    TIR beside the object, for reading)."""
    (source_dir / TVM_TIR).write_text(tvm.IRModule(functions).script())
    return compile_object(functions, target.data["tvm"]["target"], source_dir / TVM_OBJECT)


def _section(graph, firmware, profile, usage) -> dict:
    return {
        "memory_profile": profile.name,
        "memory_map": [{"region": region, "used_bytes": used, "size_bytes": size,
                        "percent": round(100.0 * used / size, 1) if size else 0.0}
                       for region, (used, size) in usage.items()],
        "arena_bytes": dict(firmware.arena_bytes),
        "arena_regions": {"arena": profile.region_for("data").name, "spill_arena": profile.region_for("spill").name},
        "constant_bytes": sum(layer.constant_bytes for layer in firmware.layers),
        "weight_bytes": {"int8": sum(weight_elements(layer) for layer in firmware.layers),
                         "stored": sum(stored_weight_bytes(layer) for layer in firmware.layers),
                         "int16_packed_layers": sum(stored_weight_bytes(layer) > weight_elements(layer)
                                                    for layer in firmware.layers)},
        "layers": [_layer_row(graph, layer) for layer in firmware.layers],
        "inputs": [_tensor(graph, index) for index in graph.inputs],
        "outputs": [_tensor(graph, index) for index in graph.outputs],
    }


def _tensor(graph, index) -> dict:
    tensor = graph.tensors[index]
    return {"shape": list(tensor.shape), "dtype": tensor.dtype, "bytes": tensor.nbytes}


def _layer_row(graph, layer) -> dict:
    step = layer.step
    return {"index": step.index, "name": step.name, "op": step.op, "impl": layer.impl, "function": layer.function,
            "onnx_nodes": step.onnx_nodes, "output_shape": list(graph.tensors[step.output].shape),
            "macs": step.macs, "scratch_bytes": layer.scratch_bytes, "constant_bytes": layer.constant_bytes,
            "schedule": layer.schedule, "fallback": layer.fallback}
