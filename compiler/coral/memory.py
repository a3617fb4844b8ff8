"""Firmware targets' memory profiles (`--memory NAME`) and the linker script each one implies.

The regions, their chip addresses and sizes, the stack size and which region holds what all
come from [memory] in the target's target.toml (coral-npu's TCMs, a board's DRAM). The simulation
links every region at sim_base + its chip address (QEMU's virt machine has RAM only from
0x80000000) with the chip's size, so ld.lld still refuses a firmware that would not fit the chip.
"""

import re
from dataclasses import dataclass, replace
from string import Template

from compiler.errors import CompilerError

# What each profile assigns to a region (keys of a [memory.<profile>] table).
ROLES = ("code", "weights", "data", "spill")


@dataclass(frozen=True)
class Region:
    name: str
    address: int  # on the chip
    sim_address: int  # where the simulation links it
    size: int  # bytes


@dataclass(frozen=True)
class MemoryProfile:
    name: str
    regions: dict[str, Region]
    stack: int  # bytes
    roles: dict[str, str]  # role (ROLES) -> region name
    inbox: Region | None = None  # simulation-only RAM the runner writes inputs to ([simulator.io])

    def region_for(self, role: str) -> Region:
        return self.regions[self.roles[role]]


def profiles_for(target) -> dict[str, MemoryProfile]:
    """Every memory profile of a target, by name."""
    memory = target.data.get("memory", {})
    sim_base = memory.get("sim_base", 0)
    inbox = target.data.get("simulator", {}).get("io", {}).get("inbox")
    inbox = Region("INBOX", inbox["address"], inbox["address"], inbox["size"]) if inbox else None
    return {name: _profile(name, table, sim_base, target.name, inbox) for name, table in memory.items()
            if isinstance(table, dict)}


def default_profile_name(target) -> str:
    return target.data.get("memory", {}).get("default_profile", "default")


def profile_for(target, spec: str | None = None) -> MemoryProfile:
    """The profile a memory spec names: "NAME" or "NAME,REGION=BYTES,..." (region sizes overridden,
    as `--extmem` and `--dtcm` write it); the target's default when None. CompilerError names the
    known profiles, or the override that cannot be."""
    profiles = profiles_for(target)
    name, *overrides = (spec or default_profile_name(target)).split(",")
    if name not in profiles:
        known = ", ".join(sorted(profiles)) or "none"
        raise CompilerError(f"--memory {name}: unknown memory profile for target {target.name} (known: {known})")
    profile = profiles[name]
    if not overrides:
        return profile
    regions = dict(profile.regions)
    for override in overrides:
        region, _, size = override.partition("=")
        if region not in regions:
            raise CompilerError(f"--{region.lower()}: memory profile {name} has no {region} region "
                                f"(it has {', '.join(regions)})")
        regions[region] = replace(regions[region], size=int(size))
    _check_layout(regions.values(), profile.inbox, name)
    return replace(profile, name=spec, regions=regions)


def memory_spec(name: str, sizes: dict) -> str:
    """The spec profile_for reads: a profile name and the region sizes --extmem / --dtcm give."""
    return ",".join([name, *(f"{region}={size}" for region, size in sorted(sizes.items()))])


_UNITS = {"": 1, "K": 1 << 10, "KB": 1 << 10, "KIB": 1 << 10, "M": 1 << 20, "MB": 1 << 20, "MIB": 1 << 20,
          "G": 1 << 30, "GB": 1 << 30, "GIB": 1 << 30}


def parse_size(text: str, flag: str) -> int:
    """"64M", "512K", "1048576" -> bytes (binary units)."""
    found = re.fullmatch(r"\s*(\d+)\s*([A-Za-z]*)\s*", text or "")
    unit = found.group(2).upper() if found else None
    if not found or unit not in _UNITS or int(found.group(1)) == 0:
        raise CompilerError(f"{flag} {text}: expected a size such as 64M, 512K or 1048576 (bytes)")
    return int(found.group(1)) * _UNITS[unit]


def _check_layout(regions, inbox, name: str) -> None:
    """Resized regions may not overlap each other or the simulator's inbox."""
    spans = sorted((r.sim_address, r.sim_address + r.size, r.name) for r in regions)
    if inbox is not None:
        spans = sorted(spans + [(inbox.sim_address, inbox.sim_address + inbox.size, "the simulator's inbox")])
    for (start, end, first), (next_start, _, second) in zip(spans, spans[1:]):
        if end > next_start:
            raise CompilerError(f"memory profile {name}: {first} would reach {end - start:,} bytes and overlap "
                                f"{second}; at most {next_start - start:,} bytes fit there")


def _profile(name: str, table: dict, sim_base: int, target_name: str, inbox: Region | None) -> MemoryProfile:
    regions = {
        region: Region(region, spec["address"], sim_base + spec["address"], spec["size"])
        for region, spec in table["regions"].items()
    }
    roles = {role: table[role] for role in ROLES}
    unknown = sorted(set(roles.values()) - set(regions))
    if unknown:  # a typo in target.toml, caught before the linker reports it obscurely
        raise CompilerError(f"targets/{target_name}: memory profile {name} places sections in undefined region {unknown[0]}")
    return MemoryProfile(name, regions, table["stack"], roles, inbox)


