// Kernel "conv2d" (npu_conv2d_params, kernels/ref/conv2d_s8.c). The variant follows from the spec:
// pointwise 1x1 convolutions (stride 1, no padding, one group) are a GEMM over pixels (gemm.cc)
// unless they have few output channels; those and depthwise, grouped and general convolutions use
// the pixel conv engine (pixel_conv.cc). The schedule's knobs are the chosen engine's.
#include "mac_common.h"

namespace coral::mac {

namespace {

ConvShape read_conv_shape(const KernelSpec& spec) {
  ConvShape s{spec.at("batches"),    spec.at("in_h"),       spec.at("in_w"),       spec.at("in_c"),
              spec.at("out_h"),      spec.at("out_w"),      spec.at("out_c"),      spec.at("kernel_h"),
              spec.at("kernel_w"),   spec.at("stride_h"),   spec.at("stride_w"),   spec.at("dilation_h"),
              spec.at("dilation_w"), spec.at("pad_top"),    spec.at("pad_left"),   spec.at("groups"),
              static_cast<int32_t>(spec.at("input_zero_point"))};
  for (const char* key : {"batches", "in_h", "in_w", "in_c", "out_h", "out_w", "out_c", "kernel_h", "kernel_w",
                          "stride_h", "stride_w", "dilation_h", "dilation_w", "groups"}) {
    if (spec.at(key) < 1) throw SpecError(fmt("conv2d %s must be >= 1, got %lld", key, (long long)spec.at(key)));
  }
  if (s.pad_top < 0 || s.pad_left < 0) throw SpecError("conv2d padding must be >= 0");
  if (s.in_c % s.groups != 0 || s.out_c % s.groups != 0) {
    throw SpecError(fmt("conv2d groups %lld must divide in_c %lld and out_c %lld", (long long)s.groups,
                        (long long)s.in_c, (long long)s.out_c));
  }
  if (spec.at("input_zero_point") < -128 || spec.at("input_zero_point") > 127) {
    throw SpecError("conv2d input_zero_point is outside [-128, 127]");
  }
  return s;
}

// Stride 1, no padding on any side, one group, 1x1: each output pixel is its input pixel times W.
bool is_pointwise(const ConvShape& s) {
  return s.kernel_h == 1 && s.kernel_w == 1 && s.stride_h == 1 && s.stride_w == 1 && s.pad_top == 0 &&
         s.pad_left == 0 && s.out_h == s.in_h && s.out_w == s.in_w && s.groups == 1;
}

GemmShape as_gemm(const ConvShape& s) { return {s.batches * s.in_h * s.in_w, s.in_c, s.out_c, s.input_zero_point}; }

// Pointwise convolutions use the GEMM unless the pixel engine's default schedule is estimated cheaper
// (few output channels: the GEMM's channel vectors are then short, while the pixel engine keeps the
// few weights in registers).
bool use_gemm(const ConvShape& s) {
  if (!is_pointwise(s)) return false;
  GemmShape gemm = as_gemm(s);
  return estimate_gemm(gemm, default_gemm_schedule(gemm)) <= estimate_pixel_conv(s, default_pixel_conv_schedule(s));
}

Schedule default_schedule(const KernelSpec& spec) {
  ConvShape shape = read_conv_shape(spec);
  return use_gemm(shape) ? default_gemm_schedule(as_gemm(shape)) : default_pixel_conv_schedule(shape);
}

std::string validate(const KernelSpec& spec, const Schedule& schedule) {
  ConvShape shape = read_conv_shape(spec);
  return use_gemm(shape) ? validate_gemm(as_gemm(shape), schedule) : validate_pixel_conv(shape, schedule);
}

Emitted emit(const KernelSpec& spec, const Arrays& arrays, const Schedule& schedule, bool vector) {
  ConvShape shape = read_conv_shape(spec);
  std::vector<int32_t> weight =
      checked_values(arrays, "weight", "int8", {shape.out_c, shape.kernel_h, shape.kernel_w, shape.in_c_per_group()});
  std::vector<int32_t> bias = bias_or_zero(arrays, shape.out_c);
  Requant requant = read_requant(spec, arrays, shape.out_c);
  if (use_gemm(shape)) return emit_gemm(spec, as_gemm(shape), weight, bias, requant, schedule, vector);
  return emit_pixel_conv(spec, shape, weight, bias, requant, schedule, vector);
}

const bool registered = register_kernel({"conv2d", emit, default_schedule, validate});

}  // namespace

}  // namespace coral::mac
