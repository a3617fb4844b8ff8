"""The runtime's expf/logf (targets/runtime_common/mathf.c, the libm calls of TVM-compiled
layers) in QEMU against numpy's float64 results rounded to float32: at most 1 ulp apart over
the whole domain, with the IEEE special cases exact."""

import numpy as np
import pytest

from compiler.coral.simulator import check_simulator_tools, run_firmware
from compiler.coral.toolchain import Toolchain
from compiler.targets import get_target

COUNT = 20000
SOURCE = rf"""
#include "npu_runtime.h"
float expf(float);
float logf(float);
static float x[{COUNT}], y[{COUNT}];
int main(void) {{
    if (npu_read_input(x, sizeof x)) return 10;
    for (int i = 0; i < {COUNT}; ++i) y[i] = expf(x[i]);
    npu_send(0, y, sizeof y);
    for (int i = 0; i < {COUNT}; ++i) y[i] = logf(x[i]);
    npu_send(1, y, sizeof y);
    return 0;
}}
"""


def ulp_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| in units in the last place, via the ordered integer view of float32."""
    def ordered(v):
        bits = v.astype(np.float32).view(np.int32).astype(np.int64)
        return np.where(bits < 0, -(bits & 0x7FFFFFFF), bits)
    return np.abs(ordered(a) - ordered(b))


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    check_simulator_tools()
    toolchain = Toolchain.for_target(get_target("coral-npu"))
    work = tmp_path_factory.mktemp("mathf")
    rng = np.random.default_rng(7)
    special = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 88.72283, 88.7229, -87.33, -103.9,
                        -104.0, 1e-45, 1.1754942e-38, 3.4028235e38, 0.5, 2.0, 1e-7, -1e-7], np.float32)
    exp_range = rng.uniform(-104.0, 88.8, COUNT // 2).astype(np.float32)
    log_range = (2.0 ** rng.uniform(-149, 128, COUNT // 2 - special.size)).astype(np.float32)
    x = np.concatenate([special, exp_range, log_range]).astype(np.float32)
    (work / "main.c").write_text(SOURCE)
    elf = toolchain.build_firmware([work / "main.c"], work / "firmware.elf", profile="highmem")
    records = run_firmware(elf, work, inputs=[x.tobytes()], timeout=60, expected_output_bytes=2 * x.nbytes).records
    return x, np.frombuffer(records[0], np.float32), np.frombuffer(records[1], np.float32)


def test_expf_within_one_ulp(results):
    x, exp, _ = results
    with np.errstate(over="ignore", under="ignore"):
        expected = np.exp(x.astype(np.float64)).astype(np.float32)
    finite = np.isfinite(expected) & np.isfinite(x)
    assert ulp_distance(exp[finite], expected[finite]).max() <= 1
    np.testing.assert_array_equal(exp[~finite], expected[~finite])  # inf, 0 and NaN as IEEE says
    assert exp[x == 0].tolist() == [1.0, 1.0]


def test_logf_within_one_ulp(results):
    x, _, log = results
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = np.log(x.astype(np.float64)).astype(np.float32)
    finite = np.isfinite(expected)
    assert ulp_distance(log[finite], expected[finite]).max() <= 1
    np.testing.assert_array_equal(log[~finite], expected[~finite])  # log(0) = -inf, log(<0) = NaN, log(inf) = inf
    assert log[x == 1].tolist() == [0.0]
