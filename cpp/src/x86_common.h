// Shared by the x86 emitter family (x86_*.cc): the file prologue, static constants, and the AVX2
// fixed-point helpers every kernel's requantisation uses.
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

// "/* NAME: kernel ... */" and the includes (stdint, immintrin.h, npu_quant.h).
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

// NAME_round64 (64-bit (p + nudge) >> right, arithmetic, clamped to [lo, hi]), NAME_mbqm (8 int32 lanes
// times 8 multipliers, each product rounded by its lane's nudge and shift: the even lanes' and the odd
// lanes' given apart, as _mm256_mul_epi32 forms them) and NAME_store8 (8 int32 in [-128, 127] -> 8 bytes).
// AVX2 has only the logical 64-bit variable shift: negative values are flipped around it. The callers'
// clamps lie inside int32, so the reference's int32 saturation cannot change a clamped value.
void emit_fixed_point_helpers(CWriter& c, const std::string& name);

// The 64-bit nudge and right shift of a rounding by 31 - shift bits (MBQM with single rounding).
int64_t rounding_nudge(int64_t shift);

}  // namespace coral::x86
