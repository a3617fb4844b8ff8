"""Hand-off packages: targets whose compiler is closed or needs the chip's host tools (Huawei's ATC,
Sophgo's TPU-MLIR, NVIDIA's TensorRT). None of them runs here; the build writes what the vendor tool
takes (an ONNX model, its scripts and configuration, our quantisation in the tool's own format) and
verifies what this machine can: the ONNX in ONNX Runtime against our build, the files read back.

A target names the kind in its target.toml:

    runner = "handoff"
    [handoff]
    kind = "ascend"        # or "sophon", "tensorrt": compiler/backends/<kind>.py

A kind's module has `package(compiled, staging, target, warn) -> report section` (report/backend.py);
what the kinds share is here: which ONNX tensor each of our quantised tensors is
(`onnx_tensor_qparams`), the float ONNX Runtime check, the scripts, and `run`.
"""

import importlib
import os
import shlex
import warnings

import numpy as np
import onnx

from compiler.errors import CompilerError
from compiler.names import shown
from compiler.quant.integer_spec import ONNX
from compiler.report.backend import check
from compiler.run.host import RunResult

INTEGER_SPEC = ONNX  # our int8 reference build is the ONNX spec's (ONNX Runtime agreement)
MODEL = "model.onnx"
KINDS = {"ascend": "compiler.backends.ascend", "sophon": "compiler.backends.sophon",
         "tensorrt": "compiler.backends.tensorrt"}
FLOAT_TOLERANCE = 1e-4  # of the output's largest magnitude: ONNX Runtime vs TVM, both float32
CHECK_SAMPLES = 8       # inputs the float check runs


def kind_module(target):
    kind = target.data.get("handoff", {}).get("kind")
    if kind not in KINDS:
        raise CompilerError(f"--target {target.name}: [handoff] kind {kind!r} is unknown (known: {', '.join(KINDS)})")
    return importlib.import_module(KINDS[kind])


def build(compiled, staging, target, warn):
    return kind_module(target).package(compiled, staging, target, warn)


def require_float_source(compiled, target) -> None:
    """For the kinds that hand off the float model (ascend, sophon): not a pre-quantised one."""
    if compiled.quantised is None and compiled.qdq is not None:
        raise CompilerError(f"--target {target.name}: the model is already quantised (QDQ or QLinear operators); "
                            "this package hands off the float model (build that, with --quantize int8 for our scales)")


def run(out_dir, input_paths, report, repeat=1) -> RunResult:
    """OUT/model.onnx in ONNX Runtime (float, this CPU): the chip's own compiler and runtime are not here.
    A kind may name another file of its package to run (RUN_MODEL: tensorrt's QDQ ONNX) and say what
    was run (RUN_NOTE). One warm-up run, then `repeat` timed runs."""
    from compiler.run.host import timed_runs
    from compiler.run.inputs import load_inputs
    from compiler.run.onnxruntime_cpu import session as ort_session
    from compiler.targets import get_target

    kind = kind_module(get_target(report["target"]))
    model = getattr(kind, "RUN_MODEL", MODEL)
    inputs = load_inputs(input_paths, report["interface"]["inputs"])
    session = ort_session(os.path.join(out_dir, model))
    feed = {value.name: array for value, array in zip(session.get_inputs(), inputs)}
    outputs, latencies = timed_runs(lambda: session.run(None, feed), repeat)
    print(getattr(kind, "RUN_NOTE", None) or f"ran {MODEL} in ONNX Runtime (float32, this CPU); the {report['target']} "
          "package's own compiler and runtime need the vendor's tools and hardware (see report.md)")
    return RunResult(outputs, [value.name for value in session.get_outputs()], latencies)


def input_shapes(compiled) -> list[tuple[str, list[int]]]:
    """(ONNX input name, static shape) per model input, after --input-shape."""
    from compiler.analysis import static_shape
    from compiler.frontend.onnx import graph_inputs

    params = compiled.imported["main"].params
    return [(value.name, [int(d) for d in static_shape(param)])
            for value, param in zip(graph_inputs(compiled.model), params)]


def write_model(compiled, staging) -> onnx.ModelProto:
    """OUT/model.onnx: the float model as imported, its dynamic input dimensions fixed to the build's."""
    model = onnx.ModelProto()
    model.CopyFrom(compiled.model)
    fixed = dict(input_shapes(compiled))
    for value in model.graph.input:
        if value.name in fixed:
            for dim, size in zip(value.type.tensor_type.shape.dim, fixed[value.name]):
                dim.Clear()
                dim.dim_value = size
    onnx.save(model, str(staging / MODEL))
    return model


def write_script(path, lines: list[str]) -> None:
    path.write_text("\n".join(["#!/bin/sh", "set -e", 'cd "$(dirname "$0")"', *lines]) + "\n")
    path.chmod(0o755)


def shell_words(*words) -> str:
    return " ".join(shlex.quote(str(word)) for word in words)


