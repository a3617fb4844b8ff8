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
