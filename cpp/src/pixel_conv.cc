// The pixel conv engine (mac_common.h): any conv2d (depthwise, grouped, general), vectorised over
// output pixels.
//
// Per band of px_tile output rows, the input rows the band reads are copied into scratch as int16
// (x - input_zero_point), with zero columns for the left/right padding and zero rows above/below the
// image: padded taps then contribute 0 and the tap loop has no border branches. A band's output pixels
// are contiguous in NHWC (stride out_c), so an int32 vector holds up to VLEN/32*lmul of them; a tap
// is one strided load (one-row bands) or indexed load (offsets of each pixel's window, a constant
// table) of int16 inputs, then one vwmacc.vx per output channel with the scalar weight. oc_tile
// channels of a group share each input load. Requantisation uses per-channel scalars.
// Schedule: lmul, oc_tile (channels per input load), px_tile (output rows per band), unroll (of the
// loop over a group's input channels), loop_order, weight_pack (scalar weights as int8 or int16).
#include <algorithm>
#include <limits>

#include "mac_common.h"

namespace coral::mac {

namespace {

constexpr const char* kInline = "static inline __attribute__((always_inline))";
constexpr int64_t kMaxIndexedOffset = 65535;       // vluxei16: unsigned 16-bit byte offsets
constexpr int64_t kDefaultScratchLimit = 64 * 1024;  // default schedules keep the band this small

// Geometry of the band buffer for one schedule.
struct Band {
  int64_t rows_per_band;  // output rows (px_tile)
  int64_t input_rows;     // input rows the band reads
  int64_t pad_right;      // zero columns right of the image (left: pad_left)
  int64_t row_elems;      // int16 elements per padded input row
  int64_t elems() const { return input_rows * row_elems; }
};

Band band_geometry(const ConvShape& s, int64_t rows_per_band) {
  int64_t reach_w = (s.out_w - 1) * s.stride_w + (s.kernel_w - 1) * s.dilation_w + 1;
  int64_t padded_w = std::max(s.pad_left + s.in_w, reach_w);
  return {rows_per_band, (rows_per_band - 1) * s.stride_h + (s.kernel_h - 1) * s.dilation_h + 1,
          padded_w - s.pad_left - s.in_w, padded_w * s.in_c};
}

// Byte offset of each band pixel's window origin in the band buffer (indexed loads).
std::vector<int32_t> window_offsets(const ConvShape& s, const Band& band) {
  std::vector<int32_t> offsets;
  for (int64_t row = 0; row < band.rows_per_band; ++row) {
    for (int64_t ox = 0; ox < s.out_w; ++ox) {
      offsets.push_back(static_cast<int32_t>(2 * (row * s.stride_h * band.row_elems + ox * s.stride_w * s.in_c)));
    }
  }
  return offsets;
}

int64_t largest_window_offset(const ConvShape& s, const Band& band) {
  return 2 * ((band.rows_per_band - 1) * s.stride_h * band.row_elems + (s.out_w - 1) * s.stride_w * s.in_c);
}

int64_t taps(const ConvShape& s) { return s.kernel_h * s.kernel_w * s.in_c_per_group(); }

// Weights as consumed: channel blocks of oc_tile (the group's last block may be narrower), each
// [kh][kw][ci][channel of the block], block of channel co at co * taps.
std::vector<int32_t> pack_weights(const ConvShape& s, const std::vector<int32_t>& weight, int oc_tile) {
  int64_t per_channel = taps(s);
  std::vector<int32_t> packed(weight.size());
  for (int64_t g = 0; g < s.groups; ++g) {
    for (int64_t first = 0; first < s.out_c_per_group(); first += oc_tile) {
      int64_t block = std::min<int64_t>(oc_tile, s.out_c_per_group() - first);
      int64_t co = g * s.out_c_per_group() + first;
      for (int64_t tap = 0; tap < per_channel; ++tap) {
        for (int64_t j = 0; j < block; ++j) packed[co * per_channel + tap * block + j] = weight[(co + j) * per_channel + tap];
      }
    }
  }
  return packed;
}

// A band's window offsets step by a constant (pixel_step) when a padded row holds exactly out_w strides
// and the band moves one row per output row: then strided loads cover multi-row bands too.
bool linear_windows(const ConvShape& s, const Band& band) {
  return band.rows_per_band == 1 ||
         (s.stride_h == 1 && band.row_elems == s.out_w * s.stride_w * s.in_c);
}

bool indexed(const ConvShape& s, const Schedule& sched) { return !linear_windows(s, band_geometry(s, sched.px_tile)); }

// Accumulators, the input vector and the next one (the scheduler loads ahead; without room for that,
// the register allocator spills), and the index vector of indexed loads.
int vector_registers(const ConvShape& s, const Schedule& sched) {
  VectorShape v = vector_shape(s.target, sched.lmul);
  return sched.oc_tile * sched.lmul + v.int16_registers() * (indexed(s, sched) ? 3 : 2);
}

// True when the group's input channels of a tap are unrolled (not a loop).
bool channels_unrolled(const ConvShape& s, const Schedule& sched) { return s.in_c_per_group() <= sched.unroll; }

// Loop-invariant scalars the chunk loop keeps in registers: the compiler hoists them, and past about
// kResidentScalars (beside the loop's own) it spills or rematerialises them at a cost per chunk, so
// beyond that the generated code makes them opaque and they are reloaded per use instead.
struct Residency {
  bool weights;        // the block's scalar weights (oc_px: invariant across the band's chunks)
  bool tap_addresses;  // one address per unrolled input load (indexed: invariant across chunks)
};
constexpr int64_t kResidentScalars = 21;
constexpr int64_t kRequantScalars = 3;  // per channel: bias, multiplier, shift

Residency residency(const ConvShape& s, const Schedule& sched, int channels) {
  int64_t per_block = channels * (taps(s) + kRequantScalars);
  bool weights_resident = sched.loop_order == "oc_px" && per_block <= kResidentScalars;
  int64_t loads = channels_unrolled(s, sched) ? taps(s) : 0;
  int64_t others = weights_resident ? per_block : channels * kRequantScalars;
  bool taps_resident = indexed(s, sched) && loads + others <= kResidentScalars;
  return {weights_resident, taps_resident};
}

// One pixel-conv kernel being emitted.
class PixelConvEmitter {
 public:
  PixelConvEmitter(const KernelSpec& spec, const ConvShape& shape, const Requant& requant, const Schedule& schedule,
                   bool vector)
      : spec_(spec), s_(shape), requant_(requant), sched_(schedule), v_(vector_shape(spec.target, schedule.lmul)), vector_(vector),
        band_(band_geometry(shape, schedule.px_tile)), constants_(spec.name) {}

