"""Operators outside the int8 kernel table run as code from TVM's LLVM backend for the target's RISC-V.

    relax call (a float Softmax after the output dequantize, a --keep-float conv, ...)
      -> lower_call: a one-operator Relax function -> LegalizeOps -> one TIR PrimFunc
         (TOPI's compute), named after the firmware layer
    every such PrimFunc of a model -> one IRModule -> compile_object: `python -m
      compiler.coral.tvm_compile` in a subprocess (LLVM's code generation runs outside the
      compiler's process; target.toml [tvm] says -mtriple/-mattr) -> one RISC-V object file
    wrapper_source: a C layer with the firmware's layer ABI that wraps its buffers in DLTensors
      and calls the PrimFunc through TVM's packed C ABI, __tvm_ffi_<name> (tvm/ffi/c_api.h)

The object needs a little runtime, in targets/riscv_runtime/tvm_backend.c: the error hook
TVMFFIErrorSetRaisedFromCStrParts, TVMBackendAllocWorkspace / FreeWorkspace over the layer's
scratch buffer (so TIR temporaries are in the memory plan), and mathf.c for the libm calls
LLVM makes (expf, logf).
"""

import json
import math
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tvm
from tvm import relax

from compiler.codegen.ffi_abi import DTYPES, array_literal, ctype
from compiler.errors import CompilerError
from compiler.names import shown
from compiler.passes.util import bindings, is_const

# TVM rounds every workspace request up to this, and so does the runtime's allocator.
WORKSPACE_ALIGN = 64


def triple(target=None) -> str:
    """The architecture TVM's code is for ("riscv32", "riscv64"): from the target's [tvm] mtriple."""
    from compiler.coral.codegen import target_or_default

    return target_or_default(target).data["tvm"]["target"]["mtriple"].split("-")[0]


@dataclass
class TirCall:
    """A relax call lowered to one PrimFunc: `args` lists, in the PrimFunc's parameter order
    (the output last, not listed), each input as ("input", n) for the step's n-th tensor
    input or ("constant", array)."""
    func: object  # tvm.tirx.PrimFunc
    args: list


def lower_call(call: relax.Call, label: str) -> tuple[TirCall, list]:
    """`call` as one PrimFunc, and the relax tensor arguments that become the step's inputs."""
    bb = relax.BlockBuilder()
    params, call_args, inputs = [], [], []
    roles = {}  # param -> ("input", its rank among the inputs) or ("constant", array)
    for arg in call.args:
        if (isinstance(arg, relax.Var) or is_const(arg)) and isinstance(arg.ty, relax.TensorType):
            param = relax.Var(f"arg{len(params)}", arg.ty)
            roles[param.__chandle__()] = ("constant", arg.value.numpy()) if is_const(arg) else ("input", len(inputs))
            if not is_const(arg):
                inputs.append(arg)
            params.append(param)
            call_args.append(param)
        else:  # shapes, attributes-as-values: stay part of the call
            call_args.append(arg)
    with bb.function("main", params):
        with bb.dataflow():
            out = bb.emit_output(relax.Call(call.op, call_args, call.attrs, call.ty_args))
        bb.emit_func_output(out)
    legal = relax.transform.LegalizeOps()(bb.get())
    calls = [b.value for b in bindings(legal["main"]) if isinstance(b.value, relax.Call)
             and b.value.op.same_as(tvm.ir.Op.get("relax.call_tir"))]
    if len(calls) != 1:
        raise CompilerError(f"{shown(label)}: {call.op.name} legalises to {len(calls)} TIR functions; "
                            "the Coral TVM fallback takes operators that lower to exactly one")
    (tir_call,) = calls
    args = []
    for arg in tir_call.args[1].fields:
        if not isinstance(arg, relax.Var) or arg.__chandle__() not in roles:
            raise CompilerError(f"{shown(label)}: {call.op.name} legalises to a call with a computed argument")
        args.append(roles[arg.__chandle__()])
    return TirCall(legal[tir_call.args[0]], args), inputs


