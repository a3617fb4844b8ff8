"""INT8 softmax (TFLite int8 SOFTMAX, gemmlowp fixed point): NumPy reference vs portable C, bit for bit.

compiler.quant.reference.softmax.softmax_s8 (the spec) against compiler.quant._ref_softmax.softmax_s8
(kernels/ref/softmax_s8.c npu_softmax_s8). Seeded randomised tests demand exact equality over
depths 1..1000 (and longer rows), ranks 1..4, input scales 1e-4..1 and several betas, every
input_left_shift with diff_min at its edges, all-equal rows and rows of -128 / 127. Hand-derived
cases pin TFLite's Prepare (params) and the output of simple rows; a float check bounds the
dequantised output against float softmax; the fixed-point primitives are checked against the
identities and the float functions they stand for.
"""

import math

import numpy as np
import pytest

import compiler.quant._ref_softmax as C
from compiler.quant.reference import softmax as S
from int8_random import exact, int8_tensor

CASES = 600  # random cases per property test
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
BETAS = (1.0, 0.5, 2.0, 0.25, 1.7)


def both(x, **params):
    """softmax_s8 of the NumPy reference and of the C kernel, which must agree bit for bit."""
    want = S.softmax_s8(x, **params)
    exact(C.softmax_s8(x, **params), want, f"{x.shape}: {params}")
    return want


def random_params(rng):
    scale = 10 ** rng.uniform(-4, 0)
    return S.softmax_params(scale, float(rng.choice(BETAS))), scale


# ----------------------------------------------------------------------------------------
# NumPy vs C


def test_softmax_matches_c_random_shapes_and_scales():
    rng = np.random.default_rng(51)
    for _ in range(CASES):
        depth = int(rng.integers(1, 1001)) if rng.random() < 0.7 else int(rng.integers(1, 40))
        outer = tuple(int(v) for v in rng.integers(1, 3, size=int(rng.integers(0, 3))))
        x = int8_tensor(rng, outer + (int(rng.integers(1, 9)), depth)[-(len(outer) + 2):])
        params, _ = random_params(rng)
        both(x, **params)


@pytest.mark.parametrize("left_shift", range(32))
def test_softmax_matches_c_every_shift_and_diff_min_edge(left_shift):
    """Every input_left_shift with diff_min at the widest value the shift allows, one step
    narrower, TFLite's own value, a random one and 0; a row holding every int8 value, so every
    difference 0..-255 occurs, and each row's diff_min edge is met exactly (diff = diff_min kept,
    diff_min - 1 dropped)."""
    rng = np.random.default_rng(300 + left_shift)
    widest = min(255, (1 << 31) >> left_shift)
    tflite = -math.floor(31 * 2**26 / 2**left_shift)
    every_value = np.arange(-128, 128, dtype=np.int8)
    for diff_min in sorted({-widest, -max(widest - 1, 0), max(tflite, -widest), -int(rng.integers(0, widest + 1)), 0}):
        for multiplier in (1 << 30, INT32_MAX, int(rng.integers(1 << 30, 1 << 31)), 0, 1):
            rows = np.stack([every_value, rng.permutation(every_value), int8_tensor(rng, (256,))])
            out = both(rows, input_multiplier=multiplier, input_left_shift=left_shift, diff_min=diff_min)
            # TFLite outputs -128 for the dropped differences: row 0's x - 127 < diff_min
            assert (out[0][every_value.astype(int) - 127 < diff_min] == -128).all()
    if widest == 255:  # diff_min below -255 keeps every difference
        both(every_value[None], input_multiplier=1 << 30, input_left_shift=left_shift, diff_min=-(1 << 20))


def test_softmax_matches_c_long_rows():
    """Rows whose output shift passes 31 (sum >= 512.0) and whose int32 sum would overflow (>= 4096)."""
    rng = np.random.default_rng(52)
    for depth in (511, 512, 513, 1000, 4095, 4096, 4097, 9000):
        for kind in range(3):
            x = [np.zeros((2, depth), np.int8), int8_tensor(rng, (2, depth)),
                 rng.integers(120, 128, (2, depth), dtype=np.int8)][kind]
            both(x, **S.softmax_params(float(rng.choice([1e-4, 0.01, 0.1, 1.0]))))


def test_softmax_matches_c_saturated_and_equal_rows():
    rng = np.random.default_rng(53)
    for _ in range(200):
        depth, rows = int(rng.integers(1, 300)), int(rng.integers(1, 9))
        kind = rng.integers(3)
        if kind == 0:
            x = rng.choice(np.array([-128, 127], np.int8), (rows, depth))
        elif kind == 1:
            x = np.broadcast_to(rng.integers(-128, 128, (rows, 1), dtype=np.int8), (rows, depth)).copy()
        else:
            x = np.full((rows, depth), -128, np.int8)
            x[:, rng.integers(depth)] = 127
        both(x, **random_params(rng)[0])


# ----------------------------------------------------------------------------------------
# Hand-derived cases


