"""Run QDQ-form int8 graphs on the host through the C reference kernels (codegen "npu_ref").

    from compiler.codegen.int8 import offload_int8
    mod = offload_int8(qdq_module)             # partition with quant/patterns.py + RunCodegen
    ex = tvm.compile(mod, target="llvm")       # the kernels are linked into the executable

Every row of the int8 pattern table (quant/patterns.py) has one C emitter here. The row's
`lower` has already derived the kernel's integer parameters from the composite's constants
(and the row's check has rejected anything the kernel does not compute exactly); the emitter
writes them as a `static const` params struct, the weight / bias / multiplier / shift arrays
as static const arrays (weights already in the kernel layout: OHWI for conv, [O, K] for
dense), inlines the kernel's C source (kernels/ref) once per file, and calls the kernel.
Neighbouring int8 ops are merged into one C function (MergeCompositeFunctions) and pass
their int8 intermediates through static scratch buffers (c_render.composite_renderer).

Before partitioning, a dequantize of a non-constant tensor that several ops read is copied
once per reader (split_shared_dequantize): each int8 op must own the dequantize of its
inputs for its pattern to match, and a copy costs nothing once offloaded.
"""

import tvm
from tvm import relax

from compiler.codegen.c_module import offload, register_codegen, run_codegen
from compiler.codegen.c_render import CodegenError, CompositeCall, Operand
from compiler.codegen.x86 import x86_kernel
from compiler.passes.insert_qdq import kept_float_nodes
from compiler.quant.integer_spec import ONNX
from compiler.quant.patterns import CODEGEN, ROWS, Int8Kernel, fusion_patterns, lower_composite

__all__ = ["EMITTERS", "NPU_REF", "offload_int8", "offloaded_composites", "partition_int8", "run_codegen",
           "split_shared_dequantize"]

# kernel -> (C source in kernels/, params struct, C function, input dtype, output dtype)
KERNELS = {
    "conv2d": ("ref/conv2d_s8.c", "npu_conv2d_params", "npu_conv2d_s8", "int8", "int8"),
    "dense": ("ref/dense_s8.c", "npu_dense_params", "npu_dense_s8", "int8", "int8"),
    "add": ("ref/add_s8.c", "npu_add_params", "npu_add_s8", "int8", "int8"),
    "concat": ("ref/concat_pad_s8.c", "npu_concat_params", "npu_concat_s8", "int8", "int8"),
    "requantize": ("ref/add_s8.c", "npu_requantize_params", "npu_requantize_s8", "int8", "int8"),
    "global_avg_pool2d": ("ref/pool_s8.c", "npu_mean_params", "npu_global_avg_pool_s8", "int8", "int8"),
    "max_pool2d": ("ref/pool_s8.c", "npu_maxpool_params", "npu_max_pool_s8", "int8", "int8"),
    "avg_pool2d": ("ref/pool_s8.c", "npu_avgpool_params", "npu_avg_pool_s8", "int8", "int8"),
    "pad": ("ref/concat_pad_s8.c", "npu_pad_params", "npu_pad_s8", "int8", "int8"),
    "lut": ("ref/add_s8.c", "npu_lut_params", "npu_lut_s8", "int8", "int8"),
    "mul": ("ref/add_s8.c", "npu_mul_params", "npu_mul_s8", "int8", "int8"),
    "prelu": ("ref/prelu_s8.c", "npu_prelu_params", "npu_prelu_s8", "int8", "int8"),
    "softmax": ("ref/softmax_s8.c", "npu_softmax_params", "npu_softmax_s8", "int8", "int8"),
    "resize_nearest": ("ref/resize_s8.c", "npu_resize_params", "npu_resize_nearest_s8", "int8", "int8"),
    "resize_bilinear": ("ref/resize_s8.c", "npu_resize_params", "npu_resize_bilinear_s8", "int8", "int8"),
    "copy": ("ref/move_s8.c", "npu_copy_params", "npu_copy_s8", "int8", "int8"),
    "quantize": ("ref/add_s8.c", "npu_quantize_params", "npu_quantize_f32_s8", "float32", "int8"),
    "dequantize": ("ref/add_s8.c", "npu_quantize_params", "npu_dequantize_s8_f32", "int8", "float32"),
    "conv2d_s16x8": ("ref/conv16x8.c", "npu_conv2d_params", "npu_conv2d_s16x8", "int16", "int16"),
    "dense_s16x8": ("ref/conv16x8.c", "npu_dense_params", "npu_dense_s16x8", "int16", "int16"),
    "requantize_s8_s16": ("ref/conv16x8.c", "npu_requantize_params", "npu_requantize_s8_s16", "int8", "int16"),
    "requantize_s16_s8": ("ref/conv16x8.c", "npu_requantize_params", "npu_requantize_s16_s8", "int16", "int8"),
}

