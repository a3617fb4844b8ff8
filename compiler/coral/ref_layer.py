"""A kernels/ref call behind the generated kernels' ABI (cpp/include/coral/codegen.h):

    void NAME(const int8_t* input0, [const int8_t* input1, ...] int8_t* output, int8_t* scratch);

The firmware uses it for layers the codegen does not take (coral/firmware.py), the kernel runner
for the reference outputs the autotuner checks candidates against (coral/kernel_runner.py).
"""

import numpy as np

from compiler.codegen.ffi_abi import array_literal, ctype
from compiler.codegen.int8 import KERNEL_CONSTANTS, KERNELS, c_struct, concat_declarations
from compiler.coral.codegen import constant_dtype
from compiler.coral.memory_plan import ALIGN
from compiler.names import c_comment


def ref_file(kernel: str) -> str:
    """The kernels/ref source (relative to kernels/) defining `kernel`."""
    return KERNELS[kernel][0]


def weights_array(name: str, array: np.ndarray) -> str:
    """A constant array in section .weights (the profile's weights region)."""
    return (f"static const {ctype(str(array.dtype))} {name}[{max(array.size, 1)}] "
            f"__attribute__((section(\".weights\"), aligned({ALIGN}))) = {array_literal(np.ascontiguousarray(array))};")


def as_constant(kernel: str, key: str, array) -> np.ndarray:
    """A constant operand in the element type kernels/ref's function takes (ValueError if a value does not fit)."""
    array, dtype = np.asarray(array), np.dtype(constant_dtype(kernel, key))
    if array.dtype != dtype and array.size and (array.min() < np.iinfo(dtype).min or array.max() > np.iinfo(dtype).max):
        raise ValueError(f"{kernel} constant '{key}' holds values outside {dtype.name}")
    return array.astype(dtype)


def ref_layer_source(kernel: str, params: dict, arrays: dict, function: str, signature: str, num_inputs: int,
                     label: str = "") -> tuple[str, int]:
    """C defining `signature` by a call to kernels/ref's function for `kernel`; returns (text,
    constant bytes). Every file-scope name starts with `function` (several such files may share
    a translation unit in the kernel runner)."""
    _, struct, cfunc, _, _ = KERNELS[kernel]
    lines = [f"/* {function}: {c_comment(label or kernel)} on kernels/ref. */", "#include <stddef.h> /* NULL */",
             '#include "npu_kernels.h"', ""]
    inputs = [f"input{n}" for n in range(num_inputs)]
    constant_bytes = 0
    if kernel == "concat":
        lines += concat_declarations(params, f"{function}_")
        call_args = ["sources"]
    else:
        lines.append(f"static const {struct} {function}_params = {c_struct(params)};")
        call_args = list(inputs)
        for key in KERNEL_CONSTANTS.get(kernel, ()):
            array = arrays.get(key)
            if array is None:
                call_args.append("NULL")
                continue
            array = as_constant(kernel, key, array)
            lines.append(weights_array(f"{function}_{key}", array))
            constant_bytes += array.nbytes
            call_args.append(f"{function}_{key}")
    lines += ["", signature + " {", "  (void)scratch;"]
    if kernel == "concat":
        lines.append(f"  const int8_t* const sources[{len(inputs)}] = {{{', '.join(inputs)}}};")
    lines += [f"  {cfunc}(&{function}_params, {', '.join(call_args)}, output);", "}", ""]
    return "\n".join(lines), constant_bytes
