// Shared by the element-wise and pooling emitters (add.cc, pool.cc, requantize.cc): RVV type
// names, spec range checks and the schedule checks. Private to cpp/src.
#pragma once

#include <functional>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "coral/codegen.h"

namespace coral::ew {

// An RVV integer vector type: element width and LMUL in eighths (1 = mf8 ... 64 = m8), so that
// the types of one loop (same vl, other element widths) follow from at().
struct VType {
  int sew = 32;
  int lmul8 = 64;
  bool is_signed = true;

  static VType with_lmul(int sew, int lmul) { return {sew, lmul * 8, true}; }

  std::string lmul() const;       // "m4", "mf2"
  std::string suffix() const;     // "i16m4": the intrinsics' type suffix
  std::string type() const;       // "vint16m4_t"
  std::string mask() const;       // "b4": the intrinsics' suffix of a compare's mask at this type
  std::string mask_type() const;  // "vbool4_t"
  std::string scalar() const;     // "int16_t"
  VType at(int bits) const { return {bits, lmul8 * bits / sew, is_signed}; }
  VType as_unsigned() const { return {sew, lmul8, false}; }
};

// Put before a portable loop whose body multiplies in 64 bits (npu_quant.h): clang 19 crashes
// (post-RA pseudo expansion) when its loop vectoriser widens that product for Zve32x, whose
// vectors have no 64-bit elements.
constexpr const char* kNoAutoVectorize = "#pragma clang loop vectorize(disable)";

// The spec field `key`, which must lie in [lo, hi]; SpecError names the field otherwise.
int64_t field(const KernelSpec& spec, const std::string& key, int64_t lo, int64_t hi);

// npu_quant.h's NPU_ROUND_BLOCKS_OF_8 (conv2d alone: LiteRT's depthwise, ties up in whole blocks of
// kRoundingBlock output channels, gemmlowp's ties away from zero in the channels after them).
constexpr int64_t kBlocksOf8Rounding = 3, kRoundingBlock = 8;
inline int64_t whole_blocks_end(int64_t channels) { return channels - channels % kRoundingBlock; }

// The optional field "rounding" (npu_quant.h NPU_ROUND_*: 0 single, 1 double, 2 double ties up, and
// for conv2d 3, kBlocksOf8Rounding; 0 when absent); SpecError names it when outside that range.
int64_t rounding(const KernelSpec& spec);

// `value` (an int32 vector expression of type t, vl in scope) times multiplier * 2^(shift - 31)
// with that rounding (npu_rvv_quant.h): npu_rvv_mbqm_x for 0, npu_rvv_mbqm_double_x otherwise.
std::string mbqm_x(const VType& t, const std::string& value, int64_t multiplier, int64_t shift, int64_t rounding);

// act_min / act_max: int8 values with act_min <= act_max, as the kernels/ref bindings demand.
std::pair<int64_t, int64_t> act_range(const KernelSpec& spec);

// "" when lmul is 1, 2, 4 or 8 and every knob not in `used` keeps its default (a knob the
// kernel ignores would only make an autotuner measure the same code twice); else the reason.
std::string check_knobs(const Schedule& s, std::initializer_list<const char*> used);

// check_knobs for kernels whose knobs are lmul and loop_order ("oc_px" or "px_oc").
std::string check_lmul_and_loop_order(const Schedule& s);

// The table entry of a kernel whose one knob is lmul (default 8). `check_spec` throws SpecError
// for a spec the reference would reject, so that validate() refuses it as emit() does.
KernelEntry lmul_only_entry(const std::string& kernel, decltype(KernelEntry::emit) emit,
                            std::function<void(const KernelSpec&)> check_spec);

// quantize / dequantize (npu_quantize_params): size, zero_point and the scale, a positive finite
// float whose bit pattern travels as scale_f32bits (KernelSpec fields are integers).
struct FloatQuantization {
  int64_t size, zero_point;
  float scale;
};
FloatQuantization read_float_quantization(const KernelSpec& spec);

// dequantize: the quantisation, and the elements [0, blocked) that take LiteRT's blocks' form (the
// whole blocks of an optional `block` > 0: TFLite models; 0 without); the others round once.
struct Dequantization {
  FloatQuantization q;
  int64_t blocked;
};
Dequantization read_dequantization(const KernelSpec& spec);

// quantize: the quantisation; with a `block` > 0 (TFLite models: LiteRT's QUANTIZE) the elements
// [0, blocked) of its whole blocks are x * reciprocal (reciprocal_f32bits: float32(1 / double(scale)))
// rounded half to even and the others x / scale rounded half away from zero, exactly
// (npu_round_quotient_half_away_f32); without one (ONNX models) blocked is -1: x / scale everywhere.
struct Quantization {
  FloatQuantization q;
  int64_t blocked;
  float reciprocal;
};
Quantization read_quantization(const KernelSpec& spec);

// npu_requantize_params' fields (requantize, requantize_s8_s16, requantize_s16_s8): zero points within
// [zp_low, zp_high] each (0 for an int16 side: pass {0, 0}), the clamp within [low, high].
struct Rescale {
  int64_t size, input_zero_point, output_zero_point, multiplier, shift, act_min, act_max;
};
Rescale read_rescale(const KernelSpec& spec, std::pair<int64_t, int64_t> input_zero_point,
                     std::pair<int64_t, int64_t> output_zero_point, int64_t low, int64_t high);

// npu_requantize (npu_quant.h) of every int8 input, (in - input_zero_point) rescaled, + the output zero
// point, clamped: indexed by the input byte read as unsigned (0..127, then -128..-1), so that a
// vluxei8 with the input bytes as offsets does the whole rescale.
std::vector<int32_t> requantize_table(int64_t input_zero_point, int64_t output_zero_point, int64_t multiplier,
                                      int64_t shift, int64_t act_min, int64_t act_max);

// The CPU SIMD families' 256-entry tables, by the input byte read as unsigned (0..127, then
// -128..-1): a lut spec's array 'table' (int8[256], indexed by q + 128), and a requantize spec's
// requantize_table. SpecError for a malformed table or spec.
std::vector<int32_t> lut_by_byte(const Arrays& arrays);
std::vector<int32_t> requantize_by_byte(const KernelSpec& spec);

// The loop of a table kernel (requantize.cc, lut.cc): void NAME(const int8_t* input, int8_t* output,
// int8_t* scratch) with output[i] = table[(uint8_t)input[i]], `table` a 256-byte array in the
// unsigned-byte order of requantize_table; one vluxei8 per vector of 8 * lmul * VLEN/8 bytes.
std::string emit_table_loop(const KernelSpec& spec, int64_t size, const std::string& table, int lmul, bool vector);

// The clamp of an int8 vector to [act_min, act_max] (t: an int8 type), or `value` itself when
// the range is the whole int8 range.
std::string clamp_s8(const VType& t, const std::string& value, int64_t act_min, int64_t act_max);


// The specs of the kernels whose RVV and x86 emitters both read them (mul.cc, global_pool.cc, pool.cc,
// x86_elementwise.cc); each reader throws SpecError naming a field outside the kernel's domain.
struct MulSpec {
  int64_t batches, pixels, channels;
  bool broadcast;
  int64_t input1_zero_point, input2_zero_point, output_zero_point;
  int64_t multiplier, shift;  // as in the spec: the scalar code's
  int64_t pre_shift;          // the vector code's: MBQM(x << pre_shift, multiplier, shift - pre_shift)
  int64_t act_min, act_max;
  int64_t rounding;           // npu_quant.h NPU_ROUND_*: double rounding takes vsmul (no pre-shift)
};

// |product| <= 255^2 < 2^16: shifted by up to 15 bits it stays in int32.
constexpr int64_t kMaxPreShift = 15;

MulSpec read_mul_spec(const KernelSpec& spec);

struct MeanSpec {
  int64_t batches, pixels, channels;
  int64_t input_zero_point, output_zero_point, multiplier, shift, act_min, act_max;
  int64_t bias, rounding, block_rounding;  // optional: 0 when absent (ONNX models)
};

MeanSpec read_mean_spec(const KernelSpec& spec);

struct PoolSpec {
  bool is_max;
  int64_t batches, in_h, in_w, channels, out_h, out_w;
  int64_t kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left;
  int64_t act_min, act_max;
  int64_t pad_right;  // identity columns right of the input that the last window reaches
  int acc_bits;       // the reduced row's elements: int8 (max), int16 (sum of <= 255) or int32
  int vlen;           // the target's vector register width in bits

