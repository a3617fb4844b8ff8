"""Calibration: run the float model on the host over the calibration samples, observing tensors.

`calibrate(mod, samples, method)` takes the optimised, partitioned float module
(CompiledModel.partitioned) and returns {tensor id: (lo, hi)} for

  - every float graph input, keyed by its input name (the names of the CalibrationSet,
    i.e. the ONNX names, matched to main's parameters by position);
  - every binding of main whose value is a call (a fused group, an op left to TVM, any
    other function) producing a float tensor, keyed by `tensor_ids`: the binding's var
    name, made unique in binding order ("lv", "lv#1", "lv#2", ...), since TVM reuses var
    names freely. The ids are stable for a given module: QDQ insertion calls
    `tensor_ids` on the same module to find the range of each binding.

How: the float probe returns (original output, *observed tensors) per model run, and the report
reuses it (layer errors, --val's float top-1). It is the module written as ONNX and run by ONNX
Runtime (quant/ort_probe.py: opens in milliseconds) when every op of it exports, else a variant
of main (dataflow blocks turned into plain blocks, so inner vars may be returned) compiled once
for {"kind": "llvm"} (a Probe) and run on the Relax VM. A model run takes a whole batch
of samples when the input's batch axis B is > 1; with B = 1 (the usual case) samples run
one at a time, which is fast enough for a few hundred small samples and needs no
re-shaped copy of the model. Progress goes to stderr (compiler/progress.py).
"""

import warnings

import numpy as np
import tvm
from tvm import relax

from compiler.analysis import static_shape
from compiler.errors import CompilerError
from compiler.names import shown
from compiler.passes.util import bindings
from compiler.progress import Progress
from compiler.quant.bias_correction import ChannelMeans
from compiler.quant.calib_data import CalibrationSet, CalibrationWarning
from compiler.quant.observers import METHODS, make_observer


def _is_float_tensor(expr) -> bool:
    ty = getattr(expr, "ty", None)
    dtype = getattr(ty, "dtype", None)
    return isinstance(ty, relax.TensorType) and dtype is not None and str(dtype).startswith(("float", "bfloat"))


def tensor_ids(func: relax.Function, input_names=None) -> list[tuple[str, relax.Var]]:
    """(id, var) for main's float inputs, then every binding of a call producing a float tensor.

    Input ids are `input_names` (by position) or the parameter names; binding ids are the
    var names, made unique by appending #1, #2, ... to repeats, in binding order.
    """
    params = list(func.params)
    if input_names is not None and len(input_names) != len(params):
        raise ValueError(f"{len(input_names)} input names for {len(params)} parameters")
    names = list(input_names) if input_names is not None else [p.name for p in params]
    seen = set(names)
    found = [(name, param) for name, param in zip(names, params) if _is_float_tensor(param)]
    for binding in bindings(func):
        if not isinstance(binding.value, relax.Call) or not _is_float_tensor(binding.var):
            continue
        base, name, repeat = binding.var.name, binding.var.name, 0
        while name in seen:
            repeat += 1
            name = f"{base}#{repeat}"
        seen.add(name)
        found.append((name, binding.var))
    return found


def instrumented(mod: tvm.IRModule, input_names=None) -> tuple[tvm.IRModule, list[str]]:
    """mod with main returning (its output, *every observed binding), and those bindings' ids.

    Graph inputs are not returned: calibration observes them from the samples directly.
    """
    main_gv = mod.get_global_var("main")
    main = mod[main_gv]
    plain = relax.transform.ToNonDataflow()(tvm.IRModule({main_gv: main}, attrs=mod.attrs))["main"]
    inputs = sum(_is_float_tensor(p) for p in main.params)
    ids = [name for name, _ in tensor_ids(main, input_names)[inputs:]]
    observed = tensor_ids(plain, input_names)[inputs:]
    if [name for name, _ in observed] != ids:  # ToNonDataflow keeps names and order
        raise RuntimeError("ToNonDataflow changed main's bindings; cannot instrument it for calibration")
    body = plain.body
    outputs = relax.Tuple([body.body, *[var for _, var in observed]])
    new_body = relax.BlockBuilder().normalize(relax.SeqExpr(body.blocks, outputs))
    result = tvm.IRModule(dict(mod.functions), attrs=mod.attrs)
    result[main_gv] = relax.Function(plain.params, new_body, None, plain.is_pure, plain.attrs)
    return result, ids


class Probe:
    """An instrumented module (main returning (output, *observed tensors), `ids` naming the observed
    ones) compiled for the host once. The float one (float_probe) serves calibration, then the report's
    layer errors and float top-1 (output 0 is the model's own), instead of three compiles of it."""

    def __init__(self, variant: tvm.IRModule, ids: list[str], llvm_opt_level: int = 3):
        self.ids = ids
        self.target = tvm.target.Target({"kind": "llvm", "opt-level": llvm_opt_level})
        self.vm = relax.VirtualMachine(tvm.compile(variant, target=self.target), tvm.cpu())

    def run(self, feed) -> list[np.ndarray]:
        """(model output, *observed tensors) as arrays (the output of a model of several outputs: their tuple)."""
        results = self.vm["main"](*[tvm.runtime.tensor(array) for array in feed])
        return [t.numpy() if hasattr(t, "numpy") else t for t in results]

    def output(self, feed) -> np.ndarray:
        """The model's output alone."""
        return self.run(feed)[0]


