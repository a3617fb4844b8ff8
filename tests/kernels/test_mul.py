"""INT8 element-wise multiply (TFLite int8 MUL): NumPy reference vs portable C, bit for bit.

compiler.quant.reference.elementwise.mul_s8 (the spec) against compiler.quant._ref_elementwise.mul_s8
(kernels/ref/add_s8.c npu_mul_s8). Seeded randomised property tests demand exact equality over
odd shapes, with and without the squeeze-excite broadcast ([N,H,W,C] times [N,1,1,C]), extreme
zero points and values, every shift and multipliers from 0 to 2^31 - 1, narrow activation
ranges; hand-derived cases pin TFLite's semantics (one rounding, ties up); a float check
(dequantize -> multiply -> quantize) bounds the op to 1 LSB.
"""

import numpy as np
import pytest

import compiler.quant._ref_elementwise as C
from compiler.quant.fixed_point import quantize_multiplier
from compiler.quant.reference import elementwise as E
from int8_random import act_range, exact, int8_tensor, nhwc, quantize_real, raw_multiplier, real, scale, zero_point

CASES = 1500  # random cases per property test
INT32_MAX = 2**31 - 1


# ----------------------------------------------------------------------------------------
# Random generators (the shared ones: int8_random.py)


def operands(rng):
    """(input1, input2): NHWC with input2 [N,1,1,C] (half the time) or the same shape, or another
    shape (any rank, empty included) without broadcast."""
    kind = rng.random()
    if kind < 0.5:
        shape = nhwc(rng, max_c=13)
        return int8_tensor(rng, shape), int8_tensor(rng, (shape[0], 1, 1, shape[3]))
    if kind < 0.85:
        shape = nhwc(rng, max_c=13)
    else:
        shape = tuple(int(v) for v in rng.integers(0, 6, size=int(rng.integers(0, 6))))
    return int8_tensor(rng, shape), int8_tensor(rng, shape)


def both(input1, input2, **params):
    """mul_s8 of the NumPy reference and of the C kernel, which must agree bit for bit."""
    want = E.mul_s8(input1, input2, **params)
    exact(C.mul_s8(input1, input2, **params), want, f"{input1.shape} x {input2.shape}: {params}")
    return want


# ----------------------------------------------------------------------------------------
# NumPy vs C


def test_mul_matches_c_from_scales():
    rng = np.random.default_rng(21)
    for case in range(CASES):
        a, b = operands(rng)
        act_min, act_max = act_range(rng)
        params = E.mul_params(scale(rng), scale(rng, -3, 0), scale(rng, -5, 1))
        both(a, b, input1_zero_point=zero_point(rng), input2_zero_point=zero_point(rng),
             output_zero_point=zero_point(rng), **params, act_min=act_min, act_max=act_max,
             rounding=case % 3)  # single (ONNX), double (TFLite's MUL), double ties-up


