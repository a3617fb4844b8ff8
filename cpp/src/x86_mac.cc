// The x86 emitter family (Target::arch "x86"): int8 convolutions and dense layers with AVX2 and
// AVX-512 VNNI intrinsics for the host build, same KernelSpec and ABI as the RVV family, bit-exact to
// kernels/ref.
//
// Products: int8 values are widened to int16 and multiplied with vpmaddwd (pairs of int16 products
// summed into int32, exact for int8 x int8), never with vpmaddubsw, whose int16 pair sums saturate
// (ONNX Runtime's u8s8 kernels are off by up to 121 steps on CPUs without VNNI for that reason).
// Where the compiler targets AVX-512 VNNI (-march=native on such a CPU), groups-1 convolutions and
// dense layers use vpdpbusd instead (4 byte products per int32 lane, no saturation): the inputs as
// unsigned bytes x + 128, the offset's share -(zp + 128) * sum(w) folded into the bias, weights packed
// [tile][tap][quad][64 lanes][4] int8 for tiles of 4 zmm registers. The generated C holds both forms
// (npu_x86_quant.h NPU_X86_VNNI picks one at compile time), so the choice is the CPU's at build time.
//
// conv2d, groups 1 (and dense, a 1x1 convolution over `batches` pixels), AVX2 form: each output
// pixel's inputs are first written to scratch as int32 words holding two zero-point-subtracted int16 inputs
// (consecutive input channels of one tap; a tap in the padding is zeros, which is exactly what the
// reference's skipped tap adds). Channel tiles of 32 outputs (4 registers of 8 int32 lanes) then
// accumulate two pixels at once: per input pair one broadcast per pixel and one vpmaddwd per
// register against weights packed at compile time as [tile][tap][pair][32 lanes][2] int16.
// The tile loops and the requantisation are npu_x86_quant.h's, shared by every kernel of a file (one
// copy each: per-kernel copies made a MobileNetV2's host C take 3x longer to compile); a kernel's own
// code is its constants, its gather and its loops over pixels and tiles.
// conv2d, depthwise (groups == in_c == out_c): npu_x86_depthwise, two taps per vpmaddwd, 8 channels
// per register; with VNNI npu_x86_vnni_depthwise, four taps per vpdpbusd, 16 channels per register.
// Requantisation: 8 outputs at a time for the single rounding of ONNX models (64-bit products of
// _mm256_mul_epi32, even and odd lanes apart); TFLite's double roundings and the channels after the
// last whole vector per output with npu_requantize_rounding, as the reference.
// Other grouped convolutions (depth multiplier > 1 too): one groups-1 kernel per group, over the
// group's channel slices (simd_common.h register_mac_family).
#include <algorithm>

#include "x86_common.h"

