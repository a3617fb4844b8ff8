"""The simulator is a sandbox: a firmware, however it was made, reaches the host only through the
input stream and its console records. Each test builds a firmware that tries to escape (the
requests a semihosting-enabled QEMU would serve: run a shell command, write a host file) and
checks that nothing happened on the host and the run failed with a clear line."""

import struct
import uuid
from pathlib import Path

import pytest

from compiler.coral.simulator import SimulatorError, check_simulator_tools, run_firmware
from compiler.coral.toolchain import Toolchain
from compiler.targets import get_target

# The RISC-V semihosting call: ebreak between these two exact instructions (uncompressed, on one
# page), with the operation in a0 and its argument block in a1. QEMU with semihosting enabled
# serves SYS_SYSTEM (0x12) by running the string in the host's shell, and SYS_OPEN (0x01) with a
# write mode by opening any host path.
_SEMIHOST = r"""
static long semihost(long op, const void* arg) {
    register long a0 __asm__("a0") = op;
    register const void* a1 __asm__("a1") = arg;
    __asm__ volatile(".option push\n.option norvc\n.balign 16\n"
                     "slli x0, x0, 0x1f\nebreak\nsrai x0, x0, 7\n.option pop"
                     : "+r"(a0) : "r"(a1) : "memory");
    return a0;
}
static unsigned length(const char* s) { unsigned n = 0; while (s[n]) n++; return n; }
"""


@pytest.fixture(scope="module")
def toolchain() -> Toolchain:
    check_simulator_tools()
    return Toolchain.for_target(get_target("coral-npu"))


def build(toolchain, tmp_path: Path, body: str) -> Path:
    (tmp_path / "main.c").write_text('#include "npu_runtime.h"\n' + _SEMIHOST + body)
    return toolchain.build_firmware([tmp_path / "main.c"], tmp_path / "firmware.elf", profile="highmem")


def test_a_firmware_cannot_run_a_host_command(toolchain, tmp_path):
    marker = Path("/tmp") / f"sandbox-escape-{uuid.uuid4().hex}"
    elf = build(toolchain, tmp_path, rf"""
        int main(void) {{
            static const char command[] = "touch {marker}";
            unsigned args[2] = {{(unsigned)command, length(command)}};
            semihost(0x12, args);  /* SYS_SYSTEM */
            npu_puts("still here\n");
            return 0;
        }}""")
    with pytest.raises(SimulatorError, match=r"trapped: mcause=0x3 \(breakpoint\)") as caught:
        run_firmware(elf, tmp_path, timeout=20)
    assert not marker.exists()
    assert "still here" not in caught.value.result.stdout


def test_a_firmware_cannot_write_a_host_file(toolchain, tmp_path):
    target = tmp_path / "written-by-firmware.txt"
    elf = build(toolchain, tmp_path, rf"""
        int main(void) {{
            static const char path[] = "{target}";
            unsigned open_args[3] = {{(unsigned)path, 4 /* "w" */, length(path)}};
            long handle = semihost(0x01, open_args);  /* SYS_OPEN */
            unsigned write_args[3] = {{(unsigned)handle, (unsigned)"pwned", 5}};
            semihost(0x05, write_args);  /* SYS_WRITE */
            return 0;
        }}""")
    with pytest.raises(SimulatorError, match="breakpoint"):
        run_firmware(elf, tmp_path, timeout=20)
    assert not target.exists()
    assert not any(tmp_path.rglob("written-by-firmware*"))


def test_a_firmware_flooding_its_console_is_stopped(toolchain, tmp_path):
    elf = build(toolchain, tmp_path, r"""
        int main(void) { for (;;) npu_puts("spam spam spam spam spam spam spam spam spam spam spam\n"); }""")
    with pytest.raises(SimulatorError, match="more than .* bytes to its console: stopped"):
        run_firmware(elf, tmp_path, timeout=60)


def test_the_sandbox_folder_is_removed_and_holds_only_the_elf_and_the_inbox(toolchain, tmp_path):
    elf = build(toolchain, tmp_path, r"""
        int main(void) { unsigned char b[3]; if (npu_read_input(b, 3)) return 10; npu_send(0, b, 3); return 0; }""")
    work = tmp_path / "work"
    result = run_firmware(elf, work, inputs=[b"abc"], timeout=20)
    assert result.records == {0: b"abc"}
    assert list(work.iterdir()) == []


@pytest.mark.parametrize("content, why", [
    (b"\x7fELF\x01\x01\x01" + bytes(9) + bytes([2, 0, 243, 0]) + bytes(44), "no program headers"),
    (b"not an elf at all", "not a linked 32-bit RISC-V ELF executable"),
])
def test_a_file_that_is_no_runnable_firmware_is_refused_up_front(tmp_path, content, why):
    elf = tmp_path / "firmware.elf"
    elf.write_bytes(content)
    with pytest.raises(SimulatorError, match=why):
        run_firmware(elf, tmp_path, timeout=5)


def test_an_entry_point_outside_every_executable_segment_is_refused(toolchain, tmp_path):
    elf = build(toolchain, tmp_path, "int main(void) { return 0; }")
    data = bytearray(elf.read_bytes())
    struct.pack_into("<I", data, 24, 0x10)  # e_entry: below the simulator's RAM
    elf.write_bytes(bytes(data))
    with pytest.raises(SimulatorError, match="entry point 0x10 is in no executable segment"):
        run_firmware(elf, tmp_path, timeout=5)
