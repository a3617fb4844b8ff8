"""compiler.coral.codegen, the typed wrapper of the C++ codegen, and the MAC kernels' schedule checks.

No simulator here: what the API promises (kernels, defaults, validation reasons, spec errors,
Emitted fields) and what the emitted C must hold (no vector-float intrinsics; every knob changes
the code). Bit-exactness in QEMU is tests/coral/test_kernels_mac.py.
"""

import re
from types import SimpleNamespace

import numpy as np
import pytest

from compiler.coral import codegen


def conv_params(h=8, w=8, c=16, o=16, k=3, stride=1, pad=1, groups=1, batches=1):
    out_h = (h + 2 * pad - k) // stride + 1
    out_w = (w + 2 * pad - k) // stride + 1
    return dict(batches=batches, in_h=h, in_w=w, in_c=c, out_h=out_h, out_w=out_w, out_c=o, kernel_h=k, kernel_w=k,
                stride_h=stride, stride_w=stride, dilation_h=1, dilation_w=1, pad_top=pad, pad_left=pad, groups=groups,
                input_zero_point=-3, output_zero_point=5, act_min=-128, act_max=127)


def conv_arrays(params, multiplier=1 << 30, shift=-8):
    o, k = params["out_c"], params["kernel_h"]
    weight = np.arange(o * k * k * (params["in_c"] // params["groups"])) % 255 - 127
    return dict(weight=weight.reshape(o, k, k, -1).astype(np.int8), bias=np.arange(o, dtype=np.int32) * 7,
                multiplier=np.full(o, multiplier, np.int32), shift=np.full(o, shift, np.int32))


def dense_params(batches=2, k=64, o=40):
    return dict(batches=batches, in_features=k, out_features=o, input_zero_point=1, output_zero_point=0,
                act_min=-128, act_max=127)


def dense_arrays(params):
    k, o = params["in_features"], params["out_features"]
    return dict(weight=(np.arange(o * k) % 200 - 100).reshape(o, k).astype(np.int8), bias=None,
                multiplier=np.full(o, 1 << 30, np.int32), shift=np.full(o, -9, np.int32))


# One spec per variant: pointwise on the GEMM, pointwise with few channels on the pixel engine,
# depthwise s1 / s2, first-layer conv, grouped conv, dense.
SPECS = {
    "pointwise-gemm": ("conv2d", conv_params(h=14, w=14, c=64, o=64, k=1, pad=0)),
    "pointwise-pixels": ("conv2d", conv_params(h=28, w=28, c=8, o=16, k=1, pad=0)),
    "depthwise-s1": ("conv2d", conv_params(h=28, w=28, c=32, o=32, groups=32)),
    "depthwise-s2": ("conv2d", conv_params(h=28, w=28, c=32, o=32, groups=32, stride=2)),
    "first-layer": ("conv2d", conv_params(h=32, w=32, c=3, o=8, stride=2)),
    "grouped": ("conv2d", conv_params(c=12, o=6, groups=3)),
    "dense": ("dense", dense_params()),
}


def arrays_for(kernel, params):
    return conv_arrays(params) if kernel == "conv2d" else dense_arrays(params)


def test_kernels_include_the_mac_kernels():
    assert {"conv2d", "dense"} <= set(codegen.kernels())


@pytest.mark.parametrize("variant", SPECS)
def test_default_schedule_is_valid_and_used(variant):
    kernel, params = SPECS[variant]
    schedule = codegen.default_schedule(kernel, params)
    assert set(schedule) == {"oc_tile", "px_tile", "lmul", "loop_order", "unroll", "weight_pack"}
    assert codegen.validate(kernel, params, schedule) == ""
    assert codegen.validate(kernel, params) == ""
    assert codegen.emit(kernel, "k", params, arrays_for(kernel, params)).schedule == schedule


@pytest.mark.parametrize("variant", SPECS)
@pytest.mark.parametrize("vector", [True, False])
def test_emitted_kernel(variant, vector):
    kernel, params = SPECS[variant]
    out = codegen.emit(kernel, "layer7", params, arrays_for(kernel, params), vector=vector)
    assert isinstance(out, codegen.Emitted)
    assert "void layer7(const int8_t* input, int8_t* output, int8_t* scratch)" in out.source
    assert out.source.count('section(".weights")') >= 2  # weights, bias at least
    weight_bytes = arrays_for(kernel, params)["weight"].size
    assert out.constant_bytes >= weight_bytes
    assert out.scratch_bytes >= 0
    # Zve32x has no vector floats: no float vector types or intrinsics, in either form.
    assert not re.search(r"vfloat|__riscv_vf|__riscv_vmf", out.source)
    assert ("riscv_vector.h" in out.source) == vector
    assert ("npu_requantize(" in out.source) == (not vector)


def test_pixel_engine_uses_scratch_and_gemm_does_not():
    gemm = codegen.emit("conv2d", "k", SPECS["pointwise-gemm"][1], conv_arrays(SPECS["pointwise-gemm"][1]))
    depthwise = codegen.emit("conv2d", "k", SPECS["depthwise-s1"][1], conv_arrays(SPECS["depthwise-s1"][1]))
    assert gemm.scratch_bytes == 0
    assert depthwise.scratch_bytes > 0


# Per knob, a valid schedule that changes it from the default (a smaller lmul needs a narrower
# channel tile on the GEMM): every knob must change the generated code.
KNOB_CHANGES = {
    "pointwise-gemm": dict(oc_tile=dict(oc_tile=16), px_tile=dict(px_tile=1), lmul=dict(lmul=4, oc_tile=16),
                           loop_order=dict(loop_order="px_oc"), unroll=dict(unroll=5), weight_pack=dict(weight_pack="i8")),
    "first-layer": dict(oc_tile=dict(oc_tile=1), px_tile=dict(px_tile=1), lmul=dict(lmul=4),
                        loop_order=dict(loop_order="px_oc"), unroll=dict(unroll=1), weight_pack=dict(weight_pack="i8")),
    "dense": dict(oc_tile=dict(oc_tile=8), px_tile=dict(px_tile=1), lmul=dict(lmul=2, oc_tile=8),
                  loop_order=dict(loop_order="px_oc"), unroll=dict(unroll=3), weight_pack=dict(weight_pack="i8")),
}


@pytest.mark.parametrize("variant, knob", [(v, k) for v, knobs in KNOB_CHANGES.items() for k in knobs])
def test_every_knob_changes_the_code(variant, knob):
    kernel, params = SPECS[variant]
    arrays = arrays_for(kernel, params)
    schedule = KNOB_CHANGES[variant][knob]
    assert codegen.default_schedule(kernel, params)[knob] != schedule[knob]
    assert codegen.validate(kernel, params, schedule) == ""
    changed = codegen.emit(kernel, "k", params, arrays, schedule=schedule)
    assert {key: changed.schedule[key] for key in schedule} == schedule
    assert changed.source != codegen.emit(kernel, "k", params, arrays).source


@pytest.mark.parametrize("variant, schedule, reason", [
    ("pointwise-gemm", dict(px_tile=4), "px_tile 4 x lmul 8 accumulators + 4 weight registers = 36 > 32 vector registers"),
    ("pointwise-gemm", dict(oc_tile=33), "oc_tile 33 is outside [1, 32] (int32 lanes at lmul 8)"),
    ("pointwise-gemm", dict(lmul=2, oc_tile=16), "oc_tile 16 is outside [1, 8] (int32 lanes at lmul 2)"),
    ("pointwise-gemm", dict(px_tile=0), "px_tile 0 is outside [1, 196] (the pixel count)"),
    ("pointwise-gemm", dict(unroll=65), "unroll 65 is outside [1, 64] (input channels)"),
    ("pointwise-gemm", dict(lmul=3), "lmul 3 is not 1, 2, 4 or 8"),
    ("pointwise-gemm", dict(loop_order="zigzag"), "loop_order 'zigzag' is not one of oc_px, px_oc"),
    ("pointwise-gemm", dict(weight_pack="i4"), "weight_pack 'i4' is not one of i16, i8"),
    ("dense", dict(oc_tile=41, lmul=8), "oc_tile 41 is outside [1, 32] (int32 lanes at lmul 8)"),
    ("first-layer", dict(oc_tile=3, px_tile=2),
     "oc_tile 3 x lmul 8 accumulators + input (and index) vectors = 36 > 32 vector registers"),
    ("first-layer", dict(oc_tile=9), "oc_tile 9 is outside [1, 8] (output channels per group)"),
    ("depthwise-s1", dict(unroll=2), "unroll 2 is outside [1, 1] (input channels per group)"),
    ("depthwise-s1", dict(oc_tile=2), "oc_tile 2 is outside [1, 1] (output channels per group)"),
    ("depthwise-s2", dict(px_tile=15), "px_tile 15 (output rows per band) is outside [1, 14]"),
])
def test_validate_rejects_with_a_reason(variant, schedule, reason):
    kernel, params = SPECS[variant]
    assert codegen.validate(kernel, params, schedule) == reason
    with pytest.raises(codegen.SpecError, match=re.escape(reason)):
        codegen.emit(kernel, "k", params, arrays_for(kernel, params), schedule=schedule)


def test_indexed_band_offsets_must_fit_16_bits():
    params = conv_params(h=120, w=120, c=64, o=64, groups=64)
    reason = codegen.validate("conv2d", params, dict(px_tile=8))
    assert reason == "px_tile 8: the band's window offsets exceed the 65535 bytes of 16-bit indices"


def test_unknown_knob_is_a_spec_error():
    kernel, params = SPECS["dense"]
    with pytest.raises(codegen.SpecError, match="unknown schedule knob 'tile'"):
        codegen.validate(kernel, params, {"tile": 4})
    with pytest.raises(codegen.SpecError, match="unknown schedule knob 'tile'"):
        codegen.emit(kernel, "k", params, dense_arrays(params), schedule={"tile": 4})


@pytest.mark.parametrize("change, arrays_change, message", [
    (dict(groups=5), {}, "conv2d groups 5 must divide in_c 16 and out_c 16"),
    (dict(stride_h=0), {}, "conv2d stride_h must be >= 1, got 0"),
    (dict(pad_left=-1), {}, "conv2d padding must be >= 0"),
    (dict(input_zero_point=128), {}, "conv2d input_zero_point 128 is outside [-128, 127]"),
    (dict(output_zero_point=-129), {}, "conv2d output_zero_point -129 is outside [-128, 127]"),
    (dict(act_min=10, act_max=9), {}, "conv2d act_min 10 > act_max 9"),
    (dict(kernel_h=17, kernel_w=16, pad_top=8, pad_left=8), {}, "conv2d kernel 17x16 has more than 256 taps"),
    (dict(batches=2**16, in_h=2**8, in_w=2**8), {}, "conv2d input has more than INT32_MAX elements"),
    ({}, dict(weight=np.zeros((16, 3, 3, 15), np.int8)), "array 'weight' has shape [16, 3, 3, 15], expected [16, 3, 3, 16]"),
    ({}, dict(weight=np.full((16, 3, 3, 16), 128)), "array 'weight' holds values outside int8"),
    ({}, dict(shift=np.full(16, 31, np.int32)), "shift[0] = 31 is outside [-31, 30]"),
    ({}, dict(multiplier=np.full(16, -1, np.int32)), "multiplier[0] is negative"),
    ({}, dict(bias=np.zeros(15, np.int32)), "array 'bias' has shape [15], expected [16]"),
    ({}, dict(multiplier=None), "missing constant array 'multiplier'"),
])
def test_spec_errors_name_the_problem(change, arrays_change, message):
    params = conv_params() | change
    arrays = conv_arrays(conv_params()) | arrays_change
    with pytest.raises(codegen.SpecError, match=re.escape(message)):
        codegen.emit("conv2d", "k", params, arrays)


def test_missing_field_is_a_spec_error():
    params = conv_params()
    del params["kernel_w"]
    with pytest.raises(codegen.SpecError, match="conv2d spec has no field 'kernel_w'"):
        codegen.default_schedule("conv2d", params)


def test_spec_error_is_a_value_error():
    assert issubclass(codegen.SpecError, ValueError)
    with pytest.raises(ValueError, match="no rvv kernel for 'log_softmax'"):
        codegen.default_schedule("log_softmax", {})


def test_per_tensor_requantisation_needs_no_constant_vectors():
    params = SPECS["pointwise-gemm"][1]
    per_tensor = conv_arrays(params) | dict(multiplier=np.array([1 << 30], np.int32), shift=np.array([-8], np.int32))
    per_channel = conv_arrays(params) | dict(multiplier=np.arange(64, dtype=np.int32) + (1 << 30))
    assert "_multiplier" not in codegen.emit("conv2d", "k", params, per_tensor).source
    assert "_multiplier" in codegen.emit("conv2d", "k", params, per_channel).source


def test_emit_int8_kernel_takes_a_lowered_match():
    kernel, params = SPECS["dense"]
    match = SimpleNamespace(kernel=kernel, params=params, arrays=dense_arrays(params))
    assert codegen.emit_int8_kernel(match, "fc").source == codegen.emit(kernel, "fc", params, match.arrays).source