namespace coral::x86 {

namespace {

using simd::ConvShape;
using simd::conv_shape;
using simd::emit_pixel_coordinates;
using simd::emit_taps;

// int16 input pairs per tap (groups 1)
int64_t pairs_of(const ConvShape& s) { return (s.in_c + 1) / 2; }

constexpr int kTileVectors = 4;               // accumulator registers per channel tile and pixel
constexpr int kTile = kLanes * kTileVectors;  // output channels per tile
constexpr int kPixels = 2;                    // output pixels sharing each weight load

// VNNI: int8 input quads per tap, and the tile of 4 zmm registers of 16 int32 lanes.
int64_t quads_of(const ConvShape& s) { return (s.in_c + 3) / 4; }
constexpr int kVnniTile = 64;

// [tile][tap][word][lane of the tile][per_word]: the input channels of a tap in words of per_word
// (2: the AVX2 pairs, int16; 4: the VNNI quads, int8), each tile's weights for one word as 4
// registers; zeros past the last input or output channel.
std::vector<int32_t> pack_words(const ConvShape& s, const std::vector<int32_t>& weight, int64_t tile_width,
                                int64_t per_word) {
  const int64_t tiles = (s.out_c + tile_width - 1) / tile_width, words = (s.in_c + per_word - 1) / per_word;
  std::vector<int32_t> packed(tiles * s.taps() * words * tile_width * per_word, 0);
  size_t at = 0;
  for (int64_t tile = 0; tile < tiles; ++tile) {
    for (int64_t tap = 0; tap < s.taps(); ++tap) {
      for (int64_t word = 0; word < words; ++word) {
        for (int64_t lane = 0; lane < tile_width; ++lane, at += per_word) {
          int64_t co = tile * tile_width + lane;
          for (int64_t j = 0; j < per_word; ++j) {
            int64_t ci = per_word * word + j;
            if (co < s.out_c && ci < s.in_c) packed[at + j] = weight[(co * s.taps() + tap) * s.in_c + ci];
          }
        }
      }
    }
  }
  return packed;
}

// The VNNI kernels' bias: bias - (zp + 128) * sum of the channel's weights (the header's fold of the
// unsigned inputs' offset), computed in int64 and wrapped to int32 as the int32 accumulators wrap.
Array vnni_bias(const ConvShape& s, const Arrays& arrays) {
  const auto& weight = array(arrays, "weight").values;
  const Array* bias = optional_array(arrays, "bias");
  const int64_t per_channel = static_cast<int64_t>(weight.size()) / s.out_c;  // taps x input channels per group
  Array out{"int32", {s.out_c}, std::vector<int32_t>(s.out_c, 0)};
  for (int64_t co = 0; co < s.out_c; ++co) {
    int64_t sum = 0;
    for (int64_t i = 0; i < per_channel; ++i) sum += weight[co * per_channel + i];
    const int64_t folded = (bias ? bias->values[co] : 0) - (s.input_zero_point + 128) * sum;
    out.values[co] = static_cast<int32_t>(static_cast<uint32_t>(folded));
  }
  return out;
}

// The depthwise kernels' weights: [group of `per_word` taps][channel rounded up to `lanes`][per_word],
// 0 past the last tap: npu_x86_depthwise's pairs (2, 8 lanes, int16), npu_x86_vnni_depthwise's quads
// (4, 16 lanes, int8). The quads' whole 64-channel blocks hold channel 16L + 4k + j at 16k + 4L + j:
// the kernel's in-lane unpacks leave channel 16L + 4k + j in lane 4L + j of register k.
std::vector<int32_t> pack_depthwise(const ConvShape& s, const std::vector<int32_t>& weight, int64_t per_word,
                                    int64_t lanes) {
  const int64_t stride = round_up(s.out_c, lanes), groups = (s.taps() + per_word - 1) / per_word;
  const int64_t blocks = per_word == 4 ? s.out_c / 64 * 64 : 0;
  std::vector<int32_t> packed(groups * stride * per_word, 0);
  for (int64_t c = 0; c < s.out_c; ++c) {
    const int64_t r = c % 64, at = c < blocks ? c - r + 16 * (r % 16 / 4) + 4 * (r / 16) + r % 4 : c;
    for (int64_t tap = 0; tap < s.taps(); ++tap) {
      packed[((tap / per_word) * stride + at) * per_word + tap % per_word] = weight[c * s.taps() + tap];
    }
  }
  return packed;
}

// Every shift <= 0 (multipliers below 1, as nearly every layer's): npu_x86_mbqm_narrow's cheaper rounding.
bool narrow_requant(const Arrays& arrays) {
  const auto& shift = array(arrays, "shift").values;
  return std::all_of(shift.begin(), shift.end(), [](int32_t value) { return value <= 0; });
}

// Requantisation constants for 8-lane vectors (single rounding only): per channel, padded to a multiple
// of 8, the bias and multiplier as int32, and the 64-bit rounding nudge and right shift (31 - shift)
// ordered per 8 channels as [c0, c2, c4, c6, c1, c3, c5, c7]: the even and odd lanes' halves of
// _mm256_mul_epi32. The VNNI forms' (vnni: the header's 16-lane npu_x86_requantize) are padded to 16
// and ordered per 16 channels [c0, c2, .., c14, c1, c3, .., c15], their nudges without 2^62 and no vfix.
// Adds NAME_vbias (when bias), NAME_vmultiplier, NAME_vnudge and NAME_vshift (and NAME_vfix when narrow).
void add_vector_requant(Constants& constants, const ConvShape& s, const Arrays& arrays, const Array* bias, bool vnni) {
  const int64_t lanes = vnni ? 16 : kLanes, padded = round_up(s.out_c, lanes);
  const auto& multiplier = array(arrays, "multiplier").values;
  const auto& shift = array(arrays, "shift").values;
  const bool narrow = narrow_requant(arrays) && !vnni;
  std::vector<int32_t> vbias(padded, 0), vmultiplier(padded, 0), vfix(padded, 0);
  std::vector<int64_t> nudge(padded, 1), right(padded, 1);
  for (int64_t co = 0; co < s.out_c; ++co) {
    vbias[co] = bias ? bias->values[co] : 0;
    vmultiplier[co] = multiplier[co];
    int64_t lane = co % lanes, slot = co - lane + (lane % 2) * (lanes / 2) + lane / 2;
    right[slot] = 31 - shift[co];
    nudge[slot] = rounding_nudge(shift[co]) + (narrow ? int64_t{1} << 62 : 0);
    // npu_x86_mbqm_narrow's fix: -2^(62 - right) mod 2^32
    vfix[co] = static_cast<int32_t>(0u - static_cast<uint32_t>(uint64_t{1} << (62 - right[slot])));
  }
  constants.add("int32_t", 4, "vbias", vbias);  // zeros without a bias
  constants.add("int32_t", 4, "vmultiplier", vmultiplier);
  constants.add64("vnudge", nudge);
  constants.add64("vshift", right);
  if (narrow) constants.add("int32_t", 4, "vfix", vfix);
}

// The VNNI forms load their constants as whole zmm registers: 64-byte aligned, no load splits a cache
// line (at 32 bytes half of them did, a third slower on a 96->576 pointwise layer).
constexpr int kZmmAlignment = 64;

// NAME_rq: the kernel's npu_x86_requant (npu_x86_quant.h), whose npu_x86_requantize all kernels share.
// With vnni, no vfix (the header's 16-lane form needs none), narrow still set when every shift is <= 0.
void add_requant_struct(Constants& constants, const ConvShape& s, const std::string& name, bool bias, bool vector,
                        bool narrow, bool vnni) {
  auto field = [&](bool present, const char* what) { return present ? name + "_" + what : std::string("NULL"); };
  constants.text += fmt("static const npu_x86_requant %s_rq = {%s, %s_multiplier, %s_shift, %s, %s, %s, %s, %s, %lld, "
                        "%lld, %lld, %lld, %d, %d, %lld};\n", name.c_str(), field(bias, "bias").c_str(), name.c_str(),
                        name.c_str(), field(vector, "vbias").c_str(), field(vector, "vmultiplier").c_str(),
                        field(vector, "vnudge").c_str(), field(vector, "vshift").c_str(),
                        field(vector && narrow && !vnni, "vfix").c_str(), (long long)s.output_zero_point, (long long)s.act_min,
                        (long long)s.act_max, (long long)s.rounding, vector ? 1 : 0, vector && narrow ? 1 : 0,
                        (long long)s.whole_blocks_end());
}

// The products of a groups-1 convolution's tiles: AVX2 int16 pairs (vpmaddwd) or AVX-512 VNNI byte
// quads (vpdpbusd).
struct Products {
  bool vnni;
  int64_t words(const ConvShape& s) const { return s.taps() * (vnni ? quads_of(s) : pairs_of(s)); }  // per pixel
  int tile() const { return vnni ? kVnniTile : kTile; }
  int lanes() const { return vnni ? 16 : kLanes; }
};

// A groups-1 convolution (or dense layer) with one kind of products: each output pixel's inputs
// gathered as words (the header's pairs or quads), channel tiles of the words against the packed
// weights, then the row's requantisation.
class WordConvEmitter {
 public:
  WordConvEmitter(const KernelSpec& spec, const ConvShape& shape, Products products)
      : spec_(spec), s_(shape), p_(products), k_(products.words(shape)), prefix_(spec.name + (products.vnni ? "_q" : "")) {}

