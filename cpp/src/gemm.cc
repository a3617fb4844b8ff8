// The channel GEMM engine (mac_common.h): pointwise 1x1 convolutions and dense layers.
//
// Output channels are vectorised (oc_tile lanes of int32 accumulators at LMUL lmul), px_tile pixels
// accumulate at once so each weight vector load serves px_tile vwmacc.vx, each fed one scalar
// input byte. Weights are packed at compile time as [channel tile][ci][lane], pre-widened to int16
// (weight_pack "i16") or widened in the loop ("i8"); the input zero point is folded into the bias.
// A full-width tile (oc_tile = the int32 lanes at lmul) with int16 weights loads two input
// channels' weight vectors with one whole-register load when the registers allow.
// A grouped 1x1 convolution is one such GEMM per group (the group loop outermost), on the group's
// slice of each pixel's input and output channels.
// Schedule: oc_tile, px_tile, lmul, unroll (of the ci loop), loop_order, weight_pack.
#include <algorithm>
#include <functional>
#include <limits>

#include "mac_common.h"

namespace coral::mac {

namespace {

constexpr const char* kInline = "static inline __attribute__((always_inline))";
// Input channels unrolled by default: the whole reduction up to this many (no loop at all), measured
// best for MobileNet's 32..256-channel pointwise layers (longer blocks start to cost more).
constexpr int64_t kDefaultUnroll = 64;

// bias[co] - zp * sum_ci w[co][ci], modulo 2^32 (see wrap_int32): the inner loop then multiplies
// raw int8 inputs.
std::vector<int32_t> fold_zero_point(const GemmShape& shape, const std::vector<int32_t>& weight,
                                     const std::vector<int32_t>& bias) {
  std::vector<int32_t> folded(shape.out_stride());
  for (int64_t co = 0; co < shape.out_stride(); ++co) {
    int64_t weight_sum = 0;
    for (int64_t ci = 0; ci < shape.in_c; ++ci) weight_sum += weight[co * shape.in_c + ci];
    folded[co] = wrap_int32(bias[co] - int64_t{shape.input_zero_point} * weight_sum);
  }
  return folded;
}

// [group][channel tile][ci][lane]: a tile's weights for one input channel are one vector load.
std::vector<int32_t> pack_weights(const GemmShape& shape, const std::vector<int32_t>& weight, int oc_tile) {
  std::vector<int32_t> packed;
  packed.reserve(weight.size());
  for (int64_t first = 0; first < shape.out_stride(); first += shape.out_c) {  // each group's channels
    for (int64_t co0 = first; co0 < first + shape.out_c; co0 += oc_tile) {
      int64_t lanes = std::min<int64_t>(oc_tile, first + shape.out_c - co0);
      for (int64_t ci = 0; ci < shape.in_c; ++ci) {
        for (int64_t lane = 0; lane < lanes; ++lane) packed.push_back(weight[(co0 + lane) * shape.in_c + ci]);
      }
    }
  }
  return packed;
}

// Vector registers the weight vector of one input channel needs (int8 load + int16 widened copy).
int weight_registers(const Target& target, const Schedule& s) {
  VectorShape v = vector_shape(target, s.lmul);
  return v.int16_registers() + (s.weight_pack == "i8" ? v.int8_registers() : 0);
}

// Whether full-width tiles load two input channels' int16 weights at once (one whole-register load of
// lmul registers, halves taken with vget): needs a register group of two halves, and room beside the
// accumulators for it and one more weight vector (with none to spare, the scheduler hoists the next
// load and the register allocator spills).
bool paired_weight_loads(const Target& target, const Schedule& s) {
  return s.weight_pack == "i16" && s.lmul >= 2 && s.oc_tile == target.int32_lanes(s.lmul) &&
         s.px_tile * s.lmul + 3 * weight_registers(target, s) <= target.vector_registers;
}

// A run of output channels computed together: its width (the vl) and how its weights load.
struct Tile {
  int64_t width;
  bool paired;
};

// One GEMM kernel being emitted.
class GemmEmitter {
 public:
  GemmEmitter(const KernelSpec& spec, const GemmShape& shape, const Requant& requant, const Schedule& schedule,
              bool vector)
      : spec_(spec), shape_(shape), requant_(requant), s_(schedule), v_(vector_shape(spec.target, schedule.lmul)),
        vector_(vector), constants_(spec.name) {}

