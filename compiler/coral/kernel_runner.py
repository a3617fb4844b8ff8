"""Runs generated RVV kernels in QEMU: outputs and exact instruction counts, many cases per firmware.

    runs = run_kernel_cases([KernelCase("add", params, {}, [a, b], a.shape)], workdir)  # target=: default coral-npu
    runs[0].output, runs[0].instructions, runs[0].schedule

Every case is emitted by the codegen (a C file defining case<i>), and one main.c runs them in
turn: read the case's inputs from the simulator's input stream into a static arena, read
rdinstret, call the kernel, read rdinstret, send the output (coral/simulator.py: the sandbox). The count is the difference minus the cost of an
empty pair of readings, so it is the call's alone (argument set-up, call and return included).
The cases share one arena (they run one after another), so a batch is as big as its largest
case; batches split on the constant tables they add up, and on the linker finding them too big.
The autotuner measures its candidates with this; the kernel tests check outputs with it.
"""

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from compiler.codegen.ffi_abi import ctype
from compiler.coral.codegen import Emitted, emit, target_or_default
from compiler.coral.memory import profile_for
from compiler.coral.memory_plan import ALIGN
from compiler.coral.ref_layer import ref_file, ref_layer_source
from compiler.coral.simulator import input_capacity, run_firmware
from compiler.coral.toolchain import Toolchain
from compiler.errors import CompilerError
from compiler.resources import data_dir

COUNTS_TAG = 1000000  # npu_send tag of the counts; case i's output is sent under tag i
RESERVED_DATA = 4096  # runtime .data/.bss and the count array, besides the arena
MAX_CASES_PER_FIRMWARE = 256  # keeps a firmware's code well inside ITCM
_READ_FAILED = 10  # exit code of main.c (the runtime uses 3 to 5)


@dataclass
class KernelCase:
    kernel: str
    params: dict
    arrays: dict
    inputs: list[np.ndarray]
    output_shape: tuple
    schedule: dict | None = None
    vector: bool = True
    reference: bool = False  # run kernels/ref's function instead of a generated kernel
    output_dtype: str = "int8"  # dequantize writes float32


@dataclass
class KernelRun:
    output: np.ndarray  # output_shape, of the case's output_dtype
    instructions: int
    schedule: dict  # the schedule the codegen used (defaults filled in)


@dataclass
class _Emitted:
    """One case ready to build: its C source and where its buffers sit in the arena."""
    index: int  # the case's position in the caller's list
    case: KernelCase
    source: str
    schedule: dict
    constant_bytes: int
    input_offsets: list[int]
    output_offset: int
    scratch_offset: int
    arena_bytes: int


def run_kernel_cases(cases: list[KernelCase], workdir: Path, profile: str | None = None,
                     timeout: float | None = None, cases_per_firmware: int = MAX_CASES_PER_FIRMWARE,
                     progress: bool = True, target=None) -> list[KernelRun]:
    """Emits, builds and runs every case; runs in the order of `cases`. `workdir` holds the
    sources, inputs and outputs (one folder per firmware; two concurrent calls need two workdirs).
    Firmwares build and run in parallel, and print a progress line each on stderr when there are
    several (unless progress=False). cases_per_firmware=1 runs every case alone (the autotuner:
    one failing candidate then cannot take others down). SpecError for a bad case,
    CompilerError / SimulatorError for a failed build or run. `target`: the RVV target (default
    coral-npu); `profile`: its memory profile ([memory] kernel_profile when None)."""
    workdir = Path(workdir)
    target = target_or_default(target)
    profile = profile or kernel_profile(target)
    memory = profile_for(target, profile)
    emitted = [_emit(index, case, target) for index, case in enumerate(cases)]
    batches = _batches(emitted, memory, cases_per_firmware, input_capacity(target))
    toolchain = Toolchain.for_target(target)

    def run(numbered):
        number, batch = numbered
        runs = _run_batch(batch, workdir / f"firmware{number}", toolchain, profile, memory, timeout)
        if len(batches) > 1 and progress:
            print(f"kernel_runner: firmware {number + 1}/{len(batches)} ({len(batch)} cases) done", file=sys.stderr)
        return runs

    with ThreadPoolExecutor() as pool:
        results = [run for runs in pool.map(run, enumerate(batches)) for run in runs]
    return [run for _, run in sorted(results, key=lambda pair: pair[0])]