  // (constants, code): the code defines the kernel's entry, spec.name.
  std::pair<Constants, std::string> emit(const Arrays& arrays) {
    Constants constants{prefix_};
    constants.alignment = p_.vnni ? kZmmAlignment : constants.alignment;
    if (p_.vnni) {
      constants.add("int8_t", 1, "weight", pack_words(s_, array(arrays, "weight").values, kVnniTile, 4));
    } else {
      constants.add("int16_t", 2, "weight", pack_words(s_, array(arrays, "weight").values, kTile, 2));
    }
    const Array folded = p_.vnni ? vnni_bias(s_, arrays) : Array{};
    const Array* bias = p_.vnni ? &folded : optional_array(arrays, "bias");
    if (bias) constants.add("int32_t", 4, "bias", bias->values);
    constants.add("int32_t", 4, "multiplier", array(arrays, "multiplier").values);
    constants.add("int32_t", 4, "shift", array(arrays, "shift").values);
    if (vector_requant()) add_vector_requant(constants, s_, arrays, bias, p_.vnni);
    add_requant_struct(constants, s_, prefix_, bias != nullptr, vector_requant(), narrow_requant(arrays), p_.vnni);
    CWriter c;
    emit_gather(c);
    emit_entry(c);
    return {constants, c.str()};
  }

