// "requantize": the int8 -> int8 rescale of kernels/ref/add_s8.c (npu_requantize_s8).
//
// An int8 input has 256 values, so the rescale is a 256-byte table computed here with
// npu_quant.h's arithmetic: per element one table load (vluxei8 in the vector kernel) instead of
// a 64-bit multiply, a rounding shift, a saturation and a clamp.
// Schedule: lmul, of the int8 lanes (8: 128 elements per instruction at VLEN 128).
#include "elementwise.h"

namespace coral {
namespace {

ew::Rescale read_spec(const KernelSpec& spec) {
  return ew::read_rescale(spec, {INT8_MIN, INT8_MAX}, {INT8_MIN, INT8_MAX}, INT8_MIN, INT8_MAX);
}

Emitted emit(const KernelSpec& spec, const Arrays&, const Schedule& schedule, bool vector) {
  const ew::Rescale r = read_spec(spec);
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
