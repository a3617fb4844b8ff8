"""Generated resize_nearest and resize_bilinear kernels in QEMU, bit-exact to kernels/ref.

Seeded random specs: up- and downsampling by integer and non-integer ratios, 1-pixel inputs and
outputs, every TFLite flag combination and ONNX coordinate / rounding mode, channel counts from 1
to beyond one vector (odd tails, every gather element width), extreme values; bilinear tables
beyond TFLite's too (fractions outside [0, 1024]: extrapolation that saturates, and the int64 path
for weights whose sums may pass int32). Each spec runs as portable C and as RVV code at two LMULs
(nearest: both loop orders); a few run kernels/ref itself, built for the NPU. The reference is
compiler.quant._ref_resize: kernels/ref compiled for the host. All cases go through one
run of the kernel runner, and each is its own test.
"""

import re

import numpy as np
import pytest
from kernel_testing import assert_bit_exact, run_cases
from resize_cases import Spec, benchmark_specs, specs

from compiler.coral import _codegen, codegen
from compiler.quant.reference import resize as R

ISA = codegen.isa()  # coral-npu's [isa]: what the native calls below emit for

def _variants(number, spec):
    """(label, schedule, vector, reference): portable C per loop order, RVV at two LMULs per loop
    order (those the gather allows), and (every 7th spec) kernels/ref itself."""
    for order in ("px_oc", "oc_px"):
        yield f"{spec.label}-{order}-c", {"loop_order": order, "lmul": 1}, False, False  # lmul: any the gather allows
        for lmul in (2 ** (number % 4), 2 ** ((number + 2) % 4)):
            schedule = {"loop_order": order, "lmul": lmul}
            if _codegen.validate(spec.kernel, spec.params, ISA, schedule) == "":
                yield f"{spec.label}-{order}-m{lmul}", schedule, True, False
    if number % 7 == 0:
        yield f"{spec.label}-ref", None, False, True


# 28x28x32 -> 56x56x32 with the default schedules: instruction ceilings (measured + ~5%), so that a
# change that slows a kernel down shows; the measured figures are in cpp/src/resize.cc.
BENCHMARK_CEILINGS = {"nearest 28x28x32 -> 56x56x32 (half_pixel)": 6_200,
                      "nearest 28x28x32 -> 56x56x32 (half_pixel, px_oc)": 16_500,
                      "bilinear 28x28x32 -> 56x56x32 (half_pixel)": 55_800}


def _benchmark_cases():
    nearest, bilinear = benchmark_specs()
    px_oc = Spec("nearest 28x28x32 -> 56x56x32 (half_pixel, px_oc)", "resize_nearest", nearest.x, nearest.arrays)
    return [(nearest.label, nearest, None, True, False), (px_oc.label, px_oc, {"loop_order": "px_oc"}, True, False),
            (bilinear.label, bilinear, None, True, False)]


CASES = [(label, spec, schedule, vector, reference) for number, spec in enumerate(specs())
         for label, schedule, vector, reference in _variants(number, spec)]
