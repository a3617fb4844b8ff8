"""Generated add (and subtract, per-channel broadcast), mul, requantize, table lookup (lut), concat, max / avg / global average pool kernels in QEMU,
bit-exact to kernels/ref.

Seeded random specs with extreme zero points, multipliers, shifts, activation ranges, odd channel
counts, every padding and stride and windows large enough for the int32 sums; each spec runs as
portable C and as RVV code at two LMULs (both loop orders for the pools). All cases go through
one run_kernel_cases call (a few firmwares), and each is its own test. The reference is
compiler.quant._ref_elementwise: kernels/ref compiled for the host.
"""

import pytest
from elementwise_cases import benchmark_specs, specs
from kernel_testing import assert_bit_exact, run_cases

from compiler.coral import _codegen, codegen

ISA = codegen.isa()  # coral-npu's [isa]: what the native calls below emit for

LMULS = (1, 2, 4, 8)


def _variants(number, spec):
    """(label, schedule, vector): portable C, and RVV at two LMULs (cycling through all four), per loop order."""
    for order in spec.loop_orders:
        knobs = {} if order is None else {"loop_order": order}
        suffix = "" if order is None else f"-{order}"
        yield f"{spec.label}{suffix}-c", knobs or None, False
        for lmul in (LMULS[number % 4], LMULS[(number + 2) % 4]):
            yield f"{spec.label}{suffix}-m{lmul}", dict(knobs, lmul=lmul), True


# Layer shapes of real networks with the default schedule: instruction ceilings (measured + ~5%),
# so that a change that slows a kernel down shows.
BENCHMARK_CEILINGS = {"add 56x56x32": 89_000, "add 28x28x96 + 1x1x96 (broadcast)": 49_500, "sub 28x28x96": 66_700, "mul 28x28x96 x 1x1x96 (squeeze-excite)": 47_000, "lut 56x56x32 (hard-swish)": 6_600, "concat 55x55 64+64 (SqueezeNet fire)": 44_500, "max pool 3x3 s2 112x112x16": 19_000, "avg pool 2x2 s2 28x28x64": 10_300,
                      "global avg pool 7x7x256": 1_720}


BENCHMARKS = list(benchmark_specs())
# The add rows also run as portable C and as kernels/ref (the C compiler's code for the spec), for
# the per-element figures of kernels/README.md.
ADD_BENCHMARK_VARIANTS = [(" (portable C)", False, False), (" (kernels/ref)", False, True)]
CASES = [(label, spec, schedule, vector, False) for number, spec in enumerate(specs())
         for label, schedule, vector in _variants(number, spec)]
