// Shared by the CPU SIMD emitter families (x86_*.cc, neon_*.cc): static constants, a convolution's
// shape, and the C that walks an output pixel's taps.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "coral/codegen.h"
#include "elementwise.h"

namespace coral::simd {

// Static constants, named NAME_<what> (several kernels share one translation unit), 32-byte aligned.
struct Constants {
  std::string name, text;
  int64_t bytes = 0;
  int alignment = 32;  // bytes; 64 where zmm loads read them (a split cache line costs a third on VNNI)
  std::string add(const std::string& ctype, int64_t element_bytes, const std::string& what,
                  const std::vector<int32_t>& values);
  std::string add64(const std::string& what, const std::vector<int64_t>& values);
};

int64_t round_up(int64_t value, int64_t multiple);

// "static const TYPE NAME = {v0, v1, ...};": a reference params struct, fields in declaration order.
std::string struct_constant(const std::string& type, const std::string& name, const std::vector<int64_t>& values);

// A conv2d spec's geometry and quantisation; a dense layer is a 1x1 convolution over `batches`
// one-pixel images.
struct ConvShape {
  int64_t batches, in_h, in_w, in_c, out_h, out_w, out_c, kernel_h, kernel_w;
  int64_t stride_h, stride_w, dilation_h, dilation_w, pad_top, pad_left, groups;
  int64_t input_zero_point, output_zero_point, act_min, act_max, rounding;
  // Elements between consecutive pixels of the input and of the output: in_c and out_c (0 stands
  // for them), except for one group of a grouped convolution, which reads and writes a slice of
  // each pixel's channels.
  int64_t in_stride = 0, out_stride = 0;
  // NPU_ROUND_BLOCKS_OF_8 (LiteRT's depthwise): the channels below this round ties up, the rest as
  // gemmlowp (npu_channel_rounding); -1 stands for the whole blocks of 8 of out_c. One group of a
  // grouped convolution has its share of the whole layer's split.
  int64_t blocks_end = -1;

  int64_t taps() const { return kernel_h * kernel_w; }
  int64_t input_stride() const { return in_stride ? in_stride : in_c; }
  int64_t output_stride() const { return out_stride ? out_stride : out_c; }
  int64_t pixels() const { return batches * out_h * out_w; }
  int64_t whole_blocks_end() const { return blocks_end >= 0 ? blocks_end : ew::whole_blocks_end(out_c); }
  bool depthwise() const { return groups > 1 && groups == in_c && out_c == in_c; }
};

ConvShape conv_shape(const KernelSpec& spec);

// Output pixel `pixel` (flat over batches, out_h, out_w): C defining b, oy, ox.
void emit_pixel_coordinates(CWriter& c, const ConvShape& s, const std::string& pixel);

// The taps of output pixel (b, oy, ox) inside the input: `body` runs with x pointing at tap's input
// channels and tap its index; `outside` (may be empty) runs for a tap in the padding.
void emit_taps(CWriter& c, const ConvShape& s, const std::function<void()>& body, const std::string& outside);

// Registers a family's conv2d and dense kernels (`family` names it in messages: "x86", "NEON"):
// depthwise convolutions (depth multiplier 1) go to `depthwise`, groups 1 and dense layers to
// `general`. Other grouped convolutions (up to kMaxGroups groups) are one `general` kernel per group,
// over the group's slice of each pixel's channels (ConvShape's strides), called in turn; more groups
// are refused (validate() says why, and the build runs kernels/ref). No schedule knobs, and no
// portable form (kernels/ref is the portable kernel).
// The `general` emitter must honour ConvShape::input_stride() and output_stride().
constexpr int64_t kMaxGroups = 32;
using MacEmitter = std::function<Emitted(const KernelSpec&, const ConvShape&, const Arrays&)>;
bool register_mac_family(const std::string& arch, const std::string& family, const MacEmitter& depthwise,
                         const MacEmitter& general);

// One kernel's entry in a SIMD family (no schedule knobs, no portable form): `read` throws SpecError
// for a spec the reference would refuse, `check` says what the family leaves to kernels/ref ("" when
// nothing); `family` names it in messages.
using Check = std::function<std::string(const KernelSpec&)>;
using Emit = std::function<Emitted(const KernelSpec&, const Arrays&)>;
KernelEntry simple_entry(const std::string& arch, const std::string& family, const std::string& kernel, Emit emit_kernel,
                         std::function<void(const KernelSpec&)> read, Check check);
std::string no_condition(const KernelSpec&);

// "static const npu_depthwise_shape NAME_shape = {...};" (kernels/include/npu_depthwise.h).
std::string depthwise_shape_constant(const std::string& name, const ConvShape& s);

// `count` output channels in tiles of `tile`: a loop over the whole tiles, then a block for the
// partial one; `call(width)` emits one tile's statement, with `tile` (the tile's index) in scope.
void emit_channel_tiles(CWriter& c, int64_t count, int64_t tile, const std::function<void(int64_t)>& call);

// How a family moves bytes and looks up 256-entry tables, for its data-movement kernels:
// `prologue(spec)` starts a kernel's file; `moves` are its fill(dst, value, bytes) and
// copy(dst, src, bytes); `lookup` is its (table, x, y, begin, end) function and `layout` turns a
// table (by unsigned input byte) into the constant that function reads.
using TableLayout = std::function<std::vector<int32_t>(const std::vector<int32_t>&)>;
struct MoveFamily {
  std::function<std::string(const KernelSpec&)> prologue;
  ew::MoveCalls moves;
  std::string lookup;
  TableLayout layout;
};

// Registers a family's concat, pad, copy and resize_nearest (single threaded: they run at memory
// speed), each the reference's:
//   concat: each input's rows into its columns of the output, a copy for an input with the output's
//           scale and zero point, else the table lookup row by row;
//   pad, copy: pad.cc's and copy.cc's plans with the family's moves;
//   resize_nearest: an output row that reads the same input row as the one before copies that row,
//           else pixel by pixel (copies for 16 channels or more, a byte loop for fewer).
bool register_move_family(const std::string& arch, const std::string& family, const MoveFamily& moves);

}  // namespace coral::simd