# kernel -> its constant operands, in the order the C function takes them (after the inputs); an
# absent one (a conv without bias) is passed as NULL.
_MAC_CONSTANTS = ("weight", "bias", "multiplier", "shift")
KERNEL_CONSTANTS = {"conv2d": _MAC_CONSTANTS, "dense": _MAC_CONSTANTS, "conv2d_s16x8": _MAC_CONSTANTS,
                    "dense_s16x8": _MAC_CONSTANTS, "lut": ("table",), "prelu": ("alpha",),
                    "resize_nearest": ("y_index", "x_index"), "resize_bilinear": ("y_lerp", "x_lerp")}


def c_literal(value) -> str:
    if isinstance(value, (tuple, list)):
        return "{" + ", ".join(c_literal(v) for v in value) + "}"  # an array member (npu_pad_params)
    if isinstance(value, float):
        return value.hex() + "f"  # exact: every scale is a float32
    return str(int(value))


def c_struct(fields: dict) -> str:
    return "{" + ", ".join(f".{key} = {c_literal(value)}" for key, value in fields.items()) + "}"


_CONCAT_INPUT_FIELDS = ("size", "zero_point", "multiplier", "shift")  # npu_concat_input's, in order


def concat_declarations(params: dict, prefix: str) -> list[str]:
    """`static const` npu_concat_input {prefix}inputs[] and npu_concat_params {prefix}params for a
    concat's flat params (input<i>_size, input<i>_zero_point, ...: the form the Coral codegen's
    spec and the tuner's workload keys take too)."""
    rows = [c_struct({name: params[f"input{i}_{name}"] for name in _CONCAT_INPUT_FIELDS})
            for i in range(params["num_inputs"])]
    return [f"static const npu_concat_input {prefix}inputs[{len(rows)}] = {{\n  " + ",\n  ".join(rows) + "\n};",
            f"static const npu_concat_params {prefix}params = {{.outer = {params['outer']}, .num_inputs = "
            f"{params['num_inputs']}, .inputs = {prefix}inputs, .output_zero_point = {params['output_zero_point']}}};"]


def emit_int8(call: CompositeCall, ctx) -> str:
    """C statements running one composite of the int8 table."""
    kernel: Int8Kernel = lower_composite(call.function)
    source, struct, function, in_dtype, out_dtype = KERNELS[kernel.kernel]
    by_param = {p.__chandle__(): operand for p, operand in zip(call.function.params, call.args)}
    inputs = [_operand(expr, by_param, ctx) for expr in kernel.inputs]
    (out,) = call.outputs
    for operand, dtype in [*((x, in_dtype) for x in inputs), (out, out_dtype)]:
        if operand.dtype != dtype:
            raise CodegenError(f"{call.name}: {operand.expr} is {operand.dtype}, the kernel needs {dtype}")
    simd = _emit_simd(kernel, inputs, out, ctx)
    if simd is not None:
        return simd
    ctx.source(source)
    lines = []
    if kernel.kernel == "concat":
        lines += concat_declarations(kernel.params, "")
        lines.append(f"const int8_t* const sources[{len(inputs)}] = {{{', '.join(x.expr for x in inputs)}}};")
        lines.append(f"{function}(&params, sources, {out.expr});")
        return "\n".join(lines)
    lines.append(f"static const {struct} params = {c_struct(kernel.params)};")
    args = [x.expr for x in inputs]
    for key in KERNEL_CONSTANTS.get(kernel.kernel, ()):
        array = kernel.arrays.get(key)
        args.append("NULL" if array is None else ctx.constant(array, key).expr)
    lines.append(f"{function}(&params, {', '.join(args)}, {out.expr});")
    return "\n".join(lines)


