"""TFLite's int8 MEAN over H, W (Keras' GlobalAveragePooling2D) against LiteRT itself.

One-operator models with random shapes (channels around LiteRT's 16-channel SIMD blocks, 1x1
planes, batches), scales and zero points run in LiteRT's built-in kernels
(BUILTIN_WITHOUT_DEFAULT_DELEGATES); quant/reference/pool.py must give the same bytes: with
keep_dims litert_mean_params and integer_spec.MEAN_ROUNDING (LiteRT's optimized MEAN), without
it litert_reference_mean_params and MEAN_ROUNDING_WITHOUT_KEEP_DIMS (its reference MEAN). The
ONNX spec's mean (mean_params, one rounding) and the other roundings must not: the cases tell
them apart.
"""

import numpy as np
from tflite_builder import TFLiteBuilder, litert_run

from compiler.quant.fixed_point import DOUBLE_ROUNDING, DOUBLE_ROUNDING_TIES_UP, ROUNDINGS
from compiler.quant.integer_spec import MEAN_ROUNDING, MEAN_ROUNDING_WITHOUT_KEEP_DIMS, TFLITE
from compiler.quant.reference.pool import (
    global_avg_pool2d_s8, litert_mean_params, litert_reference_mean_params, mean_params)

CASES = 300


def _mean_model(path, shape, s_in, zp_in, s_out, zp_out, keep_dims=True):
    b = TFLiteBuilder()
    x = b.input("x", shape, "INT8", scale=[s_in], zero_point=[zp_in])
    y = b.tensor("y", [shape[0], 1, 1, shape[3]] if keep_dims else [shape[0], shape[3]], "INT8", scale=[s_out],
                 zero_point=[zp_out])
    b.op("MEAN", [x, b.constant("axes", np.array([1, 2], np.int32))], [y], keepDims=keep_dims)
    b.output(y)
    return b.save(path)


def _case(rng, case):
    h, w = (1, 1) if case % 7 == 0 else (int(v) for v in rng.integers(1, 12, 2))
    shape = [int(rng.integers(1, 3)), h, w, int(rng.integers(1, 70))]
    s_out = float(rng.uniform(0.005, 0.1))
    s_in = [s_out * 2.0 ** int(rng.integers(-3, 4)), s_out,  # exact ties; the plain mean
            float(np.exp(rng.uniform(np.log(1e-3), 0.0)))][case % 3]
    zp_in, zp_out = (int(v) for v in rng.integers(-128, 128, 2))
    return shape, s_in, zp_in, s_out, zp_in if case % 3 == 1 else zp_out


def test_litert_mean_is_the_tflite_spec(tmp_path):
    rng = np.random.default_rng(5)
    block, other = (ROUNDINGS.index(r) for r in MEAN_ROUNDING[TFLITE])
    swapped = dict(rounding=block, block_rounding=other)
    misses = {"onnx": 0, "swapped": 0, "all ties away": 0}
    outputs = 0
    for case in range(CASES):
        shape, s_in, zp_in, s_out, zp_out = _case(rng, case)
        x = rng.integers(-128, 128, shape).astype(np.int8)
        path = _mean_model(tmp_path / "mean.tflite", shape, s_in, zp_in, s_out, zp_out)
        want = litert_run(path, [x], reference=False)[0]
        p = litert_mean_params(s_in, zp_in, s_out, zp_out, shape[1] * shape[2])
        have = global_avg_pool2d_s8(x, **p, rounding=other, block_rounding=block)
        assert np.array_equal(have, want), (case, shape, s_in, zp_in, s_out, zp_out)
        outputs += want.size
        onnx = global_avg_pool2d_s8(x, **mean_params(s_in, zp_in, s_out, zp_out, shape[1] * shape[2]))
        misses["onnx"] += int(np.count_nonzero(onnx != want))
        misses["swapped"] += int(np.count_nonzero(global_avg_pool2d_s8(x, **p, **swapped) != want))
        ties_away = ROUNDINGS.index(DOUBLE_ROUNDING)
        misses["all ties away"] += int(np.count_nonzero(
            global_avg_pool2d_s8(x, **p, rounding=ties_away, block_rounding=ties_away) != want))
    assert outputs > 10_000 and all(count > 0 for count in misses.values()), misses
    assert MEAN_ROUNDING[TFLITE] == (DOUBLE_ROUNDING_TIES_UP, DOUBLE_ROUNDING)


def test_litert_mean_without_keep_dims_is_the_tflite_spec(tmp_path):
    """Without keep_dims LiteRT runs its reference MEAN: 1/n folded into the multiplier in integers,
    gemmlowp's rounding in every channel; large planes (n up to 89 * 89) and scale ratios from 2**-24
    (where the fold's shift is clamped at 31 + shift) to 2**8 as well. Equal input and output
    scales and zero points take the same arithmetic (older TFLite divided the raw sum by n,
    truncating, there: "integer mean")."""
    rng = np.random.default_rng(6)
    rounding = ROUNDINGS.index(MEAN_ROUNDING_WITHOUT_KEEP_DIMS[TFLITE][0])
    misses = {"onnx": 0, "keep_dims": 0, "ties up": 0, "integer mean": 0}
    outputs = 0
    for case in range(CASES):
        shape, s_in, zp_in, s_out, zp_out = _case(rng, case)
        if case % 5 == 4:
            shape = [1, *(int(v) for v in rng.integers(1, 90, 2)), int(rng.integers(1, 20))]
            s_in = s_out * float(2.0 ** rng.uniform(-24, 8))
        x = rng.integers(-128, 128, shape).astype(np.int8)
        want = litert_run(_mean_model(tmp_path / "mean.tflite", shape, s_in, zp_in, s_out, zp_out, keep_dims=False),
                          [x], reference=False)[0]
        n = shape[1] * shape[2]
        p = litert_reference_mean_params(s_in, zp_in, s_out, zp_out, n)
        have = global_avg_pool2d_s8(x, **p, rounding=rounding, block_rounding=rounding).reshape(want.shape)
        assert np.array_equal(have, want), (case, shape, s_in, zp_in, s_out, zp_out)
        outputs += want.size
        ties_up = ROUNDINGS.index(DOUBLE_ROUNDING_TIES_UP)
        others = {"onnx": global_avg_pool2d_s8(x, **mean_params(s_in, zp_in, s_out, zp_out, n)),
                  "keep_dims": global_avg_pool2d_s8(x, **litert_mean_params(s_in, zp_in, s_out, zp_out, n),
                                                    rounding=rounding, block_rounding=rounding),
                  "ties up": global_avg_pool2d_s8(x, **p, rounding=ties_up, block_rounding=ties_up)}
        if (s_in, zp_in) == (s_out, zp_out):
            others["integer mean"] = np.trunc(x.astype(np.int64).sum(axis=(1, 2)) / n).astype(np.int8)
        for name, other in others.items():
            misses[name] += int(np.count_nonzero(other.reshape(want.shape) != want))
    assert outputs > 10_000 and all(count > 0 for count in misses.values()), misses
    assert MEAN_ROUNDING_WITHOUT_KEEP_DIMS[TFLITE] == (DOUBLE_ROUNDING, DOUBLE_ROUNDING)
