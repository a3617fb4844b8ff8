"""The generated int8 PReLU kernel (cpp/src/prelu.cc) in QEMU, bit-exact to kernels/ref's npu_prelu_s8.

Seeded random specs: channel counts below, at and above a vector (whole pixels per vector, and
channel tiles with odd tails), odd and even pixel counts, empty tensors, extreme zero points,
slopes of both signs and zero, shift pairs that take the vector code's one-rounding plan and
pairs that cannot (each branch rescaled on its own), multipliers from 0 to 2^31 - 1, narrow
activation ranges, each rounding (single: ONNX; double: TFLite's PRELU; double ties-up), double
rounding always rescaling each branch on its own. Each spec runs as portable C and as RVV code
at two LMULs; the first specs also run kernels/ref itself in QEMU. The expected output is
compiler.quant._ref_prelu (kernels/ref compiled for the host). All cases go through one run of the kernel runner.
"""

import numpy as np
import pytest
from kernel_testing import assert_benchmark, assert_bit_exact, lmul_cases, run_cases
from prelu_cases import BENCHMARKS, SPECS

from compiler.coral import _codegen, codegen

ISA = codegen.isa()  # coral-npu's [isa]: what the native calls below emit for

REFERENCE_RUNS = 8  # specs that also run kernels/ref in QEMU

# Instruction ceilings of the default schedule (measured + ~3%), so that a change that slows the
# kernel down shows: 0.563 instructions/element at 28x28x96 and 56x56x16; 0.719 with TFLite's
# double rounding (each branch on its own: vsmul and a rounding shift per branch).
BENCHMARK_CEILINGS = {"prelu 28x28x96": 43_700, "prelu 56x56x16": 29_100, "prelu 28x28x96 tflite": 55_800}


CASES = lmul_cases(SPECS, BENCHMARKS, REFERENCE_RUNS)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every case, run in one go: label -> KernelRun."""
    return run_cases(CASES, tmp_path_factory.mktemp("prelu"), lambda spec: dict(alpha=spec.alpha), lambda spec: [spec.x])


@pytest.mark.parametrize("label, spec, schedule, vector, reference", CASES, ids=[case[0] for case in CASES])
def test_bit_exact_to_reference(runs, label, spec, schedule, vector, reference):
    assert_bit_exact(runs[label], spec, schedule)


@pytest.mark.parametrize("label", BENCHMARK_CEILINGS)
def test_benchmark_instruction_count(runs, label):
    assert_benchmark(runs, label, BENCHMARK_CEILINGS[label], faster_than_portable=20)


def test_specs_cover_both_plans_and_loop_shapes():
    """The random specs reach every code shape of the vector kernel: one rounding for both branches
    and each branch on its own (single or double rounding); whole pixels per vector (with a
    remainder) and channel tiles; an odd number of vectors after the two-per-iteration loop."""
    sources = [codegen.emit("prelu", "k", spec.params, dict(alpha=spec.alpha), dict(lmul=8)).source for spec in SPECS]
    shapes = {"own": "npu_rvv_mbqm_x", "one rounding": "__riscv_vnclip_wx_i16m4(hi",
              "double": "npu_rvv_mbqm_double_x",
              "pixels": "whole pixels per vector", "tiles": "Per vector of channels", "remainder": "The last",
              "pairs": "for (int32_t i = 0;"}
    for name, marker in shapes.items():
        assert sum(marker in source for source in sources) >= 3, name
    assert sum("for (int32_t i = 0;" not in s and "__riscv_vse8" in s for s in sources) >= 1  # a single vector


@pytest.mark.parametrize("schedule, reason", [
    ({"lmul": 3}, "lmul 3 is not 1, 2, 4 or 8"),
    ({"oc_tile": 4}, "this kernel has no 'oc_tile' knob"),
    ({"loop_order": "px_oc"}, "this kernel has no 'loop_order' knob"),
])
def test_validate_rejects_with_a_reason(schedule, reason):
    assert codegen.validate("prelu", _valid_params(), schedule) == reason


def test_default_schedule_is_valid():
    params = _valid_params()
    schedule = codegen.default_schedule("prelu", params)
    assert schedule["lmul"] == 8
    assert codegen.validate("prelu", params, schedule) == ""


@pytest.mark.parametrize("change, alpha, message", [
    ({"positive_shift": 31}, None, "positive_shift = 31 outside [-31, 30]"),
    ({"negative_multiplier": -1}, None, "negative_multiplier = -1 outside [0, 2147483647]"),
    ({"alpha_zero_point": 128}, None, "alpha_zero_point = 128 outside [-128, 127]"),
    ({"act_min": 5, "act_max": 4}, None, "act_max = 4 outside [5, 127]"),
    ({"rounding": 3}, None, "rounding = 3 outside [0, 2]"),
    ({"outer": 2**30, "channels": 4}, None, "outer = 1073741824 outside [0, 536870911]"),
    ({}, np.zeros(7, np.int8), "array 'alpha' must be int8[8]"),
    ({}, np.zeros((1, 8), np.int8), "array 'alpha' must be int8[8]"),
    ({}, np.zeros(8, np.int32), "array 'alpha' must be int8[8]"),
])
def test_spec_errors_name_the_field(change, alpha, message):
    arrays = dict(alpha=np.zeros(8, np.int8) if alpha is None else alpha)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        _codegen.emit("prelu", "k", _valid_params() | change, arrays, ISA)


def test_missing_alpha_is_named():
    with pytest.raises(ValueError, match="missing constant array 'alpha'"):
        _codegen.emit("prelu", "k", _valid_params(), {}, ISA)


def _valid_params():
    return dict(outer=16, channels=8, input_zero_point=0, alpha_zero_point=0, output_zero_point=0,
                positive_multiplier=1 << 30, positive_shift=1, negative_multiplier=1 << 30, negative_shift=-6,
                act_min=-128, act_max=127)
