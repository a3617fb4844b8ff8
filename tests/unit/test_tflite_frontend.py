"""The TFLite frontend, operator by operator: each model is written with LiteRT's schema
(tests/tflite_builder.py), converted by compiler/frontend/tflite.py, run by ONNX Runtime and
compared with LiteRT's built-in reference kernels on the same random input.

Float models: equal within 1e-5 relative to the output's largest magnitude (the two runtimes sum
in different orders). A dynamic-range model is imported as float with its weights dequantised:
LiteRT's hybrid kernels also quantise the activations at run time (8 bits per row), so there the
bound is that quantisation's error, 2% of the largest output. Layout: converted NHWC operators keep TFLite's axes, so outputs compare as
they are. Hostile and unsupported files: one CompilerError line naming the operator or tensor.
"""

import numpy as np
import onnxruntime as ort
import pytest
from tflite_builder import TFLiteBuilder, litert_run

from compiler.errors import CompilerError
from compiler.frontend.tflite import load_tflite, model_origin

RNG = np.random.default_rng(7)
TOLERANCE = 1e-5
HYBRID_TOLERANCE = 2e-2  # LiteRT quantises a hybrid layer's input to int8 at run time; we do not


def _weights(*shape, scale=0.3):
    return RNG.normal(0.0, scale, shape).astype(np.float32)


def _single(op, in_shape, out_shape, operands=(), **options):
    """x -> op(x, *constants) -> y, float32."""
    def build(b):
        x = b.input("x", in_shape)
        inputs = [x] + [b.constant(f"c{i}", c) if not isinstance(c, int) else c for i, c in enumerate(operands)]
        y = b.tensor("y", out_shape)
        b.op(op, inputs, [y], **options)
        b.output(y)
        return [in_shape]
    return build


def _conv(padding, stride, dilation, activation):
    def build(b):
        x = b.input("x", [1, 9, 10, 3])
        w, bias = b.constant("w", _weights(4, 3, 3, 3)), b.constant("b", _weights(4))
        size = lambda n: (n + stride - 1) // stride if padding == "SAME" else (n - 2 * dilation) // stride + 1  # noqa
        y = b.tensor("y", [1, size(9), size(10), 4])
        b.op("CONV_2D", [x, w, bias], [y], padding=padding, strideH=stride, strideW=stride, dilationHFactor=dilation,
             dilationWFactor=dilation, fusedActivationFunction=activation)
        b.output(y)
        return [[1, 9, 10, 3]]
    return build


def _depthwise(b):
    x = b.input("x", [1, 8, 8, 3])
    w, bias = b.constant("w", _weights(1, 3, 3, 6)), b.constant("b", _weights(6))
    y = b.tensor("y", [1, 4, 4, 6])
    b.op("DEPTHWISE_CONV_2D", [x, w, bias], [y], padding="SAME", strideH=2, strideW=2, depthMultiplier=2,
         fusedActivationFunction="RELU6")
    b.output(y)
    return [[1, 8, 8, 3]]


def _fully_connected(keep):
    def build(b):
        x = b.input("x", [1, 2, 3, 8])
        w, bias = b.constant("w", _weights(5, 8)), b.constant("b", _weights(5))
        y = b.tensor("y", [1, 2, 3, 5] if keep else [6, 5])
        b.op("FULLY_CONNECTED", [x, w, bias], [y], keepNumDims=keep, fusedActivationFunction="RELU")
        b.output(y)
        return [[1, 2, 3, 8]]
    return build


def _binary(op):
    def build(b):
        x, z = b.input("x", [1, 4, 5, 6]), b.input("z", [1, 1, 1, 6])
        y = b.tensor("y", [1, 4, 5, 6])
        b.op(op, [x, z], [y], fusedActivationFunction="RELU_N1_TO_1")
        b.output(y)
        return [[1, 4, 5, 6], [1, 1, 1, 6]]
    return build


