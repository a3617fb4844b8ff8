"""Random 16x8 convolution and dense cases (int16 activations, int8 weights), shared by the reference
tests (tests/kernels/test_conv16x8.py) and the generated kernels' (tests/coral/test_kernels_conv16x8.py):
odd shapes, every padding, strides, dilations, groups and depth multipliers; "typical" cases
(calibrated multipliers, outputs spread over int16) and "extreme" ones (inputs at +-32767 / -32768,
weights at +-127 / -128, biases near +-2^46, multipliers from 0 to 2^31 - 1 with the 15-bit rounding's
edge 0x7FFF0000, shifts at both ends of [-31, 7], narrow clamps)."""

import numpy as np


def pick(rng, options):
    return options[int(rng.integers(len(options)))]


def random_int16(rng, shape, extreme):
    if extreme:
        return rng.choice(np.array([-32768, 32767, -32767, 0, 1], np.int16), size=shape)
    return rng.integers(-32768, 32768, size=shape, dtype=np.int16)


def random_requant(rng, channels, taps, extreme):
    """(multiplier, shift, bias, act_min, act_max) for `channels` outputs of `taps` products each."""
    if extreme:
        multiplier = rng.choice(np.array([0, 1, 1 << 30, 0x7FFEFFFF, 0x7FFF0000, 0x7FFFFFFF], np.int64), channels)
        shift = rng.choice(np.array([-31, -20, -1, 0, 7], np.int64), channels)
        bias = rng.choice(np.array([-(1 << 46) + 1, (1 << 46) - 1, 0, -1], np.int64), channels)
        low = int(rng.integers(-32768, 32768))
        return multiplier, shift, bias, low, min(32767, low + int(rng.integers(0, 3)))
    # typical: outputs spread over int16 (|acc| ~ 2^22 sqrt(taps), scaled to ~2^13)
    real = 2.0 ** -9 / np.sqrt(taps) * rng.uniform(0.25, 4, channels)
    mantissa, exponent = np.frexp(real)
    multiplier = np.round(mantissa * (1 << 31)).astype(np.int64)
    shift = exponent.astype(np.int64)
    bias = rng.integers(-(1 << 24), 1 << 24, channels)
    return multiplier, shift, bias, -32768, 32767


def random_conv_case(rng, extreme):
    kind = pick(rng, ["plain", "plain", "depthwise", "multiplier", "grouped"])
    c = pick(rng, [1, 3, 8, 16])
    groups, o = 1, pick(rng, [1, 4, 9, 16])
    if kind == "depthwise":
        groups, o = c, c
    elif kind == "multiplier":
        groups, o = c, 2 * c
    elif kind == "grouped":
        groups = pick(rng, [2, 4])
        c, o = groups * pick(rng, [1, 3]), groups * pick(rng, [1, 2])
    kh, kw = pick(rng, [1, 3]), pick(rng, [1, 2, 3])
    x = random_int16(rng, (int(rng.integers(1, 3)), int(rng.integers(kh, 8)), int(rng.integers(kw, 8)), c), extreme)
    w = rng.integers(-128, 128, size=(o, kh, kw, c // groups), dtype=np.int8)
    if extreme:
        w = rng.choice(np.array([-128, 127, -127], np.int8), size=w.shape)
    multiplier, shift, bias, act_min, act_max = random_requant(rng, o, kh * kw * c // groups, extreme)
    kwargs = dict(stride=(pick(rng, [1, 2]), pick(rng, [1, 2])), dilation=(pick(rng, [1, 2]), 1),
                  padding=tuple(int(v) for v in rng.integers(0, 2, 4)), groups=groups, multiplier=multiplier,
                  shift=shift, act_min=act_min, act_max=act_max)
    return x, w, None if rng.random() < 0.2 else bias, kwargs


def conv_cases(seed, count):
    rng = np.random.default_rng(seed)
    cases = []
    while len(cases) < count:
        x, w, bias, kwargs = random_conv_case(rng, extreme=bool(len(cases) % 2))
        dilated = (w.shape[1] - 1) * kwargs["dilation"][0] + 1
        if x.shape[1] + kwargs["padding"][0] + kwargs["padding"][2] >= dilated:
            cases.append((x, w, bias, kwargs))
    return cases
