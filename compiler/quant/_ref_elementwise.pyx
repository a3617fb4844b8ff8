# cython: language_level=3, boundscheck=False, wraparound=False
"""Python binding of the portable C element-wise, pooling and data-movement kernels.

kernels/ref/add_s8.c, pool_s8.c and concat_pad_s8.c (kernels/include/npu_kernels_elementwise.h).
Every function has the signature of its NumPy reference in compiler.quant.reference.elementwise /
.pool and checks its arguments with the same helpers (ValueError on bad shapes or values); the
arithmetic is the C code's, so tests can demand bit equality between the two.
"""

from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stdint cimport int8_t, int32_t

import numpy as np

from compiler.quant.reference import elementwise as _ew
from compiler.quant.reference import lut as _lut
from compiler.quant.reference import pool as _pool


cdef extern from "npu_kernels_elementwise.h":
    ctypedef struct npu_add_params:
        int32_t batches, pixels, channels
        int32_t broadcast
        int32_t subtract
        int32_t left_shift
        int32_t input1_zero_point, input1_multiplier, input1_shift
        int32_t input2_zero_point, input2_multiplier, input2_shift
        int32_t output_zero_point, output_multiplier, output_shift
        int32_t act_min, act_max
        int32_t rounding

    ctypedef struct npu_mul_params:
        int32_t batches, pixels, channels
        int32_t broadcast
        int32_t input1_zero_point, input2_zero_point, output_zero_point
        int32_t output_multiplier, output_shift
        int32_t act_min, act_max
        int32_t rounding

    ctypedef struct npu_requantize_params:
        int32_t size
        int32_t input_zero_point, output_zero_point
        int32_t multiplier, shift
        int32_t act_min, act_max

    ctypedef struct npu_lut_params:
        int32_t size

    ctypedef struct npu_quantize_params:
        int32_t size
        float scale
        int32_t zero_point
        int32_t block
        float reciprocal

    ctypedef struct npu_pool_params:
        int32_t batches, in_h, in_w, channels
        int32_t out_h, out_w
        int32_t kernel_h, kernel_w
        int32_t stride_h, stride_w
        int32_t pad_top, pad_left
        int32_t act_min, act_max

    ctypedef struct npu_mean_params:
        int32_t batches, in_h, in_w, channels
        int32_t input_zero_point, output_zero_point
        int32_t multiplier, shift
        int32_t act_min, act_max
        int32_t bias
        int32_t rounding, block_rounding

    ctypedef struct npu_concat_input:
        int32_t size
        int32_t zero_point, multiplier, shift

    ctypedef struct npu_concat_params:
        int32_t outer
        int32_t num_inputs
        const npu_concat_input* inputs
        int32_t output_zero_point

    ctypedef struct npu_pad_params:
        int32_t in_dims[4]
        int32_t pad_before[4]
        int32_t pad_after[4]
        int32_t pad_value

    void npu_add_s8(const npu_add_params* p, const int8_t* input1, const int8_t* input2, int8_t* output) nogil
    void npu_mul_s8(const npu_mul_params* p, const int8_t* input1, const int8_t* input2, int8_t* output) nogil
    void npu_requantize_s8(const npu_requantize_params* p, const int8_t* input, int8_t* output) nogil
    void npu_lut_s8(const npu_lut_params* p, const int8_t* input, const int8_t* table, int8_t* output) nogil
    void npu_quantize_f32_s8(const npu_quantize_params* p, const float* input, int8_t* output) nogil
    void npu_dequantize_s8_f32(const npu_quantize_params* p, const int8_t* input, float* output) nogil
    void npu_avg_pool_s8(const npu_pool_params* p, const int8_t* input, int8_t* output) nogil
    void npu_max_pool_s8(const npu_pool_params* p, const int8_t* input, int8_t* output) nogil
    void npu_global_avg_pool_s8(const npu_mean_params* p, const int8_t* input, int8_t* output) nogil
    void npu_concat_s8(const npu_concat_params* p, const int8_t* const* inputs, int8_t* output) nogil
    void npu_pad_s8(const npu_pad_params* p, const int8_t* input, int8_t* output) nogil


_INT32_MAX = 2**31 - 1

