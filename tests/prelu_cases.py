"""The int8 PReLU kernel specs shared by the coral-npu (tests/coral/test_kernels_prelu.py), x86
(tests/kernels/test_x86_kernels.py) and NEON (tests/coral/test_arm64_target.py) kernel tests.

Seeded random specs: channel counts below, at and above a vector, odd and even pixel counts, empty
tensors, extreme zero points, slopes of both signs and zero (per channel, and one repeated: a scalar
PReLU), shift pairs typical and at the limits, multipliers from 0 to 2^31 - 1, narrow activation
ranges, each rounding (single: ONNX; double: TFLite's PRELU; double ties-up); and real layer shapes.
The expected output is compiler.quant._ref_prelu (kernels/ref compiled for the host).
"""

import numpy as np

from compiler.quant import _ref_prelu as ref
from compiler.quant.reference.prelu import prelu_params

INT32_MAX = 2**31 - 1
ACT_RANGES = [(-128, 127), (-128, 127), (0, 127), (-128, 0), (-3, 50), (5, 5), (-127, 126)]
# (positive_shift, negative_shift): typical ones, ones at the limits, and pairs too far apart or too
# large for one rounding shift (the vector code then rescales each branch on its own); None: random.
SHIFTS = [(1, -6), (0, -8), (-1, -12), (2, 2), (-31, -31), (30, 30), (30, -31), (-31, 30), (13, 5), (20, -10), None]


class Spec:
    """One kernel spec with its input, slopes and the reference output."""

    kernel = "prelu"

    def __init__(self, label, params, x, alpha, want):
        self.label, self.params, self.x, self.alpha, self.want = label, params, x, alpha, want


def _int8(rng, shape, extreme=False):
    if extreme:  # mostly the int8 limits
        return rng.choice(np.array([-128, 127, -127, 126, 0], dtype=np.int8), shape)
    return rng.integers(-128, 128, shape, dtype=np.int8)


def _zero_point(rng):
    return int(rng.choice([-128, 127, 0, rng.integers(-128, 128)]))


def _multiplier(rng, shift, value_bits):
    """Mostly one that scales values of `value_bits` bits to about 2^7 (outputs not all saturated), else any."""
    if rng.random() < 0.25:
        return int(rng.choice([0, 1 << 30, INT32_MAX, rng.integers(1 << 30, 1 << 31), rng.integers(0, 1 << 31)]))
    bits = min(31, max(1, 38 - value_bits - shift))
    return int(rng.integers(1 << (bits - 1), 1 << bits))


def _slopes(rng, channels, number):
    kind = number % 3
    if kind == 0:
        return rng.integers(-128, 128, channels, dtype=np.int8)
    if kind == 1:  # one slope repeated: a scalar PReLU
        return np.full(channels, rng.integers(-128, 128), dtype=np.int8)
    return rng.choice(np.array([-128, 127, 0, 1, -1], dtype=np.int8), channels)


def _specs(rng, count):
    for i in range(count):
        channels = int(rng.choice([1, 2, 3, 5, 8, 12, 16, 24, 31, 32, 33, 40, 64, 96, 97, rng.integers(1, 200)]))
        shape = (int(rng.integers(1, 3)), int(rng.integers(1, 8)), int(rng.integers(1, 8)), channels)
        if i < 3:  # empty: no pixels, no channels, no batches
            shape = [(1, 0, 4, 5), (2, 3, 3, 0), (0, 2, 2, 7)][i]
        x, alpha = _int8(rng, shape, i % 4 == 1), _slopes(rng, shape[3], i)
        params = dict(input_zero_point=_zero_point(rng), alpha_zero_point=_zero_point(rng),
                      output_zero_point=_zero_point(rng),
                      **dict(zip(("act_min", "act_max"), ACT_RANGES[rng.integers(len(ACT_RANGES))])),
                      rounding=(i // 3) % 3)  # single (ONNX), double (TFLite's PRELU), double ties-up
        if i % 5 == 4:  # from real scales
            params |= prelu_params(10 ** rng.uniform(-3, 0), 10 ** rng.uniform(-4, 0), 10 ** rng.uniform(-3, 0))
        else:
            shifts = SHIFTS[i % len(SHIFTS)] or tuple(int(s) for s in rng.integers(-31, 31, 2))
            params |= dict(positive_multiplier=_multiplier(rng, shifts[0], 8), positive_shift=shifts[0],
                           negative_multiplier=_multiplier(rng, shifts[1], 16), negative_shift=shifts[1])
        label = (f"prelu{i}-r{params['rounding']}-{'x'.join(map(str, shape))}"
                 f"-s{params['positive_shift']},{params['negative_shift']}")
        yield Spec(label, dict(params, outer=int(np.prod(shape[:3])), channels=shape[3]), x, alpha,
                   ref.prelu_s8(x, alpha, **params))


def _benchmark_specs():
    """Layer shapes of real networks (slopes in [0, 0.5), from real scales), default schedule: single
    rounding (ONNX models), and TFLite's double rounding at the first shape."""
    rng = np.random.default_rng(12)
    for shape, rounding in [((1, 28, 28, 96), 0), ((1, 56, 56, 16), 0), ((1, 28, 28, 96), 1)]:
        x, alpha = _int8(rng, shape), rng.integers(0, 125, shape[3], dtype=np.int8)
        params = dict(input_zero_point=-5, alpha_zero_point=0, output_zero_point=3, act_min=-128, act_max=127,
                      **prelu_params(0.05, 0.004, 0.04), rounding=rounding)
        label = f"prelu {'x'.join(map(str, shape[1:]))}{' tflite' if rounding else ''}"
        yield Spec(label, dict(params, outer=shape[1] * shape[2], channels=shape[3]), x, alpha,
                   ref.prelu_s8(x, alpha, **params))


SPECS = list(_specs(np.random.default_rng(41), 44))
BENCHMARKS = list(_benchmark_specs())