  Emitted emit(const std::vector<int32_t>& weight, const std::vector<int32_t>& bias) {
    weight_type_ = s_.weight_pack == "i8" ? "int8_t" : "int16_t";
    weights_ = constants_.add(weight_type_, "weight", pack_weights(shape_, weight, s_.oc_tile));
    bias_ = constants_.add("int32_t", "bias", fold_zero_point(shape_, weight, bias));
    names_ = add_requant_constants(constants_, requant_, vector_);
    CWriter c;
    for (const Tile& tile : {full_tile(), tail_tile()}) {
      if (tile.width == 0) continue;
      emit_block(c, tile, s_.px_tile);
      if (tail_pixels() > 0) emit_block(c, tile, tail_pixels());
    }
    emit_entry(c);
    return {translation_unit(spec_, vector_, constants_, c.str()), 0, constants_.bytes(), s_};
  }

 private:
  int64_t full_tiles_end() const { return shape_.out_c - shape_.out_c % s_.oc_tile; }
  Tile full_tile() const { return {full_tiles_end() > 0 ? s_.oc_tile : 0, vector_ && paired_weight_loads(spec_.target, s_)}; }
  Tile tail_tile() const { return {shape_.out_c % s_.oc_tile, false}; }
  int tail_pixels() const { return static_cast<int>(shape_.pixels % s_.px_tile); }
  int64_t full_pixels() const { return shape_.pixels - tail_pixels(); }
  std::string block_name(const Tile& tile, int pixels) const {
    return fmt("%s_c%lld_px%d", spec_.name.c_str(), (long long)tile.width, pixels);
  }
  std::string acc_type() const { return "vint32" + v_.s32 + "_t"; }

  // `pixels` pixels x one tile of channels: accumulate over ci, requantise, store. x: first pixel's
  // inputs, w: the tile's packed weights, y: first pixel's outputs at channel co0.
  void emit_block(CWriter& c, const Tile& tile, int pixels) {
    c.open(fmt("%s void %s(const int8_t* x, const %s* w, int32_t co0, int8_t* y)", kInline,
               block_name(tile, pixels).c_str(), weight_type_.c_str()));
    c.line(fmt("const size_t vl = %lld;", (long long)tile.width));
    if (vector_) {
      // Opaque to the optimiser: otherwise it hoists this tile's weight and constant vectors out of the
      // pixel loop, and they do not fit in the registers the accumulators leave (spill traffic).
      c.line("__asm__ volatile(\"\" : \"+r\"(w), \"+r\"(co0));");
    }
    emit_accumulator_init(c, tile, pixels);
    int64_t main = shape_.in_c - shape_.in_c % s_.unroll;
    if (main > 0) {
      c.open(fmt("for (int32_t ci = 0; ci < %lld; ci += %d, x += %d, w += %lld)", (long long)main, s_.unroll,
                 s_.unroll, (long long)(s_.unroll * tile.width)));
      emit_steps(c, tile, pixels, s_.unroll);
      c.close();
    }
    emit_steps(c, tile, pixels, static_cast<int>(shape_.in_c % s_.unroll));
    if (vector_) {
      emit_vector_requant(c, pixels);
    } else {
      emit_scalar_requant(c, pixels);
    }
    c.close().blank();
  }

  void emit_accumulator_init(CWriter& c, const Tile& tile, int pixels) {
    if (vector_) {
      c.line(fmt("%s acc0 = __riscv_vle32_v_i32%s(%s + co0, vl);", acc_type().c_str(), v_.s32.c_str(), bias_.c_str()));
      for (int p = 1; p < pixels; ++p) c.line(fmt("%s acc%d = acc0;", acc_type().c_str(), p));
      return;
    }
    c.line(fmt("uint32_t acc[%d][%lld]; /* wrap-around sums, as the vector code's (the bias is folded mod 2^32) */",
               pixels, (long long)tile.width));
    c.open("for (size_t l = 0; l < vl; ++l)");
    for (int p = 0; p < pixels; ++p) c.line(fmt("acc[%d][l] = (uint32_t)%s[co0 + l];", p, bias_.c_str()));
    c.close();
  }

  std::string input(int p, int k) const { return fmt("x[%lld]", (long long)(p * shape_.in_stride() + k)); }

