// "global_avg_pool2d": kernels/ref/pool_s8.c's npu_global_avg_pool_s8 (int8 MEAN over H, W), NHWC.
//
// Vectors over channels; each channel vector sums the n = H * W pixels. sum(in - zp) is
// sum(in) - n * zp, and sum(in) is built from int16 partial sums of up to 256 pixels (vwadd, no
// widening per pixel), each widened once into the int32 sum. Then one MBQM (1/n is folded into
// the multiplier), the zero point and the clamp.
// Schedule: lmul, of the int32 sums (8: 32 channels per vector at VLEN 128).
#include <tuple>

#include "elementwise.h"

namespace coral {
namespace {

using ew::VType;

constexpr int64_t kPartialPixels = 256;  // 256 * -128 is still an int16

struct MeanSpec {
  int64_t batches, pixels, channels;
  int64_t input_zero_point, output_zero_point, multiplier, shift, act_min, act_max;
};

MeanSpec read_spec(const KernelSpec& spec) {
  MeanSpec m;
  m.batches = ew::field(spec, "batches", 0, INT32_MAX);
  int64_t in_h = ew::field(spec, "in_h", 1, 1 << 23);
  m.pixels = in_h * ew::field(spec, "in_w", 1, (1 << 23) / in_h);  // |sum| <= 255 * 2^23 fits int32
  m.channels = ew::field(spec, "channels", 1, INT32_MAX);
  if (m.batches * m.pixels * m.channels > INT32_MAX) throw SpecError(spec.kernel + " " + spec.name + ": input larger than 2^31 elements");
  m.input_zero_point = ew::field(spec, "input_zero_point", INT8_MIN, INT8_MAX);
  m.output_zero_point = ew::field(spec, "output_zero_point", INT8_MIN, INT8_MAX);
  m.multiplier = ew::field(spec, "multiplier", 0, INT32_MAX);
  m.shift = ew::field(spec, "shift", -31, 30);
  std::tie(m.act_min, m.act_max) = ew::act_range(spec);
  return m;
}

// One batch: channel vector by channel vector.
void vector_loops(CWriter& w, const MeanSpec& m, const Schedule& schedule) {
  const VType sum = VType::with_lmul(32, schedule.lmul), part = sum.at(16), in = sum.at(8);
  const std::string l = sum.lmul();
  w.open(fmt("for (size_t vl, c = 0; c < %lld; c += vl)", (long long)m.channels));
  w.line(fmt("vl = __riscv_vsetvl_e32%s(%lld - c);", l.c_str(), (long long)m.channels));
  w.line(fmt("%s sum = __riscv_vmv_v_x_%s(%lld, vl);", sum.type().c_str(), sum.suffix().c_str(),
             (long long)(-m.pixels * m.input_zero_point)));
  w.line("const int8_t* p = input + c;");
  w.open(fmt("for (int32_t left = %lld; left > 0; left -= %lld)", (long long)m.pixels, (long long)kPartialPixels));
  w.line(fmt("%s part = __riscv_vmv_v_x_%s(0, vl);", part.type().c_str(), part.suffix().c_str()));
  w.open(fmt("for (int32_t i = left < %lld ? left : %lld; i > 0; --i, p += %lld)", (long long)kPartialPixels,
             (long long)kPartialPixels, (long long)m.channels));
  w.line(fmt("part = __riscv_vwadd_wv_%s(part, __riscv_vle8_v_%s(p, vl), vl);", part.suffix().c_str(), in.suffix().c_str()));
  w.close();
  w.line(fmt("sum = __riscv_vwadd_wv_%s(sum, part, vl);", sum.suffix().c_str()));
  w.close();
  w.line(fmt("const %s mean = npu_rvv_mbqm_x_%s(sum, %lld, %lld, vl);", sum.type().c_str(), l.c_str(),
             (long long)m.multiplier, (long long)m.shift));
  w.line(fmt("npu_rvv_store_s8_%s(output + c, npu_rvv_clamp_zp_%s(mean, %lld, %lld, %lld, vl), vl);", l.c_str(), l.c_str(),
             (long long)m.output_zero_point, (long long)m.act_min, (long long)m.act_max));
  w.close();
}

// One batch: channel by channel.
void scalar_loops(CWriter& w, const MeanSpec& m) {
  w.line(ew::kNoAutoVectorize);
  w.open(fmt("for (int32_t c = 0; c < %lld; ++c)", (long long)m.channels));
  w.line(fmt("int32_t sum = %lld;", (long long)(-m.pixels * m.input_zero_point)));
  w.line(fmt("for (int32_t i = 0; i < %lld; ++i) sum += input[i * %lld + c];", (long long)m.pixels, (long long)m.channels));
  w.line(fmt("output[c] = npu_requantize(sum, %lld, %lld, %lld, %lld, %lld);", (long long)m.multiplier, (long long)m.shift,
             (long long)m.output_zero_point, (long long)m.act_min, (long long)m.act_max));
  w.close();
}

Emitted emit(const KernelSpec& spec, const Arrays&, const Schedule& schedule, bool vector) {
  MeanSpec m = read_spec(spec);
  CWriter w;
  w.open(fmt("void %s(const int8_t* input, int8_t* output, int8_t* scratch)", spec.name.c_str()));
  w.line("(void)scratch;");
  w.line("/* sum(in - zp) = sum(in) - n * zp. */");
  w.open(fmt("for (int32_t b = 0; b < %lld; ++b, input += %lld, output += %lld)", (long long)m.batches,
             (long long)(m.pixels * m.channels), (long long)m.channels));
  if (vector) {
    vector_loops(w, m, schedule);
  } else {
    scalar_loops(w, m);
  }
  w.close();
  w.close();
  Emitted out;
  out.source = c_prologue(spec, vector) + w.str();
  out.schedule = schedule;
  return out;
}

const bool registered =
    register_kernel(ew::lmul_only_entry("global_avg_pool2d", emit, [](const KernelSpec& spec) { read_spec(spec); }));

}  // namespace
}  // namespace coral
