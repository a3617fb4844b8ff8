"""Shared by the generated-kernel tests: run every case in one go, compare bit for bit."""

import numpy as np

from compiler.coral.kernel_runner import KernelCase, run_kernel_cases
from compiler.coral.simulator import check_simulator_tools


def run_cases(cases, workdir, arrays, inputs) -> dict:
    """label -> KernelRun for CASES rows (label, spec, schedule, vector[, reference]: run kernels/ref
    instead); `arrays(spec)` and `inputs(spec)` give a spec's constant arrays and input tensors."""
    check_simulator_tools()
    kernel_cases = [KernelCase(spec.kernel, spec.params, arrays(spec), inputs(spec), spec.want.shape, schedule, vector,
                               *reference) for _, spec, schedule, vector, *reference in cases]
    results = run_kernel_cases(kernel_cases, workdir)
    return {label: run for (label, *_), run in zip(cases, results)}


def assert_bit_exact(run, spec, schedule) -> None:
    bad = np.argwhere(run.output != spec.want)
    assert bad.size == 0, (f"{len(bad)} of {spec.want.size} outputs differ, first at {tuple(bad[0])}: "
                           f"got {run.output[tuple(bad[0])]}, want {spec.want[tuple(bad[0])]}; params {spec.params}")
    assert run.instructions > 0
    if schedule:
        assert {key: run.schedule[key] for key in schedule} == schedule
