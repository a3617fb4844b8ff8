"""The elementwise functions of one tensor that an int8 table can replace, and their float64 value.

passes/group_unary.py groups a region of these ops whose only tensor input is one tensor x into a
function of x; quant/reference/lut.py tabulates it over the 256 int8 inputs. Both read this one
table of ops, so a region is grouped only if it can be evaluated here:

    ELEMENTWISE[op name] = (arity, evaluate(args as float64 arrays or scalars, call attrs))

Constant operands must be scalars (one element): then the function is the same at every element.
"""

import math

import numpy as np
import tvm
from tvm import relax

from compiler.passes.util import bindings, is_const


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow warning for large |x|


def _erf(x):
    return np.vectorize(math.erf, otypes=[np.float64])(x)


def _gelu(x, attrs):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def _gelu_tanh(x, attrs):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def _clip(x, lo, hi, attrs):
    return np.clip(x, lo, hi)


def _softplus(x, attrs):
    beta, threshold = float(attrs.beta), float(attrs.threshold)
    return np.where(beta * x > threshold, x, np.log1p(np.exp(np.minimum(beta * x, threshold))) / beta)


ELEMENTWISE = {
    "relax.add": (2, lambda a, b, attrs: a + b),
    "relax.subtract": (2, lambda a, b, attrs: a - b),
    "relax.multiply": (2, lambda a, b, attrs: a * b),
    "relax.divide": (2, lambda a, b, attrs: a / b),
    "relax.maximum": (2, lambda a, b, attrs: np.maximum(a, b)),
    "relax.minimum": (2, lambda a, b, attrs: np.minimum(a, b)),
    "relax.power": (2, lambda a, b, attrs: np.power(a, b)),
    "relax.nn.relu": (1, lambda x, attrs: np.maximum(x, 0.0)),
    "relax.nn.leakyrelu": (1, lambda x, attrs: np.where(x >= 0, x, float(attrs.alpha) * x)),
    "relax.nn.silu": (1, lambda x, attrs: x * _sigmoid(x)),
    "relax.nn.gelu": (1, _gelu),
    "relax.nn.gelu_tanh": (1, _gelu_tanh),
    "relax.nn.softplus": (1, _softplus),
    "relax.sigmoid": (1, lambda x, attrs: _sigmoid(x)),
    "relax.tanh": (1, lambda x, attrs: np.tanh(x)),
    "relax.exp": (1, lambda x, attrs: np.exp(x)),
    "relax.log": (1, lambda x, attrs: np.log(x)),
    "relax.sqrt": (1, lambda x, attrs: np.sqrt(x)),
    "relax.rsqrt": (1, lambda x, attrs: 1.0 / np.sqrt(x)),
    "relax.erf": (1, lambda x, attrs: _erf(x)),
    "relax.negative": (1, lambda x, attrs: -x),
    "relax.abs": (1, lambda x, attrs: np.abs(x)),
    "relax.square": (1, lambda x, attrs: x * x),
    "relax.clip": (1, _clip),  # the bounds are PrimValue arguments
}


def scalar_value(expr):
    """A scalar constant operand (a one-element constant or a prim value) as float, else None."""
    if is_const(expr):
        array = expr.value.numpy()
        return float(array.reshape(-1)[0]) if array.size == 1 else None
    if isinstance(expr, (tvm.tirx.IntImm, tvm.tirx.FloatImm)):  # a PrimValue argument (clip's bounds)
        return float(expr.value)
    return None


def evaluate(func: relax.Function):
    """The group function of one float tensor (group_unary) as a float64 NumPy function."""
    (param,) = func.params

    def function(x: np.ndarray) -> np.ndarray:
        values = {param: x}
        for binding in bindings(func):
            call = binding.value
            if isinstance(call, relax.Var):
                values[binding.var] = values[call]
                continue
            _, apply = ELEMENTWISE[call.op.name]
            args = [values[arg] if arg in values else scalar_value(arg) for arg in call.args]
            values[binding.var] = apply(*args, call.attrs)
        return values[func.body.body]

    return function
