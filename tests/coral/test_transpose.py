"""The firmware's layout transposes (compiler/coral/transpose.py) in QEMU against numpy.transpose:
the RVV row-by-row variant and the portable loops on coral-npu, the NEON interleaving variant on
arm64-neon (in qemu-aarch64), several ranks, permutations and element sizes (int8 activations,
float32 at a float boundary, int16)."""

import numpy as np
import pytest

from compiler.coral.simulator import check_simulator_tools, run_firmware
from compiler.coral.toolchain import Toolchain
from compiler.coral.transpose import transpose_source
from compiler.targets import get_target

CASES = [  # shape, axes, dtype
    ((1, 3, 224, 224), (0, 2, 3, 1), np.int8),   # NCHW -> NHWC at a MobileNet input
    ((1, 7, 7, 256), (0, 3, 1, 2), np.int8),      # NHWC -> NCHW before a flatten
    ((2, 5, 3, 131), (0, 2, 3, 1), np.int8),      # rows longer than one m8 vector (128 int8)
    ((1, 3, 9, 11), (0, 2, 3, 1), np.float32),
    ((4, 6, 10), (2, 0, 1), np.int16),
    ((300,), (0,), np.int8),
    ((2, 4, 5, 7), (0, 2, 3, 1), np.int16),       # 4 planes of 35, a tail after two 8-lane steps
    ((3, 2, 37), (0, 2, 1), np.float32),          # 2 planes
]
FAMILIES = [("rvv", "coral-npu"), (None, "coral-npu"), ("neon", "arm64-neon")]
# the cases NEON interleaves: 2-4 planes moved to the end, the other axes in order (the rest: loops)
INTERLEAVED = {(1, 3, 224, 224), (1, 3, 9, 11), (2, 4, 5, 7), (3, 2, 37)}


@pytest.fixture(scope="module")
def toolchains():
    """target name -> its Toolchain."""
    found = {}
    for _, name in FAMILIES:
        check_simulator_tools(get_target(name))
        found[name] = Toolchain.for_target(get_target(name))
    return found


@pytest.mark.parametrize("family, target", FAMILIES, ids=["rvv", "portable", "neon"])
@pytest.mark.parametrize("shape, axes, dtype", CASES, ids=lambda v: "x".join(map(str, v)) if isinstance(v, tuple) else None)
def test_transpose_equals_numpy(toolchains, tmp_path, shape, axes, dtype, family, target):
    rng = np.random.default_rng(sum(shape))
    x = rng.integers(-120, 120, shape).astype(dtype)
    ctype = {np.int8: "int8_t", np.int16: "int16_t", np.float32: "float"}[dtype]
    signature = f"void layer0(const {ctype}* input0, {ctype}* output, int8_t* scratch)"
    source = transpose_source("layer0", signature, shape, axes, x.itemsize, family)
    neon = "vst" in source and "arm_neon.h" in source
    assert neon == (family == "neon" and shape in INTERLEAVED)
    (tmp_path / "layer0.c").write_text(source)
    (tmp_path / "main.c").write_text(f"""
        #include "npu_runtime.h"
        {signature};
        static {ctype} in[{x.size}], out[{x.size}];
        int main(void) {{
            if (npu_read_input(in, sizeof in)) return 10;
            uint32_t start = npu_instret();
            layer0(in, out, 0);
            uint32_t count = npu_instret() - start;
            npu_send(0, &count, 4);
            npu_send(1, out, sizeof out);
            return 0;
        }}""")
    profile = "highmem" if target == "coral-npu" else None
    elf = toolchains[target].build_firmware([tmp_path / "main.c", tmp_path / "layer0.c"], tmp_path / "fw.elf",
                                            profile=profile)
    records = run_firmware(elf, tmp_path, inputs=[x.tobytes()], timeout=60, expected_output_bytes=x.nbytes + 4,
                           target=get_target(target)).records
    y = np.frombuffer(records[1], dtype).reshape([shape[a] for a in axes])
    np.testing.assert_array_equal(y, np.transpose(x, axes))
    count = int(np.frombuffer(records[0], np.uint32)[0])
    if family == "rvv" and shape == (1, 3, 224, 224):
        assert count < 20_000  # 672 rows of 224 (15,478 measured); the portable loops take ~66,000
    if family == "neon" and shape == (1, 3, 224, 224):
        assert count < 30_000  # 3136 steps of 16 pixels (25,103 measured); the portable loops take 553,000
