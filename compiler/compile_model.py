"""In-memory compilation: ONNX model -> optimised, partitioned Relax -> TVM executable.

Float:  import -> passes -> partition (target's fusion families) -> TVM compile.
Pre-quantised (QDQ / QLinear ONNX): import -> passes -> NHWC -> int8 partition + kernel codegen.
INT8:   import -> passes -> NHWC -> partition (target's int8 families: one group per int8
        op) -> calibrate + QDQ (quant/quantize.py) -> int8 partition + kernel codegen -> compile.
Every stage's module is kept on the result, because the report and graph.onnx are read
from the IR rather than from side channels.
"""

import dataclasses
import time
from dataclasses import dataclass, field

import onnx
import tvm

from compiler.analysis import op_calls
from compiler.errors import CompilerError
from compiler.frontend import import_onnx
from compiler.frontend.onnx import graph_inputs
from compiler.frontend.tflite import model_origin
from compiler.partition import partition
from compiler.passes.dynamic_quant import dynamic_quant
from compiler.passes.equalize import equalize, equalized_pairs
from compiler.passes.fold_constants import fold_constants
from compiler.passes.fp16_weights import fp16_weights
from compiler.passes.pipeline import optimise
from compiler.passes.util import is_call_to
from compiler.passes.fold_transposes import fold_transposes
from compiler.passes.mean_keepdims import mean_keepdims
from compiler.passes.prequantised_tables import prequantised_tables
from compiler.passes.quantize_float_bias import quantize_float_bias
from compiler.passes.to_nhwc import to_nhwc
from compiler.quant.integer_spec import ONNX, TFLITE
from compiler.quant.quantize import QuantConfig, Quantised, quantise
from compiler.targets import Target


@dataclass
class CompiledModel:
    model: onnx.ModelProto
    target: Target
    imported: tvm.IRModule
    optimised: tvm.IRModule
    partitioned: tvm.IRModule          # float, grouped by the fusion (float) or int8 (quantised) families;
                                       # for a pre-quantised model, its QDQ form in NHWC
    executable: object                 # tvm.relax.VMExecutable (None for targets with their own artefact)
    seconds: dict = field(default_factory=dict)  # stage -> wall time
    quantised: Quantised | None = None
    offloaded: tvm.IRModule | None = None  # INT8: the QDQ module with its int8 groups marked for the kernel codegen
    host_lowered: tvm.IRModule | None = None  # `lowered`, once made
    integer_spec: str = ONNX               # the int8 spec's origin (quant/integer_spec.py)
    probe: tuple | None = None             # INT8 with probe=True: (the instrumented QDQ module partitioned for the
                                           # kernel codegen, its tensor ids), its C compiling in the background

    @property
    def lowered(self) -> tvm.IRModule | None:
        """What the target's TVM compile takes (host tuning tunes its PrimFuncs). A target with its
        own artefact (coral-npu, vendor backends) does not need the host int8 module: its kernels
        are compiled only when something asks (--emit tflite's check, a backend's reference run)."""
        if self.host_lowered is None and self.offloaded is not None:
            from compiler.codegen.int8 import run_codegen

            self.host_lowered = run_codegen(self.offloaded)
        return self.host_lowered

    @property
    def qdq(self) -> tvm.IRModule | None:
        """The int8 (QDQ-form, NHWC) module of a quantised or pre-quantised build; None for a float one."""
        if self.quantised is not None:
            return self.quantised.qdq
        return self.partitioned if self.offloaded is not None else None


def integer_spec(model: onnx.ModelProto) -> str:
    """A pre-quantised model's integer spec (quant/integer_spec.py): its origin's. A TFLite model's
    is LiteRT's built-in kernels', an ONNX model's rounds once (ONNX Runtime)."""
    return TFLITE if model_origin(model) == "tflite" else ONNX


def spec_form(mod: tvm.IRModule, spec: str) -> tvm.IRModule:
    """A QDQ module of ours (our calibration, or an ONNX model's own scales) in the form integer
    spec `spec` computes it in: for TFLite's, global means keep their axes (passes/mean_keepdims.py)."""
    return mean_keepdims(mod) if spec == TFLITE else mod


def is_prequantised(mod: tvm.IRModule) -> bool:
    """Does the model carry its own quantisation (it imported into the QDQ form)?"""
    return any(is_call_to(call, "relax.dequantize") for call in op_calls(mod["main"]))


class _Clock:
    def __init__(self):
        self.seconds, self.last = {}, time.perf_counter()

    def lap(self, stage):
        now = time.perf_counter()
        self.seconds[stage] = now - self.last
        self.last = now


def _equalized(mod: tvm.IRModule, quant: QuantConfig, note) -> tuple[tvm.IRModule, list]:
    """--equalize: the float graph after cross-layer equalisation and the pairs it rescaled."""
    if not quant.equalize:
        return mod, []
    pairs = equalized_pairs(mod)
    if not pairs and note is not None:
        note("--equalize: no two convolutions are joined through a ReLU or directly; nothing to equalise")
    return (equalize(mod) if pairs else mod), pairs


def _float_library(target: Target, note):
    """compiler.codegen.dnnl when the target runs its float convolutions on oneDNN ([float]
    convolutions = "dnnl" in target.toml) and it is installed, else None (TVM compiles them)."""
    if target.data.get("float", {}).get("convolutions") != "dnnl":
        return None
    from compiler.codegen import dnnl
    from compiler.cpu_features import is_x86

    if not is_x86():
        return None
    if dnnl.dnnl_library() is None:
        if note is not None:
            note("oneDNN is not installed (pip install -r requirements.txt): float convolutions run TVM's "
                 "untuned loops, 20-90x slower")
        return None
    return dnnl


