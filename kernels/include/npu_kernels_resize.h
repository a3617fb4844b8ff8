/* Placeholder: filled in by the resize kernel work. */
#ifndef NPU_KERNELS_RESIZE_H
#define NPU_KERNELS_RESIZE_H

#include <stdint.h>

#endif
