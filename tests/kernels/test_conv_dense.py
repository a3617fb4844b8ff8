"""INT8 conv2d / dense: the NumPy reference and the C reference kernels agree bit for bit.

- C (kernels/ref via compiler.quant._ref_conv) == NumPy (compiler.quant.reference) exactly, on
  randomised cases (seeded): odd shapes, every padding, strides, dilations, groups and
  depthwise multipliers, extreme zero points, weights, inputs, multipliers and clamps.
- The NumPy reference is the right op: against an independent float64 computation (im2col,
  and TFLite's own depthwise channel indexing) it is within 1 LSB everywhere and exact almost
  everywhere (the fixed-point arithmetic rounds twice, float rounds once).
- Both implementations reject the same malformed arguments with ValueError.
- Every rounding of the spec (fixed_point.ROUNDINGS: once for ONNX models, twice for TFLite ones)
  is exercised on the random cases.
"""

import itertools

import numpy as np
import pytest

from compiler.quant import _ref_conv as c_ref
from compiler.quant import reference as np_ref
from compiler.quant.fixed_point import quantize_multiplier

IMPLS = {"numpy": np_ref, "c": c_ref}

# Real multipliers s_in * s_w / s_out: flushed to zero (< 2**-32), tiny, typical, exactly 0.5 and ~1,
# above 1 (positive shifts), and huge enough that the saturating left shift is exercised.
REAL_MULTIPLIERS = [1e-10, 1e-9, 2.5e-7, 3e-5, 0.5, 0.9999999, 1.0, 3.7, 100.0, 1e6]
SIZES = [1, 3, 7, 13]
ZERO_POINTS = [-128, 127, 0]


# ----------------------------------------------------------------------------------------------
# Random cases
#
# Shapes, strides, dilations, paddings and groups are drawn the same way for every case; values
# follow one of two profiles: "typical" (calibrated multipliers, so outputs spread over the int8
# range and most of the arithmetic is exercised) or "extreme" (saturating inputs, weights at +-127,
# zero points at -128/127/0, flushed / tiny / > 1 / huge multipliers, huge biases, narrow clamps).


def pick(rng, options):
    return options[int(rng.integers(len(options)))]


def random_int8(rng, shape, mode):
    if mode == "min":
        return np.full(shape, -128, np.int8)
    if mode == "max":
        return np.full(shape, 127, np.int8)
    if mode == "extremes":
        return rng.choice(np.array([-128, 127], np.int8), size=shape)
    return rng.integers(-128, 128, size=shape, dtype=np.int8)


def random_weights(rng, shape, extreme):
    mode = pick(rng, ["uniform", "pm127", "+127", "-127", "full"] if extreme else ["uniform"])
    if mode == "pm127":
        return rng.choice(np.array([-127, 127], np.int8), size=shape)
    if mode in ("+127", "-127"):
        return np.full(shape, int(mode), np.int8)
    low = -128 if mode == "full" else -127
    return rng.integers(low, 128, size=shape, dtype=np.int8)


def random_zero_point(rng, extreme):
    return pick(rng, ZERO_POINTS) if extreme and rng.random() < 0.7 else int(rng.integers(-100, 101))


def typical_acc(taps, input_zero_point):
    """Rough std of a sum of `taps` products (x - input_zero_point) * w of uniform int8 values."""
    return np.sqrt(taps) * np.hypot(74.0, input_zero_point) * 73.0


def random_requant(rng, channels, typical, extreme):
    """multiplier, shift arrays for accumulators of about +-typical.

    typical: calibrated per channel (real multiplier ~ 40 / typical, outputs spread over the int8 range),
    per tensor ([1]) a third of the time. extreme: REAL_MULTIPLIERS, one for all channels, mixed per
    channel, or per tensor.
    """
    if not extreme:
        reals = list(40.0 / typical * 10.0 ** rng.uniform(-0.7, 0.7, size=1 if rng.random() < 0.3 else channels))
    elif (mode := pick(rng, ["one", "mixed", "per_tensor"])) == "mixed":
        reals = [pick(rng, REAL_MULTIPLIERS) for _ in range(channels)]
    else:
        reals = [pick(rng, REAL_MULTIPLIERS)] * (1 if mode == "per_tensor" else channels)
    pairs = [quantize_multiplier(r) for r in reals]
    return np.array([m for m, _ in pairs], np.int32), np.array([s for _, s in pairs], np.int32)


