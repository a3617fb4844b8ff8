"""kernels/include/npu_rvv_quant.h in QEMU: every helper at every LMUL, bit-exact to the scalar
npu_requantize (run in the same firmware) and to compiler/quant/fixed_point.py on the host.

One firmware runs everything (tests/coral/test_rvv_quant.py builds it once per session):
  mbqm     per-lane multiplier and shift: every combination of accumulators at the int32 limits,
           0, +-1, +-2 ... and random, multipliers 0, 1, 2^30, 2^31 - 1 and random, and every shift
           in [-31, 30]; then random lanes
  big      the same lanes restricted to shift <= -2 (its precondition), with right / round lanes
  x        one multiplier and shift for all lanes: every shift x a set of multipliers
  chain    x -> clamp_zp -> store_s8, against npu_requantize run in the firmware too
  clamp    clamp_zp for every zero point in [-128, 127] and several activation ranges
  load     load_s8 of all 256 bytes, and store_s8 back
  double   the double roundings of TFLite models (ties away and ties up), per lane and one multiplier
           for all lanes, and the scalar C of npu_quant.h on the same lanes
Lane counts are odd, so every loop ends in a partial vector. Real tools, no mocks: a missing
clang-19 or qemu-system-riscv32 fails with the install hint.
"""

import numpy as np
import pytest

from compiler.coral.simulator import check_simulator_tools, run_firmware
from compiler.coral.toolchain import Toolchain
from compiler.quant.fixed_point import (multiply_by_quantized_multiplier, multiply_by_quantized_multiplier_double,
                                        multiply_by_quantized_multiplier_double_up, requantize)
from compiler.targets import get_target

LMULS = ("m1", "m2", "m4", "m8")
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
SHIFTS = np.arange(-31, 31)
ACT_RANGES = [(-128, 127), (0, 127), (-128, 0), (-5, 6), (127, 127), (-128, -128), (0, 6)]


def _special_accumulators(rng, count):
    # Small values against 2^31 - 1 put the low product word just below 2^32: the rounding carry.
    special = [INT32_MIN, INT32_MIN + 1, INT32_MAX, INT32_MAX - 1, 0, 1, -1, 2, -2, 3, -3, 1 << 30, -(1 << 30), 255,
               -255, 46341, -46341]
    random = rng.integers(INT32_MIN, INT32_MAX, count - len(special), endpoint=True)
    return np.concatenate([special, random]).astype(np.int32)


def _multipliers(rng):
    return np.array([0, 1, 1 << 30, (1 << 30) + 1, INT32_MAX, *rng.integers(1 << 30, 1 << 31, 3)], dtype=np.int32)


def _inputs() -> dict:
    rng = np.random.default_rng(20240611)
    # Per-lane tests: every special accumulator x special multiplier x shift, then random lanes.
    grid = [axis.ravel() for axis in np.meshgrid(_special_accumulators(rng, 24), _multipliers(rng), SHIFTS)]
    random_lanes = 4099
    acc = np.concatenate([grid[0], rng.integers(INT32_MIN, INT32_MAX, random_lanes, endpoint=True)]).astype(np.int32)
    multiplier = np.concatenate([grid[1], rng.integers(0, 1 << 31, random_lanes)]).astype(np.int32)
    shift = np.concatenate([grid[2], rng.choice(SHIFTS, random_lanes)]).astype(np.int32)
    big = shift <= -2
    pair_multiplier, pair_shift = (grid.ravel().astype(np.int32) for grid in np.meshgrid(_multipliers(rng), SHIFTS))
    pairs = len(pair_shift)
    zero_points = np.arange(-128, 128)
    act = np.array([ACT_RANGES[i % len(ACT_RANGES)] for i in range(256)], dtype=np.int32)
    values = np.concatenate([_special_accumulators(rng, 29), [127, -128, 128, -129, 300, -300, 65536, -65536]])
    return {
        "lane_acc": acc, "lane_multiplier": multiplier, "lane_shift": shift,
        "big_acc": acc[big], "big_multiplier": multiplier[big],
        "big_right": (31 - shift[big] - 32).astype(np.int32),
        "big_round": (np.int64(1) << (31 - shift[big] - 33)).astype(np.int32),
        "x_acc": _special_accumulators(rng, 67),
        "pair_multiplier": pair_multiplier, "pair_shift": pair_shift,
        "pair_zero_point": zero_points[np.arange(pairs) % 256].astype(np.int32),
        "pair_act_min": act[np.arange(pairs) % 256, 0], "pair_act_max": act[np.arange(pairs) % 256, 1],
        "clamp_value": values.astype(np.int32),
        "clamp_zero_point": zero_points.astype(np.int32), "clamp_act_min": act[:, 0], "clamp_act_max": act[:, 1],
        "bytes": np.arange(-128, 128, dtype=np.int8),
    }


