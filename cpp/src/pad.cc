// "pad": npu_pad_s8 of kernels/ref/concat_pad_s8.c, the constant pad of a 4-D row-major tensor
// (NHWC) with pad_value (the zero point), spec compiler/quant/reference/elementwise.py pad_s8.
//
// The output is written once, front to back: the input's rows (its longest runs that stay
// contiguous in the output) copied with vle8 / vse8, the padding between them stored from one
// register of pad_value (vmv.v.x, set once) with vse8. The levels of the tensor are simplified
// first: an axis without padding merges into the one outside it (a spatial pad of NHWC copies
// whole rows of W * C bytes; no padding at all is one flat copy), and an outer axis of extent
// 1 adds its padding to the next one. Then, with B_k / A_k the bytes of padding before / after
// one slab of level k (pad_before / pad_after times the bytes of one element of that level):
//
//     fill(sum_k B_k); Core(0); fill(sum_k A_k)
//     Core(row level) = copy(row)
//     Core(k)         = Core(k+1), then for each further index: fill(sum_{j>k} A_j + B_j), Core(k+1)
//
// i.e. the gap between two rows is one fill, whatever the levels that carry between them.
// Rows shorter than a register (a channel pad: 3 -> 4 channels) would cost a vector store or two
// each; when filling the whole output first and then copying the input in with the strided copy
// of move.h takes fewer vector instructions, the RVV code does that instead.
// Schedule: lmul (of the int8 vectors: 8 = 128 bytes per instruction at VLEN 128).
//
// Instructions per element, QEMU, default schedule (tests/coral/test_kernels_move.py benchmarks;
// in brackets kernels/ref's npu_pad_s8 built for the Coral NPU, then the portable C variant):
//   1-pixel border, 28x28x32 -> 30x30x32 (28 rows of 896 bytes, gaps of 64)    0.036  (7.0, 4.8)
//   3 -> 4 channels, 32x32x3 (fill, then 3 strided columns of 1024)            0.040  (14.1, 2.5)
//   ZeroPadding2D bottom / right by 1, 15x15x16 -> 16x16x16 (15 rows of 240)   0.052  (8.0, 4.6)
#include <vector>

#include "move.h"

namespace coral {
namespace {

using ew::VType;

struct Level {
  int64_t extent;         // input extent (of the row level: bytes)
  int64_t before, after;  // bytes of padding around each of the level's slabs
};

struct PadSpec {
  int64_t output_bytes;
  int64_t value;
  bool empty_input;              // nothing to copy: the output is all padding
  std::vector<Level> levels;     // outer to inner; the last is the row level
  std::vector<move::Axis> copy;  // the input's place in the output, as a strided copy
  int64_t first;                 // the output element of the input's first
};

PadSpec read_spec(const KernelSpec& spec) {
  PadSpec p;
  int64_t in[4], before[4], after[4], out[4];
  p.output_bytes = 1;
  p.empty_input = false;
  for (int d = 0; d < 4; ++d) {
    in[d] = ew::field(spec, fmt("in_dims_%d", d), 0, INT32_MAX);
    before[d] = ew::field(spec, fmt("pad_before_%d", d), 0, INT32_MAX);
    after[d] = ew::field(spec, fmt("pad_after_%d", d), 0, INT32_MAX);
    out[d] = in[d] + before[d] + after[d];
    p.empty_input |= in[d] == 0;
    if (out[d] > INT32_MAX || (p.output_bytes *= out[d]) > INT32_MAX) {
      throw SpecError(fmt("pad %s: the output has more than 2^31 - 1 elements", spec.name.c_str()));
    }
  }
  p.value = ew::field(spec, "pad_value", INT8_MIN, INT8_MAX);
  if (p.empty_input || p.output_bytes == 0) return p;
  int64_t element = 1, in_element = 1;  // bytes of one output / input element of level d
  std::vector<Level> levels(4);
  std::vector<move::Axis> axes(4);
  p.first = 0;
  for (int d = 3; d >= 0; --d) {
    levels[d] = {in[d], before[d] * element, after[d] * element};
    axes[d] = {in[d], in_element, element};
    p.first += before[d] * element;
    element *= out[d];
    in_element *= in[d];
  }
  p.copy = move::normalise(axes, "pad " + spec.name);
  // Simplify until nothing changes: an outer level of extent 1 hands its padding inwards; a
  // level without padding merges into the one outside it.
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t k = 0; k + 1 < levels.size() && !changed; ++k) {
      if (levels[k].extent == 1) {
        levels[k + 1].before += levels[k].before;
        levels[k + 1].after += levels[k].after;
        levels.erase(levels.begin() + k);
        changed = true;
      }
    }
    for (size_t k = 1; k < levels.size() && !changed; ++k) {
      if (levels[k].before == 0 && levels[k].after == 0) {
        levels[k - 1].extent *= levels[k].extent;
        levels.erase(levels.begin() + k);
        changed = true;
      }
    }
  }
  p.levels = levels;
  return p;
}

