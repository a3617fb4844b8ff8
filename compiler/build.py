"""`build`: compile a model file and write the output directory.

The directory is assembled in a staging folder beside OUT and moved into place only
when every file is written, so a failed build never leaves an OUT that looks finished.
An existing OUT is replaced only if it is an earlier build (it holds report.json).
"""

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import onnx

from compiler.compile import compile_model
from compiler.errors import CompilerError
from compiler.frontend import load_onnx, parse_input_shapes
from compiler.report.graph_onnx import export_graph
from compiler.report.markdown import render_markdown
from compiler.report.summary import summarise
from compiler.targets import get_target

REPORT_JSON = "report.json"


def build(model_path, target_name: str, out_dir, input_shape_specs=(), quant=None, val_path=None, memory=None,
          warn=None, firmware_options=None, tuning_db=()) -> dict:
    """`firmware_options`: extra build_firmware arguments for coral-npu (coral/build.py);
    `tuning_db`: tuning database files (`python -m compiler tune`) whose best schedules to use."""
    target = get_target(target_name)
    tuning = _load_tuning(tuning_db, target, warn) if tuning_db else None
    host_tuning_db = tuning if target.runner == "relax-vm" else None
    if memory is not None and target.runner == "relax-vm":
        raise CompilerError(f"--memory {memory}: target {target.name} has no memory profiles (coral-npu has)")
    shapes = parse_input_shapes(input_shape_specs)
    out = Path(out_dir)
    check_replaceable(out)
    if val_path is not None and quant is None:
        raise CompilerError("--val: only meaningful with --quantize int8 (it measures the accuracy drop)")
    model = load_onnx(model_path)
    validation = _load_validation(val_path, model) if val_path is not None else None
    compiled = compile_model(model, target, shapes, source=str(model_path), quant=quant, host_tuning_db=host_tuning_db,
                             note=warn)
    quantisation = _measure_quantisation(compiled, validation) if quant is not None else None
    report = summarise(compiled, model_path, quantisation)
    with staging_dir(out) as staging:
        if compiled.executable is not None:
            compiled.executable.export_library(str(staging / target.artefact))
        else:
            from compiler.coral.build import build_firmware

            report["coral"] = build_firmware(compiled, staging, memory, warn=warn, tuning=tuning,
                                             **(firmware_options or {}))
        (staging / REPORT_JSON).write_text(json.dumps(report, indent=2) + "\n")
        (staging / "report.md").write_text(render_markdown(report) + "\n")
        onnx.save(export_graph(_graph_module(compiled), Path(model_path).stem), str(staging / "graph.onnx"))
    return report


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

    source = compiled.quantised.qdq if compiled.quantised is not None else compiled.partitioned
    return int8_groups(source)


def _measure_quantisation(compiled, validation):
    from compiler.codegen.int8 import offload_int8
    from compiler.quant.evaluate import layer_errors, top1_accuracy
    from compiler.report.quant_summary import summarise_quantisation

    progress = compiled.quantised.config.progress
    errors = layer_errors(compiled.partitioned, compiled.quantised, offload_int8, progress=progress)
    accuracy = None
    if validation is not None:
        images, labels, shape = validation
        accuracy = top1_accuracy(compiled.partitioned, offload_int8(compiled.quantised.qdq), images, labels, shape,
                                 progress=progress)
    return summarise_quantisation(compiled, errors, accuracy)


def _load_validation(path, model):
    """(images, labels, input shape) from an .npz holding the input (by its name, or the only
    non-label array) and integer labels under "label" or "labels"."""
    from compiler.frontend.onnx import graph_inputs

    path = Path(path)
    if not path.is_file():
        raise CompilerError(f"--val {path}: no such file")
    inputs = graph_inputs(model)
    if len(inputs) != 1:
        raise CompilerError(f"--val {path}: accuracy needs a single-input model (this one has {len(inputs)})")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (ValueError, OSError) as err:
        raise CompilerError(f"--val {path}: not a readable .npz file ({err})")
    label_key = next((k for k in ("label", "labels") if k in arrays), None)
    others = [k for k in arrays if k != label_key]
    image_key = inputs[0].name if inputs[0].name in arrays else (others[0] if len(others) == 1 else None)
    if label_key is None or image_key is None:
        raise CompilerError(f"--val {path}: expected arrays '{inputs[0].name}' (or one input array) and 'label' "
                            f"(has: {', '.join(arrays)})")
    images, labels = arrays[image_key], arrays[label_key]
    shape = tuple(d.dim_value for d in inputs[0].type.tensor_type.shape.dim)
    if len(images) != len(labels) or images[0].size != int(np.prod(shape)) or images.dtype != np.float32:
        raise CompilerError(f"--val {path}: '{image_key}' is {images.dtype} {images.shape} with {len(labels)} labels; "
                            f"expected float32 samples of shape {shape}, one label each")
    return images, labels, shape


def check_replaceable(out: Path):
    if out.exists() and not (out.is_dir() and (not any(out.iterdir()) or (out / REPORT_JSON).is_file())):
        raise CompilerError(f"-o {out}: exists and is not an earlier build output (no {REPORT_JSON}); choose another directory")


class staging_dir:
    """Context manager: a temporary folder next to `out` that replaces it on success."""

    def __init__(self, out: Path):
        self.out = out

    def __enter__(self) -> Path:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.partial-", dir=self.out.parent))
        return self.path

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            shutil.rmtree(self.path, ignore_errors=True)
            return False
        if self.out.exists():
            shutil.rmtree(self.out)
        self.path.rename(self.out)
        return False
