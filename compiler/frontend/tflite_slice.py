"""TFLite STRIDED_SLICE -> ONNX Slice (+ Reshape for shrunk axes).

TFLite's masks are resolved here on the static shape into explicit starts / ends per axis, the
way tensorflow/lite/kernels/internal/strided_slice_logic.h does: a begin_mask / end_mask bit
takes the whole extent in the stride's direction, negative indices count from the end, the
`offset` option makes `end` relative to `begin`, and a shrink_axis_mask bit keeps one element
and drops the axis. Ellipsis and new-axis masks are not used by CNN exporters and are refused.
"""

import numpy as np

_BEFORE_ZERO = np.iinfo(np.int64).min  # ONNX Slice's "past the start" for a negative step


def strided_slice(graph, op, operand) -> None:
    x = operand(graph, op, 0, "input")
    shape = graph.tensor(x).shape
    begin, end, strides = (np.ravel(graph.constant(operand(graph, op, i, what))).astype(np.int64)
                           for i, what in ((1, "begin"), (2, "end"), (3, "strides")))
    if op.option("ellipsisMask", 0) or op.option("newAxisMask", 0):
        graph.fail("ellipsis and new-axis masks are not supported")
    if not len(begin) == len(end) == len(strides) == len(shape) or np.any(strides == 0):
        graph.fail(f"begin/end/strides must have one non-zero entry per axis of {list(shape)}")
    starts, ends = [], []
    for axis, dim in enumerate(shape):
        start, stop = _axis_bounds(op, axis, int(dim), int(begin[axis]), int(end[axis]), int(strides[axis]))
        starts.append(start)
        ends.append(stop)
        if op.option("shrinkAxisMask", 0) >> axis & 1:
            strides[axis] = 1
    constant = lambda values, hint: graph.emit_constant(np.array(values, np.int64), hint)  # noqa: E731
    y = graph.emit("Slice", [graph.value(x), constant(starts, "starts"), constant(ends, "ends"),
                             constant(list(range(len(shape))), "axes"), constant(strides, "steps")])
    out_shape = graph.tensor(op.outputs[0]).shape
    y = graph.emit("Reshape", [y, constant(list(out_shape), "shape")])
    graph.define(op.outputs[0], y)


def _axis_bounds(op, axis: int, dim: int, begin: int, end: int, stride: int) -> tuple[int, int]:
    bit = lambda mask: op.option(mask, 0) >> axis & 1  # noqa: E731
    if op.option("offset", False):
        end = begin + end
    if bit("beginMask"):
        start = 0 if stride > 0 else dim - 1
    else:
        start = begin + dim if begin < 0 else begin
        start = min(max(start, 0), dim) if stride > 0 else min(max(start, -1), dim - 1)
    if bit("shrinkAxisMask"):
        return start, start + 1
    if bit("endMask"):
        return start, dim if stride > 0 else _BEFORE_ZERO
    stop = end + dim if end < 0 else end
    stop = min(max(stop, 0), dim) if stride > 0 else min(max(stop, -1), dim - 1)
    return start, _BEFORE_ZERO if stop < 0 else stop
