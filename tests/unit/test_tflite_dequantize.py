"""TFLite's int8 -> float32 DEQUANTIZE against LiteRT itself.

One-operator models with random sizes (around LiteRT's vector blocks of 8), scales and zero
points run in LiteRT's built-in kernels (BUILTIN_WITHOUT_DEFAULT_DELEGATES): the whole blocks
are float32(q * s) + float32(-zp * s), the rest float32(s * (q - zp)). quant/reference's
dequantize and kernels/ref's npu_dequantize_s8_f32 with integer_spec.DEQUANTIZE_BLOCK must give
the same float32 bit patterns; the ONNX spec's form (block 0: every element rounded once) and
blocks of 4 or 16 must not. The lowering sets the block per spec (none for ONNX models, whose
params stay as before), and a model built for the host equals LiteRT bit for bit.
"""

import numpy as np
import pytest
from tflite_builder import TFLiteBuilder, litert_run

import compiler.quant._ref_elementwise as C
from compiler.quant.integer_spec import DEQUANTIZE_BLOCK, ONNX, TFLITE
from compiler.quant.reference.elementwise import dequantize

CASES = 300


def _dequantize_model(path, n, scale, zero_point):
    b = TFLiteBuilder()
    x = b.input("x", [1, n], "INT8", scale=scale, zero_point=zero_point)
    y = b.tensor("y", [1, n], "FLOAT32")
    b.op("DEQUANTIZE", [x], [y], version=2)
    b.output(y)
    return b.save(path)


def _bits(values):
    return np.asarray(values, np.float32).view(np.uint32)


def test_litert_dequantize_is_the_tflite_spec(tmp_path):
    rng = np.random.default_rng(3)
    block = DEQUANTIZE_BLOCK[TFLITE]
    misses = {0: 0, 4: 0, 16: 0}
    outputs = 0
    for case in range(CASES):
        n = int(rng.integers(1, 70))
        s, zp = float(np.float32(np.exp(rng.uniform(-9, 3)))), int(rng.integers(-128, 128))
        q = rng.integers(-128, 128, (1, n)).astype(np.int8)
        want = litert_run(_dequantize_model(tmp_path / "dq.tflite", n, s, zp), [q], reference=False)[0]
        for impl in (dequantize, C.dequantize):
            have = impl(q, s, zp, block)
            assert np.array_equal(_bits(have), _bits(want)), (case, n, s, zp, impl)
        for other in misses:
            misses[other] += int(np.count_nonzero(_bits(dequantize(q, s, zp, other)) != _bits(want)))
        outputs += n
    assert outputs > 9_000 and all(count > 0 for count in misses.values()), misses
    assert DEQUANTIZE_BLOCK == {ONNX: 0, TFLITE: 8}


def _lowered_params(spec):
    from tvm import relax

    from compiler.quant import patterns
    from compiler.quant.qdq import dequantize as qdq_dequantize

    x = relax.Var("x", relax.TensorType((1, 29), "int8"))
    call = qdq_dequantize(x, np.float32(0.0123), np.int8(5))
    bb = relax.BlockBuilder()
    with bb.function("main", [x]):
        with bb.dataflow():
            out = bb.emit_output(call)
        bb.emit_func_output(out)
    (row,) = [row for row in patterns.ROWS if row.kernel == "dequantize"]
    return patterns.lower(row, {"op": bb.get()["main"].body.blocks[0].bindings[0].value}, spec).params


def test_lowering_sets_the_block_per_spec():
    base = dict(size=29, scale=float(np.float32(0.0123)), zero_point=5)
    assert _lowered_params(ONNX) == base  # ONNX models: the params (and so the C struct) as before
    assert _lowered_params(TFLITE) == dict(base, block=8)


@pytest.mark.parametrize("n", [7, 29])
def test_host_build_matches_litert(tmp_path, n):
    from compiler.build import build
    from compiler.run.host import run_host

    path = _dequantize_model(tmp_path / "dq.tflite", n, 0.0123, 5)
    report = build(path, "host", tmp_path / "out")
    assert [(row["op"], row["kind"]) for row in report["layers"]] == [("dequantize", "int8")]
    q = np.random.default_rng(n).integers(-128, 128, (1, n)).astype(np.int8)
    np.save(tmp_path / "x.npy", q)
    (got,) = run_host(tmp_path / "out", [str(tmp_path / "x.npy")]).outputs
    want = litert_run(path, [q], reference=False)[0]
    assert np.array_equal(_bits(got), _bits(want))
    if n >= 8:  # the case tells the forms apart: rounded once, some block element differs
        assert np.any(_bits(dequantize(q, 0.0123, 5)) != _bits(want))
