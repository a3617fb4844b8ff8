"""openvino-cpu: our int8 model as OpenVINO IR, compiled and run by the OpenVINO runtime on this CPU.

build: the int8 module (compiled.qdq: our calibration, fusion and BN folding) -> QDQ ONNX
(export/onnx_qdq.py, OUT/model_qdq.onnx) -> OpenVINO's ONNX reader (Core.read_model) -> OUT/model.xml +
model.bin (save_model, weights kept int8, float parts float32). The IR is compiled for the CPU and run on the
check inputs (qdq_check.py: random normal, and uniform over each input's int8 range) beside the host
int8 build (ONNX integer spec: one rounding per requantisation, as OpenVINO's int8 kernels) and ONNX
Runtime on the QDQ ONNX. The report gives

  - agreement with our host int8 build (max LSB, % identical; goal <= 1 LSB, >= 99%), for OpenVINO
    and for ONNX Runtime, and OpenVINO's against ONNX Runtime's (how far two float runtimes of the same
    QDQ graph drift apart on this model);
  - the precision OpenVINO's CPU plugin actually executed each convolution in (its runtime model:
    rt_info runtimePrecision of each Convolution / FullyConnected node; u8 or i8 is int8);
  - latency: OpenVINO and ONNX Runtime on the same QDQ model, the same thread count, median of
    LATENCY_RUNS runs each, in this process.

Why read_model and not openvino.convert_model: convert_model's IR (OpenVINO 2026.4) runs the
convolutions u8 x s8 and fuses a residual Add into the convolution before it (oneDNN's sum
post-op), which skips the graph's rounding of the convolution's output: the digits CNN's one such
Add put 13-15% of its logits 1 LSB off our build. read_model's IR runs them s8 x s8 with every Add
its own node: the digits CNN agrees (max 1 LSB, 99.75% of 2000 logits identical). It costs speed:
MobileNet V1 0.25 at 96x96 ran in 0.32 ms against convert_model's 0.24 (ONNX Runtime: 0.75; in
another session 0.56 against ONNX Runtime's 0.39: the two vary between VMs). The report still lists
any Add a later OpenVINO fuses (`fused_adds`).

The QDQ file is also checked layer by layer (qdq_layers.py: each int8 tensor from our int8 inputs,
in ONNX Runtime): within 1 LSB, at rounding ties only, on every model measured, the face detector
below included.

Why OpenVINO can still miss the agreement goal:
  - requantisation: OpenVINO and ONNX Runtime rescale an int32 sum with float32 multiplies (each in
    its own order), our build with a 31-bit fixed-point multiplier rounded once (the ONNX integer
    spec we follow). Any two of the three land on different sides of a rounding tie at about 1
    value in 10^5 per layer, and on a deep random-weight model those single steps compound:
    MobileNet V1 0.25 (28 layers, 100 random classes) is 86.9% identical to our build in OpenVINO
    and 96.1% in ONNX Runtime, and OpenVINO and ONNX Runtime are 89.7% identical to each other
    (`openvino_vs_onnxruntime`): no runtime meets 99% against another on such a model. On
    MediaPipe's face detector (random calibration: its residual adds amplify 1.3-4.4x) a tie after
    the first convolution reaches 27 LSB at ONNX Runtime's outputs and 50 at OpenVINO's.
  - on x86 CPUs without VNNI (AVX2 / AVX-512 only) oneDNN's int8 convolutions multiply with
    vpmaddubsw, whose int16 pair sums saturate on full-range int8 weights (OpenVINO's documented
    saturation issue): convert_model's u8 IR of MobileNet V1 0.25 was 13 LSB off on an AVX2 EPYC
    (read_model's s8 IR has not been measured on such a CPU). The report says so when it is built
    on one (cpu_features.py).

Inference precision is pinned to f32 (INFERENCE_PRECISION_HINT): on CPUs with bf16 or AMX OpenVINO
would otherwise run the float parts (a first convolution it keeps float, a float softmax) in bf16.

run: OUT/model.xml in the OpenVINO runtime on the inputs.
"""

