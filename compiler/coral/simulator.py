"""Runs an RVV target's firmware ELF in QEMU (the [simulator] command of target.toml), as a sandbox.

    result = run_firmware(elf, workdir, inputs=[x.tobytes()], timeout=30)
    result.records[0]      # the bytes the firmware sent under tag 0 (npu_send)
    result.stdout          # its console text; result.stderr: QEMU's own messages

The firmware reaches the host through exactly two channels, both served here (the firmware's
side is targets/riscv_runtime/hostio.c):
  - the inbox: the input bytes, after a length word, written into simulation-only RAM before
    the firmware starts, by QEMU's generic loader device;
  - the console UART: text, and data records "@<tag>:<hex>" that are parsed here, up to a
    byte limit (a firmware that floods the console is stopped).
QEMU runs without semihosting (no firmware can open host files or run host commands: an
ebreak is a plain breakpoint trap), with -nodefaults and no network, under its seccomp sandbox
(no spawning processes), in a fresh folder inside `workdir` holding only a copy of the ELF and
the inbox image, so no path from a build folder or the user reaches QEMU's command line.
A hang, a trap, a stack overflow, malformed records and (with check=True) any other non-zero
exit become a one-line SimulatorError.
"""

import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from compiler.coral.codegen import target_or_default
from compiler.coral.toolchain import Toolchain, require_tools
from compiler.errors import CompilerError
from compiler.names import shown

_TRAP = re.compile(r"trap: mcause=(0x[0-9a-f]+) \(([^)]*)\) mepc=(0x[0-9a-f]+) mtval=(0x[0-9a-f]+)")
_STACK_OVERFLOW = "stack overflow:"
_RECORD = re.compile(rb"@(\d{1,9}):([0-9a-f]*)")
CONSOLE_SLACK = 1 << 20  # console bytes allowed beyond the expected records' hex
ELF_NAME, INBOX_NAME = "firmware.elf", "inbox.bin"


@dataclass(frozen=True)
class SimResult:
    exit_code: int
    stdout: str  # the firmware's console text (records removed)
    stderr: str  # QEMU's own messages
    seconds: float  # wall time: not a performance figure (count instructions with npu_instret)
    records: dict = field(default_factory=dict)  # tag -> bytes the firmware sent with npu_send


class SimulatorError(CompilerError):
    """The firmware hung, trapped or failed in the simulator."""

    def __init__(self, message: str, result: SimResult | None = None):
        super().__init__(message)
        self.result = result


def check_simulator_tools(target=None) -> None:
    """CompilerError with the install hint when QEMU or the toolchain is missing."""
    target = target_or_default(target)
    Toolchain.for_target(target)
    require_tools([target.data["simulator"]["command"][0]], target.data["toolchain"]["install"])


def run_firmware(elf, workdir=None, inputs=(), timeout: float | None = None, check: bool = True, target=None,
                 expected_output_bytes: int = 0) -> SimResult:
    """Runs `elf` in QEMU with `inputs` (a list of bytes objects, read in order by
    npu_read_input). Traps, stack overflows, timeouts and console floods always raise
    SimulatorError; another non-zero exit raises only when `check` (else see .exit_code).
    `expected_output_bytes`: what the firmware will send with npu_send, which sets how much
    console output is allowed."""
    target = target_or_default(target)
    check_simulator_tools(target)
    simulator = target.data["simulator"]
    timeout = timeout if timeout is not None else simulator["timeout"]
    elf = Path(elf)
    check_elf(elf, target)
    inbox = target.data["simulator"]["io"]["inbox"]
    stream = b"".join(bytes(chunk) for chunk in inputs)
    if len(stream) + 4 > inbox["size"]:
        raise SimulatorError(f"the inputs ({len(stream):,} bytes) do not fit the simulator's inbox "
                             f"({inbox['size'] - 4:,} bytes)")
    if workdir is not None:
        Path(workdir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="qemu-", dir=workdir) as sandbox:
        sandbox = Path(sandbox)
        shutil.copyfile(elf, sandbox / ELF_NAME)
        (sandbox / INBOX_NAME).write_bytes(struct.pack("<I", len(stream)) + stream)
        values = {"{elf}": ELF_NAME, "{inbox}": INBOX_NAME, "{inbox_address}": f"{inbox['address']:#x}"}
        command = [_substitute(part, values) for part in simulator["command"]]
        limit = 3 * expected_output_bytes + CONSOLE_SLACK  # hex doubles the bytes; tags and newlines add < 20%
        result = _run(command, sandbox, timeout, limit)
    failure = _failure(result, elf, target, check)
    if failure:
        raise SimulatorError(failure, result)
    return result


