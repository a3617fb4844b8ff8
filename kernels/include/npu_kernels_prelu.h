/* Placeholder: filled in by the prelu kernel work. */
#ifndef NPU_KERNELS_PRELU_H
#define NPU_KERNELS_PRELU_H

#include <stdint.h>

#endif
