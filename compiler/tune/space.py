"""The schedule space of one tuning task: the codegen's knobs, their candidate values, and
the validity rules, so that an invalid candidate is never compiled.

    space = Space.for_task(task)
    space.default          # the codegen's default_schedule (always a member)
    space.knobs            # knob -> candidate values, only the knobs this kernel reads
    space.valid(s)         # the codegen's own validate() (32 vector registers, tile bounds,
                           # weight packing ...) plus the memory budget of the layer's scratch
    space.random(rng), space.mutate(s, rng), space.crossover(a, b, rng), space.features(s)

Which knobs a kernel reads is asked of the codegen, not listed here: a knob that no valid
schedule moves off its default is not part of that kernel's space.
"""

import math
from dataclasses import dataclass, field

import numpy as np

from compiler.coral import codegen

# Candidate values per knob (cpp/include/coral/codegen.h Schedule); the default is added, and
# oc_tile gains the target's wider tiles (domains_of()).
DOMAINS = {
    "lmul": (1, 2, 4, 8),
    "oc_tile": (1, 2, 3, 4, 6, 8, 12, 16, 24, 32),  # up to the int32 lanes at LMUL 8 of VLEN 128
    "px_tile": (1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 24, 28, 32, 56, 112),
    "loop_order": ("oc_px", "px_oc"),
    "unroll": (1, 2, 4, 8, 16, 32, 64, 128, 256),
    "weight_pack": ("i16", "i8"),
}
_NUMERIC = ("lmul", "oc_tile", "px_tile", "unroll")
_RELEVANCE_SAMPLES = 300  # random schedules tried when finding which knobs a kernel reads


def schedule_key(schedule: dict) -> tuple:
    return tuple(sorted(schedule.items()))


def int32_lanes(isa: dict, lmul: int) -> int:
    """int32 elements of a register group (as cpp/include/coral/codegen.h's Target::int32_lanes)."""
    return isa["vlen"] // 32 * lmul


def domains_of(isa: dict) -> dict:
    """DOMAINS for a target's [isa]: oc_tile reaches every full-width tile (the int32 lanes at
    each LMUL, which the MAC kernels' paired weight loads need) and the 3 * 2^k widths between."""
    widest = int32_lanes(isa, max(DOMAINS["lmul"]))
    wide = {int32_lanes(isa, lmul) for lmul in DOMAINS["lmul"]}
    wide |= {3 * 2 ** k for k in range(widest.bit_length()) if 3 * 2 ** k <= widest}
    return {**DOMAINS, "oc_tile": tuple(sorted(set(DOMAINS["oc_tile"]) | wide))}


