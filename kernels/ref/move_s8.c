/* Placeholder: filled in by the move kernel work. */
#include "npu_kernels_move.h"
