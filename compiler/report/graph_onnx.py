"""graph.onnx: the partitioned Relax graph written as ONNX, so Netron can draw it.

Why ONNX: Netron opens it, and a reader can put the optimised graph beside the source
model. Every binding of `main` becomes one node: a fused group is a single node whose
op_type is its pattern name (domain "compiler.fused") and whose attributes say which
source ONNX nodes (`onnx_nodes`) and Relax ops (`ops`) it absorbed; a plain Relax op
keeps its own name (domain "relax"). Weights become initializers and every edge carries
its dtype and shape. The file is for looking at, not for running: nothing implements
the custom domains.
"""

import numpy as np
import onnx
import tvm
import tvm_ffi
from onnx import helper, numpy_helper
from tvm import relax

from compiler.frontend.provenance import source_node
from compiler.names import shown
from compiler.partition import group_name, group_nodes
from compiler.passes.util import bindings, is_const
from compiler.quant.patterns import CODEGEN as INT8_CODEGEN

FUSED_DOMAIN = "compiler.fused"
INT8_DOMAIN = "compiler.int8"  # groups named "npu_ref.<kernel>": the int8 kernels (other codegens' are float groups)
RELAX_DOMAIN = "relax"
IR_VERSION = 10
_OTHER_DTYPES = {"bfloat16": onnx.TensorProto.BFLOAT16}


def export_graph(mod: tvm.IRModule, graph_name: str = "optimised") -> onnx.ModelProto:
    """`mod`'s "main" (after partitioning, before lowering) as a checker-valid ONNX model."""
    graph = _Exporter(mod).graph(graph_name)
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid(FUSED_DOMAIN, 1), helper.make_opsetid(INT8_DOMAIN, 1),
              helper.make_opsetid(RELAX_DOMAIN, 1)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="compiler")
    model.ir_version = IR_VERSION
    return model


class _UniqueNames:
    """Unique node or tensor names; model-derived ones are shown() (Netron displays them)."""

    def __init__(self):
        self.used = set()

    def __call__(self, base: str) -> str:
        base = shown(base)
        name, suffix = base, 1
        while name in self.used:
            name, suffix = f"{base}_{suffix}", suffix + 1
        self.used.add(name)
        return name


