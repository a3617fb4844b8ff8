"""C-source BYOC codegen: run partitions of a Relax module as generated C inside a host build.

Plug in a kernel by writing only a renderer
-------------------------------------------
    from compiler.codegen.c_module import register_codegen

    def emit_conv(call, ctx):                       # call: CompositeCall, ctx: RenderContext
        ctx.include("npu_quant.h")                  # inlined into the generated file, once
        ctx.source("ref/conv2d_s8.c")               # its quoted #includes are inlined too
        conv = call.op("relax.nn.conv2d")           # read attrs / constants from the composite
        weights = ctx.constant(conv.args[1])        # -> static const int8_t npu_const0[...]
        x, = call.args; y, = call.outputs           # Operands: .expr .dtype .shape .ctype .numel
        return f"npu_conv2d_s8(&params, {x.expr}, {weights.expr}, ..., {y.expr});"

    register_codegen("npu_c", composites={"npu_c.conv2d": emit_conv})

Pattern names must be "<codegen>.<anything>" (MergeCompositeFunctions derives the codegen from the
prefix). A renderer for a whole function is possible too: register_codegen(name, renderer=f) with
f(func: relax.Function, ctx: RenderContext) -> C statements (see c_render.composite_renderer).

Life cycle
----------
1. register_codegen(name, ...) registers the global function `relax.ext.<name>` (overriding).
2. offload(mod, patterns): FuseOpsByPattern(bind_constants=True) + MergeCompositeFunctions leaves
   functions with attrs {"Codegen": name}, whose bodies call local composite functions.
   merge=True (annotate_codegen=False) lets MergeCompositeFunctions merge neighbouring composites
   into one function (intermediates, tuple outputs); merge=False (annotate_codegen=True) keeps
   one function per composite: MergeCompositeFunctions does not merge annotated functions.
3. run_codegen(mod) (relax.transform.RunCodegen; tvm.compile does NOT run it) calls
   relax.ext.<name>(funcs, options, constant_names) once per codegen with all its functions.
   We render one C file for them and return one runtime module; RunCodegen rewrites each call
   into R.call_dps_packed("<global_symbol>", (inputs...), out_ty=...) and stores the module in
   the IRModule attribute "external_mods".
4. tvm.compile(mod, target="llvm") links it into the executable (VMLink imports it).
5. relax.VirtualMachine(ex, dev) calls ex.jit(): since the executable imports a "static_library"
   (or "c") module, jit runs export_library into a temporary .so (the system C compiler links it)
   and loads that. ex.export_library(path) + tvm.runtime.load_module(path) is the same path,
   on disk; loading needs no compiler.
6. At run time the VM finds "<symbol>" in its imports (dlsym "__tvm_ffi_<symbol>") and calls it.

ABI (tvm_ffi 0.1.14, include/tvm/ffi/c_api.h; details in ffi_abi.py)
--------------------------------------------------------------------
    int __tvm_ffi_<symbol>(void* self, const TVMFFIAny* args, int32_t num_args, TVMFFIAny* result)
args = the function's inputs, then its outputs (destination passing: the VM allocates outputs).
Each arrives as a tvm Tensor (type_index kTVMFFITensor = 70, DLTensor after the TVMFFIObject
header); a raw DLTensor* (kTVMFFIDLTensorPtr = 7) is accepted as well. The generated wrapper checks
count, dtype, ndim, static dims, CPU device and compactness, raising TypeError / ValueError through
TVMFFIErrorSetRaisedFromCStr + return -1, then binds `in<i>` / `out<i>` typed data pointers and
runs the renderer's statements (which may `return npu_ffi_raise("RuntimeError", fn, "msg");`).

Build modes (option "mode")
---------------------------
"object" (default): the C is compiled now (`cc -x c -std=c11 OBJECT_CFLAGS -fPIC -c`, tvm_ffi + dlpack
    include paths) and wrapped with runtime.ModuleLoadStaticLibrary; export only links the .o.
    Compile errors surface at run_codegen; kernels are compiled as C, optimised.
"source": runtime.CSourceModuleCreate(code, "c", symbols, []): compiled at export/jit time by
    export_library's compiler, g++ by default, i.e. as C++ and at -O0 unless
    export_library(..., options=["-O2"]); VirtualMachine(ex) jits with no options unless
    ex.jit(options=[...]) ran first (jit caches).
Objects are kept by what determines them (compiler, command, source; the last few in memory), so C
that a process lowers twice is compiled once, and prefetch(mod) starts the compile of a module
that will be lowered later (a build's instrumented twin, while its deployed module compiles).
Other options: "cc", "cflags" (list), "dump_dir" (writes <codegen>.c). Set them as defaults in
register_codegen(name, ..., **options) or per build: run_codegen(mod, {name: {...}}).
Constants bound into composites become static const arrays in the C file (no ConstLoaderModule,
so constant_names is left untouched). Scratch buffers are static: one call at a time.
"""

import atexit
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path

import tvm
import tvm_ffi
from tvm import relax
from tvm_ffi import libinfo

