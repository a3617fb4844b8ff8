"""Random int8 data and float checks shared by the kernel property tests (seeded by the caller)."""

import numpy as np

def zero_point(rng):
    return int(rng.choice([-128, 127, 0, int(rng.integers(-128, 128))], p=[0.25, 0.25, 0.1, 0.4]))


def int8_tensor(rng, shape):
    """Uniform, saturated (only -128 / 127) or narrow-range int8 values."""
    kind = rng.integers(4)
    if kind == 0:
        return rng.choice(np.array([-128, 127], np.int8), size=shape)
    if kind == 1:
        return rng.integers(-128, 128, size=shape, dtype=np.int8)
    if kind == 2:  # mostly extreme, some uniform
        values = rng.integers(-128, 128, size=shape, dtype=np.int8)
        extreme = rng.random(shape) < 0.5
        return np.where(extreme, rng.choice(np.array([-128, 127], np.int8), size=shape), values).astype(np.int8)
    centre = int(rng.integers(-128, 128))
    return np.clip(centre + rng.integers(-3, 4, size=shape), -128, 127).astype(np.int8)


def nhwc(rng, max_hw=7, max_c=9):
    return (int(rng.integers(1, 3)), int(rng.integers(1, max_hw + 1)), int(rng.integers(1, max_hw + 1)),
            int(rng.integers(1, max_c + 1)))


def scale(rng, lo=-4.0, hi=1.0):
    return float(10.0 ** rng.uniform(lo, hi))


def act_range(rng):
    if rng.random() < 0.6:
        return -128, 127
    a, b = sorted(int(v) for v in rng.integers(-128, 128, size=2))
    return a, b


def raw_multiplier(rng):
    """A fixed-point multiplier: 0, tiny, 2^30, near 2^31 and anything between."""
    return int(rng.choice([0, 1, int(rng.integers(2, 1 << 16)), 1 << 30, 2**31 - 1, 2**31 - 2,
                           int(rng.integers(1 << 30, 1 << 31)), int(rng.integers(0, 1 << 31))],
                          p=[0.04, 0.04, 0.07, 0.1, 0.1, 0.05, 0.4, 0.2]))


def exact(a, b, what):
    assert a.dtype == b.dtype and a.shape == b.shape, f"{what}: {a.dtype}{a.shape} vs {b.dtype}{b.shape}"
    np.testing.assert_array_equal(a, b, err_msg=what)


# Float model of a quantised tensor (float64: the "ideal" op the integer kernels approximate).

def real(q, s, zp):
    return float(np.float32(s)) * (q.astype(np.float64) - zp)


def quantize_real(x, s, zp, act_min=-128, act_max=127):
    v = x / float(np.float32(s))
    rounded = np.sign(v) * np.floor(np.abs(v) + 0.5)
    return np.clip(rounded + zp, act_min, act_max).astype(np.int64)


def within_one_lsb(q, expected, what):
    diff = np.abs(q.astype(np.int64) - expected)
    assert diff.size == 0 or diff.max() <= 1, f"{what}: max |int - float| = {diff.max()} LSB"
