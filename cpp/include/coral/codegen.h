// The RVV kernel codegen (coral-npu's Zve32x at VLEN 128, rvv256-rv64's V at VLEN 256, any target's
// [isa]): kernel spec + schedule -> C with RVV v1.0 intrinsics, or the same loops as portable C.
//
// A kernel spec is what compiler/quant/patterns.py lowers an int8 op to: the kernel name and the
// integer fields of its kernels/ref params struct (same names as kernels/include/npu_kernels_*.h),
// plus its constant arrays (weight OHWI or [O][K] int8, bias / multiplier / shift int32). Every
// generated kernel must be bit-exact to the kernels/ref function with the same spec.
//
// Generated function ABI (one per kernel, C linkage, name chosen by the caller):
//     void NAME(const int8_t* input, [const int8_t* input2,] int8_t* output, int8_t* scratch);
// NHWC activations; `scratch` points at Emitted::scratch_bytes bytes (may be NULL when 0).
// Constants the kernel needs (weights packed as the schedule wants, per-channel requantisation
// vectors) are `static const` arrays in the generated file, in section ".weights".
// Every file-scope name a kernel defines besides NAME itself (arrays, helper functions) starts
// with NAME: compiler/coral/kernel_runner.py #includes many kernels into one translation unit,
// where two kernels' `static const int32_t bias[]` would collide.
//
// Each kernel family registers itself (register_kernel in a static initialiser of its own .cc
// file): the module is a table of {kernel name -> emit, default schedule, validity check}.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace coral {

// The machine the code is emitted for: the [isa] table of the target's target.toml, which
// compiler/coral/codegen.py passes with every call. Vector lengths, register budgets and the
// scalar ISA of portable functions come from here; no emitter assumes a particular chip.
struct Target {
  int xlen = 0;              // scalar register width: 32 (rv32) or 64 (rv64)
  int vlen = 0;              // vector register width in bits (128, 256, ...)
  int elen = 0;              // widest vector element in bits (32 for Zve32x, 64 for V)
  int vector_registers = 0;  // architectural vector registers (32 in RVV 1.0)
  std::string scalar_march;  // -march without vectors: portable C functions inside a vector build
  std::string arch = "rvv";  // emitter family: "rvv" (RISC-V vector intrinsics) or "x86" (AVX2 intrinsics)

  int64_t register_bytes() const { return vlen / 8; }                       // int8 lanes at LMUL 1
  int lanes(int sew, int lmul) const { return vlen / sew * lmul; }         // VLMAX at SEW sew, LMUL lmul
  int int32_lanes(int lmul) const { return lanes(32, lmul); }
};

struct KernelSpec {
  std::string kernel;  // conv2d, dense, add, max_pool2d, avg_pool2d, global_avg_pool2d, requantize
  std::string name;    // the C function to define
  std::map<std::string, int64_t> params;
  Target target;       // what the code runs on

  int64_t at(const std::string& key) const;   // throws SpecError naming the missing field
  int64_t get(const std::string& key, int64_t fallback) const;
};

// A constant array in the kernel's reference layout (values widened to int32; int8 and int32 fit).
struct Array {
  std::string dtype;            // "int8" or "int32"
  std::vector<int64_t> shape;
  std::vector<int32_t> values;  // row-major
};
using Arrays = std::map<std::string, Array>;  // weight, bias (absent = no bias), multiplier, shift

// Schedule knobs. Not every kernel reads every knob; default_schedule fills in what it uses.
struct Schedule {
  int oc_tile = 0;       // output channels per vector operation (the vl of the channel loop); 0 = all
  int px_tile = 1;       // output pixels accumulated together (independent accumulator groups)
  int lmul = 8;          // LMUL of the int32 accumulators: 1, 2, 4 or 8
  std::string loop_order = "oc_px";  // "oc_px": channel tiles outside pixel tiles; "px_oc": inside
  int unroll = 1;        // unroll of the reduction loop
  std::string weight_pack = "i16";   // "i16": weights pre-widened at compile time; "i8": widened in the loop

  bool operator==(const Schedule&) const = default;
};

struct Emitted {
  std::string source;         // a complete C translation unit
  int64_t scratch_bytes = 0;  // bytes the caller passes as `scratch`
  int64_t constant_bytes = 0; // bytes of the static const arrays (section .weights)
  Schedule schedule;          // the schedule actually used
};

struct SpecError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

struct KernelEntry {
  std::string kernel;
  // vector = true: RVV intrinsics; false: the same loops in portable C.
  std::function<Emitted(const KernelSpec&, const Arrays&, const Schedule&, bool vector)> emit;
  std::function<Schedule(const KernelSpec&)> default_schedule;
  // Empty string when (spec, schedule) is valid; otherwise why not (register budget, tile sizes...).
  std::function<std::string(const KernelSpec&, const Schedule&)> validate;
  // Kernels with weights: the estimate's best schedule when the weight packing is fixed (a partial
  // schedule naming weight_pack starts from it). Empty for kernels without weights.
  std::function<Schedule(const KernelSpec&, const std::string& weight_pack)> default_for_pack = {};
  std::string arch = "rvv";  // the emitter family (Target::arch) this entry emits for
};

bool register_kernel(KernelEntry entry);
// The entry for `kernel` in the emitter family `arch`; throws SpecError when that family has none.
const KernelEntry& find_kernel(const std::string& kernel, const std::string& arch = "rvv");
std::vector<std::string> kernel_names(const std::string& arch = "rvv");

// ---- helpers for the emitters ----

const Array& array(const Arrays& arrays, const std::string& key);  // throws SpecError when missing
const Array* optional_array(const Arrays& arrays, const std::string& key);

// "static const int16_t NAME[N] __attribute__((section(\".weights\"), aligned(16))) = {...};\n"
std::string c_array(const std::string& ctype, const std::string& name, const std::vector<int32_t>& values);

// The file prologue: includes (stdint, npu_quant.h, and riscv_vector.h + npu_rvv_quant.h when vector).
std::string c_prologue(const KernelSpec& spec, bool vector);

// A tiny indenting line writer, so emitters read like the C they produce.
class CWriter {
 public:
  CWriter& line(const std::string& text);
  CWriter& open(const std::string& head);   // "head {" and indent
  CWriter& close(const std::string& tail = "}");
  CWriter& blank();
  std::string str() const { return out_; }

 private:
  std::string out_;
  int depth_ = 0;
};

// printf-style formatting into std::string.
std::string fmt(const char* format, ...) __attribute__((format(printf, 1, 2)));

}  // namespace coral