from compiler.codegen.c_render import (CodegenError, CUnit, Operand, RenderContext, composite_renderer,
                                       static_shape, tensor_types)
from compiler.codegen.ffi_abi import entry_function

__all__ = ["CCodegen", "CodegenError", "offload", "register_codegen", "run_codegen"]

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DEFAULTS = {"mode": "object", "cc": None, "cflags": (), "dump_dir": None}


def _host_cc() -> str:
    for name in (os.environ.get("NPU_HOST_CC"), os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return name
    raise CodegenError("no host C compiler found (set CC or NPU_HOST_CC)")


def _plain(value):
    """tvm_ffi containers (RunCodegen's options arrive as a Map) -> Python values."""
    if isinstance(value, str):
        return str(value)
    if hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple) or type(value).__name__ in ("Array", "List"):
        return [_plain(v) for v in value]
    return value


class CCodegen:
    """The callable registered as relax.ext.<name>: renders, builds, returns runtime modules."""

    def __init__(self, name: str, renderer, options: dict):
        unknown = set(options) - set(_DEFAULTS)
        if unknown:
            raise ValueError(f"unknown codegen options {sorted(unknown)}; known: {sorted(_DEFAULTS)}")
        self.name = name
        self.renderer = renderer
        self.options = {**_DEFAULTS, **options}
        self.last_source: str | None = None  # the C of the most recent invocation, for inspection

    def __call__(self, funcs, options=None, constant_names=None):
        opts = {**self.options, **_plain(options or {})}
        source, symbols = self.generate(list(funcs))
        self.last_source = source
        if opts["dump_dir"]:
            Path(opts["dump_dir"]).mkdir(parents=True, exist_ok=True)
            (Path(opts["dump_dir"]) / f"{self.name}.c").write_text(source)
        if opts["mode"] == "source":
            return [tvm.get_global_func("runtime.CSourceModuleCreate")(source, "c", symbols, [])]
        if opts["mode"] == "object":
            return [self._compile_object(source, symbols, opts)]
        raise CodegenError(f"codegen {self.name}: mode must be 'object' or 'source', got {opts['mode']!r}")

    def generate(self, funcs) -> tuple[str, list[str]]:
        """One C file defining __tvm_ffi_<symbol> for every function, and the symbols."""
        unit, symbols = CUnit(), []
        for func in funcs:
            symbol = str(func.attrs["global_symbol"]) if "global_symbol" in func.attrs else None
            if symbol is None or not _IDENTIFIER.match(symbol):
                raise CodegenError(f"codegen {self.name}: function has no usable global_symbol ({symbol!r})")
            try:
                inputs = [Operand(f"in{i}", str(t.dtype), static_shape(t), f"t[{i}]")
                          for i, t in enumerate(_param_type(p) for p in func.params)]
                outputs = [Operand(f"out{j}", str(t.dtype), static_shape(t), f"t[{len(inputs) + j}]")
                           for j, t in enumerate(tensor_types(func.ret_ty))]
                ctx = RenderContext(symbol, func, unit, inputs, outputs)
                body = self.renderer(func, ctx)
                unit.add_function(entry_function(symbol, inputs + outputs, len(inputs), body))
            except (ValueError, KeyError) as err:
                raise CodegenError(f"codegen {self.name}: cannot render {symbol}: {err}") from err
            symbols.append(symbol)
        return unit.text(), symbols

    def source_for(self, mod: tvm.IRModule) -> str:
        """The C this codegen would generate for `mod` (after offload, before run_codegen)."""
        funcs = [f.with_attr("global_symbol", gv.name_hint) for gv, f in mod.functions.items()
                 if isinstance(f, relax.Function) and f.attrs is not None
                 and "Codegen" in f.attrs and str(f.attrs["Codegen"]) == self.name]
        return self.generate(funcs)[0]

    def prefetch(self, mod: tvm.IRModule, options: dict | None = None) -> None:
        """Start compiling the C that run_codegen(mod) will ask this codegen for, in the background
        (mode "object" only): the later call waits for it instead of compiling."""
        opts = {**self.options, **(options or {})}
        if opts["mode"] == "object":
            _OBJECTS.start(self.name, self.source_for(mod), opts)

    def _compile_object(self, source: str, symbols: list[str], opts: dict):
        with tempfile.TemporaryDirectory(prefix=f"{self.name}_") as tmp:
            obj = Path(tmp) / f"{self.name}.o"
            obj.write_bytes(_OBJECTS.start(self.name, source, opts).result())
            return tvm.get_global_func("runtime.ModuleLoadStaticLibrary")(str(obj), symbols)


def _compile_command(opts: dict, src: Path, obj: Path) -> list[str]:
    return [opts["cc"] or _host_cc(), "-x", "c", "-std=c11", *OBJECT_CFLAGS, "-fPIC", "-c", str(src), "-o", str(obj),
            "-I" + libinfo.find_include_path(), "-I" + libinfo.find_dlpack_include_path(), *map(str, opts["cflags"])]


