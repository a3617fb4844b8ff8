"""A layer in TFLite's 16x8 scheme, written in the QDQ form (int16 activations at zero point 0, int8 weights,
the int8 <-> int16 rescales around it as quantize(dequantize(t))), offloaded to the C reference kernels,
must equal the NumPy reference (compiler.quant.reference.conv16x8) bit for bit; insert_qdq writes that form
for the layers it is asked to raise. Integer parameters are derived here independently of the lowering."""

import numpy as np
import pytest
from tvm import relax

from compiler.codegen.int8 import partition_int8
from compiler.quant import qdq
from compiler.quant import reference as ref
from compiler.quant.reference import conv16x8
from int8_testing import RNG, bias_scales, composites, int8, module, requant, run, weights

INT16_MIN, INT16_MAX = -32768, 32767


def int16_act_range(lo, s_y):
    """A ReLU's clamp in int16 (zero point 0): [round(lo / s_y), 32767]."""
    return (INT16_MIN, INT16_MAX) if lo is None else (max(INT16_MIN, int(np.floor(float(np.float32(lo) / np.float32(s_y)) + 0.5))),
                                                      INT16_MAX)


def wide_conv_module(x_shape, w_q, b_q, q8_in, s16_in, s_w, s16_out, q8_out, *, groups=1, padding=(1, 1, 1, 1),
                     relu=True):
    """int8 x -> widen to int16 -> 16x8 conv (+ bias, ReLU) -> int16 -> narrow to int8."""
    (s_x, zp_x), (s_y, zp_y) = q8_in, q8_out

    def body(bb, x):
        wide = bb.emit(qdq.quantize(bb.emit(qdq.dequantize(x, s_x, zp_x)), s16_in, 0, dtype="int16"))
        xd = bb.emit(qdq.dequantize(wide, s16_in, 0, zero_point_dtype="int16"))
        y = bb.emit(relax.op.nn.conv2d(xd, bb.emit(qdq.weight(w_q, s_w, axis=0)), padding=padding, groups=groups,
                                       data_layout="NHWC", kernel_layout="OHWI"))
        y = bb.emit(relax.op.add(y, bb.emit(qdq.bias(b_q.reshape(1, 1, 1, -1), bias_scales(s16_in, s_w)))))
        if relu:
            y = bb.emit(relax.op.nn.relu(y))
        out16 = bb.emit(qdq.quantize(y, s16_out, 0, dtype="int16"))
        return qdq.quantize(bb.emit(qdq.dequantize(out16, s16_out, 0, zero_point_dtype="int16")), s_y, zp_y)

    return module([(x_shape, "int8")], body)


@pytest.mark.parametrize("groups, relu", [(1, True), (4, False)], ids=["conv_relu", "depthwise"])
def test_widened_16x8_conv_narrowed_matches_reference(groups, relu):
    n, h, w, c, o = 1, 10, 9, 4, 4
    x = int8((n, h, w, c))
    w_q = weights((o, 3, 3, c // groups))
    b_q = RNG.integers(-400000, 400000, o).astype(np.int32)  # 256x the int8 bias unit: large values are normal
    s_x, zp_x = np.float32(0.05), -3
    s16_in = np.float32(s_x * 128 / 32767 * 1.5)  # a non-power-of-two rescale: both rounding paths show
    s_w = RNG.uniform(0.002, 0.03, o).astype(np.float32)
    # output scales from the accumulator's spread (|x16| ~ 12600, |w| ~ 73 on average): no saturation
    spread = float(s16_in) * float(s_w.mean()) * np.sqrt(9 * c // groups) * 12600 * 73
    s16_out, (s_y, zp_y) = np.float32(4 * spread / 32767), (np.float32(8 * spread / 255), 5)
    mod = wide_conv_module(x.shape, w_q, b_q, (s_x, zp_x), s16_in, s_w, s16_out, (s_y, zp_y), groups=groups, relu=relu)
    assert sorted(composites(partition_int8(mod))) == sorted(
        ["npu_ref.rescale", f"npu_ref.conv2d_bias{'_relu' * relu}", "npu_ref.rescale"])

    widen = ref.requantize_params(s_x, zp_x, s16_in, 0)
    x16 = conv16x8.requantize_s8_s16(x, input_zero_point=zp_x, multiplier=widen["multiplier"], shift=widen["shift"])
    multiplier, shift = requant(s16_in, s_w, s16_out)
    act_min, act_max = int16_act_range(0.0 if relu else None, s16_out)
    y16 = conv16x8.conv2d_s16x8(x16, w_q, b_q.astype(np.int64), padding=(1, 1, 1, 1), groups=groups,
                                multiplier=multiplier, shift=shift, act_min=act_min, act_max=act_max)
    narrow = ref.requantize_params(s16_out, 0, s_y, zp_y)
    expected = conv16x8.requantize_s16_s8(y16, output_zero_point=zp_y, multiplier=narrow["multiplier"],
                                          shift=narrow["shift"])
    assert len(np.unique(y16)) > 100 and len(np.unique(expected)) > 20  # the data exercise each stage
    np.testing.assert_array_equal(run(mod, x), expected)


def test_16x8_dense_matches_reference():
    x = int8((3, 10))
    w_q = weights((10, 6))  # [K, O]
    b_q = RNG.integers(-100000, 100000, 6).astype(np.int32)
    s_x, zp_x, s16_in, s16_out = np.float32(0.02), 7, np.float32(0.0001), np.float32(0.0002)
    s_w = RNG.uniform(0.002, 0.03, 6).astype(np.float32)

    def body(bb, v):
        wide = bb.emit(qdq.quantize(bb.emit(qdq.dequantize(v, s_x, zp_x)), s16_in, 0, dtype="int16"))
        y = bb.emit(relax.op.matmul(bb.emit(qdq.dequantize(wide, s16_in, 0, zero_point_dtype="int16")),
                                    bb.emit(qdq.weight(w_q, s_w, axis=1))))
        y = bb.emit(relax.op.add(y, bb.emit(qdq.bias(b_q, bias_scales(s16_in, s_w)))))
        return qdq.quantize(y, s16_out, 0, dtype="int16")

    mod = module([(x.shape, "int8")], body)
    assert sorted(composites(partition_int8(mod))) == ["npu_ref.dense_bias", "npu_ref.rescale"]
    widen = ref.requantize_params(s_x, zp_x, s16_in, 0)
    x16 = conv16x8.requantize_s8_s16(x, input_zero_point=zp_x, multiplier=widen["multiplier"], shift=widen["shift"])
    multiplier, shift = requant(s16_in, s_w, s16_out)
    expected = conv16x8.dense_s16x8(x16, np.ascontiguousarray(w_q.T), b_q.astype(np.int64), multiplier=multiplier,
                                    shift=shift)
    np.testing.assert_array_equal(run(mod, x), expected)


def test_int8_to_int8_through_quantize_dequantize_stays_in_tvm():
    """The rescale row takes int8 <-> int16 only: an int8 -> int8 pair is two boundary conversions."""
    def body(bb, v):
        return qdq.quantize(bb.emit(qdq.dequantize(v, 0.1, 3)), 0.2, -1)

    assert "npu_ref.rescale" not in composites(partition_int8(module([((4, 4), "int8")], body)))
