// "lut": any int8 -> int8 function of one element, as the 256-byte table the compiler computed
// (kernels/ref/add_s8.c npu_lut_s8, compiler/quant/reference/lut.py): sigmoid, tanh, hard-swish,
// SiLU, leaky ReLU and their decompositions. The table arrives in the reference order
// (table[in + 128]) and is stored in the unsigned-byte order, so that the input bytes themselves
// are the vluxei8 offsets: one load, one indexed load and one store per vector.
// Schedule: lmul, of the int8 lanes (8: 128 elements per instruction at VLEN 128).
#include "elementwise.h"

namespace coral {
namespace {

int64_t read_size(const KernelSpec& spec) { return ew::field(spec, "size", 0, INT32_MAX); }

// table[q + 128] (reference order) -> by_byte[(uint8_t)q]: 0..127 first, then -128..-1.
std::vector<int32_t> by_unsigned_byte(const Array& table) {
  if (table.dtype != "int8" || table.values.size() != 256) {
    throw SpecError("lut: array 'table' must be int8[256]");
  }
  std::vector<int32_t> by_byte(256);
  for (int byte = 0; byte < 256; ++byte) by_byte[byte] = table.values[(byte + 128) % 256];
  return by_byte;
}

Emitted emit(const KernelSpec& spec, const Arrays& arrays, const Schedule& schedule, bool vector) {
  int64_t size = read_size(spec);
  const std::string table = spec.name + "_table";
  Emitted out;
  out.source = c_prologue(spec, vector) + "/* The output for each input byte, indexed by the byte as unsigned. */\n" +
               c_array("int8_t", table, by_unsigned_byte(array(arrays, "table"))) + "\n" +
               ew::emit_table_loop(spec, size, table, schedule.lmul, vector);
  out.constant_bytes = 256;
  out.schedule = schedule;
  return out;
}

const bool registered = register_kernel(ew::lmul_only_entry("lut", emit, [](const KernelSpec& spec) { read_size(spec); }));

}  // namespace
}  // namespace coral
