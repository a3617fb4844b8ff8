"""The double-rounding spec (compiler/quant/fixed_point.py) against LiteRT itself.

An int8 CONV_2D written as TF's converter writes it runs in LiteRT's built-in kernels and in its
reference kernels; NumPy computes the int32 accumulators and requantises them with the multipliers
TFLite derives (double(s_in) * double(s_w[c]) / double(s_out), QuantizeMultiplier). LiteRT's
reference kernels (BUILTIN_REF, what TFLite Micro follows) equal DOUBLE_ROUNDING (gemmlowp: the
final shift rounds ties away from zero) bit for bit; its optimized built-in kernels
(BUILTIN_WITHOUT_DEFAULT_DELEGATES: ruy) equal DOUBLE_ROUNDING_TIES_UP. SINGLE_ROUNDING (the ONNX
spec) equals neither, which is why TFLite models need their own spec.
"""

import numpy as np
import pytest
from tflite_builder import TFLiteBuilder, litert_run

from compiler.quant.fixed_point import (DOUBLE_ROUNDING, DOUBLE_ROUNDING_TIES_UP, ROUNDINGS, SINGLE_ROUNDING,
                                        multiply_by_quantized_multiplier_double,
                                        multiply_by_quantized_multiplier_double_up, quantize_multiplier, requantize)

RNG = np.random.default_rng(11)


def _conv_model(tmp_path):
    in_scale, in_zp, out_scale, out_zp = np.float32(0.047), -7, np.float32(0.21), 5
    w = RNG.integers(-127, 128, (16, 1, 1, 24)).astype(np.int8)
    w_scale = RNG.uniform(0.002, 0.02, 16).astype(np.float32)
    bias = RNG.integers(-5000, 5000, 16).astype(np.int32)
    b = TFLiteBuilder()
    x = b.input("x", [1, 16, 16, 24], "INT8", scale=[in_scale], zero_point=[in_zp])
    wt = b.constant("w", w, scale=w_scale, zero_point=np.zeros(16, np.int64), axis=0)
    bt = b.constant("b", bias, scale=(in_scale * w_scale).astype(np.float32), zero_point=np.zeros(16, np.int64))
    y = b.tensor("y", [1, 16, 16, 16], "INT8", scale=[out_scale], zero_point=[out_zp])
    b.op("CONV_2D", [x, wt, bt], [y], padding="VALID", strideH=1, strideW=1)
    b.output(y)
    return b.save(tmp_path / "conv.tflite"), (in_zp, out_zp, w, bias, _multipliers(in_scale, w_scale, out_scale))


def _multipliers(in_scale, w_scale, out_scale) -> list:
    """TFLite's per-channel (multiplier, shift): double(s_in) * double(s_w[c]) / double(s_out)."""
    return [quantize_multiplier(float(np.float64(in_scale) * np.float64(s) / np.float64(out_scale))) for s in w_scale]


def _numpy_conv(x, params, rounding):
    in_zp, out_zp, w, bias, multipliers = params
    acc = (x.astype(np.int64) - in_zp).reshape(-1, 24) @ w.reshape(16, 24).T.astype(np.int64) + bias
    multiplier = np.array([m for m, _ in multipliers])
    shift = np.array([s for _, s in multipliers])
    return requantize(acc, multiplier, shift, out_zp, rounding=rounding).reshape(1, 16, 16, 16)


@pytest.mark.parametrize("reference, rounding", [(True, DOUBLE_ROUNDING), (False, DOUBLE_ROUNDING_TIES_UP)],
                         ids=["builtin_ref", "builtin"])
def test_double_rounding_is_what_litert_computes(tmp_path, reference, rounding):
    path, params = _conv_model(tmp_path)
    for _ in range(3):
        x = RNG.integers(-128, 128, (1, 16, 16, 24)).astype(np.int8)
        expected = litert_run(path, [x], reference=reference)[0]
        np.testing.assert_array_equal(_numpy_conv(x, params, rounding), expected)
        others = {SINGLE_ROUNDING, DOUBLE_ROUNDING, DOUBLE_ROUNDING_TIES_UP} - {rounding}
        assert all(np.count_nonzero(_numpy_conv(x, params, other) != expected) for other in others)


@pytest.mark.parametrize("x, real, expected", [
    (101, 0.5, 51), (-101, 0.5, -50),   # one rounding here: the doubling high multiply, ties up
    (6, 0.25, 2), (-6, 0.25, -2),        # 0.25 = (2^30, -1): high multiply exact, then ties away from 0
    (-2, 0.25, -1), (-101, 0.25, -25),   # -0.5 -> -1 (single rounding: 0); -25.25 -> -25
    (1000, 3.0, 3000), (-7, 2.0, -14),   # left shifts
])
def test_double_rounding_cases(x, real, expected):
    multiplier, shift = quantize_multiplier(real)
    assert multiply_by_quantized_multiplier_double(x, multiplier, shift) == expected


