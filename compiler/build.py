"""`build`: compile a model file and write the output directory.

The directory is assembled in a staging folder beside OUT and moved into place only
when every file is written, so a failed build never leaves an OUT that looks finished.
Which OUT is acceptable, and when an existing one may be replaced: compiler/output_dir.py.
"""

import json
import zipfile
from pathlib import Path

import numpy as np
import onnx
import tvm

from compiler.backends import REPORT_KEY as BACKEND_REPORT_KEY, backend_for, is_backend
from compiler.compile_model import compile_model
from compiler.export.verify import write_tflite
from compiler.errors import CompilerError
from compiler.frontend import load_model, parse_input_shapes
from compiler.names import shown
from compiler.output_dir import checked_output, staging_dir
from compiler.report.graph_onnx import export_graph
from compiler.report.markdown import render_markdown
from compiler.quant.integer_spec import TFLITE
from compiler.report.summary import summarise
from compiler.targets import get_target

REPORT_JSON = "report.json"


def build(model_path, target_name: str, out_dir, input_shape_specs=(), quant=None, val_path=None, memory=None,
          warn=None, firmware_options=None, tuning_db=(), emit=(), model=None) -> dict:
    """`firmware_options`: extra build_firmware arguments for coral-npu (coral/build.py);
    `tuning_db`: tuning database files (`python -m compiler tune`) whose best schedules to use;
    `emit`: extra artefacts ("tflite": OUT/model.tflite, export/tflite.py);
    `model`: an ONNX model already in memory (compiler.api: a torch module), `model_path` then only names it."""
    target = get_target(target_name)
    tuning = _load_tuning(tuning_db, target, warn) if tuning_db else None
    host_tuning_db = tuning if target.runner == "relax-vm" else None
    if memory is not None and (target.runner == "relax-vm" or is_backend(target.runner)):
        raise CompilerError(f"--memory {memory}: target {target.name} has no memory profiles (coral-npu has)")
    shapes = parse_input_shapes(input_shape_specs)
    out = checked_output(out_dir, inputs=build_inputs(model_path if model is None else None, quant, val_path, tuning_db))
    if val_path is not None and quant is None:
        raise CompilerError("--val: only meaningful with --quantize int8 (it measures the accuracy drop)")
    if quant is not None and quant.scheme in RUNTIME_SCHEMES and target.runner != "relax-vm":
        raise CompilerError(f"--quantize {quant.scheme}: runs on the host target only ({target.name} runs int8 "
                            "kernels: use --quantize int8 with --calib)")
    if quant is not None and quant.accuracy_budget is not None and val_path is None:
        raise CompilerError("--accuracy-budget: needs --val DATA.npz (the budget is top-1 points lost on those samples)")
    exports_int8 = "tflite" in emit or is_backend(target.runner)  # an export holding int8 tensors only
    if quant is not None and quant.int16_layers and exports_int8:
        where = "--emit tflite" if "tflite" in emit else f"target {target.name}"
        raise CompilerError(f"--int16: {where} takes int8 layers only (TFLite's 16x8 layers are not exported); "
                            "build without --int16")
    model = load_model(model_path) if model is None else model
    validation = _load_validation(val_path, model) if val_path is not None else None
    # what the build computes: the exported file's spec, or a vendor backend's (its artefact's)
    spec = TFLITE if "tflite" in emit else (backend_for(target).INTEGER_SPEC if is_backend(target.runner) else None)
    recompile = lambda q, probe=False: compile_model(model, target, shapes, source=shown(model_path),  # noqa: E731
                                                     quant=q, host_tuning_db=host_tuning_db, note=warn, spec=spec,
                                                     probe=probe)
    # a calibrated build measures its layer errors on an instrumented twin (_measure_quantisation);
    # the budget search measures its candidates its own way
    compiled = recompile(quant, probe=quant is not None and quant.scheme == "int8" and quant.accuracy_budget is None)
    budget = None
    if quant is not None and quant.accuracy_budget is not None:
        from compiler.accuracy_budget import meet_budget

        from compiler.budget_cost import target_cost

        images, _, input_shape = validation
        cost = target_cost(target, memory, images[0].reshape(input_shape), warn, tuning=tuning)
        compiled, budget = meet_budget(compiled, validation, recompile, progress=quant.progress, cost=cost,
                                       int16=not exports_int8)
    # exported before OUT is staged (an export error leaves no OUT); a backend whose artefact is the export writes it
    backend_writes_tflite = is_backend(target.runner) and getattr(backend_for(target), "WRITES_TFLITE", False)
    tflite = _export_tflite(compiled) if "tflite" in emit and not backend_writes_tflite else None
    with staging_dir(out) as staging:
        coral = vendor = None
        if compiled.executable is not None:
            compiled.executable.export_library(str(staging / target.artefact))
        elif is_backend(target.runner):
            vendor = backend_for(target).build(compiled, staging, target, warn)
        else:  # before measuring accuracy: a model that does not fit the chip fails early
            from compiler.coral.build import build_firmware

            coral = build_firmware(compiled, staging, memory, warn=warn, tuning=tuning, **(firmware_options or {}))
        calibrated = quant is not None and quant.scheme == "int8"
        artefact = staging / target.artefact if compiled.executable is not None else None
        quantisation = _measure_quantisation(compiled, validation, artefact) if calibrated else None
        report = summarise(compiled, model_path, quantisation)
        if quantisation is not None:
            from compiler.report.plots import sqnr_plot

            report["quantization"]["plots"] = sqnr_plot(quantisation["layer_errors"], staging)
        if quant is not None and quant.scheme in RUNTIME_SCHEMES:
            report["reduced_precision"] = _measure_reduced_precision(compiled, validation, quant.scheme)
        if budget is not None:
            from compiler.report.plots import budget_plots

            budget["plots"] = budget_plots(budget, quantisation["layer_errors"], staging)
            report["quantization"]["accuracy_budget"] = budget
        if coral is not None:
            report["coral"] = coral
        if vendor is not None:
            if "tflite" in vendor:  # a backend made its artefact from the TFLite export: reported as --emit tflite's
                report["tflite"] = vendor.pop("tflite")
            report[BACKEND_REPORT_KEY] = vendor
        if tflite is not None:
            report["tflite"] = write_tflite(tflite, compiled, staging, warn)
        (staging / REPORT_JSON).write_text(json.dumps(report, indent=2) + "\n")
        (staging / "report.md").write_text(render_markdown(report) + "\n")
        onnx.save(export_graph(_graph_module(compiled), Path(model_path).stem), str(staging / "graph.onnx"))
    return report