def _substitute(part: str, values: dict) -> str:
    for key, value in values.items():
        part = part.replace(key, value)
    return part


# ELF layouts by class: (e_ident[4], the header's size, the format and offset of (e_entry, e_phoff),
# the offset of (e_phentsize, e_phnum), a program header's size, and a reader of a program header's
# (p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz)).
_ELF_CLASSES = {
    32: (1, 52, "<II", 24, 42, 32,
         lambda h: (lambda t, o, v, p, fs, ms, f, _: (t, f, o, v, p, fs, ms))(*struct.unpack_from("<8I", h))),
    64: (2, 64, "<QQ", 24, 54, 56, lambda h: struct.unpack_from("<IIQQQQQ", h)),
}


def check_elf(elf: Path, target=None) -> None:
    """Refuse what QEMU would load and then hang on: anything but a linked little-endian RISC-V
    executable of the target's XLEN whose entry point lies in an executable segment inside the
    simulator's RAM ([simulator] ram), with every loadable segment inside the file and that RAM."""
    target = target_or_default(target)
    xlen = target.data["isa"]["xlen"]
    ram = target.data["simulator"]["ram"]
    ram_start, ram_end = ram["address"], ram["address"] + ram["size"]
    if not elf.is_file():
        raise SimulatorError(f"{shown(elf)}: no such firmware file")
    data = elf.read_bytes()
    bad = f"{shown(elf)}: not a linked {xlen}-bit RISC-V ELF executable"
    elf_class, header_size, address_format, entry_at, counts_at, phsize, program_header = _ELF_CLASSES[xlen]
    # e_ident: magic, class, data 1 (little-endian); e_type 2 (executable), e_machine 243 (RISC-V).
    if (len(data) < header_size or data[:6] != b"\x7fELF" + bytes([elf_class, 1])
            or data[16:20] != bytes([2, 0, 243, 0])):
        raise SimulatorError(bad)
    entry, phoff = struct.unpack_from(address_format, data, entry_at)
    phentsize, phnum = struct.unpack_from("<HH", data, counts_at)
    if phentsize != phsize or phnum == 0 or phoff + phnum * phsize > len(data):
        raise SimulatorError(f"{bad} (no program headers)")
    entry_ok = False
    for index in range(phnum):
        kind, flags, offset, vaddr, paddr, filesz, memsz = program_header(data[phoff + phsize * index:][:phsize])
        if kind != 1:  # PT_LOAD
            continue
        if offset + filesz > len(data) or filesz > memsz or not (ram_start <= paddr and paddr + memsz <= ram_end):
            raise SimulatorError(f"{bad} (segment {index} lies outside the file or the simulator's memory)")
        entry_ok |= bool(flags & 1) and vaddr <= entry < vaddr + filesz
    if not entry_ok:
        raise SimulatorError(f"{bad} (its entry point {entry:#x} is in no executable segment)")