def test_double_rounding_saturates_the_one_overflowing_product():
    assert multiply_by_quantized_multiplier_double(-(2**31), -(2**31), 0) == 2**31 - 1


@pytest.mark.parametrize("x, expected", [(-6, -1), (6, 2), (-2, 0), (-10, -2)])
def test_ties_up_variant_rounds_the_final_shift_up(x, expected):
    multiplier, shift = quantize_multiplier(0.25)  # -1.5 -> -1, 1.5 -> 2, -0.5 -> 0, -2.5 -> -2
    assert multiply_by_quantized_multiplier_double_up(x, multiplier, shift) == expected



def _depthwise_model(tmp_path, channels):
    """An int8 3x3 DEPTHWISE_CONV_2D (VALID, stride 1) as TF's converter writes it."""
    in_scale, in_zp, out_scale, out_zp = np.float32(0.031), 8, np.float32(0.043), -3
    w = RNG.integers(-127, 128, (1, 3, 3, channels)).astype(np.int8)
    w_scale = RNG.uniform(0.002, 0.02, channels).astype(np.float32)
    bias = RNG.integers(-3000, 3000, channels).astype(np.int32)
    zeros = np.zeros(channels, np.int64)
    b = TFLiteBuilder()
    x = b.input("x", [1, 10, 10, channels], "INT8", scale=[in_scale], zero_point=[in_zp])
    wt = b.constant("w", w, scale=w_scale, zero_point=zeros, axis=3)
    bt = b.constant("b", bias, scale=(in_scale * w_scale).astype(np.float32), zero_point=zeros)
    y = b.tensor("y", [1, 8, 8, channels], "INT8", scale=[out_scale], zero_point=[out_zp])
    b.op("DEPTHWISE_CONV_2D", [x, wt, bt], [y], padding="VALID", strideH=1, strideW=1, depthMultiplier=1)
    b.output(y)
    return b.save(tmp_path / "depthwise.tflite"), (in_zp, out_zp, w, bias, _multipliers(in_scale, w_scale, out_scale))


def _numpy_depthwise(x, params, rounding):
    in_zp, out_zp, w, bias, multipliers = params
    centred = x.astype(np.int64) - in_zp
    acc = sum(centred[:, dy:dy + 8, dx:dx + 8, :] * w[0, dy, dx].astype(np.int64) for dy in range(3) for dx in range(3))
    multiplier = np.array([m for m, _ in multipliers])
    shift = np.array([s for _, s in multipliers])
    return requantize(acc + bias, multiplier, shift, out_zp, rounding=rounding)


@pytest.mark.parametrize("reference", [True, False], ids=["builtin_ref", "builtin"])
def test_litert_depthwise_rounding_by_channel_block(tmp_path, reference):
    """DEPTHWISE_CONV_2D (measured, LiteRT 2.3 on x86): the reference kernels round as gemmlowp in
    every channel; the built-in kernel rounds whole blocks of 8 output channels with ties up (as
    CONV_2D) and the channels after the last whole block as gemmlowp. Neither one rounding in every
    channel matches it; our TFLite spec follows the built-in kernel (integer_spec.conv_rounding_code)."""
    channels = 28
    path, params = _depthwise_model(tmp_path, channels)
    blocks = channels - channels % 8
    off = {DOUBLE_ROUNDING: set(), DOUBLE_ROUNDING_TIES_UP: set()}
    for _ in range(4):
        x = RNG.integers(-128, 128, (1, 10, 10, channels)).astype(np.int8)
        expected = litert_run(path, [x], reference=reference)[0]
        for rounding, found in off.items():
            found.update(np.argwhere(_numpy_depthwise(x, params, rounding) != expected)[:, 3].tolist())
    if reference:
        assert not off[DOUBLE_ROUNDING] and off[DOUBLE_ROUNDING_TIES_UP]
    else:
        assert off[DOUBLE_ROUNDING_TIES_UP] and min(off[DOUBLE_ROUNDING_TIES_UP]) >= blocks
        assert off[DOUBLE_ROUNDING] and max(off[DOUBLE_ROUNDING]) < blocks