  // Input channels 0..count-1 from x and w: in pairs when the tile pairs its weight loads.
  void emit_steps(CWriter& c, const Tile& tile, int pixels, int count) {
    for (int k = 0; k < count; ++k) {
      if (tile.paired && k + 1 < count) {
        emit_pair_step(c, tile, pixels, k);
        ++k;
      } else {
        emit_step(c, tile, pixels, k);
      }
    }
  }

  // Input channel k: one weight vector, one vwmacc per pixel.
  void emit_step(CWriter& c, const Tile& tile, int pixels, int k) {
    std::string w = k == 0 ? "w" : fmt("w + %lld", (long long)(k * tile.width));
    if (!vector_) {
      c.open("for (size_t l = 0; l < vl; ++l)");
      c.line(fmt("const int32_t wk = (%s)[l];", w.c_str()));
      for (int p = 0; p < pixels; ++p) c.line(fmt("acc[%d][l] += (uint32_t)(%s * wk);", p, input(p, k).c_str()));
      c.close();
      return;
    }
    c.open("");
    if (s_.weight_pack == "i8") {
      c.line(fmt("const vint16%s_t wk = __riscv_vsext_vf2_i16%s(__riscv_vle8_v_i8%s(%s, vl), vl);", v_.s16.c_str(),
                 v_.s16.c_str(), v_.s8.c_str(), w.c_str()));
    } else {
      c.line(fmt("const vint16%s_t wk = __riscv_vle16_v_i16%s(%s, vl);", v_.s16.c_str(), v_.s16.c_str(), w.c_str()));
    }
    for (int p = 0; p < pixels; ++p) {
      c.line(fmt("acc%d = __riscv_vwmacc_vx_i32%s(acc%d, %s, wk, vl);", p, v_.s32.c_str(), p, input(p, k).c_str()));
    }
    c.close();
  }

  // Input channels k and k + 1: their weight vectors are adjacent, one whole-register group.
  void emit_pair_step(CWriter& c, const Tile& tile, int pixels, int k) {
    const char* pair = v_.s32.c_str();  // two int16 vectors of int32-lane count = LMUL of the accumulators
    const char* half = v_.s16.c_str();
    c.open("");
    c.line(fmt("const vint16%s_t pair = *(const vint16%s_t*)(w + %lld);", pair, pair, (long long)(k * tile.width)));
    for (int j = 0; j < 2; ++j) {
      c.line(fmt("const vint16%s_t w%d = __riscv_vget_v_i16%s_i16%s(pair, %d);", half, j, pair, half, j));
    }
    for (int j = 0; j < 2; ++j) {
      for (int p = 0; p < pixels; ++p) {
        c.line(fmt("acc%d = __riscv_vwmacc_vx_i32%s(acc%d, %s, w%d, vl);", p, v_.s32.c_str(), p, input(p, k + j).c_str(), j));
      }
    }
    c.close();
  }

  std::string output(int p) const { return p == 0 ? "y" : fmt("y + %lld", (long long)(p * shape_.out_stride())); }

