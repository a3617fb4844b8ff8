"""Reading and checking the tensors a user passes to `run`."""

import zipfile
from pathlib import Path

import numpy as np

from compiler.errors import CompilerError
from compiler.names import shown


def load_inputs(paths, expected: list[dict]) -> list[np.ndarray]:
    """Arrays for the model's inputs, from .npy files (in input order) or one .npz keyed by name.

    `expected` is report.json's model.inputs: [{"name", "shape", "dtype"}, ...].
    """
    paths = [Path(p) for p in paths]
    if len(paths) == 1 and paths[0].suffix == ".npz":
        arrays = _from_npz(paths[0], expected)
    else:
        if len(paths) != len(expected):
            names = ", ".join(shown(t["name"]) for t in expected)
            raise CompilerError(f"--input: the model has {len(expected)} input(s) ({names}) but {len(paths)} file(s) were given")
        arrays = [(path, _load_npy(path)) for path in paths]
    return [_checked(path, array, spec) for (path, array), spec in zip(arrays, expected)]


def _load_npy(path: Path) -> np.ndarray:
    if not path.is_file():
        raise CompilerError(f"{shown(path)}: no such file")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise CompilerError(f"{shown(path)}: not a readable .npy file ({shown(err)})")


def _from_npz(path: Path, expected):
    if not path.is_file():
        raise CompilerError(f"{shown(path)}: no such file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [t["name"] for t in expected if t["name"] not in archive.files]
            if missing:
                raise CompilerError(f"{shown(path)}: no array named {', '.join(shown(m) for m in missing)} "
                                    f"(has: {', '.join(shown(f) for f in archive.files[:10])})")
            return [(f"{path}[{t['name']}]", archive[t["name"]]) for t in expected]
    except (ValueError, OSError, zipfile.BadZipFile) as err:
        raise CompilerError(f"{shown(path)}: not a readable .npz file ({shown(err)})")


def _checked(path, array, spec) -> np.ndarray:
    shape, dtype = tuple(spec["shape"]), np.dtype(spec["dtype"])
    if array.shape != shape or array.dtype != dtype:
        raise CompilerError(
            f"{shown(path)}: got shape {array.shape} {array.dtype}, but input '{shown(spec['name'])}' "
            f"expects {shape} {dtype}")
    if array.dtype.kind == "f" and np.isnan(array).any():
        # ONNX Runtime propagates NaN, TVM's max/min (ReLU, pooling) and int8 quantisation do
        # not: the result would be a confident answer to an undefined question.
        raise CompilerError(f"{shown(path)}: {int(np.isnan(array).sum()):,} NaN value(s) in input "
                            f"'{shown(spec['name'])}'; the model's output on NaN is undefined")
    return np.ascontiguousarray(array)
