"""Mutation fuzzing of the .tflite frontend (seeded, bounded): valid models (float, full int8, sparse)
with bytes flipped, cut, spliced or a field set to an absurd value. Reading one must give an ONNX
model or one CompilerError line, never another exception and never a hang (in-process, every
case); a sample of the cases also goes through `python -m compiler build` (tests/fuzz/harness.py:
exit 0 with a complete OUT, or exit 2 with one `error:` line and no OUT). A longer campaign:
FUZZ_CASES=5000 FUZZ_SEED=7 pytest tests/e2e/test_fuzz_tflite.py."""

import os
import time

import numpy as np
import pytest
from fuzz.harness import check_case
from tflite_builder import TFLiteBuilder
from tflite_int8_models import mobile_block_model

from compiler.errors import CompilerError
from compiler.frontend.tflite import load_tflite

SEED = int(os.environ.get("FUZZ_SEED", "20261204"))
CASES = int(os.environ.get("FUZZ_CASES", "400"))
CLI_CASES = 8
_ABSURD = [0, 1, 2, 255, 65535, 2**31 - 1, 2**32 - 1]


def _float_model() -> bytes:
    b = TFLiteBuilder()
    x = b.input("x", [1, 6, 6, 3])
    w = b.constant("w", np.ones((4, 3, 3, 3), np.float16))
    wf = b.tensor("wf", [4, 3, 3, 3])
    b.op("DEQUANTIZE", [w], [wf])
    y = b.tensor("y", [1, 6, 6, 4])
    b.op("CONV_2D", [x, wf, b.constant("b", np.zeros(4, np.float32))], [y], padding="SAME", strideH=1, strideW=1,
         fusedActivationFunction="RELU6")
    m = b.tensor("m", [1, 4])
    b.op("MEAN", [y, b.constant("axes", np.array([1, 2], np.int32))], [m])
    b.output(m)
    return b.bytes()


BASES = {"float": _float_model, "int8": lambda: mobile_block_model(seed=0).bytes()}


def _mutate(data: bytes, rng) -> tuple[str, bytes]:
    data = bytearray(data)
    kind = rng.integers(5)
    if kind == 0:  # flip bytes
        for _ in range(int(rng.integers(1, 8))):
            data[int(rng.integers(8, len(data)))] ^= int(rng.integers(1, 256))
        return "flip", bytes(data)
    if kind == 1:  # truncate
        return "truncate", bytes(data[: int(rng.integers(8, len(data)))])
    if kind == 2:  # a little-endian word set to an absurd value (offsets, lengths, indices)
        at = int(rng.integers(8, len(data) - 4)) & ~3
        data[at:at + 4] = int(rng.choice(_ABSURD)).to_bytes(4, "little")
        return f"word at {at}", bytes(data)
    if kind == 3:  # splice a copy of one region over another
        a, b = sorted(int(v) for v in rng.integers(8, len(data), 2))
        at = int(rng.integers(8, len(data)))
        data[at:at + (b - a)] = data[a:b]
        return "splice", bytes(data[: len(data)])
    return "zeros", bytes(data[:8]) + bytes(len(data) - 8)


def test_mutated_tflite_files_are_read_or_refused(tmp_path):
    rng = np.random.default_rng(SEED)
    bases = {name: make() for name, make in BASES.items()}
    problems = []
    for case in range(CASES):
        name = list(bases)[case % len(bases)]
        what, data = _mutate(bases[name], rng)
        path = tmp_path / "m.tflite"
        path.write_bytes(data)
        started = time.monotonic()
        try:
            load_tflite(path)
        except CompilerError as err:
            if "\n" in str(err):
                problems.append(f"case {case} ({name}, {what}): multi-line error {str(err)[:200]!r}")
        except Exception as err:  # noqa: BLE001 - exactly what this test looks for
            problems.append(f"case {case} ({name}, {what}): {type(err).__name__}: {str(err)[:200]}")
        if time.monotonic() - started > 20:
            problems.append(f"case {case} ({name}, {what}): took {time.monotonic() - started:.0f} s")
    assert not problems, "\n".join(problems[:20])


@pytest.mark.parametrize("case", range(CLI_CASES))
def test_mutated_tflite_on_the_command_line(tmp_path, case):
    rng = np.random.default_rng([SEED, case])
    name = list(BASES)[case % len(BASES)]
    what, data = _mutate(BASES[name](), rng)
    (tmp_path / "m.tflite").write_bytes(data)
    problem = check_case(tmp_path / "m.tflite", tmp_path / "out", ["--target", "host"])
    assert problem is None, f"{name}, {what}: {problem}"