  // Requantise every pixel's accumulator (mac_common.h) and store it, each step over all pixels in turn
  // (one vtype change per step). Per-channel constants are vectors at co0; with big shifts the rescale
  // runs phase by phase too, so only one constant vector is live beside the accumulators.
  void emit_vector_requant(CWriter& c, int pixels) {
    const std::string& l = v_.s32;
    auto rescaled = [&](int p, const std::string& value) {
      c.line(fmt("vint16%s_t n%d = %s;", v_.s16.c_str(), p, value.c_str()));
    };
    if (requant_.uniform) {
      auto [mul, shift] = scalar_operands(requant_, names_, "");
      for (int p = 0; p < pixels; ++p) rescaled(p, rescale_to_int16(requant_, v_, fmt("acc%d", p), mul, shift, false));
    } else if (requant_.big_shift) {
      c.open("").line(fmt("const %s m = __riscv_vle32_v_i32%s(%s + co0, vl);", acc_type().c_str(), l.c_str(), names_.mul.c_str()));
      for (int p = 0; p < pixels; ++p) c.line(fmt("acc%d = %s;", p, high_product(requant_, v_, fmt("acc%d", p), "m", true).c_str()));
      c.close();
      c.line(fmt("const vuint16%s_t right = __riscv_vle16_v_u16%s(%s + co0, vl);", v_.s16.c_str(), v_.s16.c_str(),
                 names_.right.c_str()));
      for (int p = 0; p < pixels; ++p) rescaled(p, rounding_narrow(v_, fmt("acc%d", p), "right", true));
    } else {
      c.line(fmt("const %s m = __riscv_vle32_v_i32%s(%s + co0, vl);", acc_type().c_str(), l.c_str(), names_.mul.c_str()));
      c.line(fmt("const %s s = __riscv_vle32_v_i32%s(%s + co0, vl);", acc_type().c_str(), l.c_str(), names_.shift.c_str()));
      for (int p = 0; p < pixels; ++p) rescaled(p, rescale_to_int16(requant_, v_, fmt("acc%d", p), "m", "s", true));
    }
    for (int p = 0; p < pixels; ++p) {
      c.line(fmt("n%d = %s;", p, add_output_zero_point(requant_, v_, fmt("n%d", p)).c_str()));
    }
    for (int p = 0; p < pixels; ++p) {
      c.line(fmt("__riscv_vse8_v_i8%s(%s, %s, vl);", v_.s8.c_str(), output(p).c_str(),
                 saturate_and_clamp(requant_, v_, fmt("n%d", p)).c_str()));
    }
  }

  void emit_scalar_requant(CWriter& c, int pixels) {
    c.open("for (size_t l = 0; l < vl; ++l)");
    for (int p = 0; p < pixels; ++p) {
      c.line(fmt("(%s)[l] = %s;", output(p).c_str(),
                 scalar_requantize(requant_, names_, fmt("(int32_t)acc[%d][l]", p), "co0 + l").c_str()));
    }
    c.close();
  }

  // The exported function: channel tiles and pixel tiles in the schedule's loop order; the narrower
  // last tile of each (when the sizes do not divide) after the full ones; groups outermost.
  void emit_entry(CWriter& c) {
    c.open(fmt("void %s(const int8_t* input, int8_t* output, int8_t* scratch)", spec_.name.c_str()));
    c.line("(void)scratch;");
    if (shape_.groups > 1) {  // the group's channels: input, weights, output and constants from there on
      c.open(fmt("for (int32_t g = 0; g < %lld; ++g, input += %lld)", (long long)shape_.groups, (long long)shape_.in_c));
      c.line(fmt("const int32_t first = g * %lld;", (long long)shape_.out_c));
    }
    // f(tile) for each channel tile: a loop over the full ones, then the tail.
    auto for_each_tile = [&](const std::function<void(const Tile&)>& f) {
      if (full_tile().width > 0) {
        c.open(fmt("for (int32_t co0 = 0; co0 < %lld; co0 += %d)", (long long)full_tiles_end(), s_.oc_tile));
        f(full_tile());
        c.close();
      }
      if (tail_tile().width > 0) {
        c.open("").line(fmt("const int32_t co0 = %lld;", (long long)full_tiles_end()));
        f(tail_tile());
        c.close();
      }
    };
    // f(pixels) for each pixel tile: a loop over the full ones (first pixel p), then the tail.
    auto for_each_pixel_tile = [&](const std::function<void(int)>& f) {
      c.open(fmt("for (int32_t p = 0; p < %lld; p += %d)", (long long)full_pixels(), s_.px_tile));
      f(s_.px_tile);
      c.close();
      if (tail_pixels() > 0) {
        c.open("").line(fmt("const int32_t p = %lld;", (long long)full_pixels()));
        f(tail_pixels());
        c.close();
      }
    };
    // co: the first output channel of the tile, over all groups (weights, constants and output)
    std::string co = shape_.groups > 1 ? "first + co0" : "co0";
    auto call = [&](const Tile& tile, int pixels) {
      c.line(fmt("%s(input + p * %lld, %s + (%s) * %lld, %s, output + p * %lld + %s);", block_name(tile, pixels).c_str(),
                 (long long)shape_.in_stride(), weights_.c_str(), co.c_str(), (long long)shape_.in_c, co.c_str(),
                 (long long)shape_.out_stride(), co.c_str()));
    };
    if (s_.loop_order == "oc_px") {
      for_each_tile([&](const Tile& tile) { for_each_pixel_tile([&](int pixels) { call(tile, pixels); }); });
    } else {
      for_each_pixel_tile([&](int pixels) { for_each_tile([&](const Tile& tile) { call(tile, pixels); }); });
    }
    if (shape_.groups > 1) c.close();
    c.close();
  }

