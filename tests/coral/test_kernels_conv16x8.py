"""The generated 16x8 kernels (cpp/src/conv16x8.cc: int16 activations x int8 weights) in QEMU on
coral-npu, bit for bit against the NumPy reference (compiler/quant/reference/conv16x8.py) and
kernels/ref (kernels/ref/conv16x8.c) on the same inputs:

- the random cases of tests/conv16x8_cases.py (groups 1, grouped, depthwise, depth multipliers;
  typical and extreme values), in the vector form and the portable C; the typical ones take the
  vector arithmetic (int32 sums, vmulh + vnclip or vsmul), the extreme ones (sums that may leave
  int32) the int64 loops inside the same kernel;
- both requantisation forms, and dense layers;
- layer figures: MACs per instruction of the vector kernel beside kernels/ref's.
"""

import numpy as np
import pytest
from conv16x8_cases import conv_cases, random_int16, random_requant

from compiler.coral import codegen
from compiler.coral.kernel_runner import KernelCase, run_kernel_cases
from compiler.coral.simulator import check_simulator_tools
from compiler.quant.reference import conv16x8 as ref


def conv_params(x, w, kwargs) -> dict:
    g = ref.validate_conv_geometry(x.shape, w.shape, stride=kwargs["stride"], dilation=kwargs["dilation"],
                                   padding=kwargs["padding"], groups=kwargs["groups"])
    n, h, wd, c = x.shape
    return dict(batches=n, in_h=h, in_w=wd, in_c=c, out_h=g.out_h, out_w=g.out_w, out_c=w.shape[0],
                kernel_h=w.shape[1], kernel_w=w.shape[2], stride_h=g.stride[0], stride_w=g.stride[1],
                dilation_h=g.dilation[0], dilation_w=g.dilation[1], pad_top=g.padding[0], pad_left=g.padding[1],
                groups=g.groups, act_min=kwargs["act_min"], act_max=kwargs["act_max"])


def conv_case(x, w, bias, kwargs, **how) -> KernelCase:
    arrays = dict(weight=w, bias=bias, multiplier=np.broadcast_to(kwargs["multiplier"], w.shape[:1]),
                  shift=np.broadcast_to(kwargs["shift"], w.shape[:1]))
    want_shape = ref.conv2d_s16x8(x, w, bias, **kwargs).shape
    return KernelCase("conv2d_s16x8", conv_params(x, w, kwargs), arrays, [x], want_shape, output_dtype="int16", **how)


def vector_arithmetic(case: KernelCase) -> bool:
    """The vector form's source sums in int32 lanes (not the int64 loops)."""
    return "vwmacc" in codegen.emit(case.kernel, "k", case.params, case.arrays).source


def test_random_convolutions_match_the_references(tmp_path):
    check_simulator_tools()
    cases = conv_cases(8400, 36)
    runs = run_kernel_cases([conv_case(*c, vector=v) for c in cases for v in (True, False)]
                            + [conv_case(*c, reference=True) for c in cases], tmp_path, progress=False)
    vector, portable, reference = runs[0:2 * len(cases):2], runs[1:2 * len(cases):2], runs[2 * len(cases):]
    forms = []
    for (x, w, bias, kwargs), ours, plain, theirs in zip(cases, vector, portable, reference):
        want = ref.conv2d_s16x8(x, w, bias, **kwargs)
        label = f"x{x.shape} w{w.shape} groups {kwargs['groups']}"
        np.testing.assert_array_equal(theirs.output, want, err_msg=f"kernels/ref {label}")
        np.testing.assert_array_equal(ours.output, want, err_msg=f"vector {label}")
        np.testing.assert_array_equal(plain.output, want, err_msg=f"portable {label}")
        forms.append(vector_arithmetic(conv_case(x, w, bias, kwargs)))
    assert any(forms) and not all(forms), forms  # both the int32 vector sums and the int64 loops ran
    assert any(kwargs["groups"] == x.shape[3] == w.shape[0] and form  # depthwise on vectors
               for (x, w, _, kwargs), form in zip(cases, forms))


