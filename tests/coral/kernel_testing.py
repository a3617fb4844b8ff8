"""Shared by the generated-kernel tests: run every case in one go, compare bit for bit."""

import numpy as np

from compiler.coral.kernel_runner import KernelCase, run_kernel_cases
from compiler.coral.simulator import check_simulator_tools


def run_cases(cases, workdir, arrays, inputs, target=None) -> dict:
    """label -> KernelRun for CASES rows (label, spec, schedule, vector[, reference]: run kernels/ref
    instead); `arrays(spec)` and `inputs(spec)` give a spec's constant arrays and input tensors;
    `target`: the RVV target to run on (default coral-npu)."""
    check_simulator_tools(target)
    kernel_cases = [KernelCase(spec.kernel, spec.params, arrays(spec), inputs(spec), spec.want.shape, schedule, vector,
                               *reference) for _, spec, schedule, vector, *reference in cases]
    results = run_kernel_cases(kernel_cases, workdir, target=target)
    return {label: run for (label, *_), run in zip(cases, results)}


LMULS = (1, 2, 4, 8)
BENCHMARK_VARIANTS = (("", True, False), (" (portable C)", False, False), (" (kernels/ref)", False, True))


def lmul_cases(specs, benchmarks, reference_runs) -> list:
    """CASES rows (label, spec, schedule, vector, reference) for a kernel whose only knob is LMUL:
    each spec as portable C and as RVV at two LMULs (cycling through all four), the first
    `reference_runs` also on kernels/ref built for the NPU; each benchmark spec with the default
    schedule, as portable C and on kernels/ref (labels suffixed as BENCHMARK_VARIANTS says)."""
    cases = []
    for number, spec in enumerate(specs):
        cases.append((f"{spec.label}-c", spec, None, False, False))
        cases += [(f"{spec.label}-m{lmul}", spec, dict(lmul=lmul), True, False)
                  for lmul in (LMULS[number % 4], LMULS[(number + 2) % 4])]
        if number < reference_runs:
            cases.append((f"{spec.label}-ref", spec, None, False, True))
    return cases + [(f"{spec.label}{suffix}", spec, None, vector, reference) for spec in benchmarks
                    for suffix, vector, reference in BENCHMARK_VARIANTS]


def assert_bit_exact(run, spec, schedule) -> None:
    bad = np.argwhere(run.output != spec.want)
    assert bad.size == 0, (f"{len(bad)} of {spec.want.size} outputs differ, first at {tuple(bad[0])}: "
                           f"got {run.output[tuple(bad[0])]}, want {spec.want[tuple(bad[0])]}; params {spec.params}")
    assert run.instructions > 0
    if schedule:
        assert {key: run.schedule[key] for key in schedule} == schedule


def assert_benchmark(runs, label, ceiling, faster_than_portable) -> None:
    """A benchmark row (lmul_cases): print its figures per element; the default schedule within its
    instruction ceiling and `faster_than_portable` times fewer instructions than portable C."""
    run, size = runs[label], runs[label].output.size
    portable, reference = runs[f"{label} (portable C)"].instructions, runs[f"{label} (kernels/ref)"].instructions
    print(f"{label}: {run.instructions} instructions, {run.instructions / size:.3f} per element "
          f"(portable C {portable / size:.1f}, kernels/ref {reference / size:.1f})")
    assert 0 < run.instructions <= ceiling
    assert run.instructions * faster_than_portable < portable
