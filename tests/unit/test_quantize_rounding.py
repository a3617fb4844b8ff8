"""float -> int8 quantisation rounds x / scale half to even, as both references do: ONNX Runtime's
QuantizeLinear (the ONNX spec) and LiteRT's built-in QUANTIZE (TFLite models' spec: the resolver
without XNNPACK). LiteRT's reference kernels (TFLite Micro) round half away from zero instead; this
pins which one the int8 spec follows. Inputs are exact ties (k + 0.5) * scale and their neighbours."""

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper
from tflite_builder import TFLiteBuilder, litert_run

from compiler.quant.reference import elementwise as E

SCALE, ZERO_POINT = np.float32(0.25), 3
X = np.concatenate([(np.arange(-120, 120) + 0.5) * SCALE, np.arange(-120, 120) * SCALE,
                    np.nextafter((np.arange(-20, 20) + 0.5) * SCALE, np.float32(0))]).astype(np.float32)


def _onnx_runtime(x):
    node = helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"])
    graph = helper.make_graph([node], "q", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [x.size])],
                              [helper.make_tensor_value_info("y", TensorProto.INT8, [x.size])],
                              [helper.make_tensor("s", TensorProto.FLOAT, [], [float(SCALE)]),
                               helper.make_tensor("z", TensorProto.INT8, [], [ZERO_POINT])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def _litert(x, tmp_path, reference):
    b = TFLiteBuilder()
    source = b.input("x", [1, x.size])
    y = b.tensor("y", [1, x.size], "INT8", scale=[SCALE], zero_point=[ZERO_POINT])
    b.op("QUANTIZE", [source], [y])
    b.output(y)
    return litert_run(b.save(tmp_path / "quantize.tflite"), [x.reshape(1, -1)], reference=reference)[0].ravel()


def test_quantize_rounds_half_to_even_as_onnx_runtime_and_litert(tmp_path):
    ours = E.quantize(X, SCALE, ZERO_POINT)
    np.testing.assert_array_equal(ours, _onnx_runtime(X))
    np.testing.assert_array_equal(ours, _litert(X, tmp_path, reference=False))
    # the test can tell the two roundings apart: TFLite's reference kernels round the ties away from zero
    assert np.count_nonzero(ours != _litert(X, tmp_path, reference=True)) > 100


def _near_ties(rng, scale, n):
    """n float32 values (k + 0.5) * scale (float32 products: ties of x / scale or 1 ulp off one) and, every
    third, a normal draw."""
    x = ((rng.integers(-120, 120, n) + 0.5) * scale).astype(np.float32)
    x[::3] = rng.normal(0, 2, x[::3].size).astype(np.float32)
    return x


def test_litert_quantize_multiplies_blocks_of_8_and_divides_the_rest(tmp_path):
    """LiteRT's built-in QUANTIZE (measured): its vector loop multiplies whole blocks of 8 elements by
    float32(1 / scale) and rounds half to even; its scalar loop divides the other elements in double
    and rounds half away from zero. The TFLite spec's block 8 is that, bit for bit, in NumPy and in
    kernels/ref; ONNX's division (block 0) is not."""
    from compiler.quant import _ref_elementwise as C

    rng = np.random.default_rng(3)
    differ = 0
    for scale, zero_point in [(np.float32(0.0071), 5), (np.float32(0.036909), -1), (np.float32(0.3), 0)]:
        for n in (7, 8, 13, 4099):
            x = _near_ties(rng, scale, n)
            b = TFLiteBuilder()
            source = b.input("x", [1, n])
            y = b.tensor("y", [1, n], "INT8", scale=[scale], zero_point=[zero_point])
            b.op("QUANTIZE", [source], [y])
            b.output(y)
            want = litert_run(b.save(tmp_path / "q.tflite"), [x.reshape(1, -1)], reference=False)[0].ravel()
            np.testing.assert_array_equal(E.quantize(x, scale, zero_point, block=8), want, err_msg=f"{scale} {n}")
            np.testing.assert_array_equal(C.quantize(x, scale, zero_point, block=8), want, err_msg=f"{scale} {n}")
            differ += np.count_nonzero(E.quantize(x, scale, zero_point) != want)
    assert differ


def test_the_exact_quotient_decides_a_float_tie():
    """The scalar loop's half-away rounding is of the exact quotient: x / scale rounded to float32 can be
    a tie where the exact quotient is not. Found by search: such x round to the nearer integer."""
    from compiler.quant import _ref_elementwise as C

    rng = np.random.default_rng(5)
    scale = np.float32(0.0071)
    ties = (rng.integers(-120, 120, 200000) + 0.5).astype(np.float32)
    x = np.nextafter((ties * scale).astype(np.float32), np.float32(0))  # just inside the tie, toward 0
    x = x[(x / scale) == ties]  # the float quotient is still the tie
    assert x.size > 10
    exact = x.astype(np.float64) / np.float64(scale)
    want = np.where(exact > 0, np.floor(exact + 0.5), np.ceil(exact - 0.5)).astype(np.int64)
    for quantize in (E.quantize, C.quantize):
        got = quantize(x, scale, 0, block=x.size + 1).astype(np.int64)  # no whole block: all divided
        np.testing.assert_array_equal(got, np.clip(want, -128, 127))
