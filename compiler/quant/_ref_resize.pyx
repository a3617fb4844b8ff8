# cython: language_level=3, boundscheck=False, wraparound=False
"""Python binding of the portable C resize kernels: kernels/ref/resize_s8.c (kernels/include/npu_kernels_resize.h).

resize_nearest_s8 and resize_bilinear_s8 have the signatures of their NumPy references in
compiler.quant.reference.resize and check their arguments with the same helpers (ValueError on
bad shapes or tables); the arithmetic is the C code's, so tests can demand bit equality.
"""

from libc.stdint cimport int8_t, int32_t

import numpy as np

from compiler.quant.reference import resize as _resize


cdef extern from "npu_kernels_resize.h":
    ctypedef struct npu_resize_params:
        int32_t batches, in_h, in_w, channels
        int32_t out_h, out_w

    void npu_resize_nearest_s8(const npu_resize_params* p, const int8_t* input, const int32_t* y_index,
                               const int32_t* x_index, int8_t* output) nogil
    void npu_resize_bilinear_s8(const npu_resize_params* p, const int8_t* input, const int32_t* y_lerp,
                                const int32_t* x_lerp, int8_t* output) nogil


ctypedef void (*_resize_kernel)(const npu_resize_params* p, const int8_t* input, const int32_t* y_table,
                                const int32_t* x_table, int8_t* output) noexcept nogil


cdef _run(_resize_kernel kernel, x, y_table, x_table):
    """The kernel on checked arguments: int8 NHWC x and its two int32 tables (one row per output row / column)."""
    out = np.empty((x.shape[0], y_table.shape[0], x_table.shape[0], x.shape[3]), dtype=np.int8)
    if out.size == 0:
        return out
    cdef npu_resize_params p
    p.batches, p.in_h, p.in_w, p.channels = x.shape
    p.out_h, p.out_w = out.shape[1], out.shape[2]
    cdef const int8_t[::1] vx = np.ascontiguousarray(x).reshape(-1)
    cdef const int32_t[::1] vy = y_table.reshape(-1)
    cdef const int32_t[::1] vt = x_table.reshape(-1)
    cdef int8_t[::1] vo = out.reshape(-1)
    with nogil:
        kernel(&p, &vx[0], &vy[0], &vt[0], &vo[0])
    return out


def resize_nearest_s8(x, y_index, x_index):
    """C npu_resize_nearest_s8; see compiler.quant.reference.resize.resize_nearest_s8."""
    x, y_index, x_index = _resize.check_nearest_args(x, y_index, x_index)
    return _run(npu_resize_nearest_s8, x, y_index, x_index)


def resize_bilinear_s8(x, y_lerp, x_lerp):
    """C npu_resize_bilinear_s8; see compiler.quant.reference.resize.resize_bilinear_s8."""
    x, y_lerp, x_lerp = _resize.check_bilinear_args(x, y_lerp, x_lerp)
    return _run(npu_resize_bilinear_s8, x, y_lerp, x_lerp)
