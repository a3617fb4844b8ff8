// The CPU SIMD emitter families' shared pieces (simd_common.h).
#include "simd_common.h"

#include <algorithm>

#include "elementwise.h"

namespace coral::simd {

std::string Constants::add(const std::string& ctype, int64_t element_bytes, const std::string& what,
                           const std::vector<int32_t>& values) {
  std::string array_name = name + "_" + what;
  std::string array = c_array(ctype, array_name, values);
  text += array.replace(array.find("aligned(16)"), 11, "aligned(" + std::to_string(alignment) + ")");
  bytes += element_bytes * static_cast<int64_t>(values.size());
  return array_name;
}

std::string Constants::add64(const std::string& what, const std::vector<int64_t>& values) {
  std::string array_name = name + "_" + what;
  text += "static const int64_t " + array_name + "[" + std::to_string(values.size()) +
          "] __attribute__((section(\".weights\"), aligned(" + std::to_string(alignment) + "))) = {";
  for (size_t i = 0; i < values.size(); ++i) text += (i % 8 ? " " : "\n  ") + std::to_string(values[i]) + "LL,";
  text += "\n};\n";
  bytes += 8 * static_cast<int64_t>(values.size());
  return array_name;
}

int64_t round_up(int64_t value, int64_t multiple) { return (value + multiple - 1) / multiple * multiple; }

std::string struct_constant(const std::string& type, const std::string& name, const std::vector<int64_t>& values) {
  std::string initialiser;
  for (int64_t v : values) initialiser += (initialiser.empty() ? "" : ", ") + std::to_string(v);
  return "static const " + type + " " + name + " = {" + initialiser + "};\n";
}

ConvShape conv_shape(const KernelSpec& spec) {
  if (spec.kernel == "dense") {
    return {spec.at("batches"), 1, 1, spec.at("in_features"), 1, 1, spec.at("out_features"), 1, 1, 1, 1, 1, 1, 0, 0, 1,
            spec.at("input_zero_point"), spec.at("output_zero_point"), spec.at("act_min"), spec.at("act_max"),
            spec.get("rounding", 0)};
  }
  return {spec.at("batches"), spec.at("in_h"), spec.at("in_w"), spec.at("in_c"), spec.at("out_h"), spec.at("out_w"),
          spec.at("out_c"), spec.at("kernel_h"), spec.at("kernel_w"), spec.at("stride_h"), spec.at("stride_w"),
          spec.get("dilation_h", 1), spec.get("dilation_w", 1), spec.at("pad_top"), spec.at("pad_left"),
          spec.get("groups", 1), spec.at("input_zero_point"), spec.at("output_zero_point"), spec.at("act_min"),
          spec.at("act_max"), spec.get("rounding", 0)};
}

// Output pixel `pixel` (flat over batches, out_h, out_w): its input row and output row.
void emit_pixel_coordinates(CWriter& c, const ConvShape& s, const std::string& pixel) {
  c.line(fmt("const int32_t b = %s / %lld, oy = %s / %lld %% %lld, ox = %s %% %lld;", pixel.c_str(),
             (long long)(s.out_h * s.out_w), pixel.c_str(), (long long)s.out_w, (long long)s.out_h, pixel.c_str(),
             (long long)s.out_w));
}

// The taps of output pixel (b, oy, ox) inside the input: `body` runs with x pointing at tap's input
// channels and tap its index; `outside` (may be empty) runs for a tap in the padding.
void emit_taps(CWriter& c, const ConvShape& s, const std::function<void()>& body, const std::string& outside) {
  c.open(fmt("for (int32_t ky = 0; ky < %lld; ++ky)", (long long)s.kernel_h));
  c.line(fmt("const int32_t iy = oy * %lld - %lld + ky * %lld;", (long long)s.stride_h, (long long)s.pad_top,
             (long long)s.dilation_h));
  c.open(fmt("for (int32_t kx = 0; kx < %lld; ++kx)", (long long)s.kernel_w));
  c.line(fmt("const int32_t ix = ox * %lld - %lld + kx * %lld, tap = ky * %lld + kx;", (long long)s.stride_w,
             (long long)s.pad_left, (long long)s.dilation_w, (long long)s.kernel_w));
  c.open(fmt("if (iy < 0 || iy >= %lld || ix < 0 || ix >= %lld)", (long long)s.in_h, (long long)s.in_w));
  if (!outside.empty()) c.line(outside);
  c.line("continue;");
  c.close();
  c.line(fmt("const int8_t* x = input + (((size_t)b * %lld + iy) * %lld + ix) * %lld;", (long long)s.in_h,
             (long long)s.in_w, (long long)s.input_stride()));
  body();
  c.close();
  c.close();
}

KernelEntry simple_entry(const std::string& arch, const std::string& family, const std::string& kernel, Emit emit_kernel,
                         std::function<void(const KernelSpec&)> read, Check check) {
  auto validate = [read, check](const KernelSpec& spec, const Schedule&) -> std::string {
    try {
      read(spec);
      return check(spec);
    } catch (const SpecError& error) {
      return error.what();
    }
  };
  auto emit = [emit_kernel, validate, family](const KernelSpec& spec, const Arrays& arrays, const Schedule& schedule,
                                              bool vector) {
    if (!vector) throw SpecError("the " + family + " kernels have no portable form: kernels/ref is the portable kernel");
    std::string why = validate(spec, schedule);
    if (!why.empty()) throw SpecError(spec.kernel + " " + spec.name + ": " + why);
    return emit_kernel(spec, arrays);
  };
  return {kernel, emit, [](const KernelSpec&) { return Schedule{}; }, validate, {}, arch};
}

std::string no_condition(const KernelSpec&) { return ""; }

namespace {

// Group g's share of a grouped convolution's arrays: the rows [g * out_c, (g + 1) * out_c) of the
// weight (OHWI: each output channel's taps x input channels of its group) and of the per-channel
// bias, multiplier and shift.
Arrays group_arrays(const Arrays& arrays, int64_t g, int64_t out_c) {
  Arrays out;
  for (const auto& [name, whole] : arrays) {
    const int64_t rows = whole.shape.empty() ? 1 : whole.shape[0];
    const int64_t per_row = static_cast<int64_t>(whole.values.size()) / std::max<int64_t>(rows, 1);
    Array part{whole.dtype, whole.shape, {}};
    part.shape[0] = out_c;
    part.values.assign(whole.values.begin() + g * out_c * per_row, whole.values.begin() + (g + 1) * out_c * per_row);
    out.emplace(name, std::move(part));
  }
  return out;
}

// A grouped convolution as `general` kernels NAME_g<i>, one per group: each reads its group's input
// channels of every pixel (stride in_c) and writes its output channels (stride out_c); NAME calls
// them with the input and output moved to the group's first channel.
Emitted emit_grouped(const KernelSpec& spec, const ConvShape& s, const Arrays& arrays, const MacEmitter& general) {
  ConvShape group = s;
  group.in_c = s.in_c / s.groups;
  group.out_c = s.out_c / s.groups;
  group.groups = 1;
  group.in_stride = s.in_c;
  group.out_stride = s.out_c;
  const int64_t whole_blocks_end = s.whole_blocks_end();
  Emitted out;
  CWriter entry;
  entry.open(fmt("void %s(const int8_t* input, int8_t* output, int8_t* scratch)", spec.name.c_str()));
  for (int64_t g = 0; g < s.groups; ++g) {
    KernelSpec part = spec;
    part.name = fmt("%s_g%lld", spec.name.c_str(), (long long)g);
    group.blocks_end = std::clamp<int64_t>(whole_blocks_end - g * group.out_c, 0, group.out_c);
    const Emitted emitted = general(part, group, group_arrays(arrays, g, group.out_c));
    out.source += emitted.source + "\n";
    out.constant_bytes += emitted.constant_bytes;
    out.scratch_bytes = std::max(out.scratch_bytes, emitted.scratch_bytes);
    entry.line(fmt("%s(input + %lld, output + %lld, scratch);", part.name.c_str(), (long long)(g * group.in_c),
                   (long long)(g * group.out_c)));
  }
  entry.close();
  out.source += entry.str();
  return out;
}

}  // namespace

bool register_mac_family(const std::string& arch, const std::string& family, const MacEmitter& depthwise,
                         const MacEmitter& general) {
  auto read = [](const KernelSpec& spec) {
    conv_shape(spec);
    ew::rounding(spec);  // 0, 1 or 2, or conv2d's 3 (SpecError otherwise)
  };
  auto check = [family](const KernelSpec& spec) {
    ConvShape s = conv_shape(spec);
    if (s.groups == 1 || s.depthwise()) return std::string();
    if (s.groups < 1 || s.in_c % s.groups || s.out_c % s.groups) {
      return fmt("%lld groups do not divide %lld -> %lld channels", (long long)s.groups, (long long)s.in_c,
                 (long long)s.out_c);
    }
    if (s.groups <= kMaxGroups) return std::string();
    return fmt("grouped convolution (%lld groups, %lld -> %lld channels): %s kernels take groups 1, depthwise with "
               "depth multiplier 1, and up to %lld groups (one kernel each)", (long long)s.groups, (long long)s.in_c,
               (long long)s.out_c, family.c_str(), (long long)kMaxGroups);
  };
  auto emit = [depthwise, general](const KernelSpec& spec, const Arrays& arrays) {
    ConvShape s = conv_shape(spec);
    if (s.depthwise()) return depthwise(spec, s, arrays);
    return s.groups == 1 ? general(spec, s, arrays) : emit_grouped(spec, s, arrays, general);
  };
  return register_kernel(simple_entry(arch, family, "conv2d", emit, read, check)) &&
         register_kernel(simple_entry(arch, family, "dense", emit, read, check));
}

std::string depthwise_shape_constant(const std::string& name, const ConvShape& s) {
  return fmt("static const npu_depthwise_shape %s_shape = {%lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld, "
             "%lld, %lld, %lld, %lld};\n", name.c_str(), (long long)s.in_h, (long long)s.in_w, (long long)s.out_c,
             (long long)s.out_h, (long long)s.out_w, (long long)s.kernel_h, (long long)s.kernel_w, (long long)s.stride_h,
             (long long)s.stride_w, (long long)s.dilation_h, (long long)s.dilation_w, (long long)s.pad_top,
             (long long)s.pad_left, (long long)s.input_zero_point);
}

void emit_channel_tiles(CWriter& c, int64_t count, int64_t tile, const std::function<void(int64_t)>& call) {
  int64_t full = count / tile, rest = count % tile;
  if (full > 0) {
    c.open(fmt("for (int32_t tile = 0; tile < %lld; ++tile)", (long long)full));
    call(tile);
    c.close();
  }
  if (rest > 0) {
    c.open("");
    c.line(fmt("const int32_t tile = %lld;", (long long)full));
    call(rest);
    c.close();
  }
}

namespace {

Emitted emit_concat(const KernelSpec& spec, const MoveFamily& f) {
  const ew::ConcatSpec c = ew::read_concat_spec(spec);
  Constants constants{spec.name};
  std::string args;
  for (size_t i = 0; i < c.inputs.size(); ++i) args += fmt("const int8_t* input%zu, ", i);
  CWriter w;
  w.open(fmt("void %s(%sint8_t* output, int8_t* scratch)", spec.name.c_str(), args.c_str())).line("(void)scratch;");
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    const ew::ConcatInput& in = c.inputs[i];
    const ew::Block b = ew::block_of(c, in);
    if (b.rows == 0 || b.cols == 0) continue;
    const std::string table = in.identity ? "" : constants.add("int8_t", 1, fmt("table%zu", i), f.layout(ew::concat_table(c, in)));
    w.open(fmt("for (int64_t r = 0; r < %lld; ++r)", (long long)b.rows));
    w.line(fmt("const int8_t* src = input%zu + r * %lld;", i, (long long)b.src_stride));
    w.line(fmt("int8_t* dst = output + %lld + r * %lld;", (long long)in.offset, (long long)b.dst_stride));
    if (in.identity) {
      w.line(fmt("%s(dst, src, %lld);", f.moves.copy.c_str(), (long long)b.cols));
    } else {
      w.line(fmt("%s(%s, src, dst, 0, %lld);", f.lookup.c_str(), table.c_str(), (long long)b.cols));
    }
    w.close();
  }
  w.close();
  return {f.prologue(spec) + constants.text + "\n" + w.str(), 0, constants.bytes, Schedule{}};
}

Emitted emit_resize_nearest(const KernelSpec& spec, const Arrays& arrays, const MoveFamily& f) {
  const std::string& copy = f.moves.copy;
  const ew::ResizeTables t = ew::read_nearest_tables(spec, arrays);
  Constants constants{spec.name};
  const std::string y = constants.add("int32_t", 4, "y_index", t.y), x = constants.add("int32_t", 4, "x_index", t.x);
  const long long c = t.channels, in_row = t.in_w * c, out_row = t.out_w * c;
  CWriter w;
  w.open(fmt("void %s(const int8_t* input, int8_t* output, int8_t* scratch)", spec.name.c_str())).line("(void)scratch;");
  w.open(fmt("for (int32_t b = 0; b < %lld; ++b)", (long long)t.batches));
  w.open(fmt("for (int32_t y = 0; y < %lld; ++y)", (long long)t.out_h));
  w.line(fmt("int8_t* out = output + ((int64_t)b * %lld + y) * %lld;", (long long)t.out_h, out_row));
  w.open(fmt("if (y > 0 && %s[y] == %s[y - 1])", y.c_str(), y.c_str()));
  w.line(fmt("%s(out, out - %lld, %lld);", copy.c_str(), out_row, out_row)).line("continue;");
  w.close();
  w.line(fmt("const int8_t* row = input + ((int64_t)b * %lld + %s[y]) * %lld;", (long long)t.in_h, y.c_str(), in_row));
  w.open(fmt("for (int32_t x = 0; x < %lld; ++x)", (long long)t.out_w));
  if (c >= 16) {
    w.line(fmt("%s(out + x * %lld, row + %s[x] * %lld, %lld);", copy.c_str(), c, x.c_str(), c, c));
  } else {
    w.line(fmt("for (int32_t c = 0; c < %lld; ++c) out[x * %lld + c] = row[%s[x] * %lld + c];", c, c, x.c_str(), c));
  }
  w.close().close().close().close();
  return {f.prologue(spec) + constants.text + "\n" + w.str(), 0, constants.bytes, Schedule{}};
}

}  // namespace

bool register_move_family(const std::string& arch, const std::string& family, const MoveFamily& f) {
  auto entry = [&](const char* kernel, Emit emit, std::function<void(const KernelSpec&)> read) {
    return register_kernel(simple_entry(arch, family, kernel, std::move(emit), std::move(read), no_condition));
  };
  return entry("concat", [f](const KernelSpec& spec, const Arrays&) { return emit_concat(spec, f); },
               [](const KernelSpec& spec) { ew::read_concat_spec(spec); }) &&
         entry("pad", [f](const KernelSpec& spec, const Arrays&) {
           return Emitted{f.prologue(spec) + ew::pad_with_calls(spec, f.moves), 0, 0, Schedule{}};
         }, ew::check_pad_spec) &&
         entry("copy", [f](const KernelSpec& spec, const Arrays&) {
           return Emitted{f.prologue(spec) + ew::copy_with_calls(spec, f.moves), 0, 0, Schedule{}};
         }, ew::check_copy_spec) &&
         entry("resize_nearest", [f](const KernelSpec& spec, const Arrays& arrays) { return emit_resize_nearest(spec, arrays, f); },
               ew::check_resize_spec);
}

}  // namespace coral::simd
