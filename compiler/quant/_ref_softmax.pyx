# cython: language_level=3, boundscheck=False, wraparound=False
"""Python binding of the portable C softmax kernel: kernels/ref/softmax_s8.c (kernels/include/npu_kernels_softmax.h).

softmax_s8 has the signature of its NumPy reference, compiler.quant.reference.softmax.softmax_s8,
and checks its arguments with the same helpers (ValueError on bad shapes or values); the
arithmetic is the C code's, so tests can demand bit equality between the two.
"""

from libc.stdint cimport int8_t, int32_t

import numpy as np

from compiler.quant.reference import softmax as _softmax


cdef extern from "npu_kernels_softmax.h":
    ctypedef struct npu_softmax_params:
        int32_t rows, depth
        int32_t input_multiplier, input_left_shift, diff_min

    void npu_softmax_s8(const npu_softmax_params* p, const int8_t* input, int8_t* output) nogil


def softmax_s8(x, *, input_multiplier, input_left_shift, diff_min):
    """C npu_softmax_s8; see compiler.quant.reference.softmax.softmax_s8."""
    x = _softmax._softmax_operand(x)
    args = _softmax._check_softmax_args(input_multiplier, input_left_shift, diff_min)
    out = np.empty(x.shape, dtype=np.int8)
    if x.size == 0:
        return out
    depth = x.shape[x.ndim - 1]  # wraparound=False: no negative indices
    cdef npu_softmax_params p = dict(args, rows=x.size // depth, depth=depth)  # Cython fills a struct from a dict
    cdef const int8_t[::1] vx = np.ascontiguousarray(x).reshape(-1)
    cdef int8_t[::1] vo = out.reshape(-1)
    npu_softmax_s8(&p, &vx[0], &vo[0])
    return out