def float_probe(mod: tvm.IRModule, input_names=None):
    """The float module's probe: on ONNX Runtime (quant/ort_probe.py) when its ops export, else
    compiled with TVM (tvm_probe)."""
    from compiler.quant.ort_probe import ort_probe

    main = mod["main"]
    inputs = sum(_is_float_tensor(p) for p in main.params)
    observed = tensor_ids(main, input_names)[inputs:]
    probe = ort_probe(mod, [var for _, var in observed], [name for name, _ in observed])
    return probe if probe is not None else tvm_probe(mod, input_names)


def tvm_probe(mod: tvm.IRModule, input_names=None) -> Probe:
    """The instrumented module compiled for the host (probe_plan: LLVM, or the library's convolutions)."""
    variant, ids = instrumented(mod, input_names)
    module, opt_level = probe_plan(variant)
    return Probe(module, ids, opt_level)


def probe_plan(variant: tvm.IRModule) -> tuple[tvm.IRModule, int]:
    """(the module to compile, LLVM opt level) for an instrumented module. Small models (below
    LIBRARY_MACS) stay on TVM at LLVM opt level 1: for them the compile is much of a calibration, and
    level 1 compiles faster than 3 with loops as fast (the digits CNN: 0.37 s against 0.49 s; a
    9M-MAC model 3.2 ms a sample against 2.8; level 0 saves 0.1 s more but runs 5x slower). Without
    fast-math no level changes a float result (LLVM keeps IEEE semantics, and TVM does not contract
    multiply-adds). Larger ones run their convolutions on the library."""
    from compiler.analysis import module_macs

    if module_macs(variant) < LIBRARY_MACS:
        return variant, 1
    return _convolutions_on_library(variant), 3


# Below this many MACs per sample TVM's loops take a few ms a sample, and the library's C compile
# (~0.5 s) costs more than it saves over a calibration and a --val run (the digits CNN: 0.35M).
LIBRARY_MACS = 10_000_000


def _convolutions_on_library(variant: tvm.IRModule) -> tvm.IRModule:
    """The probe runs on this machine: a model's convolution and dense groups on oneDNN where it is
    installed (x86; codegen/dnnl.py), as the host's float build runs them. TVM's untuned loops
    took most of a calibration run (MobileNetV2 224: 0.17 s per sample, 5 ms on oneDNN); the
    ranges differ from theirs only by float rounding (another summation order)."""
    from compiler.codegen import dnnl
    from compiler.cpu_features import is_x86

    if not is_x86() or dnnl.dnnl_library() is None:
        return variant
    return dnnl.run_codegen(dnnl.offload_groups(variant))


def calibrate(mod: tvm.IRModule, samples: CalibrationSet, method: str = "minmax", percentile: float = 99.99,
              progress: bool = True, means: dict | None = None, probe: Probe | None = None
              ) -> dict[str, tuple[float, float]]:
    """{tensor id: (lo, hi)} observed over `samples` with observers of `method`; `means`, when given,
    receives {tensor id: per-channel mean} (channels last) for bias correction. `probe`: mod's Probe
    for the sample input names, when the caller keeps it (else one is compiled here)."""
    if method not in METHODS:
        raise CompilerError(f"--calib-method {method}: unknown calibration method (known: {', '.join(METHODS)})")
    if method == "percentile" and not 50.0 < percentile <= 100.0:
        raise CompilerError(f"--calib-percentile {percentile}: must be in (50, 100]")
    params = list(mod["main"].params)
    if len(samples.inputs) != len(params):
        raise CompilerError(f"{samples.source}: calibration data for {len(samples.inputs)} input(s), "
                            f"but the model has {len(params)}")
    for spec, param in zip(samples.inputs, params):
        shape, dtype = static_shape(param), str(param.ty.dtype)
        if shape != tuple(spec.shape) or dtype != spec.dtype:
            raise CompilerError(f"{samples.source}: input {spec.name!r} is {list(spec.shape)} {spec.dtype} in the data "
                                f"but {list(shape) if shape else 'dynamic'} {dtype} in the model")

    probe = probe or float_probe(mod, [spec.name for spec in samples.inputs])
    ids = probe.ids
    float_inputs = [i for i, spec in enumerate(samples.inputs) if np.issubdtype(np.dtype(spec.dtype), np.floating)]
    observers = {samples.inputs[i].name: make_observer(method, percentile) for i in float_inputs}
    observers.update({name: make_observer(method, percentile) for name in ids})

    # bindings only: they are NHWC (or [N, K]) here; a graph input may still be NCHW
    channel_means = {name: ChannelMeans() for name in ids} if means is not None else {}
    with Progress("calibrating", samples.runs, enabled=progress) as bar:
        for feed in samples.feeds():
            for i in float_inputs:
                observers[samples.inputs[i].name].update(feed[i])
            for name, array in zip(ids, probe.run(feed)[1:]):
                observers[name].update(array)
                if name in channel_means:
                    channel_means[name].update(array)
            bar.advance()

    broken = {name: obs.nonfinite for name, obs in observers.items() if obs.nonfinite}
    if broken:
        listed = ", ".join(f"{shown(name)} ({count})" for name, count in list(broken.items())[:8])
        warnings.warn(f"calibration: NaN/inf values inside the float model, left out of the ranges: {listed}",
                      CalibrationWarning, stacklevel=2)
    if means is not None:
        means.update({name: tracker.mean() for name, tracker in channel_means.items() if tracker.mean() is not None})
    return {name: obs.range() for name, obs in observers.items()}
