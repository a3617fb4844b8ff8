"""MetaSchedule tuning for the host (LLVM) target.

What gets tuned. `build` compiles the host with `tvm.compile(lowered, target)`. For a CPU target
that runs Relax's default build pipeline, whose first passes (DispatchSampling, DispatchSortScan,
LegalizeOps) turn every Relax op still in `lowered` into a PrimFunc. That pipeline does not run
FuseOps/FuseTIR, so each op of a fused group becomes a PrimFunc of its own. Those PrimFuncs are
what LLVM compiles, untuned (TVM has no default CPU schedules), and what we tune. Int8 ops
offloaded to generated C are external functions and never show up.

tune_host:
  1. legalise `lowered` with those same passes (legalise_for_host);
  2. extract one MetaSchedule task per structurally distinct PrimFunc, reshapes aside (host_tasks);
  3. measure each task's default (untuned) PrimFunc with MetaSchedule's builder and runner and
     commit it to the database as a record whose trace changes nothing, so the default competes
     with the tuned schedules (_measure_defaults);
  4. tune the tasks with MetaSchedule (post-order-apply design spaces from the target's default
     rules, evolutionary search, XGBoost cost model, local builder and runner) into the same
     JSONDatabase in FILE.metaschedule/. Its two files are JSON lines that MetaSchedule only
     appends to, so runs merge. MetaSchedule's log of the last run goes to tune.log beside them.

apply_host_tuning legalises the same way, then Relax's MetaScheduleApplyDatabase replaces every
PrimFunc the database has a record for with its best record's schedule (the default's trace
leaves it as it is). tvm.compile then runs its pipeline again, finds nothing left to
legalise, and compiles the scheduled PrimFuncs.

FILE.metaschedule/manifest.json names the compiler version and target the records were measured
with: records for another version or target are neither applied nor extended.

Keep this module's imports light: MetaSchedule's builder processes import it to find
_build_candidate.
"""

import importlib.util
import json
import logging
import math
import os
import platform
import shutil
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import tvm
from tvm import relax
from tvm.ir.utils import derived_object
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.meta_schedule.measure_callback import PyMeasureCallback
from tvm.s_tir.meta_schedule.task_scheduler import PyTaskScheduler
from tvm.s_tir.meta_schedule.utils import cpu_count, fork_seed

from compiler import __version__
from compiler.errors import CompilerError

MANIFEST = "manifest.json"
LOG = "tune.log"
_BATCH = 64  # MetaSchedule's default number of candidates per search iteration
_POPULATION = 512  # MetaSchedule's default evolutionary population
_MS_LOGGER = "tvm.s_tir.meta_schedule"


def metaschedule_dir(db_path: Path) -> Path:
    """Where MetaSchedule's database lives beside our JSONL database FILE: FILE + '.metaschedule/'."""
    return Path(str(db_path) + ".metaschedule")


def legalise_for_host(lowered: tvm.IRModule, target: tvm.target.Target) -> tvm.IRModule:
    """`lowered` after the passes tvm.compile's CPU pipeline starts with (relax.pipeline.default_build_pipeline):
    every Relax op is now a PrimFunc called through call_tir, which is what LLVM compiles."""
    passes = [relax.backend.DispatchSampling(), relax.backend.DispatchSortScan(), relax.transform.LegalizeOps()]
    with target:  # as relax.build runs them
        return tvm.transform.Sequential(passes)(lowered)


def host_tasks(lowered: tvm.IRModule, target: tvm.target.Target) -> list:
    """One MetaSchedule ExtractedTask per structurally distinct PrimFunc of the legalised module, named
    after (the first of) its PrimFuncs; task.dispatched[0] is the PrimFunc as a module with "main".

    PrimFuncs that only reshape are left out: the build turns their calls into views of the input
    (RewriteDataflowReshape), so no kernel of theirs ever runs."""
    legalised = legalise_for_host(lowered, target)
    tasks = ms.relax_integration.extract_tasks(legalised, _tuning_target(target))
    return [task for task in tasks if not relax.analysis.has_reshape_pattern(task.dispatched[0]["main"])]


