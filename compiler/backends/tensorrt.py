"""NVIDIA TensorRT hand-off: our int8 model as explicit-quantisation QDQ ONNX (OUT/model_qdq.onnx,
export/onnx_qdq.py) and the trtexec command that builds the engine from it (OUT/trtexec.sh).
TensorRT needs an NVIDIA GPU, so the engine is neither built nor run here.

TensorRT's explicit quantisation takes the QuantizeLinear / DequantizeLinear pairs as they are: the
engine computes int8 exactly where our build does, with our scales, and builds strongly typed
(`--stronglyTyped`: the types come from the network; TensorRT's precision flags --int8 / --fp16 /
--best are for implicit quantisation and are refused with it). TensorRT's DequantizeLinear takes
int8 (not int32) inputs, so each bias is written as the float32 value our int32 bias dequantizes to
(TensorRT adds it in the convolution's epilogue). Per-channel weights are on the output axis (0 for
Conv, 1 for a [K, O] MatMul/Gemm weight) as TensorRT requires. The input shapes are static: the build's.

Verified here: model_qdq.onnx in ONNX Runtime against our host int8 build (qdq_check.py). `run`
(handoff.run) runs model_qdq.onnx in ONNX Runtime and says the engine itself was not run.
"""

import os

from compiler.backends import handoff
from compiler.backends.qdq_check import QDQ_FILE, CheckedExport
from compiler.report.backend import check, section

SCRIPT, ENGINE = "trtexec.sh", "model.engine"
TRT_FLAGS = "--stronglyTyped"
# `run` (handoff.run): the QDQ ONNX in ONNX Runtime
RUN_MODEL = QDQ_FILE
RUN_NOTE = (f"ran {QDQ_FILE} in ONNX Runtime (int8 QDQ, this CPU); the TensorRT engine was not built or run: "
            f"TensorRT needs an NVIDIA GPU (./{SCRIPT} builds it there)")


def trtexec_words(shapes) -> list[str]:
    """trtexec's arguments (before the flags $TRT_FLAGS adds)."""
    words = ["trtexec", f"--onnx={QDQ_FILE}", f"--saveEngine={ENGINE}"]
    if shapes:
        words.append("--shapes=" + ",".join(f"{name}:{'x'.join(map(str, shape))}" for name, shape in shapes))
    return words


def package(compiled, staging, target, warn) -> dict:
    export = CheckedExport(compiled, staging, target, bias="float")
    shapes = [(name, shape) for name, shape, _ in export.interface.inputs]
    words = trtexec_words(shapes)
    handoff.write_script(staging / SCRIPT, [
        "# Builds the TensorRT engine from our QDQ ONNX (explicit quantisation) and times it; needs TensorRT 9+",
        "# and an NVIDIA GPU. TensorRT 8.x has no --stronglyTyped: run with TRT_FLAGS=--int8 (Q/DQ still rule).",
        f'{handoff.shell_words(*words)} ${{TRT_FLAGS:-{TRT_FLAGS}}} "$@"'])
    parsed = parse_script(staging / SCRIPT)
    verified = [*export.checks,
                check(f"{SCRIPT} names the package's files", "the script's trtexec line split as the shell does",
                      " ".join(parsed), parsed[:len(words)] == words and os.path.isfile(staging / QDQ_FILE))]
    notes = [f"build the engine on a machine with an NVIDIA GPU and TensorRT: `./{SCRIPT}` writes {ENGINE} and "
             "prints trtexec's latency and throughput",
             "explicit quantisation: the engine computes int8 where the Q/DQ pairs say, with our scales; "
             "biases are float32 (TensorRT dequantizes int8 only)", *export.notes]
    not_run = ["TensorRT needs an NVIDIA GPU: the engine was neither built nor run here"]
    entry = section("TensorRT hand-off (not run here)", [QDQ_FILE, SCRIPT], verified, not_run, {}, {}, notes=notes)
    entry["agreement"] = {"onnxruntime": export.ort, "onnxruntime_layers": export.layers}
    return entry


def parse_script(path) -> list[str]:
    """The trtexec line of trtexec.sh, split into words as sh does (defaults expanded)."""
    import shlex

    line = next(line for line in path.read_text().splitlines() if line.startswith("trtexec"))
    return [word.replace(f"${{TRT_FLAGS:-{TRT_FLAGS}}}", TRT_FLAGS) for word in shlex.split(line) if word != "$@"]