  Emitted emit(const std::vector<int32_t>& weight, const std::vector<int32_t>& bias) {
    weight_type_ = sched_.weight_pack == "i8" ? "int8_t" : "int16_t";
    weights_ = constants_.add(weight_type_, "weight", pack_weights(s_, weight, sched_.oc_tile));
    bias_ = constants_.add("int32_t", "bias", bias);
    if (indexed(s_, sched_)) index_ = constants_.add("uint16_t", "window", window_offsets(s_, band_));
    names_ = add_requant_constants(constants_, requant_, vector_);
    CWriter c;
    emit_row_helpers(c);
    emit_fill_band(c);
    int64_t per_group = s_.out_c_per_group();
    emit_block(c, sched_.oc_tile);
    if (per_group % sched_.oc_tile != 0) emit_block(c, static_cast<int>(per_group % sched_.oc_tile));
    emit_band(c);
    emit_entry(c);
    return {translation_unit(spec_, vector_, constants_, c.str()), band_.elems() * 2, constants_.bytes(), sched_};
  }

 private:
  std::string name(const char* suffix) const { return spec_.name + "_" + suffix; }
  std::string block_name(int channels) const { return fmt("%s_ch%d", spec_.name.c_str(), channels); }
  std::string acc_type() const { return "vint32" + v_.s32 + "_t"; }
  std::string x_type() const { return "vint16" + v_.s16 + "_t"; }
  int64_t pixel_step() const { return s_.stride_w * s_.in_c; }  // int16 elements between output pixels of a row

