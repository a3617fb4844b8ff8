"""The host build's SIMD int8 kernels through the C++ codegen's x86 family.

    source = x86_kernel(int8_kernel, "npu_k3")   # C defining void npu_k3(input, [input2,] output, scratch), or None

The x86 emitters (AVX2 intrinsics; AVX-512 VNNI's vpdpbusd for the convolutions and dense layers
where the build CPU has it, chosen when the C is compiled -march=native) take the same kernel
spec as the RVV ones and are bit-exact to kernels/ref (tests/kernels/test_x86_kernels.py):
cpp/src/x86_mac.cc (convolutions with groups 1, depthwise, dense), cpp/src/x86_add.cc (residual add / subtract, broadcast),
cpp/src/x86_elementwise.cc (lut, requantize, quantize, dequantize, mul, PReLU, softmax, resize, concatenation,
pad, copies, max and average pooling, the mean over H, W). They are used when this CPU has every flag the host target's [isa]
`requires` (the object is compiled -march=native, so it runs where it was built, like TVM's LLVM
code for the host CPU); None tells the caller to use kernels/ref: another CPU, or a kernel the
family does not cover (grouped convolutions other than depthwise).
"""

from functools import lru_cache

from compiler.cpu_features import has_flags, is_x86

X86_KERNELS = ("conv2d", "dense", "add", "concat", "pad", "copy", "lut", "requantize", "quantize", "dequantize", "mul", "prelu",
               "softmax", "resize_nearest", "resize_bilinear", "max_pool2d", "avg_pool2d", "global_avg_pool2d")


@lru_cache(maxsize=1)
def simd_host():
    """The host Target when this CPU runs its [isa]'s emitters, else None."""
    from compiler.targets import get_target

    host = get_target("host")
    isa = host.data.get("isa")
    return host if isa and is_x86() and has_flags(isa.get("requires", ())) else None


def x86_kernel(kernel, name: str):
    """(C source, scratch bytes) of the x86 kernel for a lowered int8 op, or None (use kernels/ref)."""
    host = simd_host()
    if host is None or kernel.kernel not in X86_KERNELS:
        return None
    from compiler.coral import codegen

    if codegen.validate(kernel.kernel, kernel.params, None, host):
        return None
    emitted = codegen.emit_int8_kernel(kernel, name, target=host)
    return emitted.source, emitted.scratch_bytes
