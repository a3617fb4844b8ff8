"""What a renderer works with: one generated C file (CUnit), the per-function RenderContext, and
`composite_renderer`, which turns a table {composite name: C emitter} into a renderer for the
functions MergeCompositeFunctions produces (one or several composite calls, intermediates in
static scratch buffers, one or several outputs).

See c_module.py for the life cycle and the ABI.
"""

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tvm
from tvm import relax

from compiler.resources import data_dir
from compiler.codegen.ffi_abi import PRELUDE, array_literal, ctype, indent

KERNELS_DIR = data_dir("kernels")
# Where include("x.h") / source("ref/y.c") look, after the including file's own folder.
SEARCH_DIRS = [KERNELS_DIR / "include", KERNELS_DIR]
_QUOTED_INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"\s*$')


class CodegenError(RuntimeError):
    """A renderer could not produce C for a function, or the C did not compile."""


def _key(node) -> int:
    return node.__chandle__()


@dataclass(frozen=True)
class Operand:
    """A tensor as C sees it: `expr` is a typed pointer to its first element (`in0`, `out0`, a
    static const array or a static scratch buffer); `tensor` is its DLTensor* (entry arguments
    only), for reading symbolic dims at run time."""

    expr: str
    dtype: str
    shape: tuple  # ints; None for a symbolic dim
    tensor: str | None = None

    @property
    def ctype(self) -> str:
        return ctype(self.dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int | None:
        """Number of elements, or None when a dim is symbolic."""
        if any(d is None for d in self.shape):
            return None
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def numel(self) -> str:
        """Number of elements as a C expression (read from the DLTensor when a dim is symbolic)."""
        if self.size is not None:
            return str(self.size)
        if self.tensor is None:
            raise CodegenError(f"{self.expr} has a symbolic shape and no DLTensor to read it from")
        return "(" + " * ".join(f"{self.tensor}->shape[{i}]" for i in range(self.ndim)) + ")"


def tensor_types(ty) -> list:
    """The TensorTypes of a (possibly tuple) relax type, flattened, in order."""
    if isinstance(ty, relax.TupleType):
        return [t for field in ty.fields for t in tensor_types(field)]
    if isinstance(ty, relax.TensorType):
        return [ty]
    raise CodegenError(f"only tensors (and tuples of tensors) cross the C boundary, got {ty}")


def static_shape(ty) -> tuple:
    if ty.shape is None or not hasattr(ty.shape, "values"):
        raise CodegenError(f"tensor type {ty} has no known rank")
    return tuple(int(v.value) if isinstance(v, tvm.tirx.IntImm) else None for v in ty.shape.values)


class CUnit:
    """One generated C file (one per codegen invocation): prelude, inlined kernel headers and
    sources (each once), helpers (each once), static constants (deduplicated by value), scratch
    buffers, and the entry functions."""

    def __init__(self, search_dirs=None):
        self.search_dirs = [Path(d) for d in (search_dirs or SEARCH_DIRS)]
        self._inlined: list[str] = []
        self._seen_files: set[Path] = set()
        self._helpers: list[str] = []
        self._constants: dict[tuple, Operand] = {}
        self._data: list[str] = []
        self._functions: list[str] = []
        self._names = 0

    def fresh_name(self, what: str) -> str:
        self._names += 1
        return f"npu_{what}{self._names - 1}"

    def _resolve(self, name: str, near: Path | None) -> Path:
        dirs = ([near] if near else []) + self.search_dirs
        for d in dirs:
            path = (Path(name) if Path(name).is_absolute() else d / name).resolve()
            if path.is_file():
                return path
        raise CodegenError(f'cannot find "{name}" in {", ".join(map(str, dirs))}')

    def _inline(self, path: Path) -> str:
        self._seen_files.add(path)
        out = [f"/* ---- inlined from {path} ---- */"]
        for line in path.read_text().splitlines():
            match = _QUOTED_INCLUDE.match(line)
            if not match:
                out.append(line)
                continue
            dep = self._resolve(match.group(1), path.parent)
            out.append(self._inline(dep) if dep not in self._seen_files else f"/* {line.strip()}: already inlined */")
        out.append(f"/* ---- end of {path.name} ---- */")
        return "\n".join(out)

    def include(self, name: str) -> None:
        """Inline a header (e.g. "npu_quant.h") once, with its quoted includes, so the generated
        file needs no -I to compile."""
        path = self._resolve(name, None)
        if path not in self._seen_files:
            self._inlined.append(self._inline(path))

    # A kernel source is inlined exactly like a header.
    source = include

    def helper(self, text: str) -> None:
        """Top-level C (static functions, macros), emitted once however often it is requested."""
        if text not in self._helpers:
            self._helpers.append(text)

    def constant(self, value, hint: str = "const") -> Operand:
        """A static const array holding `value` (a relax constant or a NumPy array); equal
        values share one array."""
        array = value.value.numpy() if isinstance(value, tvm.ir.expr.Constant) else np.asarray(value)
        array = np.ascontiguousarray(array)
        key = (str(array.dtype), array.shape, hashlib.sha1(array.tobytes()).hexdigest())
        if key not in self._constants:
            name = f"npu_{re.sub(r'[^0-9A-Za-z_]', '_', hint)}{len(self._constants)}"
            c = ctype(str(array.dtype))
            self._data.append(f"static const {c} {name}[{max(array.size, 1)}] NPU_ALIGNED = "
                              f"{array_literal(array)};")
            self._constants[key] = Operand(name, str(array.dtype), tuple(array.shape))
        return self._constants[key]

    def scratch(self, name: str, dtype: str, shape: tuple) -> Operand:
        operand = Operand(name, dtype, tuple(shape))
        if operand.size is None:
            raise CodegenError(f"scratch buffer {name} needs a static shape, got {shape}")
        self._data.append(f"static {operand.ctype} {name}[{max(operand.size, 1)}] NPU_ALIGNED;")
        return operand

    def add_function(self, text: str) -> None:
        self._functions.append(text)

    def text(self) -> str:
        parts = [PRELUDE, *self._inlined, *self._helpers, "\n".join(self._data), *self._functions]
        return "\n\n".join(p.strip("\n") for p in parts if p.strip()) + "\n"


class RenderContext:
    """What a renderer gets besides the relax Function: the symbol, the entry's operands
    (`inputs`: in0.., `outputs`: out0..), and the file-level services of its CUnit."""

    def __init__(self, symbol: str, function, unit: CUnit, inputs: list[Operand], outputs: list[Operand]):
        self.symbol = symbol
        self.function = function
        self.unit = unit
        self.inputs = inputs
        self.outputs = outputs
        self._scratch = 0

    def include(self, name: str) -> None:
        self.unit.include(name)

    def source(self, name: str) -> None:
        self.unit.source(name)

    def helper(self, text: str) -> None:
        self.unit.helper(text)

    def constant(self, value, hint: str = "const") -> Operand:
        return self.unit.constant(value, hint)

    def fresh_name(self, what: str) -> str:
        """A short file-unique C name (npu_<what><n>) for something a renderer defines (a generated
        kernel). Not derived from the symbol: TVM's fused-function symbols run to kilobytes."""
        return self.unit.fresh_name(what)

    def scratch(self, dtype: str, shape: tuple) -> Operand:
        """A static buffer for an intermediate (not reentrant: one call of the function at a time)."""
        self._scratch += 1
        return self.unit.scratch(f"{self.symbol}_scratch{self._scratch - 1}", dtype, shape)


@dataclass(frozen=True)
class CompositeCall:
    """One call of a composite function inside an offloaded function: `name` is its "Composite"
    attribute (the pattern name), `function` the composite itself (read attributes and constants
    from its ops), `args` / `outputs` the operands bound to its params / results."""

    name: str
    function: object  # relax.Function
    args: tuple
    outputs: tuple

    def ops(self) -> list:
        """The op calls in the composite body, in order (relax.Call with .op.name, .args, .attrs)."""
        return [b.value for block in self.function.body.blocks for b in block.bindings
                if isinstance(b.value, relax.Call) and isinstance(b.value.op, tvm.ir.Op)]

    def op(self, name: str):
        """The first call of op `name` (e.g. "relax.nn.conv2d") in the composite."""
        for call in self.ops():
            if call.op.name == name:
                return call
        raise CodegenError(f"composite {self.name} has no {name} call")


def composite_renderer(table: dict):
    """A renderer from {composite name: emit(call: CompositeCall, ctx) -> C statements}.

    Walks the offloaded function's bindings: composite calls are emitted in order, each in its
    own C block; results that are function outputs are written straight into out<i>, other
    intermediates into static scratch buffers; an output that is not a direct composite result
    is copied at the end."""

    def render(func, ctx: RenderContext) -> str:
        values: dict[int, list[Operand]] = {_key(p): [op] for p, op in zip(func.params, ctx.inputs)}
        local_functions: dict[int, object] = {}
        result = func.body.body
        result_vars = list(result.fields) if isinstance(result, relax.Tuple) else [result]
        # MergeCompositeFunctions may leave aliases (`gv = lv`): an output that aliases a composite
        # result is written by that composite directly.
        aliases = {_key(b.var): b.value for block in func.body.blocks for b in block.bindings
                   if isinstance(b.value, relax.Var)}

        def resolve(var):
            while isinstance(var, relax.Var) and _key(var) in aliases:
                var = aliases[_key(var)]
            return var

        result_vars = [resolve(var) for var in result_vars]
        direct: dict[int, Operand] = {}
        for var, out in zip(result_vars, ctx.outputs):
            direct.setdefault(_key(var), out)
        written = set()
        blocks = []

        def operand(expr) -> Operand:
            if isinstance(expr, tvm.ir.expr.Constant):
                return ctx.constant(expr)
            found = values.get(_key(expr))
            if found is None or len(found) != 1:
                raise CodegenError(f"{ctx.symbol}: cannot pass {expr} to a composite")
            return found[0]

        for block in func.body.blocks:
            for binding in block.bindings:
                var, value = binding.var, binding.value
                if isinstance(value, relax.Function):
                    local_functions[_key(var)] = value
                elif isinstance(value, relax.TupleGetItem):
                    values[_key(var)] = [values[_key(value.tuple_value)][value.index]]
                elif isinstance(value, relax.Var):
                    values[_key(var)] = values[_key(resolve(value))]
                elif isinstance(value, relax.Call) and _key(value.op) in local_functions:
                    inner = local_functions[_key(value.op)]
                    name = str(inner.attrs["Composite"])
                    if name not in table:
                        raise CodegenError(f"{ctx.symbol}: no C emitter for composite {name} "
                                           f"(known: {', '.join(sorted(table))})")
                    if _key(var) in direct and isinstance(var.ty, relax.TensorType):
                        outs = [direct[_key(var)]]
                        written.add(_key(var))
                    else:
                        outs = [ctx.scratch(t.dtype, static_shape(t)) for t in tensor_types(var.ty)]
                    values[_key(var)] = outs
                    call = CompositeCall(name, inner, tuple(operand(a) for a in value.args), tuple(outs))
                    blocks.append(f"{{ /* {name} */\n{indent(table[name](call, ctx))}\n}}")
                else:
                    raise CodegenError(f"{ctx.symbol}: unexpected binding {var} = {value} "
                                       "(expected calls of composite functions)")
        for index, (var, out) in enumerate(zip(result_vars, ctx.outputs)):
            if _key(var) in written and direct[_key(var)] is out:
                continue
            source = operand(var)
            blocks.append(f"memcpy({out.expr}, {source.expr}, sizeof({out.ctype}) * (size_t){out.numel});"
                          f" /* output {index} */")
        return "\n".join(blocks)

    return render