  // NAME_zero(dst, n) and NAME_widen(src, dst, n): dst[i] = 0 and dst[i] = src[i] - input_zero_point.
  // Vector code: whole int16 register groups at LMUL 8 (VLEN / 2 int8 -> int16) at a constant vl, so the
  // loop needs no vsetvli, then the rest.
  void emit_row_helpers(CWriter& c) {
    const int group = spec_.target.lanes(16, 8);
    c.open(fmt("static inline void %s(int16_t* dst, int32_t n)", name("zero").c_str()));
    if (vector_) {
      c.line(fmt("const vint16m8_t zero = __riscv_vmv_v_x_i16m8(0, %d);", group));
      c.line(fmt("for (; n >= %d; n -= %d, dst += %d) __riscv_vse16_v_i16m8(dst, zero, %d);", group, group, group, group));
      c.line("if (n > 0) __riscv_vse16_v_i16m8(dst, zero, (size_t)n);");
    } else {
      c.line("for (int32_t i = 0; i < n; ++i) dst[i] = 0;");
    }
    c.close().blank();
    c.open(fmt("static inline void %s(const int8_t* src, int16_t* dst, int32_t n)", name("widen").c_str()));
    if (vector_) {
      std::string widen = fmt("__riscv_vse16_v_i16m8(dst, __riscv_vwsub_vx_i16m8(__riscv_vle8_v_i8m4(src, %%s), %d, %%s), %%s);",
                              s_.input_zero_point);
      const std::string vl = std::to_string(group);
      c.line(fmt("for (; n >= %d; n -= %d, src += %d, dst += %d) %s", group, group, group, group,
                 fmt(widen.c_str(), vl.c_str(), vl.c_str(), vl.c_str()).c_str()));
      c.line(fmt("if (n > 0) %s", fmt(widen.c_str(), "(size_t)n", "(size_t)n", "(size_t)n").c_str()));
    } else {
      c.line(fmt("for (int32_t i = 0; i < n; ++i) dst[i] = (int16_t)(src[i] - (%d));", s_.input_zero_point));
    }
    c.close().blank();
  }

  // The band's input rows (first_row may be negative: padding) as padded int16 rows.
  void emit_fill_band(CWriter& c) {
    c.open(fmt("static void %s(const int8_t* image, int32_t first_row, int16_t* band)", name("fill_band").c_str()));
    c.open(fmt("for (int32_t j = 0; j < %lld; ++j, band += %lld)", (long long)band_.input_rows, (long long)band_.row_elems));
    c.line("const int32_t iy = first_row + j;");
    c.open(fmt("if (iy < 0 || iy >= %lld)", (long long)s_.in_h));
    c.line(fmt("%s(band, %lld);", name("zero").c_str(), (long long)band_.row_elems)).line("continue;");
    c.close();
    int64_t left = s_.pad_left * s_.in_c, width = s_.in_w * s_.in_c, right = band_.pad_right * s_.in_c;
    if (left > 0) c.line(fmt("%s(band, %lld);", name("zero").c_str(), (long long)left));
    c.line(fmt("%s(image + iy * %lld, band + %lld, %lld);", name("widen").c_str(), (long long)width, (long long)left,
               (long long)width));
    if (right > 0) c.line(fmt("%s(band + %lld, %lld);", name("zero").c_str(), (long long)(left + width), (long long)right));
    c.close().close().blank();
  }

