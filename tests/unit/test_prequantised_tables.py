"""passes/prequantised_tables.py alone: a pre-quantised graph's dequantize -> elementwise function ->
quantize becomes the int8 table lookup our quantiser writes, a move between equal parameters runs
on int8, and anything else is left alone. Results are checked by running both modules."""

import numpy as np
import pytest
import tvm
from relax_testing import call_ops, run_relax
from tvm import relax

from compiler.passes.prequantised_tables import prequantised_tables
from compiler.quant import qdq

RNG = np.random.default_rng(5)
X = np.arange(-128, 128, dtype=np.int8).reshape(1, 4, 8, 8)  # every int8 value once


def _module(body, in_params=(0.05, -3), out_params=(1 / 256, -128)):
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, 4, 8, 8), "int8"))
    with bb.function("main", [x]):
        with bb.dataflow():
            real = bb.emit(qdq.dequantize(x, *in_params))
            y = bb.emit_output(qdq.quantize(body(bb, real), *out_params))
        bb.emit_func_output(y)
    return bb.get()


def _hard_swish(bb, x):
    gate = bb.emit(relax.op.clip(relax.op.add(x, relax.const(3.0)), 0.0, 6.0))
    return bb.emit(relax.op.divide(relax.op.multiply(x, gate), relax.const(6.0)))


@pytest.mark.parametrize("body", [lambda bb, x: bb.emit(relax.op.sigmoid(x)), _hard_swish], ids=["sigmoid", "hard_swish"])
def test_function_between_dequantize_and_quantize_is_a_table(body):
    before = _module(body)
    after = prequantised_tables(before)
    ops = call_ops(after["main"])
    assert "relax.take" in ops and not {"relax.sigmoid", "relax.dequantize", "relax.quantize"} & set(ops), ops
    np.testing.assert_array_equal(run_relax(after, X), run_relax(before, X))


def test_reshape_between_equal_parameters_runs_on_int8():
    before = _module(lambda bb, x: bb.emit(relax.op.reshape(x, (1, 256))), out_params=(0.05, -3))
    after = prequantised_tables(before)
    assert call_ops(after["main"]) == ["relax.reshape"]
    np.testing.assert_array_equal(run_relax(after, X), run_relax(before, X))


def test_reshape_that_requantises_is_left_alone():
    before = _module(lambda bb, x: bb.emit(relax.op.reshape(x, (1, 256))), out_params=(0.1, 0))
    tvm.ir.assert_structural_equal(prequantised_tables(before), before)


def test_a_tflite_model_takes_litert_tables():
    """With TFLite's rounding the hard-swish region's table is LiteRT's fixed-point one, not the
    correctly rounded one: at these parameters the two differ, and the module computes LiteRT's."""
    from compiler.quant.integer_spec import TFLITE
    from compiler.quant.reference.lut import unary_table
    from compiler.quant.reference.tflite_tables import hard_swish_table

    in_params, out_params = (0.05, -3), (0.03, -20)
    litert, exact = hard_swish_table(*in_params, *out_params), unary_table(
        lambda x: x * np.clip(x + 3.0, 0.0, 6.0) / 6.0, *in_params, *out_params)
    assert np.any(litert != exact)
    before = _module(_hard_swish, in_params, out_params)
    after = prequantised_tables(before, TFLITE)
    np.testing.assert_array_equal(run_relax(after, X).reshape(-1), litert[X.reshape(-1).astype(np.int64) + 128])
    np.testing.assert_array_equal(run_relax(prequantised_tables(before), X).reshape(-1),
                                  exact[X.reshape(-1).astype(np.int64) + 128])
