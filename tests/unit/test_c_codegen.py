"""The C-source BYOC codegen (compiler/codegen/c_module.py), end to end on a toy kernel.

A saturating int8 add is offloaded to codegen "npu_c_test", rendered as a C loop, compiled,
and run in the Relax VM in memory and from an exported .so; results must equal NumPy bit for bit.
"""

import ctypes

import numpy as np
import pytest
import tvm
from tvm import relax
from tvm.relax.dpl import is_const, is_op, wildcard

from compiler.codegen import c_module
from compiler.codegen.c_module import offload, register_codegen, run_codegen
from compiler.codegen.c_render import CodegenError, CompositeCall, CUnit

CODEGEN = "npu_c_test"


def sat_add(a, b):
    return np.clip(a.astype(np.int32) + b.astype(np.int32), -128, 127).astype(np.int8)


def emit_add(call: CompositeCall, ctx) -> str:
    a, b = call.args
    (out,) = call.outputs
    return (f"for (int64_t i = 0; i < {out.numel}; ++i) {{\n"
            f"  int32_t s = (int32_t){a.expr}[i] + (int32_t){b.expr}[i];\n"
            f"  {out.expr}[i] = (int8_t)(s > 127 ? 127 : s < -128 ? -128 : s);\n"
            "}")


def emit_add_const(call: CompositeCall, ctx) -> str:
    weight = ctx.constant(call.op("relax.add").args[1], "w")
    return emit_add(CompositeCall(call.name, call.function, (call.args[0], weight), call.outputs), ctx)


TEST_CODEGEN = register_codegen(CODEGEN, composites={f"{CODEGEN}.add": emit_add,
                                                     f"{CODEGEN}.add_const": emit_add_const})
PATTERNS = [relax.transform.FusionPattern(f"{CODEGEN}.add_const", is_op("relax.add")(wildcard(), is_const())),
            relax.transform.FusionPattern(f"{CODEGEN}.add", is_op("relax.add")(wildcard(), wildcard()))]

# Extremes on both sides of the saturation bounds.
X = np.array([[100, -100, 5, 127], [127, -128, 0, -1]], "float32")
Y = np.array([[100, -100, -5, 127], [1, -1, 7, -128]], "int8")
W = np.array([[-128, 127, 3, -7], [50, -50, 0, 127]], "int8")


def build(body, shapes=((2, 4), (2, 4)), dtypes=("float32", "int8")):
    """main(x, y) whose dataflow block is `body(bb, x, y)` -> output expr."""
    bb = relax.BlockBuilder()
    params = [relax.Var(name, relax.TensorType(shape, dtype)) for name, shape, dtype in zip("xy", shapes, dtypes)]
    with bb.function("main", params):
        with bb.dataflow():
            out = bb.emit_output(body(bb, *params))
        bb.emit_func_output(out)
    return bb.get()


def add_between_casts(bb, x, y):
    a = bb.emit(relax.op.astype(x, "int8"))
    return relax.op.astype(bb.emit(relax.op.add(a, y)), "float32")


def compile_offloaded(mod, merge=True, options=None):
    offloaded = run_codegen(offload(mod, PATTERNS, merge=merge), options)
    return tvm.compile(offloaded, target="llvm")


def run(executable_or_lib, *inputs):
    vm = relax.VirtualMachine(executable_or_lib, tvm.cpu())
    result = vm["main"](*(tvm.runtime.tensor(x) for x in inputs))
    return result.numpy() if hasattr(result, "numpy") else [item.numpy() for item in result]


def exported(executable, tmp_path):
    path = str(tmp_path / "model.so")
    executable.export_library(path)
    return tvm.runtime.load_module(path)


def offloaded_symbols(mod) -> list[str]:
    return [gv.name_hint for gv, f in mod.functions.items()
            if isinstance(f, relax.Function) and "Codegen" in f.attrs]


