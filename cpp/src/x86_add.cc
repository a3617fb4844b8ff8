// "add" for the x86 family (AVX2): the int8 residual add / subtract of kernels/ref/add_s8.c, with its
// per-channel broadcast ([N,H,W,C] and [N,1,1,C]), 8 elements per step.
//
// Each input: sign-extend 8 bytes to int32, subtract the zero point (subtract: input2's from the zero
// point, as TFLite's SUB negates its multiplier), shift left by left_shift (the reference's multiply
// by 1 << left_shift: 9 bits << 20 stays in int32), then MBQM with the input's multiplier and the
// spec's rounding (single: 64-bit products; TFLite's double: npu_x86_mbqm_double; shift <= 0 keeps
// the result in int32, so the reference's saturation never acts). The sum (< 2^30) gets the output
// MBQM, clamped to the activation range less the output zero point, plus the zero point. Elements after the last whole
// vector of a row run the reference's arithmetic per element. Vectors (or broadcast rows) are split over
// the TVM runtime's threads (npu_parallel.h).
#include <algorithm>

#include "x86_common.h"

namespace coral::x86 {

namespace {

struct Rescale {
  int64_t zero_point, multiplier, shift;
};

struct AddShape {
  int64_t batches, pixels, channels;
  bool broadcast, subtract;
  int64_t left_shift;
  Rescale in1, in2, out;
  int64_t act_min, act_max;
  int64_t rounding;  // npu_quant.h NPU_ROUND_*, of all three rescales
};

AddShape add_shape(const KernelSpec& spec) {
  auto rescale = [&](const std::string& prefix) {
    return Rescale{spec.at(prefix + "zero_point"), spec.at(prefix + "multiplier"), spec.at(prefix + "shift")};
  };
  return {spec.at("batches"), spec.at("pixels"), spec.at("channels"), spec.at("broadcast") != 0,
          spec.get("subtract", 0) != 0, spec.at("left_shift"), rescale("input1_"), rescale("input2_"),
          rescale("output_"), spec.at("act_min"), spec.at("act_max"), spec.get("rounding", 0)};
}

std::string validate(const KernelSpec& spec, const Schedule&) {
  AddShape a = add_shape(spec);
  for (const Rescale* r : {&a.in1, &a.in2, &a.out}) {
    if (r->shift > 0 || r->shift < -31) return fmt("shift %lld outside [-31, 0]", (long long)r->shift);
  }
  if (a.left_shift < 0 || a.left_shift > 20) return fmt("left_shift %lld outside [0, 20]", (long long)a.left_shift);
  if (a.rounding < 0 || a.rounding > 2) return fmt("rounding %lld outside [0, 2]", (long long)a.rounding);
  return "";
}

// MBQM(v, r.multiplier, r.shift) of 8 int32 lanes with `rounding`, clamped to [lo, hi].
std::string mbqm(const std::string& v, const Rescale& r, int64_t rounding, int64_t lo, int64_t hi) {
  if (rounding == 0) {
    return fmt("npu_x86_mbqm_x(%s, %lld, %lld, %lldLL, %lldLL)", v.c_str(), (long long)r.multiplier,
               (long long)r.shift, (long long)lo, (long long)hi);
  }
  return fmt("npu_x86_mbqm_rounding(%s, %lld, %lld, %lld, %lldLL, %lldLL)", v.c_str(), (long long)r.multiplier,
             (long long)r.shift, (long long)rounding, (long long)lo, (long long)hi);
}

void emit_vector_step(CWriter& c, const std::string& name, const AddShape& a) {
  for (int input = 1; input <= 2; ++input) {
    const Rescale& r = input == 1 ? a.in1 : a.in2;
    const std::string x = "_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)x))";
    const std::string zp = fmt("_mm256_set1_epi32(%lld)", (long long)r.zero_point);
    const bool negate = input == 2 && a.subtract;
    c.open(fmt("%s __m256i %s_input%d(const int8_t* x)", kInline, name.c_str(), input));
    c.line(fmt("const __m256i v = _mm256_slli_epi32(_mm256_sub_epi32(%s, %s), %lld);", (negate ? zp : x).c_str(),
               (negate ? x : zp).c_str(), (long long)a.left_shift));
    c.line("return " + mbqm("v", r, a.rounding, INT32_MIN, INT32_MAX) + ";");
    c.close().blank();
  }
  c.open(fmt("%s void %s_add8(const int8_t* x1, const int8_t* x2, int8_t* y)", kInline, name.c_str()));
  c.line(fmt("const __m256i raw = _mm256_add_epi32(%s_input1(x1), %s_input2(x2));", name.c_str(), name.c_str()));
  c.line("const __m256i v = " +
         mbqm("raw", a.out, a.rounding, a.act_min - a.out.zero_point, a.act_max - a.out.zero_point) + ";");
  c.line(fmt("npu_x86_store8(_mm256_add_epi32(v, _mm256_set1_epi32(%lld)), y);", (long long)a.out.zero_point));
  c.close().blank();
}

// One element, as kernels/ref/add_s8.c computes it.
void emit_scalar_step(CWriter& c, const std::string& name, const AddShape& a) {
  c.open(fmt("static inline int8_t %s_add1(int8_t x1, int8_t x2)", name.c_str()));
  for (int input = 1; input <= 2; ++input) {
    const Rescale& r = input == 1 ? a.in1 : a.in2;
    const int64_t sign = input == 2 && a.subtract ? -1 : 1;
    c.line(fmt("const int32_t s%d = npu_multiply_rounding(((int32_t)x%d - %lld) * %lld, %lld, %lld, %lld);", input,
               input, (long long)r.zero_point, (long long)(sign * (int64_t{1} << a.left_shift)),
               (long long)r.multiplier, (long long)r.shift, (long long)a.rounding));
  }
  c.line(fmt("return npu_requantize_rounding(s1 + s2, %lld, %lld, %lld, %lld, %lld, %lld);",
             (long long)a.out.multiplier, (long long)a.out.shift, (long long)a.out.zero_point, (long long)a.act_min,
             (long long)a.act_max, (long long)a.rounding));
  c.close().blank();
}

// `count` elements from x1, x2 (C expressions) to y: whole vectors, then one by one.
void emit_row(CWriter& c, const std::string& name, int64_t count, const std::string& x1, const std::string& x2,
              const std::string& y) {
  int64_t vectors = count / kLanes * kLanes;
  if (vectors > 0) {
    c.line(fmt("for (int32_t i = 0; i < %lld; i += %d) %s_add8(%s + i, %s + i, %s + i);", (long long)vectors, kLanes,
               name.c_str(), x1.c_str(), x2.c_str(), y.c_str()));
  }
  if (vectors < count) {
    c.line(fmt("for (int32_t i = %lld; i < %lld; ++i) %s[i] = %s_add1(%s[i], %s[i]);", (long long)vectors,
               (long long)count, y.c_str(), name.c_str(), x1.c_str(), x2.c_str()));
  }
}

Emitted emit(const KernelSpec& spec, const Arrays&, const Schedule& schedule, bool vector) {
  if (!vector) throw SpecError("the x86 kernels have no portable form: kernels/ref is the portable kernel");
  std::string why = validate(spec, schedule);
  if (!why.empty()) throw SpecError(spec.kernel + " " + spec.name + ": " + why);
  AddShape a = add_shape(spec);
  CWriter c;
  emit_vector_step(c, spec.name, a);
  emit_scalar_step(c, spec.name, a);
  // vectors of 8 elements, or with broadcast rows (pixels) of `channels` elements meeting their batch's
  // input2 row; split over the runtime's threads, then the elements after the last whole vector
  const std::string name = spec.name;
  ParallelKernel k;
  k.two_inputs = true;
  CWriter body;
  if (!a.broadcast) {
    k.count = a.batches * a.pixels * a.channels / kLanes;
    k.grain = 4096 / kLanes;
    body.open("for (int64_t i = begin * 8; i < end * 8; i += 8)");
    body.line(fmt("%s_add8(io->input + i, io->input2 + i, io->output + i);", name.c_str()));
    body.close();
    const int64_t size = a.batches * a.pixels * a.channels, done = k.count * kLanes;
    if (done < size) {
      k.after = fmt("for (int32_t i = %lld; i < %lld; ++i) output[i] = %s_add1(input[i], input2[i]);", (long long)done,
                    (long long)size, name.c_str());
    }
  } else {
    k.count = a.batches * a.pixels;
    k.grain = 4096 / std::max<int64_t>(1, a.channels);
    body.open("for (int64_t row = begin; row < end; ++row)");
    body.line(fmt("const int8_t* x2 = io->input2 + (size_t)(row / %lld) * %lld;", (long long)a.pixels,
                  (long long)a.channels));
    emit_row(body, name, a.channels, "(io->input + row * " + std::to_string(a.channels) + ")", "x2",
             "(io->output + row * " + std::to_string(a.channels) + ")");
    body.close();
  }
  k.body = body.str();
  return {prologue(spec) + "\n" + c.str() + parallel_kernel(name, k), 0, 0, Schedule{}};
}

Schedule default_schedule(const KernelSpec&) { return Schedule{}; }

const bool registered = register_kernel({"add", emit, default_schedule, validate, {}, "x86"});

}  // namespace

}  // namespace coral::x86
