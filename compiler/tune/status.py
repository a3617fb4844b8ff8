"""The tuner's live progress line on stderr:

    tuning 3/20 pw7 (conv 14x14x128->128 k1 s1): 41 trials, best 201,512 (0.75x default), 2m13s

On a terminal it is redrawn in place; elsewhere (logs, CI) a line is printed when a task
finishes and at most every 15 seconds in between.
"""

import math
import sys
import time

from compiler.tune.workload import describe

_LOG_EVERY = 15.0


def _elapsed(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


class StatusLine:
    def __init__(self, tasks: int, stream=None):
        self.tasks, self.stream = tasks, stream or sys.stderr
        self.started = self.logged = time.monotonic()
        self.trials = 0
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self.label = ""
        self._counted = {}  # task result -> trials already in self.trials (tasks come back in later passes)

    def measuring_default(self, task) -> None:
        self._show(f"tuning: measuring the default schedule of {task.layers[0]} ({describe(task.workload)})")

    def start(self, number: int, task, default, search_pass: int = 0) -> None:
        again = f" (pass {search_pass + 1})" if search_pass else ""
        self.label = f"tuning {number + 1}/{self.tasks}{again} {task.layers[0]} ({describe(task.workload)})"
        self._show(f"{self.label}: default {default.instructions:,}")

    def round(self, result, trials: float) -> None:
        best, default = result.best.instructions, result.default.instructions
        share = f"/{trials}" if trials != math.inf else ""  # no trial limit: the clock decides
        self._show(f"{self.label}: {len(result.measured)}{share} trials, best {best:,} "
                   f"({best / default:.2f}x default), {_elapsed(time.monotonic() - self.started)}")

    def done(self, result) -> None:
        self.trials = self.trials - self._counted.get(id(result), 0) + len(result.measured)
        self._counted[id(result)] = len(result.measured)
        best, default = result.best.instructions, result.default.instructions
        self._show(f"{self.label}: done ({result.stopped}) after {len(result.measured)} trials: {default:,} -> "
                   f"{best:,} ({best / default:.2f}x); {self.trials} trials in all, "
                   f"{_elapsed(time.monotonic() - self.started)}", final=True)

    def interrupted(self, trials: int) -> None:
        self._show(f"tuning interrupted after {trials} trials, {_elapsed(time.monotonic() - self.started)}: "
                   "recording the best schedules found so far", final=True)

    def close(self) -> None:
        if self.interactive:
            self.stream.write("\n")

    def _show(self, line: str, final: bool = False) -> None:
        now = time.monotonic()
        if self.interactive:
            self.stream.write("\r\033[K" + line)
            if final:
                self.stream.write("\n")
        elif final or now - self.logged >= _LOG_EVERY:
            self.stream.write(line + "\n")
            self.logged = now
        self.stream.flush()
