/* Placeholder: filled in by the prelu kernel work. */
#include "npu_kernels_prelu.h"
