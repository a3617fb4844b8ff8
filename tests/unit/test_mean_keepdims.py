"""passes/mean_keepdims.py: an int8 global mean that drops its axes keeps them, and a reshape of the
int8 result drops them (the TFLite spec of our own models). Same values, the keep-dims kernel."""

import numpy as np
from int8_testing import int8, module, ops_left_in_main, run, run_in_tvm
from tvm import relax

from compiler.codegen.int8 import partition_int8
from compiler.passes.mean_keepdims import mean_keepdims
from compiler.quant import qdq
from compiler.quant.integer_spec import TFLITE


def _global_mean(keepdims, shared=False):
    def body(bb, x):
        mean = bb.emit(relax.op.mean(qdq.dequantize(x, 0.05, 3), [1, 2], keepdims=keepdims))
        quantized = bb.emit(qdq.quantize(mean, 0.02, -4))
        return relax.op.add(qdq.dequantize(quantized, 0.02, -4), mean) if shared else quantized
    return module([((2, 5, 7, 16), "int8")], body)


def test_mean_keeps_its_axes_and_a_reshape_of_the_int8_result_drops_them():
    mod = _global_mean(keepdims=False)
    rewritten = mean_keepdims(mod)
    means = [e for e in _calls(rewritten) if e.op.name == "relax.mean"]
    assert [bool(m.attrs.keepdims) for m in means] == [True]
    assert ops_left_in_main(rewritten)[-1] == "relax.reshape"
    assert tuple(int(d) for d in rewritten["main"].ret_ty.shape) == (2, 16)
    x = int8((2, 5, 7, 16))
    np.testing.assert_array_equal(run_in_tvm(rewritten, x), run_in_tvm(mod, x))
    # the int8 kernel takes it, under the TFLite spec too, with the same result as TVM's QDQ arithmetic
    assert "relax.mean" not in ops_left_in_main(partition_int8(rewritten, TFLITE))
    np.testing.assert_array_equal(run(rewritten, x), run(mod, x))


def test_a_mean_that_keeps_its_axes_is_left_alone():
    kept = _global_mean(keepdims=True)
    assert ops_left_in_main(mean_keepdims(kept)) == ops_left_in_main(kept)


def test_a_mean_also_read_in_float_keeps_its_float_reader():
    shared = _global_mean(keepdims=False, shared=True)
    rewritten = mean_keepdims(shared)
    assert sorted(bool(e.attrs.keepdims) for e in _calls(rewritten) if e.op.name == "relax.mean") == [False, True]
    x = int8((2, 5, 7, 16))
    np.testing.assert_array_equal(run_in_tvm(rewritten, x), run_in_tvm(shared, x))


def _calls(mod):
    found = []
    relax.analysis.post_order_visit(mod["main"], lambda e: found.append(e) if isinstance(e, relax.Call)
                                    and hasattr(e.op, "name") else None)
    return found
