"""Tuned schedules for a firmware graph: the database's best record per layer's workload."""

from compiler.coral import codegen
from compiler.tune.workload import workload_of


def kernel_steps(graph):
    """The graph's steps that run a generated kernel (the ones a schedule applies to)."""
    available = set(codegen.kernels())
    return [step for step in graph.steps if step.kind == "kernel" and step.kernel.kernel in available]


def step_workload(step):
    kernel = step.kernel
    return workload_of(kernel.kernel, kernel.params, kernel.arrays)


def tuned_schedules(graph, database) -> dict:
    """step index -> schedule, for the steps the database has a record for."""
    schedules = {}
    for step in kernel_steps(graph):
        schedule = database.schedule_for(step_workload(step))
        if schedule is not None:
            schedules[step.index] = schedule
    return schedules
