"""`python -m compiler tune MODEL --target coral-npu ... --tuning-db FILE -o OUT`.

    model -> compile (as `build`) -> firmware graph -> one task per distinct kernel workload
      -> each task: the default schedule measured, then the search (search.py) within its
         share of --trials / --time-budget (shares follow the default's instruction count
         times the number of layers using the workload: where the instructions are)
      -> the best schedule per workload appended to FILE (database.py)
      -> OUT: the model built with FILE, and with the defaults, both run in QEMU on the same
         input; report.json/.md gain a "tuning" section: per layer default vs tuned
         instructions and the total, from the firmware runs (exact, whole model)
"""

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from compiler.build import build
from compiler.codegen.int8 import int8_groups
from compiler.coral import codegen
from compiler.coral.build import qdq_module
from compiler.coral.firmware import RESERVED_DTCM
from compiler.coral.graph import extract_graph
from compiler.coral.memory import profile_for
from compiler.compile import compile_model
from compiler.errors import CompilerError
from compiler.frontend import load_onnx, parse_input_shapes
from compiler.targets import get_target
from compiler.tune import database
from compiler.tune.apply import kernel_steps, step_workload
from compiler.tune.measure import Measurer, Task
from compiler.tune.search import CostModel, Search
from compiler.tune.space import Space
from compiler.tune.status import StatusLine


@dataclass
class TuneOptions:
    trials: int = 1000              # candidates measured in all, across tasks
    time_budget: float | None = None  # seconds for the search (building and the final runs come on top)
    seed: int = 0
    patience: int = 6               # rounds without a better schedule before a task stops
    jobs: int | None = None         # parallel measurements (default: every core)


def tune_model(model_path, target_name: str, out_dir, db_path, quant=None, memory=None, input_shapes=(),
               options: TuneOptions = TuneOptions(), warn=None) -> dict:
    target = get_target(target_name)
    if target.runner == "relax-vm":
        raise CompilerError(f"tune --target {target.name}: not supported yet")
    if options.trials < 1:
        raise CompilerError(f"--trials {options.trials}: must be at least 1")
    model = load_onnx(model_path)
    compiled = compile_model(model, target, parse_input_shapes(input_shapes), source=str(model_path), quant=quant)
    graph = extract_graph(int8_groups(qdq_module(compiled)))
    rng = np.random.default_rng(options.seed)
    tasks = make_tasks(graph, rng)
    budget = _scratch_budget(target, memory)
    known = _known_schedules(db_path, target, warn)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tune-") as work:
        results = _search(tasks, budget, known, Measurer(Path(work), options.jobs), rng, options, started)
    database.append(db_path, [database.record(target, r.task.workload, r.best.schedule, r.best.instructions,
                                              r.default.instructions, options.seed) for r in results])
    search_seconds = time.monotonic() - started
    report = _whole_model(model_path, target_name, out_dir, db_path, quant, memory, input_shapes)
    report["tuning"].update(_summary(results, search_seconds, options, db_path))
    _rewrite_report(Path(out_dir), report)
    return report


def make_tasks(graph, rng) -> list[Task]:
    """One task per distinct workload, with its first layer's constants and seeded random inputs."""
    tasks: dict = {}
    for step in kernel_steps(graph):
        workload = step_workload(step)
        if workload.key in tasks:
            tasks[workload.key].layers.append(step.name)
            continue
        kernel = step.kernel
        try:
            codegen.default_schedule(kernel.kernel, kernel.params)
        except codegen.SpecError:
            continue  # runs on kernels/ref: nothing to tune
        inputs = [rng.integers(-128, 128, size=graph.tensors[i].shape, dtype=np.int8) for i in step.inputs]
        tasks[workload.key] = Task(workload, kernel.kernel, kernel.params, kernel.arrays, inputs,
                                   graph.tensors[step.output].shape, [step.name])
    return list(tasks.values())


def _scratch_budget(target, memory) -> int:
    profile = profile_for(target, memory)
    return profile.region_for("data").size - profile.stack - RESERVED_DTCM


def _known_schedules(db_path, target, warn) -> dict:
    if not Path(db_path).is_file():
        return {}
    db = database.load([db_path], target)
    for note in db.notes():
        if warn:
            warn(note)
    return {key: row["schedule"] for key, row in db.best.items()}


