"""What each step of the --accuracy-budget search costs on the build's target, in the target's own
performance figure (quant/budget.py steps, report.md "Search steps"):

    cost = target_cost(target, memory, sample, warn)   # None on targets without a figure (vendor hand-offs)
    cost(compiled) -> {"latency_ms": 0.41}               # host: median of 20 timed runs of the executable
                   -> {"instructions": 84_112}           # firmware targets: one inference in the target's QEMU

A firmware step is built into a scratch folder (the same memory profile as the build) and run on one
validation sample, so its count is the one `run` would print for that mix of precisions.
"""

import tempfile
from pathlib import Path

import numpy as np

TIMED_RUNS = 20


def target_cost(target, memory, sample: np.ndarray, warn=None, tuning=None):
    """The cost function for `target` (one validation sample as the input; firmware steps built with the
    build's memory profile and tuning database), or None."""
    from compiler.backends import is_backend

    if target.runner == "relax-vm":
        return lambda compiled: {"latency_ms": _host_latency(compiled, sample)}
    if is_backend(target.runner):
        return None
    return lambda compiled: {"instructions": _firmware_instructions(compiled, sample, memory, warn, tuning)}


def _host_latency(compiled, sample) -> float:
    import tvm
    from tvm import relax

    from compiler.run.host import timed_runs

    vm = relax.VirtualMachine(compiled.executable, tvm.cpu())
    x = tvm.runtime.tensor(np.ascontiguousarray(sample))
    _, latencies = timed_runs(lambda: vm["main"](x), TIMED_RUNS)
    return round(float(np.median(latencies)), 3)


def _firmware_instructions(compiled, sample, memory, warn, tuning) -> int:
    from compiler.coral.build import FIRMWARE, build_firmware
    from compiler.run.coral import run_elf

    with tempfile.TemporaryDirectory(prefix="budget-step-") as folder:
        coral = build_firmware(compiled, Path(folder), memory, warn=warn, tuning=tuning)
        return run_elf(Path(folder) / FIRMWARE, coral, [sample], compiled.target).total_instructions