def _export_tflite(compiled) -> bytes:
    """The int8 build as .tflite bytes (before anything is written: an export error leaves no OUT)."""
    from compiler.export.tflite import export_tflite

    if compiled.qdq is None:
        raise CompilerError("--emit tflite: the export writes an int8 model; build with --quantize int8 (or from a "
                            "quantised model)")
    return export_tflite(compiled.qdq)


def _load_tuning(paths, target, warn):
    """coral-npu: the merged database; host: the one FILE whose FILE.metaschedule/ holds
    MetaSchedule's records (compile_model applies them)."""
    if target.runner == "relax-vm":
        from compiler.tune.host import metaschedule_dir

        if len(paths) > 1:
            raise CompilerError(f"--tuning-db: target {target.name} takes one database (MetaSchedule's records of "
                                "several runs merge in it)")
        if not metaschedule_dir(paths[0]).is_dir():
            raise CompilerError(f"--tuning-db {paths[0]}: no host records ({metaschedule_dir(paths[0])} is missing; "
                                f"write them with `python -m compiler tune --target {target.name}`)")
        return Path(paths[0])
    from compiler.tune.database import load

    database = load(paths, target)
    for note in database.notes():
        if warn is not None:
            warn(note)
    return database


def _graph_module(compiled):
    """What graph.onnx shows: the fused groups, or for an int8 build one node per int8 kernel."""
    if compiled.offloaded is None:
        return compiled.partitioned
    from compiler.codegen.int8 import int8_groups

    return int8_groups(compiled.qdq, compiled.integer_spec)


def _measure_quantisation(compiled, validation, artefact=None):
    """Layer errors and --val's top-1. `artefact`: the host build's library as written (its int8
    top-1 runs that file: loading it costs a millisecond, a VM of the in-memory executable an LLVM
    JIT of the whole module, 0.1 s on the digits CNN)."""
    from compiler.quant.calibrate import Probe
    from compiler.quant.evaluate import compiled_twin, int8_twin, layer_errors, module_runner, top1_accuracy, vm_runner
    from compiler.report.quant_summary import summarise_quantisation

    quantised = compiled.quantised
    progress = quantised.config.progress
    # compile_model's twin has its C compiled beside the deployed module's; a budget search's is made here
    module, ids = compiled.probe or int8_twin(compiled.partitioned, quantised, compiled.integer_spec)
    float_probe, int8_probe = quantised.float_probe, Probe(compiled_twin(module), ids)
    errors = layer_errors(float_probe, int8_probe, quantised.held_out, progress=progress)
    accuracy = None
    if validation is not None:
        images, labels, shape = validation
        _check_label_range(compiled, labels)
        if quantised.config.io != "float":  # integer I/O: the QDQ module as written, fed float images
            int8_runner = module_runner(compiled.lowered)
        elif artefact is not None:  # the host build itself
            int8_runner = vm_runner(tvm.relax.VirtualMachine(tvm.runtime.load_module(str(artefact)), tvm.cpu()))
        elif compiled.executable is not None:
            int8_runner = vm_runner(tvm.relax.VirtualMachine(compiled.executable, tvm.cpu()))
        else:  # the instrumented int8 module's output is the build's (same kernels, same QDQ)
            int8_runner = int8_probe.output
        accuracy = top1_accuracy(float_probe.output, int8_runner, images, labels, shape, progress=progress)
    return summarise_quantisation(compiled, errors, accuracy)


