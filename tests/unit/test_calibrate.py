"""Calibration on tiny_cnn: observed ranges against ONNX Runtime, data loading, progress, errors."""

import io
from types import SimpleNamespace

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import tvm
from onnx import TensorProto, helper, numpy_helper
from tvm import relax

import onnx_models
from relax_testing import tvm_partition
from compiler.errors import CompilerError
from compiler.frontend.provenance import source_node
from compiler.partition import group_name, group_nodes
from compiler.passes.util import bindings
from compiler.progress import Progress
from compiler.quant.calib_data import CalibrationWarning, InputSpec, input_specs, load_calibration
from compiler.quant.calibrate import calibrate, float_probe, tensor_ids

SAMPLES = 12


@pytest.fixture(scope="module")
def tiny():
    model = onnx_models.tiny_cnn()
    return model, SimpleNamespace(partitioned=tvm_partition(model))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("calib") / "tiny.npz"
    x = np.random.default_rng(7).uniform(-2, 2, (SAMPLES, 3, 16, 16)).astype(np.float32)
    np.savez(path, input=x)
    return path, x


@pytest.fixture(scope="module")
def minmax_ranges(tiny, data):
    _, cm = tiny
    samples = load_calibration(data[0], input_specs(cm.partitioned), limit=SAMPLES)
    return calibrate(cm.partitioned, samples, "minmax", progress=False)


def _onnx_node_of(mod, binding) -> str:
    """The ONNX node whose output a binding of main holds: a group's last node, or the op's own."""
    call = binding.value
    if isinstance(call.op, tvm.ir.GlobalVar):
        return group_nodes(mod[call.op])[-1]
    return source_node(call)


def _onnxruntime_ranges(model, x, names):
    """(min, max) of each named node's output over the samples, by ONNX Runtime."""
    outputs = {node.name: node.output[0] for node in model.graph.node}
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for name in names:
        probe.graph.output.append(helper.make_tensor_value_info(outputs[name], TensorProto.FLOAT, None))
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    values = [session.run([outputs[n] for n in names], {"input": x[i:i + 1]}) for i in range(len(x))]
    return {name: (min(v[k].min() for v in values), max(v[k].max() for v in values)) for k, name in enumerate(names)}


def test_minmax_ranges_match_onnxruntime(tiny, data, minmax_ranges):
    model, cm = tiny
    _, x = data
    main = cm.partitioned["main"]
    by_var = {var: name for name, var in tensor_ids(main, ["input"])}
    nodes = {by_var[b.var]: _onnx_node_of(cm.partitioned, b) for b in bindings(main) if b.var in by_var}
    assert set(minmax_ranges) == {"input", *nodes}
    reference = _onnxruntime_ranges(model, x, sorted(set(nodes.values())))
    assert minmax_ranges["input"] == (float(x.min()), float(x.max()))
    for tensor, node in nodes.items():
        lo, hi = reference[node]
        np.testing.assert_allclose(minmax_ranges[tensor], (min(lo, 0.0), max(hi, 0.0)), rtol=1e-4, atol=1e-5,
                                   err_msg=f"{tensor} ({node})")


def test_a_kept_probe_serves_calibration_and_the_float_output(tiny, data, minmax_ranges):
    """The report reuses calibration's compiled float probe: the same ranges, and output 0 is the
    model's own output (ONNX Runtime's, within float tolerance)."""
    model, cm = tiny
    path, x = data
    probe = float_probe(cm.partitioned, ["input"])
    samples = load_calibration(path, input_specs(cm.partitioned), limit=SAMPLES)
    assert calibrate(cm.partitioned, samples, "minmax", progress=False, probe=probe) == minmax_ranges
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for i in range(3):
        expected = session.run(None, {"input": x[i:i + 1]})[0]
        np.testing.assert_allclose(probe.output([x[i:i + 1]]), expected, rtol=1e-4, atol=1e-5)


def test_a_small_model_probe_at_opt_level_1_observes_the_same_values(tiny, data):
    """Small models' TVM probes compile with LLVM opt level 1 (the compile is much of their
    calibration): every observed tensor is bit-identical to the opt-level-3 probe's."""
    from compiler.quant.calibrate import Probe, instrumented, tvm_probe

    _, cm = tiny
    _, x = data
    small = tvm_probe(cm.partitioned, ["input"])
    assert small.vm is not None and "opt-level" in str(small.target) and small.target.attrs["opt-level"] == 1
    variant, ids = instrumented(cm.partitioned, ["input"])
    full = Probe(variant, ids)
    for got, want in zip(small.run([x[:1]]), full.run([x[:1]])):
        np.testing.assert_array_equal(got, want)


