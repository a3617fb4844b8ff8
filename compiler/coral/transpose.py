"""The layout changes to_nhwc leaves at a model's edges (NCHW <-> NHWC), as C for the firmware.

    portable  nested loops over the output, reading the input through its permuted strides
    rvv       the input read row by row in order (its last axis, contiguous: unit-stride vector
              loads) and each row stored with one strided vector store to where that axis
              lands in the output: for 1x3x224x224 -> 1x224x224x3, 672 rows of two loads and
              two stores of up to 128 elements, instead of 150,528 scalar copies
"""

import math

_SEW = {1: 8, 2: 16, 4: 32}  # element bytes -> RVV element width (m8: the most lanes per op)


def transpose_source(function: str, signature: str, shape, axes, itemsize: int, vector: bool) -> str:
    out_shape = [shape[a] for a in axes]
    header = [f"/* {function}: transpose {list(shape)} by axes {list(axes)} -> {out_shape}. */", "#include <stdint.h>"]
    if vector and itemsize in _SEW and len(shape) > 0:
        body = _rows(shape, axes, itemsize)
        header.append("#include <riscv_vector.h>")
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