import os
import re

import numpy as np

from compiler.backends import missing_package
from compiler.backends.qdq_check import CheckedExport, agreement, agreement_check, median_ms, ort_runner
from compiler.errors import CompilerError
from compiler.export.onnx_float import FLOAT_CONV_PREFIX
from compiler.names import shown
from compiler.quant.integer_spec import ONNX
from compiler.report.backend import check, section
from compiler.run.host import RunResult

INTEGER_SPEC = ONNX
MODEL_XML, MODEL_BIN = "model.xml", "model.bin"
DEVICE = "CPU"
LATENCY_RUNS = 50
INT8_PRECISIONS = ("u8", "i8")
ADD_NODE = re.compile(r"Add_\d+$")  # model_qdq.onnx names its nodes <op type>_<index>
COMPUTE_LAYERS = ("Convolution", "FullyConnected")  # CPU plugin node types that compute a layer's MACs


def _openvino(target_name):
    try:
        import openvino
    except ImportError:
        raise missing_package("openvino", "openvino==2026.4.1", target_name) from None
    return openvino


def threads() -> int:
    return max(1, len(os.sched_getaffinity(0)))


def compile_ir(ov, path_or_model, thread_count):
    return ov.Core().compile_model(path_or_model, DEVICE, {"INFERENCE_NUM_THREADS": thread_count,
                                                           "INFERENCE_PRECISION_HINT": "f32"})


def runner(compiled_model):
    request = compiled_model.create_infer_request()

    def run(inputs):
        results = request.infer(list(inputs))
        return [np.array(results[out]) for out in compiled_model.outputs]
    return run


def layer_precisions(compiled_model) -> list[dict]:
    """(node, layer type, executed precision, ONNX nodes it fused) of each convolution and fully connected
    node of OpenVINO's runtime model."""
    found = []
    for op in compiled_model.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        kind = info["layerType"].astype(str)
        if kind in COMPUTE_LAYERS:
            fused = info["originalLayersNames"].astype(str).split(",")
            found.append({"node": op.get_friendly_name(), "type": kind,
                          "precision": info["runtimePrecision"].astype(str),
                          "output": info["outputPrecisions"].astype(str),
                          "fused_adds": [name for name in fused if ADD_NODE.match(name)]})
    return found


def build(compiled, staging, target, warn) -> dict:
    ov = _openvino(target.name)
    export = CheckedExport(compiled, staging, target)
    model = ov.Core().read_model(str(staging / "model_qdq.onnx"))  # not convert_model: see the docstring
    ov.save_model(model, str(staging / MODEL_XML), compress_to_fp16=False)
    thread_count = threads()
    compiled_model = compile_ir(ov, str(staging / MODEL_XML), thread_count)
    run = runner(compiled_model)
    result = agreement(run, export.reference, export.interface, export.samples)
    layers = layer_precisions(compiled_model)
    convs = [layer for layer in layers if layer["type"] == "Convolution"]
    float_by_build = [layer for layer in convs if layer["node"].startswith(FLOAT_CONV_PREFIX)]  # ours: float layers
    convs = [layer for layer in convs if layer not in float_by_build]
    int8 = [layer for layer in convs if layer["precision"] in INT8_PRECISIONS]
    others = [f"{layer['node']} ({layer['precision']})" for layer in convs if layer not in int8]
    kept = f"; {len(float_by_build)} float in the build too (not counted)" if float_by_build else ""
    sample = export.samples[0][1]
    ort = ort_runner(export.data, thread_count)  # one session: the latency and the agreement below
    ort_ms = median_ms(ort, sample, LATENCY_RUNS)
    ov_ms = median_ms(run, sample, LATENCY_RUNS)
    verified = [agreement_check(f"{MODEL_XML} in OpenVINO {_version(ov)} ({DEVICE}) against our host int8 build",
                                result), *export.checks,
                check("convolutions executed in int8", "OpenVINO's runtime model: runtimePrecision of each Convolution",
                      f"{len(int8)}/{len(convs)} int8" + (f"; not: {', '.join(others[:8])}" if others else "") + kept,
                      bool(convs) and len(int8) == len(convs))]
    if others and warn is not None:
        warn(f"--target {target.name}: OpenVINO runs {len(others)} of {len(convs)} convolutions in float: "
             + ", ".join(others[:8]))
    performance = {"figure": "ms", "value": round(ov_ms, 4),
                   "source": f"OpenVINO {DEVICE}, median of {LATENCY_RUNS} runs, {thread_count} threads",
                   "onnxruntime_ms": round(ort_ms, 4), "threads": thread_count, "runs": LATENCY_RUNS}
    against_ort = agreement(run, ort, export.interface, export.samples)
    entry = section(f"OpenVINO {_version(ov)}", [MODEL_XML, MODEL_BIN, "model_qdq.onnx"], verified, [],
                    performance, {"ir_bytes": (staging / MODEL_BIN).stat().st_size},
                    operators={"layers": layers, "convolutions": len(convs), "int8_convolutions": len(int8),
                               "float_in_the_build": [layer["node"][len(FLOAT_CONV_PREFIX):] for layer in float_by_build]},
                    notes=[f"latency beside ONNX Runtime {_ort_version()} on model_qdq.onnx: OpenVINO {ov_ms:.3f} ms, "
                           f"ONNX Runtime {ort_ms:.3f} ms (median of {LATENCY_RUNS}, {thread_count} threads, "
                           "one process)", _against_ort_note(against_ort), *_arithmetic_notes(layers),
                           *export.notes])
    entry["agreement"] = {"openvino": result, "onnxruntime": export.ort, "onnxruntime_layers": export.layers,
                          "openvino_vs_onnxruntime": against_ort}
    return entry


