"""The firmware targets' toolchain driver: C sources + the target's runtime -> firmware ELF.

    tc = Toolchain.for_target(get_target("coral-npu"))
    elf = tc.build_firmware([Path("model.c")], out / "firmware.elf", profile="highmem")
    tc.region_usage(elf)              # {"ITCM": (used, size), ...}
    tc.vector_float_instructions(elf) # [] when the build is Zve32x-clean

Tools and flags come from [toolchain] and [isa] in the target's target.toml. The runtime
([toolchain] runtime: folders beside the target's, its platform's and targets/runtime_common/;
every .c and .S file in them is built) is compiled with the scalar -march, the firmware's
sources with the vector one. Every tool failure a user can cause becomes a one-line CompilerError.
"""

import json
import os
import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from compiler.coral.memory import MemoryProfile, linker_script, profile_for, profiles_for
from compiler.errors import CompilerError, FitError
from compiler.resources import data_dir

# RVV floating-point opcodes (illegal on Zve32x, [isa] vector_float = false): "vf..." except the integer mask op vfirst,
# plus the float compares that write masks.
_VECTOR_FLOAT = re.compile(r"vf(?!irst)\S*|vmf(eq|ne|lt|le|gt|ge)\S*")
_INSTRUCTION = re.compile(r"^\s*[0-9a-f]+:\s+(\S+).*")  # "80000010:   vfadd.vv v0, v1, v2" -> mnemonic
_OVERFLOW = re.compile(r"section '(\S+)' will not fit in region '(\w+)': overflowed by (\d+) bytes")


def require_tools(tools, install_hint: str) -> None:
    """CompilerError naming the first missing command and how to install it."""
    for tool in tools:
        if shutil.which(tool) is None:
            raise CompilerError(f"{tool} not found: {install_hint}")


def run_tool(command: list, what: str) -> str:
    """Runs a command, returning stdout; a failure -> CompilerError '<what> failed: <first error line>'."""
    result = subprocess.run([str(part) for part in command], capture_output=True, text=True)
    if result.returncode != 0:
        raise CompilerError(f"{what} failed: {first_error(result.stderr or result.stdout)}")
    return result.stdout


def first_error(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if "error:" in line]
    return (errors or lines or ["(no output)"])[0]


@dataclass(frozen=True)
class Section:
    name: str
    address: int
    size: int


@dataclass(frozen=True)
class Symbol:
    name: str
    address: int
    size: int
    is_function: bool


