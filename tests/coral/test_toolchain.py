"""The Coral NPU toolchain driver and memory profiles: fit is enforced per region with a clear
message, weights land in EXTMEM on highmem, the Zve32x scan finds vector-float opcodes, and
compiler errors are one line. Real clang-19 / ld.lld-19, no mocks."""

import dataclasses

import pytest

from compiler.coral.memory import linker_script, profile_for, profiles_for
from compiler.coral.toolchain import Toolchain
from compiler.errors import CompilerError
from compiler.targets import get_target

KB = 1024


@pytest.fixture(scope="module")
def target():
    return get_target("coral-npu")


@pytest.fixture(scope="module")
def toolchain(target) -> Toolchain:
    return Toolchain.for_target(target)


def build(toolchain, tmp_path, source: str, **options):
    (tmp_path / "main.c").write_text(source)
    return toolchain.build_firmware([tmp_path / "main.c"], tmp_path / "firmware.elf", **options)


BIG_DTCM_ARRAY = """
    #include <stdint.h>
    static volatile int8_t activations[40 * 1024];
    int main(void) { activations[40 * 1024 - 1] = 1; return activations[0]; }"""


def test_dtcm_overflow_names_region_bytes_and_highmem(toolchain, tmp_path):
    with pytest.raises(CompilerError) as caught:
        build(toolchain, tmp_path, BIG_DTCM_ARRAY)
    message = str(caught.value)
    # 40 KB of .bss plus the 2 KB stack in 32 KB of DTCM.
    assert message == (f"firmware does not fit memory profile default: DTCM needs {42 * KB} bytes, "
                       f"has {32 * KB} ({10 * KB} over); try --memory highmem")


def test_same_program_fits_highmem(toolchain, tmp_path):
    elf = build(toolchain, tmp_path, BIG_DTCM_ARRAY, profile="highmem")
    used, size = toolchain.region_usage(elf)["DTCM"]
    assert size == 1024 * KB and 56 * KB <= used < 57 * KB  # 16 KB stack + 40 KB array


def test_weights_go_to_extmem_on_highmem(toolchain, tmp_path):
    elf = build(toolchain, tmp_path, """
        #include <stdint.h>
        __attribute__((section(".weights"))) const int8_t weights[100 * 1024] = {1, 2, 3};
        volatile int index = 100 * 1024 - 1;  /* a run-time index keeps the array */
        int main(void) { return weights[index]; }""", profile="highmem")
    usage = toolchain.region_usage(elf)
    assert usage["EXTMEM"] == (100 * KB, 4096 * KB)
    assert usage["ITCM"][0] < 8 * KB and set(usage) == {"ITCM", "DTCM", "EXTMEM"}


def test_weights_overflow_itcm_on_default(toolchain, tmp_path):
    with pytest.raises(CompilerError, match=r"does not fit memory profile default: ITCM needs \d+ bytes, has 8192 \(\d+ over\); try --memory highmem"):
        build(toolchain, tmp_path, """
            #include <stdint.h>
            __attribute__((section(".weights"))) const int8_t weights[9 * 1024] = {1};
            volatile int index = 9 * 1024 - 1;
            int main(void) { return weights[index]; }""")


def test_vector_float_scan(toolchain, tmp_path):
    elf = build(toolchain, tmp_path, """
        #include <riscv_vector.h>
        int32_t data[8];
        int main(void) {
            size_t vl = __riscv_vsetvl_e32m1(8);
            __riscv_vse32_v_i32m1(data, __riscv_vadd_vx_i32m1(__riscv_vle32_v_i32m1(data, vl), 3, vl), vl);
            return data[0];
        }""")
    assert "vadd.v" in toolchain.disassemble(elf)
    assert toolchain.vector_float_instructions(elf) == []
    # The same scan must fail on code built for Zve32f with a float vector intrinsic.
    (tmp_path / "float.c").write_text("""
        #include <riscv_vector.h>
        void scale(float *x, float s, size_t n) {
            size_t vl = __riscv_vsetvl_e32m1(n);
            __riscv_vse32_v_f32m1(x, __riscv_vfmul_vf_f32m1(__riscv_vle32_v_f32m1(x, vl), s, vl), vl);
        }""")
    obj = toolchain.compile(tmp_path / "float.c", tmp_path / "float.o", march="rv32imf_zve32f_zicsr")
    found = toolchain.vector_float_instructions(obj)
    assert len(found) == 1 and "vfmul.vf" in found[0]


def test_compile_error_is_one_line_naming_the_file(toolchain, tmp_path):
    with pytest.raises(CompilerError) as caught:
        build(toolchain, tmp_path, "int main(void) { return undeclared; }")
    message = str(caught.value)
    assert message.startswith("compiling main.c failed: ") and "main.c:1:25: error: use of undeclared identifier" in message
    assert "\n" not in message


def test_undefined_symbol_is_a_link_error(toolchain, tmp_path):
    with pytest.raises(CompilerError, match="linking firmware.elf failed: .*undefined symbol: missing_kernel"):
        build(toolchain, tmp_path, "void missing_kernel(void); int main(void) { missing_kernel(); return 0; }")


def test_unknown_memory_profile(target, toolchain, tmp_path):
    with pytest.raises(CompilerError, match=r"^--memory huge: unknown memory profile for target coral-npu \(known: default, highmem, soc\)$"):
        build(toolchain, tmp_path, "int main(void) { return 0; }", profile="huge")


def test_missing_tool_names_the_install_command(target):
    data = {**target.data, "toolchain": {**target.data["toolchain"], "cc": "clang-no-such-version"}}
    with pytest.raises(CompilerError, match=r"^clang-no-such-version not found: install it with `make deps` \(sudo apt-get install"):
        Toolchain.for_target(dataclasses.replace(target, data=data))


def test_profiles_come_from_target_toml(target):
    profiles = profiles_for(target)
    assert set(profiles) == {"default", "highmem", "soc"} and profile_for(target).name == "default"
    default, highmem = profiles["default"], profiles["highmem"]
    assert (default.regions["ITCM"].size, default.regions["DTCM"].address, default.stack) == (8 * KB, 0x10000, 2 * KB)
    extmem = highmem.regions["EXTMEM"]
    assert (extmem.address, extmem.sim_address, extmem.size) == (0x20000000, 0xA0000000, 4096 * KB)
    script = linker_script(highmem)
    assert "DTCM (rwx) : ORIGIN = 0x80100000, LENGTH = 0x100000" in script
    assert ".weights : ALIGN(16) { *(.weights .weights.*) } > EXTMEM" in script
