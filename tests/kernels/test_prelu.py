"""INT8 PReLU with a per-channel slope (TFLite int8 PRELU): NumPy reference vs portable C, bit for bit.

compiler.quant.reference.prelu.prelu_s8 (the spec) against compiler.quant._ref_prelu.prelu_s8
(kernels/ref/prelu_s8.c npu_prelu_s8). Seeded randomised property tests demand exact equality
over odd shapes and channel counts, extreme zero points and values, slopes negative, positive and
zero, every shift of both branches and multipliers from 0 to 2^31 - 1, narrow activation ranges,
each of the three roundings (single for ONNX models, double for TFLite's PRELU, double ties-up);
hand-derived cases pin TFLite's semantics (v = 0 takes the positive branch, one rounding ties up,
or gemmlowp's two, ties away); a float check (dequantize -> PReLU -> quantize) bounds the op to 1 LSB.
"""

import numpy as np
import pytest

import compiler.quant._ref_prelu as C
from compiler.quant.fixed_point import quantize_multiplier
from compiler.quant.reference import elementwise as E
from compiler.quant.reference import prelu as P
from int8_random import (act_range, exact, int8_tensor, nhwc, quantize_real, raw_multiplier, real, scale,
                         within_one_lsb, zero_point)

CASES = 1500  # random cases per property test
INT32_MAX = 2**31 - 1


# ----------------------------------------------------------------------------------------
# Random generators (the shared ones: int8_random.py)


def operands(rng):
    """(x, alpha): NHWC with 1..40 channels, or another rank (empty tensors included), and a slope per channel."""
    if rng.random() < 0.8:
        shape = nhwc(rng, max_c=40)
    else:
        shape = tuple(int(v) for v in rng.integers(0, 6, size=int(rng.integers(1, 5))))
    return int8_tensor(rng, shape), slopes(rng, shape[-1])


def slopes(rng, channels):
    """int8 slopes: any, all at one value (a scalar slope repeated), or the extremes."""
    kind = rng.integers(3)
    if kind == 0:
        return rng.integers(-128, 128, size=channels, dtype=np.int8)
    if kind == 1:
        return np.full(channels, rng.integers(-128, 128), dtype=np.int8)
    return rng.choice(np.array([-128, 127, 0, -1, 1], np.int8), size=channels)


def zero_points(rng):
    return dict(input_zero_point=zero_point(rng), alpha_zero_point=zero_point(rng), output_zero_point=zero_point(rng))


def both(x, alpha, **params):
    """prelu_s8 of the NumPy reference and of the C kernel, which must agree bit for bit."""
    want = P.prelu_s8(x, alpha, **params)
    exact(C.prelu_s8(x, alpha, **params), want, f"{x.shape}, alpha {alpha.tolist()}: {params}")
    return want


# ----------------------------------------------------------------------------------------
# NumPy vs C


def test_prelu_matches_c_from_scales():
    rng = np.random.default_rng(31)
    for case in range(CASES):
        x, alpha = operands(rng)
        act_min, act_max = act_range(rng)
        params = P.prelu_params(scale(rng, -3, 0), scale(rng, -4, 0), scale(rng, -3, 0))
        both(x, alpha, **zero_points(rng), **params, act_min=act_min, act_max=act_max,
             rounding=case % 3)  # single (ONNX), double (TFLite's PRELU), double ties-up