def _transpose_conv(b):
    x = b.input("x", [1, 5, 5, 4])
    shape = b.constant("shape", np.array([1, 10, 10, 3], np.int32))
    w, bias = b.constant("w", _weights(3, 3, 3, 4)), b.constant("b", _weights(3))
    y = b.tensor("y", [1, 10, 10, 3])
    b.op("TRANSPOSE_CONV", [shape, w, x, bias], [y], padding="SAME", strideH=2, strideW=2)
    b.output(y)
    return [[1, 5, 5, 4]]


def _float16_weights(b):
    """MediaPipe's form: a float16 filter behind DEQUANTIZE."""
    x = b.input("x", [1, 6, 6, 2])
    half = b.constant("w16", _weights(3, 1, 1, 2).astype(np.float16))
    w = b.tensor("w", [3, 1, 1, 2])
    b.op("DEQUANTIZE", [half], [w])
    y = b.tensor("y", [1, 6, 6, 3])
    b.op("CONV_2D", [x, w, b.constant("b", _weights(3))], [y], padding="VALID", strideH=1, strideW=1)
    b.output(y)
    return [[1, 6, 6, 2]]


def _dynamic_range(b):
    """int8 weights with a scale, float activations (TF's dynamic-range quantisation)."""
    x = b.input("x", [1, 16])
    q = RNG.integers(-127, 128, (4, 16)).astype(np.int8)
    w = b.constant("w", q, scale=[0.02])
    y = b.tensor("y", [1, 4])
    b.op("FULLY_CONNECTED", [x, w, b.constant("b", _weights(4))], [y])
    b.output(y)
    return [[1, 16]]


def _strided_slice(b):
    x = b.input("x", [1, 8, 9, 6])
    begin = b.constant("begin", np.array([0, -7, 1, 0], np.int32))
    end = b.constant("end", np.array([1, 8, 8, 5], np.int32))
    strides = b.constant("strides", np.array([1, 2, 3, 1], np.int32))
    y = b.tensor("y", [4, 3, 5])
    b.op("STRIDED_SLICE", [x, begin, end, strides], [y], beginMask=0b1000, endMask=0b0010, shrinkAxisMask=0b0001)
    b.output(y)
    return [[1, 8, 9, 6]]


def _resize(op, out_hw, **options):
    return _single(op, [1, 5, 7, 3], [1, *out_hw, 3], [np.array(out_hw, np.int32)], **options)


def _sparse_weights(b):
    """DENSIFY of a CSR-sparse float16 filter (MediaPipe's *_sparse models), then DEQUANTIZE."""
    from ai_edge_litert import schema_py_generated as schema

    dense = _weights(4, 6).astype(np.float16)
    dense[np.abs(dense) < 0.25] = 0
    rows = [np.flatnonzero(row) for row in dense]
    index = b.constant("sparse", np.concatenate([dense[r, c] for r, c in enumerate(rows)]).astype(np.float16))
    tensor = b.graph.tensors[index]
    tensor.shape = [4, 6]
    levels = []
    for fmt, size, segments, indices in ((schema.DimensionType.DENSE, 4, None, None),
                                         (schema.DimensionType.SPARSE_CSR, 6, np.cumsum([0] + [len(r) for r in rows]),
                                          np.concatenate(rows))):
        level = schema.DimensionMetadataT()
        level.format, level.denseSize = fmt, size
        if segments is not None:
            level.arraySegmentsType, level.arrayIndicesType = schema.SparseIndexVector.Int32Vector, schema.SparseIndexVector.Int32Vector
            level.arraySegments, level.arrayIndices = schema.Int32VectorT(), schema.Int32VectorT()
            level.arraySegments.values, level.arrayIndices.values = [int(v) for v in segments], [int(v) for v in indices]
        levels.append(level)
    tensor.sparsity = schema.SparsityParametersT()
    tensor.sparsity.traversalOrder, tensor.sparsity.dimMetadata = [0, 1], levels
    half, w = b.tensor("w16", [4, 6], "FLOAT16"), b.tensor("w", [4, 6])
    b.op("DENSIFY", [index], [half])
    b.op("DEQUANTIZE", [half], [w])
    x, y = b.input("x", [1, 6]), b.tensor("y", [1, 4])
    b.op("FULLY_CONNECTED", [x, w, b.constant("b", _weights(4))], [y])
    b.output(y)
    return [[1, 6]]


