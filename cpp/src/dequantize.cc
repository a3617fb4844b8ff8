// "dequantize": int8 -> float32 at a float model output or before a float layer
// (kernels/ref/add_s8.c npu_dequantize_s8_f32):  y = scale * (float)(x - zero_point)
//
// An int8 input has 256 values, so the outputs are a 256-entry table of float32 bit patterns,
// computed here with the reference's single float32 multiply. Zve32x has no float vectors, but
// the table lookup is integer work: the input bytes, widened and scaled by 4, are the offsets of
// one vluxei16 of 32-bit elements, stored as they are. The portable variant indexes the table.
// Schedule: lmul, of the 32-bit lanes (8: 32 elements per instruction at VLEN 128).
#include <bit>

#include "elementwise.h"

namespace coral {
namespace {

using ew::VType;

// Bit patterns of scale * (float)(x - zero_point) for every input byte, indexed by the byte read
// as unsigned (0..127, then -128..-1).
std::vector<int32_t> table(const ew::FloatQuantization& q) {
  std::vector<int32_t> values(256);
  for (int byte = 0; byte < 256; ++byte) {
    int32_t x = static_cast<int8_t>(static_cast<uint8_t>(byte));
    float y = q.scale * static_cast<float>(x - static_cast<int32_t>(q.zero_point));
    values[byte] = std::bit_cast<int32_t>(y);
  }
  return values;
}

std::string emit_loop(const KernelSpec& spec, const ew::FloatQuantization& q, const Schedule& schedule, bool vector) {
  const std::string table_name = spec.name + "_table";
  CWriter w;
  w.open(fmt("void %s(const int8_t* input, float* output, int8_t* scratch)", spec.name.c_str()));
  w.line("(void)scratch;");
  w.line("int32_t* bits = (int32_t*)output;");
  if (vector) {
    const VType t32 = VType::with_lmul(32, schedule.lmul), u16 = t32.at(16).as_unsigned(), u8 = t32.at(8).as_unsigned();
    w.open(fmt("for (size_t n = %lld, vl; n > 0; n -= vl, input += vl, bits += vl)", (long long)q.size));
    w.line(fmt("vl = __riscv_vsetvl_e32%s(n);", t32.lmul().c_str()));
    w.line(fmt("const %s bytes = __riscv_vle8_v_%s((const uint8_t*)input, vl);", u8.type().c_str(), u8.suffix().c_str()));
    w.line(fmt("const %s offsets = __riscv_vsll_vx_%s(__riscv_vzext_vf2_%s(bytes, vl), 2, vl);", u16.type().c_str(),
               u16.suffix().c_str(), u16.suffix().c_str()));
    w.line(fmt("__riscv_vse32_v_%s(bits, __riscv_vluxei16_v_%s(%s, offsets, vl), vl);", t32.suffix().c_str(),
               t32.suffix().c_str(), table_name.c_str()));
  } else {
    w.open(fmt("for (int32_t i = 0; i < %lld; ++i)", (long long)q.size));
    w.line(fmt("bits[i] = %s[(uint8_t)input[i]];", table_name.c_str()));
  }
  w.close();
  w.close();
  return w.str();
}

Emitted emit(const KernelSpec& spec, const Arrays&, const Schedule& schedule, bool vector) {
  ew::FloatQuantization q = ew::read_float_quantization(spec);
  Emitted out;
  out.source = c_prologue(spec, vector) + "/* The float32 bit pattern of the output for each input byte (as unsigned). */\n" +
               c_array("int32_t", spec.name + "_table", table(q)) + "\n" + emit_loop(spec, q, schedule, vector);
  out.constant_bytes = 256 * 4;
  out.schedule = schedule;
  return out;
}

const bool registered = register_kernel(
    ew::lmul_only_entry("dequantize", emit, [](const KernelSpec& spec) { ew::read_float_quantization(spec); }));

}  // namespace
}  // namespace coral