class _Compile:
    """One compiler process, started at once (it runs while Python goes on: two overlap on two
    cores); result() waits for it and gives the object file's bytes, or raises CodegenError (the
    source kept for a look). A compile still running when Python exits is stopped (_stop_all)."""

    def __init__(self, name: str, source: str, opts: dict):
        self.name, self.source, self.outcome = name, source, None
        self.lock = threading.Lock()  # one waiter at a time reads the process's pipes
        self.folder = Path(tempfile.mkdtemp(prefix=f"{name}_"))
        src, self.obj = self.folder / f"{name}.c", self.folder / f"{name}.o"
        src.write_text(source)
        self.cmd = _compile_command(opts, src, self.obj)
        self.process = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _RUNNING.add(self)

    @property
    def failed(self) -> bool:
        return isinstance(self.outcome, CodegenError)

    def result(self) -> bytes:
        with self.lock:
            if self.outcome is None:
                _, stderr = self.process.communicate()
                if self.process.returncode == 0:
                    self.outcome = self.obj.read_bytes()
                else:
                    kept = Path(tempfile.mkdtemp(prefix=f"{self.name}_failed_")) / f"{self.name}.c"
                    kept.write_text(self.source)
                    self.outcome = CodegenError(f"codegen {self.name}: C compilation failed (source kept at {kept}):"
                                                f"\n{' '.join(self.cmd)}\n{stderr.strip()}")
                self._finish()
        if self.failed:
            raise self.outcome
        return self.outcome

    def _finish(self):
        shutil.rmtree(self.folder, ignore_errors=True)
        _RUNNING.discard(self)

    def stop(self):
        self.process.kill()
        self.process.wait()
        self._finish()


_RUNNING: set = set()


@atexit.register
def _stop_all():
    """A build that failed after a prefetch does not wait for a compile nobody will link."""
    for compile_ in list(_RUNNING):
        compile_.stop()


class _ObjectStore:
    """Compiles by key (compiler, command, source), each at most once while it is among the last
    `keep`. A failed compile is not kept: asking again compiles, and reports it, again."""

    def __init__(self, keep: int = 8):
        self.keep, self.compiles = keep, OrderedDict()
        self.compiled = 0  # compiler runs started, for tests

    def start(self, name: str, source: str, opts: dict) -> _Compile:
        key = hashlib.sha256(repr((_compile_command(opts, Path("x.c"), Path("x.o")), source)).encode()).hexdigest()
        found = self.compiles.get(key)
        if found is not None and not found.failed:
            self.compiles.move_to_end(key)
            return found
        found = self.compiles[key] = _Compile(name, source, opts)
        self.compiled += 1
        while len(self.compiles) > self.keep:  # an evicted compile still serves whoever holds it
            self.compiles.popitem(last=False)
        return found


_OBJECTS = _ObjectStore()


# The object is linked into a host build, which runs on the machine that built it (the host target's
# LLVM code is compiled for this CPU too: targets.py, llvm_get_system_cpu), so the kernels may use its
# vector units: -O3 -march=native let the compiler vectorise kernels/ref's loops with AVX2 / AVX-512
# (MobileNetV2 224 int8: 351 -> 219 ms on a 2-core AVX2 EPYC, outputs bit-identical).
# -ffp-contract=off: no FMA may change a float result (clang contracts by default, gcc outside -std=c*).
OBJECT_CFLAGS = ("-O3", "-march=native", "-ffp-contract=off")


def _param_type(param):
    if not isinstance(param.ty, relax.TensorType):
        raise ValueError(f"parameter {param} is {param.ty}; only tensors cross the C boundary")
    return param.ty


def register_codegen(name: str, renderer=None, *, composites: dict | None = None, **options) -> CCodegen:
    """Register relax.ext.<name>. Give either `renderer(func, ctx) -> C statements` or
    `composites={pattern name: emit(call, ctx) -> C statements}`; options as in the module doc."""
    if (renderer is None) == (composites is None):
        raise ValueError("give exactly one of renderer= or composites=")
    codegen = CCodegen(name, renderer or composite_renderer(composites), options)
    tvm_ffi.register_global_func(f"relax.ext.{name}", codegen, override=True)
    return codegen


def offload(mod: tvm.IRModule, patterns, merge: bool = True, bind_constants: bool = True) -> tvm.IRModule:
    """Group matches of `patterns` (relax.transform.FusionPattern, named "<codegen>.<op>") into
    functions marked {"Codegen": <codegen>}; constants are bound into the composites (the C holds
    them as arrays), or with bind_constants=False passed as arguments (the VM holds them)."""
    fuse = relax.transform.FuseOpsByPattern(list(patterns), bind_constants=bind_constants, annotate_codegen=not merge)
    return relax.transform.MergeCompositeFunctions()(fuse(mod))


def run_codegen(mod: tvm.IRModule, options: dict | None = None) -> tvm.IRModule:
    """relax.transform.RunCodegen: replaces offloaded functions by calls of the generated C.
    `options` maps a codegen name to per-build options ({"npu_c": {"mode": "source"}})."""
    return relax.transform.RunCodegen(options or None)(mod)
