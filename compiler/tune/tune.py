"""`python -m compiler tune MODEL --target coral-npu ... --tuning-db FILE -o OUT`; any RVV target
(coral-npu, rvv256-rv64: the Coral backend) tunes this way, its [isa] shaping the space; host
tunes with MetaSchedule (host.py).

    model -> compile (as `build`) -> firmware graph -> one task per distinct kernel workload
      -> each task: the default schedule measured, then the search (search.py) within its
         share of --trials / --time-budget (shares follow the default's instruction count
         times the number of layers using the workload: where the instructions are)
      -> the best schedule per workload appended to FILE (database.py)
      -> OUT: the model built with FILE, and with the defaults, both run in QEMU on the same
         input; report.json/.md gain a "tuning" section: per layer default vs tuned
         instructions and the total, from the firmware runs (exact, whole model)
"""

import math
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from compiler.build import build, build_inputs
from compiler.names import shown
from compiler.output_dir import checked_output, write_text_atomic
from compiler.codegen.int8 import int8_groups
from compiler.coral import codegen
from compiler.coral.build import qdq_module
from compiler.coral.firmware import RESERVED_DTCM
from compiler.coral.graph import extract_graph
from compiler.coral.memory import profile_for
from compiler.compile_model import compile_model
from compiler.errors import CompilerError
from compiler.frontend import load_model, parse_input_shapes
from compiler.targets import get_target
from compiler.tune import database
from compiler.tune.apply import kernel_steps, step_workload
from compiler.tune.measure import Measurer, Task
from compiler.tune.search import CostModel, Search
from compiler.tune.space import Space
from compiler.tune.status import StatusLine


DEFAULT_TRIALS = 1000


@dataclass
class TuneOptions:
    trials: int | None = DEFAULT_TRIALS  # candidates measured in all, across tasks (None: no limit)
    time_budget: float | None = None  # seconds for the search (building and the final runs come on top)
    seed: int = 0
    patience: int = 6               # rounds without a better schedule before a task stops
    jobs: int | None = None         # parallel measurements (default: every core)


def tune_model(model_path, target_name: str, out_dir, db_path, quant=None, memory=None, input_shapes=(),
               options: TuneOptions = TuneOptions(), warn=None) -> dict:
    target = get_target(target_name)
    if options.trials is not None and options.trials < 1:
        raise CompilerError(f"--trials {options.trials}: must be at least 1")
    if options.trials is None and options.time_budget is None:
        raise CompilerError("tuning needs a limit: --trials N or --time-budget DURATION")
    if memory is not None and target.runner == "relax-vm":
        raise CompilerError(f"--memory {memory}: target {target.name} has no memory profiles (coral-npu has)")
    checked_output(out_dir, build_inputs(model_path, quant, tuning_db=[db_path]))  # before the search, not after it
    model = load_model(model_path)
    if "simulator" in target.data and codegen.family(target) != "rvv":  # before the long part
        raise CompilerError(f"tune --target {target.name}: its {codegen.family(target)} kernels have no schedule "
                            "knobs to tune (the tuner searches the RVV kernels' tiles)")
    compiled = compile_model(model, target, parse_input_shapes(input_shapes), source=shown(model_path), quant=quant)
    if target.runner == "relax-vm":
        return _tune_host(compiled, model_path, target, out_dir, db_path, quant, input_shapes, options, warn)
    graph = extract_graph(int8_groups(qdq_module(compiled), compiled.integer_spec))
    rng = np.random.default_rng(options.seed)
    tasks = make_tasks(graph, rng, target)
    data_bytes = _data_bytes(target, memory)
    known = _known_schedules(db_path, target, warn)
    with tempfile.TemporaryDirectory(prefix="tune-") as work:
        # The default build first: a model that does not fit the memory profile fails now, not
        # after the search.
        default_dir = Path(work) / "default"
        build(model_path, target_name, default_dir, input_shapes, quant=quant, memory=memory)
        started = time.monotonic()
        measurer = Measurer(Path(work) / "measure", options.jobs, profile=profile_for(target, memory).name,
                            target=target)
        results = _search(tasks, data_bytes, known, measurer, rng, options, started)
        search_seconds = time.monotonic() - started
        database.append(db_path, [database.record(target, r.task.workload, r.best.schedule, r.best.instructions,
                                                  r.default.instructions, options.seed) for r in results])
        report = _whole_model(model_path, target_name, out_dir, default_dir, db_path, quant, memory, input_shapes)
    report["tuning"].update(_summary(results, search_seconds, options, db_path))
    _rewrite_report(Path(out_dir), report)
    return report


