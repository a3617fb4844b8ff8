"""The RVV kernel codegen: an int8 kernel spec + schedule -> one C file (RVV intrinsics or portable C).

    out = emit("conv2d", "layer3", params, arrays, target=t)   # or emit_int8_kernel(int8_kernel, "layer3", target=t)
    out.source            # C defining void layer3(const int8_t* input, ..., int8_t* output, int8_t* scratch)
    out.scratch_bytes     # what the caller passes as scratch (16-byte aligned)
    out.constant_bytes    # static const arrays in section .weights
    out.schedule          # the schedule used: default_schedule() with the given knobs applied

params are the kernels/ref params struct's fields (kernels/include/npu_kernels_*.h), arrays the
constants in the reference layout (conv2d / dense: weight int8, optional bias, multiplier and shift
int32). Every generated kernel is bit-exact to its kernels/ref function. Schedule knobs (oc_tile,
px_tile, lmul, loop_order, unroll, weight_pack) mean what cpp/include/coral/codegen.h and each
kernel's .cc say; validate() names what is wrong with a schedule, emit() raises SpecError for it.
`target` (a compiler.targets.Target, default coral-npu) is the machine the code is for: its [isa]
table (xlen, vlen, elen, vector_registers, march_scalar) sets vector lengths, register budgets and
hence the default schedules. The work is done in C++ (cpp/, built as compiler.coral._codegen).
"""

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

DEFAULT_TARGET = "coral-npu"  # the RVV target when a caller names none

# The constant arrays' element types (the reference kernels' pointer types; a 16x8 layer's bias is
# int64: WIDE_BIAS_KERNELS, constant_dtype).
ARRAY_DTYPES = {"weight": np.int8, "bias": np.int32, "multiplier": np.int32, "shift": np.int32, "table": np.int8,
                "alpha": np.int8, "y_index": np.int32, "x_index": np.int32, "y_lerp": np.int32, "x_lerp": np.int32}


@dataclass
class Emitted:
    source: str
    scratch_bytes: int
    constant_bytes: int
    schedule: dict


def emit(kernel: str, name: str, params: dict, arrays: dict | None = None, schedule: dict | None = None,
         vector: bool = True, target=None) -> Emitted:
    """C for one kernel; SpecError for a malformed spec, an unknown knob or an invalid schedule."""
    out = _native().emit(kernel, name, spec_params(params), _arrays(arrays or {}, kernel), isa(target), schedule, vector)
    return Emitted(out["source"], out["scratch_bytes"], out["constant_bytes"], out["schedule"])


def emit_int8_kernel(k, name: str, schedule: dict | None = None, vector: bool = True, target=None) -> Emitted:
    """emit() for a lowered pattern match (compiler.quant.patterns.Int8Kernel)."""
    return emit(k.kernel, name, k.params, k.arrays, schedule, vector, target)


def default_schedule(kernel: str, params: dict, target=None) -> dict:
    return _native().default_schedule(kernel, spec_params(params), isa(target))


def validate(kernel: str, params: dict, schedule: dict | None = None, target=None) -> str:
    """"" when `schedule` (knobs over the default) suits the spec, else why not."""
    return _native().validate(kernel, spec_params(params), isa(target), schedule)


def isa(target=None) -> dict:
    """The [isa] table the native codegen reads: of `target`, or of the default target."""
    return target_or_default(target).data["isa"]


def target_or_default(target=None):
    """`target`, or the default RVV target (coral-npu) when None."""
    return target if target is not None else _default_target()


@lru_cache(maxsize=1)
def _default_target():
    from compiler.targets import get_target

    return get_target(DEFAULT_TARGET)


def family(target=None) -> str:
    """The emitter family of `target`: its [isa] arch ("rvv" when absent, as coral-npu's; "neon", "x86")."""
    return isa(target).get("arch", "rvv")


def kernels(target=None) -> list[str]:
    """The kernels the emitter family of `target` implements."""
    return _native().kernels(family(target))


def __getattr__(name):
    if name == "SpecError":  # the native module's exception (a ValueError), imported on first use
        return _native().SpecError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _native():
    try:
        from compiler.coral import _codegen
    except ImportError as err:
        raise ImportError(f"the Coral codegen's native module is missing ({err}): run `make deps`") from err
    return _codegen


def spec_params(params: dict) -> dict:
    """Integer fields as they are; a float field (quantize's scale) as its float32 bit pattern
    under NAME_f32bits, because the native spec holds integers only; an array member of the params
    struct (npu_copy_params.shape, npu_pad_params.in_dims) as NAME_0, NAME_1, ..."""
    converted = {}
    for key, value in params.items():
        if isinstance(value, (tuple, list)):
            converted.update({f"{key}_{i}": int(item) for i, item in enumerate(value)})
        elif isinstance(value, (float, np.floating)):
            converted[f"{key}_f32bits"] = int(np.array(value, dtype=np.float32).view(np.uint32))
        else:
            converted[key] = int(value)
    return converted


# Kernels whose bias is int64 (16x8 layers): the codegen takes it as int32 halves bias_hi, bias_lo.
WIDE_BIAS_KERNELS = ("conv2d_s16x8", "dense_s16x8")


def constant_dtype(kernel: str, key: str) -> str:
    """The element type kernels/ref's function for `kernel` takes its constant `key` in."""
    return "int64" if key == "bias" and kernel in WIDE_BIAS_KERNELS else np.dtype(ARRAY_DTYPES[key]).name


def _arrays(arrays: dict, kernel: str = "") -> dict:
    """Known constants as their reference dtype (values must fit it), others as given; None = absent.
    An int64 bias (WIDE_BIAS_KERNELS) goes as its high and low int32 words, bias_hi and bias_lo."""
    converted = {}
    for key, value in arrays.items():
        if value is None:
            continue
        value = np.asarray(value)
        if key == "bias" and kernel in WIDE_BIAS_KERNELS:
            wide = value.astype(np.int64)
            converted["bias_hi"] = np.ascontiguousarray((wide >> 32).astype(np.int32))
            converted["bias_lo"] = np.ascontiguousarray((wide & 0xFFFFFFFF).astype(np.uint32).view(np.int32))
            continue
        dtype = ARRAY_DTYPES.get(key)
        if dtype is not None and value.dtype != dtype:
            info = np.iinfo(dtype)
            if value.size and (value.min() < info.min or value.max() > info.max):
                raise _native().SpecError(f"array '{key}' holds values outside {np.dtype(dtype).name}")
            value = value.astype(dtype)
        converted[key] = np.ascontiguousarray(value)
    return converted