class _Exporter:
    """Walks main's bindings once; `env` maps each Relax var to its tensor name(s).

    A var's entry is a tensor name, a list (tuple value, possibly nested) or None
    (not a tensor: shape, prim value); `literals` keeps the latter for attributes.
    """

    def __init__(self, mod: tvm.IRModule):
        self.mod = mod
        self.node_names, self.tensor_names = _UniqueNames(), _UniqueNames()
        self.env, self.literals, self.const_names = {}, {}, {}
        self.nodes, self.initializers, self.infos, self.input_infos = [], [], {}, {}

    def graph(self, graph_name: str) -> onnx.GraphProto:
        main = self.mod["main"]
        inputs = [self._graph_input(param) for param in main.params]
        for binding in bindings(main):
            self._bind(binding.var, binding.value)
        outputs = [self._output_info(name) for name in dict.fromkeys(_flatten(self._value(main.body.body)))]
        return helper.make_graph(self.nodes, graph_name, inputs, outputs, self.initializers,
                                 value_info=[info for info in self.infos.values() if info is not None])

    def _graph_input(self, param) -> onnx.ValueInfoProto:
        name = self.env[param] = self.tensor_names(param.name)
        info = _value_info(name, param.ty)
        if info is None:
            raise ValueError(f"main's parameter {param.name!r} is not a tensor, shape or scalar")
        self.input_infos[name] = info
        return info

    def _output_info(self, name) -> onnx.ValueInfoProto:
        info = self.infos.pop(name, None) or self.input_infos.get(name)
        if info is not None:
            return info
        tensor = next((t for t in self.initializers if t.name == name), None)
        if tensor is None:  # an output of a type ONNX has no word for
            raise ValueError(f"graph output {name!r} is not a tensor, shape or scalar")
        return helper.make_tensor_value_info(name, tensor.data_type, list(tensor.dims))

    # -- bindings ---------------------------------------------------------------------------

    def _bind(self, var, value):
        if isinstance(value, relax.Call):
            self.env[var] = self._call_node(var, value)
        elif is_const(value):
            self.env[var] = self._const(value, var.name)
        elif isinstance(value, (relax.Var, relax.Tuple, relax.TupleGetItem)):
            self.env[var] = self._value(value)
        else:  # shape, prim value: only ever an attribute of its users
            self.env[var], self.literals[var] = None, value

    def _value(self, expr):
        """Tensor name(s) of an expression used as an argument, or None if it is no tensor."""
        if isinstance(expr, relax.Var):
            return self.env.get(expr)
        if is_const(expr):
            return self._const(expr, "const")
        if isinstance(expr, relax.Tuple):
            return [self._value(field) for field in expr.fields]
        if isinstance(expr, relax.TupleGetItem):
            names = self._value(expr.tuple_value)
            return names[expr.index] if isinstance(names, list) else None
        return None

    def _const(self, const, base: str) -> str:
        if const not in self.const_names:  # TVM objects hash by identity: a shared weight is one tensor
            name = self.tensor_names(base)
            self.initializers.append(numpy_helper.from_array(const.value.numpy(), name))
            self.const_names[const] = name
        return self.const_names[const]

    # -- nodes ------------------------------------------------------------------------------

    def _call_node(self, var, call):
        callee = self.mod[call.op] if isinstance(call.op, tvm.ir.GlobalVar) else None
        if isinstance(callee, relax.Function):
            return self._group_node(var, call, callee)
        op_name, sources = _op_name(call.op), _span_names(call)
        name = self.node_names(sources[0] if sources else _op_type(op_name))
        inputs, attrs = self._arguments(call, name, include_literals=True)
        attrs.update(_attributes(call.attrs))
        if sources:
            attrs["onnx_nodes"] = [shown(source) for source in sources]
        return self._emit(var, _op_type(op_name), RELAX_DOMAIN, name, inputs, attrs)

    def _group_node(self, var, call, func):
        if func.attrs is not None and "Codegen" in func.attrs:  # a library's group (codegen/dnnl.py): its composite
            from compiler.codegen.int8 import composites_in

            func = composites_in(func)[0][1]
        pattern = group_name(func)
        inner = [b.value for b in bindings(func) if isinstance(b.value, relax.Call)]
        sources = group_nodes(func) or list(dict.fromkeys(n for c in inner for n in _span_names(c)))
        op_type = (pattern or call.op.name_hint).split(".")[-1]
        name = self.node_names(sources[0] if sources else op_type)
        inputs = _flatten([self._value(arg) for arg in call.args])
        for inner_call in inner:
            inputs += self._arguments(inner_call, name, include_literals=False)[0]
        attrs = {"function": call.op.name_hint, "ops": [_op_name(c.op) for c in inner]}
        if sources:
            attrs["onnx_nodes"] = [shown(source) for source in sources]
        if inner:
            attrs.update(_attributes(inner[0].attrs))
        int8 = pattern is not None and pattern.split(".")[0] == INT8_CODEGEN
        domain = (INT8_DOMAIN if int8 else FUSED_DOMAIN) if pattern else RELAX_DOMAIN
        return self._emit(var, op_type, domain, name, inputs, attrs)

    def _arguments(self, call, node, include_literals):
        """(input tensor names, attributes) of a call's arguments.

        Outside main, only constants are tensors of the node (the rest are the group's
        parameters, already wired); non-tensor arguments become attributes named after
        the op's argument names when `include_literals`.
        """
        arg_names = _argument_names(call.op)
        inputs, attrs = [], {}
        for index, arg in enumerate(call.args):
            arg_name = arg_names[index] if index < len(arg_names) else f"arg{index}"
            if is_const(arg):
                inputs.append(self._const(arg, f"{node}_{_const_role(call.op, arg_name)}"))
            elif include_literals:
                names = self._value(arg)
                if names is not None:
                    inputs += _flatten(names)
                else:
                    literal = _literal(self.literals.get(arg, arg))
                    if literal is not None:
                        attrs[arg_name] = literal
        return inputs, attrs

    def _emit(self, var, op_type, domain, name, inputs, attrs):
        outputs = self._outputs(var.ty, f"{name}_out")
        attributes = [a for a in (_make_attribute(k, v) for k, v in attrs.items()) if a is not None]
        node = helper.make_node(op_type, [i for i in inputs if i], _flatten(outputs), name=name, domain=domain)
        node.attribute.extend(attributes)
        self.nodes.append(node)
        return outputs

    def _outputs(self, ty, base):
        """One tensor name per tensor in `ty` (nested lists for tuples), with its value_info."""
        if isinstance(ty, tvm.ir.TupleType):
            return [self._outputs(field, f"{base}{i}") for i, field in enumerate(ty.fields)]
        name = self.tensor_names(base)
        self.infos[name] = _value_info(name, ty)
        return name


