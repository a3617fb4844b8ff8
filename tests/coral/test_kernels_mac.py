"""Generated conv2d and dense kernels in QEMU, bit-exact to kernels/ref.

Seeded random specs: odd shapes, every padding (none, partial, beyond the kernel's reach), strides
1-3, dilations, batches, grouped and depthwise convolutions (depth multipliers 1 and 2),
pointwise convolutions on both engines (few output channels: the pixel engine; 32 and more, not a
multiple of 32: the channel GEMM), first-layer convolutions (Cin 3, stride 2) and dense layers;
values in a typical and an extreme profile (zero points -128 / 127, weights at -128 and 127,
saturating inputs, multipliers flushed to zero, tiny, ~1 and > 1, huge biases, narrow activation
ranges). Every spec runs as RVV code with its default schedule and as portable C; some also with
non-default schedules (each knob of each engine). All cases go through one run_kernel_cases call,
and each is its own test. The reference is compiler.quant._ref_conv: kernels/ref built for the host.
"""

import numpy as np
import pytest
from kernel_testing import assert_bit_exact, run_cases

from compiler.coral import codegen
from compiler.quant import _ref_conv as ref
from compiler.quant.fixed_point import quantize_multiplier

# Real multipliers s_in * s_w / s_out: flushed to zero, tiny, typical, either side of 0.25 (shift -2,
# the largest the big-shift requantisation takes, and -1), ~1, > 1 (positive shifts: saturation).
REAL_MULTIPLIERS = [1e-10, 2.5e-7, 3e-5, 0.004, 0.2499, 0.26, 0.9999999, 1.0, 3.7, 100.0]
ZERO_POINTS = [-128, 127, 0]


class Spec:
    """One kernel spec with its input and the reference output."""

    def __init__(self, label, kernel, params, arrays, x, want, schedules=()):
        self.label, self.kernel, self.params, self.arrays, self.x, self.want = label, kernel, params, arrays, x, want
        self.schedules = schedules  # non-default schedules to run besides the default one


def _pick(rng, options):
    return options[int(rng.integers(len(options)))]


def _int8(rng, shape, extreme):
    if extreme:
        mode = _pick(rng, ["min", "max", "extremes", "uniform"])
        if mode in ("min", "max"):
            return np.full(shape, -128 if mode == "min" else 127, np.int8)
        if mode == "extremes":
            return rng.choice(np.array([-128, 127], np.int8), size=shape)
    return rng.integers(-128, 128, size=shape, dtype=np.int8)


def _weights(rng, shape, extreme):
    if extreme:
        mode = _pick(rng, ["pm127", "-128", "full"])
        if mode == "pm127":
            return rng.choice(np.array([-127, 127], np.int8), size=shape)
        if mode == "-128":  # ORT models: -128 weights, and (-128) x (-128) products
            return rng.choice(np.array([-128, 127, -128, 5], np.int8), size=shape)
    return rng.integers(-128, 128, size=shape, dtype=np.int8)


def _quantisation(rng, channels, taps, extreme):
    """Zero points, per-channel (or per-tensor) multiplier and shift, clamp and bias for `channels` outputs."""
    izp = _pick(rng, ZERO_POINTS) if extreme and rng.random() < 0.7 else int(rng.integers(-100, 101))
    ozp = _pick(rng, ZERO_POINTS) if extreme and rng.random() < 0.7 else int(rng.integers(-100, 101))
    typical = np.sqrt(taps) * np.hypot(74.0, izp) * 73.0  # rough std of the accumulator
    if extreme:
        reals = [_pick(rng, REAL_MULTIPLIERS) for _ in range(channels)]
        if rng.random() < 0.4:
            reals = [reals[0]] * channels  # per tensor
    else:
        reals = list(40.0 / typical * 10.0 ** rng.uniform(-0.7, 0.7, size=channels))
    pairs = [quantize_multiplier(r) for r in reals]
    act_min, act_max = _pick(rng, [(-128, 127), (ozp, 127), (ozp, min(127, ozp + 40)),
                                   (-128, 127) if not extreme else (int(rng.integers(-128, 0)), int(rng.integers(0, 128)))])
    bias_mode = _pick(rng, ["none", "typical", "huge"] if extreme else ["none", "typical"])
    bias = None
    if bias_mode != "none":
        bound = 2**26 if bias_mode == "huge" else max(1, int(typical))
        bias = rng.integers(-bound, bound + 1, size=channels).astype(np.int32)
    return dict(input_zero_point=izp, output_zero_point=ozp, act_min=act_min, act_max=act_max,
                multiplier=np.array([m for m, _ in pairs], np.int32), shift=np.array([s for _, s in pairs], np.int32),
                bias=bias, rounding=0)