def onnx_tensor_qparams(compiled) -> dict[str, tuple]:
    """ONNX tensor name -> (QParams, (lo, hi) calibrated) for every tensor our int8 build quantises that
    the ONNX graph names: graph inputs, and the output of each int8 group (its last ONNX node's output:
    a Conv+BN+ReLU group's tensor is the Relu's) or of each op left outside groups (its node's output).
    Layout transposes of our NHWC form name no ONNX tensor and are left out."""
    from compiler.report.quant_summary import tensor_nodes

    quantised = compiled.quantised
    outputs = {node.name: node.output[0] for node in compiled.model.graph.node if node.output}
    outputs.update((name, name) for name in quantised.input_names)
    found = {}
    for tensor_id, node in tensor_nodes(compiled.partitioned, quantised.input_names).items():
        tensor = outputs.get(node)
        if tensor_id in quantised.plan and tensor is not None and tensor not in found:  # later ones only move it
            found[tensor] = (quantised.plan[tensor_id], quantised.ranges[tensor_id])
    return found


def calibration_feeds(compiled) -> list[list[np.ndarray]]:
    """The calibration samples our build calibrated on, per model run (the inputs in order)."""
    from compiler.quant.calib_data import CalibrationWarning, input_specs, load_calibration

    config = compiled.quantised.config
    with warnings.catch_warnings():  # `random` calibration warned once already, in the build
        warnings.simplefilter("ignore", CalibrationWarning)
        samples = load_calibration(config.calib, input_specs(compiled.partitioned, compiled.quantised.input_names),
                                   limit=config.samples)
    return list(samples.feeds())


def float_check(compiled, onnx_model: onnx.ModelProto, feeds) -> dict:
    """OUT/model.onnx in ONNX Runtime against our float build (TVM, this CPU) on the same inputs."""
    from compiler.quant.evaluate import _run, _vm

    session = _session(onnx_model)
    vm = _vm(compiled.partitioned)
    worst = 0.0
    for feed in feeds[:CHECK_SAMPLES]:
        ours = _run(vm, feed)
        theirs = session.run(None, {value.name: array for value, array in zip(session.get_inputs(), feed)})
        for a, b in zip(ours, theirs):
            worst = max(worst, float(np.abs(a - b.reshape(a.shape)).max() / max(np.abs(a).max(), 1e-12)))
    count = min(len(feeds), CHECK_SAMPLES)
    return check(f"{MODEL} (float) against our float build", f"ONNX Runtime (CPU) vs TVM on {count} input(s)",
                 f"largest difference {worst:.2e} of the output's magnitude", worst <= FLOAT_TOLERANCE)


def check_feeds(compiled) -> list[list[np.ndarray]]:
    """Inputs for the float check: the calibration samples of a quantised build, else random normal ones."""
    if compiled.quantised is not None:
        return calibration_feeds(compiled)[:CHECK_SAMPLES]
    rng = np.random.default_rng(0)
    shapes = [shape for _, shape in input_shapes(compiled)]
    return [[rng.normal(size=shape).astype(np.float32) for shape in shapes] for _ in range(CHECK_SAMPLES)]


def observed_ranges(onnx_model: onnx.ModelProto, feeds) -> dict[str, tuple[float, float]]:
    """(min, max) of every float tensor of the ONNX graph in ONNX Runtime over `feeds`."""
    inferred = onnx.shape_inference.infer_shapes(onnx_model)
    exposed = onnx.ModelProto()
    exposed.CopyFrom(onnx_model)
    known = {value.name for value in exposed.graph.output}
    known |= {name for node in onnx_model.graph.node if node.op_type == "Constant" for name in node.output}
    for value in inferred.graph.value_info:
        if value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT and value.name not in known:
            exposed.graph.output.append(value)
    session = _session(exposed)
    names = [value.name for value in session.get_outputs()]
    ranges = {}
    for feed in feeds:
        inputs = dict(zip((value.name for value in session.get_inputs()), feed))
        for name, array in [*inputs.items(), *zip(names, session.run(None, inputs))]:
            if array.dtype == np.float32 and array.size:
                lo, hi = ranges.get(name, (np.inf, -np.inf))
                ranges[name] = (min(lo, float(array.min())), max(hi, float(array.max())))
    return ranges


def names_check(planned: dict, observed: dict, method: str) -> dict:
    """Each named tensor is the one we calibrated: ONNX Runtime's range of it on the calibration samples
    is ours (min/max calibration; other methods clip, so only containment is checked)."""
    wrong = []
    for name, (_, (lo, hi)) in planned.items():
        seen = observed.get(name)
        span = max(abs(lo), abs(hi), 1e-6)
        if seen is None:
            wrong.append(name)
        elif method == "minmax" and (abs(seen[0] - lo) > 1e-4 * span or abs(seen[1] - hi) > 1e-4 * span):
            wrong.append(name)
        elif method != "minmax" and not (seen[0] <= lo + 1e-4 * span and seen[1] >= hi - 1e-4 * span):
            wrong.append(name)
    return check("tensor names are the ONNX tensors we calibrated", "ONNX Runtime's range of each named tensor on "
                 "the calibration samples vs ours", f"{len(planned) - len(wrong)}/{len(planned)} agree"
                 + (f"; not: {', '.join(map(shown, wrong[:5]))}" if wrong else ""), not wrong)


def _session(model: onnx.ModelProto):
    from compiler.run.onnxruntime_cpu import session

    return session(model)