MODELS = {
    "conv_same_s2_relu": _conv("SAME", 2, 1, "RELU"),
    "conv_valid_dilated_relu6": _conv("VALID", 1, 2, "RELU6"),
    "depthwise_multiplier2": _depthwise,
    "fully_connected": _fully_connected(False),
    "fully_connected_keep_dims": _fully_connected(True),
    "add_broadcast": _binary("ADD"), "sub_broadcast": _binary("SUB"), "mul_broadcast": _binary("MUL"),
    "max_pool_same": _single("MAX_POOL_2D", [1, 7, 7, 4], [1, 4, 4, 4], padding="SAME", strideH=2, strideW=2,
                             filterHeight=3, filterWidth=3),
    "average_pool_same": _single("AVERAGE_POOL_2D", [1, 7, 7, 4], [1, 4, 4, 4], padding="SAME", strideH=2,
                                 strideW=2, filterHeight=3, filterWidth=3),
    "mean_hw": _single("MEAN", [1, 5, 6, 7], [1, 7], [np.array([1, 2], np.int32)], keepDims=False),
    "mean_keep_dims": _single("MEAN", [1, 5, 6, 7], [1, 1, 1, 7], [np.array([2, 1], np.int32)], keepDims=True),
    "concatenation": _single("CONCATENATION", [1, 3, 3, 2], [1, 3, 3, 4], [_weights(1, 3, 3, 2)], axis=-1),
    "reshape": _single("RESHAPE", [1, 2, 3, 4], [1, 24], [np.array([1, 24], np.int32)]),
    "pad": _single("PAD", [1, 3, 4, 2], [1, 5, 5, 5], [np.array([[0, 0], [1, 1], [0, 1], [1, 2]], np.int32)]),
    "padv2": _single("PADV2", [1, 3, 4, 2], [1, 4, 4, 2], [np.array([[0, 0], [1, 0], [0, 0], [0, 0]], np.int32),
                                                             np.array([-1.5], np.float32)]),
    "resize_bilinear": _resize("RESIZE_BILINEAR", (10, 14)),
    "resize_bilinear_half_pixel": _resize("RESIZE_BILINEAR", (9, 12), halfPixelCenters=True),
    "resize_bilinear_align_corners": _resize("RESIZE_BILINEAR", (9, 13), alignCorners=True),
    "resize_nearest": _resize("RESIZE_NEAREST_NEIGHBOR", (10, 14)),
    "resize_nearest_half_pixel": _resize("RESIZE_NEAREST_NEIGHBOR", (8, 11), halfPixelCenters=True),
    "resize_nearest_align_corners": _resize("RESIZE_NEAREST_NEIGHBOR", (9, 13), alignCorners=True),
    "depth_to_space": _single("DEPTH_TO_SPACE", [1, 3, 4, 8], [1, 6, 8, 2], blockSize=2),
    "softmax_beta": _single("SOFTMAX", [1, 10], [1, 10], beta=0.5),
    "strided_slice_masks": _strided_slice,
    "logistic": _single("LOGISTIC", [1, 4, 4, 3], [1, 4, 4, 3]),
    "tanh": _single("TANH", [1, 4, 4, 3], [1, 4, 4, 3]),
    "hard_swish": _single("HARD_SWISH", [1, 4, 4, 3], [1, 4, 4, 3]),
    "relu6": _single("RELU6", [1, 4, 4, 3], [1, 4, 4, 3]),
    "leaky_relu": _single("LEAKY_RELU", [1, 4, 4, 3], [1, 4, 4, 3], alpha=0.1),
    "prelu": _single("PRELU", [1, 4, 4, 3], [1, 4, 4, 3], [_weights(1, 1, 3)]),
    "transpose_conv": _transpose_conv,
    "float16_weights": _float16_weights,
    "dynamic_range_weights": _dynamic_range,
    "densify_sparse_weights": _sparse_weights,
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_operator_matches_litert(tmp_path, name):
    builder = TFLiteBuilder()
    shapes = MODELS[name](builder)
    path = builder.save(tmp_path / f"{name}.tflite")
    inputs = [RNG.uniform(-3, 3, shape).astype(np.float32) for shape in shapes]
    expected = litert_run(path, inputs)
    model = load_tflite(path)
    assert model_origin(model) == "tflite"
    session = ort.InferenceSession(model.SerializeToString())
    got = session.run(None, {i.name: x for i, x in zip(session.get_inputs(), inputs)})
    tolerance = HYBRID_TOLERANCE if name == "dynamic_range_weights" else TOLERANCE
    for want, have in zip(expected, got):
        assert have.shape == want.shape
        np.testing.assert_allclose(have, want, rtol=0, atol=tolerance * max(1.0, float(np.abs(want).max())))


def test_dynamic_range_model_is_float_and_quantised_model_keeps_qdq(tmp_path):
    builder = TFLiteBuilder()
    _dynamic_range(builder)
    float_ops = {node.op_type for node in load_tflite(builder.save(tmp_path / "dr.tflite")).graph.node}
    assert "DequantizeLinear" not in float_ops
    builder = TFLiteBuilder()
    x = builder.input("x", [1, 4], "INT8", scale=0.1, zero_point=3)
    w = builder.constant("w", RNG.integers(-127, 128, (2, 4)).astype(np.int8), scale=[0.01])
    y = builder.tensor("y", [1, 2], "INT8", scale=0.05, zero_point=-1)
    builder.op("FULLY_CONNECTED", [x, w, -1], [y])
    builder.output(y)
    model = load_tflite(builder.save(tmp_path / "q.tflite"))
    ops = [node.op_type for node in model.graph.node]
    assert ops.count("DequantizeLinear") == 3 and ops.count("QuantizeLinear") == 1
    assert [i.type.tensor_type.elem_type for i in model.graph.input] == [3]  # int8 in, as the file says


def _conv_model(tmp_path):
    builder = TFLiteBuilder()
    _conv("SAME", 1, 1, "RELU")(builder)
    return builder


def _broken(tmp_path, mutate):
    builder = _conv_model(tmp_path)
    mutate(builder)
    return builder.save(tmp_path / "broken.tflite")


@pytest.mark.parametrize("mutate, message", [
    (lambda b: setattr(b.graph.operators[0], "inputs", [0, 99, 2]), "refers to tensor 99, which does not exist"),
    (lambda b: setattr(b.graph.tensors[1], "shape", [4, 3, 3, 2]), "buffer holds 432 bytes"),
    (lambda b: setattr(b.graph.tensors[0], "shape", [1, -1, 10, 3]), "is not a static positive shape"),
    (lambda b: setattr(b.model.operatorCodes[0], "builtinCode", 82), r"1 operator is not supported: #0 REDUCE_MAX \(supported: "),
    (lambda b: setattr(b.graph.operators[0], "opcodeIndex", 5), "opcode index 5, which does not exist"),
    (lambda b: setattr(b.graph.tensors[1], "buffer", 42), "refers to buffer 42, which does not exist"),
], ids=["tensor_index", "buffer_size", "dynamic_shape", "unsupported_op", "opcode_index", "buffer_index"])
def test_bad_models_are_one_line_errors(tmp_path, mutate, message):
    path = _broken(tmp_path, mutate)
    with pytest.raises(CompilerError, match=message) as error:
        load_tflite(path)
    assert "\n" not in str(error.value) and "broken.tflite" in str(error.value)


@pytest.mark.parametrize("content, message", [
    (b"", "no 'TFL3' flatbuffer identifier"),
    (b"\x10\x00\x00\x00TFL3" + b"\xff" * 40, "not a readable TFLite model"),
    (b"not a model at all, just text", "no 'TFL3' flatbuffer identifier"),
])
def test_files_that_are_not_tflite(tmp_path, content, message):
    path = tmp_path / "m.tflite"
    path.write_bytes(content)
    with pytest.raises(CompilerError, match=message):
        load_tflite(path)


def test_truncated_model_is_an_error(tmp_path):
    data = _conv_model(tmp_path).bytes()
    path = tmp_path / "cut.tflite"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CompilerError, match="cut.tflite"):
        load_tflite(path)


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
def test_mediapipe_transpose_conv_bias_equals_builtin_transpose_conv(tmp_path, padding):
    """LiteRT cannot run MediaPipe's Convolution2DTransposeBias; the builtin TRANSPOSE_CONV with the
    same filter, bias and strides is its definition, so our conversion of the custom op must give
    what LiteRT gives for the builtin."""
    w, bias = _weights(3, 3, 3, 4), _weights(3)
    out_hw = (10, 10) if padding == "SAME" else (11, 11)
    builtin, custom = TFLiteBuilder(), TFLiteBuilder()
    for b, name in ((builtin, "TRANSPOSE_CONV"), (custom, "CUSTOM")):
        x, y = b.input("x", [1, 5, 5, 4]), b.tensor("y", [1, *out_hw, 3])
        operands = [b.constant("w", w), b.constant("b", bias)]
        if name == "TRANSPOSE_CONV":
            shape = b.constant("shape", np.array([1, *out_hw, 3], np.int32))
            b.op(name, [shape, operands[0], x, operands[1]], [y], padding=padding, strideH=2, strideW=2)
        else:
            params = np.array([1 if padding == "SAME" else 2, 2, 2], "<i4").tobytes()  # TfLitePadding, strides
            b.op(name, [x] + operands, [y], custom="Convolution2DTransposeBias", custom_options=params)
        b.output(y)
    x = RNG.uniform(-1, 1, (1, 5, 5, 4)).astype(np.float32)
    expected = litert_run(builtin.save(tmp_path / "builtin.tflite"), [x])[0]
    model = load_tflite(custom.save(tmp_path / "custom.tflite"))
    got = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE * max(1.0, float(np.abs(expected).max())))


