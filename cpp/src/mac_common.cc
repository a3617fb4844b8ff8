// Helpers shared by the MAC kernels: vector shapes, array checks, requantisation constants.
#include "mac_common.h"

#include "elementwise.h"

#include <algorithm>
#include <cstdint>
#include <stdexcept>

namespace coral::mac {

namespace {

// RVV LMUL suffix for a register-group size given in eighths of a register.
std::string lmul_suffix(int eighths) {
  switch (eighths) {
    case 2: return "mf4";
    case 4: return "mf2";
    case 8: return "m1";
    case 16: return "m2";
    case 32: return "m4";
    case 64: return "m8";
    default: throw SpecError(fmt("no RVV LMUL for %d/8 of a register", eighths));
  }
}

int64_t element_bytes(const std::string& ctype) {
  if (ctype == "int8_t") return 1;
  if (ctype == "int16_t" || ctype == "uint16_t") return 2;
  if (ctype == "int32_t" || ctype == "uint32_t") return 4;
  throw SpecError("no constant arrays of type " + ctype);
}

// One value per channel: the array itself, or its single value repeated.
std::vector<int32_t> per_channel(const Arrays& arrays, const std::string& key, int64_t channels) {
  const Array& found = array(arrays, key);
  if (found.values.size() == 1) return std::vector<int32_t>(channels, found.values[0]);
  return checked_values(arrays, key, "int32", {channels});
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string text;
  for (int64_t size : shape) text += (text.empty() ? "" : ", ") + std::to_string(size);
  return "[" + text + "]";
}

}  // namespace

int32_t int8_field(const KernelSpec& spec, const std::string& key) {
  int64_t value = spec.at(key);
  if (value < -128 || value > 127) {
    throw SpecError(fmt("%s %s %lld is outside [-128, 127]", spec.kernel.c_str(), key.c_str(), (long long)value));
  }
  return static_cast<int32_t>(value);
}

int64_t size_field(const KernelSpec& spec, const std::string& key) {
  int64_t value = spec.at(key);
  if (value < 1) throw SpecError(fmt("%s %s must be >= 1, got %lld", spec.kernel.c_str(), key.c_str(), (long long)value));
  return value;
}

void check_int32_elements(const KernelSpec& spec, const std::string& tensor, const std::vector<int64_t>& dims) {
  int64_t elements = 1;
  for (int64_t size : dims) {
    elements *= size;
    if (elements > INT32_MAX) throw SpecError(spec.kernel + " " + tensor + " has more than INT32_MAX elements");
  }
}

VectorShape vector_shape(const Target& target, int lmul) {
  return {lmul, lmul_suffix(8 * lmul), lmul_suffix(4 * lmul), lmul_suffix(2 * lmul), target.int32_lanes(lmul)};
}

std::string check_common_knobs(const Schedule& s) {
  auto choice = [](const char* knob, const std::string& value, const char* first, const char* second) {
    return value == first || value == second ? "" : fmt("%s '%s' is not one of %s, %s", knob, value.c_str(), first, second);
  };
  if (s.lmul != 1 && s.lmul != 2 && s.lmul != 4 && s.lmul != 8) return fmt("lmul %d is not 1, 2, 4 or 8", s.lmul);
  if (auto why = choice("weight_pack", s.weight_pack, "i16", "i8"); !why.empty()) return why;
  return choice("loop_order", s.loop_order, "oc_px", "px_oc");
}

std::vector<int32_t> checked_values(const Arrays& arrays, const std::string& key, const std::string& dtype,
                                    const std::vector<int64_t>& shape) {
  const Array& found = array(arrays, key);
  if (found.shape != shape) {
    throw SpecError(fmt("array '%s' has shape %s, expected %s", key.c_str(), shape_text(found.shape).c_str(),
                        shape_text(shape).c_str()));
  }
  if (dtype == "int8") {
    for (int32_t value : found.values) {
      if (value < -128 || value > 127) throw SpecError(fmt("array '%s' holds %d, not an int8", key.c_str(), value));
    }
  }
  return found.values;
}

std::vector<int32_t> bias_or_zero(const Arrays& arrays, int64_t channels) {
  if (optional_array(arrays, "bias") == nullptr) return std::vector<int32_t>(channels, 0);
  return checked_values(arrays, "bias", "int32", {channels});
}

int32_t wrap_int32(int64_t value) { return static_cast<int32_t>(static_cast<uint32_t>(value)); }

std::vector<int32_t> Requant::right_shift() const {
  std::vector<int32_t> right;
  for (int32_t s : shift) right.push_back(rounding == 0 ? -1 - s : -s);  // rounding shift 31 - s: the high word took 32 / 31
  return right;
}

std::string Requant::rounding_of(const std::string& channel) const {
  if (rounding != ew::kBlocksOf8Rounding) return std::to_string(rounding);
  return fmt("npu_channel_rounding(%d, %s, %d)", rounding, channel.c_str(), whole_blocks_end);
}

namespace {

// The C condition "channel `channel` rounds ties up" under the per-channel rounding; logic_error when
// the caller has no one channel for its lanes (a bug: conv2d.cc keeps that code off the GEMM).
std::string ties_up_channel(const Requant& requant, const std::string& channel) {
  if (channel.empty()) throw std::logic_error("the per-channel rounding needs one output channel per vector");
  return fmt("(%s) < %d", channel.c_str(), requant.whole_blocks_end);
}

}  // namespace

Requant read_requant(const KernelSpec& spec, const Arrays& arrays, int64_t channels) {
  Requant r;
  r.multiplier = per_channel(arrays, "multiplier", channels);
  r.shift = per_channel(arrays, "shift", channels);
  for (int64_t c = 0; c < channels; ++c) {
    if (r.multiplier[c] < 0) throw SpecError(fmt("multiplier[%lld] is negative", (long long)c));
    if (r.shift[c] < -31 || r.shift[c] > 30) throw SpecError(fmt("shift[%lld] = %d is outside [-31, 30]", (long long)c, r.shift[c]));
  }
  r.output_zero_point = int8_field(spec, "output_zero_point");
  r.act_min = int8_field(spec, "act_min");
  r.act_max = int8_field(spec, "act_max");
  if (r.act_min > r.act_max) throw SpecError(fmt("%s act_min %d > act_max %d", spec.kernel.c_str(), r.act_min, r.act_max));
  r.uniform = std::all_of(r.multiplier.begin(), r.multiplier.end(), [&](int32_t m) { return m == r.multiplier[0]; }) &&
              std::all_of(r.shift.begin(), r.shift.end(), [&](int32_t s) { return s == r.shift[0]; });
  r.big_shift = std::all_of(r.shift.begin(), r.shift.end(), [](int32_t s) { return s <= -2; });
  r.rounding = static_cast<int32_t>(ew::rounding(spec));
  r.whole_blocks_end = static_cast<int32_t>(ew::whole_blocks_end(channels));
  return r;
}

std::string Constants::add(const std::string& ctype, const std::string& suffix, const std::vector<int32_t>& values) {
  std::string name = prefix_ + "_" + suffix;
  source_ += c_array(ctype, name, values);
  bytes_ += element_bytes(ctype) * static_cast<int64_t>(std::max<size_t>(values.size(), 1));
  return name;
}

RequantNames add_requant_constants(Constants& constants, const Requant& requant, bool vector) {
  RequantNames names;
  if (requant.uniform) return names;
  names.mul = constants.add("int32_t", "multiplier", requant.multiplier);
  if (vector && requant.big_shift) {
    names.right = constants.add("uint16_t", "right_shift", requant.right_shift());
  } else {
    names.shift = constants.add("int32_t", "shift", requant.shift);
  }
  return names;
}

std::string high_product(const Requant& requant, const VectorShape& v, const std::string& acc, const std::string& mul,
                         bool vector_operands, const std::string& channel) {
  const char* form = vector_operands ? "v" : "x";
  if (requant.rounding == 0) return fmt("__riscv_vmulh_v%s_i32%s(%s, %s, vl)", form, v.s32.c_str(), acc.c_str(), mul.c_str());
  std::string high = fmt("__riscv_vsmul_v%s_i32%s(%s, %s, __RISCV_VXRM_RNU, vl)", form, v.s32.c_str(), acc.c_str(), mul.c_str());
  if (requant.rounding == 2) return high;  // ties up: the RNU narrowing shift alone
  if (requant.rounding == ew::kBlocksOf8Rounding) {
    return fmt("npu_rvv_minus_sign_unless_%s(%s, %s, vl)", v.s32.c_str(), high.c_str(),
               ties_up_channel(requant, channel).c_str());
  }
  return fmt("npu_rvv_minus_sign_%s(%s, vl)", v.s32.c_str(), high.c_str());
}

std::string rounding_narrow(const VectorShape& v, const std::string& high, const std::string& right, bool vector_operands) {
  return fmt("__riscv_vnclip_w%s_i16%s(%s, %s, __RISCV_VXRM_RNU, vl)", vector_operands ? "v" : "x", v.s16.c_str(),
             high.c_str(), right.c_str());
}

std::string rescale_to_int16(const Requant& requant, const VectorShape& v, const std::string& acc, const std::string& mul,
                             const std::string& shift, bool vector_operands, const std::string& channel) {
  if (requant.big_shift) {
    return rounding_narrow(v, high_product(requant, v, acc, mul, vector_operands, channel), shift, vector_operands);
  }
  std::string ties_up = requant.rounding == ew::kBlocksOf8Rounding ? ties_up_channel(requant, channel)
                                                                     : std::to_string(requant.rounding == 2 ? 1 : 0);
  std::string rescaled =
      requant.rounding == 0
          ? fmt("npu_rvv_mbqm%s_%s(%s, %s, %s, vl)", vector_operands ? "" : "_x", v.s32.c_str(), acc.c_str(), mul.c_str(),
                shift.c_str())
          : fmt("npu_rvv_mbqm_double%s_%s(%s, %s, %s, %s, vl)", vector_operands ? "" : "_x", v.s32.c_str(), acc.c_str(),
                mul.c_str(), shift.c_str(), ties_up.c_str());
  return rounding_narrow(v, rescaled, "0", false);
}

std::pair<std::string, std::string> scalar_operands(const Requant& requant, const RequantNames& names,
                                                    const std::string& channel) {
  if (requant.uniform) {
    int32_t shift = requant.big_shift ? requant.right_shift()[0] : requant.shift[0];
    return {std::to_string(requant.multiplier[0]), std::to_string(shift)};
  }
  const std::string& shifts = requant.big_shift ? names.right : names.shift;
  return {names.mul + "[" + channel + "]", shifts + "[" + channel + "]"};
}

std::string add_output_zero_point(const Requant& requant, const VectorShape& v, const std::string& int16) {
  return fmt("__riscv_vsadd_vx_i16%s(%s, %d, vl)", v.s16.c_str(), int16.c_str(), requant.output_zero_point);
}

std::string saturate_and_clamp(const Requant& requant, const VectorShape& v, const std::string& int16) {
  std::string out = fmt("__riscv_vnclip_wx_i8%s(%s, 0, __RISCV_VXRM_RNU, vl)", v.s8.c_str(), int16.c_str());
  if (requant.act_min > -128) out = fmt("__riscv_vmax_vx_i8%s(%s, %d, vl)", v.s8.c_str(), out.c_str(), requant.act_min);
  if (requant.act_max < 127) out = fmt("__riscv_vmin_vx_i8%s(%s, %d, vl)", v.s8.c_str(), out.c_str(), requant.act_max);
  return out;
}

std::string narrow_to_int8(const Requant& requant, const VectorShape& v, const std::string& int16) {
  return saturate_and_clamp(requant, v, add_output_zero_point(requant, v, int16));
}

std::string translation_unit(const KernelSpec& spec, bool vector, const Constants& constants, const std::string& code) {
  std::string body = c_prologue(spec, vector) + constants.source() + "\n" + code;
  if (vector) return body;
  // The target's scalar ISA (target.toml: march_scalar); "arch=-zve32x" would also drop M.
  if (spec.target.scalar_march.empty()) return body;
  const std::string guard = fmt("#if defined(__riscv_vector) && __riscv_xlen == %d\n", spec.target.xlen);
  return guard + "#pragma clang attribute push(__attribute__((target(\"arch=" + spec.target.scalar_march + "\"))), " +
         "apply_to = function)\n#endif\n" + body + guard + "#pragma clang attribute pop\n#endif\n";
}

std::string scalar_requantize(const Requant& requant, const RequantNames& names, const std::string& acc,
                              const std::string& channel) {
  std::string multiplier = names.mul.empty() ? std::to_string(requant.multiplier[0]) : names.mul + "[" + channel + "]";
  std::string shift = names.shift.empty() ? std::to_string(requant.shift[0]) : names.shift + "[" + channel + "]";
  if (requant.rounding != 0) {
    return fmt("npu_requantize_rounding(%s, %s, %s, %d, %d, %d, %s)", acc.c_str(), multiplier.c_str(), shift.c_str(),
               requant.output_zero_point, requant.act_min, requant.act_max, requant.rounding_of(channel).c_str());
  }
  return fmt("npu_requantize(%s, %s, %s, %d, %d, %d)", acc.c_str(), multiplier.c_str(), shift.c_str(),
             requant.output_zero_point, requant.act_min, requant.act_max);
}

}  // namespace coral::mac
