"""AOT firmware for an RVV target (coral-npu, rvv256-rv64): one C file per step, and a main.c that runs the whole graph.

    graph (coral/graph.py) -> per step: a generated RVV kernel (cpp/ via coral/codegen.py),
                              kernels/ref behind the same ABI when the codegen has no kernel for it,
                              a generated transpose, or, for operators outside the int8 table,
                              a wrapper around TVM's LLVM code (coral/tvm_fallback.py)
                           -> static memory plan (coral/memory_plan.py): activations and scratch in
                              one arena in DTCM, the largest moved to EXTMEM when DTCM is too small
                           -> main.c: read the inputs (the runtime's input stream), call every layer
                              with rdinstret around it, send the outputs and the per-layer counters
                              (npu_send records; targets/riscv_runtime/hostio.c)

Every layer function has the ABI of the generated kernels (codegen.h):
    void layerN_<name>(const T* input, [const T* input2, ...] T* output, int8_t* scratch);
Names from the model reach the C only through compiler/names.py: the function name is derived
(c_identifier), the comment beside each call is escaped (c_comment).
"""

from dataclasses import dataclass, field

import numpy as np


from compiler.codegen.ffi_abi import ctype
from compiler.coral import tvm_fallback
from compiler.coral.graph import FirmwareGraph, Step
from compiler.coral.memory_plan import ALIGN, Buffer, plan_arena
from compiler.coral.ref_layer import ref_file, ref_layer_source
from compiler.coral.transpose import transpose_source
from compiler.errors import FitError
from compiler.names import c_comment, c_identifier, shown

COUNTERS_TAG = 1000000  # npu_send tag of the per-layer counters; output i is sent under tag i
RESERVED_DTCM = 2048  # runtime .data/.bss besides the arena and the counters


@dataclass
class Layer:
    step: Step
    impl: str                   # rvv / neon (generated kernel of the target's emitter family), c (generated
                                # portable C), ref (kernels/ref),
                                # transpose, tvm (TVM's LLVM code through a generated wrapper)
    function: str
    source: str                 # the C file's text
    scratch_bytes: int = 0
    constant_bytes: int = 0
    schedule: dict | None = None
    fallback: str | None = None  # why a kernel runs on kernels/ref or TVM


@dataclass
class Placement:
    arena: str    # ARENA (in DTCM) or SPILL_ARENA (in EXTMEM)
    offset: int


@dataclass
class Firmware:
    files: dict[str, str]              # src/ file name -> C text
    ref_sources: list[str]             # kernels/ref files (relative to kernels/) the layers call
    layers: list[Layer]
    placement: dict = field(default_factory=dict)   # storage tensor or ("scratch", step) -> Placement
    arena_bytes: dict = field(default_factory=dict)  # ARENA / SPILL_ARENA -> bytes
    tir_functions: dict = field(default_factory=dict)  # layer function -> PrimFunc for TVM's LLVM backend


def generate_firmware(graph: FirmwareGraph, profile, schedules: dict | None = None, vector: bool = True,
                      warn=None, kernels: str = "generated", target=None) -> Firmware:
    """C sources for `graph` on `profile` (coral/memory.py) of `target` (the codegen's default when None).
    `schedules`: step index -> schedule dict
    (the tuner's choice); `warn(message)` is told about every kernel that falls back to kernels/ref.
    kernels="ref" builds every kernel from kernels/ref (the baseline the benchmark compares with)."""
    if kernels not in ("generated", "ref"):
        raise ValueError(f"kernels={kernels!r}: generated or ref")
    layers = [_layer(graph, step, (schedules or {}).get(step.index), vector, kernels == "generated", target)
              for step in graph.steps]
    for layer in layers:
        if layer.fallback and warn is not None:
            where = f"TVM's LLVM code for {tvm_fallback.triple(target)}" if layer.impl == "tvm" else "kernels/ref"
            warn(f"{shown(layer.step.name)} ({layer.step.op}): runs on {where}: {layer.fallback}")
    placement, arena_bytes = _place(graph, layers, profile)
    files = {f"{layer.function}.c": layer.source for layer in layers}
    files["layers.h"] = _layers_header(graph, layers)
    files["main.c"] = _main(graph, layers, placement, arena_bytes)
    ref_sources = sorted({ref_file(layer.step.kernel.kernel) for layer in layers if layer.impl == "ref"})
    tir_functions = {layer.function: layer.step.tir.func for layer in layers if layer.impl == "tvm"}
    return Firmware(files, ref_sources, layers, placement, arena_bytes, tir_functions)