@pytest.mark.parametrize("mode", ["object", "source"])
def test_add_runs_in_memory_and_exported(mode, tmp_path):
    mod = build(add_between_casts)
    partitioned = offload(mod, PATTERNS)
    assert len(offloaded_symbols(partitioned)) == 1
    lowered = run_codegen(partitioned, {CODEGEN: {"mode": mode}})
    assert "call_dps_packed" in lowered.script()  # RunCodegen passes the output buffer last
    executable = tvm.compile(lowered, target="llvm")
    expected = sat_add(X.astype(np.int8), Y).astype("float32")
    np.testing.assert_array_equal(run(executable, X, Y), expected)
    np.testing.assert_array_equal(run(exported(executable, tmp_path), X, Y), expected)


def test_constant_is_emitted_as_static_const_array(tmp_path):
    mod = build(lambda bb, x, y: relax.op.add(bb.emit(relax.op.astype(x, "int8")), relax.const(W)))
    executable = compile_offloaded(mod)
    source = TEST_CODEGEN.last_source
    assert "static const int8_t npu_w0[8] NPU_ALIGNED = {\n  -128, 127, 3, -7, 50, -50, 0, 127\n};" in source
    expected = sat_add(X.astype(np.int8), W)
    np.testing.assert_array_equal(run(executable, X, Y), expected)
    np.testing.assert_array_equal(run(exported(executable, tmp_path), X, Y), expected)


def test_two_offloaded_functions_in_one_module(tmp_path):
    def body(bb, x, y):
        first = bb.emit(relax.op.add(bb.emit(relax.op.astype(x, "int8")), y))  # offloaded
        halved = bb.emit(relax.op.multiply(bb.emit(relax.op.astype(first, "float32")), relax.const(0.5)))
        return relax.op.add(bb.emit(relax.op.astype(halved, "int8")), relax.const(W))  # offloaded

    mod = build(body)
    assert len(offloaded_symbols(offload(mod, PATTERNS))) == 2
    executable = compile_offloaded(mod)
    assert TEST_CODEGEN.last_source.count("TVM_FFI_DLL_EXPORT int __tvm_ffi_") == 2  # one C file, two entries
    first = sat_add(X.astype(np.int8), Y)
    expected = sat_add((first.astype("float32") * 0.5).astype(np.int8), W)
    np.testing.assert_array_equal(run(executable, X, Y), expected)
    np.testing.assert_array_equal(run(exported(executable, tmp_path), X, Y), expected)


def chain_with_two_outputs(bb, x, y):
    b = bb.emit(relax.op.add(bb.emit(relax.op.astype(x, "int8")), relax.const(W)))
    c = bb.emit(relax.op.add(b, y))
    return relax.Tuple([bb.emit(relax.op.astype(c, "float32")), bb.emit(relax.op.add(c, b))])


@pytest.mark.parametrize("merge", [True, False])
def test_chain_merged_into_one_function_with_two_outputs(merge, tmp_path):
    mod = build(chain_with_two_outputs)
    partitioned = offload(mod, PATTERNS, merge=merge)
    # annotate_codegen=True (merge=False) leaves one function per composite; structurally equal
    # ones are shared, so the two plain adds become one function called twice.
    assert len(offloaded_symbols(partitioned)) == (1 if merge else 2)
    executable = tvm.compile(run_codegen(partitioned), target="llvm")
    if merge:
        assert "_scratch0[8] NPU_ALIGNED;" in TEST_CODEGEN.last_source
    b = sat_add(X.astype(np.int8), W)
    c = sat_add(b, Y)
    for result in (run(executable, X, Y), run(exported(executable, tmp_path), X, Y)):
        np.testing.assert_array_equal(result[0], c.astype("float32"))
        np.testing.assert_array_equal(result[1], sat_add(c, b))


