// Shared by the x86 emitter family (x86_*.cc): the file prologue, static constants, and the AVX2
// helpers' include.
#pragma once

#include <string>
#include <vector>

#include "coral/codegen.h"
#include "simd_common.h"

namespace coral::x86 {

constexpr int kLanes = 8;  // int32 lanes of a 256-bit register
// Every function carries the ISA it needs, so the file compiles whatever -march the compiler was given
// (TVM's export_library compiles "source" mode C without any).
constexpr const char* kIsa = "__attribute__((target(\"avx2\")))";
constexpr const char* kInline = "static inline __attribute__((always_inline, target(\"avx2\")))";


// "/* NAME: kernel ... */" and the includes (stdint, immintrin.h, npu_quant.h, npu_parallel.h,
// npu_x86_quant.h: the AVX2 requantisation helpers every kernel calls).
std::string prologue(const KernelSpec& spec);

using simd::Constants;
using simd::round_up;

// A kernel split over the TVM runtime's threads (npu_parallel.h): NAME_range(begin, end, data) runs
// `body` (C statements over the items [begin, end), with `io`, the kernel's npu_io, in scope), and
// void NAME(const INPUT* input, [const int8_t* input2,] OUTPUT* output, int8_t* scratch) hands the
// items [0, count) to npu_parallel_range in slices of at least `grain`, then runs `after` (C
// statements with the entry's parameters in scope).
struct ParallelKernel {
  std::string input_type = "int8_t", output_type = "int8_t";  // io's pointers are int8_t* whatever these are
  bool two_inputs = false;
  int64_t count = 0, grain = 1;
  std::string body, after;
};
std::string parallel_kernel(const std::string& name, const ParallelKernel& k);

// The 64-bit nudge and right shift of a rounding by 31 - shift bits (MBQM with single rounding).
int64_t rounding_nudge(int64_t shift);

}  // namespace coral::x86