@pytest.mark.parametrize("shift", range(-31, 31))
def test_prelu_matches_c_every_shift(shift):
    """The whole documented parameter domain: every shift on each branch (the other branch's
    random), multipliers from 0 to 2^31 - 1; large shifts saturate, so the output zero point is
    added in 64 bits."""
    rng = np.random.default_rng(200 + shift)
    for case in range(CASES // 30):
        x, alpha = operands(rng)
        act_min, act_max = act_range(rng)
        other = int(rng.integers(-31, 31))
        positive_shift, negative_shift = (shift, other) if case % 2 else (other, shift)
        both(x, alpha, **zero_points(rng), positive_multiplier=raw_multiplier(rng), positive_shift=positive_shift,
             negative_multiplier=raw_multiplier(rng), negative_shift=negative_shift, act_min=act_min, act_max=act_max,
             rounding=case % 3)


def test_prelu_extreme_products():
    """Every int8 value against every slope at the extreme zero points: |v * slope| up to 255^2, each rounding."""
    x = np.broadcast_to(np.arange(-128, 128, dtype=np.int8).reshape(256, 1), (256, 256)).copy()
    alpha = np.arange(-128, 128, dtype=np.int8)
    for zp_in, zp_alpha, zp_out in [(127, -128, 0), (127, 127, 127), (-128, 0, -128), (0, 0, 0), (3, -7, 5)]:
        for pm, ps, nm, ns in [(INT32_MAX, 0, INT32_MAX, -16), (INT32_MAX, 30, INT32_MAX, 30), (1, -31, 1, -31),
                               (1 << 30, 1, 1 << 30, -8), (1_234_567_890, -3, 987_654_321, 2)]:
            for rounding in range(3):
                both(x, alpha, input_zero_point=zp_in, alpha_zero_point=zp_alpha, output_zero_point=zp_out,
                     positive_multiplier=pm, positive_shift=ps, negative_multiplier=nm, negative_shift=ns,
                     rounding=rounding)


def test_prelu_is_requantize_above_and_mul_below_the_zero_point():
    """The two branches against the other references: where x >= zp_in it is requantize_s8 with the
    positive multiplier (single rounding; mul_s8 by 1 for each rounding), where x < zp_in it is
    mul_s8 by the slope broadcast over the pixels, with the same rounding."""
    rng = np.random.default_rng(32)
    for case in range(300):
        rounding = case % 3
        shape = nhwc(rng, max_c=40)
        x, alpha = int8_tensor(rng, shape), slopes(rng, shape[-1])
        zps = zero_points(rng)
        act_min, act_max = act_range(rng)
        p = P.prelu_params(scale(rng, -3, 0), scale(rng, -4, 0), scale(rng, -3, 0))
        out = both(x, alpha, **zps, **p, act_min=act_min, act_max=act_max, rounding=rounding)
        act = dict(act_min=act_min, act_max=act_max, rounding=rounding)
        by_one = E.mul_s8(x, np.ones_like(x), input1_zero_point=zps["input_zero_point"], input2_zero_point=0,
                          output_zero_point=zps["output_zero_point"], output_multiplier=p["positive_multiplier"],
                          output_shift=p["positive_shift"], **act)
        if rounding == 0:
            exact(by_one, E.requantize_s8(x, input_zero_point=zps["input_zero_point"],
                                          output_zero_point=zps["output_zero_point"],
                                          multiplier=p["positive_multiplier"], shift=p["positive_shift"],
                                          act_min=act_min, act_max=act_max), "requantize_s8 is mul_s8 by 1")
        below = E.mul_s8(x, np.broadcast_to(alpha, (shape[0], 1, 1, shape[3])).copy(),
                         input1_zero_point=zps["input_zero_point"], input2_zero_point=zps["alpha_zero_point"],
                         output_zero_point=zps["output_zero_point"], output_multiplier=p["negative_multiplier"],
                         output_shift=p["negative_shift"], **act)
        exact(out, np.where(x >= zps["input_zero_point"], by_one, below), f"{shape}: {zps} {p} rounding {rounding}")


# ----------------------------------------------------------------------------------------
# Hand-derived cases


def test_prelu_params_follow_tflite_prepare():
    # s_in / s_out = 1.0 = 2^30 * 2^(1 - 31); s_in * s_alpha / s_out = 0.25 = 2^30 * 2^(-1 - 31)
    assert P.prelu_params(0.5, 0.25, 0.5) == dict(positive_multiplier=1 << 30, positive_shift=1,
                                                  negative_multiplier=1 << 30, negative_shift=-1)
    # float32(0.1) * 2^-7 / float32(0.1) is exactly 2^-7 in double: 2^30 * 2^(-6 - 31)
    assert P.prelu_params(0.1, 1 / 128, 0.1) == dict(positive_multiplier=1 << 30, positive_shift=1,
                                                     negative_multiplier=1 << 30, negative_shift=-6)
    # non-power-of-two: the quotient and product of the float32 scales, in double
    f_in, f_alpha, f_out = (float(np.float32(s)) for s in (0.05, 0.003, 0.07))
    pm, ps = quantize_multiplier(f_in / f_out)
    nm, ns = quantize_multiplier(f_in * f_alpha / f_out)
    assert P.prelu_params(0.05, 0.003, 0.07) == dict(positive_multiplier=pm, positive_shift=ps,
                                                     negative_multiplier=nm, negative_shift=ns)
    # 1e-10 (about 2^-33.2) and 1e-20 are below 2^-32: flushed to zero
    assert P.prelu_params(1e-10, 1e-10, 1.0) == dict(positive_multiplier=0, positive_shift=0,
                                                     negative_multiplier=0, negative_shift=0)


def test_prelu_by_hand():
    """s_in = s_out = 0.5, s_alpha = 0.25, all zero points 0: out = v for v >= 0 and
    round_half_up(v * a / 4) for v < 0. Channel 0 has a = 1 (slope 0.25), channel 1 a = 2 (0.5):
      v = 4:  4, 4
      v = -4: -4 / 4 = -1;     -8 / 4 = -2
      v = -3: -0.75 -> -1;     -1.5 -> -1 (ties go up)
      v = -2: -0.5 -> 0 (tie); -1
      v = -1: -0.25 -> 0;      -0.5 -> 0 (tie)"""
    x = np.int8([[4, 4], [-4, -4], [-3, -3], [-2, -2], [-1, -1]])
    out = both(x, np.int8([1, 2]), input_zero_point=0, alpha_zero_point=0, output_zero_point=0,
               **P.prelu_params(0.5, 0.25, 0.5))
    assert out.tolist() == [[4, 4], [-1, -2], [-1, -1], [0, -1], [0, 0]]


def test_prelu_zero_points_by_hand():
    """zp_in = 10, zp_alpha = -128, zp_out = -5, positive multiplier 1 (2^30, 1), negative 2^-7
    (2^30, -6); one element per channel:
      x = 20:   v = 10                                    -> 10 - 5 = 5
      x = 10:   v = 0, the positive branch                -> -5
      x = 0:    v = -10,  alpha 0    (a = 128): -1280 / 128 = -10       -> -15
      x = -118: v = -128, alpha -64  (a = 64):  -8192 / 128 = -64       -> -69
      x = 9:    v = -1,   alpha -127 (a = 1):   -1 / 128 rounds to 0    -> -5
      x = -128: v = -138, alpha 127  (a = 255): -35190 / 128 = -274.92 -> -275 - 5, clamped to -128"""
    x = np.int8([20, 10, 0, -118, 9, -128])
    alpha = np.int8([100, -100, 0, -64, -127, 127])
    out = both(x, alpha, input_zero_point=10, alpha_zero_point=-128, output_zero_point=-5,
               positive_multiplier=1 << 30, positive_shift=1, negative_multiplier=1 << 30, negative_shift=-6)
    assert out.tolist() == [5, -5, -15, -69, -5, -128]


def test_prelu_slope_signs():
    """Real slope -0.5 (a = -2 at s_alpha = 0.25) mirrors the negative inputs; slope 0 is ReLU."""
    x = np.int8([[6, -6, -5, 0]]).reshape(4, 1)
    params = dict(input_zero_point=0, alpha_zero_point=0, output_zero_point=1, **P.prelu_params(0.5, 0.25, 0.5))
    # -6 * -2 / 4 = 3; -5 * -2 / 4 = 2.5 -> 3
    assert both(x, np.int8([-2]), **params).ravel().tolist() == [7, 4, 4, 1]
    assert both(x, np.int8([0]), **params).ravel().tolist() == [7, 1, 1, 1]
    # a slope at the alpha zero point is a zero slope too
    assert both(x, np.int8([-7]), **(params | dict(alpha_zero_point=-7))).ravel().tolist() == [7, 1, 1, 1]


def test_prelu_rounds_once_ties_up():
    # multiplier 0.5 (2^30, shift 0) on both branches, slope 1: 3, -3, 1, -1, 5 halved are
    # 1.5, -1.5, 0.5, -0.5, 2.5, rounded half up once: 2, -1, 1, 0, 3
    x = np.int8([3, -3, 1, -1, 5])
    out = both(x, np.ones(5, np.int8), input_zero_point=0, alpha_zero_point=0, output_zero_point=0,
               positive_multiplier=1 << 30, positive_shift=0, negative_multiplier=1 << 30, negative_shift=0)
    assert out.tolist() == [2, -1, 1, 0, 3]
    # multiplier (2^30 + 1) * 2^-32, just above 0.25: 1 -> 0.2500000002 and 2 -> 0.5000000005 round
    # once to 0 and 1 (gemmlowp's double rounding would give 1 for both)
    out = both(np.int8([1, 2, -1, -2]), np.ones(4, np.int8), input_zero_point=0, alpha_zero_point=0,
               output_zero_point=0, positive_multiplier=(1 << 30) + 1, positive_shift=-1,
               negative_multiplier=(1 << 30) + 1, negative_shift=-1)
    assert out.tolist() == [0, 1, 0, -1]


@pytest.mark.parametrize("rounding, expected", [
    (0, [1, 0, 2, -1, 0, 0]),   # once, ties up
    (1, [1, -1, 2, -2, 1, 0]),  # gemmlowp (LiteRT's PRELU): 0.25 -> high 1 (0.5 up) -> 0.5 away: 1
    (2, [1, 0, 2, -1, 1, 0]),   # twice, the shift's ties up (ruy)
])
def test_prelu_rounds_as_the_spec_says(rounding, expected):
    """Multiplier 0.25 (2^30, shift -1) on both branches, slope 1: 2, -2, 6, -6, 1, -1 times 0.25
    are 0.5, -0.5, 1.5, -1.5, 0.25, -0.25. Double rounding first takes the doubling high multiply
    (2^30 v / 2^31 rounded, ties up: 1, -1, 3, -3, 1, 0), then halves it with rounding."""
    x = np.int8([2, -2, 6, -6, 1, -1])
    out = both(x, np.ones(6, np.int8), input_zero_point=0, alpha_zero_point=0, output_zero_point=0,
               positive_multiplier=1 << 30, positive_shift=-1, negative_multiplier=1 << 30, negative_shift=-1,
               rounding=rounding)
    assert out.tolist() == expected


def test_prelu_saturation_and_activation_range():
    x = np.int8([-128, 127, 1, 0])
    alpha = np.int8([1, 1, 1, 1])
    # shift 30, multiplier 2^31 - 1: v * (2^31 - 1) / 2 saturates to the int32 limits; the output
    # zero point is added in 64 bits, so +127 on INT32_MIN still clamps to -128
    big = dict(alpha_zero_point=0, positive_multiplier=INT32_MAX, positive_shift=30, negative_multiplier=INT32_MAX,
               negative_shift=30)
    assert both(x, alpha, input_zero_point=0, output_zero_point=127, **big).tolist() == [-128, 127, 127, 127]
    assert both(x, alpha, input_zero_point=0, output_zero_point=-128, **big).tolist() == [-128, 127, 127, -128]
    # a fused activation range [5, 5] and ReLU-like [zp_out, 127]
    unit = dict(input_zero_point=0, alpha_zero_point=0, positive_multiplier=1 << 30, positive_shift=1,
                negative_multiplier=1 << 30, negative_shift=1)
    assert both(x, alpha, **unit, output_zero_point=0, act_min=5, act_max=5).tolist() == [5, 5, 5, 5]
    assert both(x, alpha, **unit, output_zero_point=-3, act_min=-3, act_max=127).tolist() == [-3, 124, -2, -3]
    # multipliers 0: every output is the clamped zero point
    zero = dict(unit, positive_multiplier=0, negative_multiplier=0)
    assert both(x, alpha, **zero, output_zero_point=9, act_min=-128, act_max=4).tolist() == [4, 4, 4, 4]


def test_prelu_empty_and_any_rank():
    params = dict(input_zero_point=1, alpha_zero_point=-1, output_zero_point=2, positive_multiplier=1 << 30,
                  positive_shift=1, negative_multiplier=1 << 30, negative_shift=1)
    for shape in [(0,), (2, 0, 3, 4), (3, 0), (5,), (2, 3), (1, 2, 3, 4, 5)]:
        x = np.arange(int(np.prod(shape)), dtype=np.int64).astype(np.int8).reshape(shape)
        alpha = np.arange(shape[-1], dtype=np.int8) - 3
        v = x.astype(np.int64) - 1
        expected = np.clip(np.where(v >= 0, v, v * (alpha.astype(np.int64) + 1)) + 2, -128, 127).astype(np.int8)
        exact(both(x, alpha, **params), expected, f"shape {shape}")


# ----------------------------------------------------------------------------------------
# Float check


def test_prelu_against_float():
    """dequantize -> PReLU with the dequantized slope -> quantize differs from prelu_s8 by at most 1 step,
    whichever the rounding."""
    rng = np.random.default_rng(33)
    for case in range(CASES):
        x, alpha = operands(rng)
        s_in, s_alpha, s_out = scale(rng, -3, 0), scale(rng, -4, 0), scale(rng, -3, 0)
        zps = zero_points(rng)
        act_min, act_max = act_range(rng)
        q = P.prelu_s8(x, alpha, **zps, **P.prelu_params(s_in, s_alpha, s_out), act_min=act_min, act_max=act_max,
                       rounding=case % 3)
        v = real(x, s_in, zps["input_zero_point"])
        y = np.where(v >= 0, v, v * real(alpha, s_alpha, zps["alpha_zero_point"]))
        within_one_lsb(q, quantize_real(y, s_out, zps["output_zero_point"], act_min, act_max), f"case {case}")


# ----------------------------------------------------------------------------------------
# Argument checking (both implementations share it) and layout independence


GOOD = dict(input_zero_point=0, alpha_zero_point=0, output_zero_point=0, positive_multiplier=1 << 30,
            positive_shift=0, negative_multiplier=1 << 30, negative_shift=0)


@pytest.mark.parametrize("impl", [P, C], ids=["numpy", "c"])
@pytest.mark.parametrize("alpha_shape, change, message", [
    ((5,), {}, None),
    ((1,), {}, r"alpha of shape \(1,\) must be \[C\] = \(5,\)"),  # a scalar slope is passed repeated
    ((1, 1, 1, 5), {}, r"alpha of shape \(1, 1, 1, 5\) must be \[C\]"),
    ((4,), {}, r"alpha of shape \(4,\) must be \[C\]"),
    ((5,), {"positive_shift": 31}, r"positive_shift=31 is outside \[-31, 30\]"),
    ((5,), {"negative_shift": -32}, r"negative_shift=-32 is outside \[-31, 30\]"),
    ((5,), {"positive_multiplier": -1}, r"positive_multiplier=-1 is outside"),
    ((5,), {"negative_multiplier": 1 << 31}, r"negative_multiplier=2147483648 is outside"),
    ((5,), {"input_zero_point": 128}, r"input_zero_point=128 is outside \[-128, 127\]"),
    ((5,), {"alpha_zero_point": -129}, r"alpha_zero_point=-129 is outside"),
    ((5,), {"output_zero_point": 1.5}, r"output_zero_point must be an integer"),
    ((5,), {"act_min": 3, "act_max": 2}, r"act_min=3 > act_max=2"),
    ((5,), {"act_max": 128}, r"act_max=128 is outside"),
    ((5,), {"rounding": 3}, r"rounding=3 is not one of 0 \(single\), 1 \(double\), 2"),
    ((5,), {"rounding": 2}, None),
])
def test_prelu_rejects_bad_arguments(impl, alpha_shape, change, message):
    x = np.zeros((2, 3, 4, 5), np.int8)
    alpha = np.zeros(alpha_shape, np.int8)
    if message is None:
        assert impl.prelu_s8(x, alpha, **(GOOD | change)).shape == x.shape
        return
    with pytest.raises(ValueError, match=message):
        impl.prelu_s8(x, alpha, **(GOOD | change))


@pytest.mark.parametrize("impl", [P, C], ids=["numpy", "c"])
def test_prelu_rejects_bad_arrays(impl):
    x = np.zeros((1, 2, 3, 4), np.int8)
    alpha = np.zeros(4, np.int8)
    with pytest.raises(ValueError, match="input must be an int8 array"):
        impl.prelu_s8(x.astype(np.uint8), alpha, **GOOD)
    with pytest.raises(ValueError, match="alpha must be an int8 array"):
        impl.prelu_s8(x, alpha.astype(np.float32), **GOOD)
    with pytest.raises(ValueError, match="at least one dimension"):
        impl.prelu_s8(np.int8(3), np.zeros(1, np.int8), **GOOD)


def test_prelu_params_reject_bad_scales():
    with pytest.raises(ValueError, match="input_scale must be a positive finite float32"):
        P.prelu_params(0.0, 0.1, 0.1)
    with pytest.raises(ValueError, match="alpha_scale"):
        P.prelu_params(0.1, float("nan"), 0.1)
    with pytest.raises(ValueError, match="output_scale"):
        P.prelu_params(0.1, 0.1, -1.0)
    with pytest.raises(ValueError, match="too large"):  # s_in / s_out = 2^32: shift 33
        P.prelu_params(2.0**16, 1.0, 2.0**-16)


def test_prelu_non_contiguous_inputs():
    rng = np.random.default_rng(34)
    x = rng.integers(-128, 128, size=(2, 6, 5, 9), dtype=np.int8)
    view = x[:, ::2, ::-1, 1:8]
    alpha = rng.integers(-128, 128, size=14, dtype=np.int8)[::2]
    params = dict(input_zero_point=3, alpha_zero_point=-4, output_zero_point=1, **P.prelu_params(0.1, 0.02, 0.09))
    exact(both(view, alpha, **params), P.prelu_s8(view.copy(), alpha.copy(), **params), "strided views")
