"""The generated float -> int8 quantize kernel (cpp/src/quantize.cc) in QEMU against kernels/ref's
npu_quantize_f32_s8 on the same inputs, bit for bit: random values at several scales and zero
points, exact ties (x / scale = n + 0.5), values that saturate, infinities, NaN, -0 and
subnormals; odd sizes around the kernel's 256-element chunk; vector and portable variants.
And the int8 -> float dequantize kernel (cpp/src/dequantize.cc) against npu_dequantize_s8_f32:
every int8 value at every scale and zero point (float32 bit patterns compared), odd sizes, with
and without LiteRT's blocks of 8 (block 8: TFLite models; the sizes around the block boundary)."""

import numpy as np
import pytest

from compiler.coral.kernel_runner import KernelCase, run_kernel_cases
from compiler.coral.simulator import check_simulator_tools
from compiler.quant.reference.elementwise import dequantize
from quantize_cases import SCALES, ZERO_POINTS, cases, dequantize_cases

def test_quantize_matches_kernels_ref_bit_for_bit(tmp_path):
    check_simulator_tools()
    rows = cases()
    generated = [KernelCase("quantize", params, {}, [x], (params["size"],), vector=vector)
                 for _, params, x, vector in rows]
    reference = [KernelCase("quantize", params, {}, [x], (params["size"],), reference=True) for _, params, x, _ in rows]
    runs = run_kernel_cases(generated + reference, tmp_path)
    ours, refs = runs[:len(rows)], runs[len(rows):]
    for (label, params, x, _), run, ref in zip(rows, ours, refs):
        bad = np.flatnonzero(run.output != ref.output)
        assert bad.size == 0, (label, x[bad[:5]], run.output[bad[:5]], ref.output[bad[:5]])
    assert len({int(v) for v in np.concatenate([r.output for r in refs])}) > 200  # the cases reach most codes
    big = [run for (label, *_), run in zip(rows, ours) if label == "1000-rvv"][0]
    assert big.instructions < 7.3 * 1000, big.instructions  # measured 6.9 per element (kernels/ref: ~38)


def test_a_bad_scale_is_refused():
    from compiler.coral import codegen

    for scale in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(codegen.SpecError, match="not a positive finite float"):
            codegen.emit("quantize", "q", {"size": 4, "scale": scale, "zero_point": 0})


def test_dequantize_matches_kernels_ref_bit_for_bit(tmp_path):
    check_simulator_tools()
    rows = dequantize_cases()
    make = lambda params, x, **kw: KernelCase("dequantize", params, {}, [x], (params["size"],),  # noqa: E731
                                              output_dtype="float32", **kw)
    runs = run_kernel_cases([make(p, x, vector=v) for _, p, x, v in rows] + [make(p, x, reference=True)
                                                                             for _, p, x, _ in rows], tmp_path)
    ours, refs = runs[:len(rows)], runs[len(rows):]
    for (label, params, x, _), run, ref in zip(rows, ours, refs):
        bad = np.flatnonzero(run.output.view(np.uint32) != ref.output.view(np.uint32))
        assert bad.size == 0, (label, x[bad[:5]], run.output[bad[:5]], ref.output[bad[:5]])
    assert np.isinf(refs[len(SCALES) * len(ZERO_POINTS)].output).any()  # the overflowing scale reaches inf
    blocked = [(params, x, ref) for (label, params, x, _), ref in zip(rows, refs) if label.startswith("block8-every")]
    assert any(np.any(ref.output != dequantize(x, params["scale"], params["zero_point"])) for params, x, ref in blocked)
    big = [run for (label, *_), run in zip(rows, ours) if label == "1000-rvv"][0]
    assert big.instructions < 0.6 * 1000, big.instructions  # kernels/ref: 7 per element
