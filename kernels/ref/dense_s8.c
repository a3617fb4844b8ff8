/* INT8 fully connected layer: the reference loop nest.
 * Spec: compiler/quant/reference/dense.py (TFLite FullyConnectedPerChannel, weight zero point 0). */
#include <stddef.h>
#include <stdint.h>

#include "npu_kernels_conv.h"
#include "npu_quant.h"

void npu_dense_s8(const npu_dense_params* p, const int8_t* input, const int8_t* weight, const int32_t* bias,
                  const int32_t* multiplier, const int32_t* shift, int8_t* output) {
    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t* in = input + (size_t)b * (size_t)p->in_features;
        for (int32_t o = 0; o < p->out_features; ++o) {
            const int8_t* w = weight + (size_t)o * (size_t)p->in_features;
            int32_t acc = 0;
            for (int32_t k = 0; k < p->in_features; ++k) {
                acc += ((int32_t)in[k] - p->input_zero_point) * (int32_t)w[k];
            }
            if (bias != NULL) acc += bias[o];
            output[(size_t)b * (size_t)p->out_features + (size_t)o] =
                npu_requantize_rounding(acc, multiplier[o], shift[o], p->output_zero_point, p->act_min, p->act_max,
                                        p->rounding);
        }
    }
}