# ---- the firmware ----

def _declarations(inputs: dict) -> str:
    lines = []
    for name, array in inputs.items():
        ctype = "int8_t" if array.dtype == np.int8 else "int32_t"
        lines.append(f"static {ctype} {name}[{len(array)}];")
        lines.append(f"#define N_{name.upper()} {len(array)}")
    return "\n".join(lines)


def _reads(inputs: dict) -> str:
    return "\n".join(f'  load({name}, sizeof {name});' for name in inputs)


_PRELUDE = """\
#include <stddef.h>
#include <stdint.h>
#include <riscv_vector.h>
#include "npu_quant.h"
#include "npu_rvv_quant.h"
#include "npu_runtime.h"

{declarations}
static int32_t words[N_LANE_ACC > N_PAIR_SHIFT * N_X_ACC ? N_LANE_ACC : N_PAIR_SHIFT * N_X_ACC];
static int8_t bytes_out[N_PAIR_SHIFT * N_X_ACC];

/* The inputs arrive in declaration order on the input stream; each output is announced by name
   on the console ("output <tag> <name>") and sent under its own tag. */
static void load(void* dst, uint32_t size) {{
  if (npu_read_input(dst, size) != 0) npu_exit(10);
}}

static void save(const char* name, const void* src, uint32_t size) {{
  static uint32_t tag;
  npu_puts("output "); npu_put_u32(tag); npu_puts(" "); npu_puts(name); npu_puts("\\n");
  npu_send(tag++, src, size);
}}
"""

