# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""The C reference kernels kernels/ref/conv2d_s8.c, dense_s8.c and conv16x8.c, callable like the NumPy
reference.

conv2d_s8, dense_s8, conv2d_s16x8 and dense_s16x8 take and return NumPy arrays with the same
signatures and semantics as compiler.quant.reference's, so tests call both the same way and demand
bit equality. The C code trusts its params struct (and reads out of bounds otherwise), so
every argument is first checked by the NumPy reference's own validate_conv_args /
validate_dense_args (ValueError on mismatched shapes or out-of-range values, the same rules
and messages); this module only adds the int32 size limit of the C ABI and converts the
checked arguments to contiguous buffers. Unlike the NumPy reference, the C kernel does not
detect an int32 accumulator overflow.
"""

from libc.stdint cimport int8_t, int16_t, int32_t, int64_t

import numpy as np

from compiler.quant.reference.conv import INT8_MAX, INT8_MIN, validate_conv_args, validate_conv_geometry
from compiler.quant.reference.conv16x8 import INT16_MAX, INT16_MIN, _array, validate_quant16
from compiler.quant.reference.dense import validate_dense_args


cdef extern from "npu_kernels_conv.h" nogil:
    ctypedef struct npu_conv2d_params:
        int32_t batches, in_h, in_w, in_c
        int32_t out_h, out_w, out_c
        int32_t kernel_h, kernel_w
        int32_t stride_h, stride_w
        int32_t dilation_h, dilation_w
        int32_t pad_top, pad_left
        int32_t groups
        int32_t input_zero_point, output_zero_point
        int32_t act_min, act_max
        int32_t rounding

    ctypedef struct npu_dense_params:
        int32_t batches, in_features, out_features
        int32_t input_zero_point, output_zero_point
        int32_t act_min, act_max
        int32_t rounding

    void npu_conv2d_s8(const npu_conv2d_params* p, const int8_t* input, const int8_t* filter, const int32_t* bias,
                       const int32_t* multiplier, const int32_t* shift, int8_t* output)
    void npu_dense_s8(const npu_dense_params* p, const int8_t* input, const int8_t* weight, const int32_t* bias,
                      const int32_t* multiplier, const int32_t* shift, int8_t* output)
    void npu_conv2d_s16x8(const npu_conv2d_params* p, const int16_t* input, const int8_t* filter, const int64_t* bias,
                          const int32_t* multiplier, const int32_t* shift, int16_t* output)
    void npu_dense_s16x8(const npu_dense_params* p, const int16_t* input, const int8_t* weight, const int64_t* bias,
                         const int32_t* multiplier, const int32_t* shift, int16_t* output)


def conv2d_s8(x, w, bias=None, *, stride=(1, 1), dilation=(1, 1), padding=(0, 0, 0, 0), groups=1,
              input_zero_point, output_zero_point, multiplier, shift, act_min=INT8_MIN, act_max=INT8_MAX, rounding=0):
    """npu_conv2d_s8: int8 NHWC x, int8 OHWI w, int32 bias [O] or None -> int8 NHWC (see reference.conv2d_s8)."""
    a = validate_conv_args(x, w, bias, stride=stride, dilation=dilation, padding=padding, groups=groups,
                           input_zero_point=input_zero_point, output_zero_point=output_zero_point,
                           multiplier=multiplier, shift=shift, act_min=act_min, act_max=act_max, rounding=rounding)
    x, w = _int8_buffer(a.x, "input"), _int8_buffer(a.w, "filter")
    q = a.quant
    cdef npu_conv2d_params p = _conv_params(x.shape, w.shape, a.geometry, q)
    p.input_zero_point, p.output_zero_point, p.rounding = q.input_zero_point, q.output_zero_point, q.rounding
    out = np.empty((p.batches, p.out_h, p.out_w, p.out_c), dtype=np.int8)
    if p.batches == 0:
        return out
    cdef _Operands v = _Operands(x, w, q, out)
    with nogil:
        npu_conv2d_s8(&p, v.x, v.w, v.bias, v.multiplier, v.shift, v.out)
    return out


cdef npu_conv2d_params _conv_params(tuple x_shape, tuple w_shape, g, q):
    """The params struct of an NHWC input and OHWI filter of these shapes, the checked geometry `g`
    (ConvGeometry) and the clamp of `q`; zero points and rounding 0."""
    cdef npu_conv2d_params p
    p.batches, p.in_h, p.in_w, p.in_c = x_shape
    p.out_h, p.out_w, p.out_c = g.out_h, g.out_w, w_shape[0]
    p.kernel_h, p.kernel_w = w_shape[1], w_shape[2]
    p.stride_h, p.stride_w = g.stride
    p.dilation_h, p.dilation_w = g.dilation
    p.pad_top, p.pad_left = g.padding[0], g.padding[1]
    p.groups = g.groups
    p.input_zero_point, p.output_zero_point, p.rounding = 0, 0, 0
    p.act_min, p.act_max = q.act_min, q.act_max
    return p


def dense_s8(x, w, bias=None, *, input_zero_point, output_zero_point, multiplier, shift, act_min=INT8_MIN,
             act_max=INT8_MAX, rounding=0):
    """npu_dense_s8: int8 [N, K] x, int8 [O, K] w, int32 bias [O] or None -> int8 [N, O] (see reference.dense_s8)."""
    a = validate_dense_args(x, w, bias, input_zero_point=input_zero_point, output_zero_point=output_zero_point,
                            multiplier=multiplier, shift=shift, act_min=act_min, act_max=act_max, rounding=rounding)
    x, w = _int8_buffer(a.x, "input"), _int8_buffer(a.w, "weight")
    q = a.quant
    cdef npu_dense_params p
    p.batches, p.in_features = x.shape
    p.out_features = w.shape[0]
    p.input_zero_point, p.output_zero_point, p.act_min, p.act_max = (
        q.input_zero_point, q.output_zero_point, q.act_min, q.act_max)
    p.rounding = q.rounding
    out = np.empty((p.batches, p.out_features), dtype=np.int8)
    if p.batches == 0:
        return out
    cdef _Operands v = _Operands(x, w, q, out)
    with nogil:
        npu_dense_s8(&p, v.x, v.w, v.bias, v.multiplier, v.shift, v.out)
    return out


def conv2d_s16x8(x, w, bias=None, *, stride=(1, 1), dilation=(1, 1), padding=(0, 0, 0, 0), groups=1, multiplier,
                 shift, act_min=INT16_MIN, act_max=INT16_MAX):
    """npu_conv2d_s16x8: int16 NHWC x, int8 OHWI w, int64 bias [O] or None -> int16 NHWC (see
    reference.conv16x8.conv2d_s16x8)."""
    x, w = _array(x, np.int16, "input", 4), _array(w, np.int8, "filter", 4)
    g = validate_conv_geometry(x.shape, w.shape, stride=stride, dilation=dilation, padding=padding, groups=groups)
    q = validate_quant16(bias, w.shape[0], multiplier, shift, act_min, act_max)
    x, w = _int8_buffer(x, "input"), _int8_buffer(w, "filter")
    cdef npu_conv2d_params p = _conv_params(x.shape, w.shape, g, q)
    out = np.empty((p.batches, p.out_h, p.out_w, p.out_c), dtype=np.int16)
    if p.batches == 0:
        return out
    cdef _Operands16 v = _Operands16(x, w, q, out)
    with nogil:
        npu_conv2d_s16x8(&p, v.x, v.w, v.bias, v.multiplier, v.shift, v.out)
    return out


def dense_s16x8(x, w, bias=None, *, multiplier, shift, act_min=INT16_MIN, act_max=INT16_MAX):
    """npu_dense_s16x8: int16 [N, K] x int8 [O, K] (+ int64 bias [O]) -> int16 [N, O] (see
    reference.conv16x8.dense_s16x8)."""
    x, w = _array(x, np.int16, "input", 2), _array(w, np.int8, "weight", 2)
    if x.shape[1] != w.shape[1] or min(w.shape) < 1:
        raise ValueError(f"input {x.shape} and weight {w.shape} (weight is [O, K]) do not match")
    q = validate_quant16(bias, w.shape[0], multiplier, shift, act_min, act_max)
    x, w = _int8_buffer(x, "input"), _int8_buffer(w, "weight")
    cdef npu_dense_params p
    p.batches, p.in_features = x.shape
    p.out_features = w.shape[0]
    p.input_zero_point, p.output_zero_point, p.rounding = 0, 0, 0
    p.act_min, p.act_max = q.act_min, q.act_max
    out = np.empty((p.batches, p.out_features), dtype=np.int16)
    if p.batches == 0:
        return out
    cdef _Operands16 v = _Operands16(x, w, q, out)
    with nogil:
        npu_dense_s16x8(&p, v.x, v.w, v.bias, v.multiplier, v.shift, v.out)
    return out


cdef class _Operands16:
    """The pointer operands of one npu_conv2d_s16x8 / npu_dense_s16x8 call, and the arrays they point into:
    x int16 and w int8 (C-contiguous), the checked Quant16's bias (int64, NULL without one), multipliers
    and shifts, the fresh int16 output. Nothing may be empty."""
    cdef object _held
    cdef const int16_t* x
    cdef const int8_t* w
    cdef const int64_t* bias
    cdef const int32_t* multiplier
    cdef const int32_t* shift
    cdef int16_t* out

    def __init__(self, x, w, q, out):
        cdef const int16_t[::1] xv = x.reshape(-1)
        cdef const int8_t[::1] wv = w.reshape(-1)
        cdef const int32_t[::1] mv = np.ascontiguousarray(q.multiplier, dtype=np.int32)
        cdef const int32_t[::1] sv = np.ascontiguousarray(q.shift, dtype=np.int32)
        cdef int16_t[::1] ov = out.reshape(-1)
        cdef const int64_t[::1] bv
        self._held = [xv, wv, mv, sv, ov]
        self.x, self.w, self.multiplier, self.shift, self.out = &xv[0], &wv[0], &mv[0], &sv[0], &ov[0]
        self.bias = NULL
        if q.bias is not None:
            bv = np.ascontiguousarray(q.bias, dtype=np.int64)
            self._held.append(bv)
            self.bias = &bv[0]


# From checked arguments to the C ABI.

def _int8_buffer(array, name):
    """A checked int8 (or int16) array as a C-contiguous one whose size fits the ABI's int32 indices."""
    if array.size >= 2**31:
        raise ValueError(f"{name} is too large for the int32 ABI: {array.shape}")
    return np.ascontiguousarray(array)


