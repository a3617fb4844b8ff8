"""The layout changes to_nhwc leaves at a model's edges (NCHW <-> NHWC), as C for the firmware.

    portable  nested loops over the output, reading the input through its permuted strides
    rvv       the input read row by row in order (its last axis, contiguous: unit-stride vector
              loads) and each row stored with one strided vector store to where that axis
              lands in the output: for 1x3x224x224 -> 1x224x224x3, 672 rows of two loads and
              two stores of up to 128 elements, instead of 150,528 scalar copies
    neon      an axis of 2-4 moved to the end, the others in order (NCHW -> NHWC of an image's 3
              channels): that many planes loaded 16 bytes at a time and stored interleaved with
              one vst2/vst3/vst4; any other permutation takes the portable loops
"""

import math

_SEW = {1: 8, 2: 16, 4: 32}  # element bytes -> RVV element width (m8: the most lanes per op)


def transpose_source(function: str, signature: str, shape, axes, itemsize: int, family: str | None) -> str:
    """The layer's C: `family` "rvv" or "neon" (the target's emitter family) for its vector form,
    None for the portable loops."""
    out_shape = [shape[a] for a in axes]
    header = [f"/* {function}: transpose {list(shape)} by axes {list(axes)} -> {out_shape}. */", "#include <stdint.h>"]
    if family == "rvv" and itemsize in _SEW and len(shape) > 0:
        body = _rows(shape, axes, itemsize)
        header.append("#include <riscv_vector.h>")
    elif family == "neon" and itemsize in _NEON_LANES and _interleaved_axis(shape, axes) is not None:
        body = _interleave(shape, axes, itemsize)
        header.append("#include <arm_neon.h>")
    else:
        body = _loops(shape, axes)
    return "\n".join(header + ["", signature + " {", "  (void)scratch;", *body, "}", ""])


def _strides(shape) -> list[int]:
    return [math.prod(shape[d + 1:]) for d in range(len(shape))]


def _loops(shape, axes) -> list[str]:
    in_strides = _strides(shape)
    lines, terms = ["  int32_t o = 0;"], []
    for depth, axis in enumerate(axes):
        lines.append("  " * (depth + 1) + f"for (int32_t i{depth} = 0; i{depth} < {shape[axis]}; ++i{depth})")
        terms.append(f"i{depth} * {in_strides[axis]}")
    lines.append("  " * (len(axes) + 1) + f"output[o++] = input0[{' + '.join(terms) or '0'}];")
    return lines


def _rows(shape, axes, itemsize: int) -> list[str]:
    """One strided store per row of the input's last axis."""
    rank, sew = len(shape), _SEW[itemsize]
    out_strides = _strides([shape[a] for a in axes])
    lands = [out_strides[axes.index(d)] for d in range(rank)]  # output stride of each input axis
    kind = f"int{sew}"
    lines = [f"  const {kind}_t* in = (const {kind}_t*)input0;", f"  {kind}_t* out = ({kind}_t*)output;"]
    terms = []
    for d in range(rank - 1):
        lines.append("  " * (d + 1) + f"for (int32_t i{d} = 0; i{d} < {shape[d]}; ++i{d})")
        terms.append(f"i{d} * {lands[d]}")
    indent = "  " * rank
    row = shape[-1]
    lines += [indent + "{",
              indent + f"  {kind}_t* dst = out + {' + '.join(terms) or '0'};",
              indent + f"  for (size_t n = {row}, vl; n > 0; n -= vl, in += vl, dst += vl * {lands[-1]}) {{",
              indent + f"    vl = __riscv_vsetvl_e{sew}m8(n);",
              indent + f"    __riscv_vsse{sew}_v_i{sew}m8(dst, {lands[-1] * itemsize}, __riscv_vle{sew}_v_i{sew}m8(in, vl), vl);",
              indent + "  }",
              indent + "}"]
    return lines


_NEON_LANES = {1: 16, 2: 8, 4: 4}  # element bytes -> lanes of one q register


def _interleaved_axis(shape, axes) -> int | None:
    """The input axis that moves to the end, the others keeping their order, when it has 2-4
    elements (vst2 / vst3 / vst4 interleave that many registers); else None."""
    if len(axes) < 2:
        return None
    moved = axes[-1]
    rest = [a for a in range(len(shape)) if a != moved]
    return moved if list(axes[:-1]) == rest and 2 <= shape[moved] <= 4 and moved != len(shape) - 1 else None


def _interleave(shape, axes, itemsize: int) -> list[str]:
    """Per slice of the axes before the moved one: its `channels` planes of `inner` elements
    (the axes after it) stored interleaved, a q register of each plane per step."""
    moved = _interleaved_axis(shape, axes)
    channels, outer, inner = shape[moved], math.prod(shape[:moved]), math.prod(shape[moved + 1:])
    lanes, bits = _NEON_LANES[itemsize], itemsize * 8
    kind, vector = f"uint{bits}_t", f"uint{bits}x{lanes}x{channels}_t"
    loads = [f"      v.val[{c}] = vld1q_u{bits}(in + {c * inner} + p);" for c in range(channels)]
    copies = [f"      out[p * {channels} + {c}] = in[{c * inner} + p];" for c in range(channels)]
    return [f"  const {kind}* in = (const {kind}*)input0;",
            f"  {kind}* out = ({kind}*)output;",
            f"  for (int32_t o = 0; o < {outer}; ++o, in += {channels * inner}, out += {channels * inner}) {{",
            "    int32_t p = 0;",
            f"    for (; p + {lanes} <= {inner}; p += {lanes}) {{",
            f"      {vector} v;",
            *loads,
            f"      vst{channels}q_u{bits}(out + p * {channels}, v);",
            "    }",
            f"    for (; p < {inner}; ++p) {{",
            *copies,
            "    }",
            "  }"]
