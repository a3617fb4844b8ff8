"""remove_redundant_qdq: quantize(dequantize(x_q)) with equal parameters is x_q; nothing else changes."""

import tvm
from tvm import relax

from compiler.passes.dead_code import eliminate_dead_code
from compiler.passes.remove_redundant_qdq import remove_redundant_qdq
from compiler.quant import qdq


def module(requant_scale=None):
    """x_q -> dequantize -> quantize (same or other scale) -> dequantize -> relu."""
    x = relax.Var("x", relax.TensorType((1, 4), "int8"))
    bb = relax.BlockBuilder()
    with bb.function("main", [x]):
        with bb.dataflow():
            if requant_scale is None:
                y = x
            else:
                d = bb.emit(qdq.dequantize(x, 0.5, 3))
                y = bb.emit(qdq.quantize(d, requant_scale, 3))
            out = bb.emit_output(relax.op.nn.relu(bb.emit(qdq.dequantize(y, 0.5, 3))))
        bb.emit_func_output(out)
    return bb.get()


def test_pair_with_equal_parameters_is_removed():
    tvm.ir.assert_structural_equal(eliminate_dead_code(remove_redundant_qdq(module(0.5))), module(None))


def test_requantisation_stays():
    before = module(0.25)
    tvm.ir.assert_structural_equal(remove_redundant_qdq(before), before)
