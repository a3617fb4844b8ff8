"""The host's float convolutions on oneDNN (codegen "dnnl").

    mod = offload_float_convs(nhwc_module)   # conv groups -> functions marked {"Codegen": "dnnl"}
    mod = run_codegen(mod)                    # ... -> calls of generated C that calls oneDNN

    probe = offload_groups(partitioned)       # an already partitioned module's own conv / dense groups
                                              # (the int8 build's float calibration probe, quant/calibrate.py)

Why a library: TVM 0.27 has no default CPU schedules for conv2d (LegalizeOps' loop nests run as
LLVM vectorises them: MobileNetV2 224 float in 206 ms where ONNX Runtime takes 4.5 ms), dlight's
CPU rules cover only GEMV and reductions, and the wheel has no DNNL / BLAS contrib. MetaSchedule
records would have to be tuned per model. oneDNN (PyPI onednn-cpu-gomp, oneDNN 3.2) has
convolution kernels for every x86 ISA level, chosen at run time (brgconv_1x1, brdgmm_dw, jit:avx2
here); its MobileNetV2 convolutions, timed alone with NHWC tensors on this 2-core AVX2 machine,
take 5.7-8.4 ms (NCHW tensors: 53 ms, its slow gemm path), so the build converts float graphs
to NHWC first (passes/to_nhwc.py).

A group is a row of compiler/patterns.py (conv2d / depthwise_conv2d, + bias, + residual add,
+ ReLU / clip, or + bias + HardSwish: oneDNN's hardswish post-op) in NHWC with OHWI constant weights and float32 tensors; everything else stays in
TVM. The generated C (kernels/include/npu_dnnl.h) opens the library by its path at the first call,
so model.so needs nothing at link time. Float results differ from TVM's by rounding (another
summation order and FMA): tests compare with ONNX Runtime at a stated tolerance.
"""

import sys
from pathlib import Path

import tvm
from tvm import relax

from compiler.analysis import static_shape
from compiler.codegen.c_module import offload, register_codegen, run_codegen
from compiler.codegen.c_render import CodegenError, CompositeCall
from compiler.partition import fusion_patterns, group_name
from compiler.passes.util import bindings
from compiler.patterns import rows_for

CODEGEN = "dnnl"
FAMILIES = ("conv2d", "conv2d_residual", "depthwise_conv2d", "depthwise_conv2d_residual", "conv2d_hardswish",
            "depthwise_conv2d_hardswish", "dense")
LIBRARY = "libdnnl.so.3"

__all__ = ["CODEGEN", "dnnl_library", "offload_float_convs", "offload_groups", "run_codegen"]


def dnnl_library() -> Path | None:
    """oneDNN's shared library as pip installs it into this environment (PREFIX/lib), or None."""
    path = Path(sys.prefix) / "lib" / LIBRARY
    return path if path.is_file() and (Path(sys.prefix) / "include" / "oneapi" / "dnnl" / "dnnl.h").is_file() else None


def _float_nhwc(ctx) -> bool:
    """A float32 group with static shapes: a convolution in NHWC / OHWI, or a dense layer of a
    2-D input (relax.matmul of [m, k] by a constant [k, n])."""
    if "conv" in ctx.annotated_expr:
        conv = ctx.annotated_expr["conv"]
        attrs = conv.attrs
        return (attrs.data_layout == "NHWC" and attrs.kernel_layout == "OHWI" and attrs.out_layout == "NHWC"
                and str(conv.ty.dtype) == "float32" and static_shape(conv) is not None
                and static_shape(conv.args[0]) is not None)
    matmul = ctx.annotated_expr["matmul"]
    shape = static_shape(matmul.args[0])
    return str(matmul.ty.dtype) == "float32" and shape is not None and len(shape) == 2


def offload_float_convs(mod: tvm.IRModule) -> tvm.IRModule:
    """Every float NHWC convolution group and 2-D dense group of `mod` as a {"Codegen": "dnnl"}
    function, ready for run_codegen."""
    # Unmerged: one C function per group, so graph.onnx and the report show one node per group.
    # bind_constants=False: the VM keeps the weights (as C arrays they would be ~100 MB of source).
    return offload(mod, fusion_patterns(FAMILIES, CODEGEN, _float_nhwc), merge=False, bind_constants=False)