def _tune_host(compiled, model_path, target, out_dir, db_path, quant, input_shapes, options, warn) -> dict:
    """MetaSchedule on the LLVM-compiled PrimFuncs (compiler/tune/host.py), its records in
    FILE.metaschedule/, a summary line per task in FILE; OUT: the model built with them."""
    from compiler.tune.host import metaschedule_dir, tune_host

    started = time.monotonic()
    # MetaSchedule shares its trials out between tasks up front: it needs a number.
    trials = options.trials if options.trials is not None else DEFAULT_TRIALS
    rows = tune_host(compiled.lowered, target.tvm(), Path(db_path), trials, options.time_budget, options.seed,
                     progress=lambda line: print(line, file=sys.stderr, flush=True))
    seconds = time.monotonic() - started
    database.append(db_path, [database.host_record(target, row, metaschedule_dir(Path(db_path)), options.seed)
                              for row in rows])
    report = build(model_path, target.name, out_dir, input_shapes, quant=quant, warn=warn, tuning_db=[db_path])
    default = sum(row["default_us"] for row in rows)
    tuned = sum(row["tuned_us"] for row in rows)
    report["tuning"] = {"database": str(db_path), "metaschedule": str(metaschedule_dir(Path(db_path))),
                        "search_seconds": round(seconds, 1), "seed": options.seed,
                        "trials": sum(row["trials"] for row in rows), "host_tasks": rows,
                        "default_total_us": default, "tuned_total_us": tuned,
                        "ratio": round(tuned / default, 4) if default else 1.0}
    _rewrite_report(Path(out_dir), report)
    return report


def make_tasks(graph, rng, target=None) -> list[Task]:
    """One task per distinct workload, with its first layer's constants and seeded random inputs."""
    tasks: dict = {}
    for step in kernel_steps(graph):
        workload = step_workload(step)
        if workload.key in tasks:
            tasks[workload.key].layers.append(step.name)
            continue
        kernel = step.kernel
        try:
            codegen.default_schedule(kernel.kernel, kernel.params, target)
        except codegen.SpecError:
            continue  # runs on kernels/ref: nothing to tune
        inputs = [_random_input({"shape": graph.tensors[i].shape, "dtype": graph.tensors[i].dtype}, rng)
                  for i in step.inputs]
        tasks[workload.key] = Task(workload, kernel.kernel, kernel.params, kernel.arrays, inputs,
                                   graph.tensors[step.output].shape, [step.name])
    return list(tasks.values())


def _data_bytes(target, memory) -> int:
    """The data memory (coral-npu's DTCM, rvv256-rv64's DRAM: the profile's data region) a
    layer's buffers can have: the region minus stack and runtime."""
    profile = profile_for(target, memory)
    return profile.region_for("data").size - profile.stack - RESERVED_DTCM


def _scratch_budget(task: Task, data_bytes: int) -> int:
    """The DTCM budget rule: a candidate's scratch must fit beside the layer's own input and
    output (what is live with it at least; the build still checks the whole plan)."""
    tensors = sum(np.asarray(x).nbytes for x in task.inputs) + int(np.prod(task.output_shape))
    return max(data_bytes - tensors, 0)


