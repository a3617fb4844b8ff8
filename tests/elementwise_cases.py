"""Seeded random specs of the element-wise and pooling kernels (add and subtract with broadcast, mul,
requantize, lut, concat, max / avg / global average pool) with kernels/ref's output for each, and
real networks' layer shapes: what the RVV kernels (tests/coral/test_kernels_elementwise.py) and the
x86 kernels (tests/kernels/test_x86_kernels.py) are checked on. Extreme zero points, multipliers,
shifts, activation ranges, odd channel counts, every padding and stride, windows large enough for
the int32 sums; the reference is compiler.quant._ref_elementwise (kernels/ref compiled for the host).
"""

import numpy as np

from compiler.quant import _ref_elementwise as ref
from compiler.quant.fixed_point import quantize_multiplier
from compiler.quant.reference.elementwise import add_params, mul_params
from compiler.quant.reference.lut import unary_table
from compiler.quant.reference.pool import litert_mean_params, litert_reference_mean_params

INT32_MAX = 2**31 - 1
ACT_RANGES = [(-128, 127), (-128, 127), (0, 127), (-128, 0), (-3, 50), (5, 5), (-127, 126)]


def _int8(rng, shape, extreme=False):
    if extreme:  # mostly the int8 limits: saturating sums and maxima
        return rng.choice(np.array([-128, 127, -127, 126, 0], dtype=np.int8), shape)
    return rng.integers(-128, 128, shape, dtype=np.int8)


def _most_negative(rng, shape):
    """Sums as large as int8 inputs make them: they overflow any int16 sum of more than 256."""
    return rng.choice(np.array([-128, -127], dtype=np.int8), shape)


def _multiplier(rng):
    return int(rng.choice([0, 1 << 30, INT32_MAX, rng.integers(1 << 30, 1 << 31), rng.integers(0, 1 << 31)]))


def _zero_point(rng):
    return int(rng.choice([-128, 127, 0, rng.integers(-128, 128)]))


def _act(rng):
    return dict(zip(("act_min", "act_max"), ACT_RANGES[rng.integers(len(ACT_RANGES))]))


class Spec:
    """One kernel spec with its inputs and the reference output."""

    def __init__(self, label, kernel, params, inputs, want, loop_orders=(None,), arrays=None):
        self.label, self.kernel, self.params, self.inputs, self.want = label, kernel, params, inputs, want
        self.loop_orders, self.arrays = loop_orders, arrays or {}


def _add_raw_params(rng):
    """npu_add_params' arithmetic fields over their whole domain (saturating multipliers included)."""
    params = dict(left_shift=int(rng.choice([20, 0, rng.integers(0, 21)])), output_zero_point=_zero_point(rng),
                  output_multiplier=_multiplier(rng), output_shift=int(rng.integers(-31, 1)), **_act(rng))
    for n in (1, 2):
        params |= {f"input{n}_zero_point": _zero_point(rng), f"input{n}_multiplier": _multiplier(rng),
                   f"input{n}_shift": int(rng.choice([0, -1, -31, rng.integers(-31, 1)]))}
    return params


