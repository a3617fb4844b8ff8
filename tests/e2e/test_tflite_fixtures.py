"""Models from TensorFlow's own converter (tests/fixtures/tflite, written once by make_fixtures.py
with tensorflow-cpu 2.21; CI reads the committed files and needs no TensorFlow), built with
`build model.tflite --target host` and compared with LiteRT's built-in kernels.

edge_cnn: Conv2D+BatchNorm+ReLU, DepthwiseConv2D+BatchNorm+ReLU6, 1x1 conv, residual ADD,
MAX_POOL_2D, conv, AVERAGE_POOL_2D, GlobalAveragePooling2D (MEAN over 5x5), FULLY_CONNECTED,
SOFTMAX. edge_ops: conv + HARD_SWISH, depthwise, squeeze-excite (AVERAGE_POOL_2D, 1x1 convs,
LOGISTIC, broadcast MUL), CONCATENATION, RESIZE_BILINEAR, MAX_POOL_2D, RESHAPE, FULLY_CONNECTED.
Each in five flavours: float32, float16 weights, dynamic range, full int8 with int8 I/O and with
uint8 I/O (QUANTIZE at both ends).
"""

import json
from pathlib import Path

import flatbuffers
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema
from tflite_builder import litert_run

from compiler.build import build
from compiler.frontend.tflite_ops import operator_name
from compiler.run.coral import run_coral
from compiler.run.host import run_host

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tflite"
MODELS = ("edge_cnn", "edge_ops")

# Float flavours: largest difference from LiteRT over the output's largest magnitude. float32 and
# float16 weights (widened to float32 constants, as LiteRT's DEQUANTIZE does) compute the same
# float32 products in another order: measured below 1e-6 (20 random inputs). Dynamic range:
# LiteRT's hybrid conv and FULLY_CONNECTED quantise their input activations to int8 at run time and
# multiply in integers, where we multiply the float input by the dequantized weights: measured
# 8e-4 (edge_cnn) and 9.3e-3 (edge_ops, its quantised FULLY_CONNECTED) of the output's magnitude.
FLOAT_TOLERANCE = {"float32": 1e-5, "float16": 1e-5, "dynamic": 2e-2}

# Full int8: steps between our host build and LiteRT. 0 is bit-exact. edge_cnn's
# GlobalAveragePooling2D is a MEAN over 5x5 without keep_dims, which LiteRT computes with its
# reference int8 MEAN (quant/reference/pool.py litert_reference_mean_params; with the ONNX spec's
# mean it was 1 step off on 5% of the MEAN's outputs). The operators before the MEAN are checked
# alone too (test_int8_fixture_is_bit_exact_up_to_mean).
INT8_STEPS = {"edge_cnn": 0, "edge_ops": 0}
INT8_IO = ("int8", "uint8")


def _move_or_io_shift(row) -> bool:
    """A layer of a full-int8 model allowed off the int8 kernels: a reshape, or the integer shift
    between uint8 and int8 at a uint8 model's input and output (its QUANTIZE ops, same scale)."""
    nodes = row["onnx_nodes"]
    return row["op"] == "reshape" or all(node.startswith("input ") or " QUANTIZE:" in node for node in nodes)


def _fixture(model, flavour) -> Path:
    return FIXTURES / f"{model}_{flavour}.tflite"


def _inputs(report, rng) -> list:
    values = []
    for tensor in report["interface"]["inputs"]:
        if tensor["dtype"] == "float32":
            values.append(rng.uniform(-1, 1, tensor["shape"]).astype(np.float32))
        else:
            info = np.iinfo(tensor["dtype"])
            values.append(rng.integers(info.min, int(info.max) + 1, tensor["shape"]).astype(tensor["dtype"]))
    return values


def _run(run, out, inputs, tmp) -> list:
    paths = []
    for index, value in enumerate(inputs):
        paths.append(str(tmp / f"input{index}.npy"))
        np.save(paths[-1], value)
    return run(out, paths).outputs


def _worst_steps(path, out, tmp, samples=20) -> int:
    """The largest difference in steps from LiteRT's built-in kernels over `samples` random inputs."""
    report = json.loads((out / "report.json").read_text())
    rng = np.random.default_rng(1)
    worst = 0
    for _ in range(samples):
        inputs = _inputs(report, rng)
        want = litert_run(path, inputs, reference=False)[0]
        have = _run(run_host, out, inputs, tmp)[0]
        assert have.dtype == want.dtype and have.shape == want.shape
        worst = max(worst, int(np.abs(have.astype(np.int32) - want).max()))
    return worst


