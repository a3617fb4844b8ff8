// Shared by the MAC kernels (conv2d, dense): the vector unit's shape, spec and array checks,
// requantisation constants, and the two engines the kernels are built from.
//
// Engine "channel GEMM" (gemm.cc): out[p][co] = requant(bias[co] + sum_ci x[p][ci] * w[co][ci]),
// vectorised over output channels (weights pre-widened int16 vectors, one scalar input per
// vwmacc.vx), px_tile pixels at once. Pointwise 1x1 convolutions and dense layers.
//
// Engine "pixel conv" (pixel_conv.cc): any conv2d (depthwise, grouped, general, and pointwise with few
// output channels), vectorised over output pixels. A band of zero-point-subtracted, zero-padded int16
// input rows is built in scratch, then each output channel accumulates scalar weight x pixel vector
// (strided or indexed loads).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "coral/codegen.h"

namespace coral::mac {

// RVV type suffixes for int32 accumulators at LMUL `lmul` and the int16 / int8 vectors with as
// many lanes (e.g. lmul 8: "m8", "m4", "m2"; lmul 1: "m1", "mf2", "mf4"), on the target's VLEN.
struct VectorShape {
  int lmul;
  std::string s32, s16, s8;
  int int32_lanes;  // lanes of the accumulator group: VLEN / 32 * lmul
  int lanes() const { return int32_lanes; }
  // Vector registers an int16 / int8 vector of this many lanes occupies (at least one).
  int int16_registers() const { return lmul >= 2 ? lmul / 2 : 1; }
  int int8_registers() const { return lmul >= 4 ? lmul / 4 : 1; }
};
VectorShape vector_shape(const Target& target, int lmul);

// Spec fields: an int8 value (zero points, clamps), a size >= 1; SpecError naming the field otherwise.
int32_t int8_field(const KernelSpec& spec, const std::string& key);
int64_t size_field(const KernelSpec& spec, const std::string& key);
// SpecError unless a tensor of these dimensions has at most INT32_MAX elements (the generated code
// indexes with int32 arithmetic).
void check_int32_elements(const KernelSpec& spec, const std::string& tensor, const std::vector<int64_t>& dims);

// validate()'s reason for the knobs both engines read the same way (lmul 1/2/4/8, loop_order "oc_px" /
// "px_oc", weight_pack "i16" / "i8"), or "" when they are fine.
std::string check_common_knobs(const Schedule& schedule);

// An int8 or int32 constant array's values, checked against the expected shape and value range.
std::vector<int32_t> checked_values(const Arrays& arrays, const std::string& key, const std::string& dtype,
                                    const std::vector<int64_t>& shape);
// bias[channels], zeros when the spec has none.
std::vector<int32_t> bias_or_zero(const Arrays& arrays, int64_t channels);

// x mod 2^32 as int32: the generated code accumulates with int32 wrap-around, which is exact
// whenever the true accumulator fits int32 (sums and products are ring operations mod 2^32).
int32_t wrap_int32(int64_t value);

// Per-output-channel requantisation, and the form the generated code applies it in.
struct Requant {
  std::vector<int32_t> multiplier, shift;  // one per output channel
  int32_t output_zero_point, act_min, act_max;
  bool uniform;    // one multiplier and shift for every channel: literals in the code
  bool big_shift;  // every shift <= -2 (real multiplier < 0.25, the usual case): see rescale_to_int16
  int32_t rounding = 0;  // npu_quant.h NPU_ROUND_*: single (ONNX), double / double ties-up (TFLite models)
  // ew::kBlocksOf8Rounding (LiteRT's depthwise): the channels below this round ties up, the rest as
  // gemmlowp. The pixel engine chooses per output channel; the GEMM's lanes are channels and it does
  // not take this code (conv2d.cc).
  int32_t whole_blocks_end = 0;

  // big_shift: the rounding shift of the product's high word: -1 - shift after vmulh (single rounding),
  // -shift after vsmul (double rounding, whose high word is already shifted by 31).
  std::vector<int32_t> right_shift() const;
  // The C expression of channel expression `channel`'s rounding code (a literal unless per channel).
  std::string rounding_of(const std::string& channel) const;
};
// Reads multiplier/shift (one per channel, or one for all) and the output fields of the spec.
Requant read_requant(const KernelSpec& spec, const Arrays& arrays, int64_t channels);

// The static const arrays of one generated kernel, named PREFIX_suffix; counts their bytes.
class Constants {
 public:
  explicit Constants(std::string prefix) : prefix_(std::move(prefix)) {}
  // Defines PREFIX_suffix of C type ctype (int8_t, int16_t, uint16_t, int32_t, uint32_t); returns its name.
  std::string add(const std::string& ctype, const std::string& suffix, const std::vector<int32_t>& values);
  const std::string& source() const { return source_; }
  int64_t bytes() const { return bytes_; }