def layer(rng, h, c, o, k, groups, shift):
    """A typical layer with every shift `shift` (the requantisation form follows from it)."""
    x = random_int16(rng, (1, h, h, c), False)
    w = rng.integers(-100, 101, size=(o, k, k, c // groups), dtype=np.int8)
    multiplier, _, bias, _, _ = random_requant(rng, o, k * k * c // groups, False)
    kwargs = dict(stride=(1, 1), dilation=(1, 1), padding=(k // 2,) * 4, groups=groups, multiplier=multiplier,
                  shift=np.full(o, shift), act_min=-32768, act_max=32767)
    return x, w, bias, kwargs


@pytest.mark.parametrize("shift, form", [(-9, "vmulh"), (-2, "vmulh"), (-1, "vsmul"), (0, "vsmul")])
def test_each_requantisation_form(shift, form, tmp_path):
    """vmulh + vnclip where every total shift 15 - shift is >= 17, else vsmul (total shifts 15..31); both
    exact against the reference, clamps included."""
    check_simulator_tools()
    rng = np.random.default_rng(8500 + shift)
    x, w, bias, kwargs = layer(rng, 5, 12, 20, 3, 1, shift)
    kwargs.update(act_min=-20000, act_max=25000)
    source = codegen.emit("conv2d_s16x8", "k", conv_case(x, w, bias, kwargs).params,
                          conv_case(x, w, bias, kwargs).arrays).source
    assert f"__riscv_{form}" in source
    (run,) = run_kernel_cases([conv_case(x, w, bias, kwargs)], tmp_path, progress=False)
    np.testing.assert_array_equal(run.output, ref.conv2d_s16x8(x, w, bias, **kwargs))


def test_dense_layers_match_the_reference(tmp_path):
    check_simulator_tools()
    rng = np.random.default_rng(8600)
    rows = []
    for i, (n, k, o) in enumerate([(1, 64, 10), (3, 300, 33), (2, 7, 1), (1, 1280, 40)]):
        x = random_int16(rng, (n, k), i == 2)
        w = rng.integers(-128, 128, size=(o, k), dtype=np.int8)
        multiplier, shift, bias, act_min, act_max = random_requant(rng, o, k, i == 2)
        kwargs = dict(multiplier=multiplier, shift=shift, act_min=act_min, act_max=act_max)
        arrays = dict(weight=w, bias=bias, multiplier=multiplier, shift=shift)
        params = dict(batches=n, in_features=k, out_features=o, act_min=act_min, act_max=act_max)
        rows.append((KernelCase("dense_s16x8", params, arrays, [x], (n, o), output_dtype="int16"),
                     ref.dense_s16x8(x, w, bias, **kwargs)))
    runs = run_kernel_cases([case for case, _ in rows], tmp_path, progress=False)
    for (case, want), run in zip(rows, runs):
        np.testing.assert_array_equal(run.output, want, err_msg=str(case.params))


# (label, size, in_c, out_c, kernel, groups, MACs per instruction measured when the kernel was written:
# 6.21, 6.57 and 3.12; kernels/ref 0.075, 0.090 and 0.021). The test demands 90% of each, so that a
# change that slows a kernel down shows.
BENCHMARKS = [("pointwise 14x14 64->64", 14, 64, 64, 1, 1, 6.21), ("conv 3x3 14x14 32->32", 14, 32, 32, 3, 1, 6.57),
              ("depthwise 3x3 28x28x64", 28, 64, 64, 3, 64, 3.12)]


def test_layer_figures(tmp_path):
    """MACs per instruction of the vector kernel on typical layers, beside kernels/ref's (printed)."""
    check_simulator_tools()
    rng = np.random.default_rng(8700)
    layers = [layer(rng, h, c, o, k, groups, -12) for _, h, c, o, k, groups, _ in BENCHMARKS]
    runs = run_kernel_cases([conv_case(*l) for l in layers] + [conv_case(*l, reference=True) for l in layers],
                            tmp_path, progress=False)
    for (label, h, c, o, k, groups, measured), (x, w, bias, kwargs), ours, theirs in zip(BENCHMARKS, layers, runs,
                                                                                      runs[len(layers):]):
        np.testing.assert_array_equal(ours.output, ref.conv2d_s16x8(x, w, bias, **kwargs))
        macs = h * h * o * k * k * c // groups
        print(f"{label}: {macs / ours.instructions:.2f} MACs/instruction, kernels/ref {macs / theirs.instructions:.3f}")
        assert macs / ours.instructions >= 0.9 * measured, label


def rescale_cases(rng):
    """(kernel, params, input, want) for the int8 <-> int16 rescales: sizes around the vectors, zero points
    at both ends, the exact widening by 128, saturating and tiny multipliers, narrow clamps."""
    rows = []
    for i, size in enumerate([1, 7, 64, 200, 1031]):
        x8 = rng.integers(-128, 128, size, dtype=np.int8)
        zp = [-128, 127, 0, -3, 5][i]
        multiplier, shift = [(1 << 30, 8), (0x7FFFFFFF, 30), (1 << 30, -20), (0x5A827999, 3), (1 << 30, 8)][i]
        low, high = [(-32768, 32767), (-32768, 32767), (-32768, 32767), (-1000, 20000), (-50, 50)][i]
        kwargs = dict(multiplier=multiplier, shift=shift, act_min=low, act_max=high)
        rows.append(("requantize_s8_s16", dict(size=size, input_zero_point=zp, output_zero_point=0, **kwargs), x8,
                     ref.requantize_s8_s16(x8, input_zero_point=zp, **kwargs)))
        x16 = random_int16(rng, (size,), i % 2 == 1)
        multiplier, shift = [(1 << 30, 0), (0x7FFFFFFF, -31), (0x7FFFFFFF, 30), (0x5A827999, -7), (1 << 30, -6)][i]
        low, high = [(0, 0), (-128, 127), (-128, 127), (-20, 100), (-128, 127)][i]
        kwargs = dict(multiplier=multiplier, shift=shift, act_min=low, act_max=high)
        rows.append(("requantize_s16_s8", dict(size=size, input_zero_point=0, output_zero_point=zp, **kwargs), x16,
                     ref.requantize_s16_s8(x16, output_zero_point=zp, **kwargs)))
    return rows


def test_int8_int16_rescales_match_the_references(tmp_path):
    """The rescales around a 16x8 layer, generated (vector and portable) and kernels/ref, against NumPy;
    the widening by exactly 128 is lossless (every int8 value comes back from int16). Measured at 1031
    elements: 0.19 instructions per element widening (the table), 0.58 narrowing (kernels/ref ~10)."""
    check_simulator_tools()
    rows = rescale_cases(np.random.default_rng(8800))
    out_dtype = {"requantize_s8_s16": "int16", "requantize_s16_s8": "int8"}
    cases = [KernelCase(kernel, params, {}, [x], want.shape, output_dtype=out_dtype[kernel], vector=vector,
                        reference=reference)
             for vector, reference in ((True, False), (False, False), (True, True)) for kernel, params, x, want in rows]
    runs = run_kernel_cases(cases, tmp_path, progress=False)
    for case, run in zip(cases, runs):
        want = next(w for k, p, _, w in rows if k == case.kernel and p == case.params)
        np.testing.assert_array_equal(run.output, want, err_msg=f"{case.kernel} {case.params} vector={case.vector} "
                                                                 f"reference={case.reference}")
    x8 = np.arange(-128, 128, dtype=np.int8)
    wide = ref.requantize_s8_s16(x8, input_zero_point=-3, multiplier=1 << 30, shift=8)  # x 128
    back = ref.requantize_s16_s8(wide, output_zero_point=-3, multiplier=1 << 30, shift=-6)  # / 128
    np.testing.assert_array_equal(back, x8)
    big = [run for case, run in zip(cases, runs) if case.params["size"] == 1031 and case.vector and not case.reference]
    print("instructions per element, 1031 elements:", [round(run.instructions / 1031, 2) for run in big])
    assert big[0].instructions < 0.25 * 1031 and big[1].instructions < 0.7 * 1031  # the vector loops