  // `channels` output channels from co (one group) for the band pixels [p0, p0 + vl): x is the band
  // at the group's first input channel.
  void emit_block(CWriter& c, int channels) {
    c.open(fmt("%s void %s(const int16_t* x, int32_t co, int32_t p0, size_t vl, int8_t* out)", kInline,
               block_name(channels).c_str()));
    c.line(fmt("const %s* w = %s + co * %lld;", weight_type_.c_str(), weights_.c_str(), (long long)taps(s_)));
    Residency resident = residency(s_, sched_, channels);
    if (vector_ && !resident.weights) {
      // Volatile: opaque in every chunk, so the weights are loaded per use instead of hoisted and spilled.
      c.line("__asm__ volatile(\"\" : \"+r\"(w));");
    }
    if (indexed(s_, sched_) && vector_) {
      c.line(fmt("const vuint16%s_t at = __riscv_vle16_v_u16%s(%s + p0, vl);", v_.s16.c_str(), v_.s16.c_str(), index_.c_str()));
    }
    if (!indexed(s_, sched_)) c.line(fmt("x += p0 * %lld;", (long long)pixel_step()));
    if (vector_ && !resident.tap_addresses && !resident.weights) {
      // Tap addresses from x per chunk, not one register (or spill slot) each. Any inline asm in the
      // chunk loop also keeps invariant loads (resident weights) from being hoisted out of it.
      c.line("__asm__(\"\" : \"+r\"(x) : \"r\"(p0));");
    }
    emit_accumulator_declarations(c, channels);
    for (int64_t kh = 0; kh < s_.kernel_h; ++kh) {
      for (int64_t kw = 0; kw < s_.kernel_w; ++kw) emit_tap(c, channels, kh, kw);
    }
    for (int j = 0; j < channels; ++j) emit_requant_store(c, j);
    c.close().blank();
  }

  void emit_accumulator_declarations(CWriter& c, int channels) {
    if (!vector_) {
      c.line(fmt("uint32_t acc[%d][%d]; /* wrap-around sums, as the vector code's */", channels, v_.lanes()));
      c.open("for (size_t l = 0; l < vl; ++l)");
      for (int j = 0; j < channels; ++j) c.line(fmt("acc[%d][l] = (uint32_t)%s[co + %d];", j, bias_.c_str(), j));
      c.close();
      return;
    }
    // The bias is added at requantisation: a bias splat here would be hoisted out of the chunk loop and spilled.
    for (int j = 0; j < channels; ++j) {
      c.line(fmt("%s acc%d%s;", acc_type().c_str(), j,
                 channels_unrolled(s_, sched_) ? "" : fmt(" = __riscv_vmv_v_x_i32%s(0, vl)", v_.s32.c_str()).c_str()));
    }
  }

  // Tap (kh, kw): the group's input channels, unrolled, or a loop of `unroll` steps plus the rest.
  void emit_tap(CWriter& c, int channels, int64_t kh, int64_t kw) {
    int64_t in_offset = kh * s_.dilation_h * band_.row_elems + kw * s_.dilation_w * s_.in_c;
    int64_t w_offset = (kh * s_.kernel_w + kw) * s_.in_c_per_group() * channels;
    int64_t per_group = s_.in_c_per_group();
    if (channels_unrolled(s_, sched_)) {
      for (int64_t ci = 0; ci < per_group; ++ci) {
        bool first = kh == 0 && kw == 0 && ci == 0;
        emit_step(c, channels, fmt("x + %lld", (long long)(in_offset + ci)), "w", w_offset + ci * channels, first);
      }
      return;
    }
    c.open("");
    c.line(fmt("const int16_t* t = x + %lld;", (long long)in_offset));
    c.line(fmt("const %s* wt = w + %lld;", weight_type_.c_str(), (long long)w_offset));
    int64_t main = per_group - per_group % sched_.unroll;
    c.open(fmt("for (int32_t ci = 0; ci < %lld; ci += %d, t += %d, wt += %d)", (long long)main, sched_.unroll,
               sched_.unroll, sched_.unroll * channels));
    for (int k = 0; k < sched_.unroll; ++k) emit_step(c, channels, fmt("t + %d", k), "wt", k * channels, false);
    c.close();
    for (int64_t k = 0; k < per_group % sched_.unroll; ++k) {
      emit_step(c, channels, fmt("t + %lld", (long long)k), "wt", k * channels, false);
    }
    c.close();
  }