def _emit_simd(kernel: Int8Kernel, inputs: list, out: Operand, ctx) -> str | None:
    """The call of the host CPU's generated SIMD kernel for this op (codegen/x86.py), or None when
    it has none (kernels/ref runs it). The kernel's C (its constants inside) joins the file once, under
    a name unique in the file."""
    name = ctx.fresh_name("kernel")
    generated = x86_kernel(kernel, name)
    if generated is None:
        return None
    text, scratch_bytes = generated
    lines = text.splitlines()
    for header in (line.split('"')[1] for line in lines if line.startswith('#include "')):
        ctx.include(header)  # inlined once per file (npu_quant.h, npu_parallel.h)
    ctx.helper("\n".join(line for line in lines if not line.startswith('#include "')))
    scratch = ctx.scratch("int8", (scratch_bytes,)).expr if scratch_bytes else "NULL"
    return f"{name}({', '.join(x.expr for x in inputs)}, {out.expr}, {scratch});"


def _operand(expr, by_param: dict, ctx) -> Operand:
    if isinstance(expr, tvm.ir.GenericConst):
        return ctx.constant(expr, "input")
    found = by_param.get(expr.__chandle__())
    if found is None:
        raise CodegenError(f"int8 kernel input {expr} is not a parameter of its composite")
    return found


EMITTERS = {row.name: emit_int8 for row in ROWS}
NPU_REF = register_codegen(CODEGEN, composites=EMITTERS)


REFUSALS_ATTR = "int8_refusals"  # main's: node -> why its int8 kernel refused it (the layer computes in float)


def partition_int8(mod: tvm.IRModule, spec: str = ONNX) -> tvm.IRModule:
    """Group the int8 ops of a QDQ-form module into functions marked {"Codegen": "npu_ref"}.
    `spec`: the integer spec (quant/integer_spec.py), recorded on every composite. main records
    why a kernel refused a node (REFUSALS_ATTR), for the report."""
    refusals: dict = {}
    out = offload(split_shared_dequantize(mod), fusion_patterns(kept_float_nodes(mod), spec, refusals))
    if refusals:  # `out` is offload's own new module
        out.update_func(out.get_global_var("main"), out["main"].with_attr(REFUSALS_ATTR, refusals))
    return out


def refusals(mod: tvm.IRModule) -> dict:
    """{node: why its int8 kernel refused it} recorded by partition_int8; {} if none."""
    attrs = mod["main"].attrs
    return {str(k): str(v) for k, v in (attrs.get(REFUSALS_ATTR) or {}).items()} if attrs is not None else {}


def composites_in(func: relax.Function) -> list[tuple[str, relax.Function]]:
    """(pattern name, composite function) of every composite inside `func`, in definition order."""
    found = []
    relax.analysis.post_order_visit(func, lambda e: found.append((str(e.attrs["Composite"]), e))
                                    if isinstance(e, relax.Function) and e.attrs is not None
                                    and "Composite" in e.attrs else None)
    return found


def offloaded_composites(mod: tvm.IRModule) -> list[tuple[str, relax.Function]]:
    """(pattern name, composite function) of every int8 group in a partitioned module. After
    MergeCompositeFunctions the composites are local functions inside the {"Codegen": "npu_ref"}
    functions, not module-level functions."""
    return [found for func in mod.functions.values()
            if isinstance(func, relax.Function) and func.attrs is not None and func.attrs.get("Codegen") == CODEGEN
            for found in composites_in(func)]