def _rounding(q, rounding):
    """q with the spec's rounding (fixed_point.ROUNDINGS: 0 once, ONNX; 1 and 2 twice, TFLite; for conv2d
    also 3, fixed_point.BLOCKS_OF_8_ROUNDING: LiteRT's depthwise, ties up in whole blocks of 8 output
    channels and away from zero in the rest)."""
    return dict(q, rounding=rounding)


_PARAMS = ("input_zero_point", "output_zero_point", "act_min", "act_max", "rounding")
_QUANT = _PARAMS + ("multiplier", "shift")


def conv_spec(label, x, w, q, stride=(1, 1), dilation=(1, 1), padding=(0, 0, 0, 0), groups=1, schedules=()):
    """A conv2d spec (params = npu_conv2d_params fields) with its kernels/ref output."""
    n, h, wd, c = x.shape
    o, kh, kw, _ = w.shape
    quant = {k: q[k] for k in _QUANT}
    want = ref.conv2d_s8(x, w, q["bias"], stride=stride, dilation=dilation, padding=padding, groups=groups, **quant)
    params = dict(batches=n, in_h=h, in_w=wd, in_c=c, out_h=want.shape[1], out_w=want.shape[2], out_c=o, kernel_h=kh,
                  kernel_w=kw, stride_h=stride[0], stride_w=stride[1], dilation_h=dilation[0], dilation_w=dilation[1],
                  pad_top=padding[0], pad_left=padding[1], groups=groups, **{k: q[k] for k in _PARAMS})
    arrays = dict(weight=w, bias=q["bias"], multiplier=q["multiplier"], shift=q["shift"])
    return Spec(label, "conv2d", params, arrays, x, want, schedules)


def dense_spec(label, x, w, q, schedules=()):
    quant = {k: q[k] for k in _QUANT}
    want = ref.dense_s8(x, w, q["bias"], **quant)
    params = dict(batches=x.shape[0], in_features=x.shape[1], out_features=w.shape[0], **{k: q[k] for k in _PARAMS})
    arrays = dict(weight=w, bias=q["bias"], multiplier=q["multiplier"], shift=q["shift"])
    return Spec(label, "dense", params, arrays, x, want, schedules)


def _conv_geometry(rng, kind):
    """(batches, h, w, in_c, out_c, kh, kw, stride, dilation, padding, groups) of one random conv."""
    n = _pick(rng, [1, 1, 2])
    h, w = (_pick(rng, [1, 3, 7, 13]) if rng.random() < 0.6 else int(rng.integers(1, 20)) for _ in range(2))
    stride = tuple(int(v) for v in rng.integers(1, 4, size=2))
    dilation = tuple(int(v) for v in rng.integers(1, 3, size=2))
    groups = 1
    if kind == "pointwise":  # 1x1, stride 1, no padding: the GEMM or, few channels, the pixel engine
        c, o = int(rng.integers(1, 70)), _pick(rng, [1, 5, 16, 32, 33, 40, 64, 70])
        return n, h, w, c, o, 1, 1, (1, 1), (1, 1), (0, 0, 0, 0), 1
    if kind == "first":  # Cin 3, stride 2
        c, o, stride, dilation = 3, _pick(rng, [8, 5, 16]), (2, 2), (1, 1)
        kh = kw = 3
    elif kind == "depthwise":
        c = _pick(rng, [1, 3, 8, 16, 33])
        groups, o = c, c * _pick(rng, [1, 1, 2])
        kh = kw = _pick(rng, [3, 3, 5, 2])
        stride = (s := _pick(rng, [1, 2, 3])), s
    elif kind == "grouped":
        groups = _pick(rng, [2, 3])
        c, o = groups * _pick(rng, [1, 2, 5]), groups * _pick(rng, [1, 2, 3])
        kh, kw = _pick(rng, [1, 2, 3]), _pick(rng, [1, 3])
    else:
        c, o = _pick(rng, [1, 3, 7, 13, 20]), _pick(rng, [1, 2, 5, 8, 12])
        kh, kw = _pick(rng, [1, 2, 3, 5]), _pick(rng, [1, 2, 3, 5])
    padding = []
    for reach in (dilation[0] * (kh - 1), dilation[1] * (kw - 1)) * 2:  # none, within reach, beyond it
        padding.append(_pick(rng, [0, int(rng.integers(0, reach + 1)), reach + int(rng.integers(1, 3))]))
    while (h + padding[0] + padding[2] - dilation[0] * (kh - 1) - 1) < 0:
        h += 1
    while (w + padding[1] + padding[3] - dilation[1] * (kw - 1) - 1) < 0:
        w += 1
    return n, h, w, c, o, kh, kw, stride, dilation, tuple(padding), groups