def test_the_float_probe_runs_on_onnxruntime_and_observes_what_tvm_computes(tiny, data):
    """float_probe writes the float module as ONNX (every observed tensor an output, in its own axis
    order) and runs it in ONNX Runtime: the same ids as the TVM probe, each tensor equal to TVM's
    within float rounding (another summation order), and the model's output."""
    from compiler.quant.calibrate import tvm_probe
    from compiler.quant.ort_probe import OrtProbe

    _, cm = tiny
    _, x = data
    probe, reference = float_probe(cm.partitioned, ["input"]), tvm_probe(cm.partitioned, ["input"])
    assert isinstance(probe, OrtProbe) and probe.ids == reference.ids and len(probe.ids) > 5
    for i in range(3):
        got, want = probe.run([x[i:i + 1]]), reference.run([x[i:i + 1]])
        assert len(got) == len(want) == len(probe.ids) + 1
        for tensor, a, b in zip(["output", *probe.ids], got, want):
            assert a.shape == b.shape, tensor
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=tensor)
        np.testing.assert_allclose(probe.output([x[i:i + 1]]), want[0], rtol=1e-4, atol=1e-5)


def test_a_module_with_an_op_the_onnx_probe_does_not_write_gets_the_tvm_probe():
    """An op outside onnx_float's table (here log) leaves the probe to TVM, which runs any module."""
    from compiler.quant.calibrate import Probe

    builder = relax.BlockBuilder()
    x_var = relax.Var("x", relax.TensorType((1, 4), "float32"))
    with builder.function("main", [x_var]):
        with builder.dataflow():
            z = builder.emit_output(relax.op.log(builder.emit(relax.op.exp(x_var))))
        builder.emit_func_output(z)
    probe = float_probe(builder.get(), ["x"])
    assert isinstance(probe, Probe)
    x = np.array([[0.5, -1.0, 2.0, 0.0]], np.float32)
    np.testing.assert_allclose(probe.output([x]), x, rtol=1e-6, atol=1e-6)


def test_every_fused_group_has_a_range(tiny, minmax_ranges):
    _, cm = tiny
    main = cm.partitioned["main"]
    by_var = dict((var, name) for name, var in tensor_ids(main, ["input"]))
    groups = [b for b in bindings(main)
              if isinstance(b.value, relax.Call) and isinstance(b.value.op, tvm.ir.GlobalVar)
              and group_name(cm.partitioned[b.value.op])]
    assert len(groups) == 8
    for binding in groups:
        lo, hi = minmax_ranges[by_var[binding.var]]
        assert lo <= 0.0 <= hi and hi > lo


def test_tensor_ids_are_unique_and_stable(tiny):
    _, cm = tiny
    ids = [name for name, _ in tensor_ids(cm.partitioned["main"])]
    assert len(ids) == len(set(ids)) and ids[0] == "input"
    assert ids == [name for name, _ in tensor_ids(cm.partitioned["main"])]
    assert "lv#1" in ids  # TVM reuses the name "lv"


@pytest.mark.parametrize("method", ["percentile", "entropy"])
def test_histogram_methods_stay_inside_minmax(tiny, data, minmax_ranges, method):
    _, cm = tiny
    samples = load_calibration(data[0], input_specs(cm.partitioned), limit=SAMPLES)
    ranges = calibrate(cm.partitioned, samples, method, percentile=99.0, progress=False)
    assert set(ranges) == set(minmax_ranges)
    for name, (lo, hi) in ranges.items():
        mlo, mhi = minmax_ranges[name]
        assert mlo - 1e-6 <= lo <= 0.0 <= hi <= mhi + 1e-6, name


def test_batched_model_runs_in_batches_and_wraps_the_last_one():
    model = onnx_models.dense_bias_relu(batch=4, features=(16, 10))
    cm = SimpleNamespace(partitioned=tvm_partition(model))
    x = np.random.default_rng(3).standard_normal((6, 16)).astype(np.float32)
    samples = load_calibration_from(x, input_specs(cm.partitioned))
    assert samples.batch == 4 and samples.runs == 2
    ranges = calibrate(cm.partitioned, samples, progress=False)
    weights = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    y = np.maximum(x @ weights["fc_w"].T + weights["fc_b"], 0)
    (output,) = [name for name in ranges if name != "x"]
    np.testing.assert_allclose(ranges[output], (0.0, y.max()), rtol=1e-5)
    assert ranges["x"] == (float(x.min()), float(x.max()))


