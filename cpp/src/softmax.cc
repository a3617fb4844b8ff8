// "softmax": the int8 softmax along the innermost axis of kernels/ref/softmax_s8.c (npu_softmax_s8),
// TFLite's int8 SOFTMAX in gemmlowp fixed point (spec and roundings: compiler/quant/reference/softmax.py).
//
// The exp is a table. An element's exp depends only on d = max_in - x, in [0, 255], and on the
// params, which are compile-time constants: the codegen evaluates gemmlowp's
// exp_on_negative_values(MultiplyByQuantizedMultiplierGreaterThanOne(-d)) for the 256 values of d
// (0 where -d < diff_min: such an element adds nothing to the sum and outputs -128, exactly as a
// kept element whose exp is 0), plus the same table rescaled to the Q12.19 sum (RoundingDivideByPOT
// by 12, of values >= 0). Both are int32 [256] arrays, 2 KB of constants. Per row:
//   1. max_in: vmax over int8 vectors (LMUL 8, tail-undisturbed), one vredmax.
//   2. sum: per vector of int32 lanes, byte offsets -4 x (vsext, vmul) from the row's table base
//      T + 4 max_in (RV64: 4 (max_in - x) from T, see emit_vector), a gather (vluxei32) from the sum table, vadd into lane sums, one vredsum. With
//      depth < 4096 nothing overflows (each term <= 2^19); from 4096 on each vector is reduced on
//      its own and added saturating, as the spec's saturating sum.
//   3. scale and exponent (GetReciprocal, one_over_one_plus_x_for_x_in_0_1): scalar C, once per row.
//   4. out: gather exp, SRDHM by the scale as vsmul (vxrm RNU), RoundingDivideByPOT as vnclip (RNU)
//      to int16, - 128, vnclip to int8 (the clamp to 127), store.
// Roundings: gemmlowp's SRDHM is (a*b + nudge) / 2^31 truncated, nudge 2^30 or 1 - 2^30 by the
// sign; for a*b < 0 that is ceil((ab + 1 - 2^30) / 2^31) = floor((ab + 2^30) / 2^31), so for
// either sign it is round half up, i.e. vsmul with RNU (which also saturates MIN * MIN to MAX).
// RoundingDivideByPOT rounds half away from zero, RNU half up: they agree on values >= 0, and
// the output stage only rounds products of values >= 0. Its exponent num_bits_over_unit + 23 is
// above 31 only when the sum is >= 512.0 (depth >= 512): every output of that row is then -128
// (the spec's exact rounding of a value < 2^31 by >= 2^32), a branch emitted only for such depths.
// Measured (tests/coral/test_kernels_softmax.py, default schedule): 1.00 instructions/element on
// 1x1000 (9 per 32 elements in the sum loop, ~15 in the output loop), 2.50 on 49x64 (about 90
// scalar instructions per row: reciprocal and reductions); portable C 33.1 / 34.7, kernels/ref 422 / 427.
// Schedule: lmul, of the int32 lanes (8: 32 elements per gather at VLEN 128).
#include <algorithm>
#include <climits>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "elementwise.h"

