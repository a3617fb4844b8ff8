// "add": the int8 residual add / subtract of kernels/ref/add_s8.c (npu_add_s8), NHWC, with the
// per-channel broadcast of "mul" ([N,H,W,C] and [N,1,1,C]).
//
// Each input is rescaled by MBQM((in - zp) << left_shift, m, shift) with shift <= 0, i.e. rounded
// by s = 31 - shift >= 31 bits. in - zp has 9 bits, so the left shift trades against the rounding
// shift: ((in - zp) << a) * m rounded by s - left_shift + a bits is the same number for any a that
// keeps the shifted value in int32. Choosing a so that the rounding shift is >= 33 puts every lane
// on npu_rvv_mbqm_x's short path (vmulh, rounding shift: no 64-bit carry, no saturation). The
// output rescale gets the same treatment: |v1 + v2| < 2^29 leaves room for the 2 bits it may need.
// TFLite models' double rounding (rounding != 0: SRDHM, then a rounding shift) is not the same number
// under such a trade, so it shifts by left_shift exactly and takes npu_rvv_mbqm_double_x (vsmul).
// Subtract: in2's offset is negated (zp2 - in2: vrsub for vsub), as TFLite's SUB negates its multiplier.
// Broadcast: per batch, per vector of channels, in2's rescaled vector is computed once and every
// pixel's in1 vector is combined with it (as mul.cc); otherwise one flat loop over all elements.
// Schedule: lmul, of the int32 lanes (8: 32 elements per instruction at VLEN 128).
#include <algorithm>
#include <tuple>

#include "elementwise.h"

