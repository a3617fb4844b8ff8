// "max_pool2d" and "avg_pool2d": kernels/ref/pool_s8.c's npu_max_pool_s8 / npu_avg_pool_s8, NHWC.
//
// A pooling window is separable. Per output row, the window's valid input rows are first
// reduced element by element into one row (NAME_rows: long vectors over the whole W*C row), then
// that row is reduced over each output pixel's kernel_w columns (NAME_cols). The row lives in
// scratch with identity columns on both sides (0 for a sum, -128 for a max; the max of a window
// always includes a valid element, so -128 never wins over one), so every window reads exactly
// kernel_w columns and only the average needs the border: it divides by the count of valid
// elements, a per-column table times the valid rows.
// NAME_cols runs pixel by pixel with vectors over channels (loop_order "px_oc") or channel group
// by channel group with strided vectors over the row's output pixels ("oc_px", for few
// channels; a group is up to 4 bytes of a pixel's channels, so the output and scratch must be
// 4-byte aligned, as the arena planners make every buffer).
#include <algorithm>
#include <tuple>
#include <vector>

#include "elementwise.h"

namespace coral {
namespace {

using ew::VType;
using ew::PoolSpec;

// Valid columns of each output column's window, `copies` times each (one per lane of a channel group).
std::vector<int32_t> column_counts(const PoolSpec& p, int copies) {
  std::vector<int32_t> counts;
  for (int64_t ox = 0; ox < p.out_w; ++ox) {
    int64_t origin = ox * p.stride_w - p.pad_left;
    counts.insert(counts.end(), copies, (int32_t)(std::min(p.in_w, origin + p.kernel_w) - std::max<int64_t>(0, origin)));
  }
  return counts;
}

// ---- vector code ----

// The vector expressions of one kind of pooling at one LMUL.
struct VectorOps {
  const PoolSpec& p;
  VType acc;  // the reduced row's elements
  VType in;   // int8 at the same vl

  VectorOps(const PoolSpec& pool, int lmul) : p(pool), acc(VType::with_lmul(pool.acc_bits, lmul)), in(acc.at(8)) {}

