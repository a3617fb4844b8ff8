"""Generated copy (Slice, Split, DepthToSpace, SpaceToDepth, transpose) and pad kernels in QEMU,
bit-exact to kernels/ref.

Seeded random copies of every plan kind of compiler/quant/reference/move.py (slices with steps,
both DepthToSpace modes, SpaceToDepth, transposes of up to six axes, slices of transposes) and raw
params (broadcast reads, offsets, long and short runs, axes longer than a vector), and random
constant pads (every axis, empty inputs, no padding at all, channel pads with rows shorter than a
register, pads longer than a vector); each spec runs as portable C and as RVV code at two LMULs.
All cases go through one run_kernel_cases call, and each is its own test. The references are
compiler.quant._ref_move / _ref_elementwise: kernels/ref compiled for the host. Layer shapes of
real networks check instruction ceilings (the figures in cpp/src/copy.cc and pad.cc).
"""

import pytest
from kernel_testing import assert_bit_exact, run_cases
from move_cases import benchmark_specs, specs

from compiler.coral import _codegen, codegen

ISA = codegen.isa()  # coral-npu's [isa]: what the native calls below emit for

LMULS = (1, 2, 4, 8)


def _variants(number, spec):
    """(label, schedule, vector): portable C, and RVV at two LMULs (cycling through all four)."""
    yield f"{spec.label}-c", None, False
    for lmul in (LMULS[number % 4], LMULS[(number + 2) % 4]):
        yield f"{spec.label}-m{lmul}", dict(lmul=lmul), True


# Layer shapes with the default schedule: instruction ceilings (measured + ~5%), so that a change
# that slows a kernel down shows; the per-element figures are in cpp/src/copy.cc and pad.cc.
BENCHMARK_CEILINGS = {
    "copy: channel slice 28x28x96 -> channels 32..63": 3_700,
    "copy: spatial slice 28x28x96 -> rows, columns 7..20": 730,
    "copy: DepthToSpace DCR block 2, 14x14x64": 1_700,
    "copy: DepthToSpace CRD block 2, 14x14x64": 3_350,
    "copy: SpaceToDepth block 2, 28x28x16": 1_700,
    "copy: transpose NHWC -> NCHW 8x8x16": 75,
    "pad: 1-pixel border 28x28x32": 1_100,
    "pad: 3 -> 4 channels 32x32x3": 175,
    "pad: bottom / right by 1, 15x15x16 (ZeroPadding2D)": 225,
}


CASES = [(label, spec, schedule, vector) for number, spec in enumerate(specs())
         for label, schedule, vector in _variants(number, spec)]
CASES += [(spec.label, spec, None, True) for spec in benchmark_specs()]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every case, run in one go: label -> KernelRun."""
    return run_cases(CASES, tmp_path_factory.mktemp("move"), lambda spec: {}, lambda spec: spec.inputs)


@pytest.mark.parametrize("label, spec, schedule, vector", CASES, ids=[case[0] for case in CASES])
def test_bit_exact_to_reference(runs, label, spec, schedule, vector):
    assert_bit_exact(runs[label], spec, schedule)


@pytest.mark.parametrize("label", BENCHMARK_CEILINGS)
def test_benchmark_instruction_count(runs, label):
    run = runs[label]
    print(f"{label}: {run.instructions} instructions, {run.instructions / run.output.size:.3f} per element")
    assert run.instructions <= BENCHMARK_CEILINGS[label]


def test_benchmarks_all_have_a_ceiling():
    assert [spec.label for spec in benchmark_specs()] == list(BENCHMARK_CEILINGS)


# ----------------------------------------------------------------------------------------
# Specs and schedules the codegen refuses

COPY = dict(shape=(1, 1, 1, 1, 4, 8), in_stride=(0, 0, 0, 0, 8, 1), out_stride=(0, 0, 0, 0, 8, 1), in_offset=0)
PAD = dict(in_dims=(1, 4, 4, 8), pad_before=(0, 1, 1, 0), pad_after=(0, 1, 1, 0), pad_value=-3)


def _flat(params):
    """The spec as the native module takes it (compiler/coral/codegen.py flattens tuples)."""
    out = {}
    for key, value in params.items():
        out.update({f"{key}_{i}": v for i, v in enumerate(value)} if isinstance(value, tuple) else {key: value})
    return out


@pytest.mark.parametrize("kernel, params", [("copy", COPY), ("pad", PAD)])
def test_default_schedule_is_valid_and_lmul_is_the_knob(kernel, params):
    schedule = _codegen.default_schedule(kernel, _flat(params), ISA)
    assert schedule["lmul"] == 8 and _codegen.validate(kernel, _flat(params), ISA, schedule) == ""
    assert _codegen.validate(kernel, _flat(params), ISA, {"lmul": 2}) == ""
    assert _codegen.validate(kernel, _flat(params), ISA, {"lmul": 3}) == "lmul 3 is not 1, 2, 4 or 8"
    assert _codegen.validate(kernel, _flat(params), ISA, {"loop_order": "px_oc"}) == "this kernel has no 'loop_order' knob"


@pytest.mark.parametrize("kernel, params, message", [
    ("copy", dict(COPY, out_stride=(0, 0, 0, 0, 4, 1)), "writes may overlap"),
    ("copy", dict(COPY, out_stride=(0, 0, 0, 0, 0, 1)), "writes may overlap"),
    ("copy", dict(COPY, shape=(1, 1, 1, 1, 0, 8)), "shape_4 = 0 outside [1, 2147483647]"),
    ("copy", dict(COPY, in_stride=(0, 0, 0, 0, -8, 1)), "in_stride_4 = -8 outside [0, 2147483647]"),
    ("copy", dict(COPY, shape=(1, 1, 1, 1, 2**16, 2**15), out_stride=(0, 0, 0, 0, 2**15, 1)),
     "more than 2^31 - 1 elements"),
    ("copy", dict(COPY, shape=(1, 1, 1, 1, 4, 8)) | {"in_stride": (0, 0, 0, 0, 2**30, 1)}, "offset beyond int32"),
    ("copy", dict(COPY, shape=(1, 1, 1, 1, 4, 8), in_offset=2**31 - 8), "offset beyond int32"),
    ("copy", dict(COPY, in_offset=-1), "in_offset = -1 outside [0, 2147483647]"),
    ("pad", dict(PAD, pad_value=128), "pad_value = 128 outside [-128, 127]"),
    ("pad", dict(PAD, pad_before=(0, -1, 1, 0)), "pad_before_1 = -1 outside [0, 2147483647]"),
    ("pad", dict(PAD, in_dims=(1, 2**16, 2**15, 1)), "more than 2^31 - 1 elements"),
])
def test_bad_spec_is_a_spec_error(kernel, params, message):
    with pytest.raises(_codegen.SpecError, match=message.replace("[", r"\[").replace("]", r"\]").replace("^", r"\^")):
        _codegen.emit(kernel, "bad", _flat(params), {}, ISA, None, True)
    with pytest.raises(_codegen.SpecError):
        _codegen.validate(kernel, _flat(params), ISA, None)


def test_missing_field_is_a_spec_error():
    params = _flat(COPY)
    del params["out_stride_5"]
    with pytest.raises(_codegen.SpecError, match="copy spec has no field 'out_stride_5'"):
        _codegen.emit("copy", "bad", params, {}, ISA, None, True)
