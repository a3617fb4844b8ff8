"""The resize kernel specs shared by the coral-npu (tests/coral/test_kernels_resize.py), x86
(tests/kernels/test_x86_kernels.py) and NEON (tests/coral/test_arm64_target.py) kernel tests.

Seeded random specs: up- and downsampling by integer and non-integer ratios, 1-pixel inputs and
outputs, every TFLite flag combination and ONNX coordinate / rounding mode, channel counts from 1
to beyond one vector (odd tails), extreme values; bilinear tables beyond TFLite's too (fractions
outside [0, 1024]: extrapolation that saturates, and weights whose sums may pass int32). The
reference is compiler.quant._ref_resize: kernels/ref compiled for the host.
"""

import numpy as np

from compiler.quant import _ref_resize as ref
from compiler.quant.reference import resize as R

CHANNELS = [1, 2, 3, 4, 6, 8, 16, 31, 32, 33, 48, 64, 96, 129]
FLAGS = [(False, False), (True, False), (False, True), (True, True)]  # (align_corners, half_pixel_centers)


class Spec:
    """One kernel spec with its input, tables and the reference output."""

    def __init__(self, label, kernel, x, arrays):
        self.label, self.kernel, self.x, self.arrays = label, kernel, x, arrays
        y_table, x_table = arrays.values()
        reference = ref.resize_nearest_s8 if kernel == "resize_nearest" else ref.resize_bilinear_s8
        self.want = reference(x, y_table, x_table)
        n, in_h, in_w, c = x.shape
        self.params = dict(batches=n, in_h=in_h, in_w=in_w, channels=c, out_h=self.want.shape[1],
                           out_w=self.want.shape[2])


def _input(rng, shape, extreme):
    if extreme:  # mostly the int8 limits: the largest sums, and neighbours 255 apart
        return rng.choice(np.array([-128, 127, -127, 126, 0], dtype=np.int8), shape)
    return rng.integers(-128, 128, shape, dtype=np.int8)


def _sizes(rng, i):
    """(in, out) along one axis: 1-pixel ends, integer and non-integer ratios both ways."""
    kind = i % 6
    if kind == 0:
        return int(rng.integers(1, 9)), int(rng.integers(1, 13))
    if kind == 1:
        size = int(rng.integers(1, 8))
        return size, size * int(rng.integers(2, 5))  # integer upsampling
    if kind == 2:
        size = int(rng.integers(1, 6))
        return size * int(rng.integers(2, 4)), size  # integer downsampling
    if kind == 3:
        return 1, int(rng.integers(1, 9))
    if kind == 4:
        return int(rng.integers(1, 9)), 1
    return int(rng.integers(5, 17)), int(rng.integers(5, 17))


def _shape(rng, i):
    (in_h, out_h), (in_w, out_w) = _sizes(rng, i), _sizes(rng, i + int(rng.integers(0, 6)))
    channels = int(rng.choice(CHANNELS)) if i % 5 else int(rng.integers(1, 140))
    return (int(rng.integers(1, 3)), in_h, in_w, channels), out_h, out_w


def _nearest_specs(rng, count):
    for i in range(count):
        shape, out_h, out_w = _shape(rng, i)
        if i % 2:
            align, half = FLAGS[i // 2 % 4]
            tables = [R.tflite_nearest_index(n, m, align, half) for n, m in ((shape[1], out_h), (shape[2], out_w))]
            mode = f"tflite-{int(align)}{int(half)}"
        else:
            coordinates = R.ONNX_COORDINATE_MODES[i // 2 % 5]
            rounding = R.ONNX_NEAREST_MODES[i // 10 % 4]
            tables = [R.onnx_nearest_index(n, m, m / n, coordinates, rounding)
                      for n, m in ((shape[1], out_h), (shape[2], out_w))]
            mode = f"{coordinates}-{rounding}"
        x = _input(rng, shape, i % 4 == 1)
        label = f"nearest{i}-{'x'.join(map(str, shape))}-to{out_h}x{out_w}-{mode}"
        yield Spec(label, "resize_nearest", x, dict(y_index=tables[0], x_index=tables[1]))


def _odd_lerp(rng, in_size, out_size, max_fraction):
    """Tables a TFLite formula never makes: any two indices, fractions up to max_fraction either way."""
    indices = rng.integers(0, in_size, (out_size, 2))
    fractions = rng.integers(-max_fraction, max_fraction + 1, (out_size, 1))
    return np.concatenate([indices, fractions], axis=1).astype(np.int32)


def _bilinear_specs(rng, count):
    for i in range(count):
        shape, out_h, out_w = _shape(rng, i)
        pairs = ((shape[1], out_h), (shape[2], out_w))
        if i % 8 == 7:  # beyond TFLite: |f| <= 2048 (the int64 path) or in [-512, 1536] (int32, saturating)
            wide = i % 16 == 15
            tables = [_odd_lerp(rng, n, m, 2048 if wide else 512) for n, m in pairs]
            if not wide:
                tables = [t + np.int32([0, 0, 512 * (k % 2)]) for k, t in enumerate(tables)]
            mode = "wide" if wide else "extrapolating"
        else:
            align, half = FLAGS[i % 4]
            tables = [R.tflite_bilinear_tables(n, m, align, half) for n, m in pairs]
            mode = f"tflite-{int(align)}{int(half)}"
        x = _input(rng, shape, i % 3 == 1)
        label = f"bilinear{i}-{'x'.join(map(str, shape))}-to{out_h}x{out_w}-{mode}"
        yield Spec(label, "resize_bilinear", x, dict(y_lerp=tables[0], x_lerp=tables[1]))


def benchmark_specs():
    """28x28x32 -> 56x56x32 (ONNX half_pixel): nearest and bilinear."""
    x = np.random.default_rng(11).integers(-128, 128, (1, 28, 28, 32), dtype=np.int8)
    index = R.onnx_nearest_index(28, 56, 2.0, "half_pixel", "round_prefer_floor")
    nearest = Spec("nearest 28x28x32 -> 56x56x32 (half_pixel)", "resize_nearest", x, dict(y_index=index, x_index=index))
    lerp = R.bilinear_tables_for_onnx(28, 56, "half_pixel")
    bilinear = Spec("bilinear 28x28x32 -> 56x56x32 (half_pixel)", "resize_bilinear", x, dict(y_lerp=lerp, x_lerp=lerp))
    return nearest, bilinear


def specs():
    return [*_nearest_specs(np.random.default_rng(31), 48), *_bilinear_specs(np.random.default_rng(32), 48)]