@pytest.mark.parametrize("shift", range(-31, 31))
def test_mul_matches_c_every_shift(shift):
    """The whole documented parameter domain: every shift, multipliers from 0 to 2^31 - 1
    (large shifts saturate nearly every product, so the output zero point is added in 64 bits)."""
    rng = np.random.default_rng(100 + shift)
    for case in range(CASES // 30):
        a, b = operands(rng)
        act_min, act_max = act_range(rng)
        both(a, b, input1_zero_point=zero_point(rng), input2_zero_point=zero_point(rng),
             output_zero_point=zero_point(rng), output_multiplier=raw_multiplier(rng), output_shift=shift,
             act_min=act_min, act_max=act_max, rounding=case % 3)


def test_mul_extreme_products():
    """Every pair of int8 values at the extreme zero points: products up to 255^2 = 65025 in magnitude."""
    q1, q2 = np.meshgrid(np.arange(-128, 128, dtype=np.int8), np.arange(-128, 128, dtype=np.int8))
    q1, q2 = q1.reshape(1, 256, 256, 1), q2.reshape(1, 256, 256, 1)
    for zp1, zp2, zp_out in [(-128, 127, 0), (127, -128, 127), (-128, -128, -128), (127, 127, 5), (0, 0, 0)]:
        for multiplier, shift in [(INT32_MAX, -16), (INT32_MAX, 30), (1, -31), (1 << 30, -8), (1_234_567_890, 0)]:
            both(q1, q2, input1_zero_point=zp1, input2_zero_point=zp2, output_zero_point=zp_out,
                 output_multiplier=multiplier, output_shift=shift)


# ----------------------------------------------------------------------------------------
# Hand-derived cases


def test_mul_params_follow_tflite_prepare():
    # 0.5 * 0.25 / 0.125 = 1.0 = 2^30 * 2^(1 - 31)
    assert E.mul_params(0.5, 0.25, 0.125) == dict(output_multiplier=1 << 30, output_shift=1)
    # 1/256 = 2^30 * 2^(-7 - 31): a sigmoid gate (scale 1/256) times a tensor at the output's scale
    assert E.mul_params(0.1, 1 / 256, 0.1) == dict(output_multiplier=1 << 30, output_shift=-7)
    # non-power-of-two: the product and quotient of the float32 scales, in double
    s1, s2, s_out = 0.1, 0.3, 0.07
    f1, f2, fo = (float(np.float32(s)) for s in (s1, s2, s_out))
    multiplier, shift = quantize_multiplier(f1 * f2 / fo)
    assert E.mul_params(s1, s2, s_out) == dict(output_multiplier=multiplier, output_shift=shift)
    assert E.mul_params(1e-10, 1e-10, 1.0) == dict(output_multiplier=0, output_shift=0)  # below 2^-32: flushed


def test_mul_exact_integer_product():
    """Real multiplier 1: out = clamp((q1 - zp1) * (q2 - zp2) + zp_out), over every pair of int8 values."""
    q1, q2 = np.meshgrid(np.arange(-128, 128, dtype=np.int8), np.arange(-128, 128, dtype=np.int8))
    params = E.mul_params(0.5, 0.25, 0.125)
    for zp1, zp2, zp_out in [(0, 0, 0), (-128, 127, 5), (3, -7, -128), (127, 127, 127)]:
        expected = np.clip((q1.astype(np.int64) - zp1) * (q2.astype(np.int64) - zp2) + zp_out, -128, 127)
        out = both(q1, q2, input1_zero_point=zp1, input2_zero_point=zp2, output_zero_point=zp_out, **params)
        exact(out, expected.astype(np.int8), f"zero points {zp1}, {zp2}, {zp_out}")


def test_mul_rounds_once_ties_up():
    # multiplier 0.5 (2^30, shift 0): products 3, -3, 1, -1, 5, 0 halved are 1.5, -1.5, 0.5, -0.5, 2.5, 0,
    # rounded half up (toward +infinity) once: 2, -1, 1, 0, 3, 0
    q1 = np.int8([3, -3, 1, -1, 5, 0])
    out = both(q1, np.ones_like(q1), input1_zero_point=0, input2_zero_point=0, output_zero_point=0,
               output_multiplier=1 << 30, output_shift=0)
    assert out.tolist() == [2, -1, 1, 0, 3, 0]
    # product 1, multiplier (2^30 + 1) * 2^-32 (just above 0.25): 0.25... rounds to 0. gemmlowp's double
    # rounding (rounding high multiply to 0.5000..., then a rounding shift by 1) would give 1.
    out = both(np.int8([1, -1]), np.int8([1, 1]), input1_zero_point=0, input2_zero_point=0, output_zero_point=0,
               output_multiplier=(1 << 30) + 1, output_shift=-1)
    assert out.tolist() == [0, 0]


def test_mul_squeeze_excite_by_hand():
    """x [1,2,2,2] times the gate [1,1,1,2]; x at scale 0.1 (zp 0), gate a sigmoid output
    (scale 1/256, zp -128), output at scale 0.1 (zp 0): the real multiplier is 1/256, so
    out = round_half_up(x * (g + 128) / 256). Channel 0's gate is 64 (g + 128 = 192, 0.75):
    10 -> 7.5 -> 8, 30 -> 22.5 -> 23, -20 -> -15, -7 -> -5.25 -> -5; channel 1's gate is -128
    (0.0): every output is the zero point."""
    x = np.int8([[[10, 100], [30, -5]], [[-20, 127], [-7, -128]]]).reshape(1, 2, 2, 2)
    gate = np.int8([64, -128]).reshape(1, 1, 1, 2)
    params = dict(input1_zero_point=0, input2_zero_point=-128, output_zero_point=0, **E.mul_params(0.1, 1 / 256, 0.1))
    out = both(x, gate, **params)
    assert out[..., 0].ravel().tolist() == [8, 23, -15, -5]
    assert out[..., 1].ravel().tolist() == [0, 0, 0, 0]
    # each batch has its own gate: batch 1's (g + 128 = 2 and 1) scales by 2/256 and 1/256
    x2 = np.concatenate([x, x])
    gate2 = np.int8([64, -128, -126, -127]).reshape(2, 1, 1, 2)
    out2 = both(x2, gate2, **params)
    exact(out2[:1], out, "batch 0")
    exact(out2[1], both(x, gate2[1:], **params)[0], "batch 1 alone")
    # the broadcast is the same as multiplying by the gate repeated over the pixels
    exact(both(x2, np.broadcast_to(gate2, x2.shape).copy(), **params), out2, "broadcast = repeated gate")


def test_mul_saturation_and_activation_range():
    q = np.int8([[-128, 127, 1, 0]]).reshape(1, 1, 2, 2)
    ones = np.int8([1, 1]).reshape(1, 1, 1, 2)
    # shift 30, multiplier 2^31 - 1: x * (2^31 - 1) * 2^-1 saturates to the int32 limits; the
    # output zero point is added in 64 bits, so +127 on INT32_MIN still clamps to -128
    out = both(q, ones, input1_zero_point=0, input2_zero_point=0, output_zero_point=127, output_multiplier=INT32_MAX,
               output_shift=30)
    assert out.ravel().tolist() == [-128, 127, 127, 127]
    out = both(q, ones, input1_zero_point=0, input2_zero_point=0, output_zero_point=-128, output_multiplier=INT32_MAX,
               output_shift=30)
    assert out.ravel().tolist() == [-128, 127, 127, -128]
    # a fused activation range [5, 5] and ReLU ([zp_out, 127])
    params = dict(input1_zero_point=0, input2_zero_point=0, output_multiplier=1 << 30, output_shift=1)
    assert both(q, ones, **params, output_zero_point=0, act_min=5, act_max=5).ravel().tolist() == [5, 5, 5, 5]
    assert both(q, ones, **params, output_zero_point=-3, act_min=-3, act_max=127).ravel().tolist() == [-3, 124, -2, -3]
    # multiplier 0: every output is the clamped zero point
    assert both(q, ones, input1_zero_point=0, input2_zero_point=0, output_zero_point=9, output_multiplier=0,
                output_shift=30, act_min=-128, act_max=4).ravel().tolist() == [4, 4, 4, 4]


def test_mul_empty_and_any_rank():
    params = dict(input1_zero_point=1, input2_zero_point=-1, output_zero_point=2, output_multiplier=1 << 30,
                  output_shift=1)
    for shape in [(0,), (2, 0, 3, 4), (), (5,), (2, 3), (1, 2, 3, 4, 5)]:
        a = np.arange(int(np.prod(shape)), dtype=np.int64).astype(np.int8).reshape(shape)
        exact(both(a, a, **params), np.clip((a.astype(np.int64) - 1) * (a + 1) + 2, -128, 127).astype(np.int8),
              f"shape {shape}")
    x = np.zeros((2, 0, 3, 4), np.int8)
    assert both(x, np.zeros((2, 1, 1, 4), np.int8), **params).shape == (2, 0, 3, 4)
    assert both(np.zeros((1, 2, 2, 0), np.int8), np.zeros((1, 1, 1, 0), np.int8), **params).shape == (1, 2, 2, 0)


# ----------------------------------------------------------------------------------------
# Float check


def test_mul_against_float():
    """dequantize -> multiply -> quantize differs from mul_s8 by at most 1 step."""
    rng = np.random.default_rng(22)
    for case in range(CASES):
        a, b = operands(rng)
        s1, s2, s_out = scale(rng), scale(rng, -3, 0), scale(rng, -5, 1)
        zp1, zp2, zp_out = zero_point(rng), zero_point(rng), zero_point(rng)
        act_min, act_max = act_range(rng)
        q = E.mul_s8(a, b, input1_zero_point=zp1, input2_zero_point=zp2, output_zero_point=zp_out,
                     **E.mul_params(s1, s2, s_out), act_min=act_min, act_max=act_max)
        expected = quantize_real(real(a, s1, zp1) * real(b, s2, zp2), s_out, zp_out, act_min, act_max)
        diff = np.abs(q.astype(np.int64) - expected)
        assert diff.size == 0 or diff.max() <= 1, f"case {case}: max |int - float| = {diff.max()} LSB"


# ----------------------------------------------------------------------------------------
# Argument checking (both implementations share it) and layout independence


GOOD = dict(input1_zero_point=0, input2_zero_point=0, output_zero_point=0, output_multiplier=1 << 30, output_shift=0)


@pytest.mark.parametrize("impl", [E, C], ids=["numpy", "c"])
@pytest.mark.parametrize("input2_shape, change, message", [
    ((2, 3, 4, 5), {}, None),
    ((2, 1, 1, 5), {}, None),
    ((1, 1, 1, 5), {}, r"input2 of shape \(1, 1, 1, 5\) is neither"),  # batches must match
    ((2, 3, 1, 5), {}, r"input2 of shape \(2, 3, 1, 5\) is neither"),  # only both middle axes
    ((2, 1, 1, 1), {}, r"is neither input1's shape"),  # no broadcast over channels
    ((5,), {}, r"is neither input1's shape"),
    ((2, 3, 4, 5), {"output_shift": 31}, r"output_shift=31 is outside \[-31, 30\]"),
    ((2, 3, 4, 5), {"output_shift": -32}, r"output_shift=-32 is outside \[-31, 30\]"),
    ((2, 3, 4, 5), {"output_multiplier": -1}, r"output_multiplier=-1 is outside"),
    ((2, 3, 4, 5), {"output_multiplier": 1 << 31}, r"output_multiplier=2147483648 is outside"),
    ((2, 3, 4, 5), {"input1_zero_point": 128}, r"input1_zero_point=128 is outside \[-128, 127\]"),
    ((2, 3, 4, 5), {"input2_zero_point": -129}, r"input2_zero_point=-129 is outside"),
    ((2, 3, 4, 5), {"output_zero_point": 1.5}, r"output_zero_point must be an integer"),
    ((2, 3, 4, 5), {"act_min": 3, "act_max": 2}, r"act_min=3 > act_max=2"),
    ((2, 3, 4, 5), {"act_max": 128}, r"act_max=128 is outside"),
])
def test_mul_rejects_bad_arguments(impl, input2_shape, change, message):
    a = np.zeros((2, 3, 4, 5), np.int8)
    b = np.zeros(input2_shape, np.int8)
    if message is None:
        assert impl.mul_s8(a, b, **GOOD).shape == a.shape
        return
    with pytest.raises(ValueError, match=message):
        impl.mul_s8(a, b, **(GOOD | change))


@pytest.mark.parametrize("impl", [E, C], ids=["numpy", "c"])
def test_mul_rejects_bad_arrays(impl):
    a = np.zeros((1, 2, 3, 4), np.int8)
    with pytest.raises(ValueError, match="input1 must be an int8 array"):
        impl.mul_s8(a.astype(np.uint8), a, **GOOD)
    with pytest.raises(ValueError, match="input2 must be an int8 array"):
        impl.mul_s8(a, a.astype(np.int32), **GOOD)
    with pytest.raises(ValueError, match="is neither"):  # the gate must be the second operand
        impl.mul_s8(a[:, :1, :1], a, **GOOD)


def test_mul_params_reject_bad_scales():
    with pytest.raises(ValueError, match="input1_scale must be a positive finite float32"):
        E.mul_params(0.0, 0.1, 0.1)
    with pytest.raises(ValueError, match="input2_scale"):
        E.mul_params(0.1, float("nan"), 0.1)
    with pytest.raises(ValueError, match="output_scale"):
        E.mul_params(0.1, 0.1, -1.0)
    with pytest.raises(ValueError, match="too large"):  # 2^31: shift 32
        E.mul_params(2.0**16, 2.0**16, 2.0)


def test_mul_non_contiguous_inputs():
    rng = np.random.default_rng(23)
    x = rng.integers(-128, 128, size=(2, 6, 5, 7), dtype=np.int8)
    view = x[:, ::2, ::-1, 1:6]
    gate = x[:, :1, 2:3, 6:1:-1]
    params = dict(input1_zero_point=3, input2_zero_point=-4, output_zero_point=1, **E.mul_params(0.1, 0.2, 0.25))
    exact(both(view, view, **params), E.mul_s8(view.copy(), view.copy(), **params), "same shape")
    exact(both(view, gate, **params), E.mul_s8(view.copy(), gate.copy(), **params), "broadcast")
