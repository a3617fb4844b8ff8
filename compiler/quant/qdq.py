"""The QDQ form: how a quantised graph is written in Relax, and constructors for it.

Every INT8 path meets here: our post-training quantisation (passes/insert_qdq.py) writes
it, pre-quantised ONNX models (QDQ, QLinearConv, ...) import into it, and the INT8
partition (quant/patterns.py) matches it and hands each group to a kernel codegen.

The form, in NHWC (passes/to_nhwc.py runs first), per quantised op:

    x_dq = R.dequantize(x_q, s_x, zp_x, axis=-1)          x_q int8, s_x float32 scalar, zp_x int8 scalar
    w_dq = R.dequantize(W_q, s_w, zeros, axis=0)          W_q int8 const OHWI (conv) or [K, O] (matmul,
                                                          then axis=1); s_w float32[O]; zeros int8[O]
    y    = R.nn.conv2d(x_dq, w_dq, NHWC, OHWI, ...)       or R.matmul(x_dq, w_dq)
    b_dq = R.dequantize(B_q, s_x*s_w, zeros32, axis=-1)   B_q int32 const [1,1,1,O] (conv) / [O] (matmul)
    y    = R.add(y, b_dq)                                 optional
    y    = R.nn.relu(y) | R.clip(y, lo, hi)               optional fused activation
    y_q  = R.quantize(y, s_y, zp_y, axis=-1)              int8 out

A layer raised to TFLite's 16x8 scheme (--accuracy-budget on coral-npu) reads and writes int16 tensors
at zero point 0 (x_q int16, y_q int16), its bias int32 at s_x*s_w (the kernel widens it to int64); an
int8 tensor it reads is widened, and its output narrowed for int8 readers, as quantize(dequantize(t)).

Elementwise add: add(dequantize(a_q), dequantize(b_q)) [+ act] -> quantize. Pools and the
global mean: op(dequantize(x_q)) -> quantize, with max/avg pool keeping the input's
(scale, zero point). Concat: concat([dequantize(q_i)...]) -> quantize (its single-use inputs
share its parameters). Constant zero pad: pad(dequantize(x_q), 0.0) -> quantize with the
input's parameters (the int8 pad value is the zero point). Each int8 op reads its own
dequantize of a tensor; one shared by several readers is split before partitioning. Scale-free ops
(reshape, flatten) run on the int8 tensor directly. Any elementwise function of one tensor
(sigmoid, hard-swish, SiLU, ...: passes/group_unary.py) is its 256-entry int8 table, computed at
compile time (quant/reference/lut.py): y_q = R.take(table, R.astype(x_q, "int32") + 128, axis=0). At the float boundaries a model input
is quantize(x) and an output is dequantize(y_q). An int8 / uint8 model input or output (--io) has
no quantize or dequantize: main's attributes INPUT_QPARAMS_ATTR / OUTPUT_QPARAMS_ATTR hold its
(scale, zero point) for the exporters, as a table that reads or writes it carries none.

Scales are float32 and zero points int8 (int32 for bias), as relax constants; a
per-tensor scale is a 0-d constant. FoldConstant would fold dequantize(W_q) back to a float
weight, so the INT8 partition runs before any FoldConstant on a QDQ module.
"""

import numpy as np
from tvm import relax


def _const(value, dtype):
    return relax.const(np.asarray(value, dtype=dtype))


def dequantize(expr, scale, zero_point, axis=-1, zero_point_dtype="int8"):
    """R.dequantize with float32 scale(s) and zero point(s) of the quantised dtype."""
    return relax.op.dequantize(expr, _const(scale, "float32"), _const(zero_point, zero_point_dtype), axis=axis, out_dtype="float32")


def quantize(expr, scale, zero_point, axis=-1, dtype="int8"):
    """R.quantize to int8 (or int16: a 16x8 layer's activations) with a float32 scale and a zero point of
    that dtype."""
    return relax.op.quantize(expr, _const(scale, "float32"), _const(zero_point, dtype), axis=axis, out_dtype=dtype)


TABLE_OFFSET = 128  # table index of int8 input q: q + 128

# main's attributes for the int8 / uint8 model inputs and outputs (--io), which no quantize writes or no
# dequantize reads: {param name: [scale, zero point]} and one [scale, zero point] per output ([] if float)
INPUT_QPARAMS_ATTR, OUTPUT_QPARAMS_ATTR = "integer_input_qparams", "integer_output_qparams"


def with_io_qparams(main: relax.Function, inputs: dict, outputs: list) -> relax.Function:
    """main with the attributes above: `inputs` {param name: (scale, zero point)}, `outputs` one (scale,
    zero point) or None per output. Scales float32 as every QDQ constant's (kept as Python floats,
    which TVM stores as doubles: exact)."""
    def pair(qparams):
        return [] if qparams is None else [float(np.float32(qparams[0])), int(qparams[1])]
    if inputs:
        main = main.with_attr(INPUT_QPARAMS_ATTR, {name: pair(q) for name, q in inputs.items()})
    if any(q is not None for q in outputs):
        main = main.with_attr(OUTPUT_QPARAMS_ATTR, [pair(q) for q in outputs])
    return main


def io_qparams(main: relax.Function) -> tuple[dict, list]:
    """({param name: (scale, zero point)}, [(scale, zero point) or None per output]) of main's integer
    inputs and outputs (with_io_qparams); empty if none."""
    attrs = main.attrs if main.attrs is not None else {}
    inputs = {str(name): (float(v[0]), int(v[1])) for name, v in (attrs.get(INPUT_QPARAMS_ATTR) or {}).items()}
    outputs = [(float(v[0]), int(v[1])) if len(v) else None for v in (attrs.get(OUTPUT_QPARAMS_ATTR) or [])]
    return inputs, outputs


def table_lookup(table: np.ndarray, index):
    """take(table int8[256], index): the int8 form of a function of one tensor."""
    return relax.op.take(relax.const(np.asarray(table, dtype=np.int8)), index, axis=0, mode="clip")


def weight(expr_q: np.ndarray, scales: np.ndarray, axis: int):
    """dequantize(const int8 weight) with per-channel scales along `axis` and zero points 0."""
    scales = np.asarray(scales, dtype=np.float32)
    return dequantize(relax.const(expr_q.astype(np.int8)), scales, np.zeros(scales.shape, np.int8), axis=axis)


def bias(bias_q: np.ndarray, scales: np.ndarray, axis: int = -1):
    """dequantize(const int32 bias) with scale s_in * s_w[c] per channel and zero point 0."""
    scales = np.asarray(scales, dtype=np.float32)
    return dequantize(relax.const(bias_q.astype(np.int32)), scales, np.zeros(scales.shape, np.int32), axis=axis,
                      zero_point_dtype="int32")
