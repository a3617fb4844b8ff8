"""The search: an evolutionary search over one task's space, guided by a cost model trained on
every measurement so far (all tasks: the model also sees the workload's shape).

Per round: children of the best schedules measured so far (mutations of one or two knobs,
crossovers) and a few random members form a pool; once the model has seen enough
measurements it ranks the pool and the round measures its best guesses plus a few random
picks (exploration); before that the round is random. A task stops at its trial share, its
deadline, or after `patience` rounds without a better schedule.

The cost model is scikit-learn's gradient-boosted trees on (schedule features, workload
features) -> log(instructions / the default schedule's instructions).
"""

import math
import time
from dataclasses import dataclass, field

import numpy as np

from compiler.tune.measure import Measurement, Task
from compiler.tune.space import Space, schedule_key, workload_features

MIN_TRAINING = 12     # measurements before the model ranks candidates
EXPLORE = 0.25        # share of each round picked at random from the pool
POOL = 160            # candidates generated per round


class CostModel:
    def __init__(self, seed: int):
        self.seed = seed
        self.rows: list[list[float]] = []
        self.targets: list[float] = []
        self._model = None

    def add(self, features: list[float], instructions: int, default: int) -> None:
        self.rows.append(features)
        self.targets.append(math.log(instructions / default))
        self._model = None

    def ready(self) -> bool:
        return len(self.rows) >= MIN_TRAINING

    def predict(self, rows: list[list[float]]) -> np.ndarray:
        if self._model is None:
            from sklearn.ensemble import GradientBoostingRegressor

            self._model = GradientBoostingRegressor(n_estimators=120, max_depth=4, learning_rate=0.1,
                                                    random_state=self.seed)
            self._model.fit(np.array(self.rows), np.array(self.targets))
        return self._model.predict(np.array(rows))


@dataclass
class TaskResult:
    task: Task
    default: Measurement
    best: Measurement
    measured: list = field(default_factory=list)  # every Measurement, in order
    stopped: str = ""                              # why the search ended
    seen: set = field(default_factory=set)         # schedules measured or being measured
    warm: list = field(default_factory=list)       # database schedules still to measure

    @property
    def rejected(self) -> int:
        return sum(m.instructions is None for m in self.measured)


class Search:
    def __init__(self, measurer, model: CostModel, rng: np.random.Generator, on_round=None):
        self.measurer, self.model, self.rng = measurer, model, rng
        self.on_round = on_round or (lambda result, trials: None)

    def measure_default(self, task: Task, space: Space) -> Measurement:
        (default,) = self._measure(task, space, [space.default], None)
        return default

    def start(self, task: Task, default: Measurement, known: list[dict] = ()) -> TaskResult:
        """A task's search state from its measured default; `known`: schedules from the
        database, measured first when the search runs (a warm start)."""
        result = TaskResult(task, default, default, [default])
        result.seen = {schedule_key(default.schedule)}
        result.warm = list(known)
        return result

    def run(self, result: TaskResult, space: Space, trials: float, deadline: float, patience: int = 6) -> bool:
        """Searches on until the task has `trials` measurements (math.inf: no limit), the deadline passes, or
        `patience` rounds bring nothing better; returns whether the best improved."""
        batch = 2 * self.measurer.jobs
        start_best, stale = result.best.instructions, 0
        result.warm = [s for s in result.warm if schedule_key(s) not in result.seen and space.valid(s)]
        while len(result.measured) < trials and time.monotonic() < deadline and stale < patience:
            count = min(batch, trials - len(result.measured))
            picks = result.warm[:count] or self._pick(space, result, result.seen, count)
            result.warm = result.warm[len(picks):] if result.warm else []
            if not picks:
                result.stopped = "space exhausted"
                return result.best.instructions < start_best
            result.seen.update(schedule_key(s) for s in picks)
            before = result.best.instructions
            result.measured += self._measure(result.task, space, picks, result.default.instructions)
            good = [m for m in result.measured if m.instructions is not None]
            result.best = min(good, key=lambda m: m.instructions)
            stale = 0 if result.best.instructions < before else stale + 1
            self.on_round(result, trials)
        result.stopped = ("no progress" if stale >= patience else
                          "trials" if len(result.measured) >= trials else "time")
        return result.best.instructions < start_best

    def _measure(self, task, space, schedules, default_instructions) -> list[Measurement]:
        measured = self.measurer.measure(task, schedules)
        default = default_instructions or (measured[0].instructions if measured else None)
        shape = workload_features(task.kernel, task.params)
        for m in measured:
            if m.instructions is not None and default:
                self.model.add(space.features(m.schedule) + shape, m.instructions, default)
        return measured

    def _pick(self, space: Space, result: TaskResult, seen: set, count: int) -> list[dict]:
        pool = self._pool(space, result, seen)
        if not pool or count <= 0:
            return []
        explore = max(1, int(round(count * EXPLORE))) if self.model.ready() else count
        order = list(self.rng.permutation(len(pool)))
        if self.model.ready():
            shape = workload_features(result.task.kernel, result.task.params)
            scores = self.model.predict([space.features(s) + shape for s in pool])
            ranked = [int(i) for i in np.argsort(scores)]
            chosen = ranked[:count - explore]
            order = [i for i in order if i not in set(chosen)]
            return [pool[i] for i in chosen] + [pool[i] for i in order[:explore]]
        return [pool[i] for i in order[:count]]

    def _pool(self, space: Space, result: TaskResult, seen: set) -> list[dict]:
        good = sorted((m for m in result.measured if m.instructions is not None), key=lambda m: m.instructions)
        parents = [m.schedule for m in good[:6]]
        pool, keys = [], set(seen)
        for attempt in range(POOL * 3):
            if len(pool) >= POOL:
                break
            roll = self.rng.random()
            if roll < 0.6 and parents:
                child = space.mutate(parents[int(self.rng.integers(len(parents)))], self.rng)
            elif roll < 0.8 and len(parents) >= 2:
                a, b = self.rng.choice(len(parents), size=2, replace=False)
                child = space.crossover(parents[a], parents[b], self.rng)
            else:
                child = space.random(self.rng)
            if child is not None and schedule_key(child) not in keys:
                keys.add(schedule_key(child))
                pool.append(child)
        return pool
