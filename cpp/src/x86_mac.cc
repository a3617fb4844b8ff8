// The x86 emitter family (Target::arch "x86"): int8 convolutions and dense layers with AVX2 intrinsics
// for the host build, same KernelSpec and ABI as the RVV family, bit-exact to kernels/ref.
//
// Products: int8 values are widened to int16 and multiplied with vpmaddwd (pairs of int16 products
// summed into int32, exact for int8 x int8), never with vpmaddubsw, whose int16 pair sums saturate
// (ONNX Runtime's u8s8 kernels are off by up to 121 steps on CPUs without VNNI for that reason).
//
// conv2d, groups 1 (and dense, a 1x1 convolution over `batches` pixels): each output pixel's inputs
// are first written to scratch as int32 words holding two zero-point-subtracted int16 inputs
// (consecutive input channels of one tap; a tap in the padding is zeros, which is exactly what the
// reference's skipped tap adds). Channel tiles of 32 outputs (4 registers of 8 int32 lanes) then
// accumulate two pixels at once: per input pair one broadcast per pixel and one vpmaddwd per
// register against weights packed at compile time as [tile][tap][pair][32 lanes][2] int16.
// The tile loops and the requantisation are npu_x86_quant.h's, shared by every kernel of a file (one
// copy each: per-kernel copies made a MobileNetV2's host C take 3x longer to compile); a kernel's own
// code is its constants, its gather and its loops over pixels and tiles.
// conv2d, depthwise (groups == in_c == out_c): 8 channels per register, 32 per block, the taps in
// the input outside the loop over channels; inputs sign-extended to int32 and multiplied by int32
// weights packed [tap][channel].
// Requantisation: 8 outputs at a time for the single rounding of ONNX models (64-bit products of
// _mm256_mul_epi32, even and odd lanes apart); TFLite's double roundings and the channels after the
// last whole vector per output with npu_requantize_rounding, as the reference.
// Other convolutions (grouped, depth multiplier > 1) have no x86 entry: validate() says so and the
// host build runs kernels/ref for them.
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

// [tile][tap][pair][lane of the tile][2]: one tile's weights for one input pair are 4 registers.
std::vector<int32_t> pack_pairs(const ConvShape& s, const std::vector<int32_t>& weight) {
  int64_t tiles = (s.out_c + kTile - 1) / kTile;
  std::vector<int32_t> packed(tiles * s.taps() * pairs_of(s) * kTile * 2, 0);
  size_t at = 0;
  for (int64_t tile = 0; tile < tiles; ++tile) {
    for (int64_t tap = 0; tap < s.taps(); ++tap) {
      for (int64_t pair = 0; pair < pairs_of(s); ++pair) {
        for (int64_t lane = 0; lane < kTile; ++lane, at += 2) {
          int64_t co = tile * kTile + lane;
          for (int64_t half = 0; half < 2; ++half) {
            int64_t ci = 2 * pair + half;
            if (co < s.out_c && ci < s.in_c) packed[at + half] = weight[(co * s.taps() + tap) * s.in_c + ci];
          }
        }
      }
    }
  }
  return packed;
}

