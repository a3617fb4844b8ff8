// "resize_nearest" and "resize_bilinear": kernels/ref/resize_s8.c's npu_resize_nearest_s8 /
// npu_resize_bilinear_s8, NHWC. The coordinate tables (y_index / x_index, y_lerp / x_lerp) arrive
// as constant arrays and are recast here into byte offsets, run lengths and weights.
//
// Nearest, a gather. Consecutive output rows that read the same input row (every other row of a
// 2x upsample) are one run. The run's first row is gathered; in oc_px's vector code, when no run
// is longer than 2 rows, each gathered vector is stored in both rows of a 2-row run, else the
// other rows are flat copies of the row before (vle8 / vse8, reading the row just written). A row
// is gathered (loop_order)
//   px_oc: pixel by pixel, one vle8 / vse8 of the pixel's channels (unit stride);
//   oc_px: in elements of up to 4 bytes of a pixel's channels (4 bytes when C % 4 == 0), one
//          indexed load (vluxei16, or vluxei32 when the input row passes 64 KB) per vector, from
//          a table of the elements' byte offsets in the input row (needs 4-byte aligned buffers,
//          as the arena planners make every buffer).
//
// Bilinear, separable. Per output row, the vertical pass folds the two input rows into one int32
// row over the columns any output reads, R = a * (1024 - fy) + b * fy (long vectors over W * C;
// a row with fy == 0 is a shift), in scratch; two consecutive output rows that read the same two
// input rows (a 2x upsample's interior) get both their R rows from one pass. The horizontal pass
// makes the output row from R, s = R[x0] * (1024 - fx) + R[x1] * fx, (loop_order)
//   px_oc: per output pixel, vectors over channels (one, or C / VLMAX of VLMAX each) and scalar
//          weights from a table, two vectors per step (their rounding shares the vtype changes);
//          where the table repeats every p <= 8 pixels, q columns further on (integer ratios, and
//          others with an exact 10-bit scale), a loop over the periods with the weights and
//          relative columns as constants and each column loaded once per period;
//   oc_px: over the row's W * C elements with indexed loads of R (per-element tables of byte
//          offsets and fractions: s = 1024 * R[x0] + fx * (R[x1] - R[x0])), for few channels.
// s is rounded half away from zero by 2^20: t = s + (s >> 31) (s - 1 when negative), vnclip by
// 20 with round-to-nearest-up (floor((t + 2^19) / 2^20), the header's rounding for both signs),
// vnclip to int8 (the header's clamp). s is the header's sum exactly: R's two terms are its a, b
// and its c, d.
// int32 suffices. A table row whose two indices are equal gets fraction 0 here: the same sum, as
// a * (1024 - f) + a * f = 1024 * a for any f. Let W_y = max over the rows of |1024 - fy| + |fy|,
// W_x likewise: |R| <= 128 * W_y <= 655360, and |s| <= 128 * W_y * W_x. TFLite's tables have their
// fractions in [0, 1023] wherever the indices differ, so W = 1024 and |s| <= 2^27. The header only
// promises |f| <= 2048, i.e. W <= 5120 and |s| < 2^32: a table with 128 * W_y * W_x + 2^19 >= 2^31
// (never one of TFLite's) gets the portable loops with an int64 horizontal sum instead, vector or
// not. Otherwise every product and the sum fit int32 (oc_px's fx * (R[x1] - R[x0]) may wrap, but
// vmul / vmacc wrap modulo 2^32 and the final s fits), and so does t.
//
// Default loop order (both kernels): the one with fewer instructions per row by a rough count,
// oc_px only while its tables stay within 4 KB of constants.
//
// Instructions per output element, 28x28x32 -> 56x56x32, ONNX half_pixel (QEMU, rdinstret):
//   nearest  (round_prefer_floor)  0.059 (oc_px, lmul 8, the default; px_oc 0.156)
//   bilinear                       0.529 (px_oc, lmul 8, the default; oc_px 0.904)
// against the portable form (2.4 / 25.5) and kernels/ref on the NPU (0.89 / 87).
#include <algorithm>
#include <set>
#include <vector>

#include "elementwise.h"

namespace coral {
namespace {

using ew::VType;

constexpr int64_t kGatherTableBytes = 4096;  // the default's cap on oc_px's tables
constexpr int64_t kOne = 1024;               // 1.0 in TFLite's 10-bit fractions
constexpr int64_t kMaxFraction = 2048;       // npu_kernels_resize.h

struct ResizeSpec {
  int64_t batches, in_h, in_w, channels, out_h, out_w;
  int64_t vlen_bytes;  // the target's vector register: VLEN / 8 bytes