def test_softmax_params_follow_tflite_prepare():
    # s = 1/16: beta * s * 2^26 = 2^22 = 0.5 * 2^23 -> multiplier 2^30, left shift 23;
    # diff_min = -floor(31 * 2^26 / 2^23) = -floor(248) = -248
    assert S.softmax_params(1 / 16) == dict(input_multiplier=1 << 30, input_left_shift=23, diff_min=-248)
    # s = 1: 2^26 = 0.5 * 2^27 -> 2^30, 27; diff_min = -floor(31 / 2) = -15. beta 2 with s = 0.5 is the same.
    assert S.softmax_params(1.0) == dict(input_multiplier=1 << 30, input_left_shift=27, diff_min=-15)
    assert S.softmax_params(0.5, beta=2.0) == S.softmax_params(1.0)
    # s = float32(0.1) = 13421773 * 2^-27: times 2^26 = 6710886.5 = (6710886.5 / 2^23) * 2^23, and
    # 6710886.5 / 2^23 * 2^31 = 6710886.5 * 256 = 1717986944 exactly; diff_min as for 1/16.
    assert S.softmax_params(0.1) == dict(input_multiplier=1717986944, input_left_shift=23, diff_min=-248)
    # s = 64: 2^32 is capped at 2^31 - 1 = ((2^31 - 1) / 2^31) * 2^31 -> multiplier 2^31 - 1, shift 31;
    # diff_min = -floor(31 * 2^26 / 2^31) = -floor(0.96875) = 0: only the maximum counts.
    assert S.softmax_params(64.0) == dict(input_multiplier=INT32_MAX, input_left_shift=31, diff_min=0)


@pytest.mark.parametrize("scale, beta", [(1e-9, 1.0), (0.0, 1.0), (-0.1, 1.0), (float("nan"), 1.0), (0.1, 0.0),
                                         (0.1, -1.0), (1e-8, 1.0)])
def test_softmax_params_reject_bad_scales(scale, beta):
    with pytest.raises(ValueError):
        S.softmax_params(scale, beta)


@pytest.mark.parametrize("depth, want", [
    # n equal values: each probability 1/n, i.e. 256/n in output units, - 128 (zero point):
    (1, 127),   # 256 saturates to 127
    (2, 0),     # 128
    (3, -43),   # 85.33 -> 85
    (4, -64),   # 64
    (8, -96),   # 32
    (200, -127),  # 1.28 -> 1
    (600, -128),  # 0.43 -> 0 (the output shift is 32 here)
    (5000, -128),  # 0.05 -> 0 (the sum saturates)
])
def test_softmax_of_equal_values(depth, want):
    for value in (-128, 0, 127):
        out = both(np.full((2, depth), value, np.int8), **S.softmax_params(0.1))
        assert (out == want).all(), (depth, value, out[0, :4])


def test_softmax_of_one_maximum():
    """[127, -128, -128, ...] at s = 1: diff_min = -15 drops every -255, so the maximum alone
    sums to 1.0: 256 saturates to 127, the others are -128. At s = 1/64, diffs of -255 are
    exp(-3.98) = 0.0187 each: with 9 of them p_max = 1 / (1 + 9 * 0.0187) = 0.856 -> 219 - 128 = 91,
    the others 0.0187 * 0.856 * 256 = 4.1 -> 4 - 128 = -124."""
    x = np.int8([[127] + [-128] * 9])
    exact(both(x, **S.softmax_params(1.0)), np.int8([[127] + [-128] * 9]), "s = 1")
    exact(both(x, **S.softmax_params(1 / 64)), np.int8([[91] + [-124] * 9]), "s = 1/64")


# ----------------------------------------------------------------------------------------
# Float check and the fixed-point primitives


def test_softmax_is_within_one_lsb_of_float():
    """Dequantised (scale 1/256, zero point -128) output within 1.05/256 of float64 softmax of
    the dequantised input (beta * s * x): the fixed-point exp, sum and reciprocal add a little
    to the final rounding's 1/2 LSB (measured at most ~0.98 LSB)."""
    rng = np.random.default_rng(54)
    worst = 0.0
    for _ in range(CASES):
        x = int8_tensor(rng, (int(rng.integers(1, 9)), int(rng.integers(1, 1001))))
        beta = float(rng.choice(BETAS))
        scale = 10 ** rng.uniform(-4, 0)
        out = both(x, **S.softmax_params(scale, beta))
        logits = beta * float(np.float32(scale)) * x.astype(np.float64)
        p = np.exp(logits - logits.max(axis=-1, keepdims=True))
        p /= p.sum(axis=-1, keepdims=True)
        worst = max(worst, float(np.abs((out.astype(np.float64) + 128) / 256 - p).max()) * 256)
    assert worst <= 1.05, worst