def _known_schedules(db_path, target, warn) -> dict:
    if not Path(db_path).is_file():
        return {}
    db = database.load([db_path], target)
    for note in db.notes():
        if warn:
            warn(note)
    return {key: row["schedule"] for key, row in db.best.items()}


def _search(tasks, data_bytes, known, measurer, rng, options, started) -> list:
    status = StatusLine(len(tasks))
    search = Search(measurer, CostModel(options.seed), rng, on_round=status.round)
    spaces = {task.workload.key: Space.for_task(task.kernel, task.params, _scratch_budget(task, data_bytes),
                                                measurer.target)
              for task in tasks}
    defaults = {}
    for task in tasks:
        status.measuring_default(task)
        defaults[task.workload.key] = search.measure_default(task, spaces[task.workload.key])
        failed = defaults[task.workload.key]
        if failed.instructions is None:
            raise CompilerError(f"{task.layers[0]}: the default schedule does not run: {failed.error}")
    weight = {task.workload.key: defaults[task.workload.key].instructions * len(task.layers) for task in tasks}
    order = sorted(tasks, key=lambda task: -weight[task.workload.key])
    states = {task.workload.key: search.start(task, defaults[task.workload.key],
                                              [known[task.workload.key]] if task.workload.key in known else [])
              for task in order}
    deadline = started + options.time_budget if options.time_budget else math.inf
    limit = options.trials if options.trials is not None else math.inf
    # Passes over the tasks, heaviest first, each task searching until it stops improving. A
    # later pass resumes every task where it stopped (with the model trained on everything
    # since): budget left by tasks that converged goes to the others. The run ends when a whole
    # pass improves nothing (or at the trial / time budget).
    # Ctrl-C ends the search, not the run: what was found so far is recorded and built.
    try:
        for number in range(_MAX_PASSES):
            improved = False
            for index, task in enumerate(order):
                used = sum(len(state.measured) for state in states.values())
                if used >= limit or time.monotonic() >= deadline:
                    break
                key = task.workload.key
                remaining = sum(weight[t.workload.key] for t in order[index:])
                share = weight[key] / remaining
                trials = len(states[key].measured) + (max(1, int((limit - used) * share)) if limit < math.inf
                                                      else math.inf)
                task_deadline = (time.monotonic() + (deadline - time.monotonic()) * share if options.time_budget
                                 else deadline)
                status.start(index, task, defaults[key], number)
                improved |= search.run(states[key], spaces[key], trials, task_deadline, options.patience)
                status.done(states[key])
            if not improved:
                break
    except KeyboardInterrupt:
        for state in states.values():
            state.stopped = state.stopped or "interrupted"
        status.interrupted(sum(len(state.measured) for state in states.values()))
    status.close()
    return [states[task.workload.key] for task in order]


_MAX_PASSES = 8


def _whole_model(model_path, target_name, out_dir, default_dir, db_path, quant, memory, input_shapes) -> dict:
    """Builds OUT with the database; runs it and the default build on one input."""
    from compiler.run.coral import run_coral

    out_dir = Path(out_dir)
    report = build(model_path, target_name, out_dir, input_shapes, quant=quant, memory=memory, warn=None,
                   tuning_db=[db_path])
    x = Path(default_dir) / "input.npz"
    rng = np.random.default_rng(0)
    np.savez(x, **{spec["name"]: _random_input(spec, rng) for spec in report["interface"]["inputs"]})
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
    """Data of a tensor's shape and dtype: int8 over its whole range, floats spread widely
    enough to hit both ends of any input quantisation (and everything in between)."""
    dtype = np.dtype(spec["dtype"])
    if dtype.kind == "f":
        return (rng.normal(0, 1, spec["shape"]) * 10.0 ** rng.uniform(-2, 2, spec["shape"])).astype(dtype)
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

    write_text_atomic(out_dir / REPORT_JSON, json.dumps(report, indent=2) + "\n")
    write_text_atomic(out_dir / "report.md", render_markdown(report) + "\n")