def compile_model(model: onnx.ModelProto, target: Target, input_shapes=None, source="model",
                  quant: QuantConfig | None = None, host_tuning_db=None, note=None, spec: str | None = None,
                  probe: bool = False) -> CompiledModel:
    """spec: the int8 build's integer spec (quant/integer_spec.py); None: the model's own (a
    pre-quantised model's origin's, ONNX's for our calibration); build --emit tflite asks for
    TFLite's, so that LiteRT runs the exported file bit-exact to the build. host_tuning_db: a tuning database FILE whose MetaSchedule records (FILE.metaschedule/,
    compiler/tune/host.py) schedule the LLVM-compiled PrimFuncs; note(message) hears why they
    are ignored when they are. probe: an int8 build that will measure its layer errors (build's
    report) gets its instrumented twin partitioned (CompiledModel.probe), the C of which compiles
    beside the deployed module's."""
    clock = _Clock()
    imported = import_onnx(model, input_shapes, source)
    clock.lap("import")
    optimised = optimise(imported)
    clock.lap("passes")
    quantised = offloaded = twin = None
    if is_prequantised(optimised):
        from compiler.codegen.int8 import partition_int8

        if quant is not None:
            raise CompilerError(f"{source}: the model is already quantised (QDQ or QLinear operators); "
                                "build it without --quantize and its own scales are used")
        spec = spec or integer_spec(model)
        native = to_nhwc(quantize_float_bias(optimised))  # PT2E leaves conv biases float
        partitioned = prequantised_tables(fold_constants(fold_transposes(native)), spec)
        if model_origin(model) != "tflite":  # a TFLite model's MEAN stays as its converter wrote it
            partitioned = spec_form(partitioned, spec)
        offloaded = partition_int8(partitioned, spec)
        clock.lap("partition")
        lowered = _host_int8(target, offloaded)
        clock.lap("int8 codegen")
    elif quant is not None and quant.scheme == "dynamic":
        partitioned = lowered = dynamic_quant(optimised)
        clock.lap("dynamic quantisation")
    elif quant is not None and quant.scheme == "fp16":
        partitioned = partition(optimised, target.fusion_families)
        lowered = fp16_weights(partitioned)
        clock.lap("float16 weights")
    elif quant is None:
        library = _float_library(target, note)
        # a TFLite model is NHWC: its float layers stay NHWC (its converter's transpose pairs cancel);
        # oneDNN's convolutions are fast on NHWC tensors (codegen/dnnl.py)
        nhwc = model_origin(model) == "tflite" or library is not None
        native = fold_constants(fold_transposes(to_nhwc(optimised))) if nhwc else optimised
        if library is not None:
            native = library.offload_float_convs(native)
        partitioned = partition(native, target.fusion_families)
        clock.lap("partition")
        lowered = partitioned if library is None else library.run_codegen(partitioned)
    else:
        from compiler.codegen.int8 import partition_int8

        equalized, pairs = _equalized(optimised, quant, note)
        partitioned = partition(fold_constants(fold_transposes(to_nhwc(equalized))), target.int8_families)
        clock.lap("partition")
        quantised = quantise(partitioned, [value.name for value in graph_inputs(model)], quant, spec == TFLITE)
        clock.lap("quantise")
        spec = spec or ONNX
        quantised = dataclasses.replace(quantised, qdq=spec_form(quantised.qdq, spec), equalized=pairs)
        offloaded = partition_int8(quantised.qdq, spec)
        twin = _prefetched_probe(partitioned, quantised, spec) if probe else None
        lowered = _host_int8(target, offloaded)
        clock.lap("int8 codegen")
    executable = None
    if target.runner == "relax-vm":  # other targets build their own artefact from the modules (coral/build.py)
        scheduled = lowered
        if host_tuning_db is not None:
            from compiler.tune.host import apply_host_tuning

            scheduled = apply_host_tuning(lowered, target.tvm(), host_tuning_db, note=note)
            clock.lap("apply tuning")
        executable = tvm.compile(scheduled, target=target.tvm())
        clock.lap("codegen")
    seconds = dict(clock.seconds, total=sum(clock.seconds.values()))
    return CompiledModel(model, target, imported, optimised, partitioned, executable, seconds, quantised, offloaded,
                         lowered, spec or ONNX, twin)


def _prefetched_probe(partitioned: tvm.IRModule, quantised: Quantised, spec: str) -> tuple:
    """quant/evaluate.py's int8_twin, its C compile started (it runs while the deployed module's
    compiles: two compiler processes)."""
    from compiler.codegen.int8 import NPU_REF
    from compiler.quant.evaluate import int8_twin, twin_cflags

    module, ids = int8_twin(partitioned, quantised, spec)
    NPU_REF.prefetch(module, {"cflags": twin_cflags(module)})
    return module, ids


def _host_int8(target: Target, offloaded: tvm.IRModule) -> tvm.IRModule | None:
    """The int8 module with its kernels compiled, when the target runs it (the host); other targets
    build their artefact from `offloaded`, and CompiledModel.lowered makes it only when asked."""
    from compiler.codegen.int8 import run_codegen

    return run_codegen(offloaded) if target.runner == "relax-vm" else None
