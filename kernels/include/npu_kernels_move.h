/* INT8 data movement without arithmetic: one strided copy serves Slice, Split (one copy per part),
 * StridedSlice, DepthToSpace / SpaceToDepth (DCR and CRD), and any transpose of up to six axes
 * (compiler/quant/reference/move.py derives shape and strides). Input and output share scale and
 * zero point; the bytes are moved unchanged.
 *
 * For every index (i0, ..., i5) of shape (row-major, i5 fastest):
 *   output[sum_d i_d * out_stride[d]] = input[in_offset + sum_d i_d * in_stride[d]]
 * (in_offset: the input element where a slice starts; 0 for whole-tensor moves.)
 * Strides are in elements and >= 0; unused leading axes have extent 1. Every output element is
 * written at most once (the compiler passes dense output strides). Every extent >= 1 and
 * prod(shape) < 2^31. C99, <stdint.h> only; builds freestanding. */
#ifndef NPU_KERNELS_MOVE_H
#define NPU_KERNELS_MOVE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NPU_COPY_MAX_DIMS 6

typedef struct {
    int32_t shape[NPU_COPY_MAX_DIMS];
    int32_t in_stride[NPU_COPY_MAX_DIMS];
    int32_t out_stride[NPU_COPY_MAX_DIMS];
    int32_t in_offset; /* >= 0; in_offset + the largest input offset < 2^31 */
} npu_copy_params;

void npu_copy_s8(const npu_copy_params* p, const int8_t* input, int8_t* output);

#ifdef __cplusplus
}
#endif

#endif /* NPU_KERNELS_MOVE_H */