def test_wrong_arguments_raise_clear_errors(tmp_path):
    mod = build(add_between_casts)
    partitioned = offload(mod, PATTERNS)
    (symbol,) = offloaded_symbols(partitioned)
    executable = tvm.compile(run_codegen(partitioned), target="llvm")
    good = tvm.runtime.tensor(Y)
    for lib in (executable.jit(), exported(executable, tmp_path)):
        kernel = lib.get_function(symbol, query_imports=True)
        out = tvm.runtime.empty((2, 4), "int8")
        kernel(good, good, out)
        np.testing.assert_array_equal(out.numpy(), sat_add(Y, Y))
        with pytest.raises(TypeError, match=rf"{symbol}: argument 1 \(input 1\) must have dtype int8, got float32"):
            kernel(good, tvm.runtime.tensor(X), out)
        with pytest.raises(ValueError, match=r"argument 2 \(output 0\) dimension 1 must be 4, got 3"):
            kernel(good, good, tvm.runtime.empty((2, 3), "int8"))
        with pytest.raises(ValueError, match=r"argument 0 \(input 0\) must have 2 dimensions, got 1"):
            kernel(tvm.runtime.tensor(Y.reshape(-1)), good, out)
        with pytest.raises(TypeError, match=r"expected 3 arguments \(2 inputs \+ 1 outputs\), got 2"):
            kernel(good, good)
        with pytest.raises(TypeError, match=r"argument 1 \(input 1\) must be a tensor"):
            kernel(good, 3, out)
    # Through the VM, main's own signature check fires first.
    with pytest.raises(ValueError, match="expect Tensor with dtype int8 but get float32"):
        run(executable, X, X)


class DLTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32),
                ("ndim", ctypes.c_int32), ("code", ctypes.c_uint8), ("bits", ctypes.c_uint8),
                ("lanes", ctypes.c_uint16), ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("strides", ctypes.POINTER(ctypes.c_int64)), ("byte_offset", ctypes.c_uint64)]


class TVMFFIAny(ctypes.Structure):
    _fields_ = [("type_index", ctypes.c_int32), ("zero_padding", ctypes.c_uint32), ("v_ptr", ctypes.c_void_p)]


def test_raw_abi_with_dltensor_pointers(tmp_path):
    """Call __tvm_ffi_<symbol> in the exported .so directly, as plain C would (kTVMFFIDLTensorPtr)."""
    mod = build(add_between_casts)
    partitioned = offload(mod, PATTERNS)
    (symbol,) = offloaded_symbols(partitioned)
    path = tmp_path / "model.so"
    tvm.compile(run_codegen(partitioned), target="llvm").export_library(str(path))
    entry = getattr(ctypes.CDLL(str(path)), f"__tvm_ffi_{symbol}")
    entry.restype = ctypes.c_int
    arrays = [Y.copy(), W.copy(), np.zeros((2, 4), np.int8)]
    shape = (ctypes.c_int64 * 2)(2, 4)
    tensors = [DLTensor(a.ctypes.data, 1, 0, 2, 0, 8, 1, shape, None, 0) for a in arrays]
    args = (TVMFFIAny * 3)(*(TVMFFIAny(7, 0, ctypes.addressof(t)) for t in tensors))
    result = TVMFFIAny(0, 0, None)
    assert entry(None, args, 3, ctypes.byref(result)) == 0
    np.testing.assert_array_equal(arrays[2], sat_add(Y, W))


def test_symbolic_batch_dimension():
    n = tvm.tirx.Var("n", "int64")
    mod = build(add_between_casts, shapes=((n, 4), (n, 4)))
    executable = compile_offloaded(mod)
    assert "static const int64_t shape0[] = {-1, 4};" in TEST_CODEGEN.last_source
    for rows in (1, 2):
        np.testing.assert_array_equal(run(executable, X[:rows], Y[:rows]),
                                      sat_add(X[:rows].astype(np.int8), Y[:rows]).astype("float32"))


def test_kernel_header_is_inlined_so_export_needs_no_include_path(tmp_path):
    def emit_requantized_add(call, ctx):
        ctx.include("npu_quant.h")
        a, b = call.args
        (out,) = call.outputs
        # multiplier 2^30 with shift 1 is exactly x1: saturating add through the requantiser.
        return (f"for (int64_t i = 0; i < {out.numel}; ++i)\n"
                f"  {out.expr}[i] = npu_requantize((int32_t){a.expr}[i] + {b.expr}[i], 1 << 30, 1, 0, -128, 127);")

    codegen = register_codegen("npu_c_quant", composites={"npu_c_quant.add": emit_requantized_add},
                               mode="source")
    patterns = [relax.transform.FusionPattern("npu_c_quant.add", is_op("relax.add")(wildcard(), wildcard()))]
    executable = tvm.compile(run_codegen(offload(build(add_between_casts), patterns)), target="llvm")
    assert "static inline int8_t npu_requantize(" in codegen.last_source
    assert '#include "npu_quant.h"' not in codegen.last_source
    expected = sat_add(X.astype(np.int8), Y).astype("float32")
    np.testing.assert_array_equal(run(executable, X, Y), expected)
    np.testing.assert_array_equal(run(exported(executable, tmp_path), X, Y), expected)