@dataclass
class Space:
    kernel: str
    params: dict
    default: dict
    knobs: dict                # knob -> tuple of values
    scratch_budget: int        # bytes of data memory the layer's scratch may take
    target: object = None      # the RVV target (compiler.targets.Target; None: the codegen's default)
    _scratch: dict = field(default_factory=dict)

    @classmethod
    def for_task(cls, kernel: str, params: dict, scratch_budget: int, target=None) -> "Space":
        default = codegen.default_schedule(kernel, params, target)
        domains = {knob: tuple(sorted(set(values) | {default[knob]}, key=str if knob not in _NUMERIC else None))
                   for knob, values in domains_of(codegen.isa(target)).items()}
        # A knob is in the space if some valid schedule moves it: alone (one knob off the
        # default), or with others (lmul 4 needs oc_tile <= 16: found by sampling).
        moved = {knob for knob, values in domains.items()
                 if any(codegen.validate(kernel, params, {**default, knob: v}, target) == ""
                        for v in values if v != default[knob])}
        rng = np.random.default_rng(0)
        for _ in range(_RELEVANCE_SAMPLES):
            sample = {knob: values[rng.integers(len(values))] for knob, values in domains.items()}
            if codegen.validate(kernel, params, sample, target) == "":
                moved |= {knob for knob in sample if sample[knob] != default[knob]}
        return cls(kernel, params, default, {knob: domains[knob] for knob in domains if knob in moved}, scratch_budget,
                   target)

    def valid(self, schedule: dict) -> bool:
        if codegen.validate(self.kernel, self.params, schedule, self.target) != "":
            return False
        return self.scratch_bytes(schedule) <= self.scratch_budget

    def scratch_bytes(self, schedule: dict) -> int:
        """The scratch the kernel needs (the codegen knows; emitting is cheap next to compiling)."""
        key = schedule_key(schedule)
        if key not in self._scratch:
            self._scratch[key] = (self._mac_scratch(schedule) if self.kernel in ("conv2d", "dense") else
                                  codegen.emit(self.kernel, "probe", self.params, {}, schedule, target=self.target).scratch_bytes)
        return self._scratch[key]

    def _mac_scratch(self, schedule: dict) -> int:
        # conv2d / dense need their weight array to emit; zeros of the right shape do.
        p = self.params
        if self.kernel == "dense":
            arrays = {"weight": np.zeros((p["out_features"], p["in_features"]), np.int8)}
        else:
            arrays = {"weight": np.zeros((p["out_c"], p["kernel_h"], p["kernel_w"], p["in_c"] // p["groups"]), np.int8)}
        out_c = p.get("out_c", p.get("out_features"))
        arrays.update(bias=np.zeros(out_c, np.int32), multiplier=np.full(out_c, 1 << 30, np.int32),
                      shift=np.zeros(out_c, np.int32))
        return codegen.emit(self.kernel, "probe", self.params, arrays, schedule, target=self.target).scratch_bytes

    def size(self) -> int:
        return math.prod(len(values) for values in self.knobs.values())

    # --- generating candidates -------------------------------------------------------------

    def random(self, rng: np.random.Generator, tries: int = 200) -> dict | None:
        for _ in range(tries):
            schedule = dict(self.default)
            for knob, values in self.knobs.items():
                schedule[knob] = values[rng.integers(len(values))]
            if self.valid(schedule):
                return schedule
        return None

    def mutate(self, schedule: dict, rng: np.random.Generator, tries: int = 50) -> dict | None:
        """One or two knobs moved: numeric ones mostly to a neighbouring value."""
        if not self.knobs:
            return None
        names = list(self.knobs)
        for _ in range(tries):
            child = dict(schedule)
            for knob in rng.choice(names, size=min(len(names), 1 + int(rng.random() < 0.3)), replace=False):
                values = self.knobs[knob]
                here = values.index(child[knob]) if child[knob] in values else 0
                if knob in _NUMERIC and rng.random() < 0.7:
                    step = int(rng.choice([-1, 1]))
                    child[knob] = values[min(max(here + step, 0), len(values) - 1)]
                else:
                    child[knob] = values[rng.integers(len(values))]
            if child != schedule and self.valid(child):
                return child
        return None

    def crossover(self, a: dict, b: dict, rng: np.random.Generator) -> dict | None:
        child = {knob: (a if rng.random() < 0.5 else b)[knob] for knob in a}
        return child if self.valid(child) else None

    def features(self, schedule: dict) -> list[float]:
        """The cost model's view of a schedule: every knob of DOMAINS (log2 of the numeric ones,
        0/1 for the others), plus how full the target's int32 register group and register file are."""
        isa = codegen.isa(self.target)
        row = [math.log2(schedule[knob] + 1) for knob in _NUMERIC]  # oc_tile 0 means "all"
        row += [float(schedule["loop_order"] == "px_oc"), float(schedule["weight_pack"] == "i8")]
        row.append(schedule["oc_tile"] / int32_lanes(isa, schedule["lmul"]))  # lanes used of the int32 group
        row.append(schedule["px_tile"] * schedule["lmul"] / isa["vector_registers"])  # accumulator registers
        return row


def workload_features(kernel: str, params: dict) -> list[float]:
    """Shape features shared by every schedule of a task (so one model serves all tasks)."""
    p = params
    log = lambda value: math.log2(max(int(value), 1))
    channels_in = p.get("in_c", p.get("in_features", p.get("channels", p.get("size", 1))))
    channels_out = p.get("out_c", p.get("out_features", channels_in))
    pixels = p.get("out_h", 1) * p.get("out_w", 1) * p.get("pixels", 1)  # "pixels": add and mul
    depthwise = float(p.get("groups", 1) > 1 and p.get("groups") == p.get("in_c"))
    return [log(channels_in), log(channels_out), log(pixels), float(p.get("kernel_h", 1)), float(p.get("stride_h", 1)),
            depthwise, float(kernel == "conv2d"), float(kernel == "dense")]
