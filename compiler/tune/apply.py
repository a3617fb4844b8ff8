"""Tuned schedules for a firmware graph: the database's best record per layer's workload."""

from dataclasses import dataclass

from compiler.coral import codegen
from compiler.tune.workload import workload_of


def kernel_steps(graph):
    """The graph's steps that run a generated kernel (the ones a schedule applies to)."""
    available = set(codegen.kernels())
    return [step for step in graph.steps if step.kind == "kernel" and step.kernel.kernel in available]


def step_workload(step):
    kernel = step.kernel
    return workload_of(kernel.kernel, kernel.params, kernel.arrays)


@dataclass
class TunedWorkload:
    key: str
    schedule: dict
    saved_per_layer: int  # instructions the record saves over the default schedule, per layer
    layers: list          # the steps using it (names, in graph order)
    steps: list           # and their indices

    @property
    def saved(self) -> int:
        return self.saved_per_layer * len(self.steps)


def tuned_workloads(graph, database) -> list[TunedWorkload]:
    """The graph's workloads the database has a record for, in graph order."""
    found: dict[str, TunedWorkload] = {}
    for step in kernel_steps(graph):
        workload = step_workload(step)
        row = database.best.get(workload.key)
        if row is None:
            continue
        saved = int(row.get("default_instructions", row["instructions"])) - int(row["instructions"])
        entry = found.setdefault(workload.key, TunedWorkload(workload.key, dict(row["schedule"]), saved, [], []))
        entry.layers.append(step.name)
        entry.steps.append(step.index)
    return list(found.values())


def schedules_of(workloads: list[TunedWorkload]) -> dict:
    """step index -> schedule."""
    return {index: entry.schedule for entry in workloads for index in entry.steps}