def test_hostile_names_reach_the_error_escaped(tmp_path):
    """A tensor or custom-operator name from the file is shown through compiler.names, never raw."""
    builder = TFLiteBuilder()
    x, y = builder.input("x", [1, 4]), builder.tensor("y\x1b[2J\nforged: line", [1, 4])
    builder.op("CUSTOM", [x], [y], custom="Evil\u202eop")
    builder.output(y)
    with pytest.raises(CompilerError) as error:
        load_tflite(builder.save(tmp_path / "hostile.tflite"))
    message = str(error.value)
    assert "\n" not in message and "\x1b" not in message and "\u202e" not in message
    assert "is not supported" in message


def test_every_unsupported_operator_is_named_in_one_line(tmp_path):
    """A model with several operators we lack names all of them with their indices, not just the first."""
    builder = TFLiteBuilder()
    x = builder.input("x", [1, 4])
    a, b, c, d = (builder.tensor(name, [1, 4]) for name in "abcd")
    builder.op("CUSTOM", [x], [a], custom="Landmarks2TransformMatrix")
    builder.op("RELU", [a], [b])
    builder.op("REDUCE_MAX", [b], [c])
    builder.op("CUSTOM", [c], [d], custom="TransformTensorBilinear")
    builder.output(d)
    with pytest.raises(CompilerError) as error:
        load_tflite(builder.save(tmp_path / "gaps.tflite"))
    message = str(error.value)
    assert "\n" not in message and "gaps.tflite" in message
    listed = message.split(" (supported: ")[0]
    assert listed.endswith("3 operators are not supported: #0 CUSTOM:Landmarks2TransformMatrix, "
                           "#2 REDUCE_MAX, #3 CUSTOM:TransformTensorBilinear")
    assert "RELU" in message.split(" (supported: ")[1]  # the supported list still follows