# One output section per kind of data; generated code picks the section with
# __attribute__((section(".weights"))) and friends. $code etc. are region names.
_SCRIPT = Template("""\
/* Generated by compiler/coral/memory.py from target.toml, memory profile "$profile".
   Addresses are the simulator's (chip address + sim_base); sizes are the chip's. */
OUTPUT_ARCH($arch)
ENTRY(_start)

MEMORY
{
$memory
}

/* Region bounds, for region_usage() and for firmware that wants them. */
$bounds

$inbox

SECTIONS
{
  /* Code and constants; _start first, at the code region's base, where execution begins.
     Where the access rights change, a loader that maps pages needs a page boundary: the
     alignments are at least [toolchain] segment_align (a Linux target's page). */
  .text : { KEEP(*(.text.start)) *(.text .text.*) } > $code
  .rodata : ALIGN($align16) { *(.rodata .rodata.* .srodata .srodata.*) } > $code
  /* TVM's LLVM objects are position-independent: the addresses they load through the GOT are
     fixed at link time, so it is read-only data here. */
  .got : ALIGN($align4) { *(.got .got.*) } > $code
  /* Constant kernel parameters (weights, biases, requantisation tables). */
  .weights : ALIGN($align16) { *(.weights .weights.*) } > $weights

  /* The stack first in the data region: an overflow runs off the region's bottom instead of
     into .data/.bss; crt0.S puts a canary at __stack_bottom that npu_exit checks.
     The arm64 runtime's crt0.S gives it an empty writable input section: a section of symbols
     alone takes the previous one's flags (read-only weights), and a Linux loader maps it so. */
  .stack (NOLOAD) : ALIGN($align16) { __stack_bottom = .; KEEP(*(.stack)) . += $stack; __stack_top = .; } > $data
  .data : ALIGN(16) { *(.data .data.* .sdata .sdata.*) } > $data
  /* Zeroed by crt0.S, a word at a time. */
  .bss (NOLOAD) : ALIGN(16) { __bss_start = .; *(.bss .bss.* .sbss .sbss.*) . = ALIGN(4); __bss_end = .; } > $data
  /* The activation arena: not zeroed, every tensor is written before it is read. */
  .arena (NOLOAD) : ALIGN(16) { *(.arena .arena.*) } > $data
  /* Activations that do not fit the data region (external memory when the profile has it). */
  .extmem_bss (NOLOAD) : ALIGN(16) { *(.extmem_bss .extmem_bss.*) } > $spill

  /* Not loaded; listed because the link runs with --orphan-handling=error, which turns any
     section this script does not place into an error instead of a stray address (lld 19
     counts even its own symbol and string tables as orphans). .riscv.attributes: RISC-V
     objects' ISA string. */
  .riscv.attributes 0 : { KEEP(*(.riscv.attributes)) }
  .comment 0 : { *(.comment) }
  .symtab 0 : { *(.symtab) }
  .strtab 0 : { *(.strtab) }
  .shstrtab 0 : { *(.shstrtab) }
  /* TVM's LLVM objects carry unwind tables and debug info; the firmware needs neither (nor
     the GNU property notes arm64 objects carry). */
  /DISCARD/ : { *(.note.GNU-stack) *(.note.gnu.property) *(.llvm_addrsig) *(.eh_frame) *(.debug*) }
}
""")


def linker_script(profile: MemoryProfile, arch: str = "riscv", page: int = 1) -> str:
    """The script for `profile`; `arch` is the OUTPUT_ARCH ([toolchain] output_arch), `page` the
    alignment of the sections whose access rights differ from the previous ([toolchain] segment_align)."""
    regions = profile.regions.values()
    memory = "\n".join(f"  {r.name} (rwx) : ORIGIN = {r.sim_address:#010x}, LENGTH = {r.size:#x}" for r in regions)
    bounds = "\n".join(f"__npu_region_{r.name}_origin = ORIGIN({r.name});\n__npu_region_{r.name}_length = LENGTH({r.name});"
                       for r in regions)
    placement = {role: profile.roles[role] for role in ROLES}
    return _SCRIPT.substitute(profile=profile.name, arch=arch, align16=max(16, page), align4=max(4, page),
                              memory=memory, bounds=bounds, inbox=_inbox(profile.inbox), stack=profile.stack,
                              **placement)


def _inbox(box: Region | None) -> str:
    """The inbox's bounds, for platforms whose runner writes the inputs into memory (riscv_runtime/
    hostio.c); "" for those that read a stream (arm64 Linux: stdin)."""
    if box is None:
        return ""
    return ("/* The simulator's inbox: RAM outside the chip's regions that the runner writes the input\n"
            "   stream to. Symbols only: a section there would make the ELF loader claim the memory\n"
            "   the runner's loader device fills. */\n"
            f"__npu_inbox_start = {box.sim_address:#010x};\n__npu_inbox_end = {box.sim_address + box.size:#010x};")