# ---------------------------------------------------------------------------------------------
# Layers


def _layer(graph, step: Step, schedule, vector, use_codegen, target) -> Layer:
    from compiler.coral import codegen

    function = c_identifier("layer", step.index, step.name)
    if step.kind == "transpose":
        # the target family's vector form (RVV strided stores, NEON interleaving stores); in the
        # reference build (what a user without our kernels writes), the portable loops
        family = codegen.family(target) if vector and use_codegen else None
        return Layer(step, "transpose", function, _transpose_source(graph, step, function, family))
    if step.kind == "tvm":
        return _tvm_layer(graph, step, function)

    kernel = step.kernel
    if not use_codegen:
        reason = "reference build"
    elif kernel.kernel in codegen.kernels(target):
        try:
            emitted = codegen.emit_int8_kernel(kernel, function, schedule=schedule, vector=vector, target=target)
        except codegen.SpecError as err:
            reason = str(err)
        else:
            return Layer(step, codegen.family(target) if vector else "c", function, emitted.source, emitted.scratch_bytes,
                         emitted.constant_bytes, emitted.schedule)
    else:
        reason = f"the codegen has no {codegen.family(target)} {kernel.kernel} kernel"
    source, constant_bytes = _ref_source(graph, step, function)
    return Layer(step, "ref", function, source, 0, constant_bytes, None, reason)


def _tvm_layer(graph, step: Step, function: str) -> Layer:
    workspace = tvm_fallback.workspace_bytes(step.tir.func)
    inputs = [(graph.tensors[i].shape, graph.tensors[i].dtype) for i in step.inputs]
    output = graph.tensors[step.output]
    source, constant_bytes = tvm_fallback.wrapper_source(function, _signature(graph, step, function), step.tir,
                                                         inputs, (output.shape, output.dtype), workspace, ".weights")
    dtypes = sorted({graph.tensors[i].dtype for i in step.inputs})
    reason = f"{'/'.join(dtypes)} {step.op}: not an int8 kernel of the Coral codegen"
    return Layer(step, "tvm", function, source, workspace, constant_bytes, None, reason)


def _signature(graph, step: Step, function: str) -> str:
    args = [f"const {ctype(graph.tensors[i].dtype)}* input{n}" for n, i in enumerate(step.inputs)]
    args.append(f"{ctype(graph.tensors[step.output].dtype)}* output")
    return f"void {function}({', '.join(args)}, int8_t* scratch)"


def _ref_source(graph, step: Step, function: str) -> tuple[str, int]:
    """A layer calling the kernels/ref function for step's kernel with its params struct."""
    kernel = step.kernel
    return ref_layer_source(kernel.kernel, kernel.params, kernel.arrays, function, _signature(graph, step, function),
                            len(step.inputs), f"{step.name} ({step.op})")


def _transpose_source(graph, step: Step, function: str, family: str | None) -> str:
    tensor = graph.tensors[step.inputs[0]]
    return transpose_source(function, _signature(graph, step, function), tensor.shape, step.axes,
                            np.dtype(tensor.dtype).itemsize, family)


def _layers_header(graph, layers) -> str:
    lines = ["/* Every layer of the model, in execution order (generated). */", "#ifndef LAYERS_H",
             "#define LAYERS_H", "#include <stdint.h>", ""]
    lines += [_signature(graph, layer.step, layer.function) + ";" for layer in layers]
    return "\n".join(lines + ["", "#endif", ""])


# ---------------------------------------------------------------------------------------------
# Memory plan


def _buffers(graph: FirmwareGraph, layers) -> list[Buffer]:
    """Storage tensors (reshape aliases share their source's) and per-layer scratch, with lifetimes
    in step indices: inputs live from -1 (read before the first step), outputs to the end."""
    end = len(graph.steps)
    first, last = {}, {}
    for index in graph.inputs:
        first[graph.storage(index)] = -1
    for step in graph.steps:
        out = graph.storage(step.output)
        first.setdefault(out, step.index)
        last[out] = max(last.get(out, step.index), step.index)
        for index in step.inputs:
            root = graph.storage(index)
            last[root] = max(last.get(root, step.index), step.index)
    for index in graph.outputs:
        last[graph.storage(index)] = end
    buffers = [Buffer(root, graph.tensors[root].nbytes, first[root], last.get(root, first[root])) for root in first]
    buffers += [Buffer(("scratch", layer.step.index), layer.scratch_bytes, layer.step.index, layer.step.index)
                for layer in layers if layer.scratch_bytes > 0]
    return buffers