def int8_groups(mod: tvm.IRModule, spec: str = ONNX) -> tvm.IRModule:
    """The int8 ops of a QDQ-form module as one composite function each, unmerged and not yet
    handed to the codegen: the shape graph.onnx shows (one node per int8 kernel), and the coral
    firmware's layers (`spec` as partition_int8's)."""
    fuse = relax.transform.FuseOpsByPattern(fusion_patterns(kept_float_nodes(mod), spec), bind_constants=True,
                                            annotate_codegen=False)
    return fuse(split_shared_dequantize(mod))


def offload_int8(mod: tvm.IRModule, options: dict | None = None, spec: str = ONNX) -> tvm.IRModule:
    """partition_int8 + RunCodegen: the int8 groups become calls of generated C (c_module.py).
    `options` are codegen options for npu_ref ({"mode": "source"}, {"dump_dir": ...}); `spec` as
    partition_int8's."""
    return run_codegen(partition_int8(mod, spec), {CODEGEN: options} if options else None)


# ---------------------------------------------------------------------------------------------
# One dequantize per reader


def split_shared_dequantize(mod: tvm.IRModule) -> tvm.IRModule:
    """Copy every dequantize of a non-constant tensor that several bindings (or the return) read,
    so that each reader has its own. Offloaded and composite functions are left alone."""
    functions = {}
    for gv, func in mod.functions.items():
        if isinstance(func, relax.Function) and not (
                func.attrs is not None and ("Codegen" in func.attrs or "Composite" in func.attrs)):
            shared = _shared_dequantize_vars(func)
            if shared:
                func = relax.analysis.remove_all_unused(_Splitter(shared).visit_expr(func))
        functions[gv] = func
    return tvm.IRModule(functions, attrs=mod.attrs, global_infos=mod.global_infos)


def _is_dequantize_of_tensor(value) -> bool:
    return (isinstance(value, relax.Call) and isinstance(value.op, tvm.ir.Op)
            and value.op.name == "relax.dequantize" and not isinstance(value.args[0], tvm.ir.GenericConst))


def _shared_dequantize_vars(func) -> set:
    bindings = [b for block in func.body.blocks for b in block.bindings]
    candidates = {b.var.__chandle__() for b in bindings
                  if isinstance(b, relax.VarBinding) and _is_dequantize_of_tensor(b.value)}
    if not candidates:
        return set()
    uses: dict[int, int] = {}
    for user in [b.value for b in bindings] + [func.body.body]:
        def count(expr):
            if isinstance(expr, relax.Var) and expr.__chandle__() in candidates:
                uses[expr.__chandle__()] = uses.get(expr.__chandle__(), 0) + 1
        relax.analysis.post_order_visit(user, count)
    return {key for key, n in uses.items() if n > 1}


@relax.expr_functor.mutator
class _Splitter(relax.PyExprMutator):
    """Rewrites each call reading a shared dequantize var (directly or in a tuple argument) to
    read a fresh copy emitted just before it."""

    def __init__(self, shared: set):
        super().__init__()
        self.shared = shared

    def _fresh(self, arg):
        if isinstance(arg, relax.Var) and arg.__chandle__() in self.shared:
            value = self.lookup_binding(arg)  # a new Call object: pattern matching tells calls apart by identity
            return self.builder_.emit(relax.Call(value.op, value.args, value.attrs, value.ty_args, value.span))
        if isinstance(arg, relax.Tuple) and any(isinstance(f, relax.Var) and f.__chandle__() in self.shared
                                                for f in arg.fields):
            return relax.Tuple([self._fresh(f) for f in arg.fields])
        return arg

    def visit_call_(self, op):
        call = self.visit_expr_post_order(op)
        args = [self._fresh(a) for a in call.args]
        if all(a.same_as(b) for a, b in zip(args, call.args)):
            return call
        return relax.Call(call.op, args, call.attrs, call.ty_args, call.span)