  const KernelSpec& spec_;
  GemmShape shape_;
  Requant requant_;
  Schedule s_;
  VectorShape v_;
  bool vector_;
  Constants constants_;
  RequantNames names_;
  std::string weight_type_, weights_, bias_;
};

}  // namespace

double estimate_gemm(const GemmShape& shape, const Schedule& s) {
  int64_t full_tiles = shape.out_c / s.oc_tile, tail_tiles = shape.out_c % s.oc_tile ? 1 : 0;
  double pixel_tiles = static_cast<double>((shape.pixels + s.px_tile - 1) / s.px_tile);
  // Requantisation holds the accumulators and one constant vector; with less than a register group
  // to spare the compiler spills around it.
  const Target& target = shape.target;
  double requant_spills = s.px_tile * s.lmul + s.lmul > target.vector_registers - 8 ? 20.0 : 0.0;
  auto per_block = [&](bool paired) {
    double per_ci = (paired ? 1.0 : 2.0) + (s.weight_pack == "i8" ? 1.0 : 0.0) + 2.0 * s.px_tile;
    return shape.in_c * per_ci + 4.0 * shape.in_c / s.unroll + 8.0 * s.px_tile + 17.0 + requant_spills;
  };
  return shape.groups * pixel_tiles * (full_tiles * per_block(paired_weight_loads(target, s)) + tail_tiles * per_block(false));
}

Schedule default_gemm_schedule(const GemmShape& shape, const std::string& weight_pack) {
  Schedule s;
  s.oc_tile = static_cast<int>(std::min<int64_t>(shape.out_c, shape.target.int32_lanes(8)));
  s.lmul = 1;
  while (shape.target.int32_lanes(s.lmul) < s.oc_tile) s.lmul *= 2;
  s.weight_pack = weight_pack;
  s.loop_order = "oc_px";
  s.unroll = static_cast<int>(std::min<int64_t>(shape.in_c, kDefaultUnroll));
  // Each weight load feeds px_tile vwmacc: as many pixels as the registers hold, or fewer when that
  // lets the weights load in pairs.
  Schedule best = s;
  double best_cost = std::numeric_limits<double>::infinity();
  for (s.px_tile = 1; s.px_tile <= shape.pixels && validate_gemm(shape, s).empty(); ++s.px_tile) {
    double cost = estimate_gemm(shape, s);
    if (cost < best_cost) best = s, best_cost = cost;
  }
  return best;
}

std::string validate_gemm(const GemmShape& shape, const Schedule& s) {
  if (auto why = check_common_knobs(s); !why.empty()) return why;
  const Target& target = shape.target;
  if (s.oc_tile < 1 || s.oc_tile > target.int32_lanes(s.lmul)) {
    return fmt("oc_tile %d is outside [1, %d] (int32 lanes at lmul %d)", s.oc_tile, target.int32_lanes(s.lmul), s.lmul);
  }
  if (s.oc_tile > shape.out_c) return fmt("oc_tile %d exceeds the %lld output channels", s.oc_tile, (long long)shape.out_c);
  if (s.px_tile < 1 || s.px_tile > shape.pixels) {
    return fmt("px_tile %d is outside [1, %lld] (the pixel count)", s.px_tile, (long long)shape.pixels);
  }
  if (s.unroll < 1 || s.unroll > shape.in_c) return fmt("unroll %d is outside [1, %lld] (input channels)", s.unroll, (long long)shape.in_c);
  int registers = s.px_tile * s.lmul + weight_registers(target, s);
  if (registers > target.vector_registers) {
    return fmt("px_tile %d x lmul %d accumulators + %d weight registers = %d > %d vector registers", s.px_tile, s.lmul,
               weight_registers(target, s), registers, target.vector_registers);
  }
  return "";
}

Emitted emit_gemm(const KernelSpec& spec, const GemmShape& shape, const std::vector<int32_t>& weight,
                  const std::vector<int32_t>& bias, const Requant& requant, const Schedule& schedule, bool vector) {
  return GemmEmitter(spec, shape, requant, schedule, vector).emit(weight, bias);
}

}  // namespace coral::mac