CASES += [(spec.label, spec, None, True, False) for spec in BENCHMARKS]
CASES += [(f"{spec.label}{suffix}", spec, None, vector, reference) for spec in BENCHMARKS if spec.kernel == "add"
          for suffix, vector, reference in ADD_BENCHMARK_VARIANTS]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every case, run in one go: label -> KernelRun."""
    return run_cases(CASES, tmp_path_factory.mktemp("elementwise"), lambda spec: spec.arrays, lambda spec: spec.inputs)


@pytest.mark.parametrize("label, spec, schedule, vector, reference", CASES, ids=[case[0] for case in CASES])
def test_bit_exact_to_reference(runs, label, spec, schedule, vector, reference):
    assert_bit_exact(runs[label], spec, schedule)


@pytest.mark.parametrize("label", BENCHMARK_CEILINGS)
def test_benchmark_instruction_count(runs, label):
    run = runs[label]
    if f"{label} (kernels/ref)" in runs:
        size = run.output.size
        portable, reference = (runs[f"{label}{suffix}"].instructions for suffix, *_ in ADD_BENCHMARK_VARIANTS)
        print(f"{label}: {run.instructions} instructions, {run.instructions / size:.3f} per element "
              f"(portable C {portable / size:.1f}, kernels/ref {reference / size:.1f})")
    assert 0 < run.instructions <= BENCHMARK_CEILINGS[label]


def test_every_benchmark_has_a_ceiling():
    assert sorted(spec.label for spec in BENCHMARKS) == sorted(BENCHMARK_CEILINGS)


@pytest.mark.parametrize("kernel, params, schedule, reason", [
    ("add", {}, {"lmul": 3}, "lmul 3 is not 1, 2, 4 or 8"),
    ("add", {}, {"px_tile": 4}, "this kernel has no 'px_tile' knob"),
    ("requantize", {}, {"loop_order": "px_oc"}, "this kernel has no 'loop_order' knob"),
    ("mul", {}, {"oc_tile": 4}, "this kernel has no 'oc_tile' knob"),
    ("max_pool2d", {}, {"loop_order": "zigzag"}, "loop_order 'zigzag' is not oc_px or px_oc"),
    ("global_avg_pool2d", {}, {"unroll": 2}, "this kernel has no 'unroll' knob"),
    ("concat", {}, {"loop_order": "zigzag"}, "loop_order 'zigzag' is not oc_px or px_oc"),
    ("concat", {}, {"oc_tile": 4}, "this kernel has no 'oc_tile' knob"),
])
def test_validate_rejects_with_a_reason(kernel, params, schedule, reason):
    assert _codegen.validate(kernel, _valid_params(kernel) | params, ISA, schedule) == reason


@pytest.mark.parametrize("kernel", ["add", "mul", "requantize", "lut", "concat", "max_pool2d", "avg_pool2d", "global_avg_pool2d"])
def test_default_schedule_is_valid(kernel):
    params = _valid_params(kernel)
    assert _codegen.validate(kernel, params, ISA, _codegen.default_schedule(kernel, params, ISA)) == ""


@pytest.mark.parametrize("kernel, change, message", [
    ("add", {"input1_shift": 1}, "input1_shift = 1 outside [-31, 0]"),
    ("add", {"act_min": 5, "act_max": 4}, "act_max = 4 outside [5, 127]"),
    ("add", {"subtract": 2}, "subtract = 2 outside [0, 1]"),
    ("add", {"broadcast": -1}, "broadcast = -1 outside [0, 1]"),
    ("add", {"pixels": 2**30, "channels": 4}, "channels = 4 outside [0, 1]"),
    ("requantize", {"multiplier": -1}, "multiplier = -1 outside [0, 2147483647]"),
    ("mul", {"broadcast": 2}, "broadcast = 2 outside [0, 1]"),
    ("mul", {"output_shift": 31}, "output_shift = 31 outside [-31, 30]"),
    ("mul", {"input2_zero_point": 128}, "input2_zero_point = 128 outside [-128, 127]"),
    ("mul", {"pixels": 2**30, "channels": 4}, "channels = 4 outside [0, 1]"),
    ("max_pool2d", {"pad_left": 3}, "a window along W lies entirely in the padding"),
    ("avg_pool2d", {"out_h": 9}, "a window along H lies entirely in the padding"),
    ("global_avg_pool2d", {"in_h": 4096, "in_w": 4096}, "in_w = 4096 outside [1, 2048]"),
    ("global_avg_pool2d", {"bias": 2**30 + 1}, "bias = 1073741825 outside [-1073741824, 1073741824]"),
    ("global_avg_pool2d", {"block_rounding": 3}, "block_rounding = 3 outside [0, 2]"),
    ("concat", {"input1_shift": 31}, "input1_shift = 31 outside [-31, 30]"),
    ("concat", {"num_inputs": 3}, "concat spec has no field 'input2_size'"),
])
def test_spec_errors_name_the_field(kernel, change, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        _codegen.emit(kernel, "k", _valid_params(kernel) | change, {}, ISA)


def _valid_params(kernel):
    act = dict(act_min=-128, act_max=127)
    if kernel == "add":
        return dict(batches=1, pixels=10, channels=1, broadcast=0, subtract=0, left_shift=20, input1_zero_point=0, input1_multiplier=1 << 30, input1_shift=0,
                    input2_zero_point=0, input2_multiplier=1 << 30, input2_shift=0, output_zero_point=0,
                    output_multiplier=1 << 30, output_shift=-19, **act)
    if kernel == "mul":
        return dict(batches=1, pixels=16, channels=8, broadcast=1, input1_zero_point=0, input2_zero_point=-128,
                    output_zero_point=0, output_multiplier=1 << 30, output_shift=-7, **act)
    if kernel == "lut":
        return dict(size=10)
    if kernel == "requantize":
        return dict(size=10, input_zero_point=0, output_zero_point=0, multiplier=1 << 30, shift=0, **act)
    if kernel == "concat":
        return dict(outer=6, num_inputs=2, output_zero_point=0, input0_size=3, input0_zero_point=0,
                    input0_multiplier=1 << 30, input0_shift=1, input1_size=5, input1_zero_point=4,
                    input1_multiplier=1 << 29, input1_shift=0)
    if kernel == "global_avg_pool2d":
        return dict(batches=1, in_h=4, in_w=4, channels=8, input_zero_point=0, output_zero_point=0,
                    multiplier=1 << 30, shift=-3, **act)
    return dict(batches=1, in_h=8, in_w=8, channels=4, out_h=4, out_w=4, kernel_h=3, kernel_w=3, stride_h=2,
                stride_w=2, pad_top=1, pad_left=1, **act)