int64_t chunks(int64_t bytes, int64_t lanes) { return (bytes + lanes - 1) / lanes; }

// Vector loads and stores of the row-by-row code.
int64_t row_vectors(const PadSpec& p, int64_t lanes) {
  int64_t lead = 0, tail = 0, repeats = 1, total = 0;
  for (size_t k = 0; k < p.levels.size(); ++k) {
    lead += p.levels[k].before;
    tail += p.levels[k].after;
    if (k + 1 == p.levels.size()) break;
    int64_t gap = 0;
    for (size_t j = k + 1; j < p.levels.size(); ++j) gap += p.levels[j].before + p.levels[j].after;
    total += repeats * (p.levels[k].extent - 1) * chunks(gap, lanes);
    repeats *= p.levels[k].extent;
  }
  return total + repeats * 2 * chunks(p.levels.back().extent, lanes) + chunks(lead, lanes) + chunks(tail, lanes);
}

// Vector loads and stores of filling the whole output, then copying the input into it.
int64_t fill_then_copy_vectors(const PadSpec& p, int64_t lanes, int64_t register_bytes) {
  return chunks(p.output_bytes, lanes) +
         2 * move::vector_count(p.copy, move::vector_axis(p.copy, lanes, register_bytes), lanes);
}

// Emits the pad's code (the file comment's); in the row-by-row code `src` / `dst` stay at the
// next byte to read / write.
// `calls` (a CPU SIMD family's; vector false): fill and copy through the family's functions
// FILL(dst, value, bytes) and COPY(dst, src, bytes) instead of loops.
class PadWriter {
 public:
  PadWriter(const Target& target, const PadSpec& p, const Schedule& s, bool vector, const ew::MoveCalls* calls = nullptr)
      : target_(target), p_(p), t_(VType::with_lmul(8, s.lmul)), lanes_(target.register_bytes() * s.lmul),
        vector_(vector), calls_(calls) {}

  std::string body(const std::string& name) {
    w_.open(fmt("void %s(const int8_t* input, int8_t* output, int8_t* scratch)", name.c_str()));
    w_.line("(void)scratch;");
    if (p_.output_bytes > 0) {
      if (vector_) {
        w_.line(fmt("const %s fill = __riscv_vmv_v_x_%s(%lld, __riscv_vsetvlmax_e8%s());", t_.type().c_str(),
                    t_.suffix().c_str(), (long long)p_.value, t_.lmul().c_str()));
      }
      if (p_.empty_input) {
        w_.line("(void)input;").line("int8_t* dst = output;");
        fill(p_.output_bytes);
      } else if (vector_ && p_.levels.back().extent < target_.register_bytes() &&
                 fill_then_copy_vectors(p_, lanes_, target_.register_bytes()) < row_vectors(p_, lanes_)) {
        w_.line("/* Short rows: the whole output filled, then the input copied in. */");
        w_.line("int8_t* dst = output;");
        fill(p_.output_bytes);
        move::emit_copy(w_, target_, p_.copy, t_, vector_, "input", fmt("output + %lld", (long long)p_.first));
      } else {
        int64_t lead = 0, tail = 0;
        for (const Level& level : p_.levels) lead += level.before, tail += level.after;
        w_.line("const int8_t* src = input;").line("int8_t* dst = output;");
        fill(lead);
        core(0);
        fill(tail);
      }
    }
    w_.close();
    return w_.str();
  }