  int64_t row_elements() const { return (pad_left + in_w + pad_right) * channels; }
  std::string acc_type() const { return "int" + std::to_string(acc_bits) + "_t"; }
};

PoolSpec read_pool_spec(const KernelSpec& spec);

// concat: input i is `outer` rows of size_i bytes, going to columns [offset_i, offset_i + size_i) of
// the output's rows of `total` bytes (for NHWC channel concats a row is a pixel).
struct ConcatInput {
  int64_t size, zero_point, multiplier, shift;
  int64_t offset;  // first output column
  bool identity;   // same scale and zero point as the output (the reference's test): a plain copy
};

struct ConcatSpec {
  int64_t outer, total, output_zero_point;
  std::vector<ConcatInput> inputs;
};

ConcatSpec read_concat_spec(const KernelSpec& spec);

// An input's part of the copy as rows x cols, rows `src_stride` apart in the input and
// `dst_stride` in the output; one long row when the output rows hold nothing else (one input,
// or one row).
struct Block {
  int64_t rows, cols, src_stride, dst_stride;
};

Block block_of(const ConcatSpec& c, const ConcatInput& in);

// The output for each byte of a rescaled input (read as unsigned, as the lookup kernels index).
std::vector<int32_t> concat_table(const ConcatSpec& c, const ConcatInput& in);

// prelu (the reference's npu_prelu_s8 over [outer][channels]).
struct PreluSpec {
  int64_t outer, channels;
  int64_t input_zero_point, alpha_zero_point, output_zero_point;
  int64_t positive_multiplier, positive_shift;
  int64_t negative_multiplier, negative_shift;
  int64_t act_min, act_max;
  int64_t rounding;  // npu_quant.h NPU_ROUND_*
};

PreluSpec read_prelu_spec(const KernelSpec& spec);

// alpha[c] - alpha_zero_point per channel, from the spec's int8 [channels] array 'alpha'.
std::vector<int64_t> prelu_slopes(const Arrays& arrays, const PreluSpec& p);

// The reference's npu_prelu_params (npu_kernels_prelu.h) in its field order, which the SIMD families'
// PReLU kernels take too.
std::vector<int64_t> prelu_param_values(const PreluSpec& p);

// softmax (the reference's npu_softmax_s8; cpp/src/softmax.cc holds gemmlowp's arithmetic): the spec,
// and the compile-time tables by d = max_in - x in [0, 255]: each d's exp in Q0.31 (0 where
// -d < diff_min), and that exp as a term of the Q12.19 sum.
struct SoftmaxSpec {
  int64_t rows, depth;
  int64_t input_multiplier, input_left_shift, diff_min;
};

SoftmaxSpec read_softmax_spec(const KernelSpec& spec);
std::vector<int32_t> softmax_exp_table(const SoftmaxSpec& p);
std::vector<int32_t> softmax_sum_table(const std::vector<int32_t>& exps);

// resize_nearest / resize_bilinear (cpp/src/resize.cc reads and checks the tables): the shape and
// the tables: nearest, the source index of each output row (column); bilinear, rows of {lower,
// upper, fraction} with fraction 0 where both indices are equal (the same sums), and whether int32
// sums could overflow (128 W_y W_x + 2^19 > INT32_MAX, W = max |1024 - f| + |f|; never for TFLite's
// tables).
struct ResizeTables {
  int64_t batches, in_h, in_w, channels, out_h, out_w;
  std::vector<int32_t> y, x;
  bool wide;
};

ResizeTables read_nearest_tables(const KernelSpec& spec, const Arrays& arrays);
ResizeTables read_bilinear_tables(const KernelSpec& spec, const Arrays& arrays);
void check_resize_spec(const KernelSpec& spec);  // SpecError for a shape the reference refuses

// pad through a CPU SIMD family's byte functions: void NAME(const int8_t* input, int8_t* output,
// int8_t* scratch) writing the output front to back (pad.cc's levels) with fill(dst, value, bytes)
// and copy(dst, src, bytes) calls.
struct MoveCalls {
  std::string fill, copy;
};

std::string pad_with_calls(const KernelSpec& spec, const MoveCalls& calls);
void check_pad_spec(const KernelSpec& spec);  // SpecError for a spec the reference refuses

// copy (Slice, Split, DepthToSpace, SpaceToDepth, Transpose) likewise: copy.cc's normalised axes,
// an inner axis contiguous on both sides one copy call, strided ones loops the compiler vectorises.
std::string copy_with_calls(const KernelSpec& spec, const MoveCalls& calls);
void check_copy_spec(const KernelSpec& spec);

}  // namespace coral::ew