# One test function per LMUL ({L}).
_PER_LMUL = """
static void test_{L}(void) {{
  size_t vl;
  for (size_t i = 0; i < N_LANE_ACC; i += vl) {{
    vl = __riscv_vsetvl_e32{L}(N_LANE_ACC - i);
    vint32{L}_t acc = __riscv_vle32_v_i32{L}(lane_acc + i, vl);
    vint32{L}_t multiplier = __riscv_vle32_v_i32{L}(lane_multiplier + i, vl);
    vint32{L}_t shift = __riscv_vle32_v_i32{L}(lane_shift + i, vl);
    __riscv_vse32_v_i32{L}(words + i, npu_rvv_mbqm_{L}(acc, multiplier, shift, vl), vl);
  }}
  save("mbqm_{L}.bin", words, N_LANE_ACC * 4);

  for (size_t i = 0; i < N_BIG_ACC; i += vl) {{
    vl = __riscv_vsetvl_e32{L}(N_BIG_ACC - i);
    vint32{L}_t acc = __riscv_vle32_v_i32{L}(big_acc + i, vl);
    vint32{L}_t multiplier = __riscv_vle32_v_i32{L}(big_multiplier + i, vl);
    vint32{L}_t right = __riscv_vle32_v_i32{L}(big_right + i, vl);
    vint32{L}_t round = __riscv_vle32_v_i32{L}(big_round + i, vl);
    __riscv_vse32_v_i32{L}(words + i, npu_rvv_mbqm_big_{L}(acc, multiplier, right, round, vl), vl);
  }}
  save("big_{L}.bin", words, N_BIG_ACC * 4);

  for (size_t p = 0; p < N_PAIR_SHIFT; ++p) {{
    for (size_t i = 0; i < N_X_ACC; i += vl) {{
      vl = __riscv_vsetvl_e32{L}(N_X_ACC - i);
      const size_t at = p * N_X_ACC + i;
      vint32{L}_t r = npu_rvv_mbqm_x_{L}(__riscv_vle32_v_i32{L}(x_acc + i, vl), pair_multiplier[p], pair_shift[p], vl);
      __riscv_vse32_v_i32{L}(words + at, r, vl);
      r = npu_rvv_clamp_zp_{L}(r, pair_zero_point[p], pair_act_min[p], pair_act_max[p], vl);
      npu_rvv_store_s8_{L}(bytes_out + at, r, vl);
    }}
  }}
  save("x_{L}.bin", words, N_PAIR_SHIFT * N_X_ACC * 4);
  save("chain_{L}.bin", bytes_out, N_PAIR_SHIFT * N_X_ACC);

  for (size_t q = 0; q < N_CLAMP_ZERO_POINT; ++q) {{
    for (size_t i = 0; i < N_CLAMP_VALUE; i += vl) {{
      vl = __riscv_vsetvl_e32{L}(N_CLAMP_VALUE - i);
      vint32{L}_t r = npu_rvv_clamp_zp_{L}(__riscv_vle32_v_i32{L}(clamp_value + i, vl), clamp_zero_point[q],
                                          clamp_act_min[q], clamp_act_max[q], vl);
      __riscv_vse32_v_i32{L}(words + q * N_CLAMP_VALUE + i, r, vl);
    }}
  }}
  save("clamp_{L}.bin", words, N_CLAMP_ZERO_POINT * N_CLAMP_VALUE * 4);

  for (size_t i = 0; i < N_BYTES; i += vl) {{
    vl = __riscv_vsetvl_e32{L}(N_BYTES - i);
    vint32{L}_t widened = npu_rvv_load_s8_{L}(bytes + i, vl);
    __riscv_vse32_v_i32{L}(words + i, widened, vl);
    npu_rvv_store_s8_{L}(bytes_out + i, widened, vl);
  }}
  save("load_{L}.bin", words, N_BYTES * 4);
  save("store_{L}.bin", bytes_out, N_BYTES);

  for (int up = 0; up < 2; ++up) {{
    for (size_t i = 0; i < N_LANE_ACC; i += vl) {{
      vl = __riscv_vsetvl_e32{L}(N_LANE_ACC - i);
      vint32{L}_t r = npu_rvv_mbqm_double_{L}(__riscv_vle32_v_i32{L}(lane_acc + i, vl),
                                             __riscv_vle32_v_i32{L}(lane_multiplier + i, vl),
                                             __riscv_vle32_v_i32{L}(lane_shift + i, vl), up, vl);
      __riscv_vse32_v_i32{L}(words + i, r, vl);
    }}
    save(up ? "double_up_{L}.bin" : "double_{L}.bin", words, N_LANE_ACC * 4);
    for (size_t p = 0; p < N_PAIR_SHIFT; ++p) {{
      for (size_t i = 0; i < N_X_ACC; i += vl) {{
        vl = __riscv_vsetvl_e32{L}(N_X_ACC - i);
        vint32{L}_t r = npu_rvv_mbqm_double_x_{L}(__riscv_vle32_v_i32{L}(x_acc + i, vl), pair_multiplier[p],
                                                 pair_shift[p], up, vl);
        __riscv_vse32_v_i32{L}(words + p * N_X_ACC + i, r, vl);
      }}
    }}
    save(up ? "double_up_x_{L}.bin" : "double_x_{L}.bin", words, N_PAIR_SHIFT * N_X_ACC * 4);
  }}
}}
"""

_MAIN = """
/* The same chain in scalar C: npu_requantize, lane by lane. */
static void scalar_chain(void) {{
  for (size_t p = 0; p < N_PAIR_SHIFT; ++p) {{
    for (size_t i = 0; i < N_X_ACC; ++i) {{
      bytes_out[p * N_X_ACC + i] = npu_requantize(x_acc[i], pair_multiplier[p], pair_shift[p], pair_zero_point[p],
                                                  pair_act_min[p], pair_act_max[p]);
    }}
  }}
  save("chain_scalar.bin", bytes_out, N_PAIR_SHIFT * N_X_ACC);
}}

/* The double roundings in scalar C, lane by lane. */
static void scalar_double(void) {{
  for (int up = 0; up < 2; ++up) {{
    for (size_t i = 0; i < N_LANE_ACC; ++i) {{
      words[i] = npu_multiply_by_quantized_multiplier_double(lane_acc[i], lane_multiplier[i], lane_shift[i], up);
    }}
    save(up ? "double_up_scalar.bin" : "double_scalar.bin", words, N_LANE_ACC * 4);
  }}
}}

int main(void) {{
{reads}
  scalar_chain();
  scalar_double();
{tests}
  return 0;
}}
"""


