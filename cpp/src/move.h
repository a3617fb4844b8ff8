// The strided copy emitter shared by the data-movement kernels (copy.cc, pad.cc). Private to cpp/src.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "elementwise.h"

namespace coral::move {

// One axis of a copy: `extent` indices, `in_stride` / `out_stride` elements apart.
struct Axis {
  int64_t extent, in_stride, out_stride;
};

// The axes of extent > 1 in the output's order (largest output stride first), adjacent axes
// contiguous in both tensors merged; one axis {1, 1, 1} when nothing is left (one element).
// SpecError (naming `what`) when two writes may land on one element: every output stride must
// pass everything the smaller ones reach.
std::vector<Axis> normalise(const std::vector<Axis>& axes, const std::string& what);

// The axis the vector instructions run along: the one contiguous in both tensors when it holds
// a register's worth of bytes (`register_bytes`: VLEN / 8) or more, else the one needing the fewest
// vector instructions of `lanes` elements.
size_t vector_axis(const std::vector<Axis>& axes, int64_t lanes, int64_t register_bytes);

// Vector loads (as many stores) of the copy with `axis` as the vector axis.
int64_t vector_count(const std::vector<Axis>& axes, size_t axis, int64_t lanes);

// `count` elements in chunks of at most `lanes`: move(src, dst, vl) is the C statement of one
// chunk (vl a constant); src / dst are C pointer expressions stepped by `*_step` per element.
// Full chunks run in a loop with a constant vl, the rest is one more chunk.
void emit_chunks(CWriter& w, int64_t count, int64_t lanes, const std::string& src, int64_t src_step,
                 const std::string& dst, int64_t dst_step,
                 const std::function<std::string(const std::string&, const std::string&, int64_t)>& move);

// The copy's loops, RVV (vector axis by vector_axis) or portable, reading from the C pointer
// expression `input` and writing to `output`; element offsets as the axes say. `calls` (a CPU SIMD
// family's, vector false): an inner axis contiguous on both sides is one copy(dst, src, n) call,
// and the loops are left to the compiler's vectoriser.
void emit_copy(CWriter& w, const Target& target, const std::vector<Axis>& axes, const ew::VType& t, bool vector, const std::string& input,
               const std::string& output, const ew::MoveCalls* calls = nullptr);

}  // namespace coral::move
