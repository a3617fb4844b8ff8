// Shared by the x86 emitter family (x86_*.cc): the file prologue, static constants, and the AVX2
// helpers' include.
#pragma once

#include <string>
#include <vector>

#include "coral/codegen.h"

namespace coral::x86 {

constexpr int kLanes = 8;  // int32 lanes of a 256-bit register
// Every function carries the ISA it needs, so the file compiles whatever -march the compiler was given
// (TVM's export_library compiles "source" mode C without any).
constexpr const char* kIsa = "__attribute__((target(\"avx2\")))";
constexpr const char* kInline = "static inline __attribute__((always_inline, target(\"avx2\")))";


// "/* NAME: kernel ... */" and the includes (stdint, immintrin.h, npu_quant.h, npu_parallel.h,
// npu_x86_quant.h: the AVX2 requantisation helpers every kernel calls).
std::string prologue(const KernelSpec& spec);

// Static constants, named NAME_<what> (several kernels share one translation unit), 32-byte aligned.
struct Constants {
  std::string name, text;
  int64_t bytes = 0;
  std::string add(const std::string& ctype, int64_t element_bytes, const std::string& what,
                  const std::vector<int32_t>& values);
  std::string add64(const std::string& what, const std::vector<int64_t>& values);
};

int64_t round_up(int64_t value, int64_t multiple);

// The 64-bit nudge and right shift of a rounding by 31 - shift bits (MBQM with single rounding).
int64_t rounding_nudge(int64_t shift);

}  // namespace coral::x86