def random_act_range(rng, output_zero_point, extreme):
    mode = pick(rng, ["full", "relu", "relu6", "narrow"] if extreme else ["full", "full", "relu", "relu6"])
    if mode == "relu":
        return output_zero_point, 127
    if mode == "relu6":
        return output_zero_point, min(127, output_zero_point + int(rng.integers(0, 120)))
    if mode == "narrow":
        low = int(rng.integers(-128, 128))
        return low, int(rng.integers(low, 128))
    return -128, 127


def random_bias(rng, channels, typical, extreme):
    """None, or int32 [channels] of the accumulator's size, or huge (saturating) in the extreme profile."""
    mode = pick(rng, ["none", "typical", "huge"] if extreme else ["none", "typical", "typical"])
    if mode == "none":
        return None
    bound = 2**26 if mode == "huge" else max(1, int(typical))
    return rng.integers(-bound, bound + 1, size=channels).astype(np.int32)


def random_values(rng, x_shape, w_shape, taps, extreme):
    """x, w, bias and the value kwargs (zero points, requantisation, clamp) of one case."""
    x = random_int8(rng, x_shape, pick(rng, ["uniform", "min", "max", "extremes"]) if extreme else "uniform")
    w = random_weights(rng, w_shape, extreme)
    input_zero_point, output_zero_point = random_zero_point(rng, extreme), random_zero_point(rng, extreme)
    typical = typical_acc(taps, input_zero_point)
    multiplier, shift = random_requant(rng, w_shape[0], typical, extreme)
    act_min, act_max = random_act_range(rng, output_zero_point, extreme)
    kwargs = dict(input_zero_point=input_zero_point, output_zero_point=output_zero_point, multiplier=multiplier,
                  shift=shift, act_min=act_min, act_max=act_max)
    return x, w, random_bias(rng, w_shape[0], typical, extreme), kwargs