namespace coral {
namespace {

using ew::VType;

constexpr int64_t kTableSize = 256;   // d = max_in - x in [0, 255]
constexpr int64_t kNoOverflowDepth = 4096;  // depth * 2^19 < 2^31 below this: plain int32 sums
constexpr int64_t kWideExponentDepth = 512;  // a sum >= 512.0 (exponent > 31) needs this many terms

using ew::SoftmaxSpec;

SoftmaxSpec read_spec(const KernelSpec& spec) {
  SoftmaxSpec p;
  p.depth = ew::field(spec, "depth", 1, INT32_MAX);
  p.rows = ew::field(spec, "rows", 0, INT32_MAX / p.depth);
  p.input_multiplier = ew::field(spec, "input_multiplier", 0, INT32_MAX);
  p.input_left_shift = ew::field(spec, "input_left_shift", 0, 31);
  p.diff_min = ew::field(spec, "diff_min", INT32_MIN, 0);
  // As the reference's binding: every kept difference must shift left within int32.
  if ((std::min<int64_t>(-p.diff_min, 255) << p.input_left_shift) > (int64_t{1} << 31)) {
    throw SpecError(fmt("softmax %s: diff_min = %lld with input_left_shift = %lld overflows int32", spec.name.c_str(),
                        (long long)p.diff_min, (long long)p.input_left_shift));
  }
  return p;
}

// ---- gemmlowp's fixed point, exactly (int64 holding int32 values), for the tables ----

int64_t srdhm(int64_t a, int64_t b) {
  if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;
  const int64_t ab = a * b;
  return (ab + (ab >= 0 ? (int64_t{1} << 30) : 1 - (int64_t{1} << 30))) / (int64_t{1} << 31);  // truncates
}

int64_t rounding_divide_by_pot(int64_t x, int exponent) {
  const int64_t mask = (int64_t{1} << exponent) - 1;
  return (x >> exponent) + ((x & mask) > (mask >> 1) + (x < 0 ? 1 : 0) ? 1 : 0);
}

int64_t exp_on_interval_between_negative_one_quarter_and_0_excl(int64_t a) {
  const int64_t x = a + (int64_t{1} << 28);
  const int64_t x2 = srdhm(x, x), x3 = srdhm(x2, x), x4 = srdhm(x2, x2);
  const int64_t poly = rounding_divide_by_pot(srdhm(rounding_divide_by_pot(x4, 2) + x3, 715827883) + x2, 1);
  return 1895147668 + srdhm(1895147668, x + poly);
}

// Q5.26 a <= 0 -> Q0.31.
int64_t exp_on_negative_values(int64_t a) {
  static const int64_t barrel[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
  const int64_t quarter = int64_t{1} << 24;
  const int64_t a_mod = (a & (quarter - 1)) - quarter;  // in [-2^24, 0): << 5 cannot saturate
  int64_t result = exp_on_interval_between_negative_one_quarter_and_0_excl(a_mod * 32);
  const int64_t remainder = a_mod - a;
  for (int k = 0; k < 7; ++k) {
    if (remainder & (int64_t{1} << (24 + k))) result = srdhm(result, barrel[k]);
  }
  return a == 0 ? INT32_MAX : result;
}

// exp of every d = max_in - x, in Q0.31; 0 where -d < diff_min.
std::vector<int32_t> exp_table(const SoftmaxSpec& p) {
  std::vector<int32_t> table(kTableSize);
  for (int64_t d = 0; d < kTableSize; ++d) {
    if (-d < p.diff_min) continue;
    const int64_t scaled = srdhm(-d * (int64_t{1} << p.input_left_shift), p.input_multiplier);
    table[d] = static_cast<int32_t>(exp_on_negative_values(scaled));
  }
  return table;
}

std::vector<int32_t> sum_table(const std::vector<int32_t>& exps) {
  std::vector<int32_t> table;
  for (int32_t e : exps) table.push_back(static_cast<int32_t>(rounding_divide_by_pot(e, 12)));
  return table;
}

// ---- emitted C ----

// The tables (exp and sum) as static arrays NAME_exp and NAME_sum, and the per-row reciprocal's
// header (npu_softmax_reciprocal.h: GetReciprocal(sum, 12) + one_over_one_plus_x_for_x_in_0_1).
std::string emit_common(const std::string& name, const SoftmaxSpec& p) {
  const std::vector<int32_t> exps = exp_table(p);
  return "#include \"npu_softmax_reciprocal.h\"\n" + c_array("int32_t", name + "_exp", exps) +
         c_array("int32_t", name + "_sum", sum_table(exps));
}

std::string signature(const KernelSpec& spec) {
  return fmt("void %s(const int8_t* input, int8_t* output, int8_t* scratch)", spec.name.c_str());
}

// Row loop head and the per-row scale; `fill` writes -128 over the row (used when exponent > 31).
void emit_reciprocal(CWriter& w, const SoftmaxSpec& p, const std::string& fill) {
  w.line("int32_t exponent;");
  w.line("const int32_t scale = npu_softmax_reciprocal(sum, &exponent);");
  if (p.depth >= kWideExponentDepth) {
    w.open("if (exponent > 31)");
    w.line("/* sum >= 512.0: every probability is below 1/512 and rounds to 0. */");
    w.line(fill);
    w.line("continue;");
    w.close();
  }
}

// The chunks of a row: `chunks` whole ones of `width` elements (a loop, or one block), then the
// `rest`. `body(tail)` writes one chunk at offset c with vl set; tail: the partial chunk, whose
// accumulators must keep their lanes beyond vl (tail-undisturbed: a tail-agnostic operation may
// fill them with ones, as QEMU does, and the reductions read every lane). Whole chunks keep one
// vl and one policy, so the compiler sets vtype once per SEW change, not per policy change too.
void chunked(CWriter& w, int64_t depth, int64_t width, const std::string& set_vl,
             const std::function<void(bool tail)>& body) {
  const int64_t chunks = depth / width, rest = depth % width;
  if (chunks) {
    w.open("");
    w.line(fmt("const size_t vl = %s(%lld);", set_vl.c_str(), (long long)width));
    w.open(chunks > 1 ? fmt("for (size_t c = 0; c < %lld; c += %lld)", (long long)(chunks * width), (long long)width)
                      : std::string(""));
    if (chunks == 1) w.line("const size_t c = 0;");
    body(false);
    w.close();
    w.close();
  }
  if (rest) {
    w.open("");
    w.line(fmt("const size_t c = %lld, vl = %s(%lld);", (long long)(chunks * width), set_vl.c_str(), (long long)rest));
    body(true);
    w.close();
  }
}

std::string emit_vector(const KernelSpec& spec, const SoftmaxSpec& p, const Schedule& schedule) {
  const std::string& name = spec.name;
  const VType t = VType::with_lmul(32, schedule.lmul), half = t.at(16), byte = t.at(8);
  const VType bytes8 = VType::with_lmul(8, 8);  // the max pass: VLEN bytes per instruction
  const int64_t lanes = spec.target.int32_lanes(schedule.lmul);  // int32 lanes of a register group
  const long long depth = p.depth;
  const std::string s = t.suffix(), b8 = bytes8.suffix(), set_vl = "__riscv_vsetvl_e32" + t.lmul();
  // The gather reads T[max_in - x]. RV32: byte offsets -4 x as uint32 from the row's table base
  // T + 4 max_in; the address wraps modulo 2^32 (32-bit offsets are XLEN wide), so the "negative"
  // offsets work. Wider XLEN zero-extends the offsets, so there they are 4 (max_in - x) >= 0 from T
  // (one more instruction). Either way every byte read lies inside T. One vsetvl for the load, the
  // sign extension and the gather (all at the int32 vl).
  const bool wrapping = spec.target.xlen == 32;
  const std::string x = fmt("__riscv_vsext_vf4_%s(__riscv_vle8_v_%s(input + c, vl), vl)", s.c_str(), byte.suffix().c_str());
  const std::string bytes = wrapping ? fmt("__riscv_vmul_vx_%s(%s, -4, vl)", s.c_str(), x.c_str())
                                     : fmt("__riscv_vsll_vx_%s(__riscv_vrsub_vx_%s(%s, max_in, vl), 2, vl)", s.c_str(),
                                           s.c_str(), x.c_str());
  const std::string set_offset = fmt("const %s offset = __riscv_vreinterpret_v_%s_%s(%s);", t.as_unsigned().type().c_str(),
                                     s.c_str(), t.as_unsigned().suffix().c_str(), bytes.c_str());
  auto gather = [&](const char* table) { return fmt("__riscv_vluxei32_v_%s(row_%s, offset, vl)", s.c_str(), table); };
  auto row_base = [&](const char* table) {
    if (!wrapping) return fmt("const int32_t* const row_%s = %s_%s;", table, name.c_str(), table);
    return fmt("const int32_t* const row_%s = (const int32_t*)((uintptr_t)%s_%s + (uintptr_t)(4 * (int32_t)max_in));",
               table, name.c_str(), table);
  };
  CWriter w;
  w.open(signature(spec));
  w.line("(void)scratch;");
  w.open(fmt("for (int32_t r = 0; r < %lld; ++r, input += %lld, output += %lld)", (long long)p.rows, depth, depth));
  w.line("/* 1. The row's maximum. */");
  w.line(fmt("%s vmax = __riscv_vmv_v_x_%s(-128, __riscv_vsetvlmax_e8m8());", bytes8.type().c_str(), b8.c_str()));
  chunked(w, p.depth, spec.target.lanes(8, 8), "__riscv_vsetvl_e8m8", [&](bool tail) {
    w.line(fmt("vmax = __riscv_vmax_vv_%s%s(%svmax, __riscv_vle8_v_%s(input + c, vl), vl);", b8.c_str(),
               tail ? "_tu" : "", tail ? "vmax, " : "", b8.c_str()));
  });
  w.line(fmt("const int8_t max_in = __riscv_vmv_x_s_i8m1_i8(__riscv_vredmax_vs_%s_i8m1(vmax, "
             "__riscv_vmv_s_x_i8m1(-128, 1), __riscv_vsetvlmax_e8m8()));",
             b8.c_str()));
  w.line("/* 2. The sum of exps, Q12.19. */");
  w.line(row_base("sum"));
  if (p.depth < kNoOverflowDepth) {
    w.line(fmt("%s acc = __riscv_vmv_v_x_%s(0, __riscv_vsetvlmax_e32%s());", t.type().c_str(), s.c_str(),
               t.lmul().c_str()));
    chunked(w, p.depth, lanes, set_vl, [&](bool tail) {
      w.line(set_offset);
      w.line(fmt("acc = __riscv_vadd_vv_%s%s(%sacc, %s, vl);", s.c_str(), tail ? "_tu" : "", tail ? "acc, " : "",
                 gather("sum").c_str()));
    });
    w.line(fmt("const int32_t sum = __riscv_vmv_x_s_i32m1_i32(__riscv_vredsum_vs_%s_i32m1(acc, "
               "__riscv_vmv_s_x_i32m1(0, 1), __riscv_vsetvlmax_e32%s()));",
               s.c_str(), t.lmul().c_str()));
  } else {
    w.line("int32_t sum = 0; /* saturating: TFLite's int32 sum would overflow */");
    chunked(w, p.depth, lanes, set_vl, [&](bool) {
      w.line(set_offset);
      w.line(fmt("const int32_t part = __riscv_vmv_x_s_i32m1_i32(__riscv_vredsum_vs_%s_i32m1(%s, "
                 "__riscv_vmv_s_x_i32m1(0, 1), vl));",
                 s.c_str(), gather("sum").c_str()));
      w.line("sum = sum > INT32_MAX - part ? INT32_MAX : sum + part;");
    });
  }
  w.line("/* 3. 1 / sum. */");
  emit_reciprocal(w, p,
                  fmt("for (size_t c = 0, vl; c < %lld; c += vl) { vl = __riscv_vsetvl_e8m8(%lld - c); "
                      "__riscv_vse8_v_%s(output + c, __riscv_vmv_v_x_%s(-128, vl), vl); }",
                      depth, depth, b8.c_str(), b8.c_str()));
  w.line("/* 4. out = sat8(RoundingDivideByPOT(SRDHM(scale, exp), exponent) - 128). */");
  w.line(row_base("exp"));
  chunked(w, p.depth, lanes, set_vl, [&](bool) {
    w.line(set_offset);
    w.line(fmt("const %s p = __riscv_vsmul_vx_%s(%s, scale, __RISCV_VXRM_RNU, vl);", t.type().c_str(), s.c_str(),
               gather("exp").c_str()));
    w.line(fmt("const %s q = __riscv_vadd_vx_%s(__riscv_vnclip_wx_%s(p, exponent, __RISCV_VXRM_RNU, vl), -128, vl);",
               half.type().c_str(), half.suffix().c_str(), half.suffix().c_str()));
    w.line(fmt("__riscv_vse8_v_%s(output + c, __riscv_vnclip_wx_%s(q, 0, __RISCV_VXRM_RNU, vl), vl);",
               byte.suffix().c_str(), byte.suffix().c_str()));
  });
  w.close();
  w.close();
  return w.str();
}

// The same passes in portable C, the tables indexed by max_in - x.
std::string emit_scalar(const KernelSpec& spec, const SoftmaxSpec& p) {
  const std::string& name = spec.name;
  const long long depth = p.depth;
  const std::string loop = fmt("for (int32_t c = 0; c < %lld; ++c)", depth);
  CWriter w;
  w.open(signature(spec));
  w.line("(void)scratch;");
  w.line(ew::kNoAutoVectorize);
  w.open(fmt("for (int32_t r = 0; r < %lld; ++r, input += %lld, output += %lld)", (long long)p.rows, depth, depth));
  w.line("int32_t max_in = -128;");
  w.line(ew::kNoAutoVectorize);
  w.line(loop + " max_in = input[c] > max_in ? input[c] : max_in;");
  w.line("int32_t sum = 0;");
  w.line(ew::kNoAutoVectorize);
  w.open(loop);
  if (p.depth < kNoOverflowDepth) {
    w.line(fmt("sum += %s_sum[max_in - input[c]];", name.c_str()));
  } else {
    w.line(fmt("const int32_t term = %s_sum[max_in - input[c]];", name.c_str()));
    w.line("sum = sum > INT32_MAX - term ? INT32_MAX : sum + term; /* saturating */");
  }
  w.close();
  emit_reciprocal(w, p, fmt("%s output[c] = -128;", loop.c_str()));
  w.line(ew::kNoAutoVectorize);
  w.open(loop);
  w.line(fmt("output[c] = npu_softmax_output(scale, %s_exp[max_in - input[c]], exponent);", name.c_str()));
  w.close();
  w.close();
  w.close();
  return w.str();
}

Emitted emit(const KernelSpec& spec, const Arrays& arrays, const Schedule& schedule, bool vector) {
  (void)arrays;
  const SoftmaxSpec p = read_spec(spec);
  Emitted out;
  out.source = c_prologue(spec, vector);
  if (p.rows == 0) {
    out.source += signature(spec) + " {\n  (void)input;\n  (void)output;\n  (void)scratch;\n}\n";
  } else {
    out.source += emit_common(spec.name, p) + "\n" + (vector ? emit_vector(spec, p, schedule) : emit_scalar(spec, p));
    out.constant_bytes = 2 * 4 * kTableSize;
  }
  out.schedule = schedule;
  return out;
}

const bool registered =
    register_kernel(ew::lmul_only_entry("softmax", emit, [](const KernelSpec& spec) { read_spec(spec); }));

}  // namespace

namespace ew {

SoftmaxSpec read_softmax_spec(const KernelSpec& spec) { return read_spec(spec); }

std::vector<int32_t> softmax_exp_table(const SoftmaxSpec& p) { return exp_table(p); }

std::vector<int32_t> softmax_sum_table(const std::vector<int32_t>& exps) { return sum_table(exps); }

}  // namespace ew
}  // namespace coral
