// Helpers shared by the element-wise and pooling emitters (elementwise.h).
#include "elementwise.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <tuple>
#include <utility>

namespace coral::ew {

std::string VType::lmul() const {
  return lmul8 >= 8 ? "m" + std::to_string(lmul8 / 8) : "mf" + std::to_string(8 / lmul8);
}

std::string VType::suffix() const { return (is_signed ? "i" : "u") + std::to_string(sew) + lmul(); }

std::string VType::type() const { return std::string(is_signed ? "vint" : "vuint") + std::to_string(sew) + lmul() + "_t"; }

std::string VType::mask() const { return "b" + std::to_string(sew * 8 / lmul8); }

std::string VType::mask_type() const { return "vbool" + std::to_string(sew * 8 / lmul8) + "_t"; }

std::string VType::scalar() const { return std::string(is_signed ? "int" : "uint") + std::to_string(sew) + "_t"; }

int64_t field(const KernelSpec& spec, const std::string& key, int64_t lo, int64_t hi) {
  int64_t value = spec.at(key);
  if (value < lo || value > hi) {
    throw SpecError(fmt("%s %s: %s = %lld outside [%lld, %lld]", spec.kernel.c_str(), spec.name.c_str(), key.c_str(),
                        (long long)value, (long long)lo, (long long)hi));
  }
  return value;
}

int64_t rounding(const KernelSpec& spec) {
  if (!spec.params.count("rounding")) return 0;
  return field(spec, "rounding", 0, spec.kernel == "conv2d" ? kBlocksOf8Rounding : 2);
}

std::string mbqm_x(const VType& t, const std::string& value, int64_t multiplier, int64_t shift, int64_t rounding) {
  if (rounding == 0) {
    return fmt("npu_rvv_mbqm_x_%s(%s, %lld, %lld, vl)", t.lmul().c_str(), value.c_str(), (long long)multiplier,
               (long long)shift);
  }
  return fmt("npu_rvv_mbqm_double_x_%s(%s, %lld, %lld, %d, vl)", t.lmul().c_str(), value.c_str(),
             (long long)multiplier, (long long)shift, rounding == 2 ? 1 : 0);
}

std::pair<int64_t, int64_t> act_range(const KernelSpec& spec) {
  int64_t act_min = field(spec, "act_min", INT8_MIN, INT8_MAX);
  int64_t act_max = field(spec, "act_max", act_min, INT8_MAX);
  return {act_min, act_max};
}

std::string check_knobs(const Schedule& s, std::initializer_list<const char*> used) {
  if (s.lmul != 1 && s.lmul != 2 && s.lmul != 4 && s.lmul != 8) return fmt("lmul %d is not 1, 2, 4 or 8", s.lmul);
  const Schedule d;
  const std::pair<const char*, bool> knobs[] = {
      {"lmul", s.lmul == d.lmul},       {"oc_tile", s.oc_tile == d.oc_tile},       {"px_tile", s.px_tile == d.px_tile},
      {"unroll", s.unroll == d.unroll}, {"loop_order", s.loop_order == d.loop_order},
      {"weight_pack", s.weight_pack == d.weight_pack}};
  for (const auto& [knob, is_default] : knobs) {
    bool is_used = std::any_of(used.begin(), used.end(), [&](const char* name) { return std::string(name) == knob; });
    if (!is_default && !is_used) return std::string("this kernel has no '") + knob + "' knob";
  }
  return "";
}

std::string check_lmul_and_loop_order(const Schedule& s) {
  if (s.loop_order != "oc_px" && s.loop_order != "px_oc") return "loop_order '" + s.loop_order + "' is not oc_px or px_oc";
  return check_knobs(s, {"lmul", "loop_order"});
}

KernelEntry lmul_only_entry(const std::string& kernel, decltype(KernelEntry::emit) emit,
                            std::function<void(const KernelSpec&)> check_spec) {
  auto default_schedule = [](const KernelSpec&) {
    Schedule s;
    s.lmul = 8;
    return s;
  };
  auto validate = [check_spec](const KernelSpec& spec, const Schedule& s) {
    check_spec(spec);
    return check_knobs(s, {"lmul"});
  };
  return {kernel, std::move(emit), default_schedule, validate};
}

std::string emit_table_loop(const KernelSpec& spec, int64_t size, const std::string& table, int lmul, bool vector) {
  CWriter w;
  w.open(fmt("void %s(const int8_t* input, int8_t* output, int8_t* scratch)", spec.name.c_str()));
  w.line("(void)scratch;");
  if (vector) {
    const VType t = VType::with_lmul(8, lmul);
    w.open(fmt("for (size_t n = %lld, vl; n > 0; n -= vl, input += vl, output += vl)", (long long)size));
    w.line(fmt("vl = __riscv_vsetvl_e8%s(n);", t.lmul().c_str()));
    w.line(fmt("const %s index = __riscv_vle8_v_%s((const uint8_t*)input, vl);", t.as_unsigned().type().c_str(),
               t.as_unsigned().suffix().c_str()));
    w.line(fmt("__riscv_vse8_v_%s(output, __riscv_vluxei8_v_%s(%s, index, vl), vl);", t.suffix().c_str(),
               t.suffix().c_str(), table.c_str()));
  } else {
    w.open(fmt("for (int32_t i = 0; i < %lld; ++i)", (long long)size));
    w.line(fmt("output[i] = %s[(uint8_t)input[i]];", table.c_str()));
  }
  w.close();
  w.close();
  return w.str();
}

FloatQuantization read_float_quantization(const KernelSpec& spec) {
  FloatQuantization q;
  q.size = field(spec, "size", 0, INT32_MAX);
  q.zero_point = field(spec, "zero_point", INT8_MIN, INT8_MAX);
  q.scale = std::bit_cast<float>(static_cast<uint32_t>(field(spec, "scale_f32bits", 0, UINT32_MAX)));
  if (!(q.scale > 0.0f) || q.scale == std::bit_cast<float>(0x7f800000u)) {
    throw SpecError(fmt("%s %s: scale %g is not a positive finite float", spec.kernel.c_str(), spec.name.c_str(),
                        (double)q.scale));
  }
  return q;
}

Dequantization read_dequantization(const KernelSpec& spec) {
  Dequantization d{read_float_quantization(spec), 0};
  const int64_t block = spec.params.count("block") ? field(spec, "block", 0, INT32_MAX) : 0;
  d.blocked = block > 0 ? d.q.size - d.q.size % block : 0;
  return d;
}

Quantization read_quantization(const KernelSpec& spec) {
  Quantization q{read_float_quantization(spec), -1, 0.0f};
  const int64_t block = spec.params.count("block") ? field(spec, "block", 0, INT32_MAX) : 0;
  if (block > 0) {
    q.blocked = q.q.size - q.q.size % block;
    q.reciprocal = std::bit_cast<float>(static_cast<uint32_t>(field(spec, "reciprocal_f32bits", 0, UINT32_MAX)));
    if (!(q.reciprocal > 0.0f) || q.reciprocal == std::bit_cast<float>(0x7f800000u)) {
      throw SpecError(fmt("%s %s: reciprocal %g is not a positive finite float", spec.kernel.c_str(),
                          spec.name.c_str(), (double)q.reciprocal));
    }
  }
  return q;
}

Rescale read_rescale(const KernelSpec& spec, std::pair<int64_t, int64_t> input_zero_point,
                     std::pair<int64_t, int64_t> output_zero_point, int64_t low, int64_t high) {
  Rescale r;
  r.size = field(spec, "size", 0, INT32_MAX);
  r.input_zero_point = field(spec, "input_zero_point", input_zero_point.first, input_zero_point.second);
  r.output_zero_point = field(spec, "output_zero_point", output_zero_point.first, output_zero_point.second);
  r.multiplier = field(spec, "multiplier", 0, INT32_MAX);
  r.shift = field(spec, "shift", -31, 30);
  r.act_min = field(spec, "act_min", low, high);
  r.act_max = field(spec, "act_max", r.act_min, high);
  return r;
}

std::vector<int32_t> requantize_table(int64_t input_zero_point, int64_t output_zero_point, int64_t multiplier,
                                      int64_t shift, int64_t act_min, int64_t act_max) {
  const int64_t total_shift = 31 - shift;  // npu_multiply_by_quantized_multiplier, in its 64-bit steps
  std::vector<int32_t> values(256);
  for (int byte = 0; byte < 256; ++byte) {
    int64_t x = static_cast<int8_t>(static_cast<uint8_t>(byte)) - input_zero_point;
    int64_t rounded = (x * multiplier + (int64_t{1} << (total_shift - 1))) >> total_shift;
    rounded = std::clamp<int64_t>(rounded, INT32_MIN, INT32_MAX);
    values[byte] = static_cast<int32_t>(std::clamp<int64_t>(rounded + output_zero_point, act_min, act_max));
  }
  return values;
}

std::string clamp_s8(const VType& t, const std::string& value, int64_t act_min, int64_t act_max) {
  std::string out = value;
  if (act_min > INT8_MIN) out = fmt("__riscv_vmax_vx_%s(%s, %lld, vl)", t.suffix().c_str(), out.c_str(), (long long)act_min);
  if (act_max < INT8_MAX) out = fmt("__riscv_vmin_vx_%s(%s, %lld, vl)", t.suffix().c_str(), out.c_str(), (long long)act_max);
  return out;
}

MulSpec read_mul_spec(const KernelSpec& spec) {
  MulSpec m;
  m.batches = field(spec, "batches", 0, INT32_MAX);
  m.pixels = field(spec, "pixels", 0, INT32_MAX / std::max<int64_t>(m.batches, 1));
  m.channels = field(spec, "channels", 0, INT32_MAX / std::max<int64_t>(m.batches * m.pixels, 1));
  m.broadcast = field(spec, "broadcast", 0, 1) == 1;
  m.input1_zero_point = field(spec, "input1_zero_point", INT8_MIN, INT8_MAX);
  m.input2_zero_point = field(spec, "input2_zero_point", INT8_MIN, INT8_MAX);
  m.output_zero_point = field(spec, "output_zero_point", INT8_MIN, INT8_MAX);
  m.multiplier = field(spec, "output_multiplier", 0, INT32_MAX);
  m.shift = field(spec, "output_shift", -31, 30);
  std::tie(m.act_min, m.act_max) = act_range(spec);
  // Rounding shift 31 - shift + pre_shift >= 33. For shift > 13 the product cannot be shifted that
  // far; those multipliers (2^12 and more unless tiny: they saturate) keep the general path.
  const int64_t needed = std::max<int64_t>(0, m.shift + 2);
  m.rounding = rounding(spec);
  m.pre_shift = needed <= kMaxPreShift && m.rounding == 0 ? needed : 0;
  return m;
}

MeanSpec read_mean_spec(const KernelSpec& spec) {
  MeanSpec m;
  m.batches = field(spec, "batches", 0, INT32_MAX);
  int64_t in_h = field(spec, "in_h", 1, 1 << 23);
  m.pixels = in_h * field(spec, "in_w", 1, (1 << 23) / in_h);  // |sum| <= 255 * 2^23 fits int32
  m.channels = field(spec, "channels", 1, INT32_MAX);
  if (m.batches * m.pixels * m.channels > INT32_MAX) throw SpecError(spec.kernel + " " + spec.name + ": input larger than 2^31 elements");
  m.input_zero_point = field(spec, "input_zero_point", INT8_MIN, INT8_MAX);
  m.output_zero_point = field(spec, "output_zero_point", INT8_MIN, INT8_MAX);
  m.multiplier = field(spec, "multiplier", 0, INT32_MAX);
  m.shift = field(spec, "shift", -31, 30);
  std::tie(m.act_min, m.act_max) = act_range(spec);
  m.bias = spec.params.count("bias") ? field(spec, "bias", -(1 << 30), 1 << 30) : 0;
  m.rounding = rounding(spec);
  m.block_rounding = spec.params.count("block_rounding") ? field(spec, "block_rounding", 0, 2) : 0;
  return m;
}

// The windows along one axis are each non-empty (as the kernels/ref bindings demand).
static void check_windows(const KernelSpec& spec, const char* axis, int64_t out, int64_t in, int64_t kernel, int64_t stride,
                   int64_t pad) {
  if (pad >= kernel || (out - 1) * stride - pad >= in) {
    throw SpecError(fmt("%s %s: a window along %s lies entirely in the padding", spec.kernel.c_str(), spec.name.c_str(), axis));
  }
}

PoolSpec read_pool_spec(const KernelSpec& spec) {
  PoolSpec p;
  p.is_max = spec.kernel == "max_pool2d";
  p.batches = field(spec, "batches", 0, INT32_MAX);
  p.in_h = field(spec, "in_h", 1, INT32_MAX);
  p.in_w = field(spec, "in_w", 1, INT32_MAX);
  p.channels = field(spec, "channels", 1, INT32_MAX);
  p.out_h = field(spec, "out_h", 1, INT32_MAX);
  p.out_w = field(spec, "out_w", 1, INT32_MAX);
  p.kernel_h = field(spec, "kernel_h", 1, 1 << 23);
  p.kernel_w = field(spec, "kernel_w", 1, (1 << 23) / p.kernel_h);
  p.stride_h = field(spec, "stride_h", 1, INT32_MAX);
  p.stride_w = field(spec, "stride_w", 1, INT32_MAX);
  p.pad_top = field(spec, "pad_top", 0, INT32_MAX);
  p.pad_left = field(spec, "pad_left", 0, INT32_MAX);
  std::tie(p.act_min, p.act_max) = act_range(spec);
  check_windows(spec, "H", p.out_h, p.in_h, p.kernel_h, p.stride_h, p.pad_top);
  check_windows(spec, "W", p.out_w, p.in_w, p.kernel_w, p.stride_w, p.pad_left);
  if (p.batches * p.in_h * p.in_w * p.channels > INT32_MAX || p.batches * p.out_h * p.out_w * p.channels > INT32_MAX) {
    throw SpecError(spec.kernel + " " + spec.name + ": tensor larger than 2^31 elements");
  }
  p.pad_right = std::max<int64_t>(0, (p.out_w - 1) * p.stride_w - p.pad_left + p.kernel_w - p.in_w);
  // |sum| + count / 2 <= 128 * count + count / 2 fits int16 up to count 255.
  p.acc_bits = p.is_max ? 8 : (p.kernel_h * p.kernel_w <= 255 ? 16 : 32);
  p.vlen = spec.target.vlen;
  return p;
}

std::vector<int32_t> lut_by_byte(const Arrays& arrays) {
  const Array& table = array(arrays, "table");
  if (table.dtype != "int8" || table.values.size() != 256) throw SpecError("lut: array 'table' must be int8[256]");
  std::vector<int32_t> by_byte(256);
  for (int byte = 0; byte < 256; ++byte) by_byte[byte] = table.values[(byte + 128) % 256];  // table[q + 128]
  return by_byte;
}

std::vector<int32_t> requantize_by_byte(const KernelSpec& spec) {
  auto [act_min, act_max] = act_range(spec);
  return requantize_table(field(spec, "input_zero_point", INT8_MIN, INT8_MAX), field(spec, "output_zero_point", INT8_MIN, INT8_MAX),
                          field(spec, "multiplier", 0, INT32_MAX), field(spec, "shift", -31, 30), act_min, act_max);
}

constexpr int64_t kMaxConcatInputs = 64;

ConcatSpec read_concat_spec(const KernelSpec& spec) {
  ConcatSpec c;
  c.outer = field(spec, "outer", 0, INT32_MAX);
  int64_t count = field(spec, "num_inputs", 1, kMaxConcatInputs);
  c.output_zero_point = field(spec, "output_zero_point", INT8_MIN, INT8_MAX);
  c.total = 0;
  for (int64_t i = 0; i < count; ++i) {
    auto key = [&](const char* name) { return fmt("input%lld_%s", (long long)i, name); };
    ConcatInput in;
    in.size = field(spec, key("size"), 0, INT32_MAX);
    in.zero_point = field(spec, key("zero_point"), INT8_MIN, INT8_MAX);
    in.multiplier = field(spec, key("multiplier"), 0, INT32_MAX);
    in.shift = field(spec, key("shift"), -31, 30);
    in.offset = c.total;
    in.identity = in.multiplier == (int64_t{1} << 30) && in.shift == 1 && in.zero_point == c.output_zero_point;
    c.total += in.size;
    c.inputs.push_back(in);
  }
  if (c.total > INT32_MAX || c.outer * c.total > INT32_MAX) {
    throw SpecError(fmt("concat %s: the output has more than 2^31 - 1 elements", spec.name.c_str()));
  }
  return c;
}

Block block_of(const ConcatSpec& c, const ConcatInput& in) {
  if (c.outer == 1 || in.size == c.total) return {1, c.outer * in.size, 0, 0};
  return {c.outer, in.size, in.size, c.total};
}

std::vector<int32_t> concat_table(const ConcatSpec& c, const ConcatInput& in) {
  return requantize_table(in.zero_point, c.output_zero_point, in.multiplier, in.shift, INT8_MIN, INT8_MAX);
}

PreluSpec read_prelu_spec(const KernelSpec& spec) {
  PreluSpec p;
  p.channels = field(spec, "channels", 0, INT32_MAX);
  p.outer = field(spec, "outer", 0, INT32_MAX / std::max<int64_t>(p.channels, 1));
  p.input_zero_point = field(spec, "input_zero_point", INT8_MIN, INT8_MAX);
  p.alpha_zero_point = field(spec, "alpha_zero_point", INT8_MIN, INT8_MAX);
  p.output_zero_point = field(spec, "output_zero_point", INT8_MIN, INT8_MAX);
  p.positive_multiplier = field(spec, "positive_multiplier", 0, INT32_MAX);
  p.positive_shift = field(spec, "positive_shift", -31, 30);
  p.negative_multiplier = field(spec, "negative_multiplier", 0, INT32_MAX);
  p.negative_shift = field(spec, "negative_shift", -31, 30);
  std::tie(p.act_min, p.act_max) = act_range(spec);
  p.rounding = rounding(spec);
  return p;
}

std::vector<int64_t> prelu_slopes(const Arrays& arrays, const PreluSpec& p) {
  const Array& alpha = array(arrays, "alpha");
  if (alpha.dtype != "int8" || alpha.shape != std::vector<int64_t>{p.channels}) {
    throw SpecError(fmt("prelu: array 'alpha' must be int8[%lld] (one slope per channel)", (long long)p.channels));
  }
  std::vector<int64_t> slopes;
  for (int32_t a : alpha.values) slopes.push_back(int64_t{a} - p.alpha_zero_point);
  return slopes;
}

std::vector<int64_t> prelu_param_values(const PreluSpec& p) {
  return {p.outer, p.channels, p.input_zero_point, p.alpha_zero_point, p.output_zero_point, p.positive_multiplier,
          p.positive_shift, p.negative_multiplier, p.negative_shift, p.act_min, p.act_max, p.rounding};
}

}  // namespace coral::ew