def load_calibration_from(array, specs):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.npy"
        np.save(path, array)
        return load_calibration(path, specs)


def test_calibrate_rejects_unknown_methods_and_mismatched_data(tiny, data):
    _, cm = tiny
    samples = load_calibration(data[0], input_specs(cm.partitioned), limit=2)
    with pytest.raises(CompilerError, match="unknown calibration method"):
        calibrate(cm.partitioned, samples, "mse", progress=False)
    other = load_calibration_from(np.zeros((2, 3, 8, 8), np.float32), [InputSpec("input", (1, 3, 8, 8), "float32")])
    with pytest.raises(CompilerError, match=r"input 'input' is \[1, 3, 8, 8\] float32 in the data but \[1, 3, 16, 16\]"):
        calibrate(cm.partitioned, other, progress=False)


# -- calibration data ---------------------------------------------------------------------------------

SPEC = [InputSpec("input", (1, 3, 4, 4), "float32")]


def test_npy_layouts_and_limit(tmp_path):
    x = np.random.default_rng(0).standard_normal((5, 3, 4, 4)).astype(np.float32)
    np.save(tmp_path / "rows.npy", x)
    np.save(tmp_path / "whole.npy", x[:, None])  # [N, *input shape]
    for name in ("rows.npy", "whole.npy"):
        samples = load_calibration(tmp_path / name, SPEC, limit=3)
        assert len(samples) == 3 and samples.runs == 3
        feeds = list(samples.feeds())
        np.testing.assert_array_equal(feeds[2][0], x[2:3])
        assert feeds[0][0].shape == (1, 3, 4, 4)


def test_npz_keyed_by_name_or_a_single_array(tmp_path):
    x = np.ones((4, 3, 4, 4), np.float32)
    np.savez(tmp_path / "named.npz", input=x, other=x)
    np.savez(tmp_path / "single.npz", whatever=x)
    assert len(load_calibration(tmp_path / "named.npz", SPEC)) == 4
    assert len(load_calibration(tmp_path / "single.npz", SPEC)) == 4
    two = [InputSpec("a", (1, 2), "float32"), InputSpec("b", (1, 3), "float32")]
    np.savez(tmp_path / "two.npz", a=np.ones((3, 2), np.float32), b=np.ones((4, 3), np.float32))
    with pytest.raises(CompilerError, match=r"different numbers of samples \('a' has 3, 'b' has 4\)"):
        load_calibration(tmp_path / "two.npz", two)
    with pytest.raises(CompilerError, match=r"single.npz: no array named 'a', 'b' \(has: whatever\)"):
        load_calibration(tmp_path / "single.npz", two)


def test_folder_of_samples_in_name_order(tmp_path):
    for index in (2, 0, 1):
        np.save(tmp_path / f"{index:03d}.npy", np.full((3, 4, 4), index, np.float32))
    (tmp_path / "notes.txt").write_text("ignored")
    samples = load_calibration(tmp_path, SPEC, limit=100)
    assert len(samples) == 3
    assert [float(feed[0].max()) for feed in samples.feeds()] == [0.0, 1.0, 2.0]
    assert len(load_calibration(tmp_path, SPEC, limit=2)) == 2


def test_random_samples_warn_and_are_seeded():
    with pytest.warns(CalibrationWarning, match="random"):
        first = load_calibration("random", SPEC, limit=4)
    with pytest.warns(CalibrationWarning):
        second = load_calibration("random", SPEC, limit=4)
    assert len(first) == 4
    np.testing.assert_array_equal(first.samples["input"], second.samples["input"])


@pytest.mark.parametrize("array, message", [
    (np.zeros((2, 3, 5, 4), np.float32),
     r"bad.npy: shape \[2, 3, 5, 4\] does not fit input 'input' of shape \[1, 3, 4, 4\] "
     r"\(expected \[N, 3, 4, 4\] or \[N, 1, 3, 4, 4\]\)"),
    (np.zeros((2, 3, 4, 4), np.float64), r"bad.npy: dtype float64 but input 'input' is float32"),
    (np.zeros((0, 3, 4, 4), np.float32), r"bad.npy: no samples"),
])
def test_bad_data_errors(tmp_path, array, message):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(CompilerError, match=message):
        load_calibration(tmp_path / "bad.npy", SPEC)


