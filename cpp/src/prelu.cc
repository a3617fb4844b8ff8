// "prelu": the int8 PReLU with a per-channel slope of kernels/ref/prelu_s8.c (npu_prelu_s8), NHWC
// flattened to [outer][channels]:
//   v = in - zp_in;  out = clamp((v >= 0 ? MBQM(v, m_pos, e_pos) : MBQM(v * slope[c], m_neg, e_neg)) + zp_out)
// with slope[c] = alpha[c] - zp_alpha, known at compile time, and MBQM rounding as the spec's
// "rounding" says (npu_quant.h NPU_ROUND_*: 0 once, ONNX models; 1 twice, ties away from zero,
// TFLite models as LiteRT's PRELU; 2 twice, ties up).
//
// Both branches are computed in every lane and a mask (v < 0) picks one. With single rounding,
// one rounding shift serves both: as in add.cc / mul.cc, a value of few bits can be shifted left
// by pre bits and rounded by as many more bits. The codegen picks one rounding shift
// S = max(33, 31 - e_pos, 31 - e_neg) for both branches, pre_pos = S - 31 + e_pos and
// pre_neg = S - 31 + e_neg, when the shifted values stay in int32 (bounded with the actual input
// zero point and the largest |slope|; with the widest bounds, 255 and 255^2: e_pos <= 21,
// e_neg <= 13, e_pos - e_neg <= 23 and e_neg - e_pos <= 15, while real models have e_pos near 0
// and e_neg near -8). Per vector of int32 lanes:
//   p  = v << pre_pos;  p = v * (slope << pre_neg) in the negative lanes  (vsll, masked vmul)
//   hi = mulh(p, m_pos); hi = mulh(p, m_neg) in the negative lanes       (vmulh, masked vmulh)
//   out = sat8(sat16(round(hi >> (S - 32))) + zp_out)                     (vnclip, vsadd, vnclip)
// exact by npu_rvv_quant.h's short path (the low word never carries into a rounding shift >= 33,
// and |hi >> (S - 32)| < 2^30, so nothing saturates but the narrowing, which is the int8 clamp).
// Otherwise each branch goes through npu_rvv_mbqm_x on its own (its short path where that branch
// allows it, 0.69 instructions/element; any shift otherwise, about 5), merged, clamped. Double
// rounding cannot be pre-shifted (vsmul rounds at bit 31 of the unshifted product): each branch
// goes through npu_rvv_mbqm_double_x (vsmul, then the rounding shift), merged, clamped.
//
// Loops: the pre-shifted slopes are a static int32 array, loaded once per vector of channels.
// channels > lanes (32 int32 lanes at lmul 8, VLEN 128): channel tiles outside, pixels inside
// (stride channels), as mul.cc's broadcast. channels <= lanes: k = lanes / channels whole pixels
// per vector (the slopes repeated k times), then one vector for the remaining pixels. The chunk is
// at most the lanes of a VLEN-128 register group, so a longer VLEN runs the same code. Two
// vectors per loop iteration halve the loop's own instructions.
// Measured (tests/coral/test_kernels_prelu.py, default schedule): 0.563 instructions/element on
// 28x28x96 and on 56x56x16 (per 64 elements: 2 x (12 vector instructions + 3 vsetvli) + 6 for
// the loop and addresses); the portable C variant 43.5, kernels/ref 68.5. With TFLite's double
// rounding (ties away from zero) 0.719 on 28x28x96.
// Schedule: lmul, of the int32 lanes (8: 32 elements per instruction at VLEN 128).
#include <algorithm>
#include <cstdlib>
#include <tuple>
#include <vector>

#include "elementwise.h"

