"""The float <-> int8 kernels' cases, shared by the coral-npu quantize tests
(tests/coral/test_kernels_quantize.py) and the CPU SIMD families' (tests/kernels/test_x86_kernels.py,
tests/coral/test_arm64_target.py): rows of (label, params, input, vector), `vector` choosing the RVV
kernel over the portable C on coral-npu.

cases(): float32 -> int8 (quantize): random values at several scales and zero points, exact ties
(x / scale = n + 0.5), values that saturate, infinities, NaN, -0 and subnormals; odd sizes around
the kernel's 256-element chunk; with and without LiteRT's blocks of 8 (TFLite models: x * reciprocal
in the blocks, the rest rounded half away; the sizes around the block boundary, near-ties of x / scale).
dequantize_cases(): int8 -> float32: every int8 value at every scale and zero point (and a scale
whose products overflow, a subnormal one), odd sizes, with and without LiteRT's blocks of 8 (TFLite
models; the sizes around the block boundary)."""

import numpy as np

from compiler.quant.reference.elementwise import reciprocal

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
    for number, size in enumerate([1, 7, 8, 9, 15, 17, 256, 257, 263, 1000, 1007]):
        scale, zero_point = [0.0071, 0.3, *SCALES][number % 7], ZERO_POINTS[number % len(ZERO_POINTS)]
        params = {"size": size, "scale": float(np.float32(scale)), "zero_point": zero_point, **blocks(scale, 8)}
        x = np.where(rng.random(size) < 0.5, values(rng, scale, size), near_ties(rng, scale, size))
        rows += [(f"block8-{size}-{kind}", params, x.astype(np.float32), kind == "rvv") for kind in ("rvv", "c")]
    return rows


def blocks(scale: float, block: int) -> dict:
    """quantize's LiteRT fields (TFLite models) for `block` > 0: the block and the scale's reciprocal."""
    return {"block": block, "reciprocal": float(reciprocal(scale))} if block else {}


def near_ties(rng, scale: float, size: int) -> np.ndarray:
    """(n + 0.5) * scale as float32: x / scale a tie, or a float tie off the exact one, or 1 ulp off."""
    ties = ((rng.integers(-130, 130, size) + 0.5) * np.float32(scale)).astype(np.float32)
    toward = ties * rng.choice([0, 1, 2], size).astype(np.float32)  # 1 ulp toward 0, none, 1 ulp away
    return np.nextafter(ties, toward)


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