  int64_t in_row() const { return in_w * channels; }
  int64_t in_image() const { return in_h * in_row(); }
  int64_t out_row() const { return out_w * channels; }
  bool empty() const { return batches == 0 || channels == 0 || out_h == 0 || out_w == 0; }
};

ResizeSpec read_spec(const KernelSpec& spec) {
  ResizeSpec r;
  r.batches = ew::field(spec, "batches", 0, INT32_MAX);
  r.in_h = ew::field(spec, "in_h", 1, INT32_MAX);
  r.in_w = ew::field(spec, "in_w", 1, INT32_MAX);
  r.channels = ew::field(spec, "channels", 0, INT32_MAX);
  r.out_h = ew::field(spec, "out_h", 0, INT32_MAX);
  r.out_w = ew::field(spec, "out_w", 0, INT32_MAX);
  r.vlen_bytes = spec.target.register_bytes();
  // Each factor is below 2^31, so a product of two fits int64 before the check of the next.
  auto elements = [](int64_t a, int64_t b, int64_t c, int64_t d) {
    const int64_t ab = a * b, cd = c * d;
    return ab > INT32_MAX || cd > INT32_MAX ? INT64_MAX : ab * cd;
  };
  if (elements(r.batches, r.in_h, r.in_w, r.channels) > INT32_MAX ||
      elements(r.batches, r.out_h, r.out_w, r.channels) > INT32_MAX) {
    throw SpecError(spec.kernel + " " + spec.name + ": tensor larger than 2^31 elements");
  }
  return r;
}

// The constant array `key` of shape [out] (columns = 1) or [out][3] ({lower, upper, fraction}),
// indices in [0, in), fractions within +-2048.
const Array& checked_table(const KernelSpec& spec, const Arrays& arrays, const char* key, int64_t out, int64_t in,
                           int columns) {
  const Array& a = array(arrays, key);
  const std::vector<int64_t> shape = columns == 1 ? std::vector<int64_t>{out} : std::vector<int64_t>{out, columns};
  if (a.shape != shape) {
    throw SpecError(fmt("%s %s: array '%s' must have shape [%lld%s]", spec.kernel.c_str(), spec.name.c_str(), key,
                        (long long)out, columns == 1 ? "" : ", 3"));
  }
  for (size_t i = 0; i < a.values.size(); ++i) {
    const int64_t v = a.values[i];
    if (i % columns < 2 && (v < 0 || v >= in)) {
      throw SpecError(fmt("%s %s: %s holds index %lld outside [0, %lld)", spec.kernel.c_str(), spec.name.c_str(), key,
                          (long long)v, (long long)in));
    }
    if (i % columns == 2 && (v < -kMaxFraction || v > kMaxFraction)) {
      throw SpecError(fmt("%s %s: %s holds fraction %lld outside [-%lld, %lld]", spec.kernel.c_str(), spec.name.c_str(),
                          key, (long long)v, (long long)kMaxFraction, (long long)kMaxFraction));
    }
  }
  return a;
}

// A NAME_* constant array of `ctype` (a 16- or 32-bit integer type) with its comment; `bytes` grows
// by its size.
std::string table(const std::string& name, const std::string& comment, const std::vector<int32_t>& values,
                  const std::string& ctype, int64_t& bytes) {
  bytes += (int64_t)values.size() * (ctype.find("16") != std::string::npos ? 2 : 4);
  return "/* " + comment + " */\n" + c_array(ctype, name, values) + "\n";
}

// Unsigned byte offsets: 16 bits when every offset fits.
std::string offset_type(int index_bytes) { return index_bytes == 2 ? "uint16_t" : "uint32_t"; }

int64_t vectors(int64_t n, int64_t per_vector) { return (n + per_vector - 1) / per_vector; }

// The Emitted of a kernel, holding the file's prologue; for an empty output, the whole kernel: a
// function that does nothing.
Emitted begin(const KernelSpec& spec, const ResizeSpec& r, const Schedule& s, bool vector) {
  Emitted out;
  out.schedule = s;
  out.source = c_prologue(spec, vector);
  if (r.empty()) {
    CWriter w;
    w.open(fmt("void %s(const int8_t* input, int8_t* output, int8_t* scratch)", spec.name.c_str()));
    w.line("(void)input;");
    w.line("(void)output;");
    w.line("(void)scratch;");
    w.close();
    out.source += w.str();
  }
  return out;
}

// The table entry: knobs lmul and loop_order, the default the cheaper loop order (oc_px within
// the table cap) at the largest LMUL the gather allows.
KernelEntry entry(const std::string& kernel, decltype(KernelEntry::emit) emit,
                  std::function<std::string(const ResizeSpec&, int lmul)> cheaper_loop_order,
                  std::function<std::string(const ResizeSpec&, const Schedule&)> check_lmul) {
  auto default_schedule = [=](const KernelSpec& spec) {
    const ResizeSpec r = read_spec(spec);
    Schedule s;
    s.loop_order = cheaper_loop_order(r, 8);
    while (!check_lmul(r, s).empty()) s.lmul /= 2;
    return s;
  };
  auto validate = [=](const KernelSpec& spec, const Schedule& s) {
    const ResizeSpec r = read_spec(spec);
    std::string why = ew::check_lmul_and_loop_order(s);
    return why.empty() ? check_lmul(r, s) : why;
  };
  return {kernel, std::move(emit), default_schedule, validate};
}

// ---------------------------------------------------------------------------------------------
// Nearest

// Runs of output rows reading the same input row: {byte offset of the input row, rows}.
std::vector<int32_t> row_runs(const ResizeSpec& r, const Array& y_index) {
  std::vector<int32_t> runs;
  for (int64_t y = 0; y < r.out_h; ++y) {
    const int32_t offset = (int32_t)(y_index.values[y] * r.in_row());
    if (y > 0 && runs[runs.size() - 2] == offset) {
      ++runs.back();
    } else {
      runs.push_back(offset);
      runs.push_back(1);
    }
  }
  return runs;
}

// oc_px's element: up to 4 bytes of a pixel's channels (a divisor of C), and its offsets' width.
struct Gather {
  int element_bytes, index_bytes;
};

Gather nearest_gather_layout(const ResizeSpec& r) {
  const int element = r.channels % 4 == 0 ? 4 : (r.channels % 2 == 0 ? 2 : 1);
  return {element, r.in_row() - element > UINT16_MAX ? 4 : 2};
}

// Instructions per output row, roughly: px_oc ~6 per pixel and 2 per channel vector; oc_px ~10
// per vector of elements.
std::string nearest_loop_order(const ResizeSpec& r, int lmul) {
  const Gather g = nearest_gather_layout(r);
  const int64_t px_oc = r.out_w * (6 + 2 * vectors(r.channels, r.vlen_bytes * lmul));
  const int64_t oc_px = 10 * vectors(r.out_row() / g.element_bytes, r.vlen_bytes * lmul / g.element_bytes);
  const int64_t table_bytes = r.out_row() / g.element_bytes * g.index_bytes;
  return oc_px < px_oc && table_bytes <= kGatherTableBytes ? "oc_px" : "px_oc";
}

// oc_px's LMUL limit: the offsets take index_bytes / element_bytes times the data's registers.
std::string nearest_check_lmul(const ResizeSpec& r, const Schedule& s) {
  const Gather g = nearest_gather_layout(r);
  if (s.loop_order == "oc_px" && s.lmul * g.index_bytes / g.element_bytes > 8) {
    return fmt("lmul %d: the gather's %d-bit offsets of %d-bit elements would need LMUL %d > 8", s.lmul,
               8 * g.index_bytes, 8 * g.element_bytes, s.lmul * g.index_bytes / g.element_bytes);
  }
  return "";
}

// The run's first output row (at `output`) gathered from the input row `row`; paired (oc_px's
// vector code, when no run is longer than 2 rows): stored in the run's second row too.
void nearest_gather(CWriter& w, const std::string& name, const ResizeSpec& r, const Schedule& s, bool vector,
                    bool paired) {
  const long long c = r.channels, out_row = r.out_row();
  if (s.loop_order == "oc_px") {
    const Gather g = nearest_gather_layout(r);
    const long long elements = out_row / g.element_bytes;
    w.line(fmt("const %s* index = %s_offsets;", offset_type(g.index_bytes).c_str(), name.c_str()));
    if (!vector) {
      w.open(fmt("for (int32_t i = 0; i < %lld; ++i, output += %d)", elements, g.element_bytes));
      w.line(fmt("for (int32_t k = 0; k < %d; ++k) output[k] = row[index[i] + k];", g.element_bytes));
      w.close();
      return;
    }
    const VType data = VType::with_lmul(8 * g.element_bytes, s.lmul);
    const VType index = data.at(8 * g.index_bytes).as_unsigned();
    // Elements wider than a byte: the row and output pointers as pointers to them (4-byte aligned).
    const bool bytes = g.element_bytes == 1;
    const std::string out = bytes ? "output" : "(" + data.scalar() + "*)output";
    const std::string in = bytes ? "row" : "(const " + data.scalar() + "*)row";
    w.open(fmt("for (size_t n = %lld, vl; n > 0; n -= vl, index += vl, output += %s)", elements,
               bytes ? "vl" : fmt("vl * %d", g.element_bytes).c_str()));
    w.line(fmt("vl = __riscv_vsetvl_e%d%s(n);", data.sew, data.lmul().c_str()));
    w.line(fmt("const %s v = __riscv_vluxei%d_v_%s(%s, __riscv_vle%d_v_%s(index, vl), vl);", data.type().c_str(),
               index.sew, data.suffix().c_str(), in.c_str(), index.sew, index.suffix().c_str()));
    const std::string store = fmt("__riscv_vse%d_v_%s", data.sew, data.suffix().c_str());
    w.line(fmt("%s(%s, v, vl);", store.c_str(), out.c_str()));
    if (paired) {
      w.line(fmt("if (rows == 2) %s(%s + %lld, v, vl);", store.c_str(), out.c_str(), out_row / g.element_bytes));
    }
    w.close();
    return;
  }
  w.open(fmt("for (int32_t x = 0; x < %lld; ++x, output += %lld)", (long long)r.out_w, c));
  w.line(fmt("const int8_t* pixel = row + %s_offsets[x];", name.c_str()));
  if (!vector) {
    w.line(fmt("for (int32_t c = 0; c < %lld; ++c) output[c] = pixel[c];", c));
  } else if (r.channels <= r.vlen_bytes * s.lmul) {  // vl is set once, before the loops
    w.line(fmt("__riscv_vse8_v_i8m%d(output, __riscv_vle8_v_i8m%d(pixel, vl), vl);", s.lmul, s.lmul));
  } else {
    w.line("size_t vl;");
    w.open(fmt("for (size_t c = 0; c < %lld; c += vl)", c));
    w.line(fmt("vl = __riscv_vsetvl_e8m%d(%lld - c);", s.lmul, c));
    w.line(fmt("__riscv_vse8_v_i8m%d(output + c, __riscv_vle8_v_i8m%d(pixel + c, vl), vl);", s.lmul, s.lmul));
    w.close();
  }
  w.close();
}

// The run's other rows after its first: stored already (paired), or each a copy of the row before
// it, in one forward pass over them (a vector never reads what it writes: vl <= one row).
void nearest_repeat(CWriter& w, const ResizeSpec& r, const Schedule& s, bool vector, bool paired) {
  const long long row = r.out_row();
  if (paired) {
    w.line(fmt("if (rows == 2) output += %lld;", row));
    return;
  }
  w.line(fmt("const size_t copies = (size_t)(rows - 1) * %lld;", row));
  if (vector) {
    const std::string limit = row >= r.vlen_bytes * s.lmul ? "n" : fmt("n < %lld ? n : %lld", row, row);
    w.open("for (size_t n = copies, vl; n > 0; n -= vl, output += vl)");
    w.line(fmt("vl = __riscv_vsetvl_e8m%d(%s);", s.lmul, limit.c_str()));
    w.line(fmt("__riscv_vse8_v_i8m%d(output, __riscv_vle8_v_i8m%d(output - %lld, vl), vl);", s.lmul, s.lmul, row));
    w.close();
  } else {
    w.line(fmt("for (size_t i = 0; i < copies; ++i) output[i] = output[(ptrdiff_t)i - %lld];", row));
    w.line("output += copies;");
  }
}

Emitted emit_nearest(const KernelSpec& spec, const Arrays& arrays, const Schedule& s, bool vector) {
  const ResizeSpec r = read_spec(spec);
  const Array& y_index = checked_table(spec, arrays, "y_index", r.out_h, r.in_h, 1);
  const Array& x_index = checked_table(spec, arrays, "x_index", r.out_w, r.in_w, 1);
  const std::string& name = spec.name;
  Emitted out = begin(spec, r, s, vector);
  if (r.empty()) return out;
  CWriter w;
  const std::vector<int32_t> runs = row_runs(r, y_index);
  int32_t longest = 0;
  for (size_t i = 1; i < runs.size(); i += 2) longest = std::max(longest, runs[i]);
  // Storing twice costs a store and a branch per vector; a copy, a load, a store and the loop's
  // bookkeeping. Per pixel (px_oc), the branch outweighs the copy's share.
  const bool paired = vector && longest == 2 && s.loop_order == "oc_px";
  out.source += table(name + "_runs", "Runs of output rows reading one input row: {its byte offset, rows}.", runs,
                      "int32_t", out.constant_bytes);
  std::vector<int32_t> offsets;
  if (s.loop_order == "oc_px") {
    const Gather g = nearest_gather_layout(r);
    for (int32_t x : x_index.values) {
      for (int64_t c = 0; c < r.channels; c += g.element_bytes) offsets.push_back((int32_t)(x * r.channels + c));
    }
    out.source += table(name + "_offsets",
                        fmt("Byte offsets in the input row of the output row's %d-byte elements.", g.element_bytes),
                        offsets, offset_type(g.index_bytes), out.constant_bytes);
  } else {
    for (int32_t x : x_index.values) offsets.push_back((int32_t)(x * r.channels));
    out.source += table(name + "_offsets", "Byte offsets in the input row of the output row's pixels.", offsets,
                        "int32_t", out.constant_bytes);
  }
  w.open(fmt("void %s(const int8_t* input, int8_t* output, int8_t* scratch)", name.c_str()));
  w.line("(void)scratch;");
  if (vector && s.loop_order == "px_oc" && r.channels <= r.vlen_bytes * s.lmul) {
    w.line(fmt("const size_t vl = __riscv_vsetvl_e8m%d(%lld);", s.lmul, (long long)r.channels));
  }
  w.open(fmt("for (int32_t batch = 0; batch < %lld; ++batch, input += %lld)", (long long)r.batches,
             (long long)r.in_image()));
  w.open(fmt("for (int32_t run = 0; run < %lld; ++run)", (long long)runs.size() / 2));
  w.line(fmt("const int8_t* row = input + %s_runs[2 * run];", name.c_str()));
  w.line(fmt("const int32_t rows = %s_runs[2 * run + 1];", name.c_str()));
  nearest_gather(w, name, r, s, vector, paired);
  nearest_repeat(w, r, s, vector, paired);
  w.close();
  w.close();
  w.close();
  out.source += w.str();
  return out;
}

// ---------------------------------------------------------------------------------------------
// Bilinear

struct Lerp {
  int64_t lower, upper, fraction;
};

// The table as rows, fraction 0 where both indices are equal (the same sums: see the top).
std::vector<Lerp> lerp_rows(const Array& table) {
  std::vector<Lerp> rows;
  for (size_t i = 0; i + 2 < table.values.size(); i += 3) {
    const int64_t lower = table.values[i], upper = table.values[i + 1];
    rows.push_back({lower, upper, lower == upper ? 0 : table.values[i + 2]});
  }
  return rows;
}

// max over the rows of |1024 - f| + |f|: what a row's weights can multiply an int8 value by.
int64_t weight_bound(const std::vector<Lerp>& rows) {
  int64_t bound = kOne;
  for (const Lerp& l : rows) bound = std::max(bound, std::abs(kOne - l.fraction) + std::abs(l.fraction));
  return bound;
}

// The input columns some output reads, in order; R holds them side by side.
struct Columns {
  std::vector<int64_t> slot;  // input column -> its place in R (-1: not read)
  std::vector<int32_t> runs;  // maximal runs of read columns: {first column * C, columns * C}
  int64_t count = 0;
};

Columns read_columns(const ResizeSpec& r, const std::vector<Lerp>& x_rows) {
  std::set<int64_t> read;
  for (const Lerp& l : x_rows) read.insert({l.lower, l.upper});
  Columns cols;
  cols.slot.assign(r.in_w, -1);
  for (int64_t x : read) {
    cols.slot[x] = cols.count++;
    if (x > 0 && cols.slot[x - 1] >= 0) {
      cols.runs.back() += (int32_t)r.channels;
    } else {
      cols.runs.insert(cols.runs.end(), {(int32_t)(x * r.channels), (int32_t)r.channels});
    }
  }
  return cols;
}

// oc_px's offsets into R: 16 bits while R is at most 64 KB.
int bilinear_index_bytes(const ResizeSpec& r) { return 4 * r.in_row() - 4 > UINT16_MAX ? 4 : 2; }

// Instructions per output row, roughly: px_oc ~17 per pixel and channel vector (pixels in pairs),
// oc_px ~24 per vector of elements.
std::string bilinear_loop_order(const ResizeSpec& r, int lmul) {
  const int64_t vlmax = r.vlen_bytes / 4 * lmul;
  const int64_t px_oc = 17 * r.out_w * vectors(r.channels, vlmax), oc_px = 24 * vectors(r.out_row(), vlmax);
  const int64_t table_bytes = r.out_row() * (2 * bilinear_index_bytes(r) + 2);
  return oc_px < px_oc && table_bytes <= kGatherTableBytes ? "oc_px" : "px_oc";
}

// A loop head. The portable bilinear loops keep clang's vectoriser off each loop (ew::kNoAutoVectorize:
// the wide form's int64 sums; with constant trip counts an outer loop could be vectorised too).
void open_loop(CWriter& w, const std::string& head, bool vector) {
  if (!vector) w.line(ew::kNoAutoVectorize);
  w.open(head);
}

// The vertical pass: R[0, count * C) from the rows at `row0` / `row1` with weights w0 / w1, and
// (pairs: when the step has two output rows) the second row's R after it, with weights v0 / v1.
void bilinear_vertical(CWriter& w, const std::string& name, const ResizeSpec& r, const Columns& cols,
                       const Schedule& s, bool vector, bool pairs) {
  const VType t = VType::with_lmul(32, s.lmul);
  const std::string l = t.lmul(), v = t.suffix(), type = t.type();
  w.line("int32_t* acc = (int32_t*)scratch;");
  if (pairs) w.line(fmt("int32_t* acc2 = acc + %lld;", (long long)(cols.count * r.channels)));
  if (cols.runs.size() == 2) {
    w.open("");
    w.line(fmt("const int8_t* a = row0 + %d;", cols.runs[0]));
    w.line(fmt("const int8_t* b = row1 + %d;", cols.runs[0]));
    w.line(fmt("const size_t length = %d;", cols.runs[1]));
  } else {
    open_loop(w, fmt("for (int32_t run = 0; run < %lld; ++run)", (long long)cols.runs.size() / 2), vector);
    w.line(fmt("const int8_t* a = row0 + %s_columns[2 * run];", name.c_str()));
    w.line(fmt("const int8_t* b = row1 + %s_columns[2 * run];", name.c_str()));
    w.line(fmt("const size_t length = %s_columns[2 * run + 1];", name.c_str()));
  }
  const std::string load_a = fmt("npu_rvv_load_s8_%s(a, vl)", l.c_str());
  const std::string load_b = fmt("npu_rvv_load_s8_%s(b, vl)", l.c_str());
  auto sum = [&](const std::string& x, const char* u0, const char* u1, const std::string& y) {
    return fmt("__riscv_vmacc_vx_%s(__riscv_vmul_vx_%s(%s, %s, vl), %s, %s, vl)", v.c_str(), v.c_str(), x.c_str(), u0,
               u1, y.c_str());
  };
  if (vector) {
    if (pairs) {  // both rows from one load of each input row
      w.open("if (pairs)");
      w.open("for (size_t n = length, vl; n > 0; n -= vl, a += vl, b += vl, acc += vl, acc2 += vl)");
      w.line(fmt("vl = __riscv_vsetvl_e32%s(n);", l.c_str()));
      w.line(fmt("const %s x = %s, y = %s;", type.c_str(), load_a.c_str(), load_b.c_str()));
      w.line(fmt("__riscv_vse32_v_%s(acc, %s, vl);", v.c_str(), sum("x", "w0", "w1", "y").c_str()));
      w.line(fmt("__riscv_vse32_v_%s(acc2, %s, vl);", v.c_str(), sum("x", "v0", "v1", "y").c_str()));
      w.close();
      w.close();
      w.open("else if (w1 == 0)");
    } else {
      w.open("if (w1 == 0)");
    }
    // one row (both indices equal, or fraction 0): R = 1024 * a
    w.open("for (size_t n = length, vl; n > 0; n -= vl, a += vl, acc += vl)");
    w.line(fmt("vl = __riscv_vsetvl_e32%s(n);", l.c_str()));
    w.line(fmt("__riscv_vse32_v_%s(acc, __riscv_vsll_vx_%s(%s, 10, vl), vl);", v.c_str(), v.c_str(), load_a.c_str()));
    w.close();
    w.close();
    w.open("else");
    w.open("for (size_t n = length, vl; n > 0; n -= vl, a += vl, b += vl, acc += vl)");
    w.line(fmt("vl = __riscv_vsetvl_e32%s(n);", l.c_str()));
    w.line(fmt("__riscv_vse32_v_%s(acc, %s, vl);", v.c_str(), sum(load_a, "w0", "w1", load_b).c_str()));
    w.close();
    w.close();
  } else {
    w.line(ew::kNoAutoVectorize);
    w.line("for (size_t i = 0; i < length; ++i) acc[i] = a[i] * w0 + b[i] * w1;");
    w.line("acc += length;");
    if (pairs) {
      w.open("if (pairs)");
      w.line(ew::kNoAutoVectorize);
      w.line("for (size_t i = 0; i < length; ++i) acc2[i] = a[i] * v0 + b[i] * v1;");
      w.close();
      w.line("acc2 += length;");
    }
  }
  w.close();
}

// px_oc's vectors of a pixel's channels: one (C <= VLMAX) or C / VLMAX of VLMAX channels each, with
// vl set once; 0 when C is neither (then each pixel has its own channel loop).
int64_t channel_vectors(const ResizeSpec& r, const Schedule& s) {
  const int64_t vlmax = r.vlen_bytes / 4 * s.lmul;
  return r.channels <= vlmax ? 1 : (r.channels % vlmax == 0 ? r.channels / vlmax : 0);
}

// A stretch of output pixels [start, start + periods * pixels) whose table repeats every `pixels`
// pixels, `slots` columns of R further on (integer ratios, and others whose 10-bit scale is exact,
// e.g. the interior of every 2x upsample). Its weights and relative columns become constants.
struct Period {
  int64_t start = 0, periods = 0, pixels = 0, slots = 0;
};

constexpr int64_t kMaxPeriod = 8;  // pixels unrolled in the periodic loop's body

Period find_period(const std::vector<Lerp>& x_rows, const Columns& cols) {
  const int64_t n = (int64_t)x_rows.size();
  Period best;
  for (int64_t p = 1; p <= std::min(kMaxPeriod, n / 2); ++p) {
    // shift[x]: how many slots pixel x + p lies past pixel x, or none when it is not a repeat
    auto shift = [&](int64_t x) -> int64_t {
      const Lerp &a = x_rows[x], &b = x_rows[x + p];
      const int64_t lower = cols.slot[b.lower] - cols.slot[a.lower], upper = cols.slot[b.upper] - cols.slot[a.upper];
      return a.fraction == b.fraction && lower == upper ? lower : INT64_MIN;
    };
    for (int64_t x = 0; x + p < n;) {  // maximal runs of repeats with one shift
      const int64_t q = shift(x);
      int64_t end = x + 1;
      while (q != INT64_MIN && end + p < n && shift(end) == q) ++end;
      const int64_t periods = q == INT64_MIN ? 0 : (end + p - x) / p;
      if (periods >= 2 && periods * p > best.periods * best.pixels) best = {x, periods, p, q};
      x = end;
    }
  }
  return best;
}

// The pixels of the table `col` (n of them), two vectors at a time: two pixels, or with several
// vectors a pixel, two of its vectors.
void table_pixels(CWriter& w, const std::string& name, int64_t n, int64_t c, int64_t vectors) {
  if (vectors > 1 && n > 0) {
    w.open(fmt("for (int32_t x = 0; x < %lld; ++x, col += 4, output += %lld)", (long long)n, (long long)c));
    w.open(fmt("for (size_t c = 0; c + vl < %lld; c += 2 * vl)", (long long)c));
    w.line(fmt("%s_store2(output + c, output + c + vl, %s_sum(line, col, c, vl), %s_sum(line, col, c + vl, vl), vl);",
               name.c_str(), name.c_str(), name.c_str()));
    w.close();
    if (vectors % 2) {
      w.line(fmt("%s_store(output + %lld - vl, %s_sum(line, col, %lld - vl, vl), vl);", name.c_str(), (long long)c,
                 name.c_str(), (long long)c));
    }
    w.close();
    return;
  }
  if (n > 1) {
    w.open(fmt("for (int32_t x = 1; x < %lld; x += 2, col += 8, output += %lld)", (long long)n, (long long)(2 * c)));
    w.line(fmt("%s_store2(output, output + %lld, %s_sum(line, col, 0, vl), %s_sum(line, col + 4, 0, vl), vl);",
               name.c_str(), (long long)c, name.c_str(), name.c_str()));
    w.close();
  }
  if (n % 2) {
    w.line(fmt("%s_store(output, %s_sum(line, col, 0, vl), vl);", name.c_str(), name.c_str()));
    w.line(fmt("col += 4, output += %lld;", (long long)c));
  }
}

// The periodic stretch: per period, each distinct column of R it reads loaded once, the pixels'
// sums with constant weights (a shift where the fraction is 0), stored two at a time.
void periodic_pixels(CWriter& w, const std::string& name, const ResizeSpec& r, const Schedule& s,
                     const std::vector<Lerp>& x_rows, const Columns& cols, const Period& period) {
  const VType t = VType::with_lmul(32, s.lmul);
  const std::string v = t.suffix();
  const long long c = r.channels;
  const int64_t base = cols.slot[x_rows[period.start].lower];
  std::vector<int64_t> loaded;  // relative slots, in the order of their vectors
  auto column = [&](int64_t slot) {
    const int64_t rel = slot - base;
    auto found = std::find(loaded.begin(), loaded.end(), rel);
    if (found == loaded.end()) {
      loaded.push_back(rel);
      return (int64_t)loaded.size() - 1;
    }
    return (int64_t)(found - loaded.begin());
  };
  std::vector<std::string> sums;
  for (int64_t j = 0; j < period.pixels; ++j) {
    const Lerp& l = x_rows[period.start + j];
    const int64_t a = column(cols.slot[l.lower]);
    if (l.fraction == 0) {
      sums.push_back(fmt("__riscv_vsll_vx_%s(c%lld, 10, vl)", v.c_str(), (long long)a));
      continue;
    }
    const int64_t b = column(cols.slot[l.upper]);
    sums.push_back(fmt("__riscv_vmacc_vx_%s(__riscv_vmul_vx_%s(c%lld, %lld, vl), %lld, c%lld, vl)", v.c_str(),
                       v.c_str(), (long long)a, (long long)(kOne - l.fraction), (long long)l.fraction, (long long)b));
  }
  w.open("");
  w.line(fmt("/* Pixels %lld to %lld: %lld periods of %lld pixels, %lld columns of R apart. */",
             (long long)period.start, (long long)(period.start + period.periods * period.pixels - 1),
             (long long)period.periods, (long long)period.pixels, (long long)period.slots));
  w.line(fmt("const int32_t* r = (const int32_t*)line + %lld;", (long long)(base * c)));
  w.open(fmt("for (int32_t k = 0; k < %lld; ++k, r += %lld, output += %lld)", (long long)period.periods,
             (long long)(period.slots * c), (long long)(period.pixels * c)));
  const bool several = channel_vectors(r, s) > 1;  // then the body runs once per vector of channels
  const char* at = several ? " + c" : "";
  if (several) w.open(fmt("for (size_t c = 0; c < %lld; c += vl)", c));
  for (size_t i = 0; i < loaded.size(); ++i) {
    w.line(fmt("const %s c%zu = __riscv_vle32_v_%s(r + %lld%s, vl);", t.type().c_str(), i, v.c_str(),
               (long long)(loaded[i] * c), at));
  }
  for (int64_t j = 0; j + 1 < period.pixels; j += 2) {
    w.line(fmt("%s_store2(output + %lld%s, output + %lld%s, %s, %s, vl);", name.c_str(), (long long)(j * c), at,
               (long long)((j + 1) * c), at, sums[j].c_str(), sums[j + 1].c_str()));
  }
  if (period.pixels % 2) {
    w.line(fmt("%s_store(output + %lld%s, %s, vl);", name.c_str(), (long long)((period.pixels - 1) * c), at,
               sums.back().c_str()));
  }
  if (several) w.close();
  w.close();
  w.close();
}

// The horizontal pass, px_oc: per output pixel {byte offsets of x0's and x1's columns in R, 1024 - fx,
// fx} from NAME_cols (the pixels outside the periodic stretch, when there is one).
void bilinear_pixels(CWriter& w, const std::string& name, const ResizeSpec& r, const Schedule& s, bool vector,
                     bool wide, const std::vector<Lerp>& x_rows, const Columns& cols, const Period& period) {
  const long long c = r.channels, out_w = r.out_w;
  if (out_w > period.periods * period.pixels) w.line(fmt("const int32_t* col = %s_cols;", name.c_str()));
  if (!vector) {
    open_loop(w, fmt("for (int32_t x = 0; x < %lld; ++x, col += 4, output += %lld)", out_w, c), vector);
    w.line("const int32_t* r0 = (const int32_t*)(line + col[0]);");
    w.line("const int32_t* r1 = (const int32_t*)(line + col[1]);");
    open_loop(w, fmt("for (int32_t c = 0; c < %lld; ++c)", c), vector);
    w.line(fmt("output[c] = %s_round(%s * col[2] + %s * col[3]);", name.c_str(), wide ? "(int64_t)r0[c]" : "r0[c]",
               wide ? "(int64_t)r1[c]" : "r1[c]"));
    w.close();
    w.close();
    return;
  }
  if (const int64_t vectors = channel_vectors(r, s)) {  // vl is set once, before the loops
    table_pixels(w, name, period.start, c, vectors);
    if (period.periods > 0) periodic_pixels(w, name, r, s, x_rows, cols, period);
    table_pixels(w, name, out_w - period.start - period.periods * period.pixels, c, vectors);
    return;
  }
  w.open(fmt("for (int32_t x = 0; x < %lld; ++x, col += 4, output += %lld)", out_w, c));
  w.line("size_t vl;");
  w.open(fmt("for (size_t c = 0; c < %lld; c += vl)", c));
  w.line(fmt("vl = __riscv_vsetvl_e32m%d(%lld - c);", s.lmul, c));
  w.line(fmt("%s_store(output + c, %s_sum(line, col, c, vl), vl);", name.c_str(), name.c_str()));
  w.close();
  w.close();
}

// The horizontal pass, oc_px: per output element, its byte offsets in R (x0's and x1's) and fx.
void bilinear_elements(CWriter& w, const std::string& name, const ResizeSpec& r, const Schedule& s, bool vector,
                       bool wide) {
  const std::string type = offset_type(bilinear_index_bytes(r));
  w.line(fmt("const %s* at0 = %s_at0;", type.c_str(), name.c_str()));
  w.line(fmt("const %s* at1 = %s_at1;", type.c_str(), name.c_str()));
  w.line(fmt("const int16_t* f = %s_fraction;", name.c_str()));
  if (!vector) {
    open_loop(w, fmt("for (int32_t i = 0; i < %lld; ++i)", (long long)r.out_row()), vector);
    w.line("const int32_t r0 = *(const int32_t*)(line + at0[i]), r1 = *(const int32_t*)(line + at1[i]);");
    w.line(fmt("output[i] = %s_round(%s * (1024 - f[i]) + %s * f[i]);", name.c_str(), wide ? "(int64_t)r0" : "r0",
               wide ? "(int64_t)r1" : "r1"));
    w.close();
    w.line(fmt("output += %lld;", (long long)r.out_row()));
    return;
  }
  const VType t = VType::with_lmul(32, s.lmul), h = t.at(16), index = t.at(8 * bilinear_index_bytes(r)).as_unsigned();
  const std::string v = t.suffix();
  auto gather = [&](const char* at) {
    return fmt("__riscv_vluxei%d_v_%s((const int32_t*)line, __riscv_vle%d_v_%s(%s, vl), vl)", index.sew, v.c_str(),
               index.sew, index.suffix().c_str(), at);
  };
  w.open(fmt("for (size_t n = %lld, vl; n > 0; n -= vl, at0 += vl, at1 += vl, f += vl, output += vl)",
             (long long)r.out_row()));
  w.line(fmt("vl = __riscv_vsetvl_e32%s(n);", t.lmul().c_str()));
  w.line(fmt("const %s r0 = %s;", t.type().c_str(), gather("at0").c_str()));
  w.line(fmt("const %s d = __riscv_vsub_vv_%s(%s, r0, vl);", t.type().c_str(), v.c_str(), gather("at1").c_str()));
  w.line(fmt("const %s fx = __riscv_vsext_vf2_%s(__riscv_vle16_v_%s(f, vl), vl);", t.type().c_str(), v.c_str(),
             h.suffix().c_str()));
  w.line("/* 1024 * r0 + fx * (r1 - r0) = r0 * (1024 - fx) + r1 * fx */");
  w.line(fmt("%s_store(output, __riscv_vmacc_vv_%s(__riscv_vsll_vx_%s(r0, 10, vl), fx, d, vl), vl);", name.c_str(),
             v.c_str(), v.c_str()));
  w.close();
}

// Those `body` (the kernel's function) calls, of: NAME_sum (px_oc's s for one pixel), NAME_store /
// NAME_store2 (the rounding and the int8 store of one or two vectors), or NAME_round (portable).
std::string bilinear_helpers(const std::string& name, const Schedule& s, bool vector, bool wide,
                             const std::string& body) {
  auto calls = [&](const char* helper) { return body.find(name + helper + "(") != std::string::npos; };
  CWriter w;
  if (!vector) {
    const char* type = wide ? "int64_t" : "int32_t";
    w.line("/* (s > 0 ? s + 2^19 : s - 2^19) / 2^20 (C division), clamped to int8. */");
    w.open(fmt("static inline int8_t %s_round(%s s)", name.c_str(), type));
    w.line(fmt("const %s q = (s > 0 ? s + (1 << 19) : s - (1 << 19)) / (1 << 20);", type));
    w.line("return (int8_t)(q < -128 ? -128 : (q > 127 ? 127 : q));");
    w.close();
    return w.str() + "\n";
  }
  const VType t = VType::with_lmul(32, s.lmul), h = t.at(16), b = t.at(8);
  const std::string v = t.suffix();
  if (calls("_sum")) {
    w.line("/* R[x0] * (1024 - fx) + R[x1] * fx at channel c, col = {x0's byte, x1's byte, 1024 - fx, fx}. */");
    w.open(fmt("static inline %s %s_sum(const int8_t* r, const int32_t* col, size_t c, size_t vl)", t.type().c_str(),
               name.c_str()));
    w.line(fmt("const %s s = __riscv_vmul_vx_%s(__riscv_vle32_v_%s((const int32_t*)(r + col[0]) + c, vl), col[2], vl);",
               t.type().c_str(), v.c_str(), v.c_str()));
    w.line(fmt("return __riscv_vmacc_vx_%s(s, col[3], __riscv_vle32_v_%s((const int32_t*)(r + col[1]) + c, vl), vl);",
               v.c_str(), v.c_str()));
    w.close().blank();
  }
  const std::string narrow = fmt("__riscv_vnclip_wx_%s", b.suffix().c_str());
  const std::string store = fmt("__riscv_vse8_v_%s", b.suffix().c_str());
  if (calls("_store")) {
    w.line("/* s / 2^20 rounded half away from zero, clamped to int8: s - 1 where negative, then rounded");
    w.line(" * half up (vnclip, RNU) and saturated by the two narrowing clips. */");
    w.open(fmt("static inline void %s_store(int8_t* out, %s s, size_t vl)", name.c_str(), t.type().c_str()));
    w.line(fmt("s = __riscv_vadd_vv_%s(s, __riscv_vsra_vx_%s(s, 31, vl), vl);", v.c_str(), v.c_str()));
    w.line(fmt("const %s half = __riscv_vnclip_wx_%s(s, 20, __RISCV_VXRM_RNU, vl);", h.type().c_str(),
               h.suffix().c_str()));
    w.line(fmt("%s(out, %s(half, 0, __RISCV_VXRM_RNU, vl), vl);", store.c_str(), narrow.c_str()));
    w.close().blank();
  }
  if (!calls("_store2")) return w.str();
  w.line(fmt("/* %s_store of two vectors, s at out and t at out2: each step of the rounding for both", name.c_str()));
  w.line(" * before the next (three vtype changes, not six). */");
  w.open(fmt("static inline void %s_store2(int8_t* out, int8_t* out2, %s s, %s t, size_t vl)", name.c_str(),
             t.type().c_str(), t.type().c_str()));
  w.line(fmt("s = __riscv_vadd_vv_%s(s, __riscv_vsra_vx_%s(s, 31, vl), vl);", v.c_str(), v.c_str()));
  w.line(fmt("t = __riscv_vadd_vv_%s(t, __riscv_vsra_vx_%s(t, 31, vl), vl);", v.c_str(), v.c_str()));
  w.line(fmt("const %s hs = __riscv_vnclip_wx_%s(s, 20, __RISCV_VXRM_RNU, vl);", h.type().c_str(), h.suffix().c_str()));
  w.line(fmt("const %s ht = __riscv_vnclip_wx_%s(t, 20, __RISCV_VXRM_RNU, vl);", h.type().c_str(), h.suffix().c_str()));
  w.line(fmt("const %s bs = %s(hs, 0, __RISCV_VXRM_RNU, vl), bt = %s(ht, 0, __RISCV_VXRM_RNU, vl);", b.type().c_str(),
             narrow.c_str(), narrow.c_str()));
  w.line(fmt("%s(out, bs, vl);", store.c_str()));
  w.line(fmt("%s(out2, bt, vl);", store.c_str()));
  w.close();
  return w.str() + "\n";
}

Emitted emit_bilinear(const KernelSpec& spec, const Arrays& arrays, const Schedule& s, bool vector) {
  const ResizeSpec r = read_spec(spec);
  const std::vector<Lerp> y_rows = lerp_rows(checked_table(spec, arrays, "y_lerp", r.out_h, r.in_h, 3));
  const std::vector<Lerp> x_rows = lerp_rows(checked_table(spec, arrays, "x_lerp", r.out_w, r.in_w, 3));
  const std::string& name = spec.name;
  // |s| + 2^19 must stay within int32 for the int32 sums (see the top).
  const bool wide = 128 * weight_bound(y_rows) * weight_bound(x_rows) + (1 << 19) > INT32_MAX;
  vector = vector && !wide;
  Emitted out = begin(spec, r, s, vector);
  if (r.empty()) return out;
  CWriter w;
  const Columns cols = read_columns(r, x_rows);
  if (8 * cols.count * r.channels > INT32_MAX) {
    throw SpecError(fmt("%s %s: two int32 rows of %lld columns x %lld channels pass 2^31 bytes", spec.kernel.c_str(),
                        name.c_str(), (long long)cols.count, (long long)r.channels));
  }
  // Steps of one output row, or of two consecutive ones that read the same two input rows (every
  // pair of a 2x upsample's interior): both their R rows come from one pass over the input rows.
  std::vector<std::vector<Lerp>> steps;
  for (size_t y = 0; y < y_rows.size(); ++y) {
    const Lerp& l = y_rows[y];
    const bool joins = !steps.empty() && steps.back().size() == 1 && steps.back()[0].lower == l.lower &&
                       steps.back()[0].upper == l.upper;
    if (joins) steps.back().push_back(l); else steps.push_back({l});
  }
  const bool pairs = steps.size() < y_rows.size();
  std::vector<int32_t> rows;
  for (const std::vector<Lerp>& step : steps) {
    const Lerp& l = step[0];
    rows.insert(rows.end(), {(int32_t)(l.lower * r.in_row()), (int32_t)(l.upper * r.in_row()),
                             (int32_t)(kOne - l.fraction), (int32_t)l.fraction});
    if (pairs) {
      const Lerp& m = step.back();
      rows.insert(rows.end(), {(int32_t)(kOne - m.fraction), (int32_t)m.fraction, (int32_t)step.size()});
    }
  }
  const int row_ints = pairs ? 7 : 4;
  out.source += table(name + "_rows",
                      pairs ? "Per step: byte offsets of rows y0 and y1 in the image, 1024 - fy and fy of its first "
                              "output row and of its last, its output rows (1 or 2)."
                            : "Per output row: byte offsets of rows y0 and y1 in the image, 1024 - fy, fy.",
                      rows, "int32_t", out.constant_bytes);
  if (cols.runs.size() > 2) {
    out.source += table(name + "_columns", "The runs of input columns R holds: {first byte in the row, bytes}.",
                        cols.runs, "int32_t", out.constant_bytes);
  }
  const bool elements = s.loop_order == "oc_px";
  Period period;  // px_oc's periodic stretch of output pixels (none: 0 periods)
  if (elements) {
    std::vector<int32_t> at0, at1, fraction;
    for (const Lerp& l : x_rows) {
      for (int64_t c = 0; c < r.channels; ++c) {
        at0.push_back((int32_t)(4 * (cols.slot[l.lower] * r.channels + c)));
        at1.push_back((int32_t)(4 * (cols.slot[l.upper] * r.channels + c)));
        fraction.push_back((int32_t)l.fraction);
      }
    }
    const std::string type = offset_type(bilinear_index_bytes(r));
    out.source += table(name + "_at0", "Per output element: byte offset in R of its x0 column's value.", at0, type,
                        out.constant_bytes);
    out.source += table(name + "_at1", "Per output element: byte offset in R of its x1 column's value.", at1, type,
                        out.constant_bytes);
    out.source += table(name + "_fraction", "Per output element: fx.", fraction, "int16_t", out.constant_bytes);
  } else {
    if (vector && channel_vectors(r, s)) period = find_period(x_rows, cols);
    std::vector<int32_t> pixels;
    for (int64_t x = 0; x < r.out_w; ++x) {
      if (x >= period.start && x < period.start + period.periods * period.pixels) continue;
      const Lerp& l = x_rows[x];
      pixels.insert(pixels.end(), {(int32_t)(4 * cols.slot[l.lower] * r.channels),
                                   (int32_t)(4 * cols.slot[l.upper] * r.channels), (int32_t)(kOne - l.fraction),
                                   (int32_t)l.fraction});
    }
    if (!pixels.empty()) {
      out.source += table(name + "_cols", "Per output pixel: byte offsets of columns x0 and x1 in R, 1024 - fx, fx.",
                          pixels, "int32_t", out.constant_bytes);
    }
  }
  if (wide) out.source += "/* Weights beyond TFLite's: int64 sums (see cpp/src/resize.cc). */\n";
  w.open(fmt("void %s(const int8_t* input, int8_t* output, int8_t* scratch)", name.c_str()));
  w.line(fmt("/* R: the int32 row a * (1024 - fy) + b * fy over the %lld columns read, in scratch. */",
             (long long)cols.count));
  if (vector && !elements && channel_vectors(r, s)) {
    w.line(fmt("const size_t vl = __riscv_vsetvl_e32m%d(%lld);", s.lmul,
               (long long)std::min(r.channels, r.vlen_bytes / 4 * s.lmul)));
  }
  open_loop(w, fmt("for (int32_t batch = 0; batch < %lld; ++batch, input += %lld)", (long long)r.batches,
                   (long long)r.in_image()), vector);
  open_loop(w, fmt("for (int32_t y = 0; y < %lld; ++y)", (long long)steps.size()), vector);
  w.line(fmt("const int32_t* row = %s_rows + %d * y;", name.c_str(), row_ints));
  w.line("const int8_t* row0 = input + row[0];");
  w.line("const int8_t* row1 = input + row[1];");
  w.line("const int32_t w0 = row[2], w1 = row[3];");
  if (pairs) {
    w.line("const int32_t v0 = row[4], v1 = row[5];");
    w.line("const int pairs = row[6] == 2;");
  }
  bilinear_vertical(w, name, r, cols, s, vector, pairs);
  if (pairs) {
    open_loop(w, "for (int32_t k = 0; k <= pairs; ++k)", vector);
    w.line(fmt("const int8_t* line = scratch + k * %lld;", (long long)(4 * cols.count * r.channels)));
  } else {
    w.open("");
    w.line("const int8_t* line = scratch;");
  }
  if (elements) {
    bilinear_elements(w, name, r, s, vector, wide);
  } else {
    bilinear_pixels(w, name, r, s, vector, wide, x_rows, cols, period);
  }
  w.close();
  w.close();
  w.close();
  w.close();
  out.source += bilinear_helpers(name, s, vector, wide, w.str()) + w.str();
  out.scratch_bytes = (pairs ? 2 : 1) * 4 * cols.count * r.channels;
  return out;
}

const bool registered_nearest =
    register_kernel(entry("resize_nearest", emit_nearest, nearest_loop_order, nearest_check_lmul));
const bool registered_bilinear = register_kernel(entry(
    "resize_bilinear", emit_bilinear, bilinear_loop_order, [](const ResizeSpec&, const Schedule&) { return ""; }));

}  // namespace

namespace ew {

void check_resize_spec(const KernelSpec& spec) { read_spec(spec); }

ResizeTables read_nearest_tables(const KernelSpec& spec, const Arrays& arrays) {
  const ResizeSpec r = read_spec(spec);
  ResizeTables t{r.batches, r.in_h, r.in_w, r.channels, r.out_h, r.out_w, {}, {}, false};
  for (int64_t v : checked_table(spec, arrays, "y_index", r.out_h, r.in_h, 1).values) t.y.push_back((int32_t)v);
  for (int64_t v : checked_table(spec, arrays, "x_index", r.out_w, r.in_w, 1).values) t.x.push_back((int32_t)v);
  return t;
}

ResizeTables read_bilinear_tables(const KernelSpec& spec, const Arrays& arrays) {
  const ResizeSpec r = read_spec(spec);
  ResizeTables t{r.batches, r.in_h, r.in_w, r.channels, r.out_h, r.out_w, {}, {}, false};
  const std::vector<Lerp> y_rows = lerp_rows(checked_table(spec, arrays, "y_lerp", r.out_h, r.in_h, 3));
  const std::vector<Lerp> x_rows = lerp_rows(checked_table(spec, arrays, "x_lerp", r.out_w, r.in_w, 3));
  for (const auto& [rows, flat] : {std::pair{&y_rows, &t.y}, std::pair{&x_rows, &t.x}}) {
    for (const Lerp& l : *rows) flat->insert(flat->end(), {(int32_t)l.lower, (int32_t)l.upper, (int32_t)l.fraction});
  }
  t.wide = 128 * weight_bound(y_rows) * weight_bound(x_rows) + (1 << 19) > INT32_MAX;
  return t;
}

}  // namespace ew
}  // namespace coral
