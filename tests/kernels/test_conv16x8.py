"""16x8 conv2d / dense (int16 activations, int8 weights): the NumPy reference and the C reference
kernels agree bit for bit, and the NumPy reference is TFLite's arithmetic.

- C (kernels/ref/conv16x8.c via compiler.quant._ref_conv) == NumPy (compiler.quant.reference.conv16x8)
  exactly on randomised cases (seeded): odd shapes, every padding, strides, dilations, groups and
  depth multipliers; inputs at +-32767 / -32768, weights at +-127 / -128, biases near +-2^46,
  multipliers from 0 to 2^31 - 1 (the 15-bit rounding's edge 0x7FFF0000 among them), every shift of
  [-31, 7], narrow clamps.
- The requantisation is TFLite's MultiplyByQuantizedMultiplier for int64 accumulators, written
  here again from its definition with Python's unbounded integers, and within half a step (plus the
  15-bit multiplier's own error) of the exact real product.
- The accumulation is exact: against a float64 im2col product (every partial sum below 2^53).
- Both implementations reject the same malformed arguments with ValueError.
"""

import numpy as np
import pytest
from conv16x8_cases import conv_cases, pick, random_int16, random_requant

from compiler.quant import _ref_conv as c_ref
from compiler.quant.fixed_point import multiply_by_quantized_multiplier_16
from compiler.quant.reference import conv16x8 as np_ref

IMPLS = {"numpy": np_ref, "c": c_ref}


@pytest.mark.parametrize("seed", range(3))
def test_conv2d_c_matches_numpy(seed):
    cases = conv_cases(8000 + seed, 40)
    assert {kwargs["groups"] > 1 for *_, kwargs in cases} == {False, True}
    for x, w, bias, kwargs in cases:
        expected = np_ref.conv2d_s16x8(x, w, bias, **kwargs)
        np.testing.assert_array_equal(c_ref.conv2d_s16x8(x, w, bias, **kwargs), expected,
                                      err_msg=f"x{x.shape} w{w.shape} groups {kwargs['groups']}")
    outputs = np.concatenate([np_ref.conv2d_s16x8(x, w, b, **k).ravel() for x, w, b, k in cases])
    assert outputs.min() == -32768 and outputs.max() == 32767 and len(np.unique(outputs)) > 1000


def test_dense_c_matches_numpy():
    rng = np.random.default_rng(8100)
    for i in range(40):
        extreme = bool(i % 2)
        k, o = pick(rng, [1, 7, 64, 300]), pick(rng, [1, 5, 32])
        x = random_int16(rng, (int(rng.integers(0, 4)), k), extreme)
        w = rng.integers(-128, 128, size=(o, k), dtype=np.int8)
        multiplier, shift, bias, act_min, act_max = random_requant(rng, o, k, extreme)
        kwargs = dict(multiplier=multiplier, shift=shift, act_min=act_min, act_max=act_max)
        np.testing.assert_array_equal(c_ref.dense_s16x8(x, w, bias, **kwargs), np_ref.dense_s16x8(x, w, bias, **kwargs))


def tflite_mbqm_16(x: int, multiplier: int, shift: int) -> int:
    """TFLite's MultiplyByQuantizedMultiplier(int64_t, int32_t, int), from its definition."""
    reduced = (multiplier + (1 << 15)) >> 16 if multiplier < 0x7FFF0000 else 0x7FFF
    total_shift = 15 - shift
    return (x * reduced + (1 << (total_shift - 1))) >> total_shift


def test_requantisation_is_tflites():
    rng = np.random.default_rng(8200)
    x = np.concatenate([rng.integers(-(1 << 47), 1 << 47, 2000), [-(1 << 47), (1 << 47) - 1, 0, 1, -1]])
    multiplier = np.concatenate([rng.integers(0, 1 << 31, x.size - 5), [0x7FFF0000, 0x7FFEFFFF, 0x7FFFFFFF, 1 << 30, 0]])
    shift = rng.integers(-31, 8, x.size)
    got = multiply_by_quantized_multiplier_16(x, multiplier, shift)
    want = [tflite_mbqm_16(int(a), int(m), int(s)) for a, m, s in zip(x, multiplier, shift)]
    np.testing.assert_array_equal(got, np.array(want, np.int64))
    # and close to the real product: half a step, plus the 15-bit multiplier's error
    real = x.astype(np.float64) * multiplier * 2.0 ** (shift.astype(np.float64) - 31)
    reduced_error = np.abs(x.astype(np.float64)) * 2.0 ** (shift.astype(np.float64) - 31) * (1 << 15)
    assert np.all(np.abs(got - real) <= 0.5 + reduced_error + 1e-6 * np.abs(real))


def test_accumulation_is_exact():
    """The int64 sums against a float64 im2col product (exact: every partial sum is below 2^53)."""
    rng = np.random.default_rng(8300)
    x = random_int16(rng, (1, 6, 5, 12), False)
    w = rng.choice(np.array([-128, 127], np.int8), size=(7, 3, 3, 12))
    padded = np.pad(x.astype(np.float64), ((0, 0), (1, 1), (1, 1), (0, 0)))
    sums = np.stack([np.stack([np.einsum("ykc,oykc->o", padded[0, i:i + 3, j:j + 3], w.astype(np.float64))
                               for j in range(5)]) for i in range(6)])[None]
    # multiplier 2^30 reduces to 2^14 and shift -12 makes the total shift 27: round(acc / 2^13), ties up
    got = np_ref.conv2d_s16x8(x, w, None, padding=(1, 1, 1, 1), multiplier=1 << 30, shift=-12)
    expected = np.clip(np.floor(sums / 8192 + 0.5), -32768, 32767)
    assert np.abs(expected).max() < 32767  # nothing clamped: every sum is checked
    np.testing.assert_array_equal(got, expected.astype(np.int16))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("bad, match", [
    (dict(x=np.zeros((1, 4, 4, 3), np.int8)), "int16"),
    (dict(shift=np.full(2, 8)), "shift must be in"),
    (dict(act_min=-40000), "act_min"),
    (dict(bias=np.full(2, 1 << 46)), "bias"),
    (dict(groups=2), "groups=2"),
])
def test_bad_arguments_are_refused(impl, bad, match):
    args = dict(x=np.zeros((1, 4, 4, 3), np.int16), w=np.zeros((2, 3, 3, 3), np.int8), bias=None, multiplier=1 << 30,
                shift=np.zeros(2, np.int64)) | bad
    with pytest.raises(ValueError, match=match):
        IMPLS[impl].conv2d_s16x8(args.pop("x"), args.pop("w"), args.pop("bias"), **args)