def _search(tasks, budget, known, measurer, rng, options, started) -> list:
    status = StatusLine(len(tasks))
    search = Search(measurer, CostModel(options.seed), rng, on_round=status.round)
    spaces = {task.workload.key: Space.for_task(task.kernel, task.params, budget) for task in tasks}
    defaults = {}
    for task in tasks:
        status.measuring_default(task)
        defaults[task.workload.key] = search.measure_default(task, spaces[task.workload.key])
        failed = defaults[task.workload.key]
        if failed.instructions is None:
            raise CompilerError(f"{task.layers[0]}: the default schedule does not run: {failed.error}")
    weight = {key: default.instructions * len(next(t for t in tasks if t.workload.key == key).layers)
              for key, default in defaults.items()}
    order = sorted(tasks, key=lambda task: -weight[task.workload.key])
    results, trials_left = [], options.trials - len(tasks)
    deadline = started + options.time_budget if options.time_budget else float("inf")
    for number, task in enumerate(order):
        key = task.workload.key
        remaining = sum(weight[t.workload.key] for t in order[number:])
        share = weight[key] / remaining
        trials = max(2, int(trials_left * share)) if trials_left > 0 else 1
        task_deadline = time.monotonic() + (deadline - time.monotonic()) * share if options.time_budget else deadline
        status.start(number, task, defaults[key])
        result = search.tune(task, spaces[key], defaults[key], trials, task_deadline, options.patience,
                             known=[known[key]] if key in known else [])
        trials_left -= len(result.measured) - 1
        results.append(result)
        status.done(result)
    status.close()
    return results


def _whole_model(model_path, target_name, out_dir, db_path, quant, memory, input_shapes) -> dict:
    """Builds OUT with the database and a default build beside it; runs both on one input."""
    from compiler.run.coral import run_coral

    out_dir = Path(out_dir)
    report = build(model_path, target_name, out_dir, input_shapes, quant=quant, memory=memory, warn=None,
                   tuning_db=[db_path])
    with tempfile.TemporaryDirectory(prefix="tune-default-") as work:
        default_dir = Path(work) / "default"
        build(model_path, target_name, default_dir, input_shapes, quant=quant, memory=memory)
        x = Path(work) / "input.npz"
        rng = np.random.default_rng(0)
        arrays = {spec["name"]: _random_input(spec, rng) for spec in report["interface"]["inputs"]}
        np.savez(x, **arrays)
        tuned_run, default_run = run_coral(out_dir, [x]), run_coral(default_dir, [x])
    if any(not np.array_equal(a, b) for a, b in zip(tuned_run.outputs, default_run.outputs)):
        raise CompilerError("internal error: the tuned firmware's output differs from the default one's")
    rows = [{"index": t["index"], "name": t["name"], "op": t["op"], "macs": t["macs"],
             "default_instructions": d["instructions"], "tuned_instructions": t["instructions"]}
            for t, d in zip(tuned_run.layers, default_run.layers)]
    report["tuning"] = {"layers": rows, "default_total": default_run.total_instructions,
                        "tuned_total": tuned_run.total_instructions,
                        "ratio": round(tuned_run.total_instructions / default_run.total_instructions, 4)}
    return report


def _random_input(spec: dict, rng) -> np.ndarray:
    dtype = np.dtype(spec["dtype"])
    if dtype.kind == "f":
        return rng.normal(0, 1, spec["shape"]).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max + 1, size=spec["shape"], dtype=dtype)


def _summary(results, seconds, options, db_path) -> dict:
    return {"database": str(db_path), "search_seconds": round(seconds, 1), "seed": options.seed,
            "trials": sum(len(r.measured) for r in results),
            "rejected": sum(r.rejected for r in results),
            "tasks": [{"workload": r.task.workload.key, "layers": r.task.layers, "trials": len(r.measured),
                       "default_instructions": r.default.instructions, "tuned_instructions": r.best.instructions,
                       "schedule": r.best.schedule, "stopped": r.stopped} for r in results]}


def _rewrite_report(out_dir: Path, report: dict) -> None:
    import json

    from compiler.build import REPORT_JSON
    from compiler.report.markdown import render_markdown

    (out_dir / REPORT_JSON).write_text(json.dumps(report, indent=2) + "\n")
    (out_dir / "report.md").write_text(render_markdown(report) + "\n")