def test_an_int8_tflite_depthwise_of_28_channels_builds_bit_exact_to_litert(tmp_path):
    """The rule above in our build (integer_spec.conv_rounding_code: rounding code 3, which the
    generated kernels take as kernels/ref does): a TFLite int8 depthwise whose last 4 output channels
    are no whole block of 8, built for the host, equals LiteRT's built-in kernels."""
    import tvm

    from compiler.compile_model import compile_model
    from compiler.export.verify import host_vm
    from compiler.frontend import load_model
    from compiler.targets import get_target

    path, params = _depthwise_model(tmp_path, 28)
    vm = host_vm(compile_model(load_model(path), get_target("host"), source=str(path)))
    mismatched = 0
    for _ in range(4):
        x = RNG.integers(-128, 128, (1, 10, 10, 28)).astype(np.int8)
        expected = litert_run(path, [x], reference=False)[0]
        np.testing.assert_array_equal(vm["main"](tvm.runtime.tensor(x)).numpy(), expected)
        mismatched += np.count_nonzero(_numpy_depthwise(x, params, DOUBLE_ROUNDING_TIES_UP) != expected)
    assert mismatched  # ties up in every channel would not be


def _add_model(tmp_path, scales, operator="ADD"):
    """One int8 ADD (or SUB) of two [1, 32, 32, 8] inputs at `scales`: (s1, zp1, s2, zp2, s_out, zp_out)."""
    s1, z1, s2, z2, so, zo = scales
    shape = [1, 32, 32, 8]
    b = TFLiteBuilder()
    x = b.input("x", shape, "INT8", scale=[np.float32(s1)], zero_point=[z1])
    y = b.input("y", shape, "INT8", scale=[np.float32(s2)], zero_point=[z2])
    out = b.tensor("out", shape, "INT8", scale=[np.float32(so)], zero_point=[zo])
    b.op(operator, [x, y], [out])
    b.output(out)
    return b.save(tmp_path / f"{operator.lower()}.tflite")


# Near face_landmark's op 126 (random calibration; LiteRT -64 where one rounding gave -65), and
# scales in simple ratios, whose rescales hit exact ties often.
ADD_SCALES = [(0.0743156, -98, 0.0360338, 4, 0.0921673, -71), (0.05, 3, 0.025, -7, 0.1, 11),
              (0.125, 0, 0.0625, 5, 0.25, -1)]


@pytest.mark.parametrize("reference", [True, False], ids=["builtin_ref", "builtin"])
@pytest.mark.parametrize("operator", ["ADD", "SUB"])
def test_litert_add_rounds_every_rescale_as_gemmlowp(tmp_path, reference, operator):
    """ADD and SUB (measured, LiteRT 2.3): the built-in and the reference kernels both rescale the
    inputs and the output with gemmlowp's double rounding (ties away from zero in the final shift);
    SUB is ADD with input2's multiplier negated, i.e. input2's offset negated. Our add_s8 with
    rounding 1 (integer_spec: TFLite's ADD) equals them; one rounding and ruy's ties-up do not."""
    from compiler.quant.reference.elementwise import add_params, add_s8

    differ = {SINGLE_ROUNDING: 0, DOUBLE_ROUNDING_TIES_UP: 0}
    for scales in ADD_SCALES:
        path = _add_model(tmp_path, scales, operator)
        params = dict(add_params(*scales), subtract=int(operator == "SUB"))
        x, y = (RNG.integers(-128, 128, (1, 32, 32, 8)).astype(np.int8) for _ in range(2))
        expected = litert_run(path, [x, y], reference=reference)[0]
        np.testing.assert_array_equal(add_s8(x, y, **params, rounding=ROUNDINGS.index(DOUBLE_ROUNDING)), expected)
        for rounding in differ:
            differ[rounding] += np.count_nonzero(add_s8(x, y, **params, rounding=ROUNDINGS.index(rounding)) != expected)
    assert all(differ.values()), differ


def test_an_int8_tflite_add_builds_bit_exact_to_litert(tmp_path):
    """The rule above in our build: a TFLite int8 ADD at scales in simple ratios (ties in every
    rescale), built for the host (the x86 add kernel in TFLite's double rounding), equals LiteRT's
    built-in kernels where one rounding would not."""
    import tvm

    from compiler.compile_model import compile_model
    from compiler.export.verify import host_vm
    from compiler.frontend import load_model
    from compiler.quant.reference.elementwise import add_params, add_s8
    from compiler.targets import get_target

    path = _add_model(tmp_path, ADD_SCALES[1])
    vm = host_vm(compile_model(load_model(path), get_target("host"), source=str(path)))
    x, y = (RNG.integers(-128, 128, (1, 32, 32, 8)).astype(np.int8) for _ in range(2))
    expected = litert_run(path, [x, y], reference=False)[0]
    np.testing.assert_array_equal(vm["main"](tvm.runtime.tensor(x), tvm.runtime.tensor(y)).numpy(), expected)
    assert np.count_nonzero(add_s8(x, y, **add_params(*ADD_SCALES[1])) != expected)  # one rounding would differ