# -- conversions (pure functions) --------------------------------------------------------------


def _flatten(names) -> list[str]:
    if names is None:
        return []
    if isinstance(names, str):
        return [names]
    return [name for item in names for name in _flatten(item)]


def _span_names(expr) -> list[str]:
    """The source node names in an expression's span (see frontend/provenance.py)."""
    name = source_node(expr)
    return [name] if name else []


def _op_name(op) -> str:
    if isinstance(op, tvm.ir.Op):
        return op.name
    return getattr(op, "name_hint", None) or getattr(op, "name", None) or type(op).__name__


def _op_type(op_name: str) -> str:
    return op_name.removeprefix("relax.").removeprefix("nn.")


def _argument_names(op) -> list[str]:
    return [arg.name for arg in op.arguments] if isinstance(op, tvm.ir.Op) else []


def _const_role(op, arg_name: str) -> str:
    name = _op_name(op)
    if arg_name in ("weight", "bias"):
        return arg_name
    if name in ("relax.matmul", "relax.linear") and arg_name != "x1":
        return "weight"
    if name in ("relax.add", "relax.nn.bias_add"):
        return "bias"
    return "const"


def _elem_type(dtype) -> int:
    dtype = str(dtype)
    if dtype in _OTHER_DTYPES:
        return _OTHER_DTYPES[dtype]
    try:
        return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    except (TypeError, KeyError, ValueError):
        return onnx.TensorProto.UNDEFINED


def _value_info(name, ty) -> onnx.ValueInfoProto | None:
    """A tensor's type; a scalar is a 0-d tensor, a shape a 1-d int64 tensor; None otherwise."""
    if isinstance(ty, relax.TensorType):
        shape = [_dim(dim) for dim in ty.shape.values] if isinstance(ty.shape, relax.ShapeExpr) else None
        return helper.make_tensor_value_info(name, _elem_type(ty.dtype), shape)
    if isinstance(ty, tvm.ir.PrimType):
        return helper.make_tensor_value_info(name, _elem_type(ty.dtype), [])
    if isinstance(ty, relax.ShapeType):
        return helper.make_tensor_value_info(name, onnx.TensorProto.INT64, [ty.ndim] if ty.ndim >= 0 else None)
    return None


def _dim(dim):
    return int(dim.value) if isinstance(dim, tvm.tirx.IntImm) else str(dim)


def _attributes(attrs) -> dict:
    """The convertible fields of a Relax op's attrs (ints, floats, strings, lists of them)."""
    info = getattr(type(attrs), "__tvm_ffi_type_info__", None) if attrs is not None else None
    out = {}
    while info is not None:
        for field in info.fields:
            value = _literal(getattr(attrs, field.name, None))
            if value is not None:
                out.setdefault(field.name, value)
        info = info.parent_type_info
    return out


def _literal(value):
    """A Python int/float/str or a homogeneous list of them, or None when not convertible."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float, str)):
        return value
    if isinstance(value, (tvm.tirx.IntImm, tvm.tirx.FloatImm)):
        return _literal(value.value)
    if isinstance(value, relax.ShapeExpr):
        return _literal(list(value.values))
    if isinstance(value, (list, tuple, tvm_ffi.Array)):
        items = [_literal(item) for item in value]
        kinds = {type(item) for item in items}
        if items and len(kinds) == 1 and kinds <= {int, float, str}:
            return items
        if items and kinds == {int, float}:
            return [float(item) for item in items]
    return None


def _make_attribute(key, value):
    try:
        return helper.make_attribute(key, value)
    except (TypeError, ValueError):
        return None