def test_source_for_renders_without_compiling():
    source = TEST_CODEGEN.source_for(offload(build(add_between_casts), PATTERNS))
    assert source.startswith("/* Generated by compiler/codegen")
    assert "(int32_t)in0[i] + (int32_t)in1[i]" in source


def test_c_compile_error_names_the_kept_source():
    register_codegen("npu_c_broken", composites={"npu_c_broken.add": lambda call, ctx: "this is not C;"})
    patterns = [relax.transform.FusionPattern("npu_c_broken.add", is_op("relax.add")(wildcard(), wildcard()))]
    started = c_module._OBJECTS.compiled
    for _ in range(2):  # a failed compile is not kept: the second build compiles and reports it again
        with pytest.raises(RuntimeError, match=r"codegen npu_c_broken: C compilation failed \(source kept at"):
            run_codegen(offload(build(add_between_casts), patterns))
    assert c_module._OBJECTS.compiled == started + 2


def _add_constant(constant):
    return build(lambda bb, x, y: relax.op.add(bb.emit(relax.op.astype(x, "int8")), relax.const(constant)))


def test_prefetched_object_is_the_one_run_codegen_links():
    """prefetch starts the compile; run_codegen of the same module waits for it instead of compiling."""
    constant = (np.arange(8, dtype="int8").reshape(2, 4) * 31 - 100).astype("int8")  # C of this test alone
    partitioned = offload(_add_constant(constant), PATTERNS)
    started = c_module._OBJECTS.compiled
    TEST_CODEGEN.prefetch(partitioned)
    assert c_module._OBJECTS.compiled == started + 1
    executable = tvm.compile(run_codegen(partitioned), target="llvm")
    assert c_module._OBJECTS.compiled == started + 1
    np.testing.assert_array_equal(run(executable, X, Y), sat_add(X.astype(np.int8), constant))


def test_same_source_compiles_once_and_another_source_again():
    constant = (np.arange(8, dtype="int8").reshape(2, 4) * 17 - 60).astype("int8")
    started = c_module._OBJECTS.compiled
    first = tvm.compile(run_codegen(offload(_add_constant(constant), PATTERNS)), target="llvm")
    again = tvm.compile(run_codegen(offload(_add_constant(constant), PATTERNS)), target="llvm")
    assert c_module._OBJECTS.compiled == started + 1
    other = tvm.compile(run_codegen(offload(_add_constant(constant + 1), PATTERNS)), target="llvm")
    assert c_module._OBJECTS.compiled == started + 2
    for executable, added in ((first, constant), (again, constant), (other, constant + 1)):
        np.testing.assert_array_equal(run(executable, X, Y), sat_add(X.astype(np.int8), added))


def test_composite_without_emitter_is_reported():
    register_codegen("npu_c_partial", composites={"npu_c_partial.mul": emit_add})
    patterns = [relax.transform.FusionPattern("npu_c_partial.add", is_op("relax.add")(wildcard(), wildcard()))]
    with pytest.raises(RuntimeError, match=r"no C emitter for composite npu_c_partial.add \(known: npu_c_partial.mul"):
        run_codegen(offload(build(add_between_casts), patterns))


def test_kernel_sources_are_inlined_once_with_their_includes(tmp_path):
    kernel = tmp_path / "toy_kernel.c"
    kernel.write_text('#include "npu_quant.h"\n#include <stdint.h>\n'
                      "int32_t toy(int32_t x) { return npu_multiply_by_quantized_multiplier(x, 1 << 30, 1); }\n")
    unit = CUnit()
    unit.include("npu_quant.h")
    unit.source(str(kernel))
    unit.source(str(kernel))
    text = unit.text()
    assert text.count("#define NPU_QUANT_H") == 1 and text.count("int32_t toy(") == 1
    assert '#include "npu_quant.h": already inlined' in text and "#include <stdint.h>" in text
    with pytest.raises(CodegenError, match='cannot find "missing.h"'):
        unit.include("missing.h")