 private:
  std::string prefix_;
  std::string source_;
  int64_t bytes_ = 0;
};

// The per-channel requantisation arrays the code reads (none when uniform): multiplier, and the big-shift
// vector code's uint16 right shifts or else the shifts (npu_requantize / npu_rvv_mbqm).
struct RequantNames {
  std::string mul, shift, right;
};
RequantNames add_requant_constants(Constants& constants, const Requant& requant, bool vector);

// Vector requantisation in two expressions. rescale_to_int16: the int32 accumulator times the real
// multiplier, rounded once and saturated to int16. With big_shift that is the high word of the 64-bit
// product (vmulh) narrowed by vnclip with round-to-nearest-up, which adds 2^(right-1) before the
// shift exactly as npu_quant.h's single rounding does (the low word cannot carry: npu_rvv_quant.h);
// otherwise npu_rvv_mbqm then a saturating narrow. narrow_to_int8: + output zero point (saturating),
// saturate to int8, clamp to the activation range. That equals npu_requantize's clamp(r + zp) in
// 64 bits: a saturation only ever replaces a value beyond int8 by another beyond int8 on the same side,
// which the int8 clamp maps to the same bound. `mul`/`shift` are scalar expressions (literals when
// uniform) or, with vector_operands, int32 vectors (mul, shift) / a uint16 vector (right shift).
// Double rounding instead: the high word is vsmul's rounded doubling product (gemmlowp's high multiply),
// and for ties away from zero a negative lane is lowered by one before the RNU narrowing shift.
// `channel`: the output channel of every lane (a C expression), which the per-channel rounding
// (kBlocksOf8Rounding) needs; "" where lanes are channels.
std::string high_product(const Requant& requant, const VectorShape& v, const std::string& acc, const std::string& mul,
                         bool vector_operands, const std::string& channel = "");
std::string rounding_narrow(const VectorShape& v, const std::string& high, const std::string& right, bool vector_operands);
std::string rescale_to_int16(const Requant& requant, const VectorShape& v, const std::string& acc, const std::string& mul,
                             const std::string& shift, bool vector_operands, const std::string& channel = "");
std::string narrow_to_int8(const Requant& requant, const VectorShape& v, const std::string& int16);
// narrow_to_int8 in two steps (engines that run each step over several vectors in turn, one vtype change
// per step): + output zero point, saturating (int16), then saturate to int8 and clamp.
std::string add_output_zero_point(const Requant& requant, const VectorShape& v, const std::string& int16);
std::string saturate_and_clamp(const Requant& requant, const VectorShape& v, const std::string& int16);
// rescale_to_int16's scalar operands for channel expression `channel`: literals when uniform, else array
// elements (the right shift with big_shift, else the shift).
std::pair<std::string, std::string> scalar_operands(const Requant& requant, const RequantNames& names,
                                                    const std::string& channel);

// A whole generated translation unit: the prologue, the constants and the code. Portable C (vector =
// false) is built with the firmware's vector -march too, where clang would vectorise it anyway (and
// LLVM 19 crashes on some of that in unity builds of many kernels): on a RISC-V target with vectors
// its functions are then compiled without the vector extension.
std::string translation_unit(const KernelSpec& spec, bool vector, const Constants& constants, const std::string& code);

// "npu_requantize(ACC, MUL, SHIFT, zp, min, max)" for channel expression `channel`.
std::string scalar_requantize(const Requant& requant, const RequantNames& names, const std::string& acc,
                              const std::string& channel);

// ---- the engines ----

// Channel GEMM: `pixels` rows of `in_c` int8 inputs (row stride in_c) -> rows of `out_c` outputs.
// pixels x [groups x in_c] -> pixels x [groups x out_c]: in_c and out_c are per group (a grouped
// 1x1 convolution is one GEMM per group, on its slice of each pixel's channels).
struct GemmShape {
  int64_t pixels, in_c, out_c;
  int32_t input_zero_point;
  int64_t groups = 1;
  Target target = {};  // the vector unit the schedule is for
  int64_t in_stride() const { return groups * in_c; }    // input elements per pixel
  int64_t out_stride() const { return groups * out_c; }  // output elements per pixel
};
// weight_pack: "i16" (the fastest) or "i8" (half the weight bytes: the memory-aware choice).
Schedule default_gemm_schedule(const GemmShape& shape, const std::string& weight_pack = "i16");
double estimate_gemm(const GemmShape& shape, const Schedule& schedule);  // rough instruction count
std::string validate_gemm(const GemmShape& shape, const Schedule& schedule);
// weight [groups x out_c][in_c] int8 values, bias [groups x out_c] (not yet folded).
Emitted emit_gemm(const KernelSpec& spec, const GemmShape& shape, const std::vector<int32_t>& weight,
                  const std::vector<int32_t>& bias, const Requant& requant, const Schedule& schedule, bool vector);

// Pixel conv: npu_conv2d_params.
struct ConvShape {
  int64_t batches, in_h, in_w, in_c, out_h, out_w, out_c, kernel_h, kernel_w, stride_h, stride_w, dilation_h,
      dilation_w, pad_top, pad_left, groups;
  int32_t input_zero_point;
  Target target;  // the vector unit the schedule is for
  int64_t in_c_per_group() const { return in_c / groups; }
  int64_t out_c_per_group() const { return out_c / groups; }
};
Schedule default_pixel_conv_schedule(const ConvShape& shape, const std::string& weight_pack = "i16");
double estimate_pixel_conv(const ConvShape& shape, const Schedule& schedule);  // rough instruction count
std::string validate_pixel_conv(const ConvShape& shape, const Schedule& schedule);
// weight OHWI int8 values, bias [out_c].
Emitted emit_pixel_conv(const KernelSpec& spec, const ConvShape& shape, const std::vector<int32_t>& weight,
                        const std::vector<int32_t>& bias, const Requant& requant, const Schedule& schedule,
                        bool vector);

}  // namespace coral::mac