def _firmware_source(inputs: dict) -> str:
    return (_PRELUDE.format(declarations=_declarations(inputs))
            + "".join(_PER_LMUL.format(L=lmul) for lmul in LMULS)
            + _MAIN.format(reads=_reads(inputs), tests="\n".join(f"  test_{lmul}();" for lmul in LMULS)))


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Runs the firmware once: (inputs, {output file stem: raw bytes})."""
    check_simulator_tools()
    folder = tmp_path_factory.mktemp("rvv_quant")
    inputs = _inputs()
    source = folder / "test_rvv_quant.c"
    source.write_text(_firmware_source(inputs))
    toolchain = Toolchain.for_target(get_target("coral-npu"))
    elf = toolchain.build_firmware([source], folder / "firmware.elf", "highmem")
    assert toolchain.vector_float_instructions(elf) == []
    result = run_firmware(elf, folder, inputs=[array.tobytes() for array in inputs.values()], timeout=120,
                          expected_output_bytes=1 << 22)
    names = dict(line.split()[1:] for line in result.stdout.splitlines() if line.startswith("output "))
    return inputs, {name.removesuffix(".bin"): result.records[int(tag)] for tag, name in names.items()}


def _words(outputs, stem):
    return np.frombuffer(outputs[stem], dtype=np.int32)


def _bytes(outputs, stem):
    return np.frombuffer(outputs[stem], dtype=np.int8)


def _assert_equal(got, want, what, *columns):
    """Exact equality; on failure, the first differing lanes with their inputs."""
    bad = np.flatnonzero(got != want)
    lanes = [f"lane {i}: got {got[i]}, want {want[i]}, " + ", ".join(f"{name}={column[i]}" for name, column in columns)
             for i in bad[:5]]
    assert bad.size == 0, f"{what}: {bad.size} of {got.size} lanes differ\n" + "\n".join(lanes)


def _x_grid(inputs):
    """(acc, multiplier, shift, zero point, act_min, act_max) of every lane of the x / chain tests."""
    pairs, accs = len(inputs["pair_shift"]), len(inputs["x_acc"])
    per_pair = [np.repeat(inputs[key], accs) for key in
                ("pair_multiplier", "pair_shift", "pair_zero_point", "pair_act_min", "pair_act_max")]
    return (np.tile(inputs["x_acc"], pairs), *per_pair)


@pytest.mark.parametrize("lmul", LMULS)
def test_mbqm_per_lane(results, lmul):
    inputs, outputs = results
    acc, multiplier, shift = inputs["lane_acc"], inputs["lane_multiplier"], inputs["lane_shift"]
    _assert_equal(_words(outputs, f"mbqm_{lmul}"), multiply_by_quantized_multiplier(acc, multiplier, shift),
                  f"npu_rvv_mbqm_{lmul}", ("acc", acc), ("multiplier", multiplier), ("shift", shift))


@pytest.mark.parametrize("lmul", LMULS)
def test_mbqm_big(results, lmul):
    inputs, outputs = results
    acc, multiplier = inputs["big_acc"], inputs["big_multiplier"]
    shift = -1 - inputs["big_right"]
    _assert_equal(_words(outputs, f"big_{lmul}"), multiply_by_quantized_multiplier(acc, multiplier, shift),
                  f"npu_rvv_mbqm_big_{lmul}", ("acc", acc), ("multiplier", multiplier), ("shift", shift))


@pytest.mark.parametrize("lmul", LMULS)
def test_mbqm_uniform(results, lmul):
    inputs, outputs = results
    acc, multiplier, shift, *_ = _x_grid(inputs)
    _assert_equal(_words(outputs, f"x_{lmul}"), multiply_by_quantized_multiplier(acc, multiplier, shift),
                  f"npu_rvv_mbqm_x_{lmul}", ("acc", acc), ("multiplier", multiplier), ("shift", shift))


def test_scalar_requantize_matches_host(results):
    inputs, outputs = results
    acc, multiplier, shift, zero_point, act_min, act_max = _x_grid(inputs)
    want = requantize(acc, multiplier, shift, zero_point, act_min, act_max)
    _assert_equal(_bytes(outputs, "chain_scalar"), want, "npu_requantize in the firmware", ("acc", acc),
                  ("multiplier", multiplier), ("shift", shift), ("zero_point", zero_point))


@pytest.mark.parametrize("lmul", LMULS)
def test_requantize_chain_matches_scalar(results, lmul):
    inputs, outputs = results
    acc, multiplier, shift, zero_point, act_min, act_max = _x_grid(inputs)
    _assert_equal(_bytes(outputs, f"chain_{lmul}"), _bytes(outputs, "chain_scalar"),
                  f"mbqm_x -> clamp_zp -> store_s8 ({lmul}) vs npu_requantize", ("acc", acc),
                  ("multiplier", multiplier), ("shift", shift), ("zero_point", zero_point), ("act_min", act_min),
                  ("act_max", act_max))


@pytest.mark.parametrize("lmul", LMULS)
def test_clamp_zp(results, lmul):
    inputs, outputs = results
    values, count = inputs["clamp_value"], len(inputs["clamp_zero_point"])
    value = np.tile(values.astype(np.int64), count)
    zero_point, act_min, act_max = (np.repeat(inputs[key], len(values)) for key in
                                    ("clamp_zero_point", "clamp_act_min", "clamp_act_max"))
    want = np.clip(value + zero_point, act_min, act_max)
    _assert_equal(_words(outputs, f"clamp_{lmul}"), want, f"npu_rvv_clamp_zp_{lmul}", ("value", value),
                  ("zero_point", zero_point), ("act_min", act_min), ("act_max", act_max))


@pytest.mark.parametrize("lmul", LMULS)
def test_load_store_s8(results, lmul):
    inputs, outputs = results
    every_byte = inputs["bytes"]
    _assert_equal(_words(outputs, f"load_{lmul}"), every_byte.astype(np.int32), f"npu_rvv_load_s8_{lmul}")
    _assert_equal(_bytes(outputs, f"store_{lmul}"), every_byte, f"npu_rvv_store_s8_{lmul}")


_DOUBLE = {"double": multiply_by_quantized_multiplier_double, "double_up": multiply_by_quantized_multiplier_double_up}


@pytest.mark.parametrize("variant", sorted(_DOUBLE))
def test_double_rounding_scalar_c(results, variant):
    inputs, outputs = results
    acc, multiplier, shift = inputs["lane_acc"], inputs["lane_multiplier"], inputs["lane_shift"]
    _assert_equal(_words(outputs, f"{variant}_scalar"), _DOUBLE[variant](acc, multiplier, shift),
                  f"npu_multiply_by_quantized_multiplier_double ({variant})", ("acc", acc),
                  ("multiplier", multiplier), ("shift", shift))


@pytest.mark.parametrize("variant", sorted(_DOUBLE))
@pytest.mark.parametrize("lmul", LMULS)
def test_double_rounding_vector(results, lmul, variant):
    inputs, outputs = results
    acc, multiplier, shift = inputs["lane_acc"], inputs["lane_multiplier"], inputs["lane_shift"]
    _assert_equal(_words(outputs, f"{variant}_{lmul}"), _DOUBLE[variant](acc, multiplier, shift),
                  f"npu_rvv_mbqm_double_{lmul} ({variant})", ("acc", acc), ("multiplier", multiplier), ("shift", shift))
    acc, multiplier, shift, *_ = _x_grid(inputs)
    _assert_equal(_words(outputs, f"{variant}_x_{lmul}"), _DOUBLE[variant](acc, multiplier, shift),
                  f"npu_rvv_mbqm_double_x_{lmul} ({variant})", ("acc", acc), ("multiplier", multiplier), ("shift", shift))