CASES += _benchmark_cases()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every case, run in one go: label -> KernelRun."""
    return run_cases(CASES, tmp_path_factory.mktemp("resize"), lambda spec: spec.arrays, lambda spec: [spec.x])


@pytest.mark.parametrize("label, spec, schedule, vector, reference", CASES, ids=[case[0] for case in CASES])
def test_bit_exact_to_reference(runs, label, spec, schedule, vector, reference):
    assert_bit_exact(runs[label], spec, schedule)


@pytest.mark.parametrize("label", BENCHMARK_CEILINGS)
def test_benchmark_instruction_count(runs, label):
    run = runs[label]
    print(f"{label}: {run.instructions} instructions, {run.instructions / run.output.size:.3f} per element")
    assert 0 < run.instructions <= BENCHMARK_CEILINGS[label]


def test_the_cases_cover_every_path():
    """Every branch of the emitters is in the vector cases: both loop orders at every gather element
    width, runs stored twice and copied, channels beyond a vector, bilinear's periodic stretches,
    row pairs, column runs, the shift for fraction 0, the int64 fallback, saturating extrapolation;
    and kernels/ref runs on the NPU for both kernels."""
    sources = {kernel: [] for kernel in ("resize_nearest", "resize_bilinear")}
    for label, spec, schedule, vector, reference in CASES:
        if vector:
            sources[spec.kernel].append(_codegen.emit(spec.kernel, "k", spec.params, spec.arrays, ISA, schedule)["source"])
    nearest, bilinear = "\n".join(sources["resize_nearest"]), "\n".join(sources["resize_bilinear"])
    for element in ("vluxei16_v_i32", "vluxei16_v_i16", "vluxei16_v_i8"):
        assert element in nearest
    for fragment in ("if (rows == 2) __riscv_vse", "copies", "c += vl", "vle8_v_i8m1(pixel, vl)"):
        assert fragment in nearest, fragment
    for fragment in ("periods of", "if (pairs)", "k_columns", "__riscv_vsll_vx", "c += vl", "vluxei16_v_i32",
                     "k_store2(output, output + ", "c += 2 * vl", "- vl, k_sum(", "1024 * r0 + fx"):
        assert fragment in bilinear, fragment
    labels = [case[1].label for case in CASES if case[1].kernel == "resize_bilinear"]
    assert any("wide" in label for label in labels) and any("extrapolating" in label for label in labels)
    assert any(case[4] for case in CASES if case[1].kernel == "resize_nearest")
    assert any(case[4] for case in CASES if case[1].kernel == "resize_bilinear")


# ----------------------------------------------------------------------------------------
# Schedules and spec errors (no simulator)


PARAMS = dict(batches=1, in_h=4, in_w=5, channels=8, out_h=8, out_w=10)


def _nearest_arrays(params=PARAMS):
    return dict(y_index=R.tflite_nearest_index(params["in_h"], params["out_h"]),
                x_index=R.tflite_nearest_index(params["in_w"], params["out_w"]))


def _bilinear_arrays(params=PARAMS):
    return dict(y_lerp=R.tflite_bilinear_tables(params["in_h"], params["out_h"]),
                x_lerp=R.tflite_bilinear_tables(params["in_w"], params["out_w"]))


@pytest.mark.parametrize("kernel", ["resize_nearest", "resize_bilinear"])
def test_default_schedule_is_valid(kernel):
    assert _codegen.validate(kernel, PARAMS, ISA, _codegen.default_schedule(kernel, PARAMS, ISA)) == ""


def test_nearest_default_loop_order():
    """oc_px (the gather) where it takes fewer instructions and its offset table is small."""
    assert _codegen.default_schedule("resize_nearest", PARAMS, ISA)["loop_order"] == "oc_px"
    assert _codegen.default_schedule("resize_nearest", PARAMS | dict(channels=256), ISA)["loop_order"] == "px_oc"
    wide_row = PARAMS | dict(out_w=512, channels=16)  # 2048 offsets of 4 bytes: 4 KB at 16 bits
    assert _codegen.default_schedule("resize_nearest", wide_row, ISA)["loop_order"] == "oc_px"
    assert _codegen.default_schedule("resize_nearest", wide_row | dict(out_w=520), ISA)["loop_order"] == "px_oc"
    # 1-byte elements with 16-bit offsets: the offsets need twice the registers, so LMUL 4 at most
    few = _codegen.default_schedule("resize_nearest", PARAMS | dict(channels=3), ISA)
    assert (few["loop_order"], few["lmul"]) == ("oc_px", 4)


def test_bilinear_default_loop_order():
    """oc_px (indexed loads over the row's elements) for few channels, px_oc (pixel by pixel) for many."""
    assert _codegen.default_schedule("resize_bilinear", PARAMS | dict(channels=3), ISA)["loop_order"] == "oc_px"
    assert _codegen.default_schedule("resize_bilinear", PARAMS | dict(channels=32), ISA)["loop_order"] == "px_oc"
    # 3 channels of 1000 pixels: 18 KB of per-element tables, beyond the 4 KB cap
    assert _codegen.default_schedule("resize_bilinear", PARAMS | dict(channels=3, out_w=1000), ISA)["loop_order"] == "px_oc"


@pytest.mark.parametrize("kernel, params, schedule, reason", [
    ("resize_nearest", PARAMS, {"lmul": 3}, "lmul 3 is not 1, 2, 4 or 8"),
    ("resize_nearest", PARAMS, {"loop_order": "zigzag"}, "loop_order 'zigzag' is not oc_px or px_oc"),
    ("resize_nearest", PARAMS, {"px_tile": 2}, "this kernel has no 'px_tile' knob"),
    ("resize_nearest", PARAMS | dict(channels=3), {"loop_order": "oc_px", "lmul": 8},
     "lmul 8: the gather's 16-bit offsets of 8-bit elements would need LMUL 16 > 8"),
    ("resize_nearest", PARAMS | dict(in_w=20000, channels=6), {"loop_order": "oc_px", "lmul": 8},
     "lmul 8: the gather's 32-bit offsets of 16-bit elements would need LMUL 16 > 8"),
    ("resize_nearest", PARAMS | dict(in_w=20000, channels=6), {"loop_order": "oc_px", "lmul": 4}, ""),
    ("resize_bilinear", PARAMS, {"unroll": 2}, "this kernel has no 'unroll' knob"),
    ("resize_bilinear", PARAMS, {"loop_order": "zigzag"}, "loop_order 'zigzag' is not oc_px or px_oc"),
    ("resize_bilinear", PARAMS, {"lmul": 16}, "lmul 16 is not 1, 2, 4 or 8"),
])
def test_validate_rejects_with_a_reason(kernel, params, schedule, reason):
    assert _codegen.validate(kernel, params, ISA, schedule) == reason


@pytest.mark.parametrize("kernel, change, arrays, message", [
    ("resize_nearest", {"in_h": 0}, None, "in_h = 0 outside [1, 2147483647]"),
    ("resize_nearest", {"channels": -1}, None, "channels = -1 outside [0, 2147483647]"),
    ("resize_nearest", {"batches": 2**16, "out_h": 2**8, "out_w": 2**8, "channels": 2}, None,
     "tensor larger than 2^31 elements"),
    ("resize_nearest", {"out_h": 9}, None, "array 'y_index' must have shape [9]"),
    ("resize_nearest", {}, dict(y_index=np.full(8, 4), x_index=np.zeros(10)), "y_index holds index 4 outside [0, 4)"),
    ("resize_nearest", {}, dict(y_index=np.zeros(8)), "missing constant array 'x_index'"),
    ("resize_bilinear", {"out_w": 3}, None, "array 'x_lerp' must have shape [3, 3]"),
    ("resize_bilinear", {}, dict(y_lerp=np.tile([0, 4, 0], (8, 1)), x_lerp=np.zeros((10, 3))),
     "y_lerp holds index 4 outside [0, 4)"),
    ("resize_bilinear", {}, dict(y_lerp=np.tile([0, 1, -2049], (8, 1)), x_lerp=np.zeros((10, 3))),
     "y_lerp holds fraction -2049 outside [-2048, 2048]"),
])
def test_spec_errors_name_the_field(kernel, change, arrays, message):
    params = PARAMS | change
    if arrays is None:
        arrays = _nearest_arrays() if kernel == "resize_nearest" else _bilinear_arrays()
    with pytest.raises(ValueError, match=re.escape(message)):
        _codegen.emit(kernel, "k", params, arrays, ISA)


def test_scratch_and_constants():
    """Bilinear: int32 rows of R over the columns read, in scratch (two when some output rows come in
    pairs); nearest: none. A 4x downsample with half pixels reads half the columns, in runs of 2."""
    nearest = _codegen.emit("resize_nearest", "k", PARAMS, _nearest_arrays(), ISA)
    assert nearest["scratch_bytes"] == 0 and nearest["constant_bytes"] > 0
    row = 4 * PARAMS["in_w"] * PARAMS["channels"]
    singles = dict(y_lerp=np.int32([[y % 3, y % 3 + 1, 100 * y] for y in range(8)]),  # no two rows alike
                   x_lerp=R.tflite_bilinear_tables(5, 10))
    assert _codegen.emit("resize_bilinear", "k", PARAMS, singles, ISA)["scratch_bytes"] == row
    pairs = _bilinear_arrays()  # asymmetric 4 -> 8: the last two rows both read row 3 only
    assert _codegen.emit("resize_bilinear", "k", PARAMS, pairs, ISA)["scratch_bytes"] == 2 * row
    down = dict(PARAMS, in_w=16, out_w=4)
    tables = dict(singles, x_lerp=R.tflite_bilinear_tables(16, 4, half_pixel_centers=True))
    emitted = _codegen.emit("resize_bilinear", "k", down, tables, ISA)
    assert emitted["scratch_bytes"] == 4 * 8 * PARAMS["channels"]
    assert "k_columns[8]" in emitted["source"]  # {1, 2}, {5, 6}, {9, 10}, {13, 14}
