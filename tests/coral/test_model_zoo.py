"""Model-zoo architectures on coral-npu, from the onnx wheel's "light" models: SqueezeNet 1.0
(fire modules with channel concats, ceil-mode max pools, global average pool, a float Softmax)
and ShuffleNet (grouped convs, channel shuffles as reshape/transpose inside the graph, average
pools, BatchNorms), their constant-filled weights replaced by seeded random ones so that every
layer carries signal. Quantised with seeded calibration data, built for coral-npu (highmem) and for
the host, run on the same input: the int8 logits must be identical (the kernels are bit-exact
to the same spec) and the Softmax, which runs as TVM code on both, equal within rtol 1e-6.
"""

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from test_coral_build import build, cli

LIGHT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"


def randomised(model: onnx.ModelProto, seed: int) -> onnx.ModelProto:
    """Each ConstantOfShape that fills a weight becomes a seeded random initializer: He-scaled
    for conv kernels (activations keep their size through 26 layers), in [0.5, 1.5) for 1-D
    parameters (BatchNorm variances must be positive)."""
    rng = np.random.default_rng(seed)
    shapes = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    nodes = []
    for node in model.graph.node:
        if node.op_type != "ConstantOfShape":
            nodes.append(node)
            continue
        shape = tuple(int(d) for d in shapes[node.input[0]])
        if len(shape) > 1:
            value = rng.normal(0, np.sqrt(2.0 / np.prod(shape[1:])), shape)
        else:  # biases and BatchNorm parameters: positive, so that every variance is
            value = rng.uniform(0.5, 1.5, shape)
        value = value.astype(np.float32)
        model.graph.initializer.append(numpy_helper.from_array(value, node.output[0]))
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    model.ir_version = max(model.ir_version, 4)  # IR 3 wants every initializer listed as a graph input
    return model


def with_logits_output(model: onnx.ModelProto) -> onnx.ModelProto:
    """The Softmax's input as a second output, so the int8 part is compared bit for bit."""
    (softmax,) = [node for node in model.graph.node if node.op_type == "Softmax"]
    model.graph.output.append(onnx.helper.make_tensor_value_info(softmax.input[0], onnx.TensorProto.FLOAT, None))
    return onnx.shape_inference.infer_shapes(model)


@pytest.fixture(scope="module", params=["squeezenet", "shufflenet"])
def zoo_model(request, tmp_path_factory):
    name = request.param
    root = tmp_path_factory.mktemp(name)
    model = with_logits_output(randomised(onnx.load(str(LIGHT / f"light_{name}.onnx")), seed=7))
    onnx.save(model, str(root / f"{name}.onnx"))
    rng = np.random.default_rng(3)
    np.save(root / "calib.npy", rng.normal(0, 1, (4, 3, 224, 224)).astype(np.float32))
    report = build(root / f"{name}.onnx", root / "calib.npy", root / "coral", "--target", "coral-npu",
                   "--memory", "highmem")
    build(root / f"{name}.onnx", root / "calib.npy", root / "host", "--target", "host")
    return root, report


def run_both(root: Path, x: np.ndarray) -> tuple[dict, dict, str]:
    np.save(root / "x.npy", x)
    outputs, stdout = [], ""
    for name in ("coral", "host"):
        result = cli("run", root / name, "--input", root / "x.npy", "--output", root / f"{name}.npz")
        assert result.returncode == 0, result.stderr
        stdout = stdout or result.stdout
        with np.load(root / f"{name}.npz") as data:
            outputs.append(dict(data))
    return outputs[0], outputs[1], stdout


def test_model_zoo_architecture_on_coral_matches_the_host_build(zoo_model):
    root, report = zoo_model
    x = np.random.default_rng(5).normal(0, 1, (1, 3, 224, 224)).astype(np.float32)
    on_coral, on_host, stdout = run_both(root, x)
    probabilities, logits = on_coral  # the model's output first, then the Softmax's input
    assert np.array_equal(on_coral[logits].view(np.uint32), on_host[logits].view(np.uint32))  # int8, dequantized
    assert np.ptp(on_coral[logits]) > 1.0  # the random weights make the classes differ
    np.testing.assert_allclose(on_coral[probabilities], on_host[probabilities], rtol=1e-6, atol=0)
    impls = {row["impl"] for row in report["coral"]["layers"]}
    assert impls == {"rvv", "tvm", "transpose"}  # generated kernels (concats and dequantize too), TVM's softmax
    assert "| **total** |" in stdout