 private:
  std::string name(const std::string& what) const { return prefix_ + "_" + what; }
  bool vector_requant() const { return s_.rounding == 0; }

  // Each tap's words at words + tap * W: the header's pairs (zeros for a padding tap) or quads (the
  // byte zp + 128 for a padding tap).
  void emit_gather(CWriter& c) {
    const long long per_tap = k_ / s_.taps(), in_c = s_.in_c, zp = s_.input_zero_point;
    c.open(fmt("static %s void %s(const int8_t* input, int32_t pixel, int32_t* words)", kIsa, name("gather").c_str()));
    emit_pixel_coordinates(c, s_, "pixel");
    if (p_.vnni) {
      emit_taps(c, s_, [&] { c.line(fmt("npu_x86_vnni_quads(x, %lld, words + tap * %lld);", in_c, per_tap)); },
                fmt("npu_x86_vnni_padding(words + tap * %lld, %lld, %lld);", per_tap, per_tap, zp));
    } else {
      emit_taps(c, s_, [&] { c.line(fmt("npu_x86_widen_pairs(x, %lld, %lld, words + tap * %lld);", in_c, zp, per_tap)); },
                fmt("for (int32_t p = 0; p < %lld; ++p) words[tap * %lld + p] = 0;", per_tap, per_tap));
    }
    c.close().blank();
  }

  // A pixel's sums: one row of acc, every output channel (rounded up to a whole tile).
  int64_t acc_stride() const { return round_up(s_.out_c, p_.tile()); }

  // One tile of `width` channels (a constant) for `pixels` pixels: their sums into acc's rows.
  void emit_tile_call(CWriter& c, int pixels, int64_t width) {
    int vectors = static_cast<int>((width + p_.lanes() - 1) / p_.lanes());
    const int64_t tile_weights = k_ * p_.tile() * (p_.vnni ? 4 : 2);  // elements of the weight array per tile
    c.line(fmt("npu_x86_%stile%d_%d(words, %lld, %s + (size_t)tile * %lld, acc + tile * %d, %lld);", p_.vnni ? "vnni_" : "",
               pixels, vectors, (long long)k_, name("weight").c_str(), (long long)tile_weights, p_.tile(),
               (long long)acc_stride()));
  }

  void emit_pixels(CWriter& c, int pixels) {
    for (int p = 0; p < pixels; ++p) {
      c.line(fmt("%s(input, first + %d, words + %lld);", name("gather").c_str(), p, (long long)(p * k_)));
    }
    simd::emit_channel_tiles(c, s_.out_c, p_.tile(), [&](int64_t width) { emit_tile_call(c, pixels, width); });
    // then each pixel's whole row at once: one call per pixel, not one per tile
    for (int p = 0; p < pixels; ++p) {
      c.line(fmt("npu_x86_requantize(&%s, acc + %lld, 0, %lld, output + (size_t)(first + %d) * %lld);",
                 name("rq").c_str(), (long long)(p * acc_stride()), (long long)s_.out_c, p,
                 (long long)s_.output_stride()));
    }
  }

  void emit_buffers(CWriter& c) {
    c.line(fmt("int32_t words[%lld] __attribute__((aligned(64)));", (long long)(kPixels * k_)));
    c.line(fmt("int32_t acc[%lld] __attribute__((aligned(64)));", (long long)(kPixels * acc_stride())));
  }

  // NAME_blocks(begin, end, io): pixel blocks [begin, end), each thread with its own word and sum
  // buffers on its stack.
  void emit_blocks(CWriter& c) {
    c.open(fmt("static %s void %s(int64_t begin, int64_t end, const void* data)", kIsa, name("blocks").c_str()));
    c.line("const int8_t* input = ((const npu_io*)data)->input;");
    c.line("int8_t* output = ((const npu_io*)data)->output;");
    emit_buffers(c);
    c.open(fmt("for (int32_t first = (int32_t)begin * %d; first < (int32_t)end * %d; first += %d)", kPixels, kPixels,
               kPixels));
    emit_pixels(c, kPixels);
    c.close();
    c.close().blank();
  }