 private:
  void core(size_t k) {
    const Level& level = p_.levels[k];
    if (k + 1 == p_.levels.size()) {
      copy(level.extent);
      return;
    }
    int64_t gap = 0;
    for (size_t j = k + 1; j < p_.levels.size(); ++j) gap += p_.levels[j].before + p_.levels[j].after;
    if (!vector_ && !calls_) w_.line(ew::kNoAutoVectorize);
    w_.open(fmt("for (int32_t n%zu = %lld;;)", k, (long long)level.extent));  // extent >= 2 here
    core(k + 1);
    w_.line(fmt("if (--n%zu == 0) break;", k));
    fill(gap);
    w_.close();
  }

  // `bytes` of pad_value at dst, which moves past them.
  void fill(int64_t bytes) {
    if (bytes == 0) return;
    if (calls_) {
      w_.line(fmt("%s(dst, %lld, %lld);", calls_->fill.c_str(), (long long)p_.value, (long long)bytes));
    } else if (vector_) {
      move::emit_chunks(w_, bytes, lanes_, "", 0, "dst", 1, [&](const std::string&, const std::string& to, int64_t vl) {
        return fmt("__riscv_vse8_v_%s(%s, fill, %lld);", t_.suffix().c_str(), to.c_str(), (long long)vl);
      });
    } else {
      w_.line(ew::kNoAutoVectorize);
      w_.line(fmt("for (int32_t k = 0; k < %lld; ++k) dst[k] = %lld;", (long long)bytes, (long long)p_.value));
    }
    w_.line(fmt("dst += %lld;", (long long)bytes));
  }

  // `bytes` from src to dst, which both move past them.
  void copy(int64_t bytes) {
    if (calls_) {
      w_.line(fmt("%s(dst, src, %lld);", calls_->copy.c_str(), (long long)bytes));
    } else if (vector_) {
      const std::string s = t_.suffix();
      move::emit_chunks(w_, bytes, lanes_, "src", 1, "dst", 1,
                        [&](const std::string& from, const std::string& to, int64_t vl) {
                          return fmt("__riscv_vse8_v_%s(%s, __riscv_vle8_v_%s(%s, %lld), %lld);", s.c_str(), to.c_str(),
                                     s.c_str(), from.c_str(), (long long)vl, (long long)vl);
                        });
    } else {
      w_.line(ew::kNoAutoVectorize);
      w_.line(fmt("for (int32_t k = 0; k < %lld; ++k) dst[k] = src[k];", (long long)bytes));
    }
    w_.line(fmt("src += %lld;", (long long)bytes)).line(fmt("dst += %lld;", (long long)bytes));
  }

  const Target& target_;
  const PadSpec& p_;
  VType t_;
  int64_t lanes_;
  bool vector_;
  const ew::MoveCalls* calls_;
  CWriter w_;
};

Emitted emit(const KernelSpec& spec, const Arrays&, const Schedule& schedule, bool vector) {
  PadSpec p = read_spec(spec);
  std::string levels;
  for (const Level& level : p.levels) {
    levels += fmt("%s%lld [+%lld, +%lld]", levels.empty() ? "" : ", ", (long long)level.extent,
                  (long long)level.before, (long long)level.after);
  }
  Emitted out;
  out.source = c_prologue(spec, vector) +
               (p.levels.empty() ? "" : "/* levels, outer to inner: input extent [bytes of padding before, after] */\n/* " +
                                            levels + " */\n") +
               PadWriter(spec.target, p, schedule, vector).body(spec.name);
  out.schedule = schedule;
  return out;
}

const bool registered = register_kernel(ew::lmul_only_entry("pad", emit, [](const KernelSpec& spec) { read_spec(spec); }));

}  // namespace

namespace ew {

void check_pad_spec(const KernelSpec& spec) { read_spec(spec); }

std::string pad_with_calls(const KernelSpec& spec, const MoveCalls& calls) {
  const PadSpec p = read_spec(spec);
  return PadWriter(spec.target, p, Schedule{}, false, &calls).body(spec.name);
}

}  // namespace ew
}  // namespace coral
