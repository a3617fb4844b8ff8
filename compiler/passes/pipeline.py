"""The graph pass pipeline, in order. Each entry is a pure IRModule -> IRModule function."""

import tvm

from compiler.passes.dead_code import eliminate_dead_code
from compiler.passes.fold_batchnorm import fold_batchnorm
from compiler.passes.fold_constants import fold_constants
from compiler.passes.fold_pad import fold_pad
from compiler.passes.remove_redundant_qdq import remove_redundant_qdq
from compiler.passes.split_to_slices import split_to_slices

PIPELINE = (
    fold_constants,       # weights computed in the graph become constants
    remove_redundant_qdq, # quantize(dequantize(x)) with equal parameters is x (pre-quantised models)
    eliminate_dead_code,  # batch_norm's unused outputs would block the fold
    split_to_slices,      # one strided_slice per part read: single-tensor ops for every later stage
    fold_batchnorm,       # conv [+ bias] + BN -> conv + bias
    fold_pad,             # a zero pad of H, W -> the conv's padding (Keras' ZeroPadding2D)
    eliminate_dead_code,  # the replaced conv and BN
)


def optimise(mod: tvm.IRModule, passes=PIPELINE) -> tvm.IRModule:
    for graph_pass in passes:
        mod = graph_pass(mod)
    return mod
