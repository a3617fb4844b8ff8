"""Mutation fuzzing (seeded, bounded): valid models with one field or a few bytes damaged
(tests/fuzz/mutations.py) go through `python -m compiler build` for host float, host int8 and
coral-npu. Every case must exit 0 with a complete OUT or 2 with one `error:` line and no OUT:
never a traceback, an internal error, a crash, a hang or a staging folder left behind
(tests/fuzz/harness.py). A longer campaign: FUZZ_CASES=2000 FUZZ_SEED=7 make test (or pytest
this file)."""

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import onnx_models
from fuzz.harness import check_case
from fuzz.mutations import mutate

SEED = int(os.environ.get("FUZZ_SEED", "20261204"))
CASES = int(os.environ.get("FUZZ_CASES", "0"))  # 0: the default share per target below
TARGETS = {  # target flags, cases
    "host-float": ([], 40),
    "host-int8": (["--quantize", "int8", "--calib", "random", "--calib-samples", "8"], 20),
    "coral-npu": (["--target", "coral-npu", "--memory", "highmem", "--quantize", "int8", "--calib", "random",
                   "--calib-samples", "8"], 10),
}
BASES = {
    "conv_bn_act": lambda: onnx_models.conv_bn_act(size=6),
    "tiny_cnn": lambda: onnx_models.tiny_cnn(size=8),
    "residual": lambda: onnx_models.residual_block(size=6),
    "dense": lambda: onnx_models.dense_bias_relu(),
    "pool": lambda: onnx_models.pooling("max", size=6),
}


@pytest.mark.parametrize("target", list(TARGETS))
def test_mutated_models_exit_cleanly(tmp_path, target):
    flags, default_count = TARGETS[target]
    count = CASES or default_count
    bases = {name: build() for name, build in BASES.items()}

    def case(index: int):
        rng = np.random.default_rng([SEED, list(TARGETS).index(target), index])
        base = list(bases)[index % len(bases)]
        what, data = mutate(bases[base], rng)
        folder = tmp_path / f"case{index}"
        folder.mkdir()
        (folder / "model.onnx").write_bytes(data)
        problem = check_case(folder / "model.onnx", folder / "out", flags)
        return f"case {index} ({base}, {what}): {problem}" if problem else None

    with ThreadPoolExecutor(os.cpu_count() or 2) as pool:
        problems = [problem for problem in pool.map(case, range(count)) if problem]
    assert not problems, "\n".join(problems[:10])
