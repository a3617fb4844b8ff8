"""What quantisation costs: per-layer float-vs-int8 error and, with labelled data, top-1 accuracy.

Both builds run for real: the float module (calibration's probe: ONNX Runtime, or TVM), the
quantised one through the same lowering as the deployed build (the int8 kernels), never a float
simulation of it. Each module is compiled once: calibration's float probe serves the float side of
both measures, the int8 Probe (int8_twin, lowered) the layer errors, and the int8 top-1 runs the
deployed host library (the file the build wrote) when there is one.
"""

import numpy as np
import tvm
from tvm import relax

from compiler.passes.insert_qdq import insert_qdq_instrumented
from compiler.progress import Progress
from compiler.quant.calibrate import Probe
from compiler.quant.plan import plan_int16

HOST = {"kind": "llvm"}


def _vm(mod):
    return relax.VirtualMachine(tvm.compile(mod, target=tvm.target.Target(HOST)), tvm.cpu())


def _run(vm, feed):
    result = vm["main"](*[tvm.runtime.tensor(array) for array in feed])
    return [t.numpy() for t in result] if not hasattr(result, "numpy") else [result.numpy()]


def module_runner(mod):
    """feed -> the model's first output, of `mod` compiled for the host."""
    return vm_runner(_vm(mod))


def vm_runner(vm):
    return lambda feed: _run(vm, feed)[0]


class _ErrorStats:
    def __init__(self):
        self.signal = self.noise = self.dot = self.norm_q = self.max_abs = 0.0  # signal: sum f^2

    def update(self, reference, actual):
        f, q = reference.astype(np.float64).ravel(), actual.astype(np.float64).ravel()
        self.signal += float(f @ f)
        self.noise += float((f - q) @ (f - q))
        self.dot += float(f @ q)
        self.norm_q += float(q @ q)
        self.max_abs = max(self.max_abs, float(np.abs(f - q).max(initial=0.0)))

    def row(self) -> dict:
        sqnr = float("inf") if self.noise == 0 else 10 * np.log10(max(self.signal, 1e-30) / self.noise)
        cosine = self.dot / np.sqrt(self.signal * self.norm_q) if self.signal and self.norm_q else 1.0
        return {"sqnr_db": round(sqnr, 2), "cosine": round(float(cosine), 6), "max_abs_error": self.max_abs}


def int8_twin(float_mod, quantised, spec: str) -> tuple[tvm.IRModule, list]:
    """The int8 module that also returns every quantised tensor (dequantized), partitioned for the
    kernel codegen in `spec`'s form (run_codegen makes it runnable), and those tensors' ids."""
    from compiler.codegen.int8 import partition_int8
    from compiler.compile_model import spec_form

    config = quantised.config
    variant, ids = insert_qdq_instrumented(float_mod, quantised.plan, quantised.input_names,
                                           frozenset(config.keep_float), quantised.input_means,
                                           frozenset(config.int16_layers), plan_int16(quantised.ranges))
    return partition_int8(spec_form(variant, spec), spec), ids


def twin_cflags(module: tvm.IRModule) -> tuple:
    """The int8 twin's C flags: -O1 for a model below calibrate.LIBRARY_MACS (its held-out runs take
    milliseconds either way, and the digits CNN's kernels/ref C compiles in 0.49 s at -O1 against
    0.79 at -O3: time the measurement waited for while the deployed module's C compiled beside it)."""
    from compiler.analysis import module_macs
    from compiler.quant.calibrate import LIBRARY_MACS

    return ("-O1",) if module_macs(module) < LIBRARY_MACS else ()


def compiled_twin(module: tvm.IRModule) -> tvm.IRModule:
    """run_codegen of an int8 twin, with its C flags (the same as its prefetch's: one compile)."""
    from compiler.codegen.int8 import run_codegen
    from compiler.quant.patterns import CODEGEN

    return run_codegen(module, {CODEGEN: {"cflags": list(twin_cflags(module))}})


def layer_errors(float_side: Probe, int8_side: Probe, held_out, progress=True) -> list[dict]:
    """[{tensor, sqnr_db, cosine, max_abs_error}] on the held-out samples, worst (lowest SQNR) first."""
    if held_out is None:
        return []
    outputs = 1  # both variants return (model output, *tensors); models here have one output
    float_index = {tensor_id: outputs + i for i, tensor_id in enumerate(float_side.ids)}
    stats = {tensor_id: _ErrorStats() for tensor_id in int8_side.ids if tensor_id in float_index}
    with Progress("measuring int8 error", held_out.runs, enabled=progress) as bar:
        for feed in held_out.feeds():
            float_out, int8_out = float_side.run(feed), int8_side.run(feed)
            for i, tensor_id in enumerate(int8_side.ids):
                if tensor_id in stats:
                    stats[tensor_id].update(float_out[float_index[tensor_id]], int8_out[outputs + i])
            bar.advance()
    rows = [{"tensor": tensor_id, **s.row()} for tensor_id, s in stats.items()]
    return sorted(rows, key=lambda row: row["sqnr_db"])


def top1(runner, images: np.ndarray, labels: np.ndarray, input_shape, progress=False) -> float:
    """Top-1 (percent) of one build (`runner`: feed -> output) over (images, labels), one run per image."""
    correct = 0
    with Progress("validating", len(images), enabled=progress) as bar:
        for image, label in zip(images, labels):
            correct += int(runner([np.ascontiguousarray(image.reshape(input_shape))]).argmax() == label)
            bar.advance()
    return 100.0 * correct / len(images)


def top1_accuracy(float_runner, int8_runner, images: np.ndarray, labels: np.ndarray, input_shape,
                  progress=True) -> dict:
    """Top-1 of the float and the int8 build over (images, labels)."""
    float_top1 = top1(float_runner, images, labels, input_shape, progress)
    int8_top1 = top1(int8_runner, images, labels, input_shape, progress)
    n = len(images)
    return {"samples": n, "float_top1": round(float_top1, 2), "int8_top1": round(int8_top1, 2),
            "drop_points": round(float_top1 - int8_top1, 2)}
