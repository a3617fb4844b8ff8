// Kernel "conv2d" (npu_conv2d_params, kernels/ref/conv2d_s8.c). The variant follows from the spec:
// pointwise 1x1 convolutions (stride 1, no padding; grouped ones a GEMM per group) are a GEMM over
// pixels (gemm.cc) unless the pixel conv engine (pixel_conv.cc) is estimated cheaper (few output
// channels); depthwise, grouped and general convolutions use the pixel engine. The schedule's knobs are the chosen engine's.
#include "elementwise.h"
#include "mac_common.h"

namespace coral::mac {

namespace {

// The pixel engine unrolls the kernel window: larger ones are left to the reference kernel.
constexpr int64_t kMaxKernelTaps = 256;

ConvShape read_conv_shape(const KernelSpec& spec) {
  auto size = [&](const char* key) { return size_field(spec, key); };
  ConvShape s{size("batches"),    size("in_h"),       size("in_w"),       size("in_c"),     size("out_h"),
              size("out_w"),      size("out_c"),      size("kernel_h"),   size("kernel_w"), size("stride_h"),
              size("stride_w"),   size("dilation_h"), size("dilation_w"), spec.at("pad_top"), spec.at("pad_left"),
              size("groups"),     int8_field(spec, "input_zero_point"), spec.target};
  if (s.pad_top < 0 || s.pad_left < 0) throw SpecError("conv2d padding must be >= 0");
  if (s.in_c % s.groups != 0 || s.out_c % s.groups != 0) {
    throw SpecError(fmt("conv2d groups %lld must divide in_c %lld and out_c %lld", (long long)s.groups,
                        (long long)s.in_c, (long long)s.out_c));
  }
  if (s.kernel_h * s.kernel_w > kMaxKernelTaps) {
    throw SpecError(fmt("conv2d kernel %lldx%lld has more than %lld taps (they are unrolled)", (long long)s.kernel_h,
                        (long long)s.kernel_w, (long long)kMaxKernelTaps));
  }
  check_int32_elements(spec, "input", {s.batches, s.in_h, s.in_w, s.in_c});
  check_int32_elements(spec, "output", {s.batches, s.out_h, s.out_w, s.out_c});
  check_int32_elements(spec, "weight", {s.out_c, s.kernel_h, s.kernel_w, s.in_c_per_group()});
  return s;
}

// Stride 1, no padding on any side, 1x1: each output pixel is its input pixel times W (per group).
bool is_pointwise(const ConvShape& s) {
  return s.kernel_h == 1 && s.kernel_w == 1 && s.stride_h == 1 && s.stride_w == 1 && s.pad_top == 0 &&
         s.pad_left == 0 && s.out_h == s.in_h && s.out_w == s.in_w;
}

GemmShape as_gemm(const ConvShape& s) {
  return {s.batches * s.in_h * s.in_w, s.in_c_per_group(), s.out_c_per_group(), s.input_zero_point, s.groups, s.target};
}

// Pointwise convolutions use the GEMM unless the pixel engine's default schedule is estimated cheaper
// (few output channels: the GEMM's channel vectors are then short, while the pixel engine keeps the
// few weights in registers). The GEMM's lanes are output channels: LiteRT's depthwise rounding, chosen
// per channel (ew::kBlocksOf8Rounding), is the pixel engine's.
bool use_gemm(const ConvShape& s, int64_t rounding) {
  if (!is_pointwise(s) || rounding == ew::kBlocksOf8Rounding) return false;
  GemmShape gemm = as_gemm(s);
  return estimate_gemm(gemm, default_gemm_schedule(gemm)) <= estimate_pixel_conv(s, default_pixel_conv_schedule(s));
}

Schedule default_for_pack(const KernelSpec& spec, const std::string& weight_pack) {
  ConvShape shape = read_conv_shape(spec);
  return use_gemm(shape, ew::rounding(spec)) ? default_gemm_schedule(as_gemm(shape), weight_pack)
                         : default_pixel_conv_schedule(shape, weight_pack);
}

Schedule default_schedule(const KernelSpec& spec) { return default_for_pack(spec, "i16"); }

std::string validate(const KernelSpec& spec, const Schedule& schedule) {
  ConvShape shape = read_conv_shape(spec);
  return use_gemm(shape, ew::rounding(spec)) ? validate_gemm(as_gemm(shape), schedule)
                                              : validate_pixel_conv(shape, schedule);
}

Emitted emit(const KernelSpec& spec, const Arrays& arrays, const Schedule& schedule, bool vector) {
  ConvShape shape = read_conv_shape(spec);
  std::vector<int32_t> weight =
      checked_values(arrays, "weight", "int8", {shape.out_c, shape.kernel_h, shape.kernel_w, shape.in_c_per_group()});
  std::vector<int32_t> bias = bias_or_zero(arrays, shape.out_c);
  Requant requant = read_requant(spec, arrays, shape.out_c);
  if (use_gemm(shape, ew::rounding(spec))) return emit_gemm(spec, as_gemm(shape), weight, bias, requant, schedule, vector);
  return emit_pixel_conv(spec, shape, weight, bias, requant, schedule, vector);
}

const bool registered = register_kernel({"conv2d", emit, default_schedule, validate, default_for_pack});

}  // namespace

}  // namespace coral::mac