  // The entry splits the pixel blocks over the runtime's threads, then does the odd pixel.
  void emit_entry(CWriter& c) {
    int64_t blocks = s_.pixels() / kPixels, tail = s_.pixels() % kPixels;
    if (blocks > 0) emit_blocks(c);
    c.open(fmt("%s void %s(const int8_t* input, int8_t* output, int8_t* scratch)", kIsa, spec_.name.c_str()));
    c.line("(void)scratch;");
    if (blocks > 0) {
      c.line("const npu_io io = {input, NULL, output};");
      // a slice of at least ~64k multiply-accumulates is worth a thread
      int64_t block_macs = std::max<int64_t>(1, kPixels * s_.taps() * s_.in_c * s_.out_c);
      c.line(fmt("npu_parallel_range(%s, &io, %lld, %lld);", name("blocks").c_str(), (long long)blocks,
                 (long long)std::max<int64_t>(1, 65536 / block_macs)));
    }
    if (tail > 0) {
      c.open("");
      emit_buffers(c);
      c.line(fmt("const int32_t first = %lld;", (long long)(blocks * kPixels)));
      emit_pixels(c, static_cast<int>(tail));
      c.close();
    }
    c.close();
  }

  const KernelSpec& spec_;
  ConvShape s_;
  Products p_;
  int64_t k_;  // int32 input words per pixel: taps x pairs (or quads)
  std::string prefix_;  // of the kernel's constants and helpers
};

// A kernel with both forms, (constants, code) each: the compiler keeps the one its -march allows
// (npu_x86_quant.h NPU_X86_VNNI); the other is never parsed past the preprocessor.
Emitted both_forms(const KernelSpec& spec, const std::pair<Constants, std::string>& vnni,
                   const std::pair<Constants, std::string>& avx2) {
  std::string code = "#if NPU_X86_VNNI\n" + vnni.first.text + "\n" + vnni.second + "#else\n" + avx2.first.text + "\n" +
                     avx2.second + "#endif\n";
  return {prologue(spec) + code, 0, std::max(vnni.first.bytes, avx2.first.bytes), Schedule{}};
}

Emitted emit_general(const KernelSpec& spec, const ConvShape& s, const Arrays& arrays) {
  return both_forms(spec, WordConvEmitter(spec, s, Products{true}).emit(arrays),
                    WordConvEmitter(spec, s, Products{false}).emit(arrays));
}

// One form of a depthwise kernel: (its constants, its code defining spec.name); the VNNI form's
// constants and helpers are named NAME_q_*.
std::pair<Constants, std::string> depthwise_form(const KernelSpec& spec, const ConvShape& s, const Arrays& arrays,
                                                 bool vnni) {
  const std::string prefix = spec.name + (vnni ? "_q" : "");
  Constants constants{prefix};
  constants.alignment = vnni ? kZmmAlignment : constants.alignment;
  const auto& weight = array(arrays, "weight").values;
  if (vnni) {
    constants.add("int8_t", 1, "weight", pack_depthwise(s, weight, 4, 16));
  } else {
    constants.add("int16_t", 2, "weight", pack_depthwise(s, weight, 2, kLanes));
  }
  const Array folded = vnni ? vnni_bias(s, arrays) : Array{};
  const Array* bias = vnni ? &folded : optional_array(arrays, "bias");
  if (bias) constants.add("int32_t", 4, "bias", bias->values);
  constants.add("int32_t", 4, "multiplier", array(arrays, "multiplier").values);
  constants.add("int32_t", 4, "shift", array(arrays, "shift").values);
  const bool vector_requant = s.rounding == 0;
  if (vector_requant) add_vector_requant(constants, s, arrays, bias, vnni);
  add_requant_struct(constants, s, prefix, bias != nullptr, vector_requant, narrow_requant(arrays), vnni);
  constants.text += simd::depthwise_shape_constant(prefix, s);
  // output pixels split over the threads
  ParallelKernel k;
  k.count = s.pixels();
  k.grain = 65536 / std::max<int64_t>(1, s.taps() * s.out_c);
  k.body = fmt("npu_x86_%sdepthwise(&%s_shape, %s_weight, &%s_rq, io->input, io->output, begin, end);",
               vnni ? "vnni_" : "", prefix.c_str(), prefix.c_str(), prefix.c_str());
  return {constants, parallel_kernel(spec.name, k)};
}

Emitted emit_depthwise(const KernelSpec& spec, const ConvShape& s, const Arrays& arrays) {
  return both_forms(spec, depthwise_form(spec, s, arrays, true), depthwise_form(spec, s, arrays, false));
}

const bool registered = simd::register_mac_family("x86", "x86", emit_depthwise, emit_general);

}  // namespace

}  // namespace coral::x86