namespace coral {
namespace {

using ew::VType;

// x -> MBQM(x << pre_shift, multiplier, shift) with the rounding shift 31 - shift >= 33.
struct Rescale {
  int64_t pre_shift, multiplier, shift;
};

// MBQM(x << left_shift, multiplier, shift) for shift <= 0 and x = in - zp (9 bits, pre_shift <= 22)
// or x = v1 + v2 (|x| < 2^29, left_shift = 0, pre_shift <= 2): the shifted x stays in int32.
Rescale short_path(int64_t multiplier, int64_t shift, int64_t left_shift) {
  int64_t rounding = 31 - shift - left_shift;  // >= 11: shift <= 0, left_shift <= 20
  int64_t pre_shift = std::max<int64_t>(0, 33 - rounding);
  return {pre_shift, multiplier, 31 - (rounding + pre_shift)};
}

struct Input {
  int64_t zero_point;
  Rescale rescale;
};

struct AddSpec {
  int64_t batches, pixels, channels;
  bool broadcast, subtract;
  Input in1, in2;
  int64_t output_zero_point;
  Rescale output;
  int64_t act_min, act_max;
  int64_t rounding;  // npu_quant.h NPU_ROUND_*, of all three rescales
};

Input read_input(const KernelSpec& spec, const std::string& prefix, int64_t left_shift, int64_t rounding) {
  int64_t zero_point = ew::field(spec, prefix + "zero_point", INT8_MIN, INT8_MAX);
  int64_t multiplier = ew::field(spec, prefix + "multiplier", 0, INT32_MAX);
  int64_t shift = ew::field(spec, prefix + "shift", -31, 0);
  if (rounding != 0) return {zero_point, {left_shift, multiplier, shift}};
  return {zero_point, short_path(multiplier, shift, left_shift)};
}

AddSpec read_spec(const KernelSpec& spec) {
  AddSpec a;
  a.batches = ew::field(spec, "batches", 0, INT32_MAX);
  a.pixels = ew::field(spec, "pixels", 0, INT32_MAX / std::max<int64_t>(a.batches, 1));
  a.channels = ew::field(spec, "channels", 0, INT32_MAX / std::max<int64_t>(a.batches * a.pixels, 1));
  a.broadcast = ew::field(spec, "broadcast", 0, 1) == 1;
  a.subtract = ew::field(spec, "subtract", 0, 1) == 1;
  int64_t left_shift = ew::field(spec, "left_shift", 0, 20);
  a.rounding = ew::rounding(spec);
  a.in1 = read_input(spec, "input1_", left_shift, a.rounding);
  a.in2 = read_input(spec, "input2_", left_shift, a.rounding);
  Input out = read_input(spec, "output_", 0, a.rounding);
  a.output_zero_point = out.zero_point;
  a.output = out.rescale;
  std::tie(a.act_min, a.act_max) = ew::act_range(spec);
  return a;
}

// The rescaled input (int32 vector), from the int8 elements at `pointer`; `negate`: of zp - in.
std::string vector_input(const VType& t, const Input& in, int64_t rounding, const std::string& pointer,
                         bool negate = false) {
  const std::string s = t.suffix();
  std::string x = fmt("npu_rvv_load_s8_%s(%s, vl)", t.lmul().c_str(), pointer.c_str());
  if (negate) {
    x = fmt("__riscv_vrsub_vx_%s(%s, %lld, vl)", s.c_str(), x.c_str(), (long long)in.zero_point);
  } else if (in.zero_point != 0) {
    x = fmt("__riscv_vsub_vx_%s(%s, %lld, vl)", s.c_str(), x.c_str(), (long long)in.zero_point);
  }
  if (in.rescale.pre_shift != 0) {
    x = fmt("__riscv_vsll_vx_%s(%s, %lld, vl)", s.c_str(), x.c_str(), (long long)in.rescale.pre_shift);
  }
  return ew::mbqm_x(t, x, in.rescale.multiplier, in.rescale.shift, rounding);
}

// v1 + v2 rescaled, + the output zero point, saturated to int8 and stored at `out`.
void vector_output(CWriter& w, const VType& t, const AddSpec& a, const std::string& out) {
  const std::string s = t.suffix(), l = t.lmul();
  std::string raw = fmt("__riscv_vadd_vv_%s(v1, v2, vl)", s.c_str());
  if (a.output.pre_shift != 0) raw = fmt("__riscv_vsll_vx_%s(%s, %lld, vl)", s.c_str(), raw.c_str(), (long long)a.output.pre_shift);
  w.line(fmt("const %s r = %s;", t.type().c_str(),
             ew::mbqm_x(t, raw, a.output.multiplier, a.output.shift, a.rounding).c_str()));
  // |r| <= |v1 + v2| < 2^29: r + zp cannot overflow, and two saturating halvings (vnclip by
  // 0 bits) clamp it to int8; only a narrower activation range needs its own clamp.
  const VType half = t.at(16), byte = t.at(8);
  w.line(fmt("const %s narrow = __riscv_vnclip_wx_%s(__riscv_vadd_vx_%s(r, %lld, vl), 0, __RISCV_VXRM_RNU, vl);",
             half.type().c_str(), half.suffix().c_str(), s.c_str(), (long long)a.output_zero_point));
  std::string saturated = fmt("__riscv_vnclip_wx_%s(narrow, 0, __RISCV_VXRM_RNU, vl)", byte.suffix().c_str());
  w.line(fmt("__riscv_vse8_v_%s(%s, %s, vl);", byte.suffix().c_str(), out.c_str(),
             ew::clamp_s8(byte, saturated, a.act_min, a.act_max).c_str()));
}

void emit_vector_broadcast(CWriter& w, const VType& t, const AddSpec& a) {
  const long long pixels = a.pixels, channels = a.channels;
  w.open(fmt("for (int32_t b = 0; b < %lld; ++b, input1 += %lld, input2 += %lld, output += %lld)",
             (long long)a.batches, pixels * channels, channels, pixels * channels));
  w.open(fmt("for (size_t c = 0, vl; c < %lld; c += vl)", channels));
  w.line(fmt("vl = __riscv_vsetvl_e32%s(%lld - c);", t.lmul().c_str(), channels));
  w.line("/* rescaled in2 is the same for every pixel of the batch. */");
  w.line(fmt("const %s v2 = %s;", t.type().c_str(),
             vector_input(t, a.in2, a.rounding, "input2 + c", a.subtract).c_str()));
  w.line("const int8_t* in1 = input1 + c;");
  w.line("int8_t* out = output + c;");
  w.open(fmt("for (int32_t px = 0; px < %lld; ++px, in1 += %lld, out += %lld)", pixels, channels, channels));
  w.line(fmt("const %s v1 = %s;", t.type().c_str(), vector_input(t, a.in1, a.rounding, "in1").c_str()));
  vector_output(w, t, a, "out");
  w.close();
  w.close();
  w.close();
}

void emit_vector_flat(CWriter& w, const VType& t, const AddSpec& a) {
  w.open(fmt("for (size_t n = %lld, vl; n > 0; n -= vl, input1 += vl, input2 += vl, output += vl)",
             (long long)(a.batches * a.pixels * a.channels)));
  w.line(fmt("vl = __riscv_vsetvl_e32%s(n);", t.lmul().c_str()));
  w.line(fmt("const %s v1 = %s;", t.type().c_str(), vector_input(t, a.in1, a.rounding, "input1").c_str()));
  w.line(fmt("const %s v2 = %s;", t.type().c_str(),
             vector_input(t, a.in2, a.rounding, "input2", a.subtract).c_str()));
  vector_output(w, t, a, "output");
  w.close();
}

std::string emit_vector(const KernelSpec& spec, const AddSpec& a, const Schedule& schedule) {
  const VType t = VType::with_lmul(32, schedule.lmul);
  CWriter w;
  w.open(fmt("void %s(const int8_t* input1, const int8_t* input2, int8_t* output, int8_t* scratch)", spec.name.c_str()));
  w.line("(void)scratch;");
  if (a.broadcast) {
    emit_vector_broadcast(w, t, a);
  } else {
    emit_vector_flat(w, t, a);
  }
  w.close();
  return w.str();
}

// The rescaled input (int32), from int8 element `element` (negate: of zp - element); * 2^k, as in C a
// negative value may not be shifted.
std::string scalar_input(const Input& in, int64_t rounding, const std::string& element, bool negate = false) {
  return fmt("npu_multiply_rounding(((int32_t)%s - %lld) * %lld, %lld, %lld, %lld)", element.c_str(),
             (long long)in.zero_point, (negate ? -1LL : 1LL) * (1LL << in.rescale.pre_shift),
             (long long)in.rescale.multiplier, (long long)in.rescale.shift, (long long)rounding);
}

// output[i] = the requantised v1 + v2 (both in scope).
std::string scalar_output(const AddSpec& a, const std::string& index) {
  return fmt("output[%s] = npu_requantize_rounding((v1 + v2) * %lld, %lld, %lld, %lld, %lld, %lld, %lld);",
             index.c_str(), 1LL << a.output.pre_shift, (long long)a.output.multiplier, (long long)a.output.shift,
             (long long)a.output_zero_point, (long long)a.act_min, (long long)a.act_max, (long long)a.rounding);
}

// The vector loops with vl = 1. Every loop gets the pragma: with constant trip counts clang may
// unroll an inner loop fully and then vectorise the one around it.
std::string emit_scalar(const KernelSpec& spec, const AddSpec& a) {
  const long long pixels = a.pixels, channels = a.channels;
  CWriter w;
  w.open(fmt("void %s(const int8_t* input1, const int8_t* input2, int8_t* output, int8_t* scratch)", spec.name.c_str()));
  w.line("(void)scratch;");
  if (a.broadcast) {
    w.line(ew::kNoAutoVectorize);
    w.open(fmt("for (int32_t b = 0; b < %lld; ++b, input1 += %lld, input2 += %lld, output += %lld)",
               (long long)a.batches, pixels * channels, channels, pixels * channels));
    w.line(ew::kNoAutoVectorize);
    w.open(fmt("for (int32_t c = 0; c < %lld; ++c)", channels));
    w.line(fmt("const int32_t v2 = %s;", scalar_input(a.in2, a.rounding, "input2[c]", a.subtract).c_str()));
    w.line(ew::kNoAutoVectorize);
    w.open(fmt("for (int32_t i = c; i < %lld; i += %lld)", pixels * channels, channels));
    w.line(fmt("const int32_t v1 = %s;", scalar_input(a.in1, a.rounding, "input1[i]").c_str()));
    w.line(scalar_output(a, "i"));
    w.close();
    w.close();
    w.close();
  } else {
    w.line(ew::kNoAutoVectorize);
    w.open(fmt("for (int32_t i = 0; i < %lld; ++i)", (long long)(a.batches * pixels * channels)));
    w.line(fmt("const int32_t v1 = %s;", scalar_input(a.in1, a.rounding, "input1[i]").c_str()));
    w.line(fmt("const int32_t v2 = %s;", scalar_input(a.in2, a.rounding, "input2[i]", a.subtract).c_str()));
    w.line(scalar_output(a, "i"));
    w.close();
  }
  w.close();
  return w.str();
}

Emitted emit(const KernelSpec& spec, const Arrays&, const Schedule& schedule, bool vector) {
  AddSpec a = read_spec(spec);
  Emitted out;
  out.source = c_prologue(spec, vector) + (vector ? emit_vector(spec, a, schedule) : emit_scalar(spec, a));
  out.schedule = schedule;
  return out;
}

const bool registered =
    register_kernel(ew::lmul_only_entry("add", emit, [](const KernelSpec& spec) { read_spec(spec); }));

}  // namespace
}  // namespace coral