def _add_specs(rng, count):
    """Flat sizes from empty to many vectors; every third one a difference (no random draw for it,
    so that the data of the specs after these stays as it was)."""
    for i in range(count):
        shape = (int(rng.integers(0, 3000)),) if i else (0,)
        a, b = _int8(rng, shape, i % 4 == 1), _int8(rng, shape, i % 4 == 1)
        params = dict(_add_raw_params(rng), batches=1, pixels=a.size, channels=1, broadcast=0, subtract=int(i % 3 == 2),
                      rounding=(i // 3) % 3)  # single (ONNX), double (TFLite's ADD), double ties-up
        yield Spec(f"add{i}-r{params['rounding']}-{shape[0]}-{'sub' if params['subtract'] else 'add'}", "add", params,
                   [a, b], ref.add_s8(a, b, **params))


def _add_nhwc_specs(rng, count):
    """NHWC, input2 [N,1,1,C] (broadcast) or the same shape, add or subtract: each combination at
    both LMUL pairs of _variants; channel counts of one vector and odd tails at every LMUL, empty
    tensors; multipliers from real scales (TFLite's Prepare) and the whole int8 output range, so
    that outputs vary, but every fifth spec a narrow activation range and every fifth the raw
    parameter domain (mostly saturated outputs)."""
    for i in range(count):
        broadcast, subtract = i % 4 < 2, (i // 4) % 2 == 1
        channels = int(rng.choice([1, 3, 4, 8, 16, 31, 32, 33, 64, 96, 97, rng.integers(1, 200)]))
        shape = (int(rng.integers(1, 3)), int(rng.integers(1, 8)), int(rng.integers(1, 8)), channels)
        if i < 4:  # empty: no pixels, no channels, no batches
            shape = [(1, 0, 4, 5), (2, 3, 3, 0), (2, 3, 3, 0), (0, 2, 2, 7)][i]
        a = _int8(rng, shape, i % 3 == 1)
        b = _int8(rng, (shape[0], 1, 1, shape[3]) if broadcast else shape, i % 3 == 1)
        if i % 5 == 4:
            params = _add_raw_params(rng)
        else:
            scales = 10.0 ** rng.uniform(-3, 0, 2)
            act = _act(rng) if i % 5 == 2 else dict(act_min=-128, act_max=127)
            params = add_params(scales[0], _zero_point(rng), scales[1], _zero_point(rng),
                                max(scales) * 10.0 ** rng.uniform(-1, 1), _zero_point(rng), **act)
        params |= dict(batches=shape[0], pixels=shape[1] * shape[2], channels=shape[3], broadcast=int(broadcast),
                       subtract=int(subtract), rounding=(i // 8) % 3)
        label = (f"add-nhwc{i}-r{params['rounding']}-{'x'.join(map(str, shape))}-"
                 f"{'broadcast' if broadcast else 'flat'}-{'sub' if subtract else 'add'}")
        yield Spec(label, "add", params, [a, b], ref.add_s8(a, b, **params))


def _mul_specs(rng, count):
    """Both broadcast modes ([N,H,W,C] times [N,1,1,C], and same shapes); channel counts of one
    vector and odd tails at every LMUL; empty tensors; shifts on both sides of the vector code's
    short-path limit (13 / 14) and saturating ones, with multipliers small enough not to saturate."""
    shifts = [30, 14, 13, 0, -1, -2, -8, -31, None]  # None: random
    for i in range(count):
        broadcast = i % 4 < 2  # each mode at both LMUL pairs of _variants
        channels = int(rng.choice([1, 3, 4, 8, 16, 31, 32, 33, 64, 96, 97, rng.integers(1, 200)]))
        shape = (int(rng.integers(1, 3)), int(rng.integers(1, 8)), int(rng.integers(1, 8)), channels)
        if i < 4:  # empty: no pixels, no channels, no batches
            shape = [(1, 0, 4, 5), (2, 3, 3, 0), (2, 3, 3, 0), (0, 2, 2, 7)][i]
        a = _int8(rng, shape, i % 4 == 1)
        b = _int8(rng, (shape[0], 1, 1, shape[3]) if broadcast else shape, i % 4 == 1)
        shift = int(rng.integers(-31, 31)) if shifts[i % 9] is None else shifts[i % 9]
        # mostly a multiplier that scales the largest products (2^16) to about 2^9 at most: outputs
        # not all saturated; else any (0, 2^30, 2^31 - 1, ...)
        bits = min(31, max(1, 24 - shift))
        multiplier = _multiplier(rng) if i % 4 == 3 else int(rng.integers(1 << (bits - 1), 1 << bits))
        params = dict(input1_zero_point=_zero_point(rng), input2_zero_point=_zero_point(rng),
                      output_zero_point=_zero_point(rng), output_multiplier=multiplier, output_shift=shift, **_act(rng),
                      rounding=(i // 4) % 3)  # single (ONNX), double (TFLite's MUL), double ties-up
        label = f"mul{i}-r{params['rounding']}-{'x'.join(map(str, shape))}-{'broadcast' if broadcast else 'flat'}"
        yield Spec(label, "mul", dict(params, batches=shape[0], pixels=shape[1] * shape[2], channels=shape[3],
                                      broadcast=int(broadcast)), [a, b], ref.mul_s8(a, b, **params))


def _requantize_specs(rng, count):
    for i in range(count):
        x = _int8(rng, (int(rng.integers(1, 700)),))
        params = dict(input_zero_point=_zero_point(rng), output_zero_point=_zero_point(rng), multiplier=_multiplier(rng),
                      shift=int(rng.choice([30, -31, 0, 1, rng.integers(-31, 31)])), **_act(rng))
        yield Spec(f"requantize{i}-{x.size}", "requantize", dict(params, size=x.size), [x], ref.requantize_s8(x, **params))


def _lut_specs(rng, count):
    """Random tables (every entry possible) over sizes from empty to several vectors."""
    for i in range(count):
        x = _int8(rng, (int(rng.choice([0, 1, 127, 128, 129, rng.integers(1, 3000)])),), i % 3 == 1)
        table = rng.integers(-128, 128, 256, dtype=np.int8)
        yield Spec(f"lut{i}-{x.size}", "lut", dict(size=x.size), [x], ref.lut_s8(x, table), arrays=dict(table=table))


def _concat_specs(rng, count):
    """Along every axis of NHWC tensors; inputs that are copies (the output's scale and zero point)
    and rescaled ones; rows shorter and longer than a vector (both loop orders), empty inputs."""
    for i in range(count):
        axis = int(rng.choice([3, 3, 0, 1, 2]))
        shape = [int(rng.integers(1, 3)), *(int(v) for v in rng.integers(1, 12, 2)),
                 int(rng.choice([1, 3, 16, 64, 200, rng.integers(1, 40)]))]
        arity = int(rng.integers(1, 5))
        output_zero_point = _zero_point(rng)
        inputs, zero_points, multipliers, shifts = [], [], [], []
        for n in range(arity):
            extent = int(rng.choice([0, 1, 5, 16, 64, 130, rng.integers(1, 40)])) if axis == 3 else int(rng.integers(0, 5))
            inputs.append(_int8(rng, tuple(extent if d == axis else shape[d] for d in range(4)), n % 3 == 1))
            copy = rng.random() < 0.3
            zero_points.append(output_zero_point if copy else _zero_point(rng))
            multipliers.append(1 << 30 if copy else _multiplier(rng))
            shifts.append(1 if copy else int(rng.choice([30, -31, 0, 1, rng.integers(-31, 31)])))
        qparams = dict(input_zero_points=zero_points, multipliers=multipliers, shifts=shifts,
                       output_zero_point=output_zero_point)
        want = ref.concat_s8(inputs, axis=axis, **qparams)
        inner = int(np.prod(shape[axis + 1:]))
        params = dict(outer=int(np.prod(shape[:axis])), num_inputs=arity, output_zero_point=output_zero_point)
        for n, x in enumerate(inputs):
            params |= {f"input{n}_size": x.shape[axis] * inner, f"input{n}_zero_point": zero_points[n],
                       f"input{n}_multiplier": multipliers[n], f"input{n}_shift": shifts[n]}
        label = f"concat{i}-axis{axis}-" + "+".join("x".join(map(str, x.shape)) for x in inputs)
        yield Spec(label, "concat", params, inputs, want, loop_orders=("oc_px", "px_oc"))


def _pool_geometry(rng, big_window):
    """(input shape, kernel, stride, padding) that the reference accepts."""
    while True:
        h, w = (int(v) for v in rng.integers(1, 13, 2))
        kernel = (h, w) if big_window else tuple(int(rng.integers(1, min(4, d) + 1)) for d in (h, w))
        stride = tuple(int(rng.integers(1, 4)) for _ in range(2))
        padding = tuple(int(rng.integers(0, k)) for k in kernel + kernel)  # top, left, bottom, right
        shape = (int(rng.integers(1, 3)), h, w, int(rng.choice([1, 3, 16, 33, 150, rng.integers(1, 80)])))
        try:
            ref.max_pool2d_s8(np.zeros(shape, np.int8), kernel=kernel, stride=stride, padding=padding)
        except ValueError:  # a window entirely in the padding, or an empty output
            continue
        return shape, kernel, stride, padding


def _pool_specs(rng, count, kernel_name):
    reference = ref.max_pool2d_s8 if kernel_name == "max_pool2d" else ref.avg_pool2d_s8
    for i in range(count):
        shape, kernel, stride, padding = _pool_geometry(rng, big_window=i % 5 == 4)
        if kernel_name == "avg_pool2d" and i == 0:  # 16 x 17 = 272 elements: the int32 sums
            shape, kernel, stride, padding = (1, 16, 17, 5), (16, 17), (1, 1), (0, 0, 0, 0)
        if kernel_name == "avg_pool2d" and i == 1:  # 256 elements: the CPU families' largest int16 sums
            shape, kernel, stride, padding = (1, 16, 16, 33), (16, 16), (1, 1), (0, 0, 0, 0)
        x = _most_negative(rng, shape) if kernel in ((16, 17), (16, 16)) else _int8(rng, shape, i % 3 == 1)
        act = _act(rng)
        want = reference(x, kernel=kernel, stride=stride, padding=padding, **act)
        params = dict(batches=shape[0], in_h=shape[1], in_w=shape[2], channels=shape[3], out_h=want.shape[1],
                      out_w=want.shape[2], kernel_h=kernel[0], kernel_w=kernel[1], stride_h=stride[0],
                      stride_w=stride[1], pad_top=padding[0], pad_left=padding[1], **act)
        label = f"{kernel_name}{i}-{'x'.join(map(str, shape))}-k{kernel[0]}x{kernel[1]}-s{stride[0]}x{stride[1]}-p{padding}"
        yield Spec(label, kernel_name, params, [x], want, loop_orders=("oc_px", "px_oc"))


def _global_specs(rng, count):
    for i in range(count):
        h, w = ((20, 20) if i == 0 else tuple(int(v) for v in rng.integers(1, 10, 2)))  # 400 pixels: 2 partial sums
        shape = (int(rng.integers(1, 3)), h, w, int(rng.choice([1, 7, 32, 33, rng.integers(1, 300)])))
        x = _most_negative(rng, shape) if i == 0 else _int8(rng, shape, i % 3 == 1)
        params = dict(input_zero_point=_zero_point(rng), output_zero_point=_zero_point(rng), multiplier=_multiplier(rng),
                      shift=int(rng.choice([30, -31, 0, -8, rng.integers(-31, 31)])), **_act(rng))
        if i == 0:  # the plain mean, so that an overflowing partial sum shows in the output
            multiplier, shift = quantize_multiplier(1 / (h * w))
            params |= dict(input_zero_point=0, output_zero_point=0, multiplier=multiplier, shift=shift, act_min=-128,
                           act_max=127)
        want = ref.global_avg_pool2d_s8(x, **params)
        yield Spec(f"global{i}-{'x'.join(map(str, shape))}", "global_avg_pool2d",
                   dict(params, batches=shape[0], in_h=h, in_w=w, channels=shape[3]), [x], want)


def _litert_global_specs(rng, count):
    """TFLite models' MEAN (litert_mean_params: raw sums, a bias) with every pair of roundings for
    the whole 16-channel blocks and the other channels; channel counts around the block."""
    for i in range(count):
        h, w = (int(v) for v in rng.integers(1, 10, 2))
        shape = (int(rng.integers(1, 3)), h, w, int(rng.choice([3, 8, 16, 17, 33, 48, rng.integers(1, 300)])))
        x = _int8(rng, shape, i % 3 == 1)
        s_in = float(10.0 ** rng.uniform(-3, 0))
        params = litert_mean_params(s_in, _zero_point(rng), s_in * 10.0 ** rng.uniform(-2, 2), _zero_point(rng), h * w)
        params |= dict(rounding=i % 3, block_rounding=i // 3 % 3, **_act(rng))
        if i % 4 == 3:  # raw: saturating multipliers and the largest biases
            params |= dict(multiplier=_multiplier(rng), shift=int(rng.integers(-31, 31)),
                           bias=int(rng.choice([-(1 << 30), 1 << 30])))
        yield Spec(f"litert-global{i}-r{params['rounding']}{params['block_rounding']}-{'x'.join(map(str, shape))}",
                   "global_avg_pool2d", dict(params, batches=shape[0], in_h=h, in_w=w, channels=shape[3]), [x],
                   ref.global_avg_pool2d_s8(x, **params))


def _litert_reference_global_specs(rng, count):
    """TFLite models' MEAN without keep_dims (litert_reference_mean_params: multipliers below 2**30,
    shifts down to -31), gemmlowp's rounding in every channel; planes up to 40x40."""
    for i in range(count):
        h, w = (int(v) for v in rng.integers(1, 41 if i % 2 else 10, 2))
        shape = (int(rng.integers(1, 3)), h, w, int(rng.choice([3, 16, 17, 33, rng.integers(1, 300)])))
        x = _int8(rng, shape, i % 3 == 1)
        s_in = float(10.0 ** rng.uniform(-3, 0))
        params = litert_reference_mean_params(s_in, _zero_point(rng), s_in * 2.0 ** rng.uniform(-8, 24),
                                              _zero_point(rng), h * w)
        params |= dict(rounding=1, block_rounding=1, **_act(rng))  # MEAN_ROUNDING_WITHOUT_KEEP_DIMS[TFLITE]
        yield Spec(f"litert-ref-global{i}-{'x'.join(map(str, shape))}", "global_avg_pool2d",
                   dict(params, batches=shape[0], in_h=h, in_w=w, channels=shape[3]), [x],
                   ref.global_avg_pool2d_s8(x, **params))


def specs():
    rng = np.random.default_rng(7)
    # mul: its own generator and a multiple of 4 specs, so that the others' data and LMULs stay as they were
    return [*_add_specs(rng, 24), *_mul_specs(np.random.default_rng(19), 36), *_requantize_specs(rng, 16),
            *_lut_specs(np.random.default_rng(17), 12), *_pool_specs(rng, 30, "max_pool2d"),
            *_pool_specs(rng, 30, "avg_pool2d"), *_global_specs(rng, 20), *_concat_specs(np.random.default_rng(13), 24),
            *_add_nhwc_specs(np.random.default_rng(23), 32),  # its own generator: the others stay as they were
            *_litert_global_specs(np.random.default_rng(29), 18),
            *_litert_reference_global_specs(np.random.default_rng(31), 8)]


def benchmark_specs():
    rng = np.random.default_rng(11)
    a, b = _int8(rng, (1, 56, 56, 32)), _int8(rng, (1, 56, 56, 32))
    add = dict(left_shift=20, input1_zero_point=3, input1_multiplier=1 << 30, input1_shift=0, input2_zero_point=-7,
               input2_multiplier=1_500_000_000, input2_shift=-1, output_zero_point=5, output_multiplier=1_800_000_000,
               output_shift=-19, act_min=-128, act_max=127)
    add |= dict(batches=1, pixels=a.size, channels=1, broadcast=0, subtract=0)
    yield Spec("add 56x56x32", "add", add, [a, b], ref.add_s8(a, b, **add))
    se_rng = np.random.default_rng(12)  # its own: the other benchmarks' data stays as it was
    x, gate = _int8(se_rng, (1, 28, 28, 96)), _int8(se_rng, (1, 1, 1, 96))
    mul = dict(input1_zero_point=-5, input2_zero_point=-128, output_zero_point=3, act_min=-128, act_max=127,
               **mul_params(0.05, 1 / 256, 0.04))  # times a sigmoid gate (scale 1/256, zero point -128)
    yield Spec("mul 28x28x96 x 1x1x96 (squeeze-excite)", "mul",
               dict(mul, batches=1, pixels=28 * 28, channels=96, broadcast=1), [x, gate], ref.mul_s8(x, gate, **mul))
    hard_swish = unary_table(lambda v: v * np.clip(v + 3, 0, 6) / 6, 0.05, -10, 0.04, -120)
    yield Spec("lut 56x56x32 (hard-swish)", "lut", dict(size=a.size), [a], ref.lut_s8(a, hard_swish),
               arrays=dict(table=hard_swish))
    for label, kind, shape, k, stride, padding in [
            ("max pool 3x3 s2 112x112x16", "max_pool2d", (1, 112, 112, 16), 3, 2, (1, 1, 1, 1)),
            ("avg pool 2x2 s2 28x28x64", "avg_pool2d", (1, 28, 28, 64), 2, 2, (0, 0, 0, 0))]:
        x = _int8(rng, shape)
        reference = ref.max_pool2d_s8 if kind == "max_pool2d" else ref.avg_pool2d_s8
        want = reference(x, kernel=(k, k), stride=(stride, stride), padding=padding)
        params = dict(batches=1, in_h=shape[1], in_w=shape[2], channels=shape[3], out_h=want.shape[1],
                      out_w=want.shape[2], kernel_h=k, kernel_w=k, stride_h=stride, stride_w=stride,
                      pad_top=padding[0], pad_left=padding[1], act_min=-128, act_max=127)
        yield Spec(label, kind, params, [x], want)
    fire = [_int8(rng, (1, 55, 55, 64)) for _ in range(2)]
    qparams = dict(input_zero_points=[-128, -100], multipliers=[1 << 30, 1_700_000_000], shifts=[1, 0],
                   output_zero_point=-128)  # the first input a copy, the second rescaled
    params = dict(outer=55 * 55, num_inputs=2, output_zero_point=-128)
    for n in range(2):
        params |= {f"input{n}_size": 64, f"input{n}_zero_point": qparams["input_zero_points"][n],
                   f"input{n}_multiplier": qparams["multipliers"][n], f"input{n}_shift": qparams["shifts"][n]}
    yield Spec("concat 55x55 64+64 (SqueezeNet fire)", "concat", params, fire, ref.concat_s8(fire, **qparams))
    x = _int8(rng, (1, 7, 7, 256))
    mean = dict(input_zero_point=-3, output_zero_point=2, multiplier=1_402_438_301, shift=-5, act_min=-128, act_max=127)
    yield Spec("global avg pool 7x7x256", "global_avg_pool2d", dict(mean, batches=1, in_h=7, in_w=7, channels=256), [x],
               ref.global_avg_pool2d_s8(x, **mean))
    yield from _add_benchmark_specs(np.random.default_rng(24))  # its own: the other benchmarks' data stays as it was


def _add_benchmark_specs(rng):
    """A per-channel bias-like add ([N,1,1,C] operand, as a BatchNorm shift or a channel-wise
    constant) and a same-shape difference, at a MobileNet-sized 28x28x96 layer."""
    x, y, bias = _int8(rng, (1, 28, 28, 96)), _int8(rng, (1, 28, 28, 96)), _int8(rng, (1, 1, 1, 96))
    layout = dict(batches=1, pixels=28 * 28, channels=96)
    add = dict(add_params(0.05, -5, 0.02, 3, 0.06, 2), **layout, broadcast=1, subtract=0)
    yield Spec("add 28x28x96 + 1x1x96 (broadcast)", "add", add, [x, bias], ref.add_s8(x, bias, **add))
    sub = dict(add_params(0.05, -5, 0.03, 7, 0.07, -1), **layout, broadcast=0, subtract=1)
    yield Spec("sub 28x28x96", "add", sub, [x, y], ref.add_s8(x, y, **sub))