def tune_host(lowered: tvm.IRModule, target: tvm.target.Target, db_path: Path, trials: int, time_budget: float | None,
              seed: int, progress=None) -> list[dict]:
    """Tunes every LLVM-compiled task of `lowered` with MetaSchedule into metaschedule_dir(db_path).

    Trials: `trials` is the most this run measures, across tasks. Each task may take at most
    max(1, trials // tasks) and a search iteration measures min(64, that) candidates, so the total
    never passes `trials` (with more trials than tasks, the remainder of the division goes unused).
    A task also stops when its search has nothing new to offer (an elementwise op's space runs
    out after a few schedules). Tasks take turns (round robin, in extraction order): with fewer
    trials than tasks, the last tasks get none.

    Time budget: MetaSchedule's own schedulers only count trials, so a round-robin scheduler of ours
    hands out no new iteration once `time_budget` seconds since tune_host started, or the expected
    length of one more iteration (the search's average so far), would be passed. The iterations
    already building or running finish and are recorded. The first iteration always runs, so a
    budget shorter than MetaSchedule's start-up plus one iteration (64 candidates: half a minute on
    2 cores) is overrun by it; give fewer trials for a shorter run.

    Returns one row per task: {"task", "trials" (this run's), "default_us", "tuned_us"}, both
    latencies MetaSchedule's own measurements (LocalRunner in a separate process: the mean of a
    record's run_secs, each the average of back-to-back calls lasting at least 100 ms): default_us
    of the untuned PrimFunc, measured in this run before the search; tuned_us of the task's best
    record in the database, from any run. This run's default measurement is itself a record, so
    tuned_us <= default_us, and where no schedule beat the default, the default is what gets built.
    default_us is NaN if the default could not be measured (the runner timed out).

    progress(message) gets a line when the defaults are measured, after every measured iteration
    ("host tuning: 128/1000 trials, 95 s (last: matmul)") and at the end.

    The first tuning in a process also pays for registering this CPU's tensor intrinsics (a few
    seconds: _register_cpu_intrinsics), which the time budget counts."""
    _check_arguments(target, trials, time_budget)
    clock = _Clock(time_budget)
    _register_cpu_intrinsics()
    say = progress or (lambda message: None)
    tasks = host_tasks(lowered, target)
    if not tasks:
        say("host tuning: no LLVM-compiled PrimFuncs to tune")
        return []
    directory = _prepare_directory(db_path, target)
    database = _open_database(directory)
    say(f"host tuning: {len(tasks)} tasks ({', '.join(task.task_name for task in tasks)}), {trials} trials")
    counter = _TrialCounter([task.task_name for task in tasks], trials, clock, say)
    builder, runner = _builder(), ms.runner.LocalRunner()  # one runner worker: measurements must not share cores
    with _metaschedule_log(directory / LOG):
        defaults = _measure_defaults(tasks, database, builder, runner)
        say(f"host tuning: measured the default schedules, {clock.elapsed():.0f} s")
        _search(tasks, database, builder, runner, directory, trials, seed, clock, counter)
    stopped = " (stopped for the time budget)" if clock.stopped else ""
    say(f"host tuning: {sum(counter.trials)} trials in {clock.elapsed():.0f} s{stopped}")
    return [_row(task, count, database, default) for task, count, default in zip(tasks, counter.trials, defaults)]


def apply_host_tuning(lowered: tvm.IRModule, target: tvm.target.Target, db_path: Path, note=None) -> tvm.IRModule:
    """`lowered` with the best MetaSchedule records applied (what tvm.compile should then compile).

    Without metaschedule_dir(db_path), `lowered` comes back unchanged. So it does, after one
    note(...) line, when the manifest names another compiler version or target. Otherwise the
    result is legalised (see legalise_for_host) and every PrimFunc with a record is scheduled."""
    directory = metaschedule_dir(db_path)
    if not directory.is_dir():
        return lowered
    mismatch = _manifest_mismatch(directory, target)
    if mismatch is not None:
        if note is not None:
            note(f"{mismatch}: the host records are ignored")
        return lowered
    database = _open_database(directory)
    legalised = legalise_for_host(lowered, target)
    with target, database:  # the pass reads both from the context when it is created and run
        return relax.transform.MetaScheduleApplyDatabase()(legalised)