def _cut_before(path, op_name, out_path) -> Path:
    """The model up to (not including) its first `op_name` operator, whose input becomes the output."""
    model = schema.ModelT.InitFromPackedBuf(path.read_bytes(), 0)
    graph = model.subgraphs[0]
    position = next(i for i, op in enumerate(graph.operators)
                    if operator_name(model, op, schema, path.name, i) == op_name)
    graph.outputs = [graph.operators[position].inputs[0]]
    graph.operators = graph.operators[:position]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    out_path.write_bytes(builder.Output())
    return out_path


@pytest.mark.parametrize("flavour", sorted(FLOAT_TOLERANCE))
@pytest.mark.parametrize("model", MODELS)
def test_float_fixture_matches_litert(tmp_path, model, flavour):
    path = _fixture(model, flavour)
    report = build(path, "host", tmp_path / "out")
    assert [t["dtype"] for t in report["interface"]["inputs"] + report["interface"]["outputs"]] == ["float32"] * 2
    rng = np.random.default_rng(0)
    for _ in range(3):
        inputs = _inputs(report, rng)
        want = litert_run(path, inputs, reference=False)[0]
        have = _run(run_host, tmp_path / "out", inputs, tmp_path)[0]
        assert have.shape == want.shape
        error = float(np.abs(have - want).max() / np.abs(want).max())
        assert error <= FLOAT_TOLERANCE[flavour], error


@pytest.mark.parametrize("io", INT8_IO)
@pytest.mark.parametrize("model", MODELS)
def test_int8_fixture_matches_litert(tmp_path, model, io):
    """Built with the model's own scales: every layer an int8 kernel but moves and uint8 <-> int8 shifts."""
    path = _fixture(model, io)
    report = build(path, "host", tmp_path / "out")
    assert [t["dtype"] for t in report["interface"]["inputs"] + report["interface"]["outputs"]] == [io] * 2
    others = [row for row in report["layers"] if row["kind"] != "int8" and not _move_or_io_shift(row)]
    assert not others, others
    assert _worst_steps(path, tmp_path / "out", tmp_path) <= INT8_STEPS[model]


@pytest.mark.parametrize("io", INT8_IO)
def test_int8_fixture_is_bit_exact_up_to_mean(tmp_path, io):
    """edge_cnn without its MEAN and what follows: convs with folded BatchNorm, depthwise, ADD, pools."""
    path = _cut_before(_fixture("edge_cnn", io), "MEAN", tmp_path / "cut.tflite")
    build(path, "host", tmp_path / "out")
    assert _worst_steps(path, tmp_path / "out", tmp_path) == 0


@pytest.mark.parametrize("model, io", [("edge_cnn", "int8"), ("edge_ops", "uint8")])
def test_int8_fixture_on_coral_equals_host(tmp_path, model, io):
    """One input on coral-npu, bit for bit the host build's (uint8: its QUANTIZE ends in integers)."""
    path = _fixture(model, io)
    report = build(path, "coral-npu", tmp_path / "coral", memory="highmem")
    layers = report["coral"]["layers"]
    assert all(row["impl"] == "rvv" for row in layers if not _move_or_io_shift(row)), layers
    build(path, "host", tmp_path / "host")
    inputs = _inputs(report, np.random.default_rng(3))
    on_coral = _run(run_coral, tmp_path / "coral", inputs, tmp_path)[0]
    on_host = _run(run_host, tmp_path / "host", inputs, tmp_path)[0]
    assert on_coral.dtype == np.dtype(io)
    np.testing.assert_array_equal(on_coral, on_host)


@pytest.mark.parametrize("model", MODELS)
def test_report_says_which_layers_compute_each_tflite_operator(tmp_path, model):
    path = _fixture(model, "int8")
    report = build(path, "host", tmp_path / "out")
    tflite = schema.ModelT.InitFromPackedBuf(path.read_bytes(), 0)
    counts = {}
    for position, op in enumerate(tflite.subgraphs[0].operators):
        name = operator_name(tflite, op, schema, str(path), position)
        counts[name] = counts.get(name, 0) + 1
    mapped = report["tflite_operators"]
    assert {name: entry["count"] for name, entry in mapped.items()} == counts
    # every computing operator became an int8 kernel (QUANTIZE / DEQUANTIZE at the I/O aside)
    for name, entry in mapped.items():
        if name not in ("QUANTIZE", "DEQUANTIZE", "RESHAPE"):
            assert entry["layers"] and all(layer.endswith("(int8)") for layer in entry["layers"]), (name, entry)
    assert "TFLite operators" in (tmp_path / "out" / "report.md").read_text()
