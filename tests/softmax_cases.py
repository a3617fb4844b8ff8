"""The int8 softmax kernel specs shared by the coral-npu (tests/coral/test_kernels_softmax.py), x86
(tests/kernels/test_x86_kernels.py) and NEON (tests/coral/test_arm64_target.py) kernel tests.

Seeded random specs: depths below, at and above a vector (and odd), rows 1..8; params from real
scales and betas (1e-4 .. 1) and raw params at the edges of their domain (left shifts 0..31,
diff_min from the tightest to "keep everything", multipliers 0 .. 2^31 - 1); inputs uniform,
saturated, all equal, and a single maximum. Depths of 512 and more reach the rows whose output
shift exceeds 31, and 4096 and more the saturating sum. The expected output is
compiler.quant._ref_softmax (kernels/ref compiled for the host).
"""

import numpy as np

from compiler.quant import _ref_softmax as ref
from compiler.quant.reference.softmax import softmax_params

INT32_MAX = 2**31 - 1
DEPTHS = [1, 2, 3, 7, 16, 31, 32, 33, 63, 64, 65, 100, 127, 128, 129, 255, 257, 1000]


class Spec:
    """One kernel spec with its input and the reference output."""

    kernel = "softmax"

    def __init__(self, label, params, x, want):
        self.label, self.params, self.x, self.want = label, params, x, want


def _input(rng, shape, kind):
    if kind == 0:
        return rng.integers(-128, 128, shape, dtype=np.int8)
    if kind == 1:  # saturated
        return rng.choice(np.array([-128, 127], np.int8), shape)
    if kind == 2:  # all equal per row
        return np.broadcast_to(rng.integers(-128, 128, (shape[0], 1), dtype=np.int8), shape).copy()
    x = np.full(shape, -128, np.int8)  # one maximum per row, the rest at the other end
    x[np.arange(shape[0]), rng.integers(0, shape[1], shape[0])] = 127
    return x


def _raw_params(rng):
    """input_left_shift anywhere in [0, 31] with a diff_min the shift allows (the tightest, a
    random one, or 'keep every diff'), and a multiplier from 0 to 2^31 - 1."""
    shift = int(rng.integers(0, 32))
    widest = min(255, (1 << 31) >> shift)  # min(-diff_min, 255) << shift <= 2^31
    diff_min = -int(rng.choice([widest, rng.integers(0, widest + 1), 0]))
    if widest == 255 and rng.random() < 0.5:
        diff_min = -int(rng.integers(255, 1 << 20))
    multiplier = int(rng.choice([0, 1, INT32_MAX, 1 << 30, rng.integers(1 << 30, 1 << 31)]))
    return dict(input_multiplier=multiplier, input_left_shift=shift, diff_min=diff_min)


def _specs(rng, count):
    for i in range(count):
        depth = DEPTHS[i % len(DEPTHS)] if i < 2 * len(DEPTHS) else int(rng.integers(1, 300))
        shape = (int(rng.integers(1, 9)), depth)
        x = _input(rng, shape, i % 4)
        if i % 3 == 2:
            params = _raw_params(rng)
        else:
            params = softmax_params(10 ** rng.uniform(-4, 0), float(rng.choice([1.0, 0.5, 2.0, rng.uniform(0.1, 4)])))
        label = f"softmax{i}-{shape[0]}x{depth}-ls{params['input_left_shift']}"
        yield Spec(label, dict(params, rows=shape[0], depth=depth), x, ref.softmax_s8(x, **params))


def _deep_specs():
    """Long rows: the output shift above 31 (sums >= 512.0) and the saturating sum (depth >= 4096)."""
    rng = np.random.default_rng(43)
    cases = [((2, 600), 2, 0.01), ((1, 600), 0, 0.01), ((1, 4100), 3, 0.05), ((2, 5000), 0, 1e-4),
             ((1, 4096), 2, 0.5), ((1, 513), 2, 0.002),
             ((1, 16500), 2, 0.05)]  # past 2048 x 8: the x86 kernel's int32 lanes flushed into its int64 sum
    for number, (shape, kind, scale) in enumerate(cases):
        x, params = _input(rng, shape, kind), softmax_params(scale)
        yield Spec(f"softmax-deep{number}-{shape[0]}x{shape[1]}", dict(params, rows=shape[0], depth=shape[1]), x,
                   ref.softmax_s8(x, **params))


def _benchmark_specs():
    """A classifier head (1000 classes) and attention-like rows (49 x 64), default schedule."""
    rng = np.random.default_rng(12)
    for shape, scale in [((1, 1000), 0.1), ((49, 64), 0.05)]:
        x, params = rng.integers(-128, 128, shape, dtype=np.int8), softmax_params(scale)
        yield Spec(f"softmax {shape[0]}x{shape[1]}", dict(params, rows=shape[0], depth=shape[1]), x,
                   ref.softmax_s8(x, **params))


SPECS = list(_specs(np.random.default_rng(41), 48)) + list(_deep_specs())
BENCHMARKS = list(_benchmark_specs())
