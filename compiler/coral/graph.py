"""The quantised model as the firmware sees it: tensors and a straight-line list of steps.

Input is a QDQ-form module whose int8 ops are one composite function each
(codegen.int8.int8_groups). Each binding of main becomes one step:

    kernel     a composite of the int8 pattern table, lowered to its kernel parameters
               (quant/patterns.py lower_composite): a generated RVV kernel or kernels/ref
    transpose  R.permute_dims (the NCHW <-> NHWC boundaries to_nhwc leaves): portable C
    alias      R.reshape or a plain rebinding: no code, the output shares the input's bytes
    tvm        any other operator (float Softmax, a --keep-float layer, ...): legalised to one
               PrimFunc for TVM's LLVM backend (coral/tvm_fallback.py)
"""

import math
from dataclasses import dataclass, field

import numpy as np
import tvm
from tvm import relax

from compiler.analysis import macs, static_shape
from compiler.errors import CompilerError
from compiler.frontend.provenance import source_node
from compiler.names import shown
from compiler.passes.util import bindings
from compiler.coral.tvm_fallback import TirCall, lower_call
from compiler.quant.patterns import Int8Kernel, lower_composite
from compiler.report.summary import computing_nodes, kernel_nodes


@dataclass
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    alias_of: int | None = None  # a reshape shares its input's storage

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * np.dtype(self.dtype).itemsize


@dataclass
class Step:
    index: int
    kind: str                  # kernel, transpose, alias, tvm
    op: str                    # the pattern (conv2d_bias_relu, ...) or the relax op
    name: str                  # the first ONNX node it computes, or the IR variable
    inputs: list[int]
    output: int
    onnx_nodes: list[str] = field(default_factory=list)
    kernel: Int8Kernel | None = None
    axes: tuple[int, ...] = ()  # transpose
    tir: TirCall | None = None  # tvm: the operator as one PrimFunc
    macs: int = 0


@dataclass
class FirmwareGraph:
    tensors: list[Tensor]
    steps: list[Step]
    inputs: list[int]
    outputs: list[int]

    def storage(self, index: int) -> int:
        """The tensor whose bytes `index` uses (follows reshape aliases)."""
        while self.tensors[index].alias_of is not None:
            index = self.tensors[index].alias_of
        return index


def extract_graph(mod: tvm.IRModule) -> FirmwareGraph:
    """Steps of `mod["main"]` in execution order (see the module docstring)."""
    main = mod["main"]
    tensors: list[Tensor] = []
    by_var: dict = {}

    def new_tensor(var) -> int:
        shape = static_shape(var)
        if shape is None:
            raise CompilerError(f"{shown(var.name)}: coral-npu needs static shapes")
        tensors.append(Tensor(len(tensors), var.name, shape, str(var.ty.dtype)))
        by_var[var.__chandle__()] = tensors[-1].index
        return tensors[-1].index

    inputs = [new_tensor(param) for param in main.params]
    steps: list[Step] = []
    tuples: dict = {}  # a tuple binding (several outputs) -> its tensors
    for binding in bindings(main):
        value = binding.value
        if isinstance(value, relax.Tuple):
            tuples[binding.var.__chandle__()] = [_tensor_of(by_var, field) for field in value.fields]
            continue
        if isinstance(value, relax.Var) and value.__chandle__() in tuples:  # gv = the tuple (dataflow output)
            tuples[binding.var.__chandle__()] = tuples[value.__chandle__()]
            continue
        steps.append(_step(mod, binding, len(steps), by_var, new_tensor, tensors))
    returned = main.body.body
    if isinstance(returned, relax.Var) and returned.__chandle__() in tuples:
        outputs = tuples[returned.__chandle__()]
    else:
        outputs = [_tensor_of(by_var, out) for out in _returned(main)]
    computed = [step for step in steps if step.kind != "alias"]
    for index, step in enumerate(computed):
        step.index = index
    graph = FirmwareGraph(tensors, computed, inputs, outputs)
    _name_conversions(graph)
    return graph


