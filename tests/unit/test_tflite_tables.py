"""quant/reference/tflite_tables.py against LiteRT: a one-operator int8 model fed all 256 input
values, at random scales and zero points, gives exactly the table, and the correctly rounded table
of lut.py (what ONNX models use) is shown to differ from LiteRT somewhere (so the TFLite tables are
needed, and the test would notice them drifting back)."""

import numpy as np
import pytest
from tflite_builder import TFLiteBuilder, litert_run

from compiler.quant.fixed_point import DOUBLE_ROUNDING, DOUBLE_ROUNDING_TIES_UP
from compiler.quant.reference.lut import INPUTS, unary_table
from compiler.quant.reference.tflite_tables import (hard_swish_table, leaky_relu_table, logistic_table,
                                                    requantize_table, tanh_table)

_EXACT = {
    "HARD_SWISH": (hard_swish_table, lambda x: x * np.clip(x + 3.0, 0.0, 6.0) / 6.0, None),
    "LOGISTIC": (logistic_table, lambda x: 0.5 * (1.0 + np.tanh(0.5 * x)), (1 / 256, -128)),
    "TANH": (tanh_table, np.tanh, (1 / 128, 0)),
}


def _cases(op, count=25):
    rng = np.random.default_rng(sum(map(ord, op)))
    for _ in range(count):
        input_scale = float(np.float32(10 ** rng.uniform(-2.5, -0.5)))
        input_zero_point = int(rng.integers(-128, 128))
        fixed = _EXACT[op][2]
        if fixed is None:
            output_scale, output_zero_point = float(np.float32(10 ** rng.uniform(-2.3, -0.7))), int(rng.integers(-128, 128))
        else:
            output_scale, output_zero_point = fixed
        yield input_scale, input_zero_point, output_scale, output_zero_point


def _litert(tmp_path, op, qparams):
    input_scale, input_zero_point, output_scale, output_zero_point = qparams
    b = TFLiteBuilder()
    x = b.input("x", [1, 256], "INT8", scale=[input_scale], zero_point=[input_zero_point])
    y = b.tensor("y", [1, 256], "INT8", scale=[output_scale], zero_point=[output_zero_point])
    b.op(op, [x], [y])
    b.output(y)
    path = b.save(tmp_path / f"{op}.tflite")
    return litert_run(path, [INPUTS.astype(np.int8).reshape(1, 256)], reference=False)[0].reshape(-1)


@pytest.mark.parametrize("op", sorted(_EXACT))
def test_table_is_what_litert_computes(tmp_path, op):
    table, function, _ = _EXACT[op]
    differs = 0
    for qparams in _cases(op):
        expected = _litert(tmp_path, op, qparams)
        np.testing.assert_array_equal(table(*qparams), expected, err_msg=f"{op} at {qparams}")
        differs += int(np.count_nonzero(unary_table(function, *qparams) != expected))
    if op == "HARD_SWISH":
        assert differs > 0  # the fixed-point algorithm is not the correctly rounded function


@pytest.mark.parametrize("op", ["QUANTIZE", "LEAKY_RELU"])
def test_requantising_tables_are_what_litert_computes(tmp_path, op):
    """LiteRT's int8 QUANTIZE rounds its shift's ties up (ruy), LEAKY_RELU away from zero (gemmlowp):
    each table equals LiteRT with its own rounding and differs from it with the other."""
    rng = np.random.default_rng(sum(map(ord, op)))
    own, other = (DOUBLE_ROUNDING_TIES_UP, DOUBLE_ROUNDING) if op == "QUANTIZE" else (DOUBLE_ROUNDING, DOUBLE_ROUNDING_TIES_UP)
    differs = 0
    for _ in range(25):
        qparams = (float(np.float32(10 ** rng.uniform(-2.5, -0.5))), int(rng.integers(-128, 128)),
                   float(np.float32(10 ** rng.uniform(-2.5, -0.5))), int(rng.integers(-128, 128)))
        alpha = float(np.float32(rng.uniform(0.01, 0.5)))
        b = TFLiteBuilder()
        x = b.input("x", [1, 256], "INT8", scale=[qparams[0]], zero_point=[qparams[1]])
        y = b.tensor("y", [1, 256], "INT8", scale=[qparams[2]], zero_point=[qparams[3]])
        b.op(op, [x], [y], **({"alpha": alpha} if op == "LEAKY_RELU" else {}))
        b.output(y)
        expected = litert_run(b.save(tmp_path / "m.tflite"), [INPUTS.astype(np.int8).reshape(1, 256)],
                              reference=False)[0].reshape(-1)
        table = (lambda r: requantize_table(*qparams, r)) if op == "QUANTIZE" else (
            lambda r: leaky_relu_table(alpha, *qparams, r))
        np.testing.assert_array_equal(table(own), expected, err_msg=f"{op} at {qparams}")
        differs += int(np.count_nonzero(table(other) != expected))
    assert differs > 0