  // One input channel of one tap: load the band pixels' inputs (from `input`), one multiply-add per
  // output channel (weights weights[first_weight + j]); the first step multiplies without adding.
  void emit_step(CWriter& c, int channels, const std::string& input, const std::string& weights, int64_t first_weight,
                 bool first) {
    if (vector_) {
      c.open("");
      if (indexed(s_, sched_)) {
        c.line(fmt("const %s xv = __riscv_vluxei16_v_i16%s(%s, at, vl);", x_type().c_str(), v_.s16.c_str(), input.c_str()));
      } else {
        c.line(fmt("const %s xv = __riscv_vlse16_v_i16%s(%s, %lld, vl);", x_type().c_str(), v_.s16.c_str(), input.c_str(),
                   (long long)(2 * pixel_step())));
      }
      for (int j = 0; j < channels; ++j) {
        std::string weight = fmt("%s[%lld]", weights.c_str(), (long long)(first_weight + j));
        if (first) {
          c.line(fmt("acc%d = __riscv_vwmul_vx_i32%s(xv, %s, vl);", j, v_.s32.c_str(), weight.c_str()));
        } else {
          c.line(fmt("acc%d = __riscv_vwmacc_vx_i32%s(acc%d, %s, xv, vl);", j, v_.s32.c_str(), j, weight.c_str()));
        }
      }
      c.close();
      return;
    }
    c.open("for (size_t l = 0; l < vl; ++l)");
    if (indexed(s_, sched_)) {
      c.line(fmt("const int32_t xv = *(const int16_t*)((const char*)(%s) + %s[p0 + l]);", input.c_str(), index_.c_str()));
    } else {
      c.line(fmt("const int32_t xv = (%s)[l * %lld];", input.c_str(), (long long)pixel_step()));
    }
    for (int j = 0; j < channels; ++j) {
      c.line(fmt("acc[%d][l] += (uint32_t)(%s[%lld] * xv);", j, weights.c_str(), (long long)(first_weight + j)));
    }
    c.close();
  }

  // Channel co + j: add its bias, requantise with its scalars, store the pixels strided by out_c.
  void emit_requant_store(CWriter& c, int j) {
    std::string channel = fmt("co + %d", j);
    std::string out = fmt("out + p0 * %lld + %s", (long long)s_.out_c, channel.c_str());
    if (!vector_) {
      c.open("for (size_t l = 0; l < vl; ++l)");
      c.line(fmt("(%s)[l * %lld] = %s;", out.c_str(), (long long)s_.out_c,
                 scalar_requantize(requant_, names_, fmt("(int32_t)acc[%d][l]", j), channel).c_str()));
      c.close();
      return;
    }
    auto [mul, shift] = scalar_operands(requant_, names_, channel);
    std::string biased = fmt("__riscv_vadd_vx_i32%s(acc%d, %s[%s], vl)", v_.s32.c_str(), j, bias_.c_str(), channel.c_str());
    c.line(fmt("const vint16%s_t n%d = %s;", v_.s16.c_str(), j, rescale_to_int16(requant_, v_, biased, mul, shift, false, channel).c_str()));
    c.line(fmt("__riscv_vsse8_v_i8%s(%s, %lld, %s, vl);", v_.s8.c_str(), out.c_str(), (long long)s_.out_c,
               narrow_to_int8(requant_, v_, fmt("n%d", j)).c_str()));
  }