def _place(graph, layers, profile) -> tuple[dict, dict]:
    """Plan in the data region (DTCM); while it does not fit, move the largest remaining buffer
    to the spill region (EXTMEM), which only profiles with external memory have."""
    buffers = _buffers(graph, layers)
    data, spill = profile.region_for("data"), profile.region_for("spill")
    budget = data.size - profile.stack - RESERVED_DTCM - 4 * (len(layers) + 1)
    in_data, in_spill = sorted(buffers, key=lambda b: -b.size), []
    while True:
        planned = plan_arena(in_data)
        if planned.size <= budget:
            break
        if spill.name == data.name:
            raise FitError(
                f"the model does not fit the {profile.name} memory profile: activations need {planned.size:,} bytes "
                f"of {data.name}, {max(budget, 0):,} available ({data.size:,} minus stack and runtime); "
                "try --memory highmem")
        in_spill.append(in_data.pop(0))
    spilled = plan_arena(in_spill)
    if spilled.size > spill.size:
        raise FitError(f"the model does not fit the {profile.name} memory profile: activations need "
                       f"{spilled.size:,} bytes of {spill.name} beyond {data.name}, {spill.size:,} available")
    placement = {key: Placement(ARENA, offset) for key, offset in planned.offsets.items()}
    placement.update({key: Placement(SPILL_ARENA, offset) for key, offset in spilled.offsets.items()})
    return placement, {ARENA: planned.size, SPILL_ARENA: spilled.size}


# ---------------------------------------------------------------------------------------------
# main.c

# The two arenas: the linker script puts .arena in the profile's data region (DTCM) and
# .extmem_bss in its spill region (EXTMEM).
ARENA, SPILL_ARENA = "arena", "spill_arena"
_SECTIONS = {ARENA: ".arena", SPILL_ARENA: ".extmem_bss"}


def _pointer(graph, placement, tensor: int) -> str:
    where = placement[graph.storage(tensor)]
    return f"({ctype(graph.tensors[tensor].dtype)}*)({where.arena} + {where.offset})"


def _main(graph: FirmwareGraph, layers, placement, arena_bytes) -> str:
    lines = ["/* The whole model: read the inputs, run every layer with rdinstret around it, write the",
             " * outputs and the per-layer instruction counts (generated). */",
             '#include <stdint.h>', '#include "npu_runtime.h"', '#include "layers.h"', "",
             f"#define NUM_LAYERS {len(layers)}", ""]
    for arena, size in arena_bytes.items():
        if size:
            lines.append(f"static uint8_t {arena}[{size}] __attribute__((section(\"{_SECTIONS[arena]}\"), "
                         f"aligned({ALIGN})));")
    lines += ["static uint32_t counters[NUM_LAYERS + 1]; /* per layer, then the total */", "",
              "int main(void) {"]
    for n, index in enumerate(graph.inputs):
        lines += [f"  if (npu_read_input({_pointer(graph, placement, index)}, {graph.tensors[index].nbytes}) != 0) {{",
                  f"    npu_puts(\"error: the input stream has no input {n}\\n\");", "    return 10;", "  }"]
    lines += ["  uint32_t start = npu_instret();", "  uint32_t before = start;", "  uint32_t after;"]
    for layer in layers:
        step = layer.step
        args = [_pointer(graph, placement, i) for i in step.inputs] + [_pointer(graph, placement, step.output)]
        scratch = placement.get(("scratch", step.index))
        args.append(f"(int8_t*)({scratch.arena} + {scratch.offset})" if scratch else "(int8_t*)0")
        lines += [f"  {layer.function}({', '.join(args)}); /* {c_comment(step.name)}: {step.op} */",
                  "  after = npu_instret();", f"  counters[{step.index}] = after - before;", "  before = after;"]
    lines.append("  counters[NUM_LAYERS] = before - start;")
    for n, index in enumerate(graph.outputs):
        lines.append(f"  npu_send({n}, {_pointer(graph, placement, index)}, {graph.tensors[index].nbytes});")
    lines += [f"  npu_send({COUNTERS_TAG}, counters, sizeof counters);",
              "  return 0;", "}", ""]
    return "\n".join(lines)