def _run(command: list[str], sandbox: Path, timeout: float, limit: int) -> SimResult:
    start = time.monotonic()
    # Own process group, so a timeout kills QEMU and anything it started; stdin is not the
    # terminal, so the stdio chardev leaves the terminal's mode alone.
    process = subprocess.Popen(command, cwd=sandbox, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, start_new_session=True)
    stop = lambda: _kill(process, wait=False)
    stdout, stderr = _Reader(process.stdout, limit, stop), _Reader(process.stderr, CONSOLE_SLACK, stop)
    try:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill(process)
            result = _result(-1, stdout, stderr, start)
            last = _last_line(result.stdout + result.stderr)
            said = f"the last output was '{shown(last)}'" if last else "it printed nothing"
            raise SimulatorError(f"simulator timed out after {timeout:g} s (firmware hung?); {said}", result) from None
    finally:
        _kill(process)  # interrupted (Ctrl-C, SIGTERM) or flooding: QEMU must not outlive us
    if stdout.overflowed or stderr.overflowed:
        raise SimulatorError(f"the firmware wrote more than {limit:,} bytes to its console: stopped")
    return _result(process.returncode, stdout, stderr, start)


def _kill(process, wait: bool = True) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if wait:
        process.wait()


class _Reader:
    """Drains a pipe in a thread, keeping at most `limit` bytes; beyond that it calls `stop`."""

    def __init__(self, pipe, limit: int, stop):
        self.chunks, self.size, self.limit, self.overflowed, self.stop = [], 0, limit, False, stop
        self.thread = threading.Thread(target=self._drain, args=(pipe,), daemon=True)
        self.thread.start()

    def _drain(self, pipe):
        for chunk in iter(lambda: pipe.read1(65536), b""):
            if self.size + len(chunk) > self.limit:
                self.overflowed = True
                chunk = chunk[:self.limit - self.size]
            self.chunks.append(chunk)
            self.size += len(chunk)
            if self.overflowed:
                self.stop()
                break
        pipe.close()

    def data(self) -> bytes:
        self.thread.join()
        return b"".join(self.chunks)


def _result(code: int, stdout: _Reader, stderr: _Reader, start: float) -> SimResult:
    text, records = parse_console(stdout.data())
    return SimResult(code, text, _text(stderr.data()), time.monotonic() - start, records)


def parse_console(data: bytes) -> tuple[str, dict]:
    """The console's text lines and its records, tag -> bytes (a tag's lines concatenated)."""
    text, records = [], {}
    for line in data.split(b"\n"):
        found = _RECORD.fullmatch(line)
        if found and len(found.group(2)) % 2 == 0:
            records.setdefault(int(found.group(1)), bytearray()).extend(bytes.fromhex(found.group(2).decode()))
        elif line:
            text.append(_text(line))
    return "".join(line + "\n" for line in text), {tag: bytes(value) for tag, value in records.items()}


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _failure(result: SimResult, elf: Path, target, check: bool) -> str | None:
    """The one-line reason a run failed, or None."""
    if result.exit_code == 0:
        return None
    trap = _TRAP.search(result.stdout)
    if trap:
        mcause, name, mepc, mtval = trap.groups()
        where = function_at(elf, int(mepc, 16), target)
        return f"firmware trapped: mcause={mcause} ({shown(name)}) at mepc={mepc} in {shown(where)} (mtval={mtval})"
    overflow = next((line for line in result.stdout.splitlines() if line.startswith(_STACK_OVERFLOW)), None)
    if overflow:
        return f"firmware failed: {shown(overflow.strip())}"
    qemu = next((line for line in result.stderr.splitlines() if line.startswith("qemu-system")), None)
    if qemu:
        return f"simulator failed: {shown(qemu.strip())}"
    if not check:
        return None
    last = _last_line(result.stderr) or _last_line(result.stdout)
    return f"firmware exited with code {result.exit_code}" + (f"; its last output was '{shown(last)}'" if last else "")


def function_at(elf: Path, address: int, target) -> str:
    """The function containing a (simulation) address: '<name>+0x<offset>', or '?'."""
    _, symbols = Toolchain.for_target(target).read_elf(elf)
    functions = [s for s in symbols if s.is_function and s.address <= address]
    containing = [s for s in functions if address < s.address + max(s.size, 1)]
    best = (containing or sorted(functions, key=lambda s: s.address)[-1:] or [None])[0]
    return f"{best.name}+{address - best.address:#x}" if best else "?"
