// "requantize": the int8 -> int8 rescale of kernels/ref/add_s8.c (npu_requantize_s8).
//
// An int8 input has 256 values, so the rescale is a 256-byte table computed here with
// npu_quant.h's arithmetic: per element one table load (vluxei8 in the vector kernel) instead of
// a 64-bit multiply, a rounding shift, a saturation and a clamp.
// Schedule: lmul, of the int8 lanes (8: 128 elements per instruction at VLEN 128).
#include <tuple>

#include "elementwise.h"

namespace coral {
namespace {

using ew::VType;

struct RequantizeSpec {
  int64_t size, input_zero_point, output_zero_point, multiplier, shift, act_min, act_max;
};

RequantizeSpec read_spec(const KernelSpec& spec) {
  RequantizeSpec r;
  r.size = ew::field(spec, "size", 0, INT32_MAX);
  r.input_zero_point = ew::field(spec, "input_zero_point", INT8_MIN, INT8_MAX);
  r.output_zero_point = ew::field(spec, "output_zero_point", INT8_MIN, INT8_MAX);
  r.multiplier = ew::field(spec, "multiplier", 0, INT32_MAX);
  r.shift = ew::field(spec, "shift", -31, 30);
  std::tie(r.act_min, r.act_max) = ew::act_range(spec);
  return r;
}

Emitted emit(const KernelSpec& spec, const Arrays&, const Schedule& schedule, bool vector) {
  RequantizeSpec r = read_spec(spec);
  Emitted out;
  out.source = c_prologue(spec, vector) + "/* The output for each input byte, indexed by the byte as unsigned. */\n" +
               c_array("int8_t", spec.name + "_table",
                       ew::requantize_table(r.input_zero_point, r.output_zero_point, r.multiplier, r.shift, r.act_min,
                                            r.act_max)) +
               "\n" + ew::emit_table_loop(spec, r.size, spec.name + "_table", schedule.lmul, vector);
  out.constant_bytes = 256;
  out.schedule = schedule;
  return out;
}

const bool registered =
    register_kernel(ew::lmul_only_entry("requantize", emit, [](const KernelSpec& spec) { read_spec(spec); }));

}  // namespace
}  // namespace coral
