"""The parts of OUT/report.json that `run` relies on, checked before anything is run.

An output folder is as trusted as the executable inside it, but a hand-edited or damaged
report must still fail with one line naming what is wrong, not with a traceback halfway
through a run."""

import math

import numpy as np

from compiler.errors import CompilerError
from compiler.names import shown

_DTYPES = {"float32", "float16", "float64", "int8", "uint8", "int16", "int32", "int64", "bool"}
_LAYER_FIELDS = {"index": int, "name": str, "op": str, "impl": str, "macs": int}


class _Bad(Exception):
    pass


def checked_report(report, path) -> dict:
    try:
        _check(report)
    except _Bad as bad:
        raise CompilerError(f"{shown(path)}: not a usable build report ({bad})") from None
    return report


def _check(report) -> None:
    _require(isinstance(report, dict), "not a JSON object")
    interface = report.get("interface")
    _require(isinstance(interface, dict), "no 'interface' section")
    for side in ("inputs", "outputs"):
        tensors = interface.get(side)
        _require(isinstance(tensors, list) and tensors, f"interface.{side} is not a list of tensors")
        for number, tensor in enumerate(tensors):
            _tensor(tensor, f"interface.{side}[{number}]", named=True)
    names = [tensor["name"] for tensor in interface["outputs"]]
    _require(len(set(names)) == len(names), "interface.outputs repeats a name")
    if "coral" in report:
        _coral(report["coral"], interface)


def _coral(coral, interface) -> None:
    _require(isinstance(coral, dict), "'coral' is not an object")
    for side in ("inputs", "outputs"):
        tensors = coral.get(side)
        _require(isinstance(tensors, list) and len(tensors) == len(interface[side]),
                 f"coral.{side} does not match interface.{side}")
        for number, (tensor, spec) in enumerate(zip(tensors, interface[side])):
            where = f"coral.{side}[{number}]"
            _tensor(tensor, where, named=False)
            size = math.prod(tensor["shape"]) * np.dtype(tensor["dtype"]).itemsize
            _require(tensor.get("bytes") == size, f"{where}.bytes is not its shape's size")
            _require(math.prod(spec["shape"]) == math.prod(tensor["shape"]), f"{where} does not match the interface")
    layers = coral.get("layers")
    _require(isinstance(layers, list), "coral.layers is not a list")
    for number, layer in enumerate(layers):
        _require(isinstance(layer, dict) and all(isinstance(layer.get(key), kind) for key, kind in _LAYER_FIELDS.items()),
                 f"coral.layers[{number}] lacks one of {', '.join(_LAYER_FIELDS)}")


def _tensor(tensor, where: str, named: bool) -> None:
    _require(isinstance(tensor, dict), f"{where} is not an object")
    if named:
        _require(isinstance(tensor.get("name"), str), f"{where}.name is not a string")
    shape = tensor.get("shape")
    _require(isinstance(shape, list) and all(type(d) is int and 0 < d < 2**31 for d in shape)
             and math.prod(shape) < 2**31, f"{where}.shape is not a list of positive sizes")
    _require(tensor.get("dtype") in _DTYPES, f"{where}.dtype is not a tensor type")


def _require(condition: bool, what: str) -> None:
    if not condition:
        raise _Bad(what)
