// Kernel "dense" (npu_dense_params, kernels/ref/dense_s8.c): the channel GEMM (gemm.cc) with one
// pixel per batch row.
#include "mac_common.h"

namespace coral::mac {

namespace {

GemmShape read_dense_shape(const KernelSpec& spec) {
  for (const char* key : {"batches", "in_features", "out_features"}) {
    if (spec.at(key) < 1) throw SpecError(fmt("dense %s must be >= 1, got %lld", key, (long long)spec.at(key)));
  }
  int64_t zero_point = spec.at("input_zero_point");
  if (zero_point < -128 || zero_point > 127) throw SpecError("dense input_zero_point is outside [-128, 127]");
  return {spec.at("batches"), spec.at("in_features"), spec.at("out_features"), static_cast<int32_t>(zero_point)};
}

Schedule default_schedule(const KernelSpec& spec) { return default_gemm_schedule(read_dense_shape(spec)); }

std::string validate(const KernelSpec& spec, const Schedule& schedule) {
  return validate_gemm(read_dense_shape(spec), schedule);
}

Emitted emit(const KernelSpec& spec, const Arrays& arrays, const Schedule& schedule, bool vector) {
  GemmShape shape = read_dense_shape(spec);
  std::vector<int32_t> weight = checked_values(arrays, "weight", "int8", {shape.out_c, shape.in_c});
  std::vector<int32_t> bias = bias_or_zero(arrays, shape.out_c);
  return emit_gemm(spec, shape, weight, bias, read_requant(spec, arrays, shape.out_c), schedule, vector);
}

const bool registered = register_kernel({"dense", emit, default_schedule, validate});

}  // namespace

}  // namespace coral::mac