  // NAME_band(band, pixels, out): every output channel for the band's pixels, in the schedule's order.
  void emit_band(CWriter& c) {
    c.open(fmt("static void %s(const int16_t* band, int32_t pixels, int8_t* out)", name("band").c_str()));
    std::string chunk = fmt("for (int32_t p0 = 0; p0 < pixels; p0 += %d)", v_.lanes());
    std::string vl = fmt("const size_t vl = (size_t)(pixels - p0 < %d ? pixels - p0 : %d);", v_.lanes(), v_.lanes());
    if (sched_.loop_order == "px_oc") c.open(chunk).line(vl);
    c.open(fmt("for (int32_t g = 0; g < %lld; ++g)", (long long)s_.groups));
    c.line(fmt("const int16_t* x = band + g * %lld;", (long long)s_.in_c_per_group()));
    int64_t per_group = s_.out_c_per_group(), main = per_group - per_group % sched_.oc_tile;
    // head: a loop over channel blocks, or "" with first_channel declaring the one tail block's co.
    auto channel_blocks = [&](int channels, const std::string& head, const std::string& first_channel) {
      c.open(head);
      if (!first_channel.empty()) c.line(first_channel);
      if (sched_.loop_order == "oc_px") c.open(chunk).line(vl);
      c.line(fmt("%s(x, co, p0, vl, out);", block_name(channels).c_str()));
      if (sched_.loop_order == "oc_px") c.close();
      c.close();
    };
    channel_blocks(sched_.oc_tile, fmt("for (int32_t co = g * %lld; co < g * %lld + %lld; co += %d)", (long long)per_group,
                                       (long long)per_group, (long long)main, sched_.oc_tile), "");
    if (main < per_group) {
      channel_blocks(static_cast<int>(per_group - main), "",
                     fmt("const int32_t co = g * %lld + %lld;", (long long)per_group, (long long)main));
    }
    c.close();
    if (sched_.loop_order == "px_oc") c.close();
    c.close().blank();
  }

  void emit_entry(CWriter& c) {
    c.open(fmt("void %s(const int8_t* input, int8_t* output, int8_t* scratch)", spec_.name.c_str()));
    c.line(fmt("int16_t* band = (int16_t*)scratch; /* %lld int16: the padded input rows of one band */",
               (long long)band_.elems()));
    c.open(fmt("for (int32_t b = 0; b < %lld; ++b)", (long long)s_.batches));
    c.open(fmt("for (int32_t oy = 0; oy < %lld; oy += %lld)", (long long)s_.out_h, (long long)band_.rows_per_band));
    c.line(fmt("const int32_t rows = %lld - oy < %lld ? %lld - oy : %lld;", (long long)s_.out_h,
               (long long)band_.rows_per_band, (long long)s_.out_h, (long long)band_.rows_per_band));
    c.line(fmt("%s(input + b * %lld, oy * %lld - %lld, band);", name("fill_band").c_str(),
               (long long)(s_.in_h * s_.in_w * s_.in_c), (long long)s_.stride_h, (long long)s_.pad_top));
    c.line(fmt("%s(band, rows * %lld, output + (b * %lld + oy) * %lld);", name("band").c_str(), (long long)s_.out_w,
               (long long)s_.out_h, (long long)(s_.out_w * s_.out_c)));
    c.close().close().close();
  }

