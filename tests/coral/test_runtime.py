"""The Coral NPU bare-metal runtime in QEMU: startup, the input stream and output records, exit codes, the vector
unit, exact instruction counts, traps, hangs and stack overflow. Real tools, no mocks: a missing
clang-19 or qemu-system-riscv32 fails with the install hint."""

from pathlib import Path

import numpy as np
import pytest

from compiler.coral.simulator import SimulatorError, check_simulator_tools, run_firmware
from compiler.coral.toolchain import Toolchain
from compiler.targets import get_target


@pytest.fixture(scope="module")
def toolchain() -> Toolchain:
    check_simulator_tools()
    return Toolchain.for_target(get_target("coral-npu"))


def build_and_run(toolchain, tmp_path: Path, source: str, timeout: float = 20, profile=None, **run_options):
    (tmp_path / "main.c").write_text(source)
    elf = toolchain.build_firmware([tmp_path / "main.c"], tmp_path / "firmware.elf", profile=profile)
    return run_firmware(elf, tmp_path, timeout=timeout, **run_options)


def test_input_stream_and_output_records_round_trip(toolchain, tmp_path):
    data = np.arange(-50, 50, dtype=np.int8)
    result = build_and_run(toolchain, tmp_path, r"""
        #include "npu_runtime.h"
        static int8_t buffer[100];
        int main(void) {
            if (npu_read_input(buffer, 60)) return 10;
            if (npu_read_input(buffer + 60, 40)) return 11;
            if (npu_read_input(buffer, 1) != -1) return 12;  /* the stream is used up */
            for (int i = 0; i < 100; i++) buffer[i] = (int8_t)(buffer[i] * 2 + 1);
            npu_send(7, buffer, sizeof buffer);
            npu_send(8, buffer, 0);
            npu_puts("done ");
            npu_put_u32(4000000000u);
            npu_puts("\n");
            return 0;
        }""", inputs=[data[:30].tobytes(), data[30:].tobytes()])
    assert result.exit_code == 0 and result.stdout == "done 4000000000\n"
    assert set(result.records) == {7, 8} and result.records[8] == b""
    np.testing.assert_array_equal(np.frombuffer(result.records[7], dtype=np.int8), (data * 2 + 1).astype(np.int8))


def test_highmem_sections_are_usable(toolchain, tmp_path):
    # Weights in EXTMEM, an arena in DTCM and spilled activations in EXTMEM, all touched at run time.
    result = build_and_run(toolchain, tmp_path, r"""
        #include <stdint.h>
        __attribute__((section(".weights"))) const int8_t weights[256 * 1024] = {[256 * 1024 - 1] = 42};
        __attribute__((section(".arena"))) int8_t arena[512 * 1024];
        __attribute__((section(".extmem_bss"))) int8_t spill[2 * 1024 * 1024];
        int main(void) {
            arena[512 * 1024 - 1] = weights[256 * 1024 - 1];
            spill[2 * 1024 * 1024 - 1] = arena[512 * 1024 - 1] + 1;
            return spill[2 * 1024 * 1024 - 1] == 43 && (uintptr_t)spill >= 0xA0000000u ? 0 : 1;
        }""", profile="highmem")
    assert result.exit_code == 0


def test_exit_code_of_main_is_the_simulator_exit_code(toolchain, tmp_path):
    source = "int main(void) { return 7; }"
    assert build_and_run(toolchain, tmp_path, source, check=False).exit_code == 7
    with pytest.raises(SimulatorError, match="firmware exited with code 7"):
        run_firmware(tmp_path / "firmware.elf", tmp_path, timeout=20)