# --- the C emitter -------------------------------------------------------------------------------


def _activation(call: CompositeCall) -> tuple[int, float, float]:
    """(NPU_DNNL_NONE / RELU / CLIP / HARDSWISH, clip min, clip max)."""
    if call.name.endswith("_hardswish"):
        return 3, 0.0, 0.0
    for op in call.ops():
        if op.op.name == "relax.nn.relu":
            return 1, 0.0, 0.0
        if op.op.name == "relax.clip":
            low, high = (float(getattr(arg.value, "value", arg.value)) for arg in op.args[1:3])
            return 2, low, high
    return 0, 0.0, 0.0


class _Group:
    """A composite's operands: its first op's input and weights, the bias and the residual.

    The row's name says which adds follow the first op (compiler/patterns.py spells the chain):
    "..._bias..." adds the bias (a constant, passed as an argument) to the op's result, "..._add..."
    then adds the shortcut, on either side."""

    def __init__(self, call: CompositeCall, op_name: str):
        self.call = call
        self.by_param = {p.__chandle__(): operand for p, operand in zip(call.function.params, call.args)}
        self.op = call.op(op_name)
        self.x, self.weights = self.operand(self.op.args[0]), self.operand(self.op.args[1])
        chain = call.name.split(".", 1)[-1].split("_")
        adds = [op for op in call.ops() if op.op.name == "relax.add"]
        self.bias = self.operand(adds.pop(0).args[1]) if "bias" in chain else None
        self.residual = None
        if "add" in chain:
            residual_add = adds.pop(0)
            inside = {b.var.__chandle__() for block in call.function.body.blocks for b in block.bindings}
            (shortcut,) = [arg for arg in residual_add.args if arg.__chandle__() not in inside]
            self.residual = self.operand(shortcut)

    def operand(self, expr):
        found = self.by_param.get(expr.__chandle__())
        if found is None or found.dtype != "float32":
            raise CodegenError(f"{self.call.name}: {expr} is not a float32 parameter of the group")
        return found

    def epilogue(self) -> str:
        activation, low, high = _activation(self.call)
        return (f"{{.has_bias = {int(self.bias is not None)}, .has_residual = {int(self.residual is not None)}, "
                f".activation = {activation}, .clip_min = {low!r}f, .clip_max = {high!r}f}}")

    def emit(self, ctx, function: str, struct: str, fields: dict, args: list[str]) -> str:
        """The call of npu_dnnl_<function> with its own cache and a constant params struct."""
        ctx.include("npu_dnnl.h")
        cache = ctx.fresh_name("dnnl_cache")
        ctx.helper(f"static npu_dnnl_cache {cache};")
        initialiser = ", ".join([*(f".{key} = {value}" for key, value in fields.items()), f".epilogue = {self.epilogue()}"])
        return "\n".join([
            f"static const {struct} params = {{{initialiser}}};",
            "char error[256];",
            f"if ({function}(&{cache}, &params, {', '.join(args)}, error, sizeof error))",
            '    return npu_ffi_raise("RuntimeError", fn, error);'])

    def optional(self, operand) -> str:
        return operand.expr if operand is not None else "NULL"


def emit_conv(call: CompositeCall, ctx) -> str:
    """C statements running one convolution group on oneDNN. Its weights and bias arrive as
    arguments (the VM's constants), as does a residual input."""
    group = _Group(call, "relax.nn.conv2d")
    attrs = group.op.attrs
    n, h, w, c = static_shape(group.op.args[0])
    _, oh, ow, o = static_shape(group.op)
    top, left, bottom, right = (int(v) for v in attrs.padding)
    fields = dict(n=n, h=h, w=w, c=c, o=o, oh=oh, ow=ow, kh=group.weights.shape[1], kw=group.weights.shape[2],
                  stride_h=int(attrs.strides[0]), stride_w=int(attrs.strides[1]),
                  dilation_h=int(attrs.dilation[0]), dilation_w=int(attrs.dilation[1]),
                  pad_top=top, pad_left=left, pad_bottom=bottom, pad_right=right, groups=int(attrs.groups))
    args = [group.x.expr, group.weights.expr, group.optional(group.bias), group.optional(group.residual),
            call.outputs[0].expr]
    return group.emit(ctx, "npu_dnnl_conv", "npu_dnnl_conv_params", fields, args)


