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

import numpy as np
import pytest
from kernel_testing import assert_benchmark, assert_bit_exact, lmul_cases, run_cases

from compiler.coral import _codegen, codegen
from compiler.quant import _ref_softmax as ref
from compiler.quant.reference.softmax import softmax_params

ISA = codegen.isa()  # coral-npu's [isa]: what the native calls below emit for

INT32_MAX = 2**31 - 1
REFERENCE_RUNS = 8  # specs that also run kernels/ref in QEMU
DEPTHS = [1, 2, 3, 7, 16, 31, 32, 33, 63, 64, 65, 100, 127, 128, 129, 255, 257, 1000]


class Spec:
    """One kernel spec with its input and the reference output."""

    kernel = "softmax"

    def __init__(self, label, params, x, want):
        self.label, self.params, self.x, self.want = label, params, x, want


def _input(rng, shape, kind):
    if kind == 0:
        return rng.integers(-128, 128, shape, dtype=np.int8)
    if kind == 1:  # saturated
        return rng.choice(np.array([-128, 127], np.int8), shape)
    if kind == 2:  # all equal per row
        return np.broadcast_to(rng.integers(-128, 128, (shape[0], 1), dtype=np.int8), shape).copy()
    x = np.full(shape, -128, np.int8)  # one maximum per row, the rest at the other end
    x[np.arange(shape[0]), rng.integers(0, shape[1], shape[0])] = 127
    return x


def _raw_params(rng):
    """input_left_shift anywhere in [0, 31] with a diff_min the shift allows (the tightest, a
    random one, or 'keep every diff'), and a multiplier from 0 to 2^31 - 1."""
    shift = int(rng.integers(0, 32))
    widest = min(255, (1 << 31) >> shift)  # min(-diff_min, 255) << shift <= 2^31
    diff_min = -int(rng.choice([widest, rng.integers(0, widest + 1), 0]))
    if widest == 255 and rng.random() < 0.5:
        diff_min = -int(rng.integers(255, 1 << 20))
    multiplier = int(rng.choice([0, 1, INT32_MAX, 1 << 30, rng.integers(1 << 30, 1 << 31)]))
    return dict(input_multiplier=multiplier, input_left_shift=shift, diff_min=diff_min)


def _specs(rng, count):
    for i in range(count):
        depth = DEPTHS[i % len(DEPTHS)] if i < 2 * len(DEPTHS) else int(rng.integers(1, 300))
        shape = (int(rng.integers(1, 9)), depth)
        x = _input(rng, shape, i % 4)
        if i % 3 == 2:
            params = _raw_params(rng)
        else:
            params = softmax_params(10 ** rng.uniform(-4, 0), float(rng.choice([1.0, 0.5, 2.0, rng.uniform(0.1, 4)])))
        label = f"softmax{i}-{shape[0]}x{depth}-ls{params['input_left_shift']}"
        yield Spec(label, dict(params, rows=shape[0], depth=depth), x, ref.softmax_s8(x, **params))


def _deep_specs():
    """Long rows: the output shift above 31 (sums >= 512.0) and the saturating sum (depth >= 4096)."""
    rng = np.random.default_rng(43)
    cases = [((2, 600), 2, 0.01), ((1, 600), 0, 0.01), ((1, 4100), 3, 0.05), ((2, 5000), 0, 1e-4),
             ((1, 4096), 2, 0.5), ((1, 513), 2, 0.002)]
    for number, (shape, kind, scale) in enumerate(cases):
        x, params = _input(rng, shape, kind), softmax_params(scale)
        yield Spec(f"softmax-deep{number}-{shape[0]}x{shape[1]}", dict(params, rows=shape[0], depth=shape[1]), x,
                   ref.softmax_s8(x, **params))


def _benchmark_specs():
    """A classifier head (1000 classes) and attention-like rows (49 x 64), default schedule."""
    rng = np.random.default_rng(12)
    for shape, scale in [((1, 1000), 0.1), ((49, 64), 0.05)]:
        x, params = rng.integers(-128, 128, shape, dtype=np.int8), softmax_params(scale)
        yield Spec(f"softmax {shape[0]}x{shape[1]}", dict(params, rows=shape[0], depth=shape[1]), x,
                   ref.softmax_s8(x, **params))


SPECS = list(_specs(np.random.default_rng(41), 48)) + list(_deep_specs())
BENCHMARKS = list(_benchmark_specs())
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