def _against_ort_note(result: dict) -> str:
    return (f"OpenVINO against ONNX Runtime on model_qdq.onnx: max {result['max_lsb']:g} LSB, "
            f"{result['identical_percent']:g}% of {result['values']} values identical (the two runtimes rescale in "
            "float32, each in its own order; our build with a fixed-point multiplier)")


def _arithmetic_notes(layers) -> list[str]:
    """Where OpenVINO's arithmetic departs from the QDQ graph's on this build (module docstring)."""
    from compiler.cpu_features import x86_without_vnni

    notes = []
    fused = [f"{layer['node']} ({', '.join(layer['fused_adds'])})" for layer in layers if layer["fused_adds"]]
    if fused:
        notes.append(f"{len(fused)} residual Add(s) fused into the convolution before them (oneDNN sum post-op), "
                     "which OpenVINO computes differently from the ONNX graph (1-LSB differences): "
                     + ", ".join(fused[:8]))
    if x86_without_vnni():
        notes.append("this CPU has no VNNI: oneDNN's int8 convolutions multiply with vpmaddubsw, whose int16 pair sums "
                     "saturate on full-range int8 weights (OpenVINO's saturation issue), so the agreement above is "
                     "this CPU's; on a CPU with VNNI it is not affected")
    return notes


def _ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def run(out_dir, input_paths, report, repeat=1) -> RunResult:
    """OUT/model.xml in the OpenVINO runtime on this CPU: one warm-up run, then `repeat` timed runs."""
    from compiler.run.host import timed_runs
    from compiler.run.inputs import load_inputs

    ov = _openvino(report["target"])
    path = os.path.join(out_dir, MODEL_XML)
    if not os.path.isfile(path):
        raise CompilerError(f"{shown(out_dir)}: no {MODEL_XML} (is this an openvino-cpu build?)")
    inputs = load_inputs(input_paths, report["interface"]["inputs"])
    compiled_model = compile_ir(ov, path, threads())
    infer = runner(compiled_model)
    outputs, latencies = timed_runs(lambda: infer(inputs), repeat)
    print(f"ran {MODEL_XML} in OpenVINO {_version(ov)} on this {DEVICE}")
    return RunResult(outputs, [t["name"] for t in report["interface"]["outputs"]], latencies)


def _version(ov) -> str:
    return ov.__version__.split("-")[0]