# --- arguments, manifest, database ------------------------------------------------------------


def _check_arguments(target, trials, time_budget):
    for package in ("xgboost", "psutil"):  # MetaSchedule's cost model and core count, imported late
        if importlib.util.find_spec(package) is None:
            raise CompilerError(f"host tuning needs the Python package {package}: pip install -r requirements.txt")
    if target.kind.name != "llvm":
        raise CompilerError(f"host tuning needs an LLVM target, not {target.kind.name}")
    if trials < 1:
        raise CompilerError(f"--trials {trials}: host tuning needs at least 1 trial")
    if time_budget is not None and time_budget <= 0:
        raise CompilerError(f"--time-budget {time_budget}: must be a positive number of seconds")


def _tuning_target(target: tvm.target.Target) -> tvm.target.Target:
    """`target` plus the physical core count: MetaSchedule's CPU rules refuse a target without
    "num-cores". Records do not depend on it when applied (the database matches workloads only)."""
    spec = dict(target.export())
    spec.setdefault("num-cores", cpu_count(logical=False))
    return tvm.target.Target(spec)


def _manifest(target) -> dict:
    return {"compiler_version": __version__, "target": str(target)}


def _manifest_mismatch(directory: Path, target) -> str | None:
    """Why the records in `directory` do not belong to this compiler and target, or None if they do."""
    try:
        recorded = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        recorded = None
    if not isinstance(recorded, dict):
        return f"{directory}: no readable {MANIFEST}"
    expected = _manifest(target)
    if recorded.get("compiler_version") != expected["compiler_version"]:
        return f"{directory}: recorded with compiler version {recorded.get('compiler_version')}, this is {__version__}"
    if recorded.get("target") != expected["target"]:
        return f"{directory}: recorded for target {recorded.get('target')}, not {expected['target']}"
    return None


def _prepare_directory(db_path: Path, target) -> Path:
    """The database directory, created with its manifest, or checked if it holds records already."""
    directory = metaschedule_dir(db_path)
    if directory.is_dir() and any(directory.iterdir()):
        mismatch = _manifest_mismatch(directory, target)
        if mismatch is not None:  # extending it would mix measurements of different code
            raise CompilerError(f"{mismatch}; delete it or tune into another database file")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MANIFEST).write_text(json.dumps(_manifest(target), indent=2) + "\n")
    return directory


def _open_database(directory: Path) -> ms.database.JSONDatabase:
    try:
        return ms.database.JSONDatabase(work_dir=str(directory), allow_missing=True, module_equality="structural")
    except (RuntimeError, ValueError) as error:  # a file cut short by an interrupted run, hand edits
        first_line = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        raise CompilerError(f"{directory}: unreadable MetaSchedule database ({first_line})") from error


# --- tuning -------------------------------------------------------------------------------------


_CPU_INTRINSICS = {"x86_64": ["x86"], "AMD64": ["x86"], "aarch64": ["arm_cpu"], "arm64": ["arm_cpu"]}


def _register_cpu_intrinsics():
    """Registers this CPU's tensor intrinsics without the rest of tvm.s_tir.tensor_intrin.

    TuneContext imports that package, whose __init__ registers every target's intrinsics: 33 s on
    this 2-core machine, 22 s of it CUDA's, most of a small tuning run. The LLVM schedule rules use
    only the CPU's own (x86's VNNI / AVX-512 dot products, Arm's sdot / udot), so the package goes
    into sys.modules with just those submodules imported, and TuneContext's import finds it there.
    On another machine type, or if TVM's layout changes, the whole package is imported as before."""
    name = "tvm.s_tir.tensor_intrin"
    if name in sys.modules:
        return
    submodules = _CPU_INTRINSICS.get(platform.machine())
    spec = importlib.util.find_spec(name)
    if submodules is None or spec is None or spec.loader is None:
        importlib.import_module(name)
        return
    sys.modules[name] = package = importlib.util.module_from_spec(spec)  # its __init__ is not run
    try:
        for submodule in submodules:
            importlib.import_module(f"{name}.{submodule}")
    except ImportError:
        del sys.modules[name]
        importlib.import_module(name)
        return
    tvm.s_tir.tensor_intrin = package