cdef class _Operands:
    """The pointer operands of one npu_conv2d_s8 / npu_dense_s8 call, and the arrays they point into.

    x, w: C-contiguous int8 (_int8_buffer); quant: the checked QuantArgs, converted to int32
    (exact: validation kept them within int32); out: the fresh int8 output. Nothing may be empty.
    """
    cdef object _held  # the arrays behind the pointers, alive as long as this object
    cdef const int8_t* x
    cdef const int8_t* w
    cdef const int32_t* bias  # NULL without a bias
    cdef const int32_t* multiplier
    cdef const int32_t* shift
    cdef int8_t* out

    def __init__(self, x, w, quant, out):
        cdef const int8_t[::1] xv = x.reshape(-1)
        cdef const int8_t[::1] wv = w.reshape(-1)
        cdef const int32_t[::1] mv = np.ascontiguousarray(quant.multiplier, dtype=np.int32)
        cdef const int32_t[::1] sv = np.ascontiguousarray(quant.shift, dtype=np.int32)
        cdef const int32_t[::1] bv
        cdef int8_t[::1] ov = out.reshape(-1)
        self._held = [xv, wv, mv, sv, ov]
        self.x, self.w, self.multiplier, self.shift, self.out = &xv[0], &wv[0], &mv[0], &sv[0], &ov[0]
        self.bias = NULL
        if quant.bias is not None:
            bv = np.ascontiguousarray(quant.bias, dtype=np.int32)
            self._held.append(bv)
            self.bias = &bv[0]
