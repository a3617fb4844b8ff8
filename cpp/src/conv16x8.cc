// "conv2d_s16x8", "dense_s16x8": int16 activations x int8 weights (TFLite's 16x8 scheme; kernels/ref
// conv16x8.c, compiler/quant/reference/conv16x8.py), the higher precision --accuracy-budget gives a
// layer on coral-npu. Zero points are 0; the bias is int64; the accumulator int64 in the reference.
//
// Vector form (Zve32x has no 64-bit elements): the sums run in int32 lanes, which is exact when
// every output channel's |bias| + 32768 * sum |w| stays below 2^31 (int32 wrap-around is exact
// arithmetic mod 2^32, so only the final sum must fit): checked on the weights at compile time.
// The requantisation (acc * r + 2^(t - 1)) >> t, r the 15-bit multiplier and t = 15 - shift, is
//   t in [17, 46]: vmulh(acc, r << 16) = floor(acc r / 2^16), then vnclip by t - 16 with RNU rounding
//                  (adding 2^(t-1) touches only the high part, and the dropped low 16 bits are a
//                  fraction below one that cannot change a floor by a power of two);
//   t in [15, 31]: vsmul(acc, r << (31 - t)) with RNU, which is that rounding at bit 31, then vnclip 0;
// both narrow to int16 with saturation, then the activation clamp. A layer that fits neither
// (sums that may leave int32, or shifts on both sides) takes the same int64 loops as the portable
// form, inside the kernel: slower, never wrong.
//   groups 1 and grouped: per output pixel and group, output channels in vectors; per tap and input
//     channel one scalar input times the weights pre-widened to int16 ([group][tap][ci][channel]),
//     vwmacc.vx into int32 accumulators.
//   depthwise (groups == in_c == out_c): channels in vectors, per tap a vector of inputs times a
//     vector of weights ([tap][channel], int16), vwmacc.vv.
// Schedule: lmul, of the int32 accumulators (8: 32 channels per instruction at VLEN 128).
#include <algorithm>
#include <cstdlib>

#include "elementwise.h"

namespace coral {
namespace {

using ew::VType;

struct Shape16 {
  int64_t batches, in_h, in_w, in_c, out_h, out_w, out_c, kernel_h, kernel_w;
  int64_t stride_h, stride_w, dilation_h, dilation_w, pad_top, pad_left, groups, act_min, act_max;

