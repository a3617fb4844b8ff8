/* INT8 PReLU with a per-channel slope (TFLite int8 PRELU), the spec's rounding (p->rounding).
 * Spec: compiler/quant/reference/prelu.py (bit-exact); declaration in npu_kernels_prelu.h.
 * C99, <stdint.h> only, no libc: builds freestanding. */
#include <stdint.h>

#include "npu_kernels_prelu.h"

void npu_prelu_s8(const npu_prelu_params* p, const int8_t* input, const int8_t* alpha, int8_t* output) {
    const int32_t channels = p->channels;
    int32_t i = 0; /* index into input and output */
    for (int32_t o = 0; o < p->outer; ++o) {
        for (int32_t c = 0; c < channels; ++c, ++i) {
            const int32_t slope = (int32_t)alpha[c] - p->alpha_zero_point;
            output[i] = npu_prelu_value(p, (int32_t)input[i] - p->input_zero_point, &slope, p->rounding);
        }
    }
}
