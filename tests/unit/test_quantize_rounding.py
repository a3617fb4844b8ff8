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