def _random_conv_specs(rng, count):
    kinds = ["general", "general", "pointwise", "pointwise", "depthwise", "depthwise", "grouped", "first"]
    for i in range(count):
        kind, extreme = kinds[i % len(kinds)], bool(i % 2)
        n, h, w, c, o, kh, kw, stride, dilation, padding, groups = _conv_geometry(rng, kind)
        x = _int8(rng, (n, h, w, c), extreme)
        wt = _weights(rng, (o, kh, kw, c // groups), extreme)
        rounding = (i + i // len(kinds)) % 4  # every kind in every rounding
        q = _rounding(_quantisation(rng, o, kh * kw * c // groups, extreme), rounding)
        label = (f"conv{i}-r{rounding}-{kind}-{n}x{h}x{w}x{c}-o{o}-k{kh}x{kw}-s{stride[0]}{stride[1]}-d{dilation[0]}{dilation[1]}"
                 f"-p{''.join(map(str, padding))}-g{groups}")
        yield conv_spec(label, x, wt, q, stride, dilation, padding, groups)


def _random_dense_specs(rng, count):
    for i in range(count):
        extreme = bool(i % 2)
        n, k, o = _pick(rng, [1, 2, 3, 7]), _pick(rng, [1, 3, 7, 13, 64, 257]), _pick(rng, [1, 2, 5, 13, 32, 33, 70])
        x, w = _int8(rng, (n, k), extreme), _weights(rng, (o, k), extreme)
        yield dense_spec(f"dense{i}-r{i % 3}-{n}x{k}-o{o}", x, w, _rounding(_quantisation(rng, o, k, extreme), i % 3))


# Non-default schedules: every knob of both engines (validate() accepts each for its spec).
GEMM_SCHEDULES = [dict(px_tile=1), dict(px_tile=3, unroll=5), dict(lmul=4, oc_tile=16, px_tile=5),
                  dict(lmul=2, oc_tile=5, px_tile=2, loop_order="px_oc"), dict(weight_pack="i8", unroll=3),
                  dict(lmul=1, oc_tile=4, px_tile=7, weight_pack="i8", loop_order="px_oc")]
PIXEL_SCHEDULES = [dict(px_tile=1, oc_tile=3), dict(px_tile=2, oc_tile=2, loop_order="px_oc"),
                   dict(lmul=2, oc_tile=5, weight_pack="i8"), dict(lmul=1, px_tile=3, unroll=2),
                   dict(lmul=4, oc_tile=1, px_tile=4, unroll=3)]

DEPTHWISE_SCHEDULES = [dict(px_tile=1), dict(px_tile=3, loop_order="px_oc"), dict(oc_tile=2, px_tile=5),
                       dict(lmul=2, px_tile=2, weight_pack="i8")]


def _schedule_specs(rng):
    """Shapes that exercise each engine's edges, each with several schedules."""
    q = lambda o, taps, extreme=False: _quantisation(rng, o, taps, extreme)  # noqa: E731
    x = _int8(rng, (1, 5, 7, 30), False)  # 45 output channels: a full tile of 32 and a tail of 13
    yield conv_spec("gemm-5x7x30-o45", x, _weights(rng, (45, 1, 1, 30), True), q(45, 30, True), schedules=GEMM_SCHEDULES)
    x2 = _int8(rng, (7, 37), False)
    yield dense_spec("gemm-dense-7x37-o45", x2, _weights(rng, (45, 37), False), q(45, 37), schedules=GEMM_SCHEDULES)
    yield dense_spec("gemm-dense-double-7x37-o45", x2, _weights(rng, (45, 37), True), _rounding(q(45, 37, True), 1),
                     schedules=GEMM_SCHEDULES)
    yield dense_spec("gemm-dense-double-up-7x37-o45", x2, _weights(rng, (45, 37), False), _rounding(q(45, 37), 2),
                     schedules=GEMM_SCHEDULES)
    x3 = _int8(rng, (2, 10, 9, 7), True)
    yield conv_spec("pixel-2x10x9x7-o7-k3x3-p1111", x3, _weights(rng, (7, 3, 3, 7), True), q(7, 63, True),
                    padding=(1, 1, 1, 1), schedules=PIXEL_SCHEDULES)
    for rounding in (1, 2):
        yield conv_spec(f"pixel-rounding{rounding}-2x10x9x7-o7-k3x3", x3, _weights(rng, (7, 3, 3, 7), False),
                        _rounding(q(7, 63), rounding), padding=(1, 1, 1, 1), schedules=PIXEL_SCHEDULES)
    # LiteRT's depthwise rounding: 3 whole blocks of 8 channels round ties up, the last 4 away from zero
    # (per-channel multipliers; big shifts, and extreme ones with shifts above -2).
    x6 = _int8(rng, (1, 9, 10, 28), True)
    for extreme in (False, True):
        yield conv_spec(f"pixel-depthwise-rounding3-9x10x28-{'extreme' if extreme else 'typical'}", x6,
                        _weights(rng, (28, 3, 3, 1), extreme), _rounding(q(28, 9, extreme), 3), padding=(1, 1, 1, 1),
                        groups=28, schedules=[s for s in DEPTHWISE_SCHEDULES if "oc_tile" not in s])
    # a pointwise layer in that rounding takes the pixel engine (the GEMM's lanes are channels)
    yield conv_spec("pixel-pointwise-rounding3-5x7x30-o45", x, _weights(rng, (45, 1, 1, 30), False),
                    _rounding(q(45, 30), 3), schedules=PIXEL_SCHEDULES)
    # grouped pointwise (ShuffleNet): one GEMM per group, 3 groups of 30 -> 45 channels
    x5 = _int8(rng, (1, 5, 7, 90), True)
    yield conv_spec("gemm-grouped-g3-5x7x90-o135", x5, _weights(rng, (135, 1, 1, 30), True), q(135, 30, True), groups=3,
                    schedules=GEMM_SCHEDULES)
    x4 = _int8(rng, (1, 11, 12, 10), False)
    yield conv_spec("pixel-depthwise-m2-s2", x4, _weights(rng, (20, 3, 3, 1), False), q(20, 9), stride=(2, 2),
                    padding=(1, 0, 1, 1), groups=10,
                    schedules=DEPTHWISE_SCHEDULES)


# Layer shapes of MobileNet V1 0.25 with the default schedule: instruction ceilings (measured + ~5%),
# so that a change that slows a kernel down shows. Geometry: (h, w, in_c, out_c, kernel, stride, groups).
BENCHMARKS = {
    "pointwise 56x56 32->32": ((56, 56, 32, 32, 1, 1, 1), 311_000),
    "pointwise 14x14 128->128": ((14, 14, 128, 128, 1, 1, 1), 283_000),
    "depthwise 3x3 s1 56x56x32": ((56, 56, 32, 32, 3, 1, 32), 137_000),
    "depthwise 3x3 s2 56x56x32": ((56, 56, 32, 32, 3, 2, 32), 48_000),
    "conv 3x3 s2 224x224x3->8": ((224, 224, 3, 8, 3, 2, 1), 342_000),
    "dense 256->1000": (None, 27_500),
    "grouped pointwise 7x7 544->544 g4 (ShuffleNet)": ((7, 7, 544, 544, 1, 1, 4), 392_000),
}


def _benchmark_specs():
    rng = np.random.default_rng(11)
    for label, (geometry, _) in BENCHMARKS.items():
        if geometry is None:
            x, w = _int8(rng, (1, 256), False), _weights(rng, (1000, 256), False)
            yield dense_spec(label, x, w, _quantisation(rng, 1000, 256, False))
            continue
        h, w_, c, o, k, s, groups = geometry
        padding = ((k - 1) // 2,) * 4 if s == 1 else (0, 0, 1, 1)  # TensorFlow's "same"
        q = _quantisation(rng, o, k * k * c // groups, False)
        yield conv_spec(label, _int8(rng, (1, h, w_, c), False), _weights(rng, (o, k, k, c // groups), False), q,
                        stride=(s, s), padding=padding, groups=groups)


def _specs():
    rng = np.random.default_rng(2024)
    return [*_random_conv_specs(rng, 120), *_random_dense_specs(rng, 30), *_schedule_specs(rng)]


SPECS = _specs()
# (label, spec, schedule, vector): RVV with the default schedule, portable C, RVV with each extra
# schedule. Kinds in runs, not interleaved: the runner compiles every n-th case into one unit per CPU.
CASES = [(f"{spec.label}-rvv", spec, None, True) for spec in SPECS]
CASES += [(f"{spec.label}-c", spec, None, False) for spec in SPECS]
CASES += [(f"{spec.label}-{'-'.join(f'{k}{v}' for k, v in schedule.items())}", spec, schedule, True)
          for spec in SPECS for schedule in spec.schedules]
CASES += [(spec.label, spec, None, True) for spec in _benchmark_specs()]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every case, run in one go: label -> KernelRun."""
    return run_cases(CASES, tmp_path_factory.mktemp("mac"), lambda spec: spec.arrays, lambda spec: [spec.x])


@pytest.mark.parametrize("label, spec, schedule, vector", CASES, ids=[case[0] for case in CASES])
def test_bit_exact_to_reference(runs, label, spec, schedule, vector):
    assert_bit_exact(runs[label], spec, schedule)


@pytest.mark.parametrize("label", BENCHMARKS)
def test_benchmark_instruction_count(runs, label):
    assert runs[label].instructions <= BENCHMARKS[label][1]


def test_every_schedule_is_valid():
    for _, spec, schedule, _ in CASES:
        assert codegen.validate(spec.kernel, spec.params, schedule) == "", (spec.label, schedule)


def test_grouped_pointwise_runs_on_the_channel_gemm():
    """The GEMM engine has no scratch (the pixel engine's band); grouped 1x1 layers with enough
    channels per group take it, depthwise-like ones (one input channel per group) do not."""
    spec = next(s for s in SPECS if s.label == "gemm-grouped-g3-5x7x90-o135")
    assert codegen.emit(spec.kernel, "k", spec.params, spec.arrays).scratch_bytes == 0
    depthwise = dict(spec.params, in_c=135, groups=135)
    arrays = dict(spec.arrays, weight=np.zeros((135, 1, 1, 1), np.int8))
    assert codegen.emit("conv2d", "k", depthwise, arrays).scratch_bytes > 0


def test_the_depthwise_rounding_cases_tell_the_roundings_apart():
    """The rounding-3 specs (LiteRT's depthwise) have ties in both parts: kernels/ref's output differs
    from ties up in every channel (in the channels after the whole blocks of 8) and from ties away in
    every channel (in the whole blocks), so a kernel that rounded every channel one way would fail."""
    cases = [s for s in SPECS if "rounding3" in s.label and "typical" in s.label]
    assert cases
    for spec in cases:
        whole = spec.params["out_c"] - spec.params["out_c"] % 8
        off = {}
        for rounding in (1, 2):
            q = dict(spec.params, multiplier=spec.arrays["multiplier"], shift=spec.arrays["shift"], rounding=rounding)
            other = ref.conv2d_s8(spec.x, spec.arrays["weight"], spec.arrays["bias"], stride=(1, 1), padding=(1, 1, 1, 1),
                                  groups=spec.params["groups"], **{k: q[k] for k in _QUANT})
            off[rounding] = np.argwhere(other != spec.want)[:, 3]
        assert off[1].size and off[1].max() < whole, spec.label
        assert off[2].size and off[2].min() >= whole, spec.label


def test_a_pointwise_layer_in_the_depthwise_rounding_takes_the_pixel_engine():
    """The channel GEMM vectorises over output channels and rounds every lane alike: a 1x1 layer in
    LiteRT's per-channel-block rounding takes the pixel engine (its band scratch shows), the same
    layer in one rounding the GEMM (no scratch)."""
    spec = next(s for s in SPECS if s.label == "pixel-pointwise-rounding3-5x7x30-o45")
    assert codegen.emit(spec.kernel, "k", spec.params, spec.arrays).scratch_bytes > 0
    assert codegen.emit(spec.kernel, "k", dict(spec.params, rounding=2), spec.arrays).scratch_bytes == 0
