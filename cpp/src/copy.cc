// "copy": npu_copy_s8 of kernels/ref/move_s8.c, the int8 strided copy behind Slice, Split,
// DepthToSpace / SpaceToDepth and transposes (plans: compiler/quant/reference/move.py), and the
// strided copy emitter of move.h, which pad.cc shares.
//
// The shape and strides are compile-time constants, so the loops are specialised: axes of extent
// 1 vanish, axes contiguous in both tensors merge, and one axis becomes the vector axis, moved by
// one load and one store per vector of up to VLEN / 8 * lmul bytes (VLEN 128, LMUL 8: 128; full vectors in a loop
// with a constant vl, then the rest), vle8 / vse8 where its stride is 1 and vlse8 / vsse8
// otherwise; the others are plain loops around it, in the output's order, the innermost unrolled
// 4 times when it is long. Every output element is written once (SpecError otherwise), so any loop
// order gives the reference's bytes.
// Which axis: the one contiguous in both tensors when it holds at least one register's worth of
// bytes (VLEN / 8), else the one needing the fewest vector instructions. QEMU counts a strided access as
// one instruction, but an in-order vector unit moves about one element per cycle for it (as
// concat.cc notes), so a contiguous run of a register or more stays the vector axis even where
// strided columns would take fewer instructions (the channel slice below: 784 runs, not 224
// strided columns).
// Schedule: lmul (of the int8 vectors).
//
// Instructions per element, QEMU, default schedule (tests/coral/test_kernels_move.py benchmarks;
// in brackets kernels/ref's npu_copy_s8 built for the Coral NPU, then the portable C variant):
//   channel slice 28x28x96 -> channels 32..63 (784 runs of 32 bytes)        0.141  (1.04, 5.3)
//   spatial slice 28x28x96 -> rows and columns 7..20 (14 rows of 1344)       0.037  (0.40, 5.0)
//   DepthToSpace block 2, 14x14x64 -> 28x28x16, DCR (392 runs of 32)         0.129  (1.10, 5.3)
//     the same, CRD (784 strided loads of 16, stride 4)                      0.254  (8.0, 2.2)
//   SpaceToDepth block 2, 28x28x16 -> 14x14x64 (392 runs of 32)              0.129  (1.32, 5.3)
//   transpose NHWC -> NCHW, 8x8x16 (16 strided loads of 64, stride 16)      0.065  (6.5, 5.1)
#include "move.h"

#include <algorithm>
#include <tuple>
#include <vector>

