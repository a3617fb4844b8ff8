// "requantize_s8_s16", "requantize_s16_s8": the int8 <-> int16 rescales around a 16x8 layer
// (kernels/ref/conv16x8.c npu_requantize_s8_s16 / _s16_s8, compiler/quant/reference/conv16x8.py), one
// rounding as npu_quant.h's, with npu_requantize_params' fields.
//   s8 -> s16: an int8 input has 256 values, so the outputs are a table of 256 int16 computed here as
//              the reference computes them (ew::requantize_table); the input bytes, widened and doubled,
//              are the offsets of one vluxei16.
//   s16 -> s8: int16 inputs widened to int32 (vsext), npu_rvv_mbqm_x (one multiplier and shift), the
//              zero point, the clamp, two narrowing steps.
// Schedule: lmul, of the int16 lanes (8: 64 elements per instruction at VLEN 128).
#include "elementwise.h"

namespace coral {
namespace {

using ew::VType;

using Rescale16 = ew::Rescale;

Rescale16 read_spec(const KernelSpec& spec) {
  if (spec.kernel == "requantize_s8_s16") return ew::read_rescale(spec, {INT8_MIN, INT8_MAX}, {0, 0}, INT16_MIN, INT16_MAX);
  return ew::read_rescale(spec, {0, 0}, {INT8_MIN, INT8_MAX}, INT8_MIN, INT8_MAX);
}

std::string widen_loop(const KernelSpec& spec, const Rescale16& r, const std::string& table, int lmul, bool vector) {
  CWriter w;
  w.open(fmt("void %s(const int8_t* input, int16_t* output, int8_t* scratch)", spec.name.c_str()));
  w.line("(void)scratch;");
  if (vector) {
    const VType t16 = VType::with_lmul(16, lmul), u16 = t16.as_unsigned(), u8 = t16.at(8).as_unsigned();
    w.open(fmt("for (size_t n = %lld, vl; n > 0; n -= vl, input += vl, output += vl)", (long long)r.size));
    w.line(fmt("vl = __riscv_vsetvl_e16%s(n);", t16.lmul().c_str()));
    w.line(fmt("const %s offsets = __riscv_vsll_vx_%s(__riscv_vzext_vf2_%s(__riscv_vle8_v_%s((const uint8_t*)input, vl), "
               "vl), 1, vl);", u16.type().c_str(), u16.suffix().c_str(), u16.suffix().c_str(), u8.suffix().c_str()));
    w.line(fmt("__riscv_vse16_v_%s(output, __riscv_vluxei16_v_%s(%s, offsets, vl), vl);", t16.suffix().c_str(),
               t16.suffix().c_str(), table.c_str()));
  } else {
    w.open(fmt("for (int32_t i = 0; i < %lld; ++i)", (long long)r.size));
    w.line(fmt("output[i] = %s[(uint8_t)input[i]];", table.c_str()));
  }
  w.close().close();
  return w.str();
}

std::string narrow_loop(const KernelSpec& spec, const Rescale16& r, int lmul, bool vector) {
  CWriter w;
  w.open(fmt("void %s(const int16_t* input, int8_t* output, int8_t* scratch)", spec.name.c_str()));
  w.line("(void)scratch;");
  if (vector) {
    // int32 lanes at LMUL lmul: the int16 inputs at lmul / 2 (lmul 1: int32 at m1, int16 at mf2)
    const VType t32 = VType::with_lmul(32, lmul), t16 = t32.at(16), t8 = t32.at(8);
    w.open(fmt("for (size_t n = %lld, vl; n > 0; n -= vl, input += vl, output += vl)", (long long)r.size));
    w.line(fmt("vl = __riscv_vsetvl_e32%s(n);", t32.lmul().c_str()));
    w.line(fmt("const %s wide = __riscv_vsext_vf2_%s(__riscv_vle16_v_%s(input, vl), vl);", t32.type().c_str(),
               t32.suffix().c_str(), t16.suffix().c_str()));
    w.line(fmt("%s v = __riscv_vadd_vx_%s(%s, %lld, vl);", t32.type().c_str(), t32.suffix().c_str(),
               ew::mbqm_x(t32, "wide", r.multiplier, r.shift, 0).c_str(), (long long)r.output_zero_point));
    w.line(fmt("v = __riscv_vmin_vx_%s(__riscv_vmax_vx_%s(v, %lld, vl), %lld, vl);", t32.suffix().c_str(),
               t32.suffix().c_str(), (long long)r.act_min, (long long)r.act_max));
    w.line(fmt("__riscv_vse8_v_%s(output, __riscv_vncvt_x_x_w_%s(__riscv_vncvt_x_x_w_%s(v, vl), vl), vl);",
               t8.suffix().c_str(), t8.suffix().c_str(), t16.suffix().c_str()));
  } else {
    w.line(ew::kNoAutoVectorize);
    w.open(fmt("for (int32_t i = 0; i < %lld; ++i)", (long long)r.size));
    w.line(fmt("const int64_t v = (int64_t)npu_multiply_by_quantized_multiplier(input[i], %lld, %lld) + %lld;",
               (long long)r.multiplier, (long long)r.shift, (long long)r.output_zero_point));
    w.line(fmt("output[i] = (int8_t)(v < %lld ? %lld : (v > %lld ? %lld : v));", (long long)r.act_min,
               (long long)r.act_min, (long long)r.act_max, (long long)r.act_max));
  }
  w.close().close();
  return w.str();
}

Emitted emit(const KernelSpec& spec, const Arrays&, const Schedule& schedule, bool vector) {
  const Rescale16 r = read_spec(spec);
  Emitted out;
  if (spec.kernel == "requantize_s8_s16") {
    const std::string table = spec.name + "_table";
    out.source = c_prologue(spec, vector) + "/* The output for each input byte, indexed by the byte as unsigned. */\n" +
                 c_array("int16_t", table, ew::requantize_table(r.input_zero_point, 0, r.multiplier, r.shift,
                                                               r.act_min, r.act_max)) +
                 "\n" + widen_loop(spec, r, table, schedule.lmul, vector);
    out.constant_bytes = 512;
  } else {
    out.source = c_prologue(spec, vector) + narrow_loop(spec, r, schedule.lmul, vector);
  }
  out.schedule = schedule;
  return out;
}

const bool registered_widen =
    register_kernel(ew::lmul_only_entry("requantize_s8_s16", emit, [](const KernelSpec& spec) { read_spec(spec); }));
const bool registered_narrow =
    register_kernel(ew::lmul_only_entry("requantize_s16_s8", emit, [](const KernelSpec& spec) { read_spec(spec); }));

}  // namespace
}  // namespace coral