  int64_t taps() const { return kernel_h * kernel_w; }
  int64_t cin() const { return in_c / groups; }
  int64_t cout() const { return out_c / groups; }
  bool depthwise() const { return groups > 1 && groups == in_c && groups == out_c; }
};

Shape16 read_shape(const KernelSpec& spec) {
  auto size = [&](const char* key) { return ew::field(spec, key, 1, INT32_MAX); };
  auto act = [&](const char* key, int64_t fallback) {
    return spec.params.count(key) ? ew::field(spec, key, INT16_MIN, INT16_MAX) : fallback;
  };
  Shape16 s{};
  if (spec.kernel == "dense_s16x8") {
    s = {ew::field(spec, "batches", 0, INT32_MAX), 1, 1, size("in_features"), 1, 1, size("out_features"), 1, 1,
         1, 1, 1, 1, 0, 0, 1, 0, 0};
  } else {
    s = {ew::field(spec, "batches", 0, INT32_MAX), size("in_h"), size("in_w"), size("in_c"), size("out_h"), size("out_w"),
         size("out_c"), size("kernel_h"), size("kernel_w"), size("stride_h"), size("stride_w"),
         spec.params.count("dilation_h") ? size("dilation_h") : 1, spec.params.count("dilation_w") ? size("dilation_w") : 1,
         ew::field(spec, "pad_top", 0, INT32_MAX), ew::field(spec, "pad_left", 0, INT32_MAX),
         spec.params.count("groups") ? size("groups") : 1, 0, 0};
    if (s.in_c % s.groups || s.out_c % s.groups) {
      throw SpecError(fmt("%s %s: groups %lld must divide in_c %lld and out_c %lld", spec.kernel.c_str(),
                          spec.name.c_str(), (long long)s.groups, (long long)s.in_c, (long long)s.out_c));
    }
  }
  s.act_min = act("act_min", INT16_MIN);
  s.act_max = act("act_max", INT16_MAX);
  if (s.act_min > s.act_max) throw SpecError(spec.kernel + " " + spec.name + ": act_min > act_max");
  return s;
}

// The layer's constants, checked: weights (OHWI, int8), bias (int64 from (bias_hi, bias_lo) int32
// pairs, or zeros), multiplier and shift per output channel.
struct Layer16 {
  std::vector<int32_t> weight, multiplier, shift;
  std::vector<int64_t> bias;
};

Layer16 read_layer(const KernelSpec& spec, const Shape16& s, const Arrays& arrays) {
  Layer16 l;
  const Array& weight = array(arrays, "weight");
  if (weight.dtype != "int8" || static_cast<int64_t>(weight.values.size()) != s.out_c * s.taps() * s.cin()) {
    throw SpecError(spec.kernel + " " + spec.name + ": 'weight' must be int8 [out_c, kernel_h, kernel_w, in_c / groups]");
  }
  l.weight = weight.values;
  auto per_channel = [&](const char* key, int64_t lo, int64_t hi) {
    const Array& a = array(arrays, key);
    std::vector<int32_t> values = a.values;
    if (values.size() == 1) values.assign(s.out_c, values[0]);
    if (static_cast<int64_t>(values.size()) != s.out_c ||
        std::any_of(values.begin(), values.end(), [&](int32_t v) { return v < lo || v > hi; })) {
      throw SpecError(fmt("%s %s: '%s' must hold %lld values in [%lld, %lld]", spec.kernel.c_str(), spec.name.c_str(),
                          key, (long long)s.out_c, (long long)lo, (long long)hi));
    }
    return values;
  };
  l.multiplier = per_channel("multiplier", 0, INT32_MAX);
  l.shift = per_channel("shift", -31, 7);
  l.bias.assign(s.out_c, 0);
  if (const Array* hi = optional_array(arrays, "bias_hi")) {
    const Array& lo = array(arrays, "bias_lo");
    if (static_cast<int64_t>(hi->values.size()) != s.out_c || lo.values.size() != hi->values.size()) {
      throw SpecError(spec.kernel + " " + spec.name + ": 'bias_hi' and 'bias_lo' must hold out_c values");
    }
    for (int64_t c = 0; c < s.out_c; ++c) {
      l.bias[c] = static_cast<int64_t>(static_cast<uint64_t>(static_cast<int64_t>(hi->values[c])) << 32 |
                                       static_cast<uint32_t>(lo.values[c]));
      if (std::llabs(l.bias[c]) >= (int64_t{1} << 46)) throw SpecError(spec.kernel + " " + spec.name + ": |bias| >= 2^46");
    }
  }
  return l;
}

int64_t reduced_multiplier(int64_t multiplier) { return multiplier < 0x7FFF0000 ? (multiplier + (1 << 15)) >> 16 : 0x7FFF; }

// How the vector form requantises, or kScalar when it cannot (see the file comment).
enum class Requant16 { kHighMul, kSmul, kScalar };

Requant16 requant_form(const Shape16& s, const Layer16& l) {
  const int64_t per_channel = s.taps() * s.cin();
  for (int64_t c = 0; c < s.out_c; ++c) {
    int64_t sum = 0;
    for (int64_t i = 0; i < per_channel; ++i) sum += std::abs(l.weight[c * per_channel + i]);
    if (std::llabs(l.bias[c]) + 32768 * sum >= (int64_t{1} << 31)) return Requant16::kScalar;
  }
  auto all = [&](auto condition) { return std::all_of(l.shift.begin(), l.shift.end(), condition); };
  if (all([](int32_t shift) { return 15 - shift >= 17; })) return Requant16::kHighMul;
  if (all([](int32_t shift) { return 15 - shift >= 15 && 15 - shift <= 31; })) return Requant16::kSmul;
  return Requant16::kScalar;
}

// Weights widened to int16: [group][tap][ci][channel of the group] (general), [tap][channel] (depthwise).
std::vector<int32_t> pack_weights(const Shape16& s, const Layer16& l) {
  std::vector<int32_t> packed(l.weight.size());
  size_t at = 0;
  if (s.depthwise()) {
    for (int64_t tap = 0; tap < s.taps(); ++tap) {
      for (int64_t c = 0; c < s.out_c; ++c) packed[at++] = l.weight[c * s.taps() + tap];
    }
    return packed;
  }
  for (int64_t g = 0; g < s.groups; ++g) {
    for (int64_t tap = 0; tap < s.taps(); ++tap) {
      for (int64_t ci = 0; ci < s.cin(); ++ci) {
        for (int64_t co = 0; co < s.cout(); ++co) {
          packed[at++] = l.weight[((g * s.cout() + co) * s.taps() + tap) * s.cin() + ci];
        }
      }
    }
  }
  return packed;
}

// The loops over output pixels and, inside, the taps of (b, oy, ox) inside the input (iy, ix, tap).
void open_pixels(CWriter& w, const Shape16& s) {
  w.open(fmt("for (int32_t b = 0; b < %lld; ++b)", (long long)s.batches));
  w.open(fmt("for (int32_t oy = 0; oy < %lld; ++oy)", (long long)s.out_h));
  w.open(fmt("for (int32_t ox = 0; ox < %lld; ++ox)", (long long)s.out_w));
  w.line(fmt("const size_t pixel = ((size_t)b * %lld + oy) * %lld + ox;", (long long)s.out_h, (long long)s.out_w));
}

void open_taps(CWriter& w, const Shape16& s) {
  w.open(fmt("for (int32_t ky = 0; ky < %lld; ++ky)", (long long)s.kernel_h));
  w.line(fmt("const int32_t iy = oy * %lld - %lld + ky * %lld;", (long long)s.stride_h, (long long)s.pad_top,
             (long long)s.dilation_h));
  w.line(fmt("if (iy < 0 || iy >= %lld) continue;", (long long)s.in_h));
  w.open(fmt("for (int32_t kx = 0; kx < %lld; ++kx)", (long long)s.kernel_w));
  w.line(fmt("const int32_t ix = ox * %lld - %lld + kx * %lld;", (long long)s.stride_w, (long long)s.pad_left,
             (long long)s.dilation_w));
  w.line(fmt("if (ix < 0 || ix >= %lld) continue;", (long long)s.in_w));
  w.line(fmt("const int16_t* x = input + (((size_t)b * %lld + iy) * %lld + ix) * %lld;", (long long)s.in_h,
             (long long)s.in_w, (long long)s.in_c));
  w.line(fmt("const int32_t tap = ky * %lld + kx;", (long long)s.kernel_w));
}

// The int64 loops of kernels/ref (the portable form, and the vector form of a layer that needs them).
void emit_scalar(CWriter& w, const std::string& name, const Shape16& s) {
  open_pixels(w, s);
  w.open(fmt("for (int32_t oc = 0; oc < %lld; ++oc)", (long long)s.out_c));
  w.line(fmt("const int32_t g = oc / %lld;", (long long)s.cout()));
  w.line(fmt("int64_t acc = %s_bias[oc];", name.c_str()));
  open_taps(w, s);
  w.line(fmt("const int8_t* wt = %s_weight + ((size_t)oc * %lld + tap) * %lld;", name.c_str(), (long long)s.taps(),
             (long long)s.cin()));
  w.line(ew::kNoAutoVectorize);
  w.line(fmt("for (int32_t ci = 0; ci < %lld; ++ci) acc += (int64_t)x[g * %lld + ci] * wt[ci];", (long long)s.cin(),
             (long long)s.cin()));
  w.close().close();
  w.line(fmt("output[pixel * %lld + oc] = npu_requantize16(acc, %s_multiplier[oc], %s_shift[oc], %lld, %lld);",
             (long long)s.out_c, name.c_str(), name.c_str(), (long long)s.act_min, (long long)s.act_max));
  w.close().close().close().close();
}

// The requantisation of `acc` (int32 lanes of t32; the channel's constants at NAME_rq* + c) and the
// store of the int16 outputs at `out`.
void emit_requant_store(CWriter& w, const std::string& name, const Shape16& s, const VType& t32, Requant16 form,
                        const std::string& c, const std::string& out) {
  const VType t16 = t32.at(16), u16 = t16.as_unsigned();
  const std::string m = fmt("__riscv_vle32_v_%s(%s_rq + %s, vl)", t32.suffix().c_str(), name.c_str(), c.c_str());
  if (form == Requant16::kHighMul) {
    w.line(fmt("const %s high = __riscv_vmulh_vv_%s(acc, %s, vl);", t32.type().c_str(), t32.suffix().c_str(), m.c_str()));
    w.line(fmt("%s r = __riscv_vnclip_wv_%s(high, __riscv_vle16_v_%s(%s_rshift + %s, vl), __RISCV_VXRM_RNU, vl);",
               t16.type().c_str(), t16.suffix().c_str(), u16.suffix().c_str(), name.c_str(), c.c_str()));
  } else {
    w.line(fmt("%s r = __riscv_vnclip_wx_%s(__riscv_vsmul_vv_%s(acc, %s, __RISCV_VXRM_RNU, vl), 0, __RISCV_VXRM_RNU, vl);",
               t16.type().c_str(), t16.suffix().c_str(), t32.suffix().c_str(), m.c_str()));
  }
  if (s.act_min > INT16_MIN) w.line(fmt("r = __riscv_vmax_vx_%s(r, %lld, vl);", t16.suffix().c_str(), (long long)s.act_min));
  if (s.act_max < INT16_MAX) w.line(fmt("r = __riscv_vmin_vx_%s(r, %lld, vl);", t16.suffix().c_str(), (long long)s.act_max));
  w.line(fmt("__riscv_vse16_v_%s(%s, r, vl);", t16.suffix().c_str(), out.c_str()));
}

void emit_vector(CWriter& w, const std::string& name, const Shape16& s, const VType& t32, Requant16 form) {
  const VType t16 = t32.at(16);
  open_pixels(w, s);
  if (s.depthwise()) {
    w.open(fmt("for (size_t c = 0, vl; c < %lld; c += vl)", (long long)s.out_c));
    w.line(fmt("vl = __riscv_vsetvl_e32%s(%lld - c);", t32.lmul().c_str(), (long long)s.out_c));
    w.line(fmt("%s acc = __riscv_vle32_v_%s(%s_bias32 + c, vl);", t32.type().c_str(), t32.suffix().c_str(), name.c_str()));
    open_taps(w, s);
    w.line(fmt("acc = __riscv_vwmacc_vv_%s(acc, __riscv_vle16_v_%s(x + c, vl), __riscv_vle16_v_%s(%s_weight16 + "
               "(size_t)tap * %lld + c, vl), vl);", t32.suffix().c_str(), t16.suffix().c_str(), t16.suffix().c_str(),
               name.c_str(), (long long)s.out_c));
    w.close().close();
    emit_requant_store(w, name, s, t32, form, "c", fmt("output + pixel * %lld + c", (long long)s.out_c));
    w.close();
  } else {
    w.open(fmt("for (int32_t g = 0; g < %lld; ++g)", (long long)s.groups));
    w.open(fmt("for (size_t co = 0, vl; co < %lld; co += vl)", (long long)s.cout()));
    w.line(fmt("vl = __riscv_vsetvl_e32%s(%lld - co);", t32.lmul().c_str(), (long long)s.cout()));
    w.line(fmt("const size_t c = (size_t)g * %lld + co;", (long long)s.cout()));
    w.line(fmt("%s acc = __riscv_vle32_v_%s(%s_bias32 + c, vl);", t32.type().c_str(), t32.suffix().c_str(), name.c_str()));
    open_taps(w, s);
    w.line(fmt("const int16_t* in = x + (size_t)g * %lld;", (long long)s.cin()));
    w.line(fmt("const int16_t* wt = %s_weight16 + ((size_t)g * %lld + tap) * %lld + co;", name.c_str(),
               (long long)s.taps(), (long long)(s.cin() * s.cout())));
    // 4 input channels per iteration: one vsetvli and one loop step for 4 products (8.0 MACs per
    // instruction on a 64-channel pointwise layer, against 4.3 without)
    w.line("_Pragma(\"clang loop unroll_count(4)\")");
    w.open(fmt("for (int32_t ci = 0; ci < %lld; ++ci)", (long long)s.cin()));
    w.line(fmt("acc = __riscv_vwmacc_vx_%s(acc, in[ci], __riscv_vle16_v_%s(wt + (size_t)ci * %lld, vl), vl);",
               t32.suffix().c_str(), t16.suffix().c_str(), (long long)s.cout()));
    w.close().close().close();
    emit_requant_store(w, name, s, t32, form, "c", fmt("output + pixel * %lld + c", (long long)s.out_c));
    w.close().close();
  }
  w.close().close().close();
}

// The vector form's per-channel constants: NAME_bias32 (the bias, inside int32 by the form's check),
// NAME_weight16, NAME_rq (r << 16, or r << (31 - t)) and for kHighMul NAME_rshift (t - 16, uint16).
std::string vector_constants(const std::string& name, const Shape16& s, const Layer16& l, Requant16 form) {
  std::vector<int32_t> bias(l.bias.begin(), l.bias.end()), rq(s.out_c), rshift(s.out_c);
  for (int64_t c = 0; c < s.out_c; ++c) {
    const int64_t reduced = reduced_multiplier(l.multiplier[c]), total = 15 - l.shift[c];
    rq[c] = static_cast<int32_t>(form == Requant16::kHighMul ? reduced << 16 : reduced << (31 - total));
    rshift[c] = static_cast<int32_t>(total - 16);
  }
  std::string text = c_array("int32_t", name + "_bias32", bias) + c_array("int16_t", name + "_weight16", pack_weights(s, l)) +
                     c_array("int32_t", name + "_rq", rq);
  if (form == Requant16::kHighMul) text += c_array("uint16_t", name + "_rshift", rshift);
  return text;
}

// The int64 loops' constants: NAME_weight (OHWI int8), NAME_bias (int64), NAME_multiplier, NAME_shift.
std::string scalar_constants(const std::string& name, const Layer16& l) {
  std::string bias = "static const int64_t " + name + "_bias[" + std::to_string(l.bias.size()) + "] = {";
  for (size_t c = 0; c < l.bias.size(); ++c) bias += (c ? ", " : "") + std::to_string(l.bias[c]) + "LL";
  return c_array("int8_t", name + "_weight", l.weight) + bias + "};\n" + c_array("int32_t", name + "_multiplier", l.multiplier) +
         c_array("int32_t", name + "_shift", l.shift);
}

Emitted emit(const KernelSpec& spec, const Arrays& arrays, const Schedule& schedule, bool vector) {
  const Shape16 s = read_shape(spec);
  const Layer16 l = read_layer(spec, s, arrays);
  const Requant16 form = vector ? requant_form(s, l) : Requant16::kScalar;
  CWriter w;
  w.open(fmt("void %s(const int16_t* input, int16_t* output, int8_t* scratch)", spec.name.c_str()));
  w.line("(void)scratch;");
  std::string constants;
  if (form == Requant16::kScalar) {
    if (vector) w.line("/* sums that may leave int32, or shifts no one vector form takes: the int64 loops */");
    constants = scalar_constants(spec.name, l);
    emit_scalar(w, spec.name, s);
  } else {
    constants = vector_constants(spec.name, s, l, form);
    emit_vector(w, spec.name, s, VType::with_lmul(32, schedule.lmul), form);
  }
  w.close();
  Emitted out;
  out.source = c_prologue(spec, vector) + constants + "\n" + w.str();
  out.constant_bytes = form == Requant16::kScalar ? static_cast<int64_t>(l.weight.size() + 16 * s.out_c)
                                                  : static_cast<int64_t>(2 * l.weight.size() + 10 * s.out_c);
  out.schedule = schedule;
  return out;
}

const bool registered_conv = register_kernel(ew::lmul_only_entry("conv2d_s16x8", emit, [](const KernelSpec& spec) { read_shape(spec); }));
const bool registered_dense = register_kernel(ew::lmul_only_entry("dense_s16x8", emit, [](const KernelSpec& spec) { read_shape(spec); }));

}  // namespace
}  // namespace coral