namespace coral {
namespace move {

std::vector<Axis> normalise(const std::vector<Axis>& axes, const std::string& what) {
  std::vector<Axis> by_out;
  for (const Axis& a : axes) {
    if (a.extent > 1) by_out.push_back(a);
  }
  std::stable_sort(by_out.begin(), by_out.end(), [](const Axis& a, const Axis& b) { return a.out_stride < b.out_stride; });
  int64_t reach = 0;  // the largest offset the axes so far write
  for (const Axis& a : by_out) {
    if (a.out_stride <= reach) {
      throw SpecError(fmt("%s: writes may overlap (output stride %lld within the %lld elements the smaller strides "
                          "reach)", what.c_str(), (long long)a.out_stride, (long long)reach));
    }
    reach += (a.extent - 1) * a.out_stride;
  }
  std::vector<Axis> merged;
  for (auto a = by_out.rbegin(); a != by_out.rend(); ++a) {
    if (!merged.empty()) {
      Axis& outer = merged.back();
      if (outer.in_stride == a->extent * a->in_stride && outer.out_stride == a->extent * a->out_stride) {
        outer = {outer.extent * a->extent, a->in_stride, a->out_stride};
        continue;
      }
    }
    merged.push_back(*a);
  }
  if (merged.empty()) merged.push_back({1, 1, 1});
  return merged;
}

int64_t vector_count(const std::vector<Axis>& axes, size_t axis, int64_t lanes) {
  int64_t count = (axes[axis].extent + lanes - 1) / lanes;
  for (size_t k = 0; k < axes.size(); ++k) {
    if (k != axis) count *= axes[k].extent;
  }
  return count;
}

size_t vector_axis(const std::vector<Axis>& axes, int64_t lanes, int64_t register_bytes) {
  for (size_t k = 0; k < axes.size(); ++k) {
    if (axes[k].in_stride == 1 && axes[k].out_stride == 1 && axes[k].extent >= register_bytes) return k;
  }
  // Fewest vectors; then the most unit-stride sides, the longest axis, the innermost.
  auto rank = [&](size_t k) {
    const Axis& a = axes[k];
    int unit = (a.in_stride == 1) + (a.out_stride == 1);
    return std::make_tuple(vector_count(axes, k, lanes), -unit, -a.extent, -static_cast<int64_t>(k));
  };
  size_t best = 0;
  for (size_t k = 1; k < axes.size(); ++k) {
    if (rank(k) < rank(best)) best = k;
  }
  return best;
}

void emit_chunks(CWriter& w, int64_t count, int64_t lanes, const std::string& src, int64_t src_step,
                 const std::string& dst, int64_t dst_step,
                 const std::function<std::string(const std::string&, const std::string&, int64_t)>& move) {
  auto at = [](const std::string& pointer, int64_t offset) {
    return offset == 0 ? pointer : fmt("%s + %lld", pointer.c_str(), (long long)offset);
  };
  const int64_t full = count / lanes, rest = count % lanes;
  if (full == 1) w.line(move(src, dst, lanes));
  if (full > 1) {
    w.open(fmt("for (int32_t c = 0; c < %lld; ++c)", (long long)full));
    w.line(move(fmt("%s + c * %lld", src.c_str(), (long long)(lanes * src_step)),
                fmt("%s + c * %lld", dst.c_str(), (long long)(lanes * dst_step)), lanes));
    w.close();
  }
  if (rest > 0) w.line(move(at(src, full * lanes * src_step), at(dst, full * lanes * dst_step), rest));
}

void emit_copy(CWriter& w, const Target& target, const std::vector<Axis>& axes, const ew::VType& t, bool vector,
               const std::string& input, const std::string& output, const ew::MoveCalls* calls) {
  const int64_t lanes = target.register_bytes() * t.lmul8 / 8;
  const size_t inner = vector ? vector_axis(axes, lanes, target.register_bytes()) : axes.size() - 1;
  std::string src = input, dst = output;
  int depth = 0;
  const size_t innermost_loop = inner + 1 == axes.size() ? axes.size() - 2 : axes.size() - 1;
  for (size_t k = 0; k < axes.size(); ++k) {  // a loop per axis but the inner one, in the output's order
    if (k == inner) continue;
    const Axis& a = axes[k];
    if (!vector && !calls) w.line(ew::kNoAutoVectorize);
    // Around one vector move, unrolling saves the loop's own instructions (3 of 6 per run); clang
    // unrolls short loops of constant trip count entirely by itself.
    if (vector && k == innermost_loop && axes[inner].extent <= lanes && a.extent > 16) {
      w.line("#pragma clang loop unroll_count(4)");
    }
    w.open(fmt("for (int32_t i%d = 0; i%d < %lld; ++i%d)", depth, depth, (long long)a.extent, depth));
    w.line(fmt("const int8_t* src%d = %s + i%d * %lld;", depth, src.c_str(), depth, (long long)a.in_stride));
    w.line(fmt("int8_t* dst%d = %s + i%d * %lld;", depth, dst.c_str(), depth, (long long)a.out_stride));
    src = fmt("src%d", depth);
    dst = fmt("dst%d", depth);
    ++depth;
  }
  const Axis& a = axes[inner];
  if (calls && a.in_stride == 1 && a.out_stride == 1) {
    w.line(fmt("%s(%s, %s, %lld);", calls->copy.c_str(), dst.c_str(), src.c_str(), (long long)a.extent));
  } else if (!vector) {
    if (!calls) w.line(ew::kNoAutoVectorize);
    w.open(fmt("for (int32_t k = 0; k < %lld; ++k)", (long long)a.extent));
    w.line(fmt("%s[k * %lld] = %s[k * %lld];", dst.c_str(), (long long)a.out_stride, src.c_str(), (long long)a.in_stride));
    w.close();
  } else {
    const std::string s = t.suffix();
    emit_chunks(w, a.extent, lanes, src, a.in_stride, dst, a.out_stride,
                [&](const std::string& from, const std::string& to, int64_t vl) {
                  std::string load =
                      a.in_stride == 1
                          ? fmt("__riscv_vle8_v_%s(%s, %lld)", s.c_str(), from.c_str(), (long long)vl)
                          : fmt("__riscv_vlse8_v_%s(%s, %lld, %lld)", s.c_str(), from.c_str(), (long long)a.in_stride,
                                (long long)vl);
                  return a.out_stride == 1
                             ? fmt("__riscv_vse8_v_%s(%s, %s, %lld);", s.c_str(), to.c_str(), load.c_str(), (long long)vl)
                             : fmt("__riscv_vsse8_v_%s(%s, %lld, %s, %lld);", s.c_str(), to.c_str(),
                                   (long long)a.out_stride, load.c_str(), (long long)vl);
                });
  }
  for (int k = 0; k < depth; ++k) w.close();
}

}  // namespace move

namespace {

using move::Axis;

constexpr int kDims = 6;  // NPU_COPY_MAX_DIMS

struct CopySpec {
  std::vector<Axis> axes;  // normalised (move::normalise)
  int64_t in_offset;       // the input element the copy starts at
};

CopySpec read_spec(const KernelSpec& spec) {
  std::vector<Axis> axes;
  int64_t in_offset = ew::field(spec, "in_offset", 0, INT32_MAX);
  int64_t elements = 1, in_span = in_offset, out_span = 0;
  for (int d = 0; d < kDims; ++d) {
    Axis a{ew::field(spec, fmt("shape_%d", d), 1, INT32_MAX), ew::field(spec, fmt("in_stride_%d", d), 0, INT32_MAX),
           ew::field(spec, fmt("out_stride_%d", d), 0, INT32_MAX)};
    elements *= a.extent;  // < 2^62: each factor checked below 2^31 before the next
    in_span += (a.extent - 1) * a.in_stride;
    out_span += (a.extent - 1) * a.out_stride;
    if (elements > INT32_MAX || in_span > INT32_MAX || out_span > INT32_MAX) {
      throw SpecError(fmt("copy %s: more than 2^31 - 1 elements, or an offset beyond int32", spec.name.c_str()));
    }
    axes.push_back(a);
  }
  return {move::normalise(axes, "copy " + spec.name), in_offset};
}

// The kernel's function: RVV or portable as `vector` says, or with a CPU SIMD family's `calls`.
std::string copy_function(const KernelSpec& spec, const Schedule& schedule, bool vector, const ew::MoveCalls* calls) {
  CopySpec copy = read_spec(spec);
  std::string shape;
  for (const Axis& a : copy.axes) {
    shape += fmt("%s%lld (%lld, %lld)", shape.empty() ? "" : ", ", (long long)a.extent, (long long)a.in_stride,
                 (long long)a.out_stride);
  }
  CWriter w;
  w.line("/* axes, outer to inner: extent (input stride, output stride): " + shape + " */");
  w.open(fmt("void %s(const int8_t* input, int8_t* output, int8_t* scratch)", spec.name.c_str()));
  w.line("(void)scratch;");
  std::string input = copy.in_offset ? fmt("(input + %lld)", (long long)copy.in_offset) : "input";
  move::emit_copy(w, spec.target, copy.axes, ew::VType::with_lmul(8, schedule.lmul), vector, input, "output", calls);
  w.close();
  return w.str();
}

Emitted emit(const KernelSpec& spec, const Arrays&, const Schedule& schedule, bool vector) {
  Emitted out;
  out.source = c_prologue(spec, vector) + copy_function(spec, schedule, vector, nullptr);
  out.schedule = schedule;
  return out;
}

const bool registered =
    register_kernel(ew::lmul_only_entry("copy", emit, [](const KernelSpec& spec) { read_spec(spec); }));

}  // namespace

namespace ew {

void check_copy_spec(const KernelSpec& spec) { read_spec(spec); }

std::string copy_with_calls(const KernelSpec& spec, const MoveCalls& calls) {
  return copy_function(spec, Schedule{}, false, &calls);
}

}  // namespace ew
}  // namespace coral