def _name_conversions(graph: FirmwareGraph) -> None:
    """float <-> int8 and int8 <-> int16 conversions come from no ONNX node: name them after where they
    sit (the model's input or output, or the float or 16x8 layer they feed or follow, as around
    --keep-float and --int16)."""
    producer = {graph.storage(step.output): step for step in graph.steps}
    for step in graph.steps:
        if step.kind != "kernel" or step.onnx_nodes or step.op not in ("quantize", "dequantize", "rescale"):
            continue
        if step.op == "rescale":  # int8 <-> int16 around a 16x8 layer
            users = [s for s in graph.steps if graph.storage(step.output) in map(graph.storage, s.inputs)]
            source = producer.get(graph.storage(step.inputs[0]))
            step.name = (f"int16 for {users[0].name}" if step.kernel.kernel == "requantize_s8_s16" and users
                         else f"int8 after {source.name}" if source is not None else "rescale")
        elif step.op == "quantize":
            source = producer.get(graph.storage(step.inputs[0]))
            step.name = "input quantize" if source is None else f"quantize after {source.name}"
        else:
            users = [s for s in graph.steps if graph.storage(step.output) in map(graph.storage, s.inputs)]
            step.name = f"dequantize for {users[0].name}" if users else "output dequantize"


def _returned(main) -> list:
    body = main.body.body
    return list(body.fields) if isinstance(body, relax.Tuple) else [body]


def _tensor_of(by_var, expr) -> int:
    if not isinstance(expr, relax.Var) or expr.__chandle__() not in by_var:
        raise CompilerError(f"coral-npu: {expr} is not a tensor the firmware computes (constant outputs are not supported)")
    return by_var[expr.__chandle__()]


def _step(mod, binding, index, by_var, new_tensor, tensors) -> Step:
    var, value = binding.var, binding.value
    if isinstance(value, relax.Var):  # gv = lv: the same bytes under another name
        return _alias(index, var, value, by_var, new_tensor, tensors, "rebind")
    if not isinstance(value, relax.Call):
        raise CompilerError(f"{shown(var.name)}: coral-npu cannot run a {type(value).__name__} binding")
    if isinstance(value.op, tvm.ir.GlobalVar):
        return _kernel_step(mod[value.op], value, index, var, by_var, new_tensor)
    op = value.op.name
    if op == "relax.reshape":
        return _alias(index, var, value.args[0], by_var, new_tensor, tensors, "reshape")
    if op == "relax.permute_dims":
        source = _tensor_of(by_var, value.args[0])
        rank = len(tensors[source].shape)
        axes = tuple(int(a) for a in value.attrs.axes) if value.attrs.axes is not None else tuple(reversed(range(rank)))
        return Step(index, "transpose", "transpose", "layout transpose", [source], new_tensor(var), axes=axes)
    return _tvm_step(value, index, var, by_var, new_tensor)


def _tvm_step(call, index, var, by_var, new_tensor) -> Step:
    """An operator outside the int8 table (float, or int8 without a kernel): one PrimFunc for
    TVM's LLVM backend (coral/tvm_fallback.py)."""
    op = call.op.name.removeprefix("relax.")
    onnx_node = source_node(call)
    name = onnx_node or var.name
    tir_call, inputs = lower_call(call, name)
    inputs = [_tensor_of(by_var, arg) for arg in inputs]
    return Step(index, "tvm", op, name, inputs, new_tensor(var), onnx_nodes=[onnx_node] if onnx_node else [],
                tir=tir_call, macs=macs(call))


def _alias(index, var, source_expr, by_var, new_tensor, tensors, op) -> Step:
    source = _tensor_of(by_var, source_expr)
    out = new_tensor(var)
    if tensors[out].nbytes != tensors[source].nbytes:
        raise CompilerError(f"{shown(var.name)}: {op} changes the byte size")
    tensors[out].alias_of = source
    return Step(index, "alias", op, var.name, [source], out)


def _kernel_step(func, call, index, var, by_var, new_tensor) -> Step:
    name = str(func.attrs["Composite"])
    kernel = lower_composite(func)
    by_param = {p.__chandle__(): arg for p, arg in zip(func.params, call.args)}
    inputs = []
    for expr in kernel.inputs:
        arg = by_param.get(expr.__chandle__())
        if arg is None:
            raise CompilerError(f"{shown(name)}: kernel input {shown(expr)} is not an argument of its composite")
        inputs.append(_tensor_of(by_var, arg))
    nodes = kernel_nodes(func)
    op = name.split(".", 1)[-1]
    label = (computing_nodes(func) or nodes or [var.name])[0]  # conversions are named by _name_conversions
    return Step(index, "kernel", op, label, inputs, new_tensor(var), onnx_nodes=nodes, kernel=kernel, macs=macs(func))

