# cython: language_level=3, boundscheck=False, wraparound=False
"""Python binding of the portable C PReLU kernel: kernels/ref/prelu_s8.c (kernels/include/npu_kernels_prelu.h).

prelu_s8 has the signature of its NumPy reference, compiler.quant.reference.prelu.prelu_s8, and
checks its arguments with the same helpers (ValueError on bad shapes or values); the arithmetic
is the C code's, so tests can demand bit equality between the two.
"""

from libc.stdint cimport int8_t, int32_t

import numpy as np

from compiler.quant.reference import prelu as _prelu


cdef extern from "npu_kernels_prelu.h":
    ctypedef struct npu_prelu_params:
        int32_t outer, channels
        int32_t input_zero_point, alpha_zero_point, output_zero_point
        int32_t positive_multiplier, positive_shift
        int32_t negative_multiplier, negative_shift
        int32_t act_min, act_max
        int32_t rounding

    void npu_prelu_s8(const npu_prelu_params* p, const int8_t* input, const int8_t* alpha, int8_t* output) nogil


cdef inline const int8_t* _in_ptr(const int8_t[::1] view):
    return &view[0] if view.shape[0] > 0 else NULL


cdef inline int8_t* _out_ptr(int8_t[::1] view):
    return &view[0] if view.shape[0] > 0 else NULL


def prelu_s8(x, alpha, *, input_zero_point, alpha_zero_point, output_zero_point, positive_multiplier, positive_shift,
             negative_multiplier, negative_shift, act_min=_prelu.INT8_MIN, act_max=_prelu.INT8_MAX, rounding=0):
    """C npu_prelu_s8; see compiler.quant.reference.prelu.prelu_s8."""
    x, alpha = _prelu._prelu_operands(x, alpha)
    args = _prelu._check_prelu_args(input_zero_point, alpha_zero_point, output_zero_point, positive_multiplier,
                                    positive_shift, negative_multiplier, negative_shift, act_min, act_max,
                                    rounding)
    channels = x.shape[x.ndim - 1]  # wraparound=False: no negative indices
    outer = x.size // channels if channels else 0
    cdef npu_prelu_params p = dict(args, outer=outer, channels=channels)  # Cython fills a struct from a dict
    out = np.empty(x.shape, dtype=np.int8)
    cdef const int8_t[::1] vx = np.ascontiguousarray(x).reshape(-1)
    cdef const int8_t[::1] va = np.ascontiguousarray(alpha)
    cdef int8_t[::1] vo = out.reshape(-1)
    npu_prelu_s8(&p, _in_ptr(vx), _in_ptr(va), _out_ptr(vo))
    return out
