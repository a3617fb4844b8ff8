/* INT8 strided copy (Slice, Split, DepthToSpace, SpaceToDepth, Transpose): npu_kernels_move.h.
 * Spec: compiler/quant/reference/move.py (bit-exact). The six axes are walked row-major with
 * one input and one output offset per axis, stepped by the axis' strides (no index is ever
 * multiplied); the innermost axis is a plain loop when it is contiguous on both sides. Offsets
 * are uint32_t: every one used is below 2^31, and the step past an axis' last index, never used,
 * wraps harmlessly instead of overflowing.
 * C99, <stdint.h> only, no libc: builds freestanding. */
#include <stdint.h>

#include "npu_kernels_move.h"

static void copy_run(const int8_t* input, int8_t* output, uint32_t in_offset, uint32_t out_offset, int32_t count,
                     uint32_t in_stride, uint32_t out_stride) {
    const int8_t* src = input + in_offset;
    int8_t* dst = output + out_offset;
    if (in_stride == 1 && out_stride == 1) {
        for (int32_t k = 0; k < count; ++k) dst[k] = src[k];
        return;
    }
    uint32_t a = 0, b = 0;
    for (int32_t k = 0; k < count; ++k, a += in_stride, b += out_stride) dst[b] = src[a];
}

void npu_copy_s8(const npu_copy_params* p, const int8_t* input, int8_t* output) {
    const int32_t* n = p->shape;
    input += p->in_offset;
    uint32_t si[NPU_COPY_MAX_DIMS], so[NPU_COPY_MAX_DIMS];
    for (int d = 0; d < NPU_COPY_MAX_DIMS; ++d) {
        si[d] = (uint32_t)p->in_stride[d];
        so[d] = (uint32_t)p->out_stride[d];
    }
    uint32_t a0 = 0, b0 = 0;
    for (int32_t i0 = 0; i0 < n[0]; ++i0, a0 += si[0], b0 += so[0]) {
        uint32_t a1 = a0, b1 = b0;
        for (int32_t i1 = 0; i1 < n[1]; ++i1, a1 += si[1], b1 += so[1]) {
            uint32_t a2 = a1, b2 = b1;
            for (int32_t i2 = 0; i2 < n[2]; ++i2, a2 += si[2], b2 += so[2]) {
                uint32_t a3 = a2, b3 = b2;
                for (int32_t i3 = 0; i3 < n[3]; ++i3, a3 += si[3], b3 += so[3]) {
                    uint32_t a4 = a3, b4 = b3;
                    for (int32_t i4 = 0; i4 < n[4]; ++i4, a4 += si[4], b4 += so[4]) {
                        copy_run(input, output, a4, b4, n[5], si[5], so[5]);
                    }
                }
            }
        }
    }
}
