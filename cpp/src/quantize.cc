// "quantize": float32 -> int8 at a float model input (kernels/ref/add_s8.c npu_quantize_f32_s8):
//     q = clamp(round_half_even(x / scale) + zero_point, -128, 127), NaN -> zero_point
// TFLite models (a block: LiteRT's QUANTIZE) multiply their whole blocks of 8 by the reciprocal
// instead (one fmul.s for the fdiv.s) and round the other elements (at most 7, after the chunks)
// half away from zero with the reference's npu_round_quotient_half_away_f32.
//
// Zve32x has no float vectors, so the float part is scalar: per element one fdiv.s (a division,
// as the reference: a multiply by 1 / scale would round differently), one fcvt.w.s in the rne
// mode (round to nearest, ties to even: exactly the reference's rounding; beyond the
// int32 range it saturates, which the clamp below makes equal to the reference's +-256) and a
// NaN test (feq.s). A chunk of those int32 values goes to scratch; the vector unit then adds the
// zero point (saturating, so that the saturated values cannot wrap), clamps and narrows them.
// The portable variant rounds with the reference's npu_round_half_even_f32 (npu_quant.h).
// The scale travels as its float32 bit pattern (spec field scale_f32bits, see
// compiler/coral/codegen.py): KernelSpec fields are integers.
// Schedule: lmul, of the int32 lanes of the vector pass.
#include <cstring>

#include "elementwise.h"

namespace coral {
namespace {

using ew::VType;

constexpr int64_t kChunk = 256;  // elements per scalar pass: 1 KB of int32 scratch

using QuantizeSpec = ew::Quantization;

// An exact C literal of a float (hexadecimal: no decimal rounding on the way).
std::string float_literal(float value) { return fmt("%af", (double)value); }

void emit_scalar_pass(CWriter& w, const std::string& name, bool vector, bool multiply) {
  // v = x / scale (x * reciprocal: LiteRT's blocks); rounded half to even; 0 for NaN (v == v is
  // false only for NaN). Unrolled by 8: the loop's add, add, branch then cost 3/8 of an instruction
  // per element.
  w.line("#pragma clang loop unroll_count(8)");
  w.open("for (int32_t i = 0; i < n; ++i)");
  w.line(multiply ? "const float v = input[i] * reciprocal;" : "const float v = input[i] / scale;");
  if (vector) {
    w.line(fmt("q[i] = %s_round(v);", name.c_str()));
  } else {
    w.line("int32_t r = zero_point;");
    w.open("if (v == v)");  // not NaN
    w.line("r += v >= 256.0f ? 256 : v <= -256.0f ? -256 : npu_round_half_even_f32(v);");
    w.close();
    w.line("output[i] = (int8_t)(r < -128 ? -128 : r > 127 ? 127 : r);");
  }
  w.close();
}

void emit_vector_pass(CWriter& w, const VType& t32) {
  const VType t16 = t32.at(16), t8 = t32.at(8);
  w.open("for (size_t left = (size_t)n, vl; left > 0; left -= vl, q += vl, output += vl)");
  w.line(fmt("vl = __riscv_vsetvl_e32%s(left);", t32.lmul().c_str()));
  w.line(fmt("%s x = __riscv_vsadd_vx_%s(__riscv_vle32_v_%s(q, vl), zero_point, vl);", t32.type().c_str(),
             t32.suffix().c_str(), t32.suffix().c_str()));
  w.line(fmt("x = __riscv_vmin_vx_%s(__riscv_vmax_vx_%s(x, -128, vl), 127, vl);", t32.suffix().c_str(),
             t32.suffix().c_str()));
  w.line(fmt("__riscv_vse8_v_%s(output, __riscv_vncvt_x_x_w_%s(__riscv_vncvt_x_x_w_%s(x, vl), vl), vl);",
             t8.suffix().c_str(), t8.suffix().c_str(), t16.suffix().c_str()));
  w.close();
}

std::string emit_function(const KernelSpec& spec, const QuantizeSpec& q, const Schedule& schedule, bool vector) {
  CWriter w;
  if (vector) {
    w.line("/* fcvt.w.s in the rne mode: round to nearest, ties to even (saturating); 0 for NaN,");
    w.line(" * by one mul with (v == v) (clang would mask with neg + and: one instruction more). */");
    w.open(fmt("static inline int32_t %s_round(float v)", spec.name.c_str()));
    w.line("int32_t r;");
    w.line("__asm__(\"fcvt.w.s %0, %1, rne\" : \"=r\"(r) : \"f\"(v));");
    w.line("__asm__(\"mul %0, %0, %1\" : \"+r\"(r) : \"r\"((int32_t)(v == v)));");
    w.line("return r;");
    w.close();
  }
  w.open(fmt("void %s(const float* input, int8_t* output, int8_t* scratch)", spec.name.c_str()));
  w.line(fmt("const float scale = %s;", float_literal(q.q.scale).c_str()));
  if (q.blocked >= 0) w.line(fmt("const float reciprocal = %s;", float_literal(q.reciprocal).c_str()));
  w.line(fmt("const int32_t zero_point = %lld;", (long long)q.q.zero_point));
  if (!vector) w.line("(void)scratch;");
  const bool tail = q.blocked >= 0 && q.blocked < q.q.size;
  if (tail) w.line("const float* const in = input; int8_t* const out = output;  /* the chunks move these */");
  const long long chunked = q.blocked >= 0 ? q.blocked : q.q.size;  // TFLite: the whole blocks
  w.open(fmt("for (int32_t base = 0; base < %lld; base += %lld, input += %lld%s)", chunked, (long long)kChunk,
             (long long)kChunk, vector ? "" : fmt(", output += %lld", (long long)kChunk).c_str()));
  w.line(fmt("const int32_t n = %lld - base < %lld ? %lld - base : %lld;", chunked, (long long)kChunk, chunked,
             (long long)kChunk));
  if (vector) w.line("int32_t* q = (int32_t*)scratch;");
  emit_scalar_pass(w, spec.name, vector, q.blocked >= 0);
  if (vector) emit_vector_pass(w, VType::with_lmul(32, schedule.lmul));
  w.close();
  if (tail) {
    w.line("/* LiteRT's scalar loop: the elements after the whole blocks, x / scale rounded half away */");
    w.line(ew::kNoAutoVectorize);
    w.open(fmt("for (int32_t i = %lld; i < %lld; ++i)", (long long)q.blocked, (long long)q.q.size));
    w.line("const int32_t r = npu_round_quotient_half_away_f32(in[i], scale) + zero_point;");
    w.line("out[i] = (int8_t)(r < -128 ? -128 : r > 127 ? 127 : r);");
    w.close();
  }
  w.close();
  return w.str();
}

Emitted emit(const KernelSpec& spec, const Arrays&, const Schedule& schedule, bool vector) {
  QuantizeSpec q = ew::read_quantization(spec);
  Emitted out;
  out.source = c_prologue(spec, vector) + emit_function(spec, q, schedule, vector);
  out.scratch_bytes = vector ? 4 * std::min(q.q.size, kChunk) : 0;
  out.schedule = schedule;
  return out;
}

const bool registered =
    register_kernel(ew::lmul_only_entry("quantize", emit, [](const KernelSpec& spec) { ew::read_quantization(spec); }));

}  // namespace
}  // namespace coral
