"""Runs a Coral NPU firmware ELF in QEMU (the [simulator] command of target.toml).

    result = run_firmware(elf, workdir, timeout=30)   # SimResult(exit_code, stdout, stderr, seconds)

QEMU runs with cwd = workdir, so the firmware's semihosting files (npu_read_file / npu_write_file)
are relative to it. The firmware's console (npu_puts, the trap report) is QEMU's stdout; QEMU's
own complaints are its stderr. A hang, a trap, a stack overflow and (with check=True) any other
non-zero exit become a one-line SimulatorError.
"""

import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from compiler.coral.toolchain import Toolchain, require_tools
from compiler.errors import CompilerError

CORAL_TARGET = "coral-npu"
_TRAP = re.compile(r"trap: mcause=(0x[0-9a-f]+) \(([^)]*)\) mepc=(0x[0-9a-f]+) mtval=(0x[0-9a-f]+)")
_STACK_OVERFLOW = "stack overflow:"


@dataclass(frozen=True)
class SimResult:
    exit_code: int
    stdout: str  # the firmware's console output
    stderr: str  # QEMU's own messages
    seconds: float  # wall time: not a performance figure (count instructions with npu_instret)


class SimulatorError(CompilerError):
    """The firmware hung, trapped or failed in the simulator."""

    def __init__(self, message: str, result: SimResult | None = None):
        super().__init__(message)
        self.result = result


def _target(target):
    from compiler.targets import get_target

    return target or get_target(CORAL_TARGET)


def check_simulator_tools(target=None) -> None:
    """CompilerError with the install hint when QEMU or the toolchain is missing."""
    target = _target(target)
    Toolchain.for_target(target)
    require_tools([target.data["simulator"]["command"][0]], target.data["toolchain"]["install"])


def run_firmware(elf, workdir, timeout: float | None = None, check: bool = True, target=None) -> SimResult:
    """Runs `elf` in QEMU from `workdir`. Traps, stack overflows and timeouts always raise
    SimulatorError; another non-zero exit raises only when `check` (else see .exit_code)."""
    target = _target(target)
    check_simulator_tools(target)
    simulator = target.data["simulator"]
    timeout = timeout if timeout is not None else simulator["timeout"]
    _check_elf(Path(elf))
    command = [part.replace("{elf}", str(Path(elf).resolve())) for part in simulator["command"]]
    result = _run(command, Path(workdir), timeout)
    failure = _failure(result, Path(elf), target, check)
    if failure:
        raise SimulatorError(failure, result)
    return result


def _check_elf(elf: Path) -> None:
    """QEMU would load anything else as a raw image and run it (and hang): refuse it up front."""
    if not elf.is_file():
        raise SimulatorError(f"{elf}: no such firmware file")
    header = elf.read_bytes()[:20]
    # ELF magic, 32-bit class (byte 4 = 1), e_type (bytes 16-17) = 2, executable, e_machine = 243, RISC-V.
    if header[:5] != b"\x7fELF\x01" or header[16:20] != bytes([2, 0, 243, 0]):
        raise SimulatorError(f"{elf}: not a linked 32-bit RISC-V ELF executable")


def _run(command: list[str], workdir: Path, timeout: float) -> SimResult:
    start = time.monotonic()
    # Own process group, so a timeout kills QEMU and anything it started; stdin is not the
    # terminal, so the stdio chardev leaves the terminal's mode alone.
    process = subprocess.Popen(command, cwd=workdir, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        result = SimResult(-1, _text(stdout), _text(stderr), time.monotonic() - start)
        last = _last_line(result.stdout + result.stderr)
        said = f"the last output was {last!r}" if last else "it printed nothing"
        raise SimulatorError(f"simulator timed out after {timeout:g} s (firmware hung?); {said}", result) from None
    return SimResult(process.returncode, _text(stdout), _text(stderr), time.monotonic() - start)


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
        return f"firmware trapped: mcause={mcause} ({name}) at mepc={mepc} in {where} (mtval={mtval})"
    overflow = next((line for line in result.stdout.splitlines() if line.startswith(_STACK_OVERFLOW)), None)
    if overflow:
        return f"firmware failed: {overflow.strip()}"
    qemu = next((line for line in result.stderr.splitlines() if line.startswith("qemu-system")), None)
    if qemu:
        return f"simulator failed: {qemu.strip()}"
    if not check:
        return None
    last = _last_line(result.stderr) or _last_line(result.stdout)
    return f"firmware exited with code {result.exit_code}" + (f"; its last output was {last!r}" if last else "")


def function_at(elf: Path, address: int, target) -> str:
    """The function containing a (simulation) address: '<name>+0x<offset>', or '?'."""
    _, symbols = Toolchain.for_target(target).read_elf(elf)
    functions = [s for s in symbols if s.is_function and s.address <= address]
    containing = [s for s in functions if address < s.address + max(s.size, 1)]
    best = (containing or sorted(functions, key=lambda s: s.address)[-1:] or [None])[0]
    return f"{best.name}+{address - best.address:#x}" if best else "?"