def test_vector_unit_is_enabled(toolchain, tmp_path):
    result = build_and_run(toolchain, tmp_path, r"""
        #include <riscv_vector.h>
        #include "npu_runtime.h"
        static int32_t a[37], b[37], c[37];
        int main(void) {
            for (int i = 0; i < 37; i++) { a[i] = i * 1000; b[i] = -3 * i + 5; }
            for (size_t i = 0, vl; i < 37; i += vl) {
                vl = __riscv_vsetvl_e32m2(37 - i);
                vint32m2_t x = __riscv_vle32_v_i32m2(a + i, vl), y = __riscv_vle32_v_i32m2(b + i, vl);
                __riscv_vse32_v_i32m2(c + i, __riscv_vadd_vv_i32m2(x, y, vl), vl);
            }
            for (int i = 0; i < 37; i++) if (c[i] != i * 997 + 5) return 20 + i;
            return __riscv_vsetvlmax_e32m1() == 4 ? 0 : 1;  /* VLEN 128 */
        }""")
    assert result.exit_code == 0


INSTRET_PROGRAM = r"""
    #include "npu_runtime.h"
    static volatile int sink;
    __attribute__((noinline)) static uint32_t loop_cost(int n) {  /* one copy of the loop */
        uint32_t start = npu_instret();
        for (int i = 0; i < n; i++) sink = i;
        return npu_instret() - start;
    }
    int main(void) {
        uint32_t c10 = loop_cost(10), c110 = loop_cost(110), c1010 = loop_cost(1010);
        npu_put_u32(c10); npu_puts(" "); npu_put_u32(c110); npu_puts(" "); npu_put_u32(c1010); npu_puts("\n");
        return 0;
    }"""


def test_instret_is_exact_and_repeatable(toolchain, tmp_path):
    first = build_and_run(toolchain, tmp_path, INSTRET_PROGRAM)
    second = run_firmware(tmp_path / "firmware.elf", tmp_path, timeout=20)
    assert first.stdout == second.stdout
    c10, c110, c1010 = map(int, first.stdout.split())
    # Linear in the trip count: the same per-iteration cost over 100 and over 900 more iterations.
    per_iteration = (c110 - c10) / 100
    assert per_iteration == int(per_iteration) and 2 <= per_iteration <= 8
    assert c1010 - c110 == 9 * (c110 - c10)


def test_trap_names_cause_and_function(toolchain, tmp_path):
    with pytest.raises(SimulatorError) as caught:
        build_and_run(toolchain, tmp_path, r"""
            __attribute__((noinline)) void bad_instruction(void) { __asm__ volatile(".word 0"); }
            int main(void) { bad_instruction(); return 0; }""")
    message = str(caught.value)
    assert message.startswith("firmware trapped: mcause=0x2 (illegal instruction) at mepc=0x8")
    assert " in bad_instruction+0x" in message and "\n" not in message


def test_hang_times_out(toolchain, tmp_path):
    with pytest.raises(SimulatorError, match=r"timed out after 2 s \(firmware hung\?\); the last output was 'spinning'"):
        build_and_run(toolchain, tmp_path, r"""
            #include "npu_runtime.h"
            int main(void) { npu_puts("spinning\n"); for (;;) __asm__ volatile(""); }""", timeout=2)


def test_stack_overflow_is_reported(toolchain, tmp_path):
    with pytest.raises(SimulatorError, match="firmware failed: stack overflow: .* 2048-byte stack"):
        build_and_run(toolchain, tmp_path, r"""
            #include <string.h>
            __attribute__((noinline)) int deep(int n) {
                volatile char frame[4096];  /* twice the default profile's stack */
                memset((char *)frame, n, sizeof frame);
                return frame[n];
            }
            int main(void) { return deep(1) == 1 ? 0 : 1; }""")


def test_runtime_string_functions(toolchain, tmp_path):
    result = build_and_run(toolchain, tmp_path, r"""
        #include <string.h>
        struct big { int v[40]; };
        static struct big a, b;
        static char text[16] = "abcdefghij";
        int main(void) {
            for (int i = 0; i < 40; i++) a.v[i] = i;
            b = a;                                  /* clang emits memcpy */
            memmove(text + 2, text, 8);             /* overlapping, forwards */
            if (memcmp(text, "ababcdefgh", 10)) return 1;
            memmove(text, text + 2, 8);             /* overlapping, backwards */
            if (memcmp(text, "abcdefghgh", 10)) return 2;
            memset(&a, 0, sizeof a);
            return b.v[39] == 39 && a.v[39] == 0 ? 0 : 3;
        }""")
    assert result.exit_code == 0
