/* Placeholder: filled in by the move kernel work. */
#ifndef NPU_KERNELS_MOVE_H
#define NPU_KERNELS_MOVE_H

#include <stdint.h>

#endif