def workspace_bytes(func) -> int:
    """An upper bound on the TVMBackendAllocWorkspace requests `func` makes: the temporaries of
    a legalised PrimFunc are the root block's buffers (TVM's CreatePrimFunc puts them there),
    each rounded up to WORKSPACE_ALIGN; small ones end up on the stack instead. Should a
    request ever exceed it, the runtime stops with an error naming the layer (never a wrong
    answer)."""
    root = getattr(func.body, "block", None)
    total = 0
    for buffer in (root.alloc_buffers if root is not None else []):
        nbytes = math.prod(int(dim) for dim in buffer.shape) * tvm.DataType(str(buffer.dtype)).bits // 8
        total += -(-nbytes // WORKSPACE_ALIGN) * WORKSPACE_ALIGN
    return total


def packed_symbol(function: str) -> str:
    return f"__tvm_ffi_{function}_tir"


def wrapper_source(function: str, signature: str, tir_call: TirCall, input_tensors, output_tensor,
                   workspace: int, constant_section: str) -> tuple[str, int]:
    """The C layer: DLTensors over the layer's buffers (and constants), the packed call, and a
    clean exit naming the layer if TVM's code reports an error. Returns (text, constant bytes)."""
    lines = [f"/* {function}: TVM LLVM code ({packed_symbol(function)} in tvm_fallback.o). */",
             "#include <tvm/ffi/c_api.h>", '#include "npu_runtime.h"', "",
             f"int {packed_symbol(function)}(void* self, const TVMFFIAny* args, int32_t num_args, TVMFFIAny* result);",
             ""]
    tensors, constant_bytes = [], 0
    for position, (kind, value) in enumerate(tir_call.args):
        if kind == "constant":
            name = f"{function}_const{position}"
            lines.append(f"static const {ctype(str(value.dtype))} {name}[{max(value.size, 1)}] "
                         f"__attribute__((section(\"{constant_section}\"), aligned({WORKSPACE_ALIGN}))) = "
                         f"{array_literal(np.ascontiguousarray(value))};")
            constant_bytes += value.nbytes
            tensors.append((f"(void*){name}", value.shape, str(value.dtype)))
        else:
            shape, dtype = input_tensors[value]
            tensors.append((f"(void*)input{value}", shape, dtype))
    tensors.append(("(void*)output", *output_tensor))
    for position, (_, shape, _) in enumerate(tensors):
        dims = ", ".join(str(int(d)) for d in shape) or "1"
        lines.append(f"static int64_t {function}_shape{position}[{max(len(shape), 1)}] = {{{dims}}};")
    lines += ["", signature + " {"]
    lines.append(f"  DLTensor tensors[{len(tensors)}] = {{")
    for position, (data, shape, dtype) in enumerate(tensors):
        _, code, bits = DTYPES[dtype]
        lines.append(f"    {{.data = {data}, .device = {{kDLCPU, 0}}, .ndim = {len(shape)}, "
                     f".dtype = {{{code}, {bits}, 1}}, .shape = {function}_shape{position}, .strides = 0, "
                     ".byte_offset = 0},")
    lines += ["  };", f"  TVMFFIAny args[{len(tensors)}];",
              f"  for (int i = 0; i < {len(tensors)}; ++i) {{",
              "    args[i].type_index = kTVMFFIDLTensorPtr;", "    args[i].zero_padding = 0;",
              "    args[i].v_ptr = &tensors[i];", "  }",
              "  TVMFFIAny result = {0};",
              f"  npu_tvm_workspace(scratch, {workspace});",
              f"  if ({packed_symbol(function)}(0, args, {len(tensors)}, &result) != 0) "
              f"npu_tvm_failed(\"{function}\");", "}", ""]
    return "\n".join(lines), constant_bytes


def compile_object(functions: dict, target: dict, out_obj: Path) -> Path:
    """The PrimFuncs {function name: PrimFunc} as one object file for `target` (a [tvm] target
    table), built by TVM's LLVM backend in a subprocess."""
    mod = tvm.IRModule({name: func.with_attr("global_symbol", f"{name}_tir") for name, func in functions.items()})
    with tempfile.TemporaryDirectory(prefix="tvm-fallback-") as work:
        module_json = Path(work) / "module.json"
        module_json.write_text(tvm.ir.save_json(mod))
        command = [sys.executable, "-m", "compiler.coral.tvm_compile", str(module_json), json.dumps(target),
                   str(out_obj)]
        result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
        raise CompilerError(f"TVM's LLVM codegen for {target['mtriple'].split('-')[0]} failed: "
                            f"{lines[-1] if lines else 'no message'}")
    return out_obj
