// "concat": npu_concat_s8 of kernels/ref/concat_pad_s8.c, concatenation with per-input requantisation.
//
// Input i is `outer` rows of size_i bytes; it goes to columns [offset_i, offset_i + size_i) of the
// output's rows of `total` bytes (for NHWC channel concats a row is a pixel). An input with the
// output's scale and zero point (multiplier 2^30, shift 1, the same zero point: the reference's
// identity test) is copied; any other is rescaled through a 256-byte table of npu_requantize over
// every input byte (ew::requantize_table, as requantize.cc), one vluxei8 per vector.
// Schedule: lmul (of the int8 vectors: 8 = 128 bytes per instruction at VLEN 128) and loop_order:
// "px_oc" copies row by row (unit-stride runs of size_i bytes), "oc_px" column by column (one
// strided load and store per column and up to VLEN / 8 * lmul rows). The default copies rows unless they
// are shorter than one vector register and columns take fewer instructions: QEMU counts a strided
// access as one instruction, but an in-order vector unit moves about one element per cycle for it,
// so strided columns are only worth it for short rows.
#include <algorithm>
#include <vector>

#include "elementwise.h"

namespace coral {
namespace {

using ew::VType;

using ew::ConcatInput;
using ew::ConcatSpec;

ConcatSpec read_spec(const KernelSpec& spec) { return ew::read_concat_spec(spec); }

using ew::Block;
using ew::block_of;

int64_t vectors(int64_t n, int64_t lanes) { return (n + lanes - 1) / lanes; }

// Loads (and stores) per loop order: rows x vectors per row, or columns x vectors per column.
int64_t row_vectors(const ConcatSpec& c, int64_t lanes) {
  int64_t total = 0;
  for (const ConcatInput& in : c.inputs) total += block_of(c, in).rows * vectors(block_of(c, in).cols, lanes);
  return total;
}

int64_t column_vectors(const ConcatSpec& c, int64_t lanes) {
  int64_t total = 0;
  for (const ConcatInput& in : c.inputs) {
    Block b = block_of(c, in);
    total += b.rows == 1 ? vectors(b.cols, lanes) : b.cols * vectors(b.rows, lanes);
  }
  return total;
}

std::string table_name(const KernelSpec& spec, size_t i) { return fmt("%s_table%zu", spec.name.c_str(), i); }

// The vector code that copies (or rescales) one input into the output.
class VectorCopy {
 public:
  VectorCopy(const KernelSpec& spec, const ConcatSpec& c, const Schedule& s)
      : spec_(spec), c_(c), t_(VType::with_lmul(8, s.lmul)) {}

  void emit(CWriter& w, size_t i, bool by_rows) {
    const ConcatInput& in = c_.inputs[i];
    Block b = block_of(c_, in);
    if (b.rows == 0 || b.cols == 0) return;
    w.open("").line(fmt("/* input %zu: %lld x %lld bytes -> output columns %lld.. */", i, (long long)b.rows,
                        (long long)b.cols, (long long)in.offset));
    if (by_rows || b.rows == 1) {
      emit_rows(w, i, b);
    } else {
      emit_columns(w, i, b);
    }
    w.close();
  }

 private:
  std::string u8() const { return t_.as_unsigned().suffix(); }

  // `dst_store` (a format with one %s) of the vl bytes `load` gives (a uint8 vector), rescaled
  // through input i's table unless it is an identity.
  std::string store(size_t i, const std::string& load, const std::string& dst_store) const {
    const std::string& s = t_.suffix();
    std::string value = c_.inputs[i].identity
                            ? fmt("__riscv_vreinterpret_v_%s_%s(%s)", u8().c_str(), s.c_str(), load.c_str())
                            : fmt("__riscv_vluxei8_v_%s(%s, %s, vl)", s.c_str(), table_name(spec_, i).c_str(), load.c_str());
    return fmt(dst_store.c_str(), value.c_str());
  }

  void emit_rows(CWriter& w, size_t i, const Block& b) {
    const std::string s = t_.suffix();
    w.line(fmt("const uint8_t* src = (const uint8_t*)input%zu;", i));
    w.line(fmt("int8_t* dst = output + %lld;", (long long)c_.inputs[i].offset));
    bool one_vector = b.cols <= spec_.target.register_bytes() * t_.lmul8 / 8;  // per row: vl is a constant, set once
    if (one_vector) w.line(fmt("const size_t vl = %lld;", (long long)b.cols));
    if (b.rows > 1) {
      w.open(fmt("for (int32_t r = 0; r < %lld; ++r, src += %lld, dst += %lld)", (long long)b.rows,
                 (long long)b.src_stride, (long long)b.dst_stride));
    }
    if (one_vector) {
      w.line(store(i, fmt("__riscv_vle8_v_%s(src, vl)", u8().c_str()), "__riscv_vse8_v_" + s + "(dst, %s, vl);"));
    } else {
      w.line("const uint8_t* s = src;").line("int8_t* d = dst;");
      w.open(fmt("for (size_t n = %lld, vl; n > 0; n -= vl, s += vl, d += vl)", (long long)b.cols));
      w.line(fmt("vl = __riscv_vsetvl_e8%s(n);", t_.lmul().c_str()));
      w.line(store(i, fmt("__riscv_vle8_v_%s(s, vl)", u8().c_str()), "__riscv_vse8_v_" + s + "(d, %s, vl);"));
      w.close();
    }
    if (b.rows > 1) w.close();
  }

