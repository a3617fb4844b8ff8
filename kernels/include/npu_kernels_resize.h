/* INT8 spatial resize of an NHWC tensor; input and output share scale and zero point (TFLite
 * RESIZE_NEAREST_NEIGHBOR / RESIZE_BILINEAR on int8). The source coordinates are computed at
 * compile time (compiler/quant/reference/resize.py: TFLite's formulas for align_corners /
 * half_pixel_centers, which ONNX's coordinate modes map onto), so one kernel serves every mode.
 * input [batches][in_h][in_w][channels], output [batches][out_h][out_w][channels].
 *
 * Nearest: out[b][y][x][c] = in[b][y_index[y]][x_index[x]][c],
 *   y_index int32 [out_h] in [0, in_h), x_index int32 [out_w] in [0, in_w).
 *
 * Bilinear (TFLite reference_ops::ResizeBilinearInteger): y_lerp int32 [out_h][3] = {y0, y1, fy},
 * x_lerp int32 [out_w][3] = {x0, x1, fx}: the two source rows (columns) and the 10-bit fraction
 * toward the second, fy = source_y_10 - 1024 * y0 (TFLite's half-pixel edge rows have fy < 0 with
 * y0 == y1; |fy|, |fx| <= 2048). With a = in[y0][x0], b = in[y1][x0], c = in[y0][x1], d = in[y1][x1]:
 *   s   = a*(1024-fy)*(1024-fx) + b*fy*(1024-fx) + c*(1024-fy)*fx + d*fy*fx       (exact in int64)
 *   out = clamp((s > 0 ? s + 2^19 : s - 2^19) / 2^20, -128, 127)   (C division: toward zero)
 * i.e. round half away from zero of s / 2^20 (the clamp never acts for TFLite's tables).
 * Both tensors have fewer than 2^31 elements (batches * in_h * in_w * channels and
 * batches * out_h * out_w * channels). C99, <stdint.h> only; builds freestanding. */
#ifndef NPU_KERNELS_RESIZE_H
#define NPU_KERNELS_RESIZE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int32_t batches, in_h, in_w, channels;
    int32_t out_h, out_w;
} npu_resize_params;

/* One bilinear output, exactly as the header says (int64 sums): channel c of the pixels at byte
 * offsets x0, x1 of the input rows row0 (y0) and row1 (y1). Shared by kernels/ref and the CPU SIMD
 * kernels' tails. */
static inline int8_t npu_bilinear_s8(const int8_t* row0, const int8_t* row1, int32_t x0, int32_t x1, int32_t c,
                                     int64_t fy, int64_t fx) {
    /* |fraction| <= 2048: each weight below 3072^2 < 2^24 in magnitude, s below 2^33. */
    const int64_t s = row0[x0 + c] * (1024 - fy) * (1024 - fx) + row1[x0 + c] * fy * (1024 - fx) +
                      row0[x1 + c] * (1024 - fy) * fx + row1[x1 + c] * fy * fx;
    /* s / 2^20 rounded half away from zero, clamped to int8, with shifts of the magnitude (no 64-bit
     * division: RV32 would call libgcc). */
    const int64_t magnitude = ((s < 0 ? -s : s) + ((int64_t)1 << 19)) >> 20;
    const int64_t rounded = s < 0 ? -magnitude : magnitude;
    return (int8_t)(rounded < -128 ? -128 : (rounded > 127 ? 127 : rounded));
}

void npu_resize_nearest_s8(const npu_resize_params* p, const int8_t* input, const int32_t* y_index,
                           const int32_t* x_index, int8_t* output);
void npu_resize_bilinear_s8(const npu_resize_params* p, const int8_t* input, const int32_t* y_lerp,
                            const int32_t* x_lerp, int8_t* output);

#ifdef __cplusplus
}
#endif

#endif /* NPU_KERNELS_RESIZE_H */