def _measure_reduced_precision(compiled, validation, mode: str) -> dict:
    """--quantize dynamic / fp16: what was reduced, the bytes, and top-1 against float on --val."""
    from compiler.analysis import module_param_bytes
    from compiler.quant.evaluate import module_runner, top1_accuracy

    accuracy = None
    if validation is not None:
        images, labels, shape = validation
        _check_label_range(compiled, labels)
        accuracy = top1_accuracy(module_runner(compiled.optimised), module_runner(compiled.lowered), images, labels,
                                 shape)
    scheme, count = RUNTIME_SCHEMES[mode]
    return {"mode": mode, "scheme": scheme, "reduced": count(compiled.optimised),
            "model_bytes": {"float": module_param_bytes(compiled.optimised), mode: module_param_bytes(compiled.lowered)},
            "accuracy": accuracy}


def _dynamic_layers(mod) -> int:
    from compiler.passes.dynamic_quant import dynamic_layers

    return dynamic_layers(mod)


def _halved_constants(mod) -> int:
    from compiler.passes.fp16_weights import halved_constants

    return halved_constants(mod)


# --quantize mode -> (what report.md says it computes, counter of what it reduced)
RUNTIME_SCHEMES = {
    "dynamic": ("int8 weights (per channel, symmetric) x activations quantised per tensor at run time (uint8 "
                "asymmetric, as ONNX Runtime's DynamicQuantizeLinear), int32 sums, float elsewhere", _dynamic_layers),
    "fp16": ("float16 weights and biases, widened to float32 at run time; float32 arithmetic (TFLite's float16 "
             "quantisation as its CPU kernels run it)", _halved_constants),
}


def _check_label_range(compiled, labels) -> None:
    """Every label must name one of the model's classes (the last dimension of its output)."""
    output = compiled.partitioned["main"].ret_ty
    if isinstance(output, tvm.relax.TensorType) and isinstance(output.shape, tvm.relax.ShapeExpr):
        _check_classes(labels, int(output.shape.values[-1]))


def _check_classes(labels, classes: int) -> None:
    if labels.max() >= classes:
        raise CompilerError(f"--val: label {int(labels.max())} is out of range: the model's output has {classes} "
                            "classes (labels count from 0)")


def _load_validation(path, model):
    """(images, labels, input shape) from an .npz holding the input (by its name, or the only
    non-label array) and integer labels under "label" or "labels"."""
    from compiler.frontend.onnx import graph_inputs

    path = Path(path)
    if not path.is_file():
        raise CompilerError(f"--val {shown(path)}: no such file")
    inputs = graph_inputs(model)
    if len(inputs) != 1:
        raise CompilerError(f"--val {shown(path)}: accuracy needs a single-input model (this one has {len(inputs)})")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise CompilerError(f"--val {shown(path)}: not a readable .npz file ({shown(err)})") from None
    label_key = next((k for k in ("label", "labels") if k in arrays), None)
    others = [k for k in arrays if k != label_key]
    image_key = inputs[0].name if inputs[0].name in arrays else (others[0] if len(others) == 1 else None)
    if label_key is None or image_key is None:
        raise CompilerError(f"--val {shown(path)}: expected arrays '{shown(inputs[0].name)}' (or one input array) and "
                            f"'label' (has: {', '.join(shown(name) for name in list(arrays)[:10])})")
    images, labels = arrays[image_key], arrays[label_key]
    shape = tuple(d.dim_value for d in inputs[0].type.tensor_type.shape.dim)
    if images.ndim == 0 or labels.ndim == 0 or len(images) == 0:
        raise CompilerError(f"--val {shown(path)}: no samples")
    if len(images) != len(labels) or images[0].size != int(np.prod(shape)) or images.dtype != np.float32:
        raise CompilerError(f"--val {shown(path)}: '{shown(image_key)}' is {images.dtype} {images.shape} with "
                            f"{len(labels)} labels; expected float32 samples of shape {shape}, one label each")
    if labels.ndim != 1 or labels.dtype.kind not in "iu" or labels.min() < 0:
        raise CompilerError(f"--val {shown(path)}: '{label_key}' must hold one class index (an integer >= 0) per sample")
    if not np.isfinite(images).all():
        raise CompilerError(f"--val {shown(path)}: the samples hold NaN or infinite values")
    declared = [d.dim_value if d.HasField("dim_value") else 0 for d in model.graph.output[0].type.tensor_type.shape.dim]
    if declared and declared[-1] > 0:
        _check_classes(labels, declared[-1])
    return images, labels, shape


def build_inputs(model_path, quant=None, val_path=None, tuning_db=()) -> list:
    """The files a build reads: OUT may not be, or contain, any of their folders."""
    calib = quant.calib if quant is not None and quant.calib != "random" else None
    return [model_path, calib, val_path, *tuning_db]