// npu_x86_depthwise's weights: [tap pair][channel rounded up to 8][2] int16, 0 past the last tap.
std::vector<int32_t> pack_depthwise(const ConvShape& s, const std::vector<int32_t>& weight) {
  const int64_t stride = round_up(s.out_c, kLanes), pairs = (s.taps() + 1) / 2;
  std::vector<int32_t> packed(pairs * stride * 2, 0);
  for (int64_t c = 0; c < s.out_c; ++c) {
    for (int64_t tap = 0; tap < s.taps(); ++tap) packed[((tap / 2) * stride + c) * 2 + tap % 2] = weight[c * s.taps() + tap];
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
// _mm256_mul_epi32.
// Adds NAME_vbias (when bias), NAME_vmultiplier, NAME_vnudge and NAME_vshift (and NAME_vfix when narrow).
void add_vector_requant(Constants& constants, const ConvShape& s, const Arrays& arrays, const Array* bias) {
  const int64_t padded = round_up(s.out_c, kLanes);
  const auto& multiplier = array(arrays, "multiplier").values;
  const auto& shift = array(arrays, "shift").values;
  const bool narrow = narrow_requant(arrays);
  std::vector<int32_t> vbias(padded, 0), vmultiplier(padded, 0), vfix(padded, 0);
  std::vector<int64_t> nudge(padded, 1), right(padded, 1);
  for (int64_t co = 0; co < s.out_c; ++co) {
    vbias[co] = bias ? bias->values[co] : 0;
    vmultiplier[co] = multiplier[co];
    int64_t lane = co % kLanes, slot = co - lane + (lane % 2) * 4 + lane / 2;
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

// NAME_rq: the kernel's npu_x86_requant (npu_x86_quant.h), whose npu_x86_requantize all kernels share.
void add_requant_struct(Constants& constants, const ConvShape& s, const std::string& name, bool bias, bool vector,
                        bool narrow) {
  auto field = [&](bool present, const char* what) { return present ? name + "_" + what : std::string("NULL"); };
  constants.text += fmt("static const npu_x86_requant %s_rq = {%s, %s_multiplier, %s_shift, %s, %s, %s, %s, %s, %lld, "
                        "%lld, %lld, %lld, %d, %d};\n", name.c_str(), field(bias, "bias").c_str(), name.c_str(),
                        name.c_str(), field(vector, "vbias").c_str(), field(vector, "vmultiplier").c_str(),
                        field(vector, "vnudge").c_str(), field(vector, "vshift").c_str(),
                        field(vector && narrow, "vfix").c_str(), (long long)s.output_zero_point, (long long)s.act_min,
                        (long long)s.act_max, (long long)s.rounding, vector ? 1 : 0, vector && narrow ? 1 : 0);
}

class PairConvEmitter {
 public:
  PairConvEmitter(const KernelSpec& spec, const ConvShape& shape) : spec_(spec), s_(shape), k_(shape.taps() * pairs_of(shape)) {}

  Emitted emit(const Arrays& arrays) {
    Constants constants{spec_.name};
    constants.add("int16_t", 2, "weight", pack_pairs(s_, array(arrays, "weight").values));
    const Array* bias = optional_array(arrays, "bias");
    if (bias) constants.add("int32_t", 4, "bias", bias->values);
    constants.add("int32_t", 4, "multiplier", array(arrays, "multiplier").values);
    constants.add("int32_t", 4, "shift", array(arrays, "shift").values);
    CWriter c;
    if (vector_requant()) add_vector_requant(constants, s_, arrays, bias);
    add_requant_struct(constants, s_, spec_.name, bias != nullptr, vector_requant(), narrow_requant(arrays));
    emit_gather(c);
    emit_entry(c);
    return {prologue(spec_) + constants.text + "\n" + c.str(), 0, constants.bytes, Schedule{}};
  }

 private:
  std::string name(const std::string& what) const { return spec_.name + "_" + what; }
  bool vector_requant() const { return s_.rounding == 0; }

  // pairs[tap * P + p] = (x[2p] - zp) | (x[2p + 1] - zp) << 16 as int16 halves (npu_x86_widen_pairs);
  // zeros for a padding tap.
  void emit_gather(CWriter& c) {
    const long long pairs = pairs_of(s_);
    c.open(fmt("static %s void %s(const int8_t* input, int32_t pixel, int32_t* pairs)", kIsa, name("gather").c_str()));
    emit_pixel_coordinates(c, s_, "pixel");
    emit_taps(c, s_, [&] {
      c.line(fmt("npu_x86_widen_pairs(x, %lld, %lld, pairs + tap * %lld);", (long long)s_.in_c,
                 (long long)s_.input_zero_point, pairs));
    }, fmt("for (int32_t p = 0; p < %lld; ++p) pairs[tap * %lld + p] = 0;", pairs, pairs));
    c.close().blank();
  }

  // A pixel's sums: one row of acc, every output channel (rounded up to a whole tile).
  int64_t acc_stride() const { return round_up(s_.out_c, kTile); }

  // One tile of `width` channels (a constant) for `pixels` pixels: their sums into acc's rows.
  void emit_tile_call(CWriter& c, int pixels, int64_t width) {
    int vectors = static_cast<int>((width + kLanes - 1) / kLanes);
    c.line(fmt("npu_x86_tile%d_%d(pairs, %lld, %s + (size_t)tile * %lld, acc + tile * %d, %lld);", pixels, vectors,
               (long long)k_, name("weight").c_str(), (long long)(k_ * kTile * 2), kTile, (long long)acc_stride()));
  }

  void emit_pixels(CWriter& c, int pixels) {
    for (int p = 0; p < pixels; ++p) {
      c.line(fmt("%s(input, first + %d, pairs + %lld);", name("gather").c_str(), p, (long long)(p * k_)));
    }
    simd::emit_channel_tiles(c, s_.out_c, kTile, [&](int64_t width) { emit_tile_call(c, pixels, width); });
    // then each pixel's whole row at once: one call per pixel, not one per tile
    for (int p = 0; p < pixels; ++p) {
      c.line(fmt("npu_x86_requantize(&%s, acc + %lld, 0, %lld, output + (size_t)(first + %d) * %lld);",
                 name("rq").c_str(), (long long)(p * acc_stride()), (long long)s_.out_c, p, (long long)s_.out_c));
    }
  }

  void emit_buffers(CWriter& c) {
    c.line(fmt("int32_t pairs[%lld] __attribute__((aligned(32)));", (long long)(kPixels * k_)));
    c.line(fmt("int32_t acc[%lld] __attribute__((aligned(32)));", (long long)(kPixels * acc_stride())));
  }

  // NAME_blocks(begin, end, io): pixel blocks [begin, end), each thread with its own pair and sum
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
      int64_t block_macs = std::max<int64_t>(1, kPixels * 2 * k_ * s_.out_c);
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
  int64_t k_;  // int32 input pairs per pixel: taps x pairs
};

Emitted emit_depthwise(const KernelSpec& spec, const ConvShape& s, const Arrays& arrays) {
  Constants constants{spec.name};
  constants.add("int16_t", 2, "weight", pack_depthwise(s, array(arrays, "weight").values));
  const Array* bias = optional_array(arrays, "bias");
  if (bias) constants.add("int32_t", 4, "bias", bias->values);
  constants.add("int32_t", 4, "multiplier", array(arrays, "multiplier").values);
  constants.add("int32_t", 4, "shift", array(arrays, "shift").values);
  const bool vector_requant = s.rounding == 0;
  if (vector_requant) add_vector_requant(constants, s, arrays, bias);
  add_requant_struct(constants, s, spec.name, bias != nullptr, vector_requant, narrow_requant(arrays));
  constants.text += simd::depthwise_shape_constant(spec.name, s);
  // output pixels by npu_x86_depthwise, split over the threads
  ParallelKernel k;
  k.count = s.pixels();
  k.grain = 65536 / std::max<int64_t>(1, s.taps() * s.out_c);
  k.body = fmt("npu_x86_depthwise(&%s_shape, %s_weight, &%s_rq, io->input, io->output, begin, end);", spec.name.c_str(),
               spec.name.c_str(), spec.name.c_str());
  return {prologue(spec) + constants.text + "\n" + parallel_kernel(spec.name, k), 0, constants.bytes, Schedule{}};
}

const bool registered = simd::register_mac_family(
    "x86", "x86", emit_depthwise,
    [](const KernelSpec& spec, const ConvShape& s, const Arrays& arrays) { return PairConvEmitter(spec, s).emit(arrays); });

}  // namespace

}  // namespace coral::x86
