// "mul": the int8 element-wise multiply of kernels/ref/add_s8.c (npu_mul_s8), NHWC, with the
// squeeze-excite broadcast ([N,H,W,C] times [N,1,1,C]).
//
// out = clamp(MBQM((in1 - zp1) * (in2 - zp2), m, shift) + zp_out). The product has at most 17
// bits, so, as in add.cc, it can be shifted left by pre_shift bits and rounded by as many more:
// the same number, but with the rounding shift >= 33 every lane takes npu_rvv_mbqm_x's short path
// (vmulh and one rounding shift). The pre-shift is folded into in2 - zp2 (9 bits, shifted by at
// most 15), which the broadcast loop computes once per channel vector, not once per pixel.
// Broadcast: per batch, per vector of channels, in2's vector is loaded once and every pixel's
// in1 vector is multiplied by it. Otherwise one flat loop over all elements.
// Schedule: lmul, of the int32 lanes (8: 32 elements per instruction at VLEN 128).
#include <algorithm>
#include <tuple>

#include "elementwise.h"

namespace coral {
namespace {

using ew::VType;
using ew::MulSpec;

// (in - zp) << pre_shift as an int32 vector expression, from the int8 elements at `pointer`.
std::string vector_operand(const VType& t, const std::string& pointer, int64_t zero_point, int64_t pre_shift) {
  const std::string s = t.suffix();
  std::string x = fmt("npu_rvv_load_s8_%s(%s, vl)", t.lmul().c_str(), pointer.c_str());
  if (zero_point != 0) x = fmt("__riscv_vsub_vx_%s(%s, %lld, vl)", s.c_str(), x.c_str(), (long long)zero_point);
  if (pre_shift != 0) x = fmt("__riscv_vsll_vx_%s(%s, %lld, vl)", s.c_str(), x.c_str(), (long long)pre_shift);
  return x;
}

// The body shared by both loops: x2 is in the loop's scope; multiply, rescale, clamp, store.
void vector_body(CWriter& w, const VType& t, const MulSpec& m, const std::string& in1, const std::string& out) {
  const std::string l = t.lmul();
  w.line(fmt("const %s x1 = %s;", t.type().c_str(), vector_operand(t, in1, m.input1_zero_point, 0).c_str()));
  // Double rounding has no pre-shift (pre_shift 0).
  w.line(fmt("const %s r = %s;", t.type().c_str(),
             ew::mbqm_x(t, fmt("__riscv_vmul_vv_%s(x1, x2, vl)", t.suffix().c_str()), m.multiplier,
                        m.shift - m.pre_shift, m.rounding).c_str()));
  w.line(fmt("npu_rvv_store_s8_%s(%s, npu_rvv_clamp_zp_%s(r, %lld, %lld, %lld, vl), vl);", l.c_str(), out.c_str(),
             l.c_str(), (long long)m.output_zero_point, (long long)m.act_min, (long long)m.act_max));
}

std::string emit_vector(const KernelSpec& spec, const MulSpec& m, const Schedule& schedule) {
  const VType t = VType::with_lmul(32, schedule.lmul);
  const std::string l = t.lmul();
  const long long pixels = m.pixels, channels = m.channels;
  CWriter w;
  w.open(fmt("void %s(const int8_t* input1, const int8_t* input2, int8_t* output, int8_t* scratch)", spec.name.c_str()));
  w.line("(void)scratch;");
  if (m.broadcast) {
    w.open(fmt("for (int32_t b = 0; b < %lld; ++b, input1 += %lld, input2 += %lld, output += %lld)",
               (long long)m.batches, pixels * channels, channels, pixels * channels));
    w.open(fmt("for (size_t c = 0, vl; c < %lld; c += vl)", channels));
    w.line(fmt("vl = __riscv_vsetvl_e32%s(%lld - c);", l.c_str(), channels));
    w.line("/* in2 - zp2 is the same for every pixel of the batch. */");
    w.line(fmt("const %s x2 = %s;", t.type().c_str(),
               vector_operand(t, "input2 + c", m.input2_zero_point, m.pre_shift).c_str()));
    w.line("const int8_t* in1 = input1 + c;");
    w.line("int8_t* out = output + c;");
    w.open(fmt("for (int32_t px = 0; px < %lld; ++px, in1 += %lld, out += %lld)", pixels, channels, channels));
    vector_body(w, t, m, "in1", "out");
    w.close();
    w.close();
    w.close();
  } else {
    w.open(fmt("for (size_t n = %lld, vl; n > 0; n -= vl, input1 += vl, input2 += vl, output += vl)",
               (long long)(m.batches * pixels * channels)));
    w.line(fmt("vl = __riscv_vsetvl_e32%s(n);", l.c_str()));
    w.line(fmt("const %s x2 = %s;", t.type().c_str(),
               vector_operand(t, "input2", m.input2_zero_point, m.pre_shift).c_str()));
    vector_body(w, t, m, "input1", "output");
    w.close();
  }
  w.close();
  return w.str();
}

// The vector loops with vl = 1; npu_requantize does the rescale (no pre-shift needed).
std::string emit_scalar(const KernelSpec& spec, const MulSpec& m) {
  const long long pixels = m.pixels, channels = m.channels;
  const std::string requantize =
      fmt("npu_requantize_rounding(x1 * x2, %lld, %lld, %lld, %lld, %lld, %lld)", (long long)m.multiplier,
          (long long)m.shift, (long long)m.output_zero_point, (long long)m.act_min, (long long)m.act_max,
          (long long)m.rounding);
  CWriter w;
  w.open(fmt("void %s(const int8_t* input1, const int8_t* input2, int8_t* output, int8_t* scratch)", spec.name.c_str()));
  w.line("(void)scratch;");
  // Every loop gets the pragma: with constant trip counts clang may unroll an inner loop fully
  // and then vectorise the one around it.
  if (m.broadcast) {
    w.line(ew::kNoAutoVectorize);
    w.open(fmt("for (int32_t b = 0; b < %lld; ++b, input1 += %lld, input2 += %lld, output += %lld)",
               (long long)m.batches, pixels * channels, channels, pixels * channels));
    w.line(ew::kNoAutoVectorize);
    w.open(fmt("for (int32_t c = 0; c < %lld; ++c)", channels));
    w.line(fmt("const int32_t x2 = (int32_t)input2[c] - %lld;", (long long)m.input2_zero_point));
    w.line(ew::kNoAutoVectorize);
    w.open(fmt("for (int32_t i = c; i < %lld; i += %lld)", pixels * channels, channels));
    w.line(fmt("const int32_t x1 = (int32_t)input1[i] - %lld;", (long long)m.input1_zero_point));
    w.line(fmt("output[i] = %s;", requantize.c_str()));
    w.close();
    w.close();
    w.close();
  } else {
    w.line(ew::kNoAutoVectorize);
    w.open(fmt("for (int32_t i = 0; i < %lld; ++i)", (long long)(m.batches * pixels * channels)));
    w.line(fmt("const int32_t x1 = (int32_t)input1[i] - %lld;", (long long)m.input1_zero_point));
    w.line(fmt("const int32_t x2 = (int32_t)input2[i] - %lld;", (long long)m.input2_zero_point));
    w.line(fmt("output[i] = %s;", requantize.c_str()));
    w.close();
  }
  w.close();
  return w.str();
}

Emitted emit(const KernelSpec& spec, const Arrays&, const Schedule& schedule, bool vector) {
  MulSpec m = ew::read_mul_spec(spec);
  Emitted out;
  out.source = c_prologue(spec, vector) + (vector ? emit_vector(spec, m, schedule) : emit_scalar(spec, m));
  out.schedule = schedule;
  return out;
}

const bool registered =
    register_kernel(ew::lmul_only_entry("mul", emit, [](const KernelSpec& spec) { ew::read_mul_spec(spec); }));

}  // namespace
}  // namespace coral
