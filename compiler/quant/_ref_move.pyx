# cython: language_level=3, boundscheck=False, wraparound=False
"""Python binding of the portable C strided copy (kernels/ref/move_s8.c, npu_kernels_move.h).

copy_s8 has the signature of its NumPy reference compiler.quant.reference.move.copy_s8 and checks
its arguments with the same helper (ValueError on bad params); the copy is the C code's, so tests
can demand bit equality between the two.
"""

from libc.stdint cimport int8_t, int32_t

import numpy as np

from compiler.quant.reference import move as _move


cdef extern from "npu_kernels_move.h":
    ctypedef struct npu_copy_params:
        int32_t shape[6]
        int32_t in_stride[6]
        int32_t out_stride[6]
        int32_t in_offset

    void npu_copy_s8(const npu_copy_params* p, const int8_t* input, int8_t* output) nogil


def copy_s8(x, params, out_shape):
    """C npu_copy_s8; see compiler.quant.reference.move.copy_s8."""
    flat, shape, in_stride, out_stride, offset, out_shape = _move.check_copy_args(x, params, out_shape)
    cdef npu_copy_params p
    for d in range(_move.COPY_DIMS):
        p.shape[d], p.in_stride[d], p.out_stride[d] = shape[d], in_stride[d], out_stride[d]
    out = np.empty(out_shape, dtype=np.int8)
    cdef const int8_t[::1] vx = flat
    cdef int8_t[::1] vo = out.reshape(-1)
    p.in_offset = offset
    with nogil:
        npu_copy_s8(&p, &vx[0], &vo[0])  # check_copy_args: reads inside x, output not empty
    return out
