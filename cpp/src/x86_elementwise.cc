// The x86 family's element-wise and pooling kernels (AVX2): lut and requantize (a 256-entry table
// looked up 32 bytes at a time with vpshufb), quantize (float32 -> int8), dequantize (int8 -> float32), mul (with the
// squeeze-excite broadcast), prelu, softmax (tables gathered), bilinear resize, max_pool2d, avg_pool2d and
// global_avg_pool2d, and (simd_common.cc register_move_family) concat, pad, copy and nearest resize
// with the C library's fills and copies and the lookup above. The loops are the microkernels of
// kernels/include/npu_x86_elementwise.h; each emitter writes the kernel's constants and hands its
// independent outputs to the runtime's threads (x86_common.h parallel_kernel). Bit-exact to
// kernels/ref (tests/kernels/test_x86_kernels.py), in either rounding: ONNX models' single rounding
// and TFLite models' double roundings (npu_x86_quant.h npu_x86_mbqm_double).
#include <algorithm>
#include <functional>

#include "elementwise.h"
#include "simd_common.h"
#include "x86_common.h"

namespace coral::x86 {

namespace {

constexpr int64_t kChunk = 4096;  // elements per slice of the flat kernels

std::string header(const KernelSpec& spec) {
  return prologue(spec) + "#include \"npu_x86_elementwise.h\"\n\n";
}

// The body of a flat kernel's range: its elements [start, stop) of `size`, in chunks of kChunk.
std::string chunk_bounds(int64_t size) {
  return fmt("const int64_t start = begin * %lld, stop = end * %lld < %lld ? end * %lld : %lld;\n", (long long)kChunk,
             (long long)kChunk, (long long)size, (long long)kChunk, (long long)size);
}

int64_t chunks(int64_t size) { return (size + kChunk - 1) / kChunk; }

// ---- lut, requantize ----

// npu_x86_lookup's form of a table by byte (the output of each input byte read as unsigned: 0..127,
// then -128..-1): 16 rows of 16 bytes, each twice (both 128-bit lanes).
std::vector<int32_t> lookup_rows(const std::vector<int32_t>& by_byte) {
  std::vector<int32_t> rows;
  for (int row = 0; row < 16; ++row) {
    for (int lane = 0; lane < 2; ++lane) rows.insert(rows.end(), by_byte.begin() + 16 * row, by_byte.begin() + 16 * row + 16);
  }
  return rows;
}

Emitted emit_lookup(const KernelSpec& spec, int64_t size, const std::vector<int32_t>& by_byte) {
  Constants constants{spec.name};
  const std::string row_array = constants.add("int8_t", 1, "rows", lookup_rows(by_byte));
  ParallelKernel k;
  k.count = chunks(size);
  k.body = chunk_bounds(size) + fmt("npu_x86_lookup(%s, io->input, io->output, start, stop);", row_array.c_str());
  return {header(spec) + constants.text + "\n" + parallel_kernel(spec.name, k), 0, constants.bytes, Schedule{}};
}

Emitted emit_lut(const KernelSpec& spec, const Arrays& arrays) {
  return emit_lookup(spec, ew::field(spec, "size", 0, INT32_MAX), ew::lut_by_byte(arrays));
}

Emitted emit_requantize(const KernelSpec& spec, const Arrays&) {
  return emit_lookup(spec, ew::field(spec, "size", 0, INT32_MAX), ew::requantize_by_byte(spec));
}

// ---- quantize ----

Emitted emit_quantize(const KernelSpec& spec, const Arrays&) {
  const ew::Quantization q = ew::read_quantization(spec);
  ParallelKernel k;
  k.input_type = "float";
  k.count = chunks(q.q.size);
  k.body = chunk_bounds(q.q.size) +
           fmt("npu_x86_quantize((const float*)io->input, io->output, start, stop, %af, %lld, %af, %lld);",
               (double)q.q.scale, (long long)q.q.zero_point, (double)q.reciprocal, (long long)q.blocked);
  return {header(spec) + parallel_kernel(spec.name, k), 0, 0, Schedule{}};
}

// ---- dequantize ----

Emitted emit_dequantize(const KernelSpec& spec, const Arrays&) {
  const ew::Dequantization d = ew::read_dequantization(spec);
  ParallelKernel k;
  k.output_type = "float";
  k.count = chunks(d.q.size);
  k.body = chunk_bounds(d.q.size) + fmt("npu_x86_dequantize(io->input, (float*)io->output, start, stop, %af, %lld, %lld);",
                                        (double)d.q.scale, (long long)d.q.zero_point, (long long)d.blocked);
  return {header(spec) + parallel_kernel(spec.name, k), 0, 0, Schedule{}};
}

// ---- mul ----

Emitted emit_mul(const KernelSpec& spec, const Arrays&) {
  ew::MulSpec m = ew::read_mul_spec(spec);
  const std::string params = spec.name + "_params";
  std::string constants = fmt("static const npu_x86_mul_params %s = {%lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld};\n",
                              params.c_str(), (long long)m.input1_zero_point, (long long)m.input2_zero_point,
                              (long long)m.output_zero_point, (long long)m.multiplier, (long long)m.shift,
                              (long long)m.act_min, (long long)m.act_max, (long long)m.rounding);
  ParallelKernel k;
  k.two_inputs = true;
  if (!m.broadcast) {
    const int64_t size = m.batches * m.pixels * m.channels;
    k.count = chunks(size);
    k.body = chunk_bounds(size) + fmt("npu_x86_mul(&%s, io->input + start, io->input2 + start, io->output + start, stop - start);",
                                      params.c_str());
  } else {
    // rows of `channels` elements, each meeting its batch's input2 row
    const long long c = m.channels, pixels = m.pixels;
    k.count = m.batches * m.pixels;
    k.grain = kChunk / std::max<int64_t>(1, m.channels);
    k.body = fmt("for (int64_t row = begin; row < end; ++row)\n"
                 "  npu_x86_mul(&%s, io->input + row * %lld, io->input2 + row / %lld * %lld, io->output + row * %lld, %lld);",
                 params.c_str(), c, pixels, c, c, c);
  }
  return {header(spec) + constants + "\n" + parallel_kernel(spec.name, k), 0, 0, Schedule{}};
}

// ---- max_pool2d, avg_pool2d ----

Emitted emit_pool(const KernelSpec& spec, const char* function) {
  ew::PoolSpec p = ew::read_pool_spec(spec);
  const std::string shape = spec.name + "_shape";
  std::string constants = fmt("static const npu_x86_pool_shape %s = {%lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld, "
                              "%lld, %lld, %lld, %lld};\n", shape.c_str(), (long long)p.in_h, (long long)p.in_w,
                              (long long)p.channels, (long long)p.out_h, (long long)p.out_w, (long long)p.kernel_h,
                              (long long)p.kernel_w, (long long)p.stride_h, (long long)p.stride_w, (long long)p.pad_top,
                              (long long)p.pad_left, (long long)p.act_min, (long long)p.act_max);
  ParallelKernel k;
  k.count = p.batches * p.out_h * p.out_w;
  k.grain = 4 * kChunk / std::max<int64_t>(1, p.channels * p.kernel_h * p.kernel_w);
  k.body = fmt("%s(&%s, io->input, io->output, begin, end);", function, shape.c_str());
  return {header(spec) + constants + "\n" + parallel_kernel(spec.name, k), 0, 0, Schedule{}};
}

Emitted emit_max_pool(const KernelSpec& spec, const Arrays&) { return emit_pool(spec, "npu_x86_max_pool"); }

Emitted emit_avg_pool(const KernelSpec& spec, const Arrays&) { return emit_pool(spec, "npu_x86_avg_pool"); }

// ---- global_avg_pool2d ----

Emitted emit_mean(const KernelSpec& spec, const Arrays&) {
  ew::MeanSpec m = ew::read_mean_spec(spec);
  const std::string shape = spec.name + "_shape";
  std::string constants = fmt("static const npu_x86_mean_shape %s = {%lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld, "
                              "%lld, %lld};\n", shape.c_str(), (long long)m.pixels, (long long)m.channels,
                              (long long)m.input_zero_point, (long long)m.output_zero_point, (long long)m.multiplier,
                              (long long)m.shift, (long long)m.act_min, (long long)m.act_max, (long long)m.bias,
                              (long long)m.rounding, (long long)m.block_rounding);
  ParallelKernel k;
  k.count = m.batches * std::max<int64_t>(1, m.channels / 8);  // npu_x86_mean's work items
  k.grain = 16 * kChunk / std::max<int64_t>(1, 8 * m.pixels);
  k.body = fmt("npu_x86_mean(&%s, io->input, io->output, begin, end);", shape.c_str());
  return {header(spec) + constants + "\n" + parallel_kernel(spec.name, k), 0, 0, Schedule{}};
}

// ---- prelu ----

Emitted emit_prelu(const KernelSpec& spec, const Arrays& arrays) {
  const ew::PreluSpec p = ew::read_prelu_spec(spec);
  Constants constants{spec.name};
  const std::vector<int64_t> slopes = ew::prelu_slopes(arrays, p);
  const std::string slope_array = constants.add("int32_t", 4, "slope", std::vector<int32_t>(slopes.begin(), slopes.end()));
  const std::string params = spec.name + "_params";
  constants.text += simd::struct_constant("npu_prelu_params", params, ew::prelu_param_values(p));
  ParallelKernel k;
  k.count = p.outer;
  k.grain = kChunk / std::max<int64_t>(1, p.channels);
  k.body = fmt("npu_x86_prelu(&%s, io->input, %s, io->output, begin, end);", params.c_str(), slope_array.c_str());
  return {header(spec) + constants.text + "\n" + parallel_kernel(spec.name, k), 0, constants.bytes, Schedule{}};
}

// ---- softmax ----

Emitted emit_softmax(const KernelSpec& spec, const Arrays&) {
  const ew::SoftmaxSpec p = ew::read_softmax_spec(spec);
  Constants constants{spec.name};
  const std::vector<int32_t> exps = ew::softmax_exp_table(p);
  const std::string exp_array = constants.add("int32_t", 4, "exp", exps);
  const std::string sum_array = constants.add("int32_t", 4, "sum", ew::softmax_sum_table(exps));
  ParallelKernel k;
  k.count = p.rows;
  k.grain = kChunk / std::max<int64_t>(1, p.depth);
  k.body = fmt("npu_x86_softmax(%s, %s, %lld, io->input, io->output, begin, end);", exp_array.c_str(), sum_array.c_str(),
               (long long)p.depth);
  return {header(spec) + constants.text + "\n" + parallel_kernel(spec.name, k), 0, constants.bytes, Schedule{}};
}

// ---- resize_bilinear ----

Emitted emit_resize_bilinear(const KernelSpec& spec, const Arrays& arrays) {
  const ew::ResizeTables t = ew::read_bilinear_tables(spec, arrays);
  Constants constants{spec.name};
  const std::string y_lerp = constants.add("int32_t", 4, "y_lerp", t.y);
  const std::string x_lerp = constants.add("int32_t", 4, "x_lerp", t.x);
  const std::string params = spec.name + "_params";
  constants.text += fmt("static const npu_resize_params %s = {%lld, %lld, %lld, %lld, %lld, %lld};\n", params.c_str(),
                        (long long)t.batches, (long long)t.in_h, (long long)t.in_w, (long long)t.channels,
                        (long long)t.out_h, (long long)t.out_w);
  ParallelKernel k;
  k.count = t.batches * t.out_h;
  k.grain = kChunk / std::max<int64_t>(1, t.out_w * t.channels);
  k.body = fmt("npu_x86_resize_bilinear(&%s, io->input, %s, %s, io->output, %d, begin, end);", params.c_str(),
               y_lerp.c_str(), x_lerp.c_str(), t.wide ? 1 : 0);
  return {header(spec) + constants.text + "\n" + parallel_kernel(spec.name, k), 0, constants.bytes, Schedule{}};
}

// ---- the table ----

using simd::Check;
using simd::no_condition;

KernelEntry entry(const std::string& kernel, simd::Emit emit_kernel, std::function<void(const KernelSpec&)> read, Check check) {
  return simd::simple_entry("x86", "x86", kernel, emit_kernel, read, check);
}

void read_size(const KernelSpec& spec) { ew::field(spec, "size", 0, INT32_MAX); }

const bool registered = [] {
  register_kernel(entry("lut", emit_lut, read_size, no_condition));
  register_kernel(entry("requantize", emit_requantize, [](const KernelSpec& s) { read_size(s); ew::requantize_by_byte(s); },
                        no_condition));
  register_kernel(entry("quantize", emit_quantize, [](const KernelSpec& s) { ew::read_quantization(s); }, no_condition));
  register_kernel(entry("dequantize", emit_dequantize, [](const KernelSpec& s) { ew::read_dequantization(s); }, no_condition));
  simd::register_move_family("x86", "x86", {header, {"npu_x86_fill", "npu_x86_copy"}, "npu_x86_lookup", lookup_rows});
  register_kernel(entry("mul", emit_mul, [](const KernelSpec& s) { ew::read_mul_spec(s); }, no_condition));
  register_kernel(entry("prelu", emit_prelu, [](const KernelSpec& s) { ew::read_prelu_spec(s); }, no_condition));
  register_kernel(entry("softmax", emit_softmax, [](const KernelSpec& s) { ew::read_softmax_spec(s); }, no_condition));
  register_kernel(entry("resize_bilinear", emit_resize_bilinear, ew::check_resize_spec, no_condition));
  register_kernel(entry("max_pool2d", emit_max_pool, [](const KernelSpec& s) { ew::read_pool_spec(s); }, no_condition));
  register_kernel(entry("avg_pool2d", emit_avg_pool, [](const KernelSpec& s) { ew::read_pool_spec(s); }, no_condition));
  register_kernel(entry("global_avg_pool2d", emit_mean, [](const KernelSpec& s) { ew::read_mean_spec(s); }, no_condition));
  return true;
}();

}  // namespace

}  // namespace coral::x86