def test_nan_and_inf_are_counted_with_the_first_sample(tmp_path):
    x = np.zeros((6, 3, 4, 4), np.float32)
    x[4, 0, 0, 0], x[4, 1, 2, 3], x[5, 2, 1, 1] = np.nan, np.inf, -np.inf
    np.save(tmp_path / "nan.npy", x)
    with pytest.raises(CompilerError, match=r"nan.npy: 3 NaN/inf values \(first in sample 4\)"):
        load_calibration(tmp_path / "nan.npy", SPEC)
    assert len(load_calibration(tmp_path / "nan.npy", SPEC, limit=4)) == 4  # only the samples used count
    folder = tmp_path / "folder"
    folder.mkdir()
    for index in range(3):
        np.save(folder / f"{index}.npy", x[index + 3])
    with pytest.raises(CompilerError, match=r"1.npy: 2 NaN/inf values \(first in sample 1\)"):
        load_calibration(folder, SPEC)


def test_missing_and_unusable_sources(tmp_path):
    with pytest.raises(CompilerError, match=r"nope.npz: no such file or folder"):
        load_calibration(tmp_path / "nope.npz", SPEC)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CompilerError, match=r"empty: no .npy or .npz files"):
        load_calibration(tmp_path / "empty", SPEC)
    (tmp_path / "broken.npy").write_bytes(b"not numpy")
    with pytest.raises(CompilerError, match=r"broken.npy: not a readable .npy file"):
        load_calibration(tmp_path / "broken.npy", SPEC)
    with pytest.raises(CompilerError, match=r"--calib-samples 0: must be at least 1"):
        load_calibration("random", SPEC, limit=0)


# -- progress -----------------------------------------------------------------------------------------

class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_prints_start_and_end_lines_off_a_terminal():
    stream = io.StringIO()
    with Progress("calibrating", 100, stream=stream) as progress:
        for _ in range(100):
            progress.advance()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("calibrating   0/100 [          ] ")
    assert lines[1].startswith("calibrating 100/100 [==========] ") and lines[1].endswith(" s")


def test_progress_redraws_in_place_on_a_terminal():
    stream = _Terminal()
    with Progress("calibrating", 4, stream=stream) as progress:
        progress.advance(2)
    text = stream.getvalue()
    assert text.startswith("\rcalibrating 0/4 [          ]") and text.endswith(" s\n")
    assert "\rcalibrating 2/4 [=====     ]" in text and "\n" not in text[:-1]


def test_progress_can_be_silent():
    stream = io.StringIO()
    with Progress("calibrating", 3, stream=stream, enabled=False) as progress:
        progress.advance(3)
    assert stream.getvalue() == ""


def test_the_onnx_probe_writes_a_padded_max_pool_as_tvm_computes_it():
    """relax.nn.pad (TFLite models' explicit padding) and an NHWC max pool, written as ONNX Pad and
    MaxPool (in the axis order the pool reads): the same values as the TVM probe's."""
    from compiler.quant.calibrate import tvm_probe
    from compiler.quant.ort_probe import OrtProbe

    builder = relax.BlockBuilder()
    x_var = relax.Var("x", relax.TensorType((1, 5, 6, 3), "float32"))
    with builder.function("main", [x_var]):
        with builder.dataflow():
            pool = builder.emit(relax.op.nn.max_pool2d(x_var, (2, 2), (2, 2), layout="NHWC"))
            padded = builder.emit(relax.op.nn.pad(pool, [0, 0, 1, 2, 0, 1, 0, 0], pad_value=-1.5))
            out = builder.emit_output(relax.op.nn.relu(padded))
        builder.emit_func_output(out)
    mod = builder.get()
    probe, reference = float_probe(mod, ["x"]), tvm_probe(mod, ["x"])
    assert isinstance(probe, OrtProbe) and probe.ids == reference.ids
    x = np.random.default_rng(3).normal(size=(1, 5, 6, 3)).astype(np.float32)
    for got, want in zip(probe.run([x]), reference.run([x])):
        np.testing.assert_array_equal(got, want)
