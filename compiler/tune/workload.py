"""Tuning workloads: what a kernel's instruction count depends on, as a key.

A workload is the kernel name, its integer parameters and the shapes of its constant arrays.
The values of weights and of the quantisation constants (zero points, multipliers, shifts)
are left out, and the activation bounds are reduced to whether there is a clamp at all: the
generated code's control flow does not depend on them, so neither (to within a few
instructions of constant set-up) does its instruction count, and layers that differ only in
them (MobileNet's repeated blocks) are tuned once. The whole-model figures the tuner reports
come from running the firmware, so they are exact per layer.
"""

import hashlib
import json
from dataclasses import dataclass

import numpy as np

from compiler.coral.codegen import spec_params


@dataclass(frozen=True)
class Workload:
    kernel: str
    params: tuple  # ((name, int), ...) sorted by name
    arrays: tuple  # ((name, shape), ...) sorted by name

    @property
    def key(self) -> str:
        """Human-readable and canonical: the database's join key."""
        params = ",".join(f"{name}={value}" for name, value in self.params)
        arrays = ",".join(f"{name}:{'x'.join(map(str, shape))}" for name, shape in self.arrays)
        return f"{self.kernel}({params})[{arrays}]"

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.key.encode()).hexdigest()[:16]

    @property
    def param_dict(self) -> dict:
        return dict(self.params)

    def to_json(self) -> dict:
        return {"kernel": self.kernel, "params": dict(self.params), "arrays": {n: list(s) for n, s in self.arrays}}


_VALUE_PARAMS = ("zero_point", "multiplier", "shift", "act_min", "act_max", "pad_value", "_f32bits")


def workload_of(kernel: str, params: dict, arrays: dict) -> Workload:
    """The workload of a kernel: its params as the codegen sees them (array fields flattened to
    NAME_i, floats as bit patterns) without the values (see the module doc)."""
    shape_params = {name: value for name, value in spec_params(params).items() if not name.endswith(_VALUE_PARAMS)}
    if "act_min" in params:
        shape_params["clamp"] = int(params["act_min"] > -128 or params["act_max"] < 127)
    if kernel == "concat":  # per input a copy or a table rescale (one more instruction per vector)
        for i in range(params["num_inputs"]):
            shape_params[f"input{i}_copy"] = int(params[f"input{i}_multiplier"] == 1 << 30 and params[f"input{i}_shift"] == 1
                                                 and params[f"input{i}_zero_point"] == params["output_zero_point"])
    return Workload(kernel, tuple(sorted(shape_params.items())),
                    tuple(sorted((name, tuple(np.shape(array))) for name, array in arrays.items() if array is not None)))


def describe(workload: Workload) -> str:
    """A short label for progress lines and tables: conv2d 14x14x128->128 k1 s1."""
    p = workload.param_dict
    if workload.kernel == "conv2d":
        kind = "dw" if p["groups"] == p["in_c"] and p["groups"] > 1 else "conv"
        return (f"{kind} {p['in_h']}x{p['in_w']}x{p['in_c']}->{p['out_c']} k{p['kernel_h']} s{p['stride_h']}")
    if workload.kernel == "dense":
        return f"dense {p['in_features']}->{p['out_features']}"
    return f"{workload.kernel} {json.dumps(p, separators=(',', ':'))[:40]}"