ctypedef void (*_pool_kernel)(const npu_pool_params* p, const int8_t* input, int8_t* output) noexcept nogil


cdef inline const int8_t* _in_ptr(const int8_t[::1] view):
    return &view[0] if view.shape[0] > 0 else NULL


cdef inline int8_t* _out_ptr(int8_t[::1] view):
    return &view[0] if view.shape[0] > 0 else NULL


def _flat(array):
    """A C-contiguous flat view (or copy) of an array, for a typed memoryview."""
    return np.ascontiguousarray(array).reshape(-1)


def _size(array, what="tensor"):
    if array.size > _INT32_MAX:
        raise ValueError(f"{what} has {array.size} elements, more than int32 holds")
    return array.size


def add_s8(input1, input2, *, input1_zero_point, input1_multiplier, input1_shift, input2_zero_point,
           input2_multiplier, input2_shift, output_zero_point, output_multiplier, output_shift,
           left_shift=_ew.ADD_LEFT_SHIFT, act_min=_ew.INT8_MIN, act_max=_ew.INT8_MAX, subtract=0, batches=None,
           pixels=None, channels=None, broadcast=None, rounding=0):
    """C npu_add_s8; see compiler.quant.reference.elementwise.add_s8."""
    a, b, layout = _ew._add_layout(input1, input2, batches, pixels, channels, broadcast, subtract)
    args = _ew._check_add_args(input1_zero_point, input1_multiplier, input1_shift, input2_zero_point,
                               input2_multiplier, input2_shift, output_zero_point, output_multiplier, output_shift,
                               left_shift, act_min, act_max, rounding)
    cdef npu_add_params p = dict(args, **layout)  # Cython fills a struct from a dict of its fields
    out = np.empty(a.shape, dtype=np.int8)
    cdef const int8_t[::1] va = _flat(a)
    cdef const int8_t[::1] vb = _flat(b)
    cdef int8_t[::1] vo = out.reshape(-1)
    npu_add_s8(&p, _in_ptr(va), _in_ptr(vb), _out_ptr(vo))
    return out


def mul_s8(input1, input2, *, input1_zero_point, input2_zero_point, output_zero_point, output_multiplier, output_shift,
           act_min=_ew.INT8_MIN, act_max=_ew.INT8_MAX, rounding=0):
    """C npu_mul_s8; see compiler.quant.reference.elementwise.mul_s8."""
    a, b = _ew._mul_shapes(input1, input2)
    args = _ew._check_mul_args(input1_zero_point, input2_zero_point, output_zero_point, output_multiplier, output_shift,
                               act_min, act_max, rounding)
    _size(a)
    broadcast = a.shape != b.shape  # [N,H,W,C] times [N,1,1,C]
    if a.ndim == 4:
        batches, pixels, channels = a.shape[0], a.shape[1] * a.shape[2], a.shape[3]
    else:  # any other shape has no broadcast: one flat row
        batches, pixels, channels = 1, 1, a.size
    cdef npu_mul_params p = dict(args, batches=batches, pixels=pixels, channels=channels, broadcast=int(broadcast))
    out = np.empty(a.shape, dtype=np.int8)
    cdef const int8_t[::1] va = _flat(a)
    cdef const int8_t[::1] vb = _flat(b)
    cdef int8_t[::1] vo = out.reshape(-1)
    npu_mul_s8(&p, _in_ptr(va), _in_ptr(vb), _out_ptr(vo))
    return out


def requantize_s8(x, *, input_zero_point, output_zero_point, multiplier, shift, act_min=_ew.INT8_MIN,
                  act_max=_ew.INT8_MAX):
    """C npu_requantize_s8; see compiler.quant.reference.elementwise.requantize_s8."""
    x, zp_in, zp_out, multiplier, shift, act_min, act_max = _ew._check_requantize_args(
        x, input_zero_point, output_zero_point, multiplier, shift, act_min, act_max)
    cdef npu_requantize_params p
    p.size = _size(x)
    p.input_zero_point, p.output_zero_point = zp_in, zp_out
    p.multiplier, p.shift = multiplier, shift
    p.act_min, p.act_max = act_min, act_max
    out = np.empty(x.shape, dtype=np.int8)
    cdef const int8_t[::1] vx = _flat(x)
    cdef int8_t[::1] vo = out.reshape(-1)
    npu_requantize_s8(&p, _in_ptr(vx), _out_ptr(vo))
    return out


