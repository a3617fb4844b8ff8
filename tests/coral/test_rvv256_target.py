"""The second RVV target, rvv256-rv64 (RV64GCV, VLEN 256: targets/rvv_vlen256/target.toml), on the
same backend as coral-npu: generated kernels bit-exact to kernels/ref in qemu-system-riscv64, and
a whole model equal to the host int8 build bit for bit.

The kernel cases are the coral-npu kernel tests' own but for their large benchmark specs (conv2d
on both engines, depthwise, dense, add / mul / requantize / lut / pooling, concat / pad / copy,
softmax, prelu, resize; RVV with default and non-default schedules, portable C, some kernels/ref),
run on the VLEN-256 target, where the codegen picks other tiles and vector lengths. One case in
SAMPLE of each suite runs, picked by the CRC-32 of its label (stable as cases come and go): the
coral-npu suites run them all, and a third still reaches every kernel and schedule kind here.
"""

import json
import zlib

import pytest
from kernel_suites import SUITES, large_spec_labels, suite_name
from kernel_testing import assert_bit_exact, run_cases
from test_coral_build import DIGITS, build, digits_equal_host

from compiler.coral import codegen
from compiler.coral.toolchain import Toolchain
from compiler.targets import get_target

TARGET = get_target("rvv256-rv64")
SAMPLE = 3

def _cases():
    """(label, spec, schedule, vector, reference, arrays, inputs) rows, labels prefixed by the suite."""
    rows = []
    for module, arrays, inputs in SUITES:
        benchmarks = large_spec_labels(module)  # the large specs' labels
        kept = [case for case in module.CASES if not any(case[0].startswith(label) for label in benchmarks)]
        for label, spec, schedule, vector, *reference in kept:
            if zlib.crc32(label.encode()) % SAMPLE:
                continue
            rows.append((f"{suite_name(module)}:{label}", spec, schedule, vector,
                         bool(reference and reference[0]), arrays, inputs))
    return rows


CASES = _cases()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every case on rvv256-rv64, in one go: label -> KernelRun."""
    folder = tmp_path_factory.mktemp("rvv256")
    out = {}
    for module, *_ in SUITES:  # one run_cases call per suite: the suites read their specs differently
        prefix = suite_name(module) + ":"
        rows = [row for row in CASES if row[0].startswith(prefix)]
        arrays, inputs = rows[0][5], rows[0][6]
        out.update(run_cases([row[:5] for row in rows], folder / prefix[:-1], arrays, inputs, target=TARGET))
    return out


@pytest.mark.parametrize("label, spec, schedule, vector, reference", [row[:5] for row in CASES],
                         ids=[row[0] for row in CASES])
def test_bit_exact_to_reference(runs, label, spec, schedule, vector, reference):
    assert_bit_exact(runs[label], spec, schedule)


def test_default_schedules_follow_the_target_vlen():
    """The codegen reads VLEN from the target: a dense layer of 64 outputs is one 64-lane tile at
    VLEN 256 (LMUL 8), two 32-lane tiles at coral-npu's VLEN 128."""
    params = dict(batches=1, in_features=16, out_features=64, input_zero_point=0, output_zero_point=0,
                  act_min=-128, act_max=127)
    assert codegen.default_schedule("dense", params, TARGET)["oc_tile"] == 64
    assert codegen.default_schedule("dense", params, get_target("coral-npu"))["oc_tile"] == 32


def test_digits_equals_the_host_build_bit_for_bit(tmp_path):
    model, calib = DIGITS / "digits_cnn.onnx", DIGITS / "calib.npz"
    report = build(model, calib, tmp_path / "rvv", "--target", TARGET.name)
    build(model, calib, tmp_path / "host", "--target", "host")
    stdout = digits_equal_host(tmp_path / "rvv", tmp_path / "host", tmp_path / "runs")
    assert "qemu-system-riscv64 -icount shift=0" in stdout
    coral = report["coral"]
    assert [row["region"] for row in coral["memory_map"]] == ["DRAM"]
    assert all(row["impl"] == "rvv" for row in coral["layers"])
    record = json.loads((tmp_path / "rvv" / "run.json").read_text())
    assert all(row["instructions"] > 0 for row in record["layers"])
    elf = tmp_path / "rvv" / "firmware.elf"
    assert elf.read_bytes()[4] == 2  # ELFCLASS64
    assert "vwmacc" in Toolchain.for_target(TARGET).disassemble(elf)
