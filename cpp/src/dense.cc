// Kernel "dense" (npu_dense_params, kernels/ref/dense_s8.c): the channel GEMM (gemm.cc) with one
// pixel per batch row.
#include "mac_common.h"

namespace coral::mac {

namespace {

GemmShape read_dense_shape(const KernelSpec& spec) {
  GemmShape s{size_field(spec, "batches"), size_field(spec, "in_features"), size_field(spec, "out_features"),
              int8_field(spec, "input_zero_point"), 1, spec.target};
  check_int32_elements(spec, "input", {s.pixels, s.in_c});
  check_int32_elements(spec, "output", {s.pixels, s.out_c});
  check_int32_elements(spec, "weight", {s.out_c, s.in_c});
  return s;
}

Schedule default_for_pack(const KernelSpec& spec, const std::string& weight_pack) {
  return default_gemm_schedule(read_dense_shape(spec), weight_pack);
}

Schedule default_schedule(const KernelSpec& spec) { return default_for_pack(spec, "i16"); }

std::string validate(const KernelSpec& spec, const Schedule& schedule) {
  return validate_gemm(read_dense_shape(spec), schedule);
}

Emitted emit(const KernelSpec& spec, const Arrays& arrays, const Schedule& schedule, bool vector) {
  GemmShape shape = read_dense_shape(spec);
  std::vector<int32_t> weight = checked_values(arrays, "weight", "int8", {shape.out_c, shape.in_c});
  std::vector<int32_t> bias = bias_or_zero(arrays, shape.out_c);
  return emit_gemm(spec, shape, weight, bias, read_requant(spec, arrays, shape.out_c), schedule, vector);
}

const bool registered = register_kernel({"dense", emit, default_schedule, validate, default_for_pack});

}  // namespace

}  // namespace coral::mac