  void emit_columns(CWriter& w, size_t i, const Block& b) {
    const std::string s = t_.suffix(), l = t_.lmul();
    w.open(fmt("for (int32_t k = 0; k < %lld; ++k)", (long long)b.cols));
    w.line(fmt("const uint8_t* s = (const uint8_t*)input%zu + k;", i));
    w.line(fmt("int8_t* d = output + %lld + k;", (long long)c_.inputs[i].offset));
    w.open(fmt("for (size_t n = %lld, vl; n > 0; n -= vl, s += vl * %lld, d += vl * %lld)", (long long)b.rows,
               (long long)b.src_stride, (long long)b.dst_stride));
    w.line(fmt("vl = __riscv_vsetvl_e8%s(n);", l.c_str()));
    std::string load = fmt("__riscv_vlse8_v_%s(s, %lld, vl)", u8().c_str(), (long long)b.src_stride);
    w.line(store(i, load, fmt("__riscv_vsse8_v_%s(d, %lld, %%s, vl);", s.c_str(), (long long)b.dst_stride)));
    w.close().close();
  }

  const KernelSpec& spec_;
  const ConcatSpec& c_;
  VType t_;
};

std::string signature(const KernelSpec& spec, const ConcatSpec& c) {
  std::string args;
  for (size_t i = 0; i < c.inputs.size(); ++i) args += fmt("const int8_t* input%zu, ", i);
  return fmt("void %s(%sint8_t* output, int8_t* scratch)", spec.name.c_str(), args.c_str());
}

std::string emit_scalar_copy(const ConcatSpec& c, size_t i, const std::string& table) {
  Block b = block_of(c, c.inputs[i]);
  CWriter w;
  w.open(fmt("for (int32_t r = 0; r < %lld; ++r)", (long long)b.rows));
  w.open(fmt("for (int32_t k = 0; k < %lld; ++k)", (long long)b.cols));
  std::string element = fmt("input%zu[r * %lld + k]", i, (long long)b.src_stride);
  w.line(fmt("output[%lld + r * %lld + k] = %s;", (long long)c.inputs[i].offset, (long long)b.dst_stride,
             c.inputs[i].identity ? element.c_str() : fmt("%s[(uint8_t)%s]", table.c_str(), element.c_str()).c_str()));
  w.close().close();
  return w.str();
}

Emitted emit(const KernelSpec& spec, const Arrays&, const Schedule& schedule, bool vector) {
  ConcatSpec c = read_spec(spec);
  Emitted out;
  out.source = c_prologue(spec, vector);
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    const ConcatInput& in = c.inputs[i];
    if (in.identity) continue;
    out.source += fmt("/* input %zu's rescale: the output for each input byte, indexed by the byte as unsigned. */\n", i);
    out.source += c_array("int8_t", table_name(spec, i), ew::concat_table(c, in));
    out.constant_bytes += 256;
  }
  CWriter w;
  w.open(signature(spec, c)).line("(void)scratch;");
  VectorCopy copy(spec, c, schedule);
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    if (vector) {
      copy.emit(w, i, schedule.loop_order == "px_oc");
    } else {
      w.line(emit_scalar_copy(c, i, table_name(spec, i)));
    }
  }
  w.close();
  out.source += "\n" + w.str();
  out.schedule = schedule;
  return out;
}

Schedule default_schedule(const KernelSpec& spec) {
  ConcatSpec c = read_spec(spec);
  Schedule s;
  s.lmul = 8;
  s.loop_order = "px_oc";
  const int64_t register_bytes = spec.target.register_bytes(), lanes = register_bytes * s.lmul;
  bool short_rows = std::any_of(c.inputs.begin(), c.inputs.end(), [&](const ConcatInput& in) {
    Block b = block_of(c, in);
    return b.rows > 1 && b.cols < register_bytes;
  });
  if (short_rows && column_vectors(c, lanes) < row_vectors(c, lanes)) s.loop_order = "oc_px";
  return s;
}

std::string validate(const KernelSpec& spec, const Schedule& schedule) {
  read_spec(spec);
  return ew::check_lmul_and_loop_order(schedule);
}

const bool registered = register_kernel({"concat", emit, default_schedule, validate});

}  // namespace
}  // namespace coral