def lut_s8(x, table):
    """C npu_lut_s8; see compiler.quant.reference.lut.lut_s8."""
    x, table = _lut.check_lut_args(x, table)
    cdef npu_lut_params p
    p.size = _size(x)
    out = np.empty(x.shape, dtype=np.int8)
    cdef const int8_t[::1] vx = _flat(x)
    cdef const int8_t[::1] vt = table
    cdef int8_t[::1] vo = out.reshape(-1)
    npu_lut_s8(&p, _in_ptr(vx), &vt[0], _out_ptr(vo))
    return out


def quantize(x, scale, zero_point, block=0):
    """C npu_quantize_f32_s8; see compiler.quant.reference.elementwise.quantize."""
    cdef npu_quantize_params p
    p.scale, p.zero_point = _ew._check_quantize_args(scale, zero_point)
    p.block = _ew._check_dequantize_block(block)
    p.reciprocal = _ew.reciprocal(p.scale)
    values = np.ascontiguousarray(x, dtype=np.float32)
    p.size = _size(values)
    out = np.empty(values.shape, dtype=np.int8)
    cdef const float[::1] vx = values.reshape(-1)
    cdef int8_t[::1] vo = out.reshape(-1)
    if p.size:
        npu_quantize_f32_s8(&p, &vx[0], &vo[0])
    return out


def dequantize(q, scale, zero_point, block=0):
    """C npu_dequantize_s8_f32; see compiler.quant.reference.elementwise.dequantize."""
    q = _ew._int8_array(q, "input")
    cdef npu_quantize_params p
    p.scale, p.zero_point = _ew._check_quantize_args(scale, zero_point)
    p.block = _ew._check_dequantize_block(block)
    p.reciprocal = 0
    p.size = _size(q)
    out = np.empty(q.shape, dtype=np.float32)
    cdef const int8_t[::1] vq = _flat(q)
    cdef float[::1] vo = out.reshape(-1)
    if p.size:
        npu_dequantize_s8_f32(&p, &vq[0], &vo[0])
    return out


def concat_s8(inputs, *, input_zero_points, multipliers, shifts, output_zero_point, axis=3):
    """C npu_concat_s8; see compiler.quant.reference.elementwise.concat_s8."""
    arrays, axis = _ew._concat_inputs(inputs, axis)
    zero_points, multipliers, shifts, output_zero_point = _ew._concat_args(len(arrays), input_zero_points, multipliers,
                                                                           shifts, output_zero_point)
    shape = list(arrays[0].shape)
    shape[axis] = sum(a.shape[axis] for a in arrays)
    out = np.empty(shape, dtype=np.int8)
    _size(out)
    outer = int(np.prod(shape[:axis], dtype=np.int64))
    inner = int(np.prod(shape[axis + 1:], dtype=np.int64))
    flats = [_flat(a) for a in arrays]  # keeps the buffers alive during the call
    cdef int count = len(arrays)
    cdef npu_concat_input* descs = <npu_concat_input*>PyMem_Malloc(count * sizeof(npu_concat_input))
    cdef const int8_t** pointers = <const int8_t**>PyMem_Malloc(count * sizeof(int8_t*))
    cdef const int8_t[::1] view
    cdef int8_t[::1] vo = out.reshape(-1)
    cdef npu_concat_params p
    if descs == NULL or pointers == NULL:
        PyMem_Free(descs)
        PyMem_Free(pointers)
        raise MemoryError()
    try:
        for i in range(count):
            descs[i].size = arrays[i].shape[axis] * inner
            descs[i].zero_point = zero_points[i]
            descs[i].multiplier = multipliers[i]
            descs[i].shift = shifts[i]
            view = flats[i]
            pointers[i] = _in_ptr(view)
        p.outer = outer
        p.num_inputs = count
        p.inputs = descs
        p.output_zero_point = output_zero_point
        if out.size:
            npu_concat_s8(&p, pointers, &vo[0])
    finally:
        PyMem_Free(descs)
        PyMem_Free(pointers)
    return out


