// "global_avg_pool2d": kernels/ref/pool_s8.c's npu_global_avg_pool_s8 (int8 MEAN over H, W), NHWC.
//
// Vectors over channels; each channel vector sums the n = H * W pixels. sum(in - zp) is
// sum(in) - n * zp, and sum(in) is built from int16 partial sums of up to 256 pixels (vwadd, no
// widening per pixel), each widened once into the int32 sum. Then one MBQM (1/n is folded into
// the multiplier), the zero point (and bias) and the clamp. TFLite models round the channels of
// whole blocks of 16 (block_rounding) unlike the rest (rounding): two channel loops then.
// Schedule: lmul, of the int32 sums (8: 32 channels per vector at VLEN 128).
#include <tuple>
#include <vector>

#include "elementwise.h"

namespace coral {
namespace {

using ew::VType;
using ew::MeanSpec;

constexpr int64_t kPartialPixels = 256;  // 256 * -128 is still an int16
constexpr int64_t kBlock = 16;           // npu_kernels_elementwise.h NPU_MEAN_BLOCK

// Channels [begin, end), requantised with one rounding (npu_quant.h NPU_ROUND_*).
struct ChannelRange {
  int64_t begin, end, rounding;
};

// The channel ranges of one rounding each: whole blocks of kBlock channels, then the rest.
std::vector<ChannelRange> channel_ranges(const MeanSpec& m) {
  const int64_t block = m.rounding == m.block_rounding ? 0 : m.channels - m.channels % kBlock;
  std::vector<ChannelRange> ranges;
  if (block > 0) ranges.push_back({0, block, m.block_rounding});
  if (block < m.channels) ranges.push_back({block, m.channels, m.rounding});
  return ranges;
}

// One batch's channels r: channel vector by channel vector.
void vector_loops(CWriter& w, const MeanSpec& m, const ChannelRange& r, const Schedule& schedule) {
  const VType sum = VType::with_lmul(32, schedule.lmul), part = sum.at(16), in = sum.at(8);
  const std::string l = sum.lmul();
  w.open(fmt("for (size_t vl, c = %lld; c < %lld; c += vl)", (long long)r.begin, (long long)r.end));
  w.line(fmt("vl = __riscv_vsetvl_e32%s(%lld - c);", l.c_str(), (long long)r.end));
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
  w.line(fmt("const %s mean = %s;", sum.type().c_str(), ew::mbqm_x(sum, "sum", m.multiplier, m.shift, r.rounding).c_str()));
  w.line(fmt("npu_rvv_store_s8_%s(output + c, npu_rvv_clamp_zp_%s(mean, %lld, %lld, %lld, vl), vl);", l.c_str(), l.c_str(),
             (long long)(m.output_zero_point + m.bias), (long long)m.act_min, (long long)m.act_max));
  w.close();
}

// One batch's channels r: channel by channel.
void scalar_loops(CWriter& w, const MeanSpec& m, const ChannelRange& r) {
  w.line(ew::kNoAutoVectorize);
  w.open(fmt("for (int32_t c = %lld; c < %lld; ++c)", (long long)r.begin, (long long)r.end));
  w.line(fmt("int32_t sum = %lld;", (long long)(-m.pixels * m.input_zero_point)));
  w.line(fmt("for (int32_t i = 0; i < %lld; ++i) sum += input[i * %lld + c];", (long long)m.pixels, (long long)m.channels));
  w.line(fmt("output[c] = npu_requantize_rounding(sum, %lld, %lld, %lld, %lld, %lld, %lld);", (long long)m.multiplier,
             (long long)m.shift, (long long)(m.output_zero_point + m.bias), (long long)m.act_min, (long long)m.act_max,
             (long long)r.rounding));
  w.close();
}

Emitted emit(const KernelSpec& spec, const Arrays&, const Schedule& schedule, bool vector) {
  MeanSpec m = ew::read_mean_spec(spec);
  CWriter w;
  w.open(fmt("void %s(const int8_t* input, int8_t* output, int8_t* scratch)", spec.name.c_str()));
  w.line("(void)scratch;");
  w.line("/* sum(in - zp) = sum(in) - n * zp. */");
  w.open(fmt("for (int32_t b = 0; b < %lld; ++b, input += %lld, output += %lld)", (long long)m.batches,
             (long long)(m.pixels * m.channels), (long long)m.channels));
  for (const ChannelRange& r : channel_ranges(m)) {
    if (vector) {
      vector_loops(w, m, r, schedule);
    } else {
      scalar_loops(w, m, r);
    }
  }
  w.close();
  w.close();
  Emitted out;
  out.source = c_prologue(spec, vector) + w.str();
  out.schedule = schedule;
  return out;
}

const bool registered =
    register_kernel(ew::lmul_only_entry("global_avg_pool2d", emit, [](const KernelSpec& spec) { ew::read_mean_spec(spec); }));

}  // namespace
}  // namespace coral
