"""compiler.run.onnxruntime_cpu.session: ONNX Runtime's fused int8 kernels agree with the QDQ graph
computed literally (graph optimisation off: DequantizeLinear, float Conv, QuantizeLinear) on any
x86 CPU. Without the session option, on a CPU without VNNI the fused u8 x s8 conv saturated
(121 steps off on this model on an AVX2 EPYC), so this test fails there if the option is dropped."""

import numpy as np
import onnxruntime as ort

import onnx_models
import onnx_quantized
from compiler.run.onnxruntime_cpu import session
from relax_testing import onnx_inputs


def literal_qdq(model):
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def test_fused_int8_conv_equals_the_literal_qdq_graph():
    model = onnx_quantized.quantize_ort(onnx_models.conv_bn_act())
    fused, literal = session(model), literal_qdq(model)
    scale = onnx_quantized.output_scale(model)
    for seed in range(5):
        feeds = {name: np.random.default_rng(seed).uniform(-2, 2, value.shape).astype(np.float32)
                 for name, value in onnx_inputs(model).items()}
        steps = np.rint(np.abs(fused.run(None, feeds)[0] - literal.run(None, feeds)[0]) / scale)
        assert steps.max() == 0, f"seed {seed}: {int(steps.max())} steps off"
