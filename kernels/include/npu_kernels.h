/* Every INT8 reference kernel: include this one header. See kernels/README.md for the ABI. */
#ifndef NPU_KERNELS_H
#define NPU_KERNELS_H

#include "npu_quant.h"
#include "npu_kernels_conv.h"
#include "npu_kernels_elementwise.h"
#include "npu_kernels_move.h"
#include "npu_kernels_prelu.h"
#include "npu_kernels_softmax.h"
#include "npu_kernels_resize.h"

#endif /* NPU_KERNELS_H */