def pad_s8(x, *, padding, pad_value):
    """C npu_pad_s8; see compiler.quant.reference.elementwise.pad_s8."""
    x = _ew._int8_array(x, "input", 4)
    padding = _ew._pad_pairs(padding)
    cdef npu_pad_params p
    p.pad_value = _ew._int8_value(pad_value, "pad_value")
    shape = []
    for d in range(4):
        p.in_dims[d] = x.shape[d]
        p.pad_before[d] = padding[d][0]
        p.pad_after[d] = padding[d][1]
        shape.append(padding[d][0] + x.shape[d] + padding[d][1])
    out = np.empty(shape, dtype=np.int8)
    _size(out)
    cdef const int8_t[::1] vx = _flat(x)
    cdef int8_t[::1] vo = out.reshape(-1)
    if out.size:
        npu_pad_s8(&p, _in_ptr(vx), &vo[0])
    return out


cdef _pool2d(_pool_kernel kernel_fn, x, kernel, stride, padding, act_min, act_max):
    """Average or max pool (kernel_fn) with the checks of compiler.quant.reference.pool."""
    g = _pool._pool_geometry(x, kernel, stride, padding)
    cdef npu_pool_params p
    p.batches, p.in_h, p.in_w, p.channels = g.n, g.h, g.w, g.c
    p.out_h, p.out_w = g.out_h, g.out_w
    p.kernel_h, p.kernel_w = g.kernel_h, g.kernel_w
    p.stride_h, p.stride_w = g.stride_h, g.stride_w
    p.pad_top, p.pad_left = g.pad_top, g.pad_left
    p.act_min, p.act_max = _ew._act_range(act_min, act_max)
    out = np.empty((g.n, g.out_h, g.out_w, g.c), dtype=np.int8)
    _size(x)
    _size(out)
    cdef const int8_t[::1] vx = _flat(x)
    cdef int8_t[::1] vo = out.reshape(-1)
    if out.size:
        kernel_fn(&p, _in_ptr(vx), &vo[0])
    return out


def avg_pool2d_s8(x, *, kernel, stride=(1, 1), padding=(0, 0, 0, 0), act_min=_ew.INT8_MIN, act_max=_ew.INT8_MAX):
    """C npu_avg_pool_s8; see compiler.quant.reference.pool.avg_pool2d_s8."""
    return _pool2d(npu_avg_pool_s8, x, kernel, stride, padding, act_min, act_max)


def max_pool2d_s8(x, *, kernel, stride=(1, 1), padding=(0, 0, 0, 0), act_min=_ew.INT8_MIN, act_max=_ew.INT8_MAX):
    """C npu_max_pool_s8; see compiler.quant.reference.pool.max_pool2d_s8."""
    return _pool2d(npu_max_pool_s8, x, kernel, stride, padding, act_min, act_max)


def global_avg_pool2d_s8(x, *, input_zero_point, output_zero_point, multiplier, shift, act_min=_ew.INT8_MIN,
                         act_max=_ew.INT8_MAX, bias=0, rounding=0, block_rounding=0):
    """C npu_global_avg_pool_s8; see compiler.quant.reference.pool.global_avg_pool2d_s8."""
    x, zp_in, zp_out, multiplier, shift, act_min, act_max, bias, rounding, block_rounding = _pool._check_mean_args(
        x, input_zero_point, output_zero_point, multiplier, shift, act_min, act_max, bias, rounding, block_rounding)
    _size(x)
    cdef npu_mean_params p
    p.batches, p.in_h, p.in_w, p.channels = x.shape
    p.input_zero_point, p.output_zero_point = zp_in, zp_out
    p.multiplier, p.shift = multiplier, shift
    p.act_min, p.act_max = act_min, act_max
    p.bias, p.rounding, p.block_rounding = bias, rounding, block_rounding
    out = np.empty((x.shape[0], 1, 1, x.shape[3]), dtype=np.int8)
    cdef const int8_t[::1] vx = _flat(x)
    cdef int8_t[::1] vo = out.reshape(-1)
    if out.size:
        npu_global_avg_pool_s8(&p, _in_ptr(vx), &vo[0])
    return out
