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

std::string emit_loop(const KernelSpec& spec, const RequantizeSpec& r, const Schedule& schedule, bool vector) {
  const std::string table_name = spec.name + "_table";
  CWriter w;
  w.open(fmt("void %s(const int8_t* input, int8_t* output, int8_t* scratch)", spec.name.c_str()));
  w.line("(void)scratch;");
  if (vector) {
    const VType t = VType::with_lmul(8, schedule.lmul);
    w.open(fmt("for (size_t n = %lld, vl; n > 0; n -= vl, input += vl, output += vl)", (long long)r.size));
    w.line(fmt("vl = __riscv_vsetvl_e8%s(n);", t.lmul().c_str()));
    w.line(fmt("const %s index = __riscv_vle8_v_%s((const uint8_t*)input, vl);", t.as_unsigned().type().c_str(),
               t.as_unsigned().suffix().c_str()));
    w.line(fmt("__riscv_vse8_v_%s(output, __riscv_vluxei8_v_%s(%s, index, vl), vl);", t.suffix().c_str(),
               t.suffix().c_str(), table_name.c_str()));
  } else {
    w.open(fmt("for (int32_t i = 0; i < %lld; ++i)", (long long)r.size));
    w.line(fmt("output[i] = %s[(uint8_t)input[i]];", table_name.c_str()));
  }
  w.close();
  w.close();
  return w.str();
}

Emitted emit(const KernelSpec& spec, const Arrays&, const Schedule& schedule, bool vector) {
  RequantizeSpec r = read_spec(spec);
  Emitted out;
  out.source = c_prologue(spec, vector) + "/* The output for each input byte, indexed by the byte as unsigned. */\n" +
               c_array("int8_t", spec.name + "_table",
                       ew::requantize_table(r.input_zero_point, r.output_zero_point, r.multiplier, r.shift, r.act_min,
                                            r.act_max)) + "\n" + emit_loop(spec, r, schedule, vector);
  out.constant_bytes = 256;
  out.schedule = schedule;
  return out;
}

const bool registered =
    register_kernel(ew::lmul_only_entry("requantize", emit, [](const KernelSpec& spec) { read_spec(spec); }));

}  // namespace
}  // namespace coral
