"""INT8 element-wise, pooling and data-movement kernels: NumPy reference vs portable C, bit for bit.

compiler.quant.reference.{elementwise,pool} (the spec) against compiler.quant._ref_elementwise
(kernels/ref/add_s8.c, pool_s8.c, concat_pad_s8.c). Seeded randomised property tests demand
exact equality over odd shapes, every padding / stride / kernel combination (windows larger
than the input, global windows), extreme zero points and values and extreme scale ratios;
hand-derived cases pin TFLite's semantics; float checks (dequantize -> float op -> quantize)
bound every op to 1 LSB.
"""

import math

import numpy as np
import pytest

import compiler.quant._ref_elementwise as C
from compiler.quant.fixed_point import quantize_multiplier
from compiler.quant.reference import elementwise as E
from compiler.quant.reference import pool as P
from int8_random import act_range, exact, int8_tensor, nhwc, quantize_real, real, scale, within_one_lsb, zero_point

CASES = 1500  # random cases per property test


# ----------------------------------------------------------------------------------------
# Random generators (the shared ones: int8_random.py)


def raw_multiplier(rng):
    return int(rng.choice([0, 1, 1 << 30, (1 << 31) - 1, int(rng.integers(1 << 30, 1 << 31)),
                           int(rng.integers(0, 1 << 31))], p=[0.05, 0.05, 0.1, 0.1, 0.5, 0.2]))


# ----------------------------------------------------------------------------------------
# Residual add


def random_add_scales(rng):
    s1 = scale(rng)
    ratio = 10.0 ** rng.choice([rng.uniform(-7, 7), rng.uniform(-1, 1), 0.0])
    s2 = s1 * ratio
    twice_max = 2 * max(float(np.float32(s1)), float(np.float32(s2)))
    # output multiplier twice_max / (2**20 s_out) in (0, 1): s_out from ~2**-19 * twice_max upwards
    s_out = max(s1, s2) * 10.0 ** (rng.uniform(-5.5, 3) if rng.random() < 0.3 else rng.uniform(-1, 1))
    s_out = max(s_out, twice_max / 2**19)
    return s1, s2, s_out