namespace coral {
namespace {

using ew::VType;

using ew::PreluSpec;

PreluSpec read_spec(const KernelSpec& spec) { return ew::read_prelu_spec(spec); }

std::vector<int64_t> read_slopes(const Arrays& arrays, const PreluSpec& p) { return ew::prelu_slopes(arrays, p); }

// The largest left shift (at most 31) that keeps every magnitude <= bound in int32.
int64_t max_pre_shift(int64_t bound) {
  int64_t shift = 0;
  while (shift < 31 && (bound << (shift + 1)) <= INT32_MAX) ++shift;
  return shift;
}

// How the vector code rescales: pre-shifts of each branch's value and, when `joint`, the one
// rounding shift (S - 32) both then share; otherwise each branch is rounded by ew::mbqm_x with
// shift e - pre (pre 0 for double rounding).
struct Plan {
  bool joint;
  int64_t positive_pre, negative_pre;
  int64_t round_shift;    // joint: S - 32, in [1, 30]
  bool negative_products;  // some v < 0 has a nonzero v * slope
};

Plan plan(const PreluSpec& p, const std::vector<int64_t>& slopes) {
  int64_t max_slope = 0;
  for (int64_t s : slopes) max_slope = std::max<int64_t>(max_slope, std::llabs(s));
  // v in [0, 127 - zp] takes the positive branch, v in [-128 - zp, -1] the negative one.
  const int64_t negative_bound = (128 + p.input_zero_point) * max_slope;
  if (p.rounding != 0) return {false, 0, 0, 0, negative_bound != 0};  // vsmul: no pre-shift
  const int64_t positive_limit = max_pre_shift(127 - p.input_zero_point);
  const int64_t negative_limit = max_pre_shift(negative_bound);
  const int64_t s = std::max<int64_t>({33, 31 - p.positive_shift, 31 - p.negative_shift});
  const int64_t positive_pre = s - 31 + p.positive_shift, negative_pre = s - 31 + p.negative_shift;
  if (positive_pre <= positive_limit && negative_pre <= negative_limit) {
    return {true, positive_pre, negative_pre, s - 32, negative_bound != 0};
  }
  // Each branch on its own: the short path (rounding shift >= 33) where its values allow it.
  auto own = [](int64_t shift, int64_t limit) { return std::min(limit, std::max<int64_t>(0, shift + 2)); };
  return {false, own(p.positive_shift, positive_limit), own(p.negative_shift, negative_limit), 0, negative_bound != 0};
}

// slope << negative_pre per element of a vector chunk of `width` lanes (channel c = index % channels);
// 0 when no negative lane can have a nonzero product (the shifted slope might not fit int32 then).
std::vector<int32_t> shifted_slopes(const std::vector<int64_t>& slopes, const PreluSpec& p, const Plan& plan,
                                    int64_t width) {
  std::vector<int32_t> values(width);
  for (int64_t i = 0; i < width; ++i) {
    const int64_t shifted = slopes[i % p.channels] * (int64_t{1} << plan.negative_pre);
    values[i] = plan.negative_products ? static_cast<int32_t>(shifted) : 0;
  }
  return values;
}

// One vector of `vl` elements at `in` -> `out`; `slope` (the shifted slopes) is in scope.
void vector_body(CWriter& w, const VType& t, const PreluSpec& p, const Plan& plan, const std::string& in,
                 const std::string& out) {
  const std::string s = t.suffix(), l = t.lmul(), ty = t.type();
  std::string v = fmt("npu_rvv_load_s8_%s(%s, vl)", l.c_str(), in.c_str());
  if (p.input_zero_point != 0) {
    v = fmt("__riscv_vsub_vx_%s(%s, %lld, vl)", s.c_str(), v.c_str(), (long long)p.input_zero_point);
  }
  w.line(fmt("const %s v = %s;", ty.c_str(), v.c_str()));
  w.line(fmt("const %s negative = __riscv_vmslt_vx_%s_%s(v, 0, vl);", t.mask_type().c_str(), s.c_str(),
             t.mask().c_str()));
  const std::string positive =
      plan.positive_pre ? fmt("__riscv_vsll_vx_%s(v, %lld, vl)", s.c_str(), (long long)plan.positive_pre) : "v";
  if (plan.joint) {
    w.line("/* v << pre_pos, and v * (slope << pre_neg) where v < 0; both rounded by the same shift. */");
    w.line(fmt("const %s p = __riscv_vmul_vv_%s_mu(negative, %s, v, slope, vl);", ty.c_str(), s.c_str(),
               positive.c_str()));
    w.line(fmt("%s hi = __riscv_vmulh_vx_%s(p, %lld, vl);", ty.c_str(), s.c_str(), (long long)p.positive_multiplier));
    w.line(fmt("hi = __riscv_vmulh_vx_%s_mu(negative, hi, p, %lld, vl);", s.c_str(), (long long)p.negative_multiplier));
    // Rounded and saturated to int16, + zp (saturating), saturated to int8: the int8 clamp of r + zp.
    const VType half = t.at(16), byte = t.at(8);
    std::string narrow =
        fmt("__riscv_vnclip_wx_%s(hi, %lld, __RISCV_VXRM_RNU, vl)", half.suffix().c_str(), (long long)plan.round_shift);
    if (p.output_zero_point != 0) {
      narrow = fmt("__riscv_vsadd_vx_%s(%s, %lld, vl)", half.suffix().c_str(), narrow.c_str(),
                   (long long)p.output_zero_point);
    }
    w.line(fmt("const %s narrow = %s;", half.type().c_str(), narrow.c_str()));
    const std::string saturated = fmt("__riscv_vnclip_wx_%s(narrow, 0, __RISCV_VXRM_RNU, vl)", byte.suffix().c_str());
    w.line(fmt("__riscv_vse8_v_%s(%s, %s, vl);", byte.suffix().c_str(), out.c_str(),
               ew::clamp_s8(byte, saturated, p.act_min, p.act_max).c_str()));
    return;
  }
  w.line(fmt("const %s pos = %s;", ty.c_str(),
             ew::mbqm_x(t, positive, p.positive_multiplier, p.positive_shift - plan.positive_pre, p.rounding).c_str()));
  w.line(fmt("const %s neg = %s;", ty.c_str(),
             ew::mbqm_x(t, fmt("__riscv_vmul_vv_%s(v, slope, vl)", s.c_str()), p.negative_multiplier,
                        p.negative_shift - plan.negative_pre, p.rounding).c_str()));
  w.line(fmt("const %s r = __riscv_vmerge_vvm_%s(pos, neg, negative, vl);", ty.c_str(), s.c_str()));
  w.line(fmt("npu_rvv_store_s8_%s(%s, npu_rvv_clamp_zp_%s(r, %lld, %lld, %lld, vl), vl);", l.c_str(), out.c_str(),
             l.c_str(), (long long)p.output_zero_point, (long long)p.act_min, (long long)p.act_max));
}

// `count` vectors of vl elements, `stride` elements apart, from the pointer variables `in` / `out`,
// which the loop advances: two vectors per iteration (half the loop's own instructions), then the
// odd one.
void vector_loop(CWriter& w, const VType& t, const PreluSpec& p, const Plan& plan, int64_t count, int64_t stride) {
  if (count >= 2) {
    w.open(fmt("for (int32_t i = 0; i < %lld; ++i, in += %lld, out += %lld)", (long long)count / 2,
               (long long)(2 * stride), (long long)(2 * stride)));
    w.open("");
    vector_body(w, t, p, plan, "in", "out");
    w.close();
    w.open("");
    vector_body(w, t, p, plan, fmt("in + %lld", (long long)stride), fmt("out + %lld", (long long)stride));
    w.close();
    w.close();
  }
  if (count % 2) {
    w.open("");
    vector_body(w, t, p, plan, "in", "out");
    w.close();
  }
}

std::string signature(const KernelSpec& spec) {
  return fmt("void %s(const int8_t* input, int8_t* output, int8_t* scratch)", spec.name.c_str());
}

// The constant array and the function; `constant_bytes` receives the array's size.
std::string emit_vector(const KernelSpec& spec, const PreluSpec& p, const std::vector<int64_t>& slopes,
                        const Schedule& schedule, int64_t& constant_bytes) {
  const VType t = VType::with_lmul(32, schedule.lmul);
  const std::string l = t.lmul(), ty = t.type(), s = t.suffix();
  const int64_t lanes = spec.target.int32_lanes(schedule.lmul);  // int32 lanes of a register group
  const int64_t channels = p.channels, outer = p.outer;
  const Plan pl = plan(p, slopes);
  const std::string table = spec.name + "_slope";
  const std::string load_slope = fmt("const %s slope = __riscv_vle32_v_%s(%s%s, vl);", ty.c_str(), s.c_str(),
                                     table.c_str(), channels > lanes ? " + c" : "");
  const int64_t per_vector = channels > lanes ? 1 : lanes / channels;  // whole pixels per vector
  std::vector<int32_t> values = shifted_slopes(slopes, p, pl, per_vector * channels);
  constant_bytes = 4 * static_cast<int64_t>(values.size());
  CWriter w;
  w.open(signature(spec));
  w.line("(void)scratch;");
  if (channels > lanes) {
    w.line("/* Per vector of channels, every pixel. */");
    w.open(fmt("for (size_t c = 0, vl; c < %lld; c += vl)", (long long)channels));
    w.line(fmt("vl = __riscv_vsetvl_e32%s(%lld - c);", l.c_str(), (long long)channels));
    w.line(load_slope);
    w.line("const int8_t* in = input + c;");
    w.line("int8_t* out = output + c;");
    vector_loop(w, t, p, pl, outer, channels);
    w.close();
  } else {
    const int64_t chunk = per_vector * channels, rows = outer / per_vector, rest = outer % per_vector;
    w.line(fmt("/* %lld whole pixels per vector. */", (long long)per_vector));
    w.line(fmt("size_t vl = __riscv_vsetvl_e32%s(%lld);", l.c_str(), (long long)(rows ? chunk : rest * channels)));
    w.line(load_slope);
    w.line("const int8_t* in = input;");
    w.line("int8_t* out = output;");
    vector_loop(w, t, p, pl, rows, chunk);
    if (rest) {
      w.open("");
      w.line(fmt("/* The last %lld pixels. */", (long long)rest));
      if (rows) w.line(fmt("vl = __riscv_vsetvl_e32%s(%lld);", l.c_str(), (long long)(rest * channels)));
      const long long done = rows * chunk;
      vector_body(w, t, p, pl, fmt("input + %lld", done), fmt("output + %lld", done));
      w.close();
    }
  }
  w.close();
  return c_array("int32_t", table, values) + "\n" + w.str();
}

// Per pixel, per channel, as the reference (npu_requantize_rounding rescales), the slopes an int32
// array.
std::string emit_scalar(const KernelSpec& spec, const PreluSpec& p, const std::vector<int64_t>& slopes,
                        int64_t& constant_bytes) {
  const std::string table = spec.name + "_slope";
  const long long channels = p.channels;
  auto requantize = [&](const char* value, int64_t multiplier, int64_t shift) {
    return fmt("npu_requantize_rounding(%s, %lld, %lld, %lld, %lld, %lld, %lld)", value, (long long)multiplier,
               (long long)shift, (long long)p.output_zero_point, (long long)p.act_min, (long long)p.act_max,
               (long long)p.rounding);
  };
  const std::vector<int32_t> values(slopes.begin(), slopes.end());
  constant_bytes = 4 * static_cast<int64_t>(values.size());
  CWriter w;
  w.open(signature(spec));
  w.line("(void)scratch;");
  // Both loops get the pragma: clang may unroll the channel loop and vectorise the pixel loop.
  w.line(ew::kNoAutoVectorize);
  w.open(fmt("for (int32_t px = 0; px < %lld; ++px, input += %lld, output += %lld)", (long long)p.outer, channels,
             channels));
  w.line(ew::kNoAutoVectorize);
  w.open(fmt("for (int32_t c = 0; c < %lld; ++c)", channels));
  w.line(fmt("const int32_t v = (int32_t)input[c] - %lld;", (long long)p.input_zero_point));
  w.line(fmt("output[c] = v >= 0 ? %s", requantize("v", p.positive_multiplier, p.positive_shift).c_str()));
  w.line(fmt("                   : %s;",
             requantize(fmt("v * %s[c]", table.c_str()).c_str(), p.negative_multiplier, p.negative_shift).c_str()));
  w.close();
  w.close();
  w.close();
  return c_array("int32_t", table, values) + "\n" + w.str();
}

Emitted emit(const KernelSpec& spec, const Arrays& arrays, const Schedule& schedule, bool vector) {
  const PreluSpec p = read_spec(spec);
  const std::vector<int64_t> slopes = read_slopes(arrays, p);
  Emitted out;
  out.source = c_prologue(spec, vector);
  if (p.outer == 0 || p.channels == 0) {
    out.source += signature(spec) + " {\n  (void)input;\n  (void)output;\n  (void)scratch;\n}\n";
  } else if (vector) {
    out.source += emit_vector(spec, p, slopes, schedule, out.constant_bytes);
  } else {
    out.source += emit_scalar(spec, p, slopes, out.constant_bytes);
  }
  out.schedule = schedule;
  return out;
}

const bool registered =
    register_kernel(ew::lmul_only_entry("prelu", emit, [](const KernelSpec& spec) { read_spec(spec); }));

}  // namespace
}  // namespace coral