  const KernelSpec& spec_;
  ConvShape s_;
  Requant requant_;
  Schedule sched_;
  VectorShape v_;
  bool vector_;
  Band band_;
  Constants constants_;
  RequantNames names_;
  std::string weight_type_, weights_, bias_, index_;
};

}  // namespace

double estimate_pixel_conv(const ConvShape& s, const Schedule& sched) {
  Band band = band_geometry(s, sched.px_tile);
  bool by_index = indexed(s, sched);
  int64_t lanes = s.target.int32_lanes(sched.lmul), bands = 0, chunks = 0;
  for (int64_t oy = 0; oy < s.out_h; oy += sched.px_tile, ++bands) {
    chunks += (std::min<int64_t>(sched.px_tile, s.out_h - oy) * s.out_w + lanes - 1) / lanes;
  }
  double per_chunk = 0, per_band = 0;  // over every channel block
  for (int64_t first = 0; first < s.out_c_per_group(); first += sched.oc_tile) {
    int block = static_cast<int>(std::min<int64_t>(sched.oc_tile, s.out_c_per_group() - first));
    Residency resident = residency(s, sched, block);
    double per_load = (resident.tap_addresses ? 1.0 : 2.0) + block * (resident.weights ? 1.0 : 2.0);
    double loop = channels_unrolled(s, sched) ? 0.0 : 4.0 * taps(s) / sched.unroll;
    per_chunk += taps(s) * per_load + loop + 10.0 * block + (by_index ? 8.0 : 6.0);
    per_band += (resident.weights ? block * taps(s) : 0) + 10.0;
  }
  const int64_t group = s.target.lanes(16, 8);  // int16 elements per row-helper vector
  double fill = band.input_rows * ((band.row_elems + group - 1) / group * 7.0 + 12.0);
  return static_cast<double>(s.batches) * ((chunks * per_chunk + bands * per_band) * s.groups + bands * fill);
}

Schedule default_pixel_conv_schedule(const ConvShape& shape, const std::string& weight_pack) {
  Schedule s;
  s.lmul = 1;
  while (s.lmul < 8 && shape.target.int32_lanes(s.lmul) < shape.out_h * shape.out_w) s.lmul *= 2;
  s.unroll = static_cast<int>(std::min<int64_t>(shape.in_c_per_group(), 8));
  s.loop_order = "oc_px";
  s.weight_pack = weight_pack;
  Schedule best = s;
  double best_cost = std::numeric_limits<double>::infinity();
  for (int64_t rows = 1; rows <= shape.out_h; ++rows) {
    s.px_tile = static_cast<int>(rows);
    if (rows > 1 && band_geometry(shape, rows).elems() * 2 > kDefaultScratchLimit) break;
    for (s.oc_tile = 1; s.oc_tile <= shape.out_c_per_group(); ++s.oc_tile) {
      if (!validate_pixel_conv(shape, s).empty()) break;  // more channels only need more registers
      double cost = estimate_pixel_conv(shape, s);
      if (cost < best_cost) best = s, best_cost = cost;
    }
  }
  return best;
}

std::string validate_pixel_conv(const ConvShape& shape, const Schedule& s) {
  if (auto why = check_common_knobs(s); !why.empty()) return why;
  if (s.oc_tile < 1 || s.oc_tile > shape.out_c_per_group()) {
    return fmt("oc_tile %d is outside [1, %lld] (output channels per group)", s.oc_tile, (long long)shape.out_c_per_group());
  }
  if (s.px_tile < 1 || s.px_tile > shape.out_h) {
    return fmt("px_tile %d (output rows per band) is outside [1, %lld]", s.px_tile, (long long)shape.out_h);
  }
  if (s.unroll < 1 || s.unroll > shape.in_c_per_group()) {
    return fmt("unroll %d is outside [1, %lld] (input channels per group)", s.unroll, (long long)shape.in_c_per_group());
  }
  if (vector_registers(shape, s) > shape.target.vector_registers) {
    return fmt("oc_tile %d x lmul %d accumulators + input (and index) vectors = %d > %d vector registers", s.oc_tile,
               s.lmul, vector_registers(shape, s), shape.target.vector_registers);
  }
  if (indexed(shape, s) && largest_window_offset(shape, band_geometry(shape, s.px_tile)) > kMaxIndexedOffset) {
    return fmt("px_tile %d: the band's window offsets exceed the %lld bytes of 16-bit indices", s.px_tile,
               (long long)kMaxIndexedOffset);
  }
  return "";
}

Emitted emit_pixel_conv(const KernelSpec& spec, const ConvShape& shape, const std::vector<int32_t>& weight,
                        const std::vector<int32_t>& bias, const Requant& requant, const Schedule& schedule,
                        bool vector) {
  return PixelConvEmitter(spec, shape, requant, schedule, vector).emit(weight, bias);
}

}  // namespace coral::mac
