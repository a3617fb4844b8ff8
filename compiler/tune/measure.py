"""Measuring candidates: each schedule is compiled and run alone in QEMU; its figure is the exact
instruction count of the kernel call, and its output must equal kernels/ref's on the same
inputs bit for bit (a fast wrong kernel is rejected, never recorded as a result).

    task = Task(workload, kernel, params, arrays, inputs, output_shape, layers)
    measurer = Measurer(workdir, jobs=os.cpu_count())
    measurer.reference(task)                     # kernels/ref in QEMU, once per task
    measurer.measure(task, [schedule, ...])      # -> [Measurement], in parallel on `jobs` cores
"""

import itertools
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from compiler.coral.kernel_runner import KernelCase, run_kernel_cases
from compiler.coral.simulator import SimulatorError
from compiler.errors import CompilerError
from compiler.tune.workload import Workload


@dataclass
class Task:
    """One workload to tune, with the arrays and inputs of its first layer (the measurement's data)."""
    workload: Workload
    kernel: str
    params: dict
    arrays: dict
    inputs: list
    output_shape: tuple
    layers: list = field(default_factory=list)  # names of the model's layers that share the workload
    expected: np.ndarray | None = None          # kernels/ref's output on `inputs`

    def case(self, schedule=None, reference=False) -> KernelCase:
        return KernelCase(self.kernel, self.params, self.arrays, self.inputs, self.output_shape, schedule,
                          reference=reference)


@dataclass
class Measurement:
    schedule: dict
    instructions: int | None  # None: rejected (error says why)
    error: str = ""


class Measurer:
    def __init__(self, workdir: Path, jobs: int | None = None, timeout: float | None = 120, profile: str | None = None,
                 target=None):
        """profile: the memory profile the firmware is built for (the target's kernel profile when
        None); a candidate whose code and constants do not fit it even alone is rejected. target:
        the RVV target measured on (coral-npu, rvv256-rv64, ...; default coral-npu)."""
        self.workdir = Path(workdir)
        self.profile = profile
        self.target = target
        self.jobs = jobs or os.cpu_count() or 1
        self.timeout = timeout
        self._numbers = itertools.count()

    def reference(self, task: Task) -> np.ndarray:
        if task.expected is None:
            (run,) = run_kernel_cases([task.case(reference=True)], self._folder(), timeout=self.timeout,
                                      progress=False, target=self.target)  # the reference: in the kernel profile
            task.expected = run.output
        return task.expected

    def measure(self, task: Task, schedules: list[dict]) -> list[Measurement]:
        expected = self.reference(task)
        with ThreadPoolExecutor(self.jobs) as pool:
            return list(pool.map(lambda schedule: self._one(task, schedule, expected), schedules))

    def _one(self, task: Task, schedule: dict, expected: np.ndarray) -> Measurement:
        folder = self._folder()
        try:
            (run,) = run_kernel_cases([task.case(schedule)], folder, profile=self.profile, timeout=self.timeout,
                                      cases_per_firmware=1, progress=False, target=self.target)
        except (CompilerError, SimulatorError, ValueError) as error:  # SpecError is a ValueError
            return Measurement(schedule, None, str(error).splitlines()[0])
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        differ = int(np.count_nonzero(run.output != expected))
        if differ:
            return Measurement(schedule, None, f"wrong output: {differ} of {expected.size} values differ from kernels/ref")
        return Measurement(run.schedule, run.instructions)

    def _folder(self) -> Path:
        return self.workdir / f"m{next(self._numbers)}"
