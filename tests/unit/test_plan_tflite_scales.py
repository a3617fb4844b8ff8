"""quant/plan.py plan_activations(tflite_scales=True): a build written as TFLite gives every tensor
that TFLite's int8 CONCATENATION and RESHAPE tie together one set of parameters (LiteRT refuses a
CONCATENATION whose inputs' scales differ from its output's; MediaPipe's face detector reshapes two
heads' convolutions into one concat), chosen over the union of their ranges."""

import tvm
from tvm.script import relax as R

from compiler.quant.observers import activation_qparams
from compiler.quant.plan import QParams, plan_activations


@tvm.script.ir_module
class TwoHeads:
    @R.function
    def main(x: R.Tensor((1, 4, 4, 2), "float32")):
        with R.dataflow():
            a = R.add(x, x)
            b = R.multiply(x, x)
            ra = R.reshape(a, (1, 32))
            rb = R.reshape(b, (1, 32))
            c = R.concat((ra, rb), axis=1)
            d = R.add(a, x)  # `a` feeds more than the concat
            out = (c, d)
            R.output(out)
        return out


RANGES = {"x": (-1.0, 1.0), "a": (-2.0, 2.0), "b": (0.0, 6.0), "ra": (-2.0, 2.0), "rb": (0.0, 6.0),
          "c": (-2.0, 6.0), "d": (-3.0, 3.0)}


def _own(tensor_id):
    return QParams(*activation_qparams(*RANGES[tensor_id]))


def test_tflite_scales_tie_concat_inputs_and_their_reshapes_to_the_concat():
    plan = plan_activations(TwoHeads, RANGES, ["x"], tflite_scales=True)
    shared = QParams(*activation_qparams(-2.0, 6.0))
    assert {tensor_id: plan[tensor_id] for tensor_id in ("a", "b", "ra", "rb", "c")} == dict.fromkeys(
        ("a", "b", "ra", "rb", "c"), shared)
    assert plan["d"] == _own("d") and plan["x"] == _own("x")


def test_other_builds_keep_a_reshaped_concat_input_at_its_source_parameters():
    """Without tflite_scales the int8 concat requantises: a reshape keeps its source's parameters."""
    plan = plan_activations(TwoHeads, RANGES, ["x"])
    assert plan["ra"] == plan["a"] == _own("a") and plan["rb"] == _own("b")
    assert plan["c"] == _own("c") != plan["ra"]