def kernel_profile(target) -> str:
    """The memory profile kernels are measured in: [memory] kernel_profile, else the default one."""
    memory = target.data.get("memory", {})
    return memory.get("kernel_profile", memory.get("default_profile", "default"))


def _emit(index: int, case: KernelCase, target) -> _Emitted:
    out = _reference(index, case) if case.reference else emit(case.kernel, f"case{index}", case.params, case.arrays,
                                                               case.schedule, case.vector, target)
    offset = 0
    input_offsets = []
    for array in case.inputs:
        input_offsets.append(offset)
        offset += _aligned(np.asarray(array).nbytes)
    output_offset = offset
    offset += _aligned(_output_bytes(case))
    return _Emitted(index, case, out.source, out.schedule, out.constant_bytes, input_offsets, output_offset, offset,
                    offset + _aligned(out.scratch_bytes))


def _reference(index: int, case: KernelCase) -> Emitted:
    name = f"case{index}"
    signature = f"void {name}({_parameters(case)})"
    source, constant_bytes = ref_layer_source(case.kernel, case.params, case.arrays, name, signature, len(case.inputs))
    return Emitted(source, 0, constant_bytes, {})


def _parameters(case: KernelCase) -> str:
    """"const int8_t* input0, ..., int8_t* output, int8_t* scratch" with each tensor's C type
    (quantize reads floats, dequantize writes them)."""
    inputs = "".join(f"const {ctype(str(np.asarray(array).dtype))}* input{n}, " for n, array in enumerate(case.inputs))
    return f"{inputs}{ctype(case.output_dtype)}* output, int8_t* scratch"


def _output_bytes(case: KernelCase) -> int:
    return int(np.prod(case.output_shape, dtype=np.int64)) * np.dtype(case.output_dtype).itemsize


def _aligned(size: int) -> int:
    return (size + ALIGN - 1) // ALIGN * ALIGN


def _arena_section(arena_bytes: int, memory) -> str:
    """The data region's arena when it fits beside the stack and the runtime, else the spill region's."""
    data = memory.region_for("data")
    return ".arena" if arena_bytes <= data.size - memory.stack - RESERVED_DATA else ".extmem_bss"


def _batches(emitted: list[_Emitted], memory, per_firmware: int, capacity: int) -> list[list[_Emitted]]:
    """Consecutive cases whose constant tables, and arena when it spills beside them, fit, and
    whose inputs fit the simulator's input stream (`capacity` bytes)."""
    weights = memory.region_for("weights")
    batches: list[list[_Emitted]] = [[]]
    for item in emitted:
        batch = batches[-1] + [item]
        arena = max(e.arena_bytes for e in batch)
        shared = weights.name == memory.region_for("spill").name and _arena_section(arena, memory) == ".extmem_bss"
        needed = sum(e.constant_bytes for e in batch) + (arena if shared else 0)
        inputs = sum(np.asarray(array).nbytes for e in batch for array in e.case.inputs)
        if batches[-1] and (needed > weights.size or len(batch) > per_firmware or inputs + 4 > capacity):
            batches.append([item])
        else:
            batches[-1] = batch
    return [batch for batch in batches if batch]


def _run_batch(batch: list[_Emitted], folder: Path, toolchain, profile: str, memory, timeout) -> list[tuple[int, KernelRun]]:
    folder.mkdir(parents=True, exist_ok=True)
    for item in batch:
        (folder / f"case{item.index}.c").write_text(item.source)
    main = folder / "main.c"
    main.write_text(_main_source(batch, memory))
    elf = folder / "firmware.elf"
    try:
        references = sorted({ref_file(item.case.kernel) for item in batch if item.case.reference})
        sources = [main, *_translation_units(batch, folder), *(data_dir("kernels") / path for path in references)]
        toolchain.build_firmware(sources, elf, profile)
    except CompilerError as error:
        if "does not fit" not in str(error) or len(batch) == 1:
            raise
        half = len(batch) // 2  # the estimate missed (code size): two smaller firmwares
        return (_run_batch(batch[:half], folder / "a", toolchain, profile, memory, timeout)
                + _run_batch(batch[half:], folder / "b", toolchain, profile, memory, timeout))
    vector_float = [] if toolchain.vector_float else toolchain.vector_float_instructions(elf)
    if vector_float:
        raise CompilerError(f"{elf}: vector float instructions in a Zve32x build, e.g. {vector_float[0]}")
    inputs = [np.ascontiguousarray(array).tobytes() for item in batch for array in item.case.inputs]
    sent = sum(_output_bytes(item.case) for item in batch) + 4 * len(batch)
    result = run_firmware(elf, folder, inputs=inputs, timeout=timeout, expected_output_bytes=sent,
                          target=toolchain.target)
    counts = np.frombuffer(_record(result.records, COUNTS_TAG, 4 * len(batch)), dtype=np.uint32)
    return [(item.index, KernelRun(_output(result.records, item), int(count), item.schedule))
            for item, count in zip(batch, counts)]


