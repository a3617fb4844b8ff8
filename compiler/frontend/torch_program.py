"""PyTorch in: a torch.export ExportedProgram (.pt2 from torch.export.save, or in memory) -> ONNX.

Why through torch's ONNX exporter rather than TVM's from_exported_program: the exporter (torch.onnx,
dynamo=True, onnxscript) writes every node's module path (metadata pkg.torch.onnx.name_scopes), which
becomes the node's name, so report rows read `features.3.conv:conv2d`; and everything downstream is the
ONNX path's: the hardened importer, shape folding, BatchNorm folding by our own pass (the exporter's
optimiser is off: report rows then name the conv, not the BatchNorm it absorbed), validation data,
graph.onnx, and QuantizeLinear / DequantizeLinear for PT2E-quantised programs, which build with their
own scales as a QDQ ONNX does. torch is optional: without it a .pt2 build says how to install it.
"""

import contextlib
import importlib
import io
import logging
import warnings
from pathlib import Path

import onnx

from compiler.errors import CompilerError
from compiler.names import shown

INSTALL = "pip install '.[torch]' (torch==2.13.0 and onnxscript==0.7.2; `make python-deps` installs them)"
SCOPES_KEY = "pkg.torch.onnx.name_scopes"
# PT2E-quantised programs (torchao's convert_pt2e) hold quantized_decomposed.quantize_per_tensor /
# dequantize_per_channel ops; torch registers them only when this module is imported, and
# torch.export.load cannot deserialise the program before.
QUANTIZED_OPS = "torch.ao.quantization.fx._decomposed"


def is_pt2(path) -> bool:
    return Path(path).suffix.lower() == ".pt2"


def _torch():
    try:
        importlib.import_module("onnxscript")  # torch.onnx's dynamo exporter needs it
        import torch
    except ImportError:
        raise CompilerError(f"reading a PyTorch program needs torch: {INSTALL}") from None
    return torch


def load_pt2(path) -> onnx.ModelProto:
    """A .pt2 file (torch.export.save) as an ONNX model; every failure is one CompilerError line."""
    name = shown(Path(path))
    if not Path(path).is_file():
        raise CompilerError(f"{name}: no such file")
    torch = _torch()
    try:
        with _quiet():
            importlib.import_module(QUANTIZED_OPS)
            program = torch.export.load(str(path))
    except Exception as err:  # an archive from another torch version, or not a .pt2 at all
        raise CompilerError(f"{name}: not a torch.export program this torch ({torch.__version__}) can load "
                            f"({_first_line(err)})") from None
    return program_to_onnx(program, name)


def program_to_onnx(program, name: str = "program") -> onnx.ModelProto:
    """An ExportedProgram as ONNX, each node named by the module path it came from."""
    torch = _torch()
    try:
        with _quiet():
            exported = torch.onnx.export(program, dynamo=True, optimize=False, verbose=False)
    except Exception as err:
        raise CompilerError(f"{name}: torch's ONNX exporter cannot convert it ({_first_line(err)})") from None
    model = exported.model_proto
    _name_by_module_path(model.graph)
    return model


def _name_by_module_path(graph: onnx.GraphProto) -> None:
    used = set()
    for node in graph.node:
        scopes = next((prop.value for prop in node.metadata_props if prop.key == SCOPES_KEY), None)
        path = _module_path(scopes)
        if path is None:
            continue
        base = f"{path}:{node.op_type.lower()}"
        name, count = base, 1
        while name in used:
            count += 1
            name = f"{base}~{count}"
        used.add(name)
        node.name = name


def _module_path(scopes: str | None) -> str | None:
    """'features.3.conv' from the exporter's scope list ['', 'features', 'features.3', 'features.3.conv', 'conv2d']:
    the deepest scope that is a module (its last entry names the aten op)."""
    if not scopes:
        return None
    try:
        names = [s for s in _string_list(scopes) if s]
    except (ValueError, SyntaxError):
        return None
    modules = names[:-1]
    return modules[-1] if modules else "model"


def _string_list(text: str) -> list[str]:
    import ast

    value = ast.literal_eval(text)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(text)
    return value


def export_module(module, example_inputs, name: str):
    """torch.export.export(module, example_inputs), its failures (dynamic control flow, inputs that do
    not fit the module) as one CompilerError line."""
    torch = _torch()
    if not isinstance(example_inputs, (tuple, list)) or not example_inputs:
        raise CompilerError(f"{name}: example_inputs must be a non-empty tuple of tensors, one per forward() argument")
    try:
        with _quiet():
            return torch.export.export(_in_eval_mode(torch, module), tuple(example_inputs))
    except Exception as err:
        raise CompilerError(f"{name}: torch.export cannot export the module ({_first_line(err)})") from None


def _in_eval_mode(torch, module):
    """module.eval(). A module torch.export produced (PT2E's convert_pt2e output) refuses eval(): its
    graph keeps the mode it was exported in (torchao's move_exported_model_to_eval is the user's switch),
    and it is taken as it is."""
    try:
        return module.eval()
    except (NotImplementedError, RuntimeError):
        if isinstance(module, torch.fx.GraphModule):
            return module
        raise


@contextlib.contextmanager
def _quiet():
    """torch's exporters print progress, deprecation warnings and log lines a build's user did not ask for."""
    logger = logging.getLogger("torch")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return shown(text[0] if text else type(err).__name__, 160)
