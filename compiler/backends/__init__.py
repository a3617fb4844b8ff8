"""Vendor backends: targets whose artefact another tool makes or runs (Arm Vela, OpenVINO, hand-off
packages for closed compilers). A target names its backend by `runner` in its target.toml.

A backend is a module with

    INTEGER_SPEC: str                         the integer spec its artefact computes (quant/integer_spec.py)
    build(compiled, staging, target, warn) -> dict
        writes the artefact and whatever verifies it into the staging folder (the build's OUT
        before it is moved into place) and returns its report section, in the shape every
        backend shares (report/backend.py: artefact, verified, performance, memory, notes);
    run(out_dir, input_paths, report, repeat=1) -> compiler.run.host.RunResult
        runs OUT on inputs (.npy) as far as this machine can, and says so when it cannot: one
        warm-up run, then `repeat` timed runs (compiler.run.host.timed_runs; `run --repeat N`).

Backends are imported when used: a vendor's Python package is needed only for its targets,
and a missing one is a CompilerError that says how to install it (missing_package()).
"""

import importlib

from compiler.errors import CompilerError

# runner (target.toml) -> the backend's module (imported when a target uses it)
BACKENDS: dict[str, str] = {"handoff": "compiler.backends.handoff",  # [handoff] kind: handoff.KINDS
                            "openvino": "compiler.backends.openvino",
                            "vela": "compiler.backends.vela"}  # Arm Ethos-U

REPORT_KEY = "backend"  # report.json section of a vendor target's build


def is_backend(runner: str) -> bool:
    return runner in BACKENDS


def backend_for(target):
    """The backend module of a target whose runner is a vendor backend."""
    if target.runner not in BACKENDS:
        raise CompilerError(f"--target {target.name}: runner {target.runner!r} is no backend "
                            f"(known: {', '.join(sorted(BACKENDS))})")
    return importlib.import_module(BACKENDS[target.runner])


def missing_package(package: str, pip_name: str, target_name: str) -> CompilerError:
    """The error for a vendor package that is not installed."""
    return CompilerError(f"--target {target_name} needs the Python package {package}: install it with "
                         f"`.venv/bin/pip install {pip_name}` (or `make deps`, which installs requirements.txt)")
