"""Targets are data: one folder per chip under targets/, described by target.toml."""

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from compiler.errors import CompilerError
from compiler.resources import data_dir


def targets_dir() -> Path:
    return data_dir("targets")


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    artefact: str
    runner: str
    tvm_target: dict
    fusion_families: tuple[str, ...]
    int8_families: tuple[str, ...]  # families whose groups are the quantised ops
    onnx_ops: tuple[str, ...]  # ONNX operators this target claims to compile (tested by the ONNX backend suite)
    folder: Path
    # --accuracy-budget's higher precisions for a layer, cheapest first ([int8] higher_precisions)
    higher_precisions: tuple[str, ...] = ("float",)
    # The whole parsed target.toml, for target-specific tables ([isa], [toolchain], [memory]...).
    data: dict = field(default_factory=dict, compare=False)

    def tvm(self):
        """The tvm.target.Target to compile for (mcpu = native resolved to this machine's CPU)."""
        import tvm

        spec = dict(self.tvm_target)
        if spec.get("mcpu") == "native":
            spec["mcpu"] = tvm.target.codegen.llvm_get_system_cpu()
        return tvm.target.Target(spec)


def _load(folder: Path) -> Target:
    with open(folder / "target.toml", "rb") as stream:
        data = tomllib.load(stream)
    return Target(
        name=data["name"],
        description=data["description"],
        artefact=data["artefact"],
        runner=data["runner"],
        tvm_target=data.get("tvm_target", {}),
        fusion_families=tuple(data.get("fusion", {}).get("families", ())),
        int8_families=tuple(data.get("int8", {}).get("families", ())),
        onnx_ops=tuple(data.get("onnx", {}).get("ops", ())),
        folder=folder,
        higher_precisions=tuple(data.get("int8", {}).get("higher_precisions", ("float",))),
        data=data,
    )


DEFAULT_TARGET = "host"


def all_targets() -> dict[str, Target]:
    """Every target, the default (host) first, then by folder name."""
    tomls = sorted(targets_dir().glob("*/target.toml"), key=lambda toml: (toml.parent.name != DEFAULT_TARGET, toml.parent.name))
    found = (_load(toml.parent) for toml in tomls)
    return {target.name: target for target in found}


def get_target(name: str) -> Target:
    targets = all_targets()
    if name not in targets:
        raise CompilerError(f"--target {name}: unknown target (known: {', '.join(sorted(targets))})")
    return targets[name]