  std::string load_acc(const std::string& pointer) const {
    return fmt("__riscv_vle%d_v_%s(%s, vl)", acc.sew, acc.suffix().c_str(), pointer.c_str());
  }
  std::string load_in(const std::string& pointer) const {
    return fmt("__riscv_vle8_v_%s(%s, vl)", in.suffix().c_str(), pointer.c_str());
  }
  // The int8 elements at `pointer` as the accumulator's first value, and folded into `a` (max or sum).
  std::string first(const std::string& pointer) const {
    if (acc.sew == 8) return load_in(pointer);
    return fmt("__riscv_vsext_vf%d_%s(%s, vl)", acc.sew / 8, acc.suffix().c_str(), load_in(pointer).c_str());
  }
  std::string step(const std::string& a, const std::string& pointer) const {
    if (acc.sew == 8) return fmt("__riscv_vmax_vv_%s(%s, %s, vl)", acc.suffix().c_str(), a.c_str(), load_in(pointer).c_str());
    if (acc.sew == 16) return fmt("__riscv_vwadd_wv_%s(%s, %s, vl)", acc.suffix().c_str(), a.c_str(), load_in(pointer).c_str());
    return fmt("__riscv_vadd_vv_%s(%s, %s, vl)", acc.suffix().c_str(), a.c_str(), first(pointer).c_str());
  }
  std::string combine(const std::string& a, const std::string& b) const {
    return fmt("__riscv_%s_vv_%s(%s, %s, vl)", p.is_max ? "vmax" : "vadd", acc.suffix().c_str(), a.c_str(), b.c_str());
  }
  // The output pixels' int8 vector from the reduced window `a` (count: a scalar or a vector).
  std::string finish(const std::string& name, const std::string& a, const std::string& count) const {
    std::string value = p.is_max ? a : fmt("%s_mean(%s, %s, vl)", name.c_str(), a.c_str(), count.c_str());
    return ew::clamp_s8(in, value, p.act_min, p.act_max);
  }
};

// NAME_mean: kernels/ref's rounded mean (vdiv truncates like C's /), narrowed to int8.
std::string vector_mean(const std::string& name, const VectorOps& v, bool vector_count) {
  const std::string s = v.acc.suffix();
  const char* kind = vector_count ? "vv" : "vx";
  CWriter w;
  w.line("/* (sum > 0 ? sum + count / 2 : sum - count / 2) / count, as kernels/ref rounds the mean. */");
  w.open(fmt("static inline %s %s_mean(%s sum, %s count, size_t vl)", v.in.type().c_str(), name.c_str(),
             v.acc.type().c_str(), vector_count ? v.acc.type().c_str() : v.acc.scalar().c_str()));
  if (vector_count) {
    w.line(fmt("const %s half = __riscv_vsra_vx_%s(count, 1, vl);", v.acc.type().c_str(), s.c_str()));
  } else {
    w.line(fmt("const %s half = count / 2;", v.acc.scalar().c_str()));
  }
  w.line(fmt("const %s negative = __riscv_vmslt_vx_%s_%s(sum, 0, vl);", v.acc.mask_type().c_str(), s.c_str(),
             v.acc.mask().c_str()));
  w.line(fmt("%s rounded = __riscv_vadd_%s_%s(sum, half, vl);", v.acc.type().c_str(), kind, s.c_str()));
  w.line(fmt("rounded = __riscv_vsub_%s_%s_mu(negative, rounded, sum, half, vl);", kind, s.c_str()));
  std::string mean = fmt("__riscv_vdiv_%s_%s(rounded, count, vl)", kind, s.c_str());
  for (VType t = v.acc; t.sew > 8;) {  // the mean is within [-128, 127]: narrowing only drops sign bits
    t = VType{t.sew / 2, t.lmul8 / 2};
    mean = fmt("__riscv_vncvt_x_x_w_%s(%s, vl)", t.suffix().c_str(), mean.c_str());
  }
  w.line("return " + mean + ";");
  w.close();
  return w.str();
}

// NAME_rows's head; always inlined, so that the call with a constant row count unrolls its loop.
void open_rows(CWriter& w, const std::string& name, const PoolSpec& p) {
  w.line("/* The input rows [top, top + rows) reduced element by element into row[0, W * C). */");
  w.open(fmt("static inline __attribute__((always_inline)) void %s_rows(const int8_t* top, int32_t rows, %s* row)",
             name.c_str(), p.acc_type().c_str()));
}

// NAME_cols's head: the row, (avg) the count of valid rows, the output row.
std::string cols_head(const std::string& name, const PoolSpec& p) {
  return fmt("static void %s_cols(const %s* row, %sint8_t* out)", name.c_str(), p.acc_type().c_str(),
             p.is_max ? "" : "int32_t rows, ");
}

std::string vector_rows(const std::string& name, const PoolSpec& p, const VectorOps& v) {
  const int64_t row = p.in_w * p.channels;
  CWriter w;
  open_rows(w, name, p);
  w.open(fmt("for (size_t n = %lld, vl; n > 0; n -= vl, top += vl, row += vl)", (long long)row));
  w.line(fmt("vl = __riscv_vsetvl_e%d%s(n);", v.acc.sew, v.acc.lmul().c_str()));
  w.line(fmt("%s acc = %s;", v.acc.type().c_str(), v.first("top").c_str()));
  w.line("const int8_t* next = top;");
  w.open("for (int32_t y = 1; y < rows; ++y)");
  w.line(fmt("next += %lld;", (long long)row));
  w.line("acc = " + v.step("acc", "next") + ";");
  w.close();
  w.line(fmt("__riscv_vse%d_v_%s(row, acc, vl);", v.acc.sew, v.acc.suffix().c_str()));
  w.close();
  w.close();
  return w.str();
}

std::string vector_cols_px_oc(const std::string& name, const PoolSpec& p, const VectorOps& v) {
  const long long c = p.channels;
  CWriter w;
  w.line("/* Output pixel by output pixel, vectors over channels. */");
  w.open(cols_head(name, p));
  w.open(fmt("for (int32_t ox = 0; ox < %lld; ++ox, row += %lld, out += %lld)", (long long)p.out_w, p.stride_w * c, c));
  if (!p.is_max) w.line(fmt("const %s count = rows * %s_count[ox];", p.acc_type().c_str(), name.c_str()));
  w.line("size_t vl;");
  w.open(fmt("for (int32_t c = 0; c < %lld; c += vl)", c));
  w.line(fmt("vl = __riscv_vsetvl_e%d%s(%lld - c);", v.acc.sew, v.acc.lmul().c_str(), c));
  w.line(fmt("const %s* p = row + c;", p.acc_type().c_str()));
  w.line(fmt("%s acc = %s;", v.acc.type().c_str(), v.load_acc("p").c_str()));
  w.open(fmt("for (int32_t kx = 1; kx < %lld; ++kx)", (long long)p.kernel_w));
  w.line(fmt("p += %lld;", c));
  w.line("acc = " + v.combine("acc", v.load_acc("p")) + ";");
  w.close();
  w.line(fmt("__riscv_vse8_v_%s(out + c, %s, vl);", v.in.suffix().c_str(), v.finish(name, "acc", "count").c_str()));
  w.close();
  w.close();
  w.close();
  return w.str();
}

// oc_px moves each pixel's channels in groups of up to 4 bytes: one 32-bit strided element holds
// 4 int8 channels where a vlse8 element holds one. The channels per group (a divisor of C):
int channel_group(const PoolSpec& p) {
  const int acc_bytes = p.acc_bits / 8;
  for (int bytes = 4; bytes > acc_bytes; bytes /= 2) {
    if (p.channels % (bytes / acc_bytes) == 0) return bytes / acc_bytes;
  }
  return 1;
}

std::string reinterpret(const VType& from, const VType& to, const std::string& value) {
  if (from.sew == to.sew) return value;
  return fmt("__riscv_vreinterpret_v_%s_%s(%s)", from.suffix().c_str(), to.suffix().c_str(), value.c_str());
}

std::string vector_cols_oc_px(const std::string& name, const PoolSpec& p, const VectorOps& v) {
  const long long c = p.channels;
  const int group = channel_group(p);
  const VType row_group{v.acc.sew * group, v.acc.lmul8}, out_group{8 * group, v.in.lmul8};  // a pixel's group
  const int64_t stride_bytes = p.stride_w * c * p.acc_bits / 8;
  auto load = [&](const char* pointer) {
    return reinterpret(row_group, v.acc, fmt("__riscv_vlse%d_v_%s((const %s*)%s, %lld, pixels)", row_group.sew,
                                             row_group.suffix().c_str(), row_group.scalar().c_str(), pointer,
                                             (long long)stride_bytes));
  };
  CWriter w;
  w.line(fmt("/* Channel group by channel group (%d channels), strided vectors over the output pixels. */", group));
  w.open(cols_head(name, p));
  w.line("size_t pixels, vl;");
  w.open(fmt("for (int32_t ox = 0; ox < %lld; ox += pixels, row += pixels * %lld, out += pixels * %lld)",
             (long long)p.out_w, p.stride_w * c, c));
  w.line(fmt("pixels = __riscv_vsetvl_e%d%s(%lld - ox);", row_group.sew, row_group.lmul().c_str(), (long long)p.out_w));
  w.line(group == 1 ? "vl = pixels;" : fmt("vl = pixels * %d;", group));
  if (!p.is_max) {
    w.line(fmt("const %s count = __riscv_vmul_vx_%s(%s, rows, vl);", v.acc.type().c_str(), v.acc.suffix().c_str(),
               v.load_acc(fmt("%s_count + ox * %d", name.c_str(), group)).c_str()));
  }
  w.open(fmt("for (int32_t c = 0; c < %lld; c += %d)", c, group));
  w.line(fmt("const %s* p = row + c;", p.acc_type().c_str()));
  w.line(fmt("%s acc = %s;", v.acc.type().c_str(), load("p").c_str()));
  w.open(fmt("for (int32_t kx = 1; kx < %lld; ++kx)", (long long)p.kernel_w));
  w.line(fmt("p += %lld;", c));
  w.line("acc = " + v.combine("acc", load("p")) + ";");
  w.close();
  w.line(fmt("__riscv_vsse%d_v_%s((%s*)(out + c), %lld, %s, pixels);", out_group.sew, out_group.suffix().c_str(),
             out_group.scalar().c_str(), c, reinterpret(v.in, out_group, v.finish(name, "acc", "count")).c_str()));
  w.close();
  w.close();
  w.close();
  return w.str();
}

std::string vector_helpers(const std::string& name, const PoolSpec& p, const Schedule& s) {
  VectorOps v(p, s.lmul);
  bool oc_px = s.loop_order == "oc_px";
  std::string out = p.is_max ? "" : vector_mean(name, v, oc_px) + "\n";
  out += vector_rows(name, p, v) + "\n";
  return out + (oc_px ? vector_cols_oc_px(name, p, v) : vector_cols_px_oc(name, p, v));
}

// ---- portable code: the same loops, one element at a time ----

std::string scalar_rows(const std::string& name, const PoolSpec& p) {
  const int64_t row = p.in_w * p.channels;
  CWriter w;
  open_rows(w, name, p);
  w.open(fmt("for (int32_t i = 0; i < %lld; ++i)", (long long)row));
  w.line(fmt("%s acc = top[i];", p.acc_type().c_str()));
  w.open("for (int32_t y = 1; y < rows; ++y)");
  w.line(fmt("const %s v = top[y * %lld + i];", p.acc_type().c_str(), (long long)row));
  w.line(p.is_max ? "acc = v > acc ? v : acc;" : "acc += v;");
  w.close();
  w.line("row[i] = acc;");
  w.close();
  w.close();
  return w.str();
}

// One output element: the kernel_w columns of the window starting at `p` reduced, finished, stored.
void scalar_window(CWriter& w, const std::string& name, const PoolSpec& p, const std::string& out) {
  w.line("int32_t acc = p[0];");
  w.open(fmt("for (int32_t kx = 1; kx < %lld; ++kx)", (long long)p.kernel_w));
  w.line(fmt("const int32_t v = p[kx * %lld];", (long long)p.channels));
  w.line(p.is_max ? "acc = v > acc ? v : acc;" : "acc += v;");
  w.close();
  w.line(fmt("%s = (int8_t)%s_clamp(%s);", out.c_str(), name.c_str(), p.is_max ? "acc" : (name + "_mean(acc, count)").c_str()));
}

std::string scalar_cols(const std::string& name, const PoolSpec& p, const Schedule& s) {
  const long long c = p.channels;
  CWriter w;
  w.open(cols_head(name, p));
  if (s.loop_order == "oc_px") {
    w.open(fmt("for (int32_t c = 0; c < %lld; ++c)", c));
    w.open(fmt("for (int32_t ox = 0; ox < %lld; ++ox)", (long long)p.out_w));
  } else {
    w.open(fmt("for (int32_t ox = 0; ox < %lld; ++ox)", (long long)p.out_w));
    w.open(fmt("for (int32_t c = 0; c < %lld; ++c)", c));
  }
  if (!p.is_max) w.line(fmt("const int32_t count = rows * %s_count[ox];", name.c_str()));
  w.line(fmt("const %s* p = row + ox * %lld + c;", p.acc_type().c_str(), p.stride_w * c));
  scalar_window(w, name, p, fmt("out[ox * %lld + c]", c));
  w.close();
  w.close();
  w.close();
  return w.str();
}

std::string scalar_helpers(const std::string& name, const PoolSpec& p, const Schedule& s) {
  CWriter w;
  if (!p.is_max) {
    w.line("/* kernels/ref's rounded mean. */");
    w.open(fmt("static inline int32_t %s_mean(int32_t sum, int32_t count)", name.c_str()));
    w.line("return (sum > 0 ? sum + count / 2 : sum - count / 2) / count;");
    w.close().blank();
  }
  w.open(fmt("static inline int32_t %s_clamp(int32_t v)", name.c_str()));
  w.line(fmt("return v < %lld ? %lld : (v > %lld ? %lld : v);", (long long)p.act_min, (long long)p.act_min,
             (long long)p.act_max, (long long)p.act_max));
  w.close().blank();
  return w.str() + scalar_rows(name, p) + "\n" + scalar_cols(name, p, s);
}

// ---- the kernel ----

std::string pool_body(const std::string& name, const PoolSpec& p) {
  const long long c = p.channels;
  const int identity = p.is_max ? -128 : 0;
  CWriter w;
  w.open(fmt("void %s(const int8_t* input, int8_t* output, int8_t* scratch)", name.c_str()));
  w.line("/* One reduced row, [pad_left + W + pad_right][C]: the padding columns hold the identity. */");
  w.line(fmt("%s* row = (%s*)scratch;", p.acc_type().c_str(), p.acc_type().c_str()));
  if (p.pad_left > 0) w.line(fmt("for (int32_t i = 0; i < %lld; ++i) row[i] = %d;", p.pad_left * c, identity));
  if (p.pad_right > 0) {
    w.line(fmt("for (int32_t i = %lld; i < %lld; ++i) row[i] = %d;", (p.pad_left + p.in_w) * c, (long long)p.row_elements(),
               identity));
  }
  w.open(fmt("for (int32_t b = 0; b < %lld; ++b, input += %lld)", (long long)p.batches, p.in_h * p.in_w * c));
  w.open(fmt("for (int32_t oy = 0; oy < %lld; ++oy, output += %lld)", (long long)p.out_h, p.out_w * c));
  w.line(fmt("const int32_t origin = oy * %lld - %lld;", (long long)p.stride_h, (long long)p.pad_top));
  w.line("const int32_t y0 = origin > 0 ? origin : 0;");
  w.line(fmt("const int32_t y1 = origin + %lld < %lld ? origin + %lld : %lld;", (long long)p.kernel_h, (long long)p.in_h,
             (long long)p.kernel_h, (long long)p.in_h));
  // A constant row count (every window but those clipped by the padding) unrolls the row loop.
  w.line(fmt("if (y1 - y0 == %lld) %s_rows(input + y0 * %lld, %lld, row + %lld);", (long long)p.kernel_h, name.c_str(),
             p.in_w * c, (long long)p.kernel_h, p.pad_left * c));
  w.line(fmt("else %s_rows(input + y0 * %lld, y1 - y0, row + %lld);", name.c_str(), p.in_w * c, p.pad_left * c));
  w.line(fmt("%s_cols(row, %soutput);", name.c_str(), p.is_max ? "" : "y1 - y0, "));
  w.close();
  w.close();
  w.close();
  return w.str();
}

Emitted emit(const KernelSpec& spec, const Arrays&, const Schedule& schedule, bool vector) {
  PoolSpec p = ew::read_pool_spec(spec);
  Emitted out;
  out.source = c_prologue(spec, vector);
  if (!p.is_max) {
    std::vector<int32_t> counts = column_counts(p, vector && schedule.loop_order == "oc_px" ? channel_group(p) : 1);
    out.source += "/* Valid columns of each output column's window (per lane). */\n" +
                  c_array(p.acc_type(), spec.name + "_count", counts) + "\n";
    out.constant_bytes = (int64_t)counts.size() * p.acc_bits / 8;
  }
  out.source += (vector ? vector_helpers(spec.name, p, schedule) : scalar_helpers(spec.name, p, schedule)) + "\n";
  out.source += pool_body(spec.name, p);
  out.scratch_bytes = p.row_elements() * p.acc_bits / 8;
  out.schedule = schedule;
  return out;
}

// The cheaper loop order by vector instructions per output row: per pixel, ceil(C / vlmax)
// channel vectors, or per channel group, ceil(out_w / pixels per vector) pixel vectors.
std::string cheaper_loop_order(const PoolSpec& p, int lmul) {
  const int64_t vlmax = p.vlen / p.acc_bits * lmul, group = channel_group(p);
  auto vectors = [](int64_t n, int64_t per_vector) { return (n + per_vector - 1) / per_vector; };
  int64_t oc_px = p.channels / group * vectors(p.out_w, vlmax / group), px_oc = p.out_w * vectors(p.channels, vlmax);
  return oc_px < px_oc ? "oc_px" : "px_oc";
}

Schedule default_schedule(const KernelSpec& spec) {
  PoolSpec p = ew::read_pool_spec(spec);
  Schedule s;
  s.lmul = 8;
  s.loop_order = cheaper_loop_order(p, s.lmul);
  return s;
}

std::string validate(const KernelSpec& spec, const Schedule& schedule) {
  ew::read_pool_spec(spec);
  return ew::check_lmul_and_loop_order(schedule);
}

const bool registered_max = register_kernel({"max_pool2d", emit, default_schedule, validate});
const bool registered_avg = register_kernel({"avg_pool2d", emit, default_schedule, validate});

}  // namespace
}  // namespace coral