def random_conv_case(rng, extreme):
    """(x, w, bias, kwargs) for conv2d_s8 with a non-empty output."""
    n = pick(rng, [1, 1, 2])
    h, w_ = (pick(rng, SIZES) if rng.random() < 0.7 else int(rng.integers(1, 14)) for _ in range(2))
    kind = pick(rng, ["plain", "plain", "grouped", "depthwise1", "depthwise2", "pointwise"])
    if kind == "grouped":
        groups = pick(rng, [2, 3])
        c = groups * pick(rng, [1, 2, 3])
        o = groups * pick(rng, [1, 2])
    elif kind.startswith("depthwise"):
        c = pick(rng, [1, 3, 7, 8])
        groups, o = c, c * int(kind[-1])
    else:
        groups = 1
        c = pick(rng, [1, 3, 7, 13]) if rng.random() < 0.7 else int(rng.integers(1, 17))
        o = pick(rng, [1, 2, 5, 8])
    kh, kw = (1, 1) if kind == "pointwise" else (pick(rng, [1, 2, 3, 3, 5]) for _ in range(2))
    stride = tuple(int(v) for v in rng.integers(1, 4, size=2))
    dilation = tuple(int(v) for v in rng.integers(1, 3, size=2))
    # Padding per side: none, up to the kernel's reach, or beyond it (whole rows of pure padding).
    padding = []
    for reach in (dilation[0] * (kh - 1), dilation[1] * (kw - 1)) * 2:
        padding.append(pick(rng, [0, int(rng.integers(0, reach + 1)), reach + int(rng.integers(1, 3))]))
    pt, pl, pb, pr = padding
    # Grow the input until the output is non-empty (a too-large dilated kernel would leave nothing).
    while np_ref.conv2d_output_size(h, kh, stride[0], dilation[0], pt, pb) < 1:
        h += 1
    while np_ref.conv2d_output_size(w_, kw, stride[1], dilation[1], pl, pr) < 1:
        w_ += 1
    x, w, bias, kwargs = random_values(rng, (n, h, w_, c), (o, kh, kw, c // groups), kh * kw * (c // groups), extreme)
    return x, w, bias, dict(stride=stride, dilation=dilation, padding=tuple(padding), groups=groups, **kwargs)


def random_dense_case(rng, extreme):
    n = pick(rng, [1, 2, 3, 7])
    k = pick(rng, [1, 3, 7, 13, 64, 257])
    o = pick(rng, [1, 2, 5, 13, 32])
    return random_values(rng, (n, k), (o, k), k, extreme)


def describe(x, w, kwargs):
    shown = {k: v for k, v in kwargs.items() if k not in ("multiplier", "shift")}
    return f"x{x.shape} w{w.shape} {shown} shift={np.asarray(kwargs['shift']).tolist()}"


# ----------------------------------------------------------------------------------------------
# Independent float64 oracle: exact integer accumulators, one rounding of acc * M


def real_multipliers(multiplier, shift, channels):
    """The exact real value of each (multiplier, shift) pair, broadcast to [channels]."""
    m = np.asarray(multiplier, np.float64) * np.exp2(np.asarray(shift, np.float64) - 31)
    return np.broadcast_to(m, (channels,))


def float_requantize(acc, kwargs, channels):
    scaled = np.round(acc * real_multipliers(kwargs["multiplier"], kwargs["shift"], channels))
    return np.clip(scaled + kwargs["output_zero_point"], kwargs["act_min"], kwargs["act_max"])


def float_conv_acc(x, w, bias, kwargs):
    """conv accumulator by im2col in float64 on the zero-point-padded input (exact: all integers < 2**53)."""
    (sh, sw), (dh, dw), (pt, pl, pb, pr) = kwargs["stride"], kwargs["dilation"], kwargs["padding"]
    groups, zp = kwargs["groups"], kwargs["input_zero_point"]
    o, kh, kw, cg = w.shape
    padded = np.pad(x.astype(np.float64), ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=zp) - zp
    out_h = (padded.shape[1] - dh * (kh - 1) - 1) // sh + 1
    out_w = (padded.shape[2] - dw * (kw - 1) - 1) // sw + 1
    windows = np.lib.stride_tricks.sliding_window_view(padded, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), axis=(1, 2))
    windows = windows[:, : (out_h - 1) * sh + 1 : sh, : (out_w - 1) * sw + 1 : sw, :, ::dh, ::dw]
    patches = windows.transpose(0, 1, 2, 4, 5, 3)  # [N, out_h, out_w, kh, kw, C]
    n, c = x.shape[0], x.shape[3]
    if groups == c and cg == 1:
        # Depthwise the TFLite way: filter [1, kh, kw, O], output channel ic * multiplier + m reads input ic.
        depth_multiplier = o // c
        tfl_filter = w.astype(np.float64).transpose(3, 1, 2, 0)[0]  # [kh, kw, O]
        acc = np.zeros((n, out_h, out_w, o))
        for ic in range(c):
            for m in range(depth_multiplier):
                oc = ic * depth_multiplier + m
                acc[..., oc] = np.einsum("nhwyx,yx->nhw", patches[..., ic], tfl_filter[:, :, oc])
    else:
        og = o // groups
        acc = np.concatenate(
            [patches[..., g * cg : (g + 1) * cg].reshape(n, out_h, out_w, -1)
             @ w[g * og : (g + 1) * og].astype(np.float64).reshape(og, -1).T for g in range(groups)],
            axis=-1)
    return acc if bias is None else acc + bias


def float_dense_acc(x, w, bias, kwargs):
    """dense accumulator in float64 (exact: all integers < 2**53)."""
    acc = (x.astype(np.float64) - kwargs["input_zero_point"]) @ w.astype(np.float64).T
    return acc if bias is None else acc + bias


def assert_close_to_float(actual, expected, context):
    diff = np.abs(actual.astype(np.int64) - expected.astype(np.int64))
    assert diff.max(initial=0) <= 1, f"{context}: off by {diff.max()} LSB"
    return int(np.count_nonzero(diff)), diff.size


# ----------------------------------------------------------------------------------------------
# C == NumPy, bit for bit


PROFILES = {"typical": False, "extreme": True}  # profile -> extreme flag of the random_*_case functions


def assert_c_matches_numpy(op, random_case, seed, profile, cases=20):
    """`cases` random cases of op ("conv2d_s8" / "dense_s8"): the C result is the NumPy one, bit for bit."""
    rng = np.random.default_rng([seed, int(PROFILES[profile])])
    for case in range(cases):
        x, w, bias, kwargs = random_case(rng, PROFILES[profile])
        kwargs["rounding"] = case % 3  # single (ONNX), double and double ties-up (TFLite models)
        expected = getattr(np_ref, op)(x, w, bias, **kwargs)
        actual = getattr(c_ref, op)(x, w, bias, **kwargs)
        assert actual.dtype == np.int8 and actual.shape == expected.shape, describe(x, w, kwargs)
        np.testing.assert_array_equal(actual, expected, err_msg=describe(x, w, kwargs))


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("seed", range(25))
def test_conv2d_c_matches_numpy(seed, profile):
    assert_c_matches_numpy("conv2d_s8", random_conv_case, 1000 + seed, profile)


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("seed", range(10))
def test_dense_c_matches_numpy(seed, profile):
    assert_c_matches_numpy("dense_s8", random_dense_case, 2000 + seed, profile)


CORNERS = list(itertools.product(
    ["min", "max", "extremes"],  # saturating inputs
    [-128, 0, 127],  # input zero point
    [-128, 0, 127],  # output zero point
    [1e-9, 0.9999999, 3.7],  # real multiplier: tiny, ~1, > 1 (positive shift)
))


@pytest.mark.parametrize("op", ["conv", "depthwise", "dense"])
def test_extreme_corners(op):
    """Every combination of saturating input, extreme zero points and extreme multiplier, weights at +-127, C == NumPy."""
    rng = np.random.default_rng(7)
    for input_mode, izp, ozp, real in CORNERS:
        m, s = quantize_multiplier(real)
        if op == "dense":
            x = random_int8(rng, (2, 13), input_mode)
            w = rng.choice(np.array([-127, 127], np.int8), size=(3, 13))
            args, fn = (x, w, None), "dense_s8"
            kwargs = dict(input_zero_point=izp, output_zero_point=ozp, multiplier=[m], shift=[s])
        else:
            c, groups, o = (3, 1, 4) if op == "conv" else (3, 3, 6)
            x = random_int8(rng, (1, 7, 3, c), input_mode)
            w = rng.choice(np.array([-127, 127], np.int8), size=(o, 3, 3, c // groups))
            args, fn = (x, w, pick(rng, [None, np.full(o, -(2**20), np.int32)])), "conv2d_s8"
            kwargs = dict(stride=(2, 1), padding=(2, 0, 1, 3), groups=groups, input_zero_point=izp,
                          output_zero_point=ozp, multiplier=np.full(o, m), shift=np.full(o, s))
        for act_min, act_max in [(-128, 127), (ozp, 127), (ozp, min(127, ozp + 47))]:
            expected = getattr(np_ref, fn)(*args, **kwargs, act_min=act_min, act_max=act_max)
            actual = getattr(c_ref, fn)(*args, **kwargs, act_min=act_min, act_max=act_max)
            np.testing.assert_array_equal(actual, expected, err_msg=f"{input_mode} {izp} {ozp} {real}")
            assert expected.min() >= act_min and expected.max() <= act_max


# ----------------------------------------------------------------------------------------------
# The NumPy reference is the right op: independent float64 computation


# Fixed point rounds twice (high multiply, then the rounding shift) where float rounds once, so a
# few elements land 1 LSB away (about 0.1% with calibrated multipliers); any more means a wrong op.
MAX_OFF_BY_ONE = 0.01


def assert_reference_matches_float(op, random_case, float_acc, seed, profile, cases):
    """`cases` random cases of the NumPy op ("conv2d_s8" / "dense_s8") against float_acc requantised in
    float64: every element within 1 LSB, and at most MAX_OFF_BY_ONE of them off at all."""
    rng = np.random.default_rng([seed, int(PROFILES[profile])])
    mismatched = total = 0
    for _ in range(cases):
        x, w, bias, kwargs = random_case(rng, PROFILES[profile])
        expected = float_requantize(float_acc(x, w, bias, kwargs), kwargs, w.shape[0])
        actual = getattr(np_ref, op)(x, w, bias, **kwargs)
        assert actual.shape == expected.shape, describe(x, w, kwargs)
        bad, size = assert_close_to_float(actual, expected, describe(x, w, kwargs))
        mismatched, total = mismatched + bad, total + size
    assert mismatched <= MAX_OFF_BY_ONE * total, f"{mismatched} of {total} elements differ by 1 LSB"


@pytest.mark.parametrize("profile,cases", [("typical", 400), ("extreme", 200)])
def test_conv2d_reference_matches_float(profile, cases):
    assert_reference_matches_float("conv2d_s8", random_conv_case, float_conv_acc, 3000, profile, cases)


@pytest.mark.parametrize("profile,cases", [("typical", 200), ("extreme", 100)])
def test_dense_reference_matches_float(profile, cases):
    assert_reference_matches_float("dense_s8", random_dense_case, float_dense_acc, 4000, profile, cases)


# ----------------------------------------------------------------------------------------------
# Hand-checkable semantics (both implementations)


def requant_identity(channels):
    """multiplier/shift for a real multiplier of exactly 1.0 (multiplier 2**30, shift 1)."""
    m, s = quantize_multiplier(1.0)
    return np.full(channels, m, np.int32), np.full(channels, s, np.int32)


@pytest.mark.parametrize("impl", IMPLS)
def test_conv2d_hand_example(impl):
    """3x3 input, 2x2 ones filter, stride 1, padding (1, 0, 0, 1): sums of 2x2 windows with padding = zero point."""
    zp = 5
    x = (np.arange(9, dtype=np.int8).reshape(1, 3, 3, 1) + zp).astype(np.int8)  # centred values 0..8
    w = np.ones((1, 2, 2, 1), np.int8)
    m, s = requant_identity(1)
    out = IMPLS[impl].conv2d_s8(x, w, np.array([100], np.int32), padding=(1, 0, 0, 1), input_zero_point=zp,
                                output_zero_point=-3, multiplier=m, shift=s)
    # Padded (centred) input rows: [0 0 0 | pad], [0 1 2 | pad], [3 4 5 | pad], [6 7 8 | pad] (top row pad).
    windows = np.array([[0 + 1, 1 + 2, 2 + 0], [0 + 1 + 3 + 4, 1 + 2 + 4 + 5, 2 + 5], [3 + 4 + 6 + 7, 4 + 5 + 7 + 8, 5 + 8]])
    np.testing.assert_array_equal(out[0, :, :, 0], np.clip(windows + 100 - 3, -128, 127))


@pytest.mark.parametrize("impl", IMPLS)
def test_depthwise_channel_order(impl):
    """groups == C with depth multiplier 2: output channel ic * 2 + m reads input channel ic only."""
    x = np.zeros((1, 1, 1, 3), np.int8)
    x[0, 0, 0] = [1, 10, 100]
    w = np.array([1, 2, 3, 4, 5, 6], np.int8).reshape(6, 1, 1, 1)
    m, s = requant_identity(6)
    out = IMPLS[impl].conv2d_s8(x, w, None, groups=3, input_zero_point=0, output_zero_point=0, multiplier=m,
                                shift=s, act_min=-128, act_max=127)
    np.testing.assert_array_equal(out[0, 0, 0], np.clip([1, 2, 30, 40, 500, 600], -128, 127))


@pytest.mark.parametrize("impl", IMPLS)
def test_input_at_zero_point_gives_requantised_bias(impl):
    """Input equal to its zero point everywhere: every output is requantize(bias), whatever the padding."""
    x = np.full((2, 5, 4, 6), -37, np.int8)
    w = np.random.default_rng(0).integers(-127, 128, size=(4, 3, 2, 3), dtype=np.int8)
    bias = np.array([-300, -7, 0, 250], np.int32)
    m, s = quantize_multiplier(0.25)
    out = IMPLS[impl].conv2d_s8(x, w, bias, stride=(2, 3), dilation=(2, 1), padding=(4, 1, 0, 5), groups=2,
                                input_zero_point=-37, output_zero_point=10, multiplier=[m], shift=[s])
    np.testing.assert_array_equal(out, np.broadcast_to(np.array([-65, 8, 10, 73], np.int8), out.shape))


@pytest.mark.parametrize("impl", IMPLS)
def test_per_tensor_equals_broadcast_per_channel(impl):
    rng = np.random.default_rng(5)
    x = rng.integers(-128, 128, size=(1, 6, 5, 4), dtype=np.int8)
    w = rng.integers(-127, 128, size=(3, 3, 3, 4), dtype=np.int8)
    m, s = quantize_multiplier(0.0123)
    kwargs = dict(padding=(1, 1, 1, 1), input_zero_point=3, output_zero_point=-1)
    per_tensor = IMPLS[impl].conv2d_s8(x, w, None, multiplier=[m], shift=[s], **kwargs)
    per_channel = IMPLS[impl].conv2d_s8(x, w, None, multiplier=np.full(3, m), shift=np.full(3, s), **kwargs)
    np.testing.assert_array_equal(per_tensor, per_channel)
    xd, wd = x.reshape(6, 20), rng.integers(-127, 128, size=(7, 20), dtype=np.int8)
    np.testing.assert_array_equal(
        IMPLS[impl].dense_s8(xd, wd, None, input_zero_point=0, output_zero_point=0, multiplier=[m], shift=[s]),
        IMPLS[impl].dense_s8(xd, wd, None, input_zero_point=0, output_zero_point=0, multiplier=np.full(7, m),
                             shift=np.full(7, s)))


def test_non_contiguous_inputs():
    rng = np.random.default_rng(6)
    x = rng.integers(-128, 128, size=(1, 5, 7, 6), dtype=np.int8).transpose(0, 2, 1, 3)[:, ::2]
    w = rng.integers(-127, 128, size=(4, 3, 3, 6), dtype=np.int8)[:, ::-1]
    m, s = quantize_multiplier(0.01)
    kwargs = dict(padding=(1, 2, 1, 0), input_zero_point=-2, output_zero_point=4, multiplier=[m], shift=[s])
    np.testing.assert_array_equal(c_ref.conv2d_s8(x, w, None, **kwargs), np_ref.conv2d_s8(x, w, None, **kwargs))
    xd = x[0, :, :, 0]  # [4, 5], strided
    wd = rng.integers(-127, 128, size=(5, 7), dtype=np.int8).T  # [7, 5], transposed
    assert not xd.flags.c_contiguous and not wd.flags.c_contiguous
    kwargs.pop("padding")
    np.testing.assert_array_equal(c_ref.dense_s8(xd, wd, None, **kwargs), np_ref.dense_s8(xd, wd, None, **kwargs))


@pytest.mark.parametrize("impl", IMPLS)
def test_empty_batch(impl):
    m, s = quantize_multiplier(0.5)
    out = IMPLS[impl].conv2d_s8(np.zeros((0, 3, 3, 2), np.int8), np.ones((4, 3, 3, 2), np.int8), None,
                                input_zero_point=0, output_zero_point=0, multiplier=[m], shift=[s])
    assert out.shape == (0, 1, 1, 4)
    out = IMPLS[impl].dense_s8(np.zeros((0, 3), np.int8), np.ones((4, 3), np.int8), None, input_zero_point=0,
                               output_zero_point=0, multiplier=[m], shift=[s])
    assert out.shape == (0, 4)


def test_reference_detects_int32_accumulator_overflow():
    k = 70_000  # 70000 * 255 * 127 > 2**31
    x, w = np.full((1, k), 127, np.int8), np.full((1, k), 127, np.int8)
    with pytest.raises(OverflowError):
        np_ref.dense_s8(x, w, None, input_zero_point=-128, output_zero_point=0, multiplier=[1 << 30], shift=[0])


# ----------------------------------------------------------------------------------------------
# Malformed arguments: both raise ValueError (the C binding before touching memory)


def _conv_args():
    x = np.zeros((1, 4, 4, 4), np.int8)
    w = np.zeros((2, 3, 3, 4), np.int8)
    kwargs = dict(input_zero_point=0, output_zero_point=0, multiplier=np.full(2, 1 << 30), shift=np.zeros(2, np.int32))
    return x, w, None, kwargs


def _with(**changes):
    def make():
        x, w, bias, kwargs = _conv_args()
        values = dict(x=x, w=w, bias=bias, **kwargs)
        values.update({k: v() if callable(v) else v for k, v in changes.items()})
        return values
    return make


BAD_CONV = {
    "x float": _with(x=lambda: np.zeros((1, 4, 4, 4), np.float32)),
    "x int32": _with(x=lambda: np.zeros((1, 4, 4, 4), np.int32)),
    "x 3-D": _with(x=lambda: np.zeros((4, 4, 4), np.int8)),
    "w channels": _with(w=lambda: np.zeros((2, 3, 3, 3), np.int8)),
    "w 3-D": _with(w=lambda: np.zeros((2, 3, 3), np.int8)),
    "groups not dividing C": _with(groups=3),
    "groups not dividing O": _with(groups=4, w=lambda: np.zeros((2, 3, 3, 1), np.int8)),
    "groups zero": _with(groups=0),
    "bias length": _with(bias=lambda: np.zeros(3, np.int32)),
    "bias float": _with(bias=lambda: np.zeros(2, np.float32)),
    "bias beyond int32": _with(bias=lambda: np.array([2**31, 0], np.int64)),
    "multiplier length": _with(multiplier=lambda: np.full(3, 1 << 30)),
    "shift length": _with(shift=lambda: np.zeros(3, np.int32)),
    "negative multiplier": _with(multiplier=lambda: np.full(2, -1)),
    "multiplier beyond int32": _with(multiplier=lambda: np.full(2, 2**31)),
    "shift too small": _with(shift=lambda: np.full(2, -32)),
    "shift too large": _with(shift=lambda: np.full(2, 31)),
    "stride zero": _with(stride=(0, 1)),
    "stride arity": _with(stride=(1, 1, 1)),
    "dilation zero": _with(dilation=(1, 0)),
    "negative padding": _with(padding=(0, -1, 0, 0)),
    "padding arity": _with(padding=(1, 1)),
    "empty output": _with(dilation=(2, 1)),
    "input zero point": _with(input_zero_point=128),
    "output zero point": _with(output_zero_point=-129),
    "act range inverted": _with(act_min=10, act_max=9),
    "act range too wide": _with(act_min=-129),
}


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", BAD_CONV)
def test_conv2d_rejects(impl, case):
    values = BAD_CONV[case]()
    x, w, bias = values.pop("x"), values.pop("w"), values.pop("bias")
    with pytest.raises(ValueError):
        IMPLS[impl].conv2d_s8(x, w, bias, **values)


BAD_DENSE = {
    "features": (np.zeros((2, 5), np.int8), np.zeros((3, 4), np.int8), None, {}),
    "x 3-D": (np.zeros((2, 5, 1), np.int8), np.zeros((3, 5), np.int8), None, {}),
    "w uint8": (np.zeros((2, 5), np.int8), np.zeros((3, 5), np.uint8), None, {}),
    "bias length": (np.zeros((2, 5), np.int8), np.zeros((3, 5), np.int8), np.zeros(2, np.int32), {}),
    "multiplier length": (np.zeros((2, 5), np.int8), np.zeros((3, 5), np.int8), None,
                          {"multiplier": np.full(2, 1 << 30), "shift": np.zeros(2, np.int32)}),
    "act range": (np.zeros((2, 5), np.int8), np.zeros((3, 5), np.int8), None, {"act_min": 5, "act_max": 0}),
}


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", BAD_DENSE)
def test_dense_rejects(impl, case):
    x, w, bias, changes = BAD_DENSE[case]
    kwargs = dict(input_zero_point=0, output_zero_point=0, multiplier=[1 << 30], shift=[0]) | changes
    with pytest.raises(ValueError):
        IMPLS[impl].dense_s8(x, w, bias, **kwargs)
