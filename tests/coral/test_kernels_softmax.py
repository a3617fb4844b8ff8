"""The generated int8 softmax kernel (cpp/src/softmax.cc) in QEMU, bit-exact to kernels/ref's npu_softmax_s8.

Seeded random specs: depths below, at and above a vector (and odd), rows 1..8; params from real
scales and betas (1e-4 .. 1) and raw params at the edges of their domain (left shifts 0..31,
diff_min from the tightest to "keep everything", multipliers 0 .. 2^31 - 1); inputs uniform,
saturated, all equal, and a single maximum. Depths of 512 and more reach the rows whose output
shift exceeds 31, and 4096 and more the saturating sum. Each spec runs as portable C and as RVV
code at two LMULs; the first specs also run kernels/ref itself in QEMU. The expected output is
compiler.quant._ref_softmax (kernels/ref compiled for the host). One run of the kernel runner.

The RVV kernel computes gemmlowp's SRDHM with vsmul (vxrm RNU) and RoundingDivideByPOT of values
>= 0 with vnclip: these cases are what shows those identities hold (cpp/src/softmax.cc).
"""

import pytest
from kernel_testing import assert_benchmark, assert_bit_exact, lmul_cases, run_cases
from softmax_cases import BENCHMARKS, SPECS

from compiler.coral import _codegen, codegen
from compiler.quant.reference.softmax import softmax_params

ISA = codegen.isa()  # coral-npu's [isa]: what the native calls below emit for

REFERENCE_RUNS = 8  # specs that also run kernels/ref in QEMU

# Instruction ceilings of the default schedule (measured + ~3%), so that a change that slows the
# kernel down shows: 1.00 instructions/element at 1x1000 (1001), 2.50 at 49x64 (7826: about 90
# scalar instructions per row for the reciprocal and the reductions).
BENCHMARK_CEILINGS = {"softmax 1x1000": 1_030, "softmax 49x64": 8_060}


CASES = lmul_cases(SPECS, BENCHMARKS, REFERENCE_RUNS)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every case, run in one go: label -> KernelRun."""
    return run_cases(CASES, tmp_path_factory.mktemp("softmax"), lambda spec: {}, lambda spec: [spec.x])


@pytest.mark.parametrize("label, spec, schedule, vector, reference", CASES, ids=[case[0] for case in CASES])
def test_bit_exact_to_reference(runs, label, spec, schedule, vector, reference):
    assert_bit_exact(runs[label], spec, schedule)


@pytest.mark.parametrize("label", BENCHMARK_CEILINGS)
def test_benchmark_instruction_count(runs, label):
    assert_benchmark(runs, label, BENCHMARK_CEILINGS[label], faster_than_portable=10)


def test_specs_reach_every_code_shape():
    """The specs reach the vector kernel's optional branches: rows whose output shift exceeds 31
    and the saturating sum, and the plain sum; and their inputs make those branches matter (a
    deep row of equal values: every output -128; a softmax row that is not)."""
    sources = [codegen.emit("softmax", "k", spec.params, {}, dict(lmul=8)).source for spec in SPECS]
    markers = {"wide exponent": "if (exponent > 31)", "saturating sum": "saturating: TFLite",
               "plain sum": "acc = __riscv_vadd_vv"}
    for name, marker in markers.items():
        assert sum(marker in source for source in sources) >= 2, name
    deep_equal = [s for s in SPECS if s.params["depth"] >= 512 and (s.x == s.x[:, :1]).all()]
    assert deep_equal and all((s.want == -128).all() for s in deep_equal)
    assert any(s.params["depth"] >= 4096 and (s.want > -128).any() for s in SPECS)


@pytest.mark.parametrize("schedule, reason", [
    ({"lmul": 3}, "lmul 3 is not 1, 2, 4 or 8"),
    ({"oc_tile": 4}, "this kernel has no 'oc_tile' knob"),
])
def test_validate_rejects_with_a_reason(schedule, reason):
    assert codegen.validate("softmax", _valid_params(), schedule) == reason


def test_default_schedule_is_valid():
    params = _valid_params()
    assert codegen.default_schedule("softmax", params)["lmul"] == 8
    assert codegen.validate("softmax", params, codegen.default_schedule("softmax", params)) == ""


@pytest.mark.parametrize("change, message", [
    ({"input_left_shift": 32}, "input_left_shift = 32 outside [0, 31]"),
    ({"input_multiplier": -1}, "input_multiplier = -1 outside [0, 2147483647]"),
    ({"diff_min": 1}, "diff_min = 1 outside [-2147483648, 0]"),
    ({"depth": 0}, "depth = 0 outside [1, 2147483647]"),
    ({"rows": 2**30, "depth": 4}, "rows = 1073741824 outside [0, 536870911]"),
    ({"input_left_shift": 24, "diff_min": -129}, "diff_min = -129 with input_left_shift = 24 overflows int32"),
])
def test_spec_errors_name_the_field(change, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        _codegen.emit("softmax", "k", _valid_params() | change, {}, ISA)


def _valid_params():
    return dict(rows=4, depth=10, **softmax_params(0.1))