@dataclass(frozen=True)
class Toolchain:
    target: object  # compiler.targets.Target
    cc: str
    ld: str
    objdump: str
    readobj: str

    @classmethod
    def for_target(cls, target) -> "Toolchain":
        config = target.data["toolchain"]
        tools = {tool: config[tool] for tool in ("cc", "ld", "objdump", "readobj")}
        require_tools(tools.values(), config["install"])
        return cls(target, **tools)

    # --- building -------------------------------------------------------------------------

    def build_firmware(self, sources, out_elf, profile: str | None = None, include_dirs=(), defines=(),
                       opt: str = "-O2", cflags=(), objects=()) -> Path:
        """Compiles the runtime and `sources` (.c/.S files) and links them, with ready `objects`
        (.o files), for a memory profile."""
        memory = profile if isinstance(profile, MemoryProfile) else profile_for(self.target, profile)
        out_elf = Path(out_elf)
        out_elf.parent.mkdir(parents=True, exist_ok=True)
        kernel_flags = self._cflags(self.isa["march"], include_dirs, defines) + [opt, *cflags]
        runtime_flags = self._cflags(self.isa["march_scalar"], defines=self._io_defines()) + ["-O2", "-fno-builtin"]
        jobs = [(source, runtime_flags) for folder in self.runtime_dirs for source in sorted(folder.glob("*.[cS]"))]
        jobs += [(Path(source), kernel_flags) for source in sources]
        # The build directory sits beside the ELF (same file system) and vanishes afterwards.
        with tempfile.TemporaryDirectory(prefix=".build-", dir=out_elf.parent) as build:
            objects = self._compile_all(jobs, Path(build)) + [Path(obj) for obj in objects]
            script = Path(build) / "link.ld"
            config = self.target.data["toolchain"]
            script.write_text(linker_script(memory, config.get("output_arch", "riscv"), config.get("segment_align", 1)))
            self._link(objects, script, out_elf, memory)
        return out_elf

    def compile(self, source, out_obj, march: str | None = None, flags=()) -> Path:
        """One source to an object file (kernel -march unless given); for tests and inspection."""
        command = [self.cc, *self._cflags(march or self.isa["march"]), *flags, "-c", source, "-o", out_obj]
        run_tool(command, f"compiling {Path(source).name}")
        return Path(out_obj)

    def _io_defines(self) -> list[str]:
        """The simulator's device addresses for runtime/hostio.c, from [simulator.io]."""
        io = self.target.data.get("simulator", {}).get("io", {})
        return [f"NPU_{name.upper()}_BASE={io[name]:#x}" for name in ("uart", "finisher") if name in io]

    @property
    def isa(self) -> dict:
        return self.target.data["isa"]

    @property
    def runtime_dirs(self) -> list[Path]:
        """The runtime's folders: the platform's first, so its headers win."""
        folders = self.target.data["toolchain"]["runtime"]
        return [(self.target.folder / folder).resolve() for folder in ([folders] if isinstance(folders, str) else folders)]

    @property
    def vector_float(self) -> bool:
        """Whether the target's vector unit has float instructions (V: yes; Zve32x: no, and a
        firmware with one would trap on the chip)."""
        return self.isa["vector_float"]

    def _cflags(self, march: str, include_dirs=(), defines=()) -> list:
        includes = [*self.runtime_dirs, data_dir("kernels") / "include", *include_dirs]
        return [*self.target.data["toolchain"]["cflags"], f"-march={march}", f"-mabi={self.isa['mabi']}",
                *(f"-I{path}" for path in includes), *(f"-D{define}" for define in defines)]

    def _compile_all(self, jobs, build: Path) -> list[Path]:
        # Numbered object names: two sources may share a file name.
        outputs = [build / f"{index:04d}_{source.stem}.o" for index, (source, _) in enumerate(jobs)]
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            futures = [pool.submit(run_tool, [self.cc, *flags, "-c", source, "-o", obj], f"compiling {source.name}")
                       for (source, flags), obj in zip(jobs, outputs)]
            for future in futures:
                future.result()  # re-raises the first failure, in source order
        return outputs

    def _link(self, objects, script: Path, out_elf: Path, memory: MemoryProfile) -> None:
        command = [self.ld, *self.target.data["toolchain"]["ldflags"], "-T", script, *objects, "-o", out_elf]
        result = subprocess.run([str(part) for part in command], capture_output=True, text=True)
        if result.returncode != 0:
            overflow = self._overflow_message(result.stderr, memory)
            if overflow:
                raise FitError(overflow)
            raise CompilerError(f"linking {out_elf.name} failed: {first_error(result.stderr)}")

    def _overflow_message(self, stderr: str, memory: MemoryProfile) -> str | None:
        """'firmware does not fit memory profile ...: DTCM needs ...' from ld.lld's overflow errors, or None."""
        over: dict[str, int] = {}
        for _, region, excess in _OVERFLOW.findall(stderr):
            over[region] = max(over.get(region, 0), int(excess))  # lld repeats it per later section
        if not over:
            return None
        needed = {region: memory.regions[region].size + excess for region, excess in over.items()}
        regions = "; ".join(f"{region} needs {needed[region]} bytes, has {memory.regions[region].size} ({excess} over)"
                            for region, excess in over.items())
        fitting = [name for name, other in profiles_for(self.target).items()
                   if all(region in other.regions and other.regions[region].size >= bytes for region, bytes in needed.items())]
        return f"firmware does not fit memory profile {memory.name}: {regions}" + (f"; try --memory {fitting[0]}" if fitting else "")

    # --- reading the ELF back -------------------------------------------------------------

    def read_elf(self, elf) -> tuple[list[Section], list[Symbol]]:
        """Allocated sections and named symbols (llvm-readobj's JSON output: no ELF parser here)."""
        output = run_tool([self.readobj, "--elf-output-style=JSON", "--sections", "--symbols", elf], f"reading {Path(elf).name}")
        (info,) = json.loads(output)
        sections = [Section(s["Name"]["Name"], s["Address"], s["Size"])
                    for s in (entry["Section"] for entry in info["Sections"]) if s["Flags"]["Value"] & 2]  # SHF_ALLOC
        symbols = [Symbol(s["Name"]["Name"], s["Value"], s["Size"], s["Type"]["Name"] == "Function")
                   for s in (entry["Symbol"] for entry in info["Symbols"]) if s["Name"]["Name"]]
        return sections, symbols

    def region_usage(self, elf) -> dict[str, tuple[int, int]]:
        """Region -> (used bytes, size): from the section addresses and the region bounds the
        linker script records in the ELF (so the ELF says which profile it was linked for)."""
        sections, symbols = self.read_elf(elf)
        bounds = {symbol.name: symbol.address for symbol in symbols if symbol.name.startswith("__npu_region_")}
        usage = {}
        for name in (key[len("__npu_region_"):-len("_origin")] for key in bounds if key.endswith("_origin")):
            origin, size = bounds[f"__npu_region_{name}_origin"], bounds[f"__npu_region_{name}_length"]
            ends = [s.address + s.size for s in sections if s.size and origin <= s.address < origin + size]
            usage[name] = (max(ends, default=origin) - origin, size)
        return usage

    def disassemble(self, binary) -> str:
        # --mattr ([isa] disassembly) makes the decoding independent of the file's .riscv.attributes:
        # a float vector opcode must show as itself, not as <unknown>, for the scan below to see it.
        return run_tool([self.objdump, "-d", "--no-show-raw-insn", f"--mattr={self.isa['disassembly']}", binary],
                        f"disassembling {Path(binary).name}")

    def vector_float_instructions(self, binary) -> list[str]:
        """Disassembly lines with an RVV floating-point opcode: [] means Zve32x-clean (on a target
        whose vector unit has floats, see vector_float, they are legal)."""
        instructions = (_INSTRUCTION.match(line) for line in self.disassemble(binary).splitlines())
        return [found.group(0).strip() for found in instructions if found and _VECTOR_FLOAT.fullmatch(found.group(1))]
