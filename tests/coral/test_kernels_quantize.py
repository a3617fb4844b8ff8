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

SCALES = [0.25, 1 / 255, 0.0392157, 7.3, 1e-6]
ZERO_POINTS = [-128, -3, 0, 127]
SIZES = [1, 17, 255, 256, 257, 1000]


def values(rng, scale: float, size: int) -> np.ndarray:
    ties = (rng.integers(-300, 300, size) + 0.5) * np.float32(0.25)  # exact halves when scale is 0.25
    spread = rng.normal(0, 100, size) * scale
    special = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 1e-45, -1e-45, 3e38, -3e38, 127.5 * scale, -128.5 * scale])
    pool = np.concatenate([ties, spread, special]).astype(np.float32)
    return rng.choice(pool, size).astype(np.float32)


def cases():
    rng = np.random.default_rng(42)
    rows = []
    for number, size in enumerate(SIZES):
        for vector in (True, False):
            scale, zero_point = SCALES[number % len(SCALES)], ZERO_POINTS[number % len(ZERO_POINTS)]
            params = {"size": size, "scale": float(np.float32(scale)), "zero_point": zero_point}
            x = values(rng, scale, size)
            rows.append((f"{size}-{'rvv' if vector else 'c'}", params, x, vector))
    for scale in SCALES:  # every scale against every zero point, one size
        for zero_point in ZERO_POINTS:
            params = {"size": 300, "scale": float(np.float32(scale)), "zero_point": zero_point}
            rows.append((f"s{scale}-z{zero_point}", params, values(rng, scale, 300), True))
    return rows


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


def dequantize_cases():
    rng = np.random.default_rng(7)
    rows = []
    every_byte = np.arange(-128, 128, dtype=np.int8)
    for number, scale in enumerate(SCALES + [3e38 / 200, 1e-40]):  # products that overflow, subnormal scale
        for zero_point in ZERO_POINTS:
            params = {"size": 256, "scale": float(np.float32(scale)), "zero_point": zero_point}
            rows.append((f"every-byte-s{scale}-z{zero_point}", params, rng.permutation(every_byte), number % 2 == 0))
    for size in SIZES:
        params = {"size": size, "scale": float(np.float32(0.0392157)), "zero_point": -3}
        rows += [(f"{size}-{kind}", params, rng.integers(-128, 128, size).astype(np.int8), kind == "rvv")
                 for kind in ("rvv", "c")]
    for number, size in enumerate([1, 7, 8, 9, 15, 17, 256, 257, 1000, 1007]):
        scale, zero_point = SCALES[number % len(SCALES)], ZERO_POINTS[number % len(ZERO_POINTS)]
        params = {"size": size, "scale": float(np.float32(scale)), "zero_point": zero_point, "block": 8}
        x = rng.integers(-128, 128, size).astype(np.int8)
        rows += [(f"block8-{size}-{kind}", params, x, kind == "rvv") for kind in ("rvv", "c")]
    for zero_point in ZERO_POINTS:  # every byte in the blocks' form
        params = {"size": 256, "scale": float(np.float32(0.1)), "zero_point": zero_point, "block": 8}
        rows.append((f"block8-every-byte-z{zero_point}", params, rng.permutation(every_byte), True))
    return rows


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
