"""Table lookups (npu_lut_s8): the NumPy spec (compiler/quant/reference/lut.py) against the C kernel,
and the tables themselves against the float functions they stand for."""

import math

import numpy as np
import pytest

import compiler.quant._ref_elementwise as C
from compiler.quant.reference import lut as L

FUNCTIONS = {
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "tanh": np.tanh,
    "hard_swish": lambda x: x * np.clip(x + 3, 0, 6) / 6,
    "hard_sigmoid": lambda x: np.clip(0.2 * x + 0.5, 0, 1),
    "silu": lambda x: x / (1 + np.exp(-x)),
    "gelu": lambda x: 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2))),
    "leaky_relu": lambda x: np.where(x >= 0, x, 0.1 * x),
}


@pytest.mark.parametrize("seed", range(40))
def test_c_equals_numpy_on_random_tables_and_tensors(seed):
    rng = np.random.default_rng(seed)
    table = rng.integers(-128, 128, 256, dtype=np.int8)
    x = rng.integers(-128, 128, tuple(int(d) for d in rng.integers(0, 9, rng.integers(1, 5))), dtype=np.int8)
    np.testing.assert_array_equal(C.lut_s8(x, table), L.lut_s8(x, table))


def test_every_input_value_reads_its_entry():
    x = np.arange(-128, 128, dtype=np.int8)
    table = np.roll(np.arange(-128, 128), 5).astype(np.int8)
    np.testing.assert_array_equal(C.lut_s8(x, table), table)


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("seed", range(25))
def test_tables_are_the_correctly_rounded_function(name, seed):
    """Each entry is within half a step of the exact function (or saturated), at extreme scales too."""
    rng = np.random.default_rng(seed)
    s_in, s_out = 10.0 ** rng.uniform(-4, 1), 10.0 ** rng.uniform(-4, 1)
    zp_in, zp_out = (int(v) for v in rng.choice([-128, 127, 0, *rng.integers(-128, 128, 2)], 2))
    table = L.unary_table(FUNCTIONS[name], s_in, zp_in, s_out, zp_out)
    with np.errstate(over="ignore"):
        exact = FUNCTIONS[name](s_in * (np.arange(-128, 128) - zp_in)) / s_out + zp_out
    inside = (exact > -128.5) & (exact < 127.5)
    assert np.all(np.abs(table[inside] - exact[inside]) <= 0.5 + 1e-9)
    assert np.all(table[exact <= -128.5] == -128) and np.all(table[exact >= 127.5] == 127)


def test_halves_round_away_from_zero():
    identity = L.unary_table(lambda v: v, 1.0, 0, 2.0, 0)  # q / 2: every odd q is a half
    np.testing.assert_array_equal(identity[[128 + 1, 128 - 1, 128 + 3, 128 - 3]], [1, -1, 2, -2])


@pytest.mark.parametrize("bad, message", [
    (dict(input_scale=0.0), "input_scale"), (dict(output_scale=float("nan")), "output_scale"),
    (dict(input_zero_point=128), "input_zero_point"), (dict(function=lambda v: np.log(v)), "undefined"),
])
def test_bad_arguments_are_refused(bad, message):
    args = dict(function=np.tanh, input_scale=0.1, input_zero_point=0, output_scale=0.01, output_zero_point=0) | bad
    with pytest.raises(ValueError, match=message):
        L.unary_table(**args)