def _builder():
    return ms.builder.LocalBuilder(f_build=_build_candidate, max_workers=cpu_count(logical=True))


def _search(tasks, database, builder, runner, directory: Path, trials: int, seed: int, clock, counter):
    per_task = max(1, trials // len(tasks))  # uniform: MetaSchedule has a single per-task limit
    batch = min(_BATCH, per_task)
    ms.tune_tasks(
        tasks=_tune_contexts(tasks, seed, batch),
        task_weights=[float(task.weight) for task in tasks],
        work_dir=str(directory),
        max_trials_global=trials,
        max_trials_per_task=per_task,
        num_trials_per_iter=batch,
        builder=builder,
        runner=runner,
        database=database,
        cost_model=ms.CostModel.create("xgb", num_tuning_cores=cpu_count(logical=False)),
        measure_callbacks=ms.MeasureCallback.create("default") + [counter],
        task_scheduler=_BudgetedRoundRobin(clock),
    )


def _tune_contexts(tasks, seed: int, batch: int) -> list:
    # MetaSchedule's population of 512 suits its 64-candidate iterations; a handful of trials
    # should not pay for evolving that many, so the population shrinks with the iteration.
    population = min(_POPULATION, max(64, 8 * batch))
    seeds = fork_seed(seed, n=len(tasks))
    return [ms.TuneContext(
        mod=task.dispatched[0],
        target=task.target,
        space_generator="post-order-apply",
        search_strategy=ms.search_strategy.EvolutionarySearch(population_size=population,
                                                             init_min_unmeasured=min(50, population)),
        task_name=task.task_name,
        rand_state=task_seed,
        num_threads="physical",
        logger=logging.getLogger(f"{_MS_LOGGER}.task.{index}_{task.task_name}"),
    ).clone() for index, (task, task_seed) in enumerate(zip(tasks, seeds))]


def _build_candidate(mod, target, _params):
    """MetaSchedule's default_build without its `import tvm.s_tir.tensor_intrin`, which costs every
    builder process 15 s or more (LocalBuilder starts new processes for each iteration, and builds
    time out after 30 s) and is only needed to create schedules, not to compile them."""
    from tvm.driver import build
    from tvm.s_tir.transform import RemoveWeightLayoutRewriteBlock

    return build(RemoveWeightLayoutRewriteBlock(skip_tensor_rewrite=True)(mod), target=target)


class _Clock:
    def __init__(self, budget: float | None):
        self.start, self.budget = time.monotonic(), budget
        self.stopped = False  # set when the time budget, not the trials, ended the search

    def elapsed(self) -> float:
        return time.monotonic() - self.start


@derived_object
class _BudgetedRoundRobin(PyTaskScheduler):
    """Round robin over the live tasks that hands out no iteration it expects to end after the
    time budget.

    An iteration is expected to take the search's wall time so far over the iterations handed out
    (nothing is known before the first, which therefore always runs). Returning -1 ends
    TaskScheduler::Tune's loop, which then joins the iterations still running (their records are
    kept) and terminates every task."""

    def __init__(self, clock: _Clock):
        super().__init__()
        self.clock, self.last = clock, -1
        self.began, self.handed_out = None, 0

    def next_task_id(self) -> int:
        if self._out_of_time():
            self.clock.stopped = True
            return -1
        scheduler = self._outer()
        records = scheduler.tasks_
        for index in range(len(records)):
            scheduler.touch_task(index)  # collect finished iterations: runs the measure callbacks
        for _ in range(len(records)):
            self.last = (self.last + 1) % len(records)
            if not records[self.last].is_terminated:
                if records[self.last].runner_futures is not None:
                    scheduler.join_running_task(self.last)  # Tune requires no iteration in flight
                self.handed_out += 1
                return self.last
        return -1

    def _out_of_time(self) -> bool:
        now = self.clock.elapsed()
        self.began = now if self.began is None else self.began
        iteration = (now - self.began) / self.handed_out if self.handed_out else 0.0
        return self.clock.budget is not None and now + iteration >= self.clock.budget


@derived_object
class _TrialCounter(PyMeasureCallback):
    """Counts each task's trials and reports progress after every measured iteration."""

    def __init__(self, names: list[str], total: int, clock: _Clock, say):
        super().__init__()
        self.names, self.total, self.clock, self.say = names, total, clock, say
        self.trials = [0] * len(names)

    def apply(self, task_scheduler, task_id, measure_candidates, builder_results, runner_results) -> None:
        if not measure_candidates:  # a search that found nothing new this time
            return
        self.trials[task_id] += len(measure_candidates)
        self.say(f"host tuning: {sum(self.trials)}/{self.total} trials, {self.clock.elapsed():.0f} s "
                 f"(last: {self.names[task_id]})")


@contextmanager
def _metaschedule_log(path: Path):
    """MetaSchedule's log (design spaces, every trial, errors) goes to `path` instead of the
    console, where progress() speaks for it."""
    logger = logging.getLogger(_MS_LOGGER)
    handler = logging.FileHandler(path, mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s [%(levelname)s] %(name)s: %(message)s"))
    saved = logger.level, logger.propagate
    logger.setLevel(logging.INFO)  # DEBUG would add every XGBoost iteration
    logger.propagate = False
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        handler.close()
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


# --- measuring ----------------------------------------------------------------------------------


def _measure_defaults(tasks, database, builder, runner) -> list[float]:
    """Seconds per call of each task's untuned PrimFunc, measured by MetaSchedule's builder and runner
    exactly as its trials are, and committed as a record (_commit_default).

    Committing it makes the database rank the default schedule against the tuned ones: MetaSchedule's
    CPU schedules always parallelise, and for a small op the thread-pool launch costs more than the
    op itself, so the best record (what apply_host_tuning applies) is often the default."""
    modules = [task.dispatched[0] for task in tasks]
    built = builder.build([ms.builder.BuilderInput(mod, task.target) for mod, task in zip(modules, tasks)])
    measured = [math.nan] * len(tasks)
    runs = [(index, ms.runner.RunnerInput(result.artifact_path, "cpu", _args_info(modules[index])))
            for index, result in enumerate(built) if result.error_msg is None]
    futures = runner.run([run for _, run in runs])
    for (index, run), future in zip(runs, futures):
        result = future.result()
        shutil.rmtree(os.path.dirname(run.artifact_path), ignore_errors=True)
        if result.error_msg is None:
            measured[index] = _mean(result.run_secs)
            _commit_default(database, modules[index], tasks[index].target, result.run_secs)
    return measured


def _commit_default(database, mod: tvm.IRModule, target, run_secs) -> None:
    schedule = tvm.s_tir.Schedule(mod)
    try:
        # A record needs at least one instruction to count as valid (TuningRecord::IsValid); a block
        # lookup is one that changes nothing, so replaying the trace leaves the PrimFunc as it is.
        schedule.get_sblock("root")
    except tvm.s_tir.ScheduleError:  # no root block (not a TE-made PrimFunc): leave it unranked
        return
    seconds = [float(value) for value in run_secs]
    record = ms.database.TuningRecord(schedule.trace, database.commit_workload(mod), seconds, target, _args_info(mod))
    database.commit_tuning_record(record)


def _args_info(mod: tvm.IRModule) -> list:
    return list(ms.arg_info.ArgInfo.from_entry_func(mod, remove_preproc=True))


def _row(task, trials: int, database, default_seconds: float) -> dict:
    """The task's row: its best record (the default's included) against its default, in microseconds."""
    best = database.get_top_k(database.commit_workload(task.dispatched[0]), 1)
    tuned_seconds = _mean(best[0].run_secs) if best else default_seconds
    return {"task": task.task_name, "trials": trials,
            "default_us": default_seconds * 1e6, "tuned_us": tuned_seconds * 1e6}


def _mean(run_secs) -> float:
    """How MetaSchedule ranks records (SortTuningRecordByMeanRunSecs)."""
    return float(np.mean([float(seconds) for seconds in run_secs]))