def test_srdhm_is_round_half_up():
    """gemmlowp's SRDHM (nudge by sign, truncating division) equals floor((a*b + 2^30) / 2^31) for
    every pair but INT32_MIN^2: the identity that lets the RVV kernel use vsmul with vxrm RNU.
    Ties of both signs included: a*b = (k + 1/2) * 2^31."""
    rng = np.random.default_rng(55)
    edges = np.array([INT32_MIN, INT32_MIN + 1, -(1 << 30), -3, -1, 0, 1, 3, 1 << 30, INT32_MAX], np.int64)
    a = np.concatenate([np.repeat(edges, edges.size), rng.integers(INT32_MIN, INT32_MAX, 100000, dtype=np.int64),
                        np.full(64, 1 << 30), -np.arange(1, 65)])
    b = np.concatenate([np.tile(edges, edges.size), rng.integers(INT32_MIN, INT32_MAX, 100000, dtype=np.int64),
                        2 * np.arange(-32, 32) + 1, np.full(64, 1 << 30)])  # a*b = odd * 2^30: ties
    got = S._srdhm(a, b)
    ab = [int(p) * int(q) for p, q in zip(a, b)]
    want = np.array([INT32_MAX if p == q == INT32_MIN else (v + (1 << 30)) >> 31 for p, q, v in zip(a, b, ab)])
    np.testing.assert_array_equal(got, want)


def test_rounding_divide_by_pot_rounds_half_away_from_zero():
    x = np.array([5, -5, 6, -6, 7, -7, 4, -4, 0, -1, 1, INT32_MAX, INT32_MIN])
    # / 4: 1.25 -> 1, 1.5 -> 2, 1.75 -> 2, 1 -> 1; ties away from zero; -0.25 -> 0
    np.testing.assert_array_equal(S._rounding_divide_by_pot(x, 2),
                                  [1, -1, 2, -2, 2, -2, 1, -1, 0, 0, 0, 1 << 29, -(1 << 29)])
    # beyond gemmlowp's 31: exact, so any value below 2^31 in magnitude over 2^32 is 0 (and -2^31 a tie: -1)
    np.testing.assert_array_equal(S._rounding_divide_by_pot(x, 32), [0] * 12 + [-1])


def test_exp_on_negative_values_is_exp():
    """Q5.26 in, Q0.31 out: within 2^-21 of exp (measured 2.3e-7), monotone, exactly 1 (INT32_MAX) at 0 and in
    [0, INT32_MAX] over a dense sweep of [-32, 0] (every quarter and bit of the barrel shifter)."""
    rng = np.random.default_rng(56)
    a = np.unique(np.concatenate([-np.arange(0, 1 << 31, 4099, dtype=np.int64),
                                  -rng.integers(0, 1 << 31, 200000, dtype=np.int64), [INT32_MIN, -1, 0]]))
    e = S._exp_on_negative_values(a)
    assert e[-1] == INT32_MAX and e.min() >= 0 and e.max() <= INT32_MAX
    assert (np.diff(e) >= 0).all()  # a ascending
    np.testing.assert_allclose(e / 2**31, np.exp(a / 2**26), rtol=0, atol=2**-21)


def test_reciprocal_is_one_over_the_sum():
    """GetReciprocal(sum, 12): 1/sum = scale * 2^-31 * 2^-bits_over_unit, within 2^-27 relative (measured 4.7e-9)."""
    rng = np.random.default_rng(57)
    total = np.concatenate([rng.integers(1 << 19, INT32_MAX, 100000), [1 << 19, (1 << 19) + 1, INT32_MAX, 1 << 30]])
    scale, bits = S._reciprocal(total, 12)
    real = total / 2**19
    np.testing.assert_allclose(scale / 2**31 / 2.0**bits * real, 1.0, rtol=2**-27)
    assert scale.max() <= INT32_MAX and (bits >= 0).all() and (bits <= 11).all()


# ----------------------------------------------------------------------------------------
# Argument errors (the C binding checks with the same helpers)


@pytest.mark.parametrize("x, params, message", [
    (np.zeros((2, 3), np.int16), {}, "int8"),
    (np.int8(3), {}, "last axis"),
    (np.zeros((2, 0), np.int8), {}, "last axis"),
    (np.zeros((2, 3), np.int8), dict(input_left_shift=32), "input_left_shift"),
    (np.zeros((2, 3), np.int8), dict(input_multiplier=-1), "input_multiplier"),
    (np.zeros((2, 3), np.int8), dict(diff_min=1), "diff_min"),
    (np.zeros((2, 3), np.int8), dict(input_left_shift=24, diff_min=-129), "overflows int32"),
    (np.zeros((2, 3), np.int8), dict(input_multiplier=1.5), "input_multiplier"),
])
def test_softmax_rejects_bad_arguments(x, params, message):
    args = dict(input_multiplier=1 << 30, input_left_shift=23, diff_min=-248) | params
    for impl in (S.softmax_s8, C.softmax_s8):
        with pytest.raises(ValueError, match=message):
            impl(x, **args)


def test_softmax_of_empty_rows():
    for impl in (S.softmax_s8, C.softmax_s8):
        assert impl(np.zeros((0, 5), np.int8), **S.softmax_params(0.1)).shape == (0, 5)