def emit_dense(call: CompositeCall, ctx) -> str:
    """C statements running one dense group (x [m, k] times constant [k, n], + bias, + ReLU / clip)."""
    group = _Group(call, "relax.matmul")
    m, k = group.x.shape
    n = group.weights.shape[1]
    args = [group.x.expr, group.weights.expr, group.optional(group.bias), call.outputs[0].expr]
    return group.emit(ctx, "npu_dnnl_matmul", "npu_dnnl_matmul_params", dict(m=m, k=k, n=n), args)


def _emitters() -> dict:
    emit = {"conv2d": emit_conv, "depthwise_conv2d": emit_conv, "conv2d_residual": emit_conv,
            "depthwise_conv2d_residual": emit_conv, "conv2d_hardswish": emit_conv,
            "depthwise_conv2d_hardswish": emit_conv, "dense": emit_dense}
    return {f"{CODEGEN}.{row.name}": emit[row.family] for row in rows_for(FAMILIES)}


def _cflags() -> list[str]:
    library = dnnl_library()
    if library is None:
        return []
    return [f"-I{Path(sys.prefix) / 'include'}", f'-DNPU_DNNL_LIBRARY="{library}"']


DNNL = register_codegen(CODEGEN, composites=_emitters(), cflags=_cflags())


# --- a partitioned module's own groups on oneDNN --------------------------------------------------

_ROWS = frozenset(row.name for row in rows_for(FAMILIES))


def offload_groups(mod: tvm.IRModule) -> tvm.IRModule:
    """`mod` (partitioned: main calls one function per group) with every convolution and dense
    group that oneDNN takes replaced by a {"Codegen": "dnnl"} function, ready for run_codegen.
    main's bindings keep their variables, so what an instrumented main returns, and the ids
    calibration gives its tensors (quant/calibrate.py), are unchanged: the float calibration probe
    runs its convolutions on oneDNN, not on TVM's untuned loops."""
    builder = relax.BlockBuilder(mod)  # its add_func gives GlobalVars that carry their function's type
    replaced = {}
    for binding in bindings(mod["main"]):
        call = binding.value
        if not (isinstance(call, relax.Call) and isinstance(call.op, tvm.ir.GlobalVar)):
            continue
        group = mod[call.op]
        if group_name(group) not in _ROWS:
            continue
        offloaded = _offloaded_alone(group)
        if offloaded is None:  # the library's check refused it (layout, dtype, shapes): TVM keeps it
            continue
        library_call, library_function = offloaded
        symbol = f"{call.op.name_hint}_{CODEGEN}"
        gv = builder.add_func(library_function.with_attr("global_symbol", symbol), symbol)
        by_param = {param.__chandle__(): arg for param, arg in zip(group.params, call.args)}
        args = [by_param.get(arg.__chandle__(), arg) for arg in library_call.args]  # constants stay as they are
        replaced[call.__chandle__()] = relax.Call(gv, args)
    if not replaced:
        return mod
    result = builder.get()
    result["main"] = _CallReplacer(replaced).visit_expr(mod["main"])
    return relax.transform.DeadCodeElimination(["main"])(result)


def _offloaded_alone(group: relax.Function):
    """(the call of the library function, that function) when the whole group is one oneDNN
    composite, its constants passed as arguments; else None."""
    plain = relax.Function(group.params, group.body, group.ret_ty, group.is_pure)
    offloaded = offload_float_convs(tvm.IRModule({"main": plain}))
    only = bindings(offloaded["main"])
    if len(only) != 1 or not only[0].var.same_as(offloaded["main"].body.body):
        return None
    call = only[0].value
    if not isinstance(call.op, tvm.ir.GlobalVar):
        return None
    return call, offloaded[call.op]


@relax.expr_functor.mutator
class _CallReplacer(relax.PyExprMutator):
    def __init__(self, replaced: dict):
        super().__init__()
        self.replaced = replaced

    def visit_call_(self, call):
        found = self.replaced.get(call.__chandle__())
        return found if found is not None else super().visit_call_(call)