def _translation_units(batch: list[_Emitted], folder: Path) -> list[Path]:
    """The case files grouped into one translation unit per CPU: clang's start-up and header parsing,
    not the kernels, dominate a small file's compile time (5x for a few hundred cases). Generated
    files may share a translation unit because every static they define is prefixed with the
    kernel's function name."""
    groups = min(len(batch), os.cpu_count() or 1)
    units = []
    for group in range(groups):
        unit = folder / f"cases{group}.c"
        unit.write_text("".join(f'#include "case{item.index}.c"\n' for item in batch[group::groups]))
        units.append(unit)
    return units


def _record(records: dict, tag: int, size: int) -> bytes:
    data = records.get(tag, b"")
    if len(data) != size:
        raise CompilerError(f"kernel runner: the firmware sent {len(data)} bytes under tag {tag}, expected {size}")
    return data


def _output(records: dict, item: _Emitted) -> np.ndarray:
    data = _record(records, item.index, _output_bytes(item.case))
    return np.frombuffer(data, dtype=item.case.output_dtype).reshape(item.case.output_shape).copy()


def _main_source(batch: list[_Emitted], memory) -> str:
    arena_bytes = max(item.arena_bytes for item in batch)
    lines = ["/* The kernel runner's firmware (compiler/coral/kernel_runner.py): each case reads its",
             " * inputs, runs between two rdinstret readings, and writes its output. */",
             "#include <stdint.h>", '#include "npu_runtime.h"', ""]
    for item in batch:
        lines.append(f"void case{item.index}({_parameters(item.case)});")
    lines += ["",
              "/* The cases run one after another, so they share one arena. */",
              f'static int8_t arena[{arena_bytes}] __attribute__((section("{_arena_section(arena_bytes, memory)}"), '
              f"aligned({ALIGN})));",
              f"static uint32_t counts[{len(batch)}];",
              "",
              "static void read_input(int8_t* dst, uint32_t bytes) {",
              "  if (npu_read_input(dst, bytes) != 0) {",
              '    npu_puts("kernel runner: the input stream ended early\\n");',
              f"    npu_exit({_READ_FAILED});",
              "  }",
              "}",
              "",
              "int main(void) {",
              "  const uint32_t empty_start = npu_instret();",
              "  const uint32_t overhead = npu_instret() - empty_start;",
              "  uint32_t start;",
              "  int8_t " + ", ".join(f"*in{n}" for n in range(max(len(item.case.inputs) for item in batch)))
              + (", " if any(item.case.inputs for item in batch) else "") + "*out, *scratch;"]
    for slot, item in enumerate(batch):
        lines += _case_lines(slot, item)
    lines += [f"  npu_send({COUNTS_TAG}, counts, sizeof counts);", "  return 0;", "}", ""]
    return "\n".join(lines)


def _case_lines(slot: int, item: _Emitted) -> list[str]:
    lines = []
    for number, (array, offset) in enumerate(zip(item.case.inputs, item.input_offsets)):
        lines.append(f"  read_input(arena + {offset}, {np.asarray(array).nbytes});")
    inputs = [f"in{number}" for number in range(len(item.input_offsets))]
    pointers = [*inputs, "out", "scratch"]
    offsets = [*item.input_offsets, item.output_offset, item.scratch_offset]
    output_bytes = _output_bytes(item.case)
    # The empty asm puts the arguments in registers before the count starts: it counts the call alone.
    return lines + ["  " + " ".join(f"{pointer} = arena + {offset};" for pointer, offset in zip(pointers, offsets)),
                    '  __asm__ volatile("" : ' + ", ".join(f'"+r"({pointer})' for pointer in pointers) + ");",
                    "  start = npu_instret();",
                    f"  case{item.index}({', '.join([*(f'(const void*){p}' for p in inputs), '(void*)out', 'scratch'])});",
                    f"  counts[{slot}] = npu_instret() - start - overhead;",
                    f"  npu_send({item.index}, arena + {item.output_offset}, {output_bytes});"]