def test_add_matches_c_from_scales():
    rng = np.random.default_rng(1)
    for case in range(CASES):
        shape = nhwc(rng)
        s1, s2, s_out = random_add_scales(rng)
        params = E.add_params(s1, zero_point(rng), s2, zero_point(rng), s_out, zero_point(rng), *act_range(rng))
        params |= dict(rounding=case % 3, subtract=case // 3 % 2)  # every rounding, add and subtract
        a, b = int8_tensor(rng, shape), int8_tensor(rng, shape)
        exact(E.add_s8(a, b, **params), C.add_s8(a, b, **params), f"case {case}: {params}")


def test_add_matches_c_raw_integer_params():
    """The whole documented parameter domain, saturating multipliers included."""
    rng = np.random.default_rng(2)
    for case in range(CASES):
        shape = nhwc(rng, max_hw=5)
        act_min, act_max = act_range(rng)
        params = dict(input1_zero_point=zero_point(rng), input1_multiplier=raw_multiplier(rng),
                      input1_shift=int(rng.integers(-31, 1)), input2_zero_point=zero_point(rng),
                      input2_multiplier=raw_multiplier(rng), input2_shift=int(rng.integers(-31, 1)),
                      output_zero_point=zero_point(rng), output_multiplier=raw_multiplier(rng),
                      output_shift=int(rng.choice([0, -1, int(rng.integers(-31, 1))])),
                      left_shift=int(rng.choice([20, 0, int(rng.integers(0, 21))])), act_min=act_min, act_max=act_max,
                      rounding=case % 3, subtract=case // 3 % 2)
        a, b = int8_tensor(rng, shape), int8_tensor(rng, shape)
        exact(E.add_s8(a, b, **params), C.add_s8(a, b, **params), f"case {case}: {params}")


def test_add_equal_scales_is_the_integer_sum():
    """Equal scales: out = clamp(q1 - zp1 + q2 - zp2 + zp_out), exactly, over every pair of int8 values."""
    q1, q2 = np.meshgrid(np.arange(-128, 128, dtype=np.int8), np.arange(-128, 128, dtype=np.int8))
    q1, q2 = q1.reshape(1, 256, 256, 1), q2.reshape(1, 256, 256, 1)
    for zp1, zp2, zp_out in [(0, 0, 0), (-128, 127, 5), (127, 127, -128), (3, -7, 11)]:
        params = E.add_params(0.02, zp1, 0.02, zp2, 0.02, zp_out)
        assert (params["input1_multiplier"], params["input1_shift"]) == (1 << 30, 0)
        assert (params["output_multiplier"], params["output_shift"]) == (1 << 30, -18)  # 2**-19
        expected = np.clip(q1.astype(np.int64) - zp1 + q2.astype(np.int64) - zp2 + zp_out, -128, 127)
        exact(E.add_s8(q1, q2, **params), expected.astype(np.int8), "numpy")
        exact(C.add_s8(q1, q2, **params), expected.astype(np.int8), "c")


def test_add_params_follow_tflite_prepare():
    # s1 = 0.5, s2 = 0.25, s_out = 1: twice_max = 1; real multipliers 0.5, 0.25, 2**-20
    params = E.add_params(0.5, 1, 0.25, -1, 1.0, 2, act_min=-10, act_max=100)
    assert params == dict(input1_zero_point=1, input1_multiplier=1 << 30, input1_shift=0,
                          input2_zero_point=-1, input2_multiplier=1 << 30, input2_shift=-1,
                          output_zero_point=2, output_multiplier=1 << 30, output_shift=-19,
                          left_shift=20, act_min=-10, act_max=100)
    # non-power-of-two: multipliers computed in double from float32 scales
    s1, s2, s_out = 0.1, 0.3, 0.7
    f1, f2, fo = (float(np.float32(s)) for s in (s1, s2, s_out))
    params = E.add_params(s1, 0, s2, 0, s_out, 0)
    assert (params["input1_multiplier"], params["input1_shift"]) == quantize_multiplier(f1 / (2 * f2))
    assert (params["input2_multiplier"], params["input2_shift"]) == quantize_multiplier(0.5)
    assert (params["output_multiplier"], params["output_shift"]) == quantize_multiplier(2 * f2 / (2**20 * fo))
    with pytest.raises(ValueError):  # output multiplier >= 1
        E.add_params(1.0, 0, 1.0, 0, 2.0**-20, 0)


def test_add_against_float():
    rng = np.random.default_rng(3)
    for case in range(CASES):
        shape = nhwc(rng)
        s1, s2, s_out = random_add_scales(rng)
        zp1, zp2, zp_out = zero_point(rng), zero_point(rng), zero_point(rng)
        act_min, act_max = act_range(rng)
        a, b = int8_tensor(rng, shape), int8_tensor(rng, shape)
        q = E.add_s8(a, b, **E.add_params(s1, zp1, s2, zp2, s_out, zp_out, act_min, act_max))
        within_one_lsb(q, quantize_real(real(a, s1, zp1) + real(b, s2, zp2), s_out, zp_out, act_min, act_max),
                       f"case {case}")


def add_operands(rng):
    """(input1, input2, layout keywords): NHWC with input2 [N,1,1,C] or input1's shape (layout from
    the shapes, or given explicitly on flat copies of the data), channel counts beyond a vector."""
    shape = nhwc(rng, max_c=int(rng.choice([9, 40])))
    broadcast = rng.random() < 0.5
    a = int8_tensor(rng, shape)
    b = int8_tensor(rng, (shape[0], 1, 1, shape[3]) if broadcast else shape)
    if rng.random() < 0.3:  # the C layout itself, on 1-D data
        layout = dict(batches=shape[0], pixels=shape[1] * shape[2], channels=shape[3], broadcast=int(broadcast))
        return a.reshape(-1), b.reshape(-1), layout
    return a, b, {}


def test_add_sub_broadcast_match_c_from_scales():
    rng = np.random.default_rng(31)
    for case in range(CASES):
        a, b, layout = add_operands(rng)
        s1, s2, s_out = random_add_scales(rng)
        params = E.add_params(s1, zero_point(rng), s2, zero_point(rng), s_out, zero_point(rng), *act_range(rng))
        params |= dict(layout, subtract=int(rng.integers(2)))
        exact(E.add_s8(a, b, **params), C.add_s8(a, b, **params), f"case {case}: {a.shape} {b.shape} {params}")


def test_add_sub_broadcast_match_c_raw_integer_params():
    """Saturating multipliers, every shift, any left shift, with broadcast and subtract."""
    rng = np.random.default_rng(32)
    for case in range(CASES):
        a, b, layout = add_operands(rng)
        act_min, act_max = act_range(rng)
        params = dict(input1_zero_point=zero_point(rng), input1_multiplier=raw_multiplier(rng),
                      input1_shift=int(rng.integers(-31, 1)), input2_zero_point=zero_point(rng),
                      input2_multiplier=raw_multiplier(rng), input2_shift=int(rng.integers(-31, 1)),
                      output_zero_point=zero_point(rng), output_multiplier=raw_multiplier(rng),
                      output_shift=int(rng.choice([0, -1, int(rng.integers(-31, 1))])),
                      left_shift=int(rng.choice([20, 0, int(rng.integers(0, 21))])), act_min=act_min, act_max=act_max,
                      subtract=int(rng.integers(2)), **layout)
        exact(E.add_s8(a, b, **params), C.add_s8(a, b, **params), f"case {case}: {a.shape} {b.shape} {params}")


def test_sub_equal_scales_is_the_integer_difference():
    """Equal scales: out = clamp(q1 - zp1 - (q2 - zp2) + zp_out), exactly, over every pair of int8 values."""
    q1, q2 = np.meshgrid(np.arange(-128, 128, dtype=np.int8), np.arange(-128, 128, dtype=np.int8))
    q1, q2 = q1.reshape(1, 256, 256, 1), q2.reshape(1, 256, 256, 1)
    for zp1, zp2, zp_out in [(0, 0, 0), (-128, 127, 5), (127, -128, -128), (127, 127, 127), (3, -7, 11)]:
        params = dict(E.add_params(0.02, zp1, 0.02, zp2, 0.02, zp_out), subtract=1)
        expected = np.clip(q1.astype(np.int64) - zp1 - (q2.astype(np.int64) - zp2) + zp_out, -128, 127)
        exact(E.add_s8(q1, q2, **params), expected.astype(np.int8), "numpy")
        exact(C.add_s8(q1, q2, **params), expected.astype(np.int8), "c")


def test_sub_against_float():
    """Dequantised, the difference is within one output step of (real1 - real2) requantised."""
    rng = np.random.default_rng(33)
    for case in range(CASES):
        shape = nhwc(rng)
        s1, s2, s_out = random_add_scales(rng)
        zp1, zp2, zp_out = zero_point(rng), zero_point(rng), zero_point(rng)
        act_min, act_max = act_range(rng)
        a, b = int8_tensor(rng, shape), int8_tensor(rng, shape)
        q = E.add_s8(a, b, subtract=1, **E.add_params(s1, zp1, s2, zp2, s_out, zp_out, act_min, act_max))
        within_one_lsb(q, quantize_real(real(a, s1, zp1) - real(b, s2, zp2), s_out, zp_out, act_min, act_max),
                       f"case {case}")


@pytest.mark.parametrize("impl", [E, C], ids=["numpy", "c"])
def test_add_broadcast_is_numpy_broadcasting(impl):
    """A [N,1,1,C] input2 gives what its copy broadcast to input1's shape gives, for add and subtract."""
    rng = np.random.default_rng(34)
    for case in range(CASES // 5):
        shape = nhwc(rng, max_c=40)
        a, b = int8_tensor(rng, shape), int8_tensor(rng, (shape[0], 1, 1, shape[3]))
        s1, s2, s_out = random_add_scales(rng)
        params = E.add_params(s1, zero_point(rng), s2, zero_point(rng), s_out, zero_point(rng), *act_range(rng))
        params["subtract"] = case % 2
        want = E.add_s8(a, np.broadcast_to(b, shape).copy(), **params)
        exact(impl.add_s8(a, b, **params), want, f"case {case}: {shape} {params}")


# ----------------------------------------------------------------------------------------
# Requantize, quantize, dequantize


def test_requantize_matches_c():
    rng = np.random.default_rng(4)
    for case in range(CASES):
        x = int8_tensor(rng, nhwc(rng))
        act_min, act_max = act_range(rng)
        if case % 2:
            params = E.requantize_params(scale(rng), zero_point(rng), scale(rng, -6, 2) if case % 3 else scale(rng),
                                         zero_point(rng))
        else:  # raw: shifts up to 30 saturate
            params = dict(input_zero_point=zero_point(rng), output_zero_point=zero_point(rng),
                          multiplier=raw_multiplier(rng), shift=int(rng.integers(-31, 31)))
        exact(E.requantize_s8(x, **params, act_min=act_min, act_max=act_max),
              C.requantize_s8(x, **params, act_min=act_min, act_max=act_max), f"case {case}: {params}")


def test_requantize_hand_derived():
    x = np.arange(-128, 128, dtype=np.int8).reshape(1, 1, 16, 16)
    assert E.requantize_multiplier(0.37, 0.37) == (1 << 30, 1)
    same = E.requantize_params(0.37, -5, 0.37, -5)
    for impl in (E, C):
        exact(impl.requantize_s8(x, **same), x, "identity")
        # s_in = 2 s_out, zp 0 -> 0: q -> clamp(2 q)
        params = E.requantize_params(0.5, 0, 0.25, 0)
        exact(impl.requantize_s8(x, **params), np.clip(2 * x.astype(np.int64), -128, 127).astype(np.int8), "x2")
        # zero-point shift only
        params = E.requantize_params(1.0, 10, 1.0, -20)
        exact(impl.requantize_s8(x, **params), np.clip(x.astype(np.int64) - 30, -128, 127).astype(np.int8), "zp")


def test_requantize_against_float():
    rng = np.random.default_rng(5)
    for case in range(CASES):
        x = int8_tensor(rng, nhwc(rng))
        s_in, s_out, zp_in, zp_out = scale(rng), scale(rng), zero_point(rng), zero_point(rng)
        q = E.requantize_s8(x, **E.requantize_params(s_in, zp_in, s_out, zp_out))
        within_one_lsb(q, quantize_real(real(x, s_in, zp_in), s_out, zp_out), f"case {case}")


def random_floats(rng, s, count):
    ties = (rng.integers(-300, 300, count) + 0.5) * np.float32(s)  # exact (k + 0.5) * scale in float32
    wide = rng.normal(0, 200 * s, count)
    small = rng.uniform(-2 * s, 2 * s, count)
    special = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e30, -1e30, 1e-30, np.nextafter(np.float32(0.5), 0)])
    return np.concatenate([ties, wide, small, special]).astype(np.float32)


def test_quantize_dequantize_match_c():
    rng = np.random.default_rng(6)
    for case in range(CASES):
        s, zp = scale(rng, -6, 3), zero_point(rng)
        x = random_floats(rng, s, 64)
        exact(E.quantize(x, s, zp), C.quantize(x, s, zp), f"quantize case {case}: s={s} zp={zp}")
        q = int8_tensor(rng, (int(rng.integers(1, 50)),))
        exact(E.dequantize(q, s, zp), C.dequantize(q, s, zp), f"dequantize case {case}")
        # TFLite computes float32(double(scale) * (q - zp)); one float32 multiply is the same number
        tflite = (float(np.float32(s)) * (q.astype(np.float64) - zp)).astype(np.float32)
        exact(E.dequantize(q, s, zp), tflite, f"dequantize vs TFLite's double product, case {case}")


def test_quantize_hand_derived():
    x = np.array([0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 0.49999997, 126.5, 127.5, -128.5, 1e9, -1e9, np.nan], np.float32)
    for impl in (E, C):
        exact(impl.quantize(x, 1.0, 0),
              np.array([0, 0, 2, -2, 2, -2, 0, 126, 127, -128, 127, -128, 0], np.int8), "ties to even")
        exact(impl.quantize(np.float32([0.0, 0.25, -0.25, 0.75, np.nan]), 0.5, -128),
              np.int8([-128, -128, -128, -126, -128]), "zp -128")
        exact(impl.dequantize(np.int8([-128, 127, 0]), 0.5, 127), np.float32([-127.5, 0.0, -63.5]), "dequantize")


def test_quantize_round_trip_against_float():
    rng = np.random.default_rng(7)
    for _ in range(CASES):
        s, zp = scale(rng), zero_point(rng)
        x = rng.uniform(s * (-128 - zp), s * (127 - zp), 200).astype(np.float32)  # representable range
        error = np.abs(E.dequantize(E.quantize(x, s, zp), s, zp).astype(np.float64) - x)
        assert error.max() <= 0.5 * s * (1 + 2e-4)  # float32 rounding of x, x / s and the product


def test_dequantize_blocks_match_c():
    """block > 0 (TFLite models: LiteRT's vector blocks) around the block boundaries; block 0, the
    ONNX spec's form, is the default and still one float32 multiply."""
    rng = np.random.default_rng(16)
    for case in range(CASES):
        s, zp = scale(rng, -6, 3), zero_point(rng)
        q = int8_tensor(rng, (int(rng.integers(1, 3)), int(rng.integers(1, 40))))
        block = int(rng.choice([0, 8, int(rng.integers(1, 20)), q.size, q.size + 1]))
        exact(E.dequantize(q, s, zp, block), C.dequantize(q, s, zp, block), f"case {case}: s={s} zp={zp} {block}")
        once = (np.float32(s) * (q.astype(np.int32) - zp).astype(np.float32)).astype(np.float32)
        for impl in (E, C):
            exact(impl.dequantize(q, s, zp, 0), once, f"block 0, case {case}")
            exact(impl.dequantize(q, s, zp), once, f"default, case {case}")


def test_dequantize_blocks_hand_derived():
    # s = 0.1f, zp 3, q 1: 0.1f + (-0.3f) is one ulp below 0.1f * -2 (the product rounded once)
    s, q = np.float32(0.1), np.ones((1, 11), np.int8)
    blocked, once = np.float32(s + np.float32(-3 * np.float64(s))), np.float32(-2 * np.float64(s))
    assert blocked != once
    for impl in (E, C):
        out = impl.dequantize(q, 0.1, 3, 8)
        assert out.shape == (1, 11) and out.dtype == np.float32
        exact(out.ravel(), np.float32([blocked] * 8 + [once] * 3), "8 in the block, 3 after it")
        exact(impl.dequantize(q, 0.1, 3, 12), np.full((1, 11), once, np.float32), "no whole block")
        exact(impl.dequantize(q, 0.1, 3, 11), np.full((1, 11), blocked, np.float32), "one whole block")
        with pytest.raises(ValueError, match="block"):
            impl.dequantize(q, 0.1, 3, -1)


# ----------------------------------------------------------------------------------------
# Pooling


def random_pool_geometry(rng, shape):
    _, h, w, _ = shape
    if rng.random() < 0.15:  # global window
        return dict(kernel=(h, w), stride=(1, 1), padding=(0, 0, 0, 0))
    kernel = (int(rng.integers(1, h + 3)), int(rng.integers(1, w + 3)))  # may exceed the input
    stride = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
    reach = 2 if rng.random() < 0.15 else 0  # sometimes padding >= kernel (empty windows possible)
    padding = tuple(int(rng.integers(0, k + reach)) for k in (kernel[0], kernel[1], kernel[0], kernel[1]))
    if rng.random() < 0.2:
        padding = (0, 0, 0, 0)
    # mostly a non-empty output: grow the bottom / right padding until the window fits
    pt, pl, pb, pr = padding
    pb += max(0, kernel[0] - (h + pt + pb))
    pr += max(0, kernel[1] - (w + pl + pr))
    return dict(kernel=kernel, stride=stride, padding=(pt, pl, pb, pr))


def pool_cases(seed):
    """(x, geometry, act range) with valid geometry; also counts the cases both sides rejected."""
    rng = np.random.default_rng(seed)
    produced = rejected = 0
    while produced < CASES:
        shape = nhwc(rng)
        geometry = random_pool_geometry(rng, shape)
        x = int8_tensor(rng, shape)
        act_min, act_max = act_range(rng)
        try:
            P._pool_geometry(x, **geometry)
        except ValueError:  # empty output or a window entirely in the padding: C rejects it too
            with pytest.raises(ValueError):
                C.avg_pool2d_s8(x, **geometry)
            with pytest.raises(ValueError):
                C.max_pool2d_s8(x, **geometry)
            rejected += 1
            continue
        produced += 1
        yield x, geometry, act_min, act_max
    assert 0 < rejected < CASES // 2  # rejections happen, but rarely


@pytest.mark.parametrize("op", ["avg_pool2d_s8", "max_pool2d_s8"])
def test_pool_matches_c(op):
    for case, (x, geometry, act_min, act_max) in enumerate(pool_cases(8)):
        exact(getattr(P, op)(x, **geometry, act_min=act_min, act_max=act_max),
              getattr(C, op)(x, **geometry, act_min=act_min, act_max=act_max), f"case {case}: {x.shape} {geometry}")


def test_pool_output_size_and_large_windows():
    x = np.arange(3 * 5, dtype=np.int8).reshape(1, 3, 5, 1)
    # window 5x7 over a 3x5 input with one pixel of padding on every side: one output, the global mean
    for impl in (P, C):
        out = impl.avg_pool2d_s8(x, kernel=(5, 7), padding=(1, 1, 1, 1))
        assert out.shape == (1, 1, 1, 1) and out[0, 0, 0, 0] == 7  # mean of 0..14
        assert impl.max_pool2d_s8(x, kernel=(5, 7), padding=(1, 1, 1, 1))[0, 0, 0, 0] == 14
        assert impl.avg_pool2d_s8(x, kernel=(2, 2), stride=(2, 2), padding=(0, 0, 1, 1)).shape == (1, 2, 3, 1)
    assert P.pool2d_output_size(7, 3, 2, 1, 1) == 4


def test_avg_pool_hand_derived():
    def avg(values):
        x = np.array(values, np.int8).reshape(1, 1, len(values), 1)
        outs = [int(impl.avg_pool2d_s8(x, kernel=(1, len(values)))[0, 0, 0, 0]) for impl in (P, C)]
        assert outs[0] == outs[1]
        return outs[0]

    assert avg([1, 2]) == 2  # 1.5 -> 2
    assert avg([-1, -2]) == -2  # -1.5 -> -2
    assert avg([-1, 2]) == 1  # 0.5 -> 1
    assert avg([1, -2]) == -1  # -0.5 -> -1
    assert avg([1, 1, 2]) == 1  # 1.33 -> 1
    assert avg([1, 2, 2]) == 2  # 1.67 -> 2
    assert avg([127, 127, 126]) == 127
    assert avg([-128, -128, -127, -128]) == -128
    # padding is not counted: a 3x3 window at the corner of [[4, 8], [0, 0]] averages the 4 valid values
    x = np.array([[4, 8], [0, 0]], np.int8).reshape(1, 2, 2, 1)
    for impl in (P, C):
        assert impl.avg_pool2d_s8(x, kernel=(3, 3), padding=(1, 1, 0, 0))[0, 0, 0, 0] == 3
        # activation clamp
        assert impl.avg_pool2d_s8(x, kernel=(1, 2), act_min=5, act_max=5).ravel().tolist() == [5, 5]


def test_max_pool_ignores_padding():
    x = np.full((1, 3, 3, 2), -100, np.int8)
    x[0, 1, 1, 1] = -128
    for impl in (P, C):
        out = impl.max_pool2d_s8(x, kernel=(3, 3), padding=(1, 1, 1, 1))
        assert (out == -100).all()  # a padded zero (or zero point) never wins
        assert (impl.max_pool2d_s8(x, kernel=(2, 2), act_min=-50, act_max=127) == -50).all()


def test_pool_against_float():
    for case, (x, geometry, act_min, act_max) in enumerate(pool_cases(9)):
        s, zp = 0.05, 3  # input and output share (scale, zero point)
        g = P._pool_geometry(x, **geometry)
        xr = real(x, s, zp)
        mean = np.empty((g.n, g.out_h, g.out_w, g.c))
        peak = np.empty_like(mean)
        for oy, (y0, y1) in enumerate(g.rows):
            for ox, (x0, x1) in enumerate(g.cols):
                mean[:, oy, ox] = xr[:, y0:y1, x0:x1].mean(axis=(1, 2))
                peak[:, oy, ox] = xr[:, y0:y1, x0:x1].max(axis=(1, 2))
        within_one_lsb(P.avg_pool2d_s8(x, **geometry, act_min=act_min, act_max=act_max),
                       quantize_real(mean, s, zp, act_min, act_max), f"avg case {case}")
        exact(P.max_pool2d_s8(x, **geometry, act_min=act_min, act_max=act_max).astype(np.int64),
              quantize_real(peak, s, zp, act_min, act_max), f"max case {case}")


def test_pool_rejects_empty_windows_and_bad_shapes():
    x = np.zeros((1, 4, 4, 1), np.int8)
    for impl in (P, C):
        for op in (impl.avg_pool2d_s8, impl.max_pool2d_s8):
            with pytest.raises(ValueError):  # first window entirely in the padding
                op(x, kernel=(2, 2), padding=(2, 0, 0, 0))
            with pytest.raises(ValueError):  # empty output
                op(x, kernel=(5, 5))
            with pytest.raises(ValueError):
                op(x[0], kernel=(2, 2))
            with pytest.raises(ValueError):
                op(x.astype(np.int16), kernel=(2, 2))
            with pytest.raises(ValueError):
                op(x, kernel=(0, 2))
            with pytest.raises(ValueError):
                op(x, kernel=(2, 2), act_min=3, act_max=2)
        # padding >= kernel is fine as long as no window falls entirely in it
        exact(impl.avg_pool2d_s8(x, kernel=(2, 2), stride=(3, 3), padding=(0, 0, 2, 2)), np.zeros((1, 2, 2, 1), np.int8),
              "pad >= kernel")


# ----------------------------------------------------------------------------------------
# Global average pool (TFLite int8 MEAN over H, W)


def test_global_avg_pool_matches_c():
    rng = np.random.default_rng(10)
    for case in range(CASES):
        shape = nhwc(rng, max_hw=12)
        x = int8_tensor(rng, shape)
        act_min, act_max = act_range(rng) if case % 4 == 0 else (-128, 127)
        if case % 2:
            s_in = scale(rng)
            s_out = s_in * 10.0 ** rng.choice([rng.uniform(-8, 6), rng.uniform(-1, 1)])
            params = P.mean_params(s_in, zero_point(rng), s_out, zero_point(rng), shape[1] * shape[2])
        else:  # raw: saturating shifts included
            params = dict(input_zero_point=zero_point(rng), output_zero_point=zero_point(rng),
                          multiplier=raw_multiplier(rng), shift=int(rng.integers(-31, 31)))
        exact(P.global_avg_pool2d_s8(x, **params, act_min=act_min, act_max=act_max),
              C.global_avg_pool2d_s8(x, **params, act_min=act_min, act_max=act_max), f"case {case}: {shape} {params}")


def test_global_avg_pool_hand_derived():
    x = np.stack([np.array([[1, 2], [3, 4]]), np.array([[-1, -2], [-3, -4]])], axis=-1).astype(np.int8)[None]
    same = P.mean_params(0.1, 0, 0.1, 0, 4)
    assert (same["multiplier"], same["shift"]) == (1 << 30, -1)  # 1/4 folded in: 0.5 * 2^-1
    for impl in (P, C):
        # sums 10 and -10 times 1/4: 2.5 -> 3 and -2.5 -> -2 (one rounding, ties toward +infinity)
        assert impl.global_avg_pool2d_s8(x, **same).ravel().tolist() == [3, -2]
        # zero points: sum of (q - zp_in) = 6 and -14, times 1/4 = 1.5 and -3.5 -> 2 and -3, then + zp_out
        assert impl.global_avg_pool2d_s8(x, **P.mean_params(0.1, 1, 0.1, -10, 4)).ravel().tolist() == [-8, -13]
        # s_in = 4 s_out: the mean 2.5 becomes 10 exactly
        assert impl.global_avg_pool2d_s8(x, **P.mean_params(0.4, 0, 0.1, 0, 4)).ravel().tolist() == [10, -10]
        # saturation
        big = np.full((1, 3, 3, 1), 127, np.int8)
        assert impl.global_avg_pool2d_s8(big, **P.mean_params(1.0, -128, 0.001, 0, 9)).ravel().tolist() == [127]
    assert P.global_avg_pool2d_s8(x, **same).shape == (1, 1, 1, 2)


def test_global_avg_pool_against_float():
    rng = np.random.default_rng(11)
    for case in range(CASES):
        x = int8_tensor(rng, nhwc(rng, max_hw=12))
        s_in, s_out = scale(rng), scale(rng)
        zp_in, zp_out = zero_point(rng), zero_point(rng)
        q = P.global_avg_pool2d_s8(x, **P.mean_params(s_in, zp_in, s_out, zp_out, x.shape[1] * x.shape[2]))
        expected = quantize_real(real(x, s_in, zp_in).mean(axis=(1, 2), keepdims=True), s_out, zp_out)
        within_one_lsb(q, expected, f"case {case}")


def test_global_avg_pool_litert_matches_c():
    """TFLite models' MEAN (litert_mean_params: raw sums, the input zero point as a bias after the
    rounding) with every pair of roundings for the 16-channel blocks and the rest, and raw biases."""
    rng = np.random.default_rng(12)
    for case in range(CASES):
        shape = nhwc(rng, max_hw=12, max_c=int(rng.choice([9, 40])))
        x = int8_tensor(rng, shape)
        act_min, act_max = act_range(rng) if case % 4 == 0 else (-128, 127)
        s_in = scale(rng)
        s_out = s_in * 10.0 ** rng.choice([rng.uniform(-6, 6), rng.uniform(-1, 1)])
        params = P.litert_mean_params(s_in, zero_point(rng), s_out, zero_point(rng), shape[1] * shape[2])
        if case % 5 == 0:
            params["bias"] = int(rng.choice([-(1 << 30), 1 << 30, rng.integers(-(1 << 30), 1 << 30)]))
        params |= dict(rounding=case % 3, block_rounding=case // 3 % 3, act_min=act_min, act_max=act_max)
        exact(P.global_avg_pool2d_s8(x, **params), C.global_avg_pool2d_s8(x, **params), f"case {case}: {shape} {params}")


def test_global_avg_pool_litert_hand_derived():
    """LiteRT's MEAN of 20 channels, 2x2 pixels: channels 0..15 (its SIMD loop) round ties up,
    16..19 (its scalar loop) ties away from zero; the input zero point leaves the sum as a bias."""
    x = np.zeros((1, 2, 2, 20), np.int8)
    x[0, :, :, :] = [[-1], [-2]]  # sum -6 in every channel: the mean -1.5
    p = P.litert_mean_params(0.1, 0, 0.1, 0, 4)
    assert (p["multiplier"], p["shift"], p["bias"], p["input_zero_point"]) == (1 << 30, -1, 0, 0)
    litert = dict(rounding=1, block_rounding=2)  # integer_spec.MEAN_ROUNDING[TFLITE]
    for impl in (P, C):
        assert impl.global_avg_pool2d_s8(x, **p, **litert).ravel().tolist() == [-1] * 16 + [-2] * 4
        assert impl.global_avg_pool2d_s8(x, **p).ravel().tolist() == [-1] * 20  # rounded once (ONNX)
    # zp_in 3, s_in / s_out 0.5: bias -round_half_away(1.5) = -2, whatever the inputs
    assert P.litert_mean_params(0.05, 3, 0.1, 7, 4)["bias"] == -2
    assert P.litert_mean_params(0.05, -3, 0.1, 7, 4)["bias"] == 2
    with pytest.raises(ValueError, match="exceeds 2\\*\\*22"):
        P.litert_mean_params(1.0, 0, 1e-7, 0, 4)
    for impl in (P, C):
        with pytest.raises(ValueError, match="bias"):
            impl.global_avg_pool2d_s8(x, **dict(p, bias=(1 << 30) + 1))
        with pytest.raises(ValueError, match="rounding"):
            impl.global_avg_pool2d_s8(x, **p, block_rounding=3)


def test_global_avg_pool_litert_reference_matches_c():
    """TFLite models' MEAN without keep_dims (litert_reference_mean_params: 1/n folded into the
    multiplier in integers, so multipliers below 2**30 and shifts down to -31), gemmlowp's rounding
    in every channel; planes up to 90x90 and scale ratios from 2**-24 to 2**8."""
    rng = np.random.default_rng(13)
    for case in range(CASES):
        shape = nhwc(rng, max_hw=int(rng.choice([12, 90])), max_c=20)
        x = int8_tensor(rng, shape)
        s_in = scale(rng)
        params = P.litert_reference_mean_params(s_in, zero_point(rng), s_in * 2.0 ** rng.uniform(-8, 24),
                                                zero_point(rng), shape[1] * shape[2])
        params |= dict(rounding=1, block_rounding=1)  # integer_spec.MEAN_ROUNDING_WITHOUT_KEEP_DIMS[TFLITE]
        exact(P.global_avg_pool2d_s8(x, **params), C.global_avg_pool2d_s8(x, **params), f"case {case}: {shape} {params}")


def test_global_avg_pool_litert_reference_hand_derived():
    """LiteRT's reference MEAN of 2x2 pixels, equal scales: the multiplier 2**30 (shift 1) of
    s_in / s_out takes 1/4 as k = 2 shifts: 2**30 * 4 / 4 at shift -1. Means of -1.5 round away
    from zero in every channel (LiteRT's optimized MEAN, with keep_dims, rounds its 16-channel
    blocks up)."""
    x = np.zeros((1, 2, 2, 20), np.int8)
    x[0, :, :, :] = [[-1], [-2]]  # sum -6 in every channel: the mean -1.5
    p = P.litert_reference_mean_params(0.1, 0, 0.1, 0, 4)
    assert (p["multiplier"], p["shift"], p["input_zero_point"]) == (1 << 30, -1, 0)
    for impl in (P, C):
        assert impl.global_avg_pool2d_s8(x, **p, rounding=1, block_rounding=1).ravel().tolist() == [-2] * 20
    # n = 3: 2**30 * 2 // 3 (truncated) at shift 0; the sum of q - 1 is 4: 1.33 -> 1, plus 5
    p = P.litert_reference_mean_params(0.1, 1, 0.1, 5, 3)
    assert (p["multiplier"], p["shift"]) == ((1 << 31) // 3, 0)
    three = np.array([2, 2, 3], np.int8).reshape(1, 3, 1, 1)
    for impl in (P, C):
        assert impl.global_avg_pool2d_s8(three, **p, rounding=1, block_rounding=1).ravel().tolist() == [6]
    # s_in / s_out = 2**-20 (shift -19) over 8192 pixels: the fold stops at shift -31, k = 12 < 13
    p = P.litert_reference_mean_params(2.0**-20, 0, 1.0, 0, 8192)
    assert (p["multiplier"], p["shift"]) == (1 << 29, -31)
    with pytest.raises(ValueError, match="count"):
        P.litert_reference_mean_params(0.1, 0, 0.1, 0, 0)


# ----------------------------------------------------------------------------------------
# Concatenation and pad


def random_concat(rng):
    base = list(nhwc(rng))
    axis = int(rng.choice([3, 3, 3, -1, 0, 1, 2]))
    inputs = []
    for _ in range(int(rng.integers(1, 5))):
        shape = list(base)
        shape[axis] = int(rng.integers(1, 6))
        inputs.append(int8_tensor(rng, tuple(shape)))
    s_out, zp_out = scale(rng), zero_point(rng)
    scales, zero_points = [], []
    for _ in inputs:
        if rng.random() < 0.3:  # same quantisation as the output: copied
            scales.append(s_out)
            zero_points.append(zp_out)
        else:
            scales.append(s_out * 10.0 ** rng.choice([rng.uniform(-9, 5), rng.uniform(-1, 1), 0.0]))
            zero_points.append(zero_point(rng))
    return inputs, axis, scales, zero_points, s_out, zp_out


def test_concat_matches_c():
    rng = np.random.default_rng(12)
    for case in range(CASES):
        inputs, axis, scales, zero_points, s_out, zp_out = random_concat(rng)
        params = E.concat_params(scales, zero_points, s_out, zp_out)
        if case % 5 == 0:  # raw multipliers, saturating shifts included
            params["multipliers"] = tuple(raw_multiplier(rng) for _ in inputs)
            params["shifts"] = tuple(int(rng.integers(-31, 31)) for _ in inputs)
        exact(E.concat_s8(inputs, **params, axis=axis), C.concat_s8(inputs, **params, axis=axis),
              f"case {case}: axis {axis} {[a.shape for a in inputs]} {params}")


def test_concat_hand_derived():
    a = np.arange(-128, 128, dtype=np.int8).reshape(1, 4, 4, 16)
    b = np.arange(127, -129, -1, dtype=np.int8).reshape(1, 4, 4, 16)[..., :5]
    for impl in (E, C):
        same = E.concat_params([0.3, 0.3], [-7, -7], 0.3, -7)
        exact(impl.concat_s8([a, b], **same), np.concatenate([a, b], axis=3), "copy")
        # b at twice the output scale, zero point 0 -> output zero point 0: doubled and clamped
        params = E.concat_params([0.3, 0.6], [0, 0], 0.3, 0)
        expected = np.concatenate([a, np.clip(2 * b.astype(np.int64), -128, 127).astype(np.int8)], axis=3)
        exact(impl.concat_s8([a, b], **params), expected, "rescaled")
        assert impl.concat_s8([a, a[:, :1]], **same, axis=1).shape == (1, 5, 4, 16)


def test_concat_against_float():
    rng = np.random.default_rng(13)
    for case in range(CASES):
        inputs, axis, scales, zero_points, s_out, zp_out = random_concat(rng)
        q = E.concat_s8(inputs, **E.concat_params(scales, zero_points, s_out, zp_out), axis=axis)
        expected = np.concatenate([quantize_real(real(a, s, z), s_out, zp_out)
                                   for a, s, z in zip(inputs, scales, zero_points)], axis=axis)
        within_one_lsb(q, expected, f"case {case}")


def test_pad_matches_c_and_float():
    rng = np.random.default_rng(14)
    for case in range(CASES):
        x = int8_tensor(rng, nhwc(rng))
        padding = tuple((int(rng.integers(0, 4)), int(rng.integers(0, 4))) for _ in range(4))
        zp = zero_point(rng)
        out = E.pad_s8(x, padding=padding, pad_value=zp)
        exact(out, C.pad_s8(x, padding=padding, pad_value=zp), f"case {case}: {x.shape} {padding}")
        # pad with the zero point == pad the real tensor with 0.0
        exact(real(out, 0.1, zp), np.pad(real(x, 0.1, zp), padding), f"float case {case}")


# ----------------------------------------------------------------------------------------
# Argument checking (both implementations share it) and layout independence


@pytest.mark.parametrize("impl", [E, C], ids=["numpy", "c"])
def test_rejects_bad_arguments(impl):
    a = np.zeros((1, 2, 3, 4), np.int8)
    params = E.add_params(0.1, 0, 0.1, 0, 0.1, 0)
    with pytest.raises(ValueError):
        impl.add_s8(a, a[..., :3], **params)
    with pytest.raises(ValueError):
        impl.add_s8(a, a.astype(np.uint8), **params)
    with pytest.raises(ValueError):
        impl.add_s8(a, a, **{**params, "input1_shift": 1})
    with pytest.raises(ValueError):
        impl.add_s8(a, a, **{**params, "output_zero_point": 128})
    with pytest.raises(ValueError):
        impl.add_s8(a, a, **{**params, "subtract": 2})
    with pytest.raises(ValueError):  # the [N,1,1,C] operand must be input2
        impl.add_s8(a[:, :1, :1], a, **params)
    with pytest.raises(ValueError):
        impl.add_s8(a, a[:, :, :1], **params)  # only [N,1,1,C] broadcasts
    with pytest.raises(ValueError):  # a layout is all four values or none
        impl.add_s8(a, a, **params, batches=1, pixels=6, channels=4)
    with pytest.raises(ValueError):  # input2 must hold batches * channels values when broadcast
        impl.add_s8(a, a, **params, batches=1, pixels=6, channels=4, broadcast=1)
    with pytest.raises(ValueError):  # input1 must hold batches * pixels * channels values
        impl.add_s8(a, a, **params, batches=1, pixels=5, channels=4, broadcast=0)
    with pytest.raises(ValueError):
        impl.requantize_s8(a, input_zero_point=0, output_zero_point=0, multiplier=-1, shift=0)
    with pytest.raises(ValueError):
        impl.requantize_s8(a, input_zero_point=0, output_zero_point=0, multiplier=1 << 30, shift=31)
    concat = E.concat_params([0.1, 0.1], [0, 0], 0.1, 0)
    with pytest.raises(ValueError):
        impl.concat_s8([a, a[:, :1]], **concat)  # H differs on a channel concat
    with pytest.raises(ValueError):
        impl.concat_s8([a], **concat)  # two parameter sets for one input
    with pytest.raises(ValueError):
        impl.pad_s8(a, padding=((0, 0), (1, -1), (0, 0), (0, 0)), pad_value=0)
    with pytest.raises(ValueError):
        impl.pad_s8(a, padding=((0, 0), (1, 1), (0, 0)), pad_value=0)
    with pytest.raises(ValueError):
        (P if impl is E else C).global_avg_pool2d_s8(a[0], **P.mean_params(0.1, 0, 0.1, 0, 1))
    with pytest.raises(ValueError):
        impl.quantize(np.zeros(3, np.float32), 0.0, 0)
    with pytest.raises(ValueError):
        impl.dequantize(a.astype(np.int32), 0.1, 0)


def test_non_contiguous_inputs():
    rng = np.random.default_rng(15)
    x = rng.integers(-128, 128, size=(2, 6, 5, 7), dtype=np.int8)
    view = x[:, ::2, ::-1, 1:6]
    params = E.add_params(0.1, 3, 0.2, -4, 0.25, 1)
    exact(E.add_s8(view, view, **params), C.add_s8(view, view, **params), "add")
    exact(E.add_s8(view, view[:, :1, 2:3], **params, subtract=1), C.add_s8(view, view[:, :1, 2:3], **params, subtract=1),
          "sub, broadcast")
    exact(P.avg_pool2d_s8(view, kernel=(2, 2)), C.avg_pool2d_s8(view, kernel=(2, 2)), "avg")
    exact(E.pad_s8(view, padding=((0, 1),) * 4, pad_value=5), C.pad_s8(view, padding=((0, 1),) * 4, pad_value=5),
          "pad")
    exact(E.concat_s8([view, view], **E.concat_params([0.1, 0.2], [1, 2], 0.15, 0)),
          C.concat_s8([view, view], **E.concat_params([0.1, 0.2], [1, 2], 0.15, 0)), "concat")
    assert not math.isnan(float(C.dequantize(view, 0.1, 0).sum()))
