/* Placeholder: filled in by the resize kernel work. */
#include "npu_kernels_resize.h"
