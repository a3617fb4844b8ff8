"""The arm64 edge-CPU targets (targets/arm64_neon: Cortex-A76 class with dot product; arm64_neon_a72:
Cortex-A72 class without): static Linux executables cross-compiled by clang-19 and run in
qemu-aarch64 user mode, on the firmware backend with the arm64 Linux runtime
(targets/arm64_linux_runtime/: stdin, stdout, exit_group).

- the NEON emitter family's convolutions (groups 1, depthwise, grouped: one kernel per group) and dense layers
  (cpp/src/neon_mac.cc: sdot on the A76, smull + sadalp on the A72, smlal for depthwise) bit-exact
  to the NumPy references on every such spec of the coral-npu MAC tests (random shapes, extreme
  scales, the three roundings) and their benchmarks, and its table lookups (lut, requantize: tbl /
  tbx), adds / subtracts and multiplies (with the broadcast), concatenations and max and average
  pooling on the element-wise tests' specs, PReLU on the PReLU tests' (every rounding), softmax on the softmax tests', nearest and bilinear
  resize on the resize tests' and pads and copies on the move tests', and the float input's
  quantisation and the float output's dequantisation against kernels/ref on the coral-npu quantize
  tests' values;
- kernels/ref, cross-compiled for each CPU (clang's NEON auto-vectorisation), bit-exact to the
  kernel tests' NumPy references on a CRC-picked quarter of their specs;
- the digits CNN on both CPUs equal to the host int8 build bit for bit, and a layer kept in float
  (TVM's LLVM code for aarch64) inside it;
- what the emulator cannot say is not said: no instruction counts, no tuning;
- the A72 model really lacks the dot product: an sdot is a clear one-line failure.
"""

import json
import re
import zlib

import numpy as np
import pytest
import test_kernels_elementwise as elementwise
import test_kernels_mac as mac
import move_cases
import prelu_cases
import resize_cases
import softmax_cases
import quantize_cases
from kernel_suites import SUITES, large_spec_labels, suite_name
from kernel_testing import assert_bit_exact, run_cases
from test_coral_build import DIGITS, build, cli, digits_equal_host

from compiler.coral.codegen import emit, validate
from compiler.coral.kernel_runner import KernelCase, run_kernel_cases
from compiler.coral.simulator import SimulatorError, check_simulator_tools, run_firmware
from compiler.coral.toolchain import Toolchain, run_tool
from compiler.targets import get_target

TARGETS = [get_target("arm64-neon"), get_target("arm64-neon-a72")]
SAMPLE = 4

def _specs():
    """(suite, label, spec) for one spec in SAMPLE of each suite (by the CRC-32 of its label), the
    large benchmark specs left out; a spec appears once however many schedules it is run with."""
    rows, seen = [], set()
    for module, _, _ in SUITES:
        benchmarks = large_spec_labels(module)
        for _, spec, *_ in module.CASES:
            label = f"{suite_name(module)}:{spec.label}"
            if (label in seen or any(spec.label.startswith(name) for name in benchmarks)
                    or zlib.crc32(label.encode()) % SAMPLE):
                continue
            seen.add(label)
            rows.append((module, label, spec))
    return rows


SPECS = _specs()


@pytest.fixture(scope="module", params=TARGETS, ids=[target.name for target in TARGETS])
def reference_runs(request, tmp_path_factory):
    """label -> KernelRun of kernels/ref for every sampled spec on one arm64 CPU."""
    target = request.param
    check_simulator_tools(target)
    folder = tmp_path_factory.mktemp(target.name)
    out = {}
    for module, arrays, inputs in SUITES:
        rows = [(label, spec, None, False, True) for suite, label, spec in SPECS if suite is module]
        out.update(run_cases(rows, folder / module.__name__, arrays, inputs, target=target))
    return out


def test_kernels_ref_is_bit_exact_on_arm64(reference_runs):
    kinds = {spec.kernel for _, _, spec in SPECS}
    assert {"conv2d", "dense", "add", "mul", "softmax", "max_pool2d", "resize_bilinear"} <= kinds  # the main kernels
    assert any(spec.params.get("groups", 1) > 1 for _, _, spec in SPECS if spec.kernel == "conv2d")  # depthwise too
    for _, label, spec in SPECS:
        got = reference_runs[label].output
        bad = np.argwhere(got != spec.want)
        assert bad.size == 0, f"{label}: {len(bad)} of {spec.want.size} outputs differ, first at {tuple(bad[0])}"


def _neon_mac(spec) -> bool:
    """The NEON family's: groups 1, depthwise (depth multiplier 1), and up to 32 other groups (more go
    to kernels/ref: test_many_groups_are_left_to_kernels_ref)."""
    groups, p = spec.params.get("groups", 1), spec.params
    return groups <= 32 or groups == p["in_c"] == p["out_c"]


NEON_MAC_SPECS = [spec for spec in [*mac.SPECS, *mac._benchmark_specs()] if _neon_mac(spec)]
NEON_ELEMENTWISE = ("lut", "requantize", "add", "concat", "mul", "max_pool2d", "avg_pool2d", "global_avg_pool2d")
NEON_ELEMENTWISE_SPECS = list({spec.label: spec for _, spec, *_ in elementwise.CASES
                               if spec.kernel in NEON_ELEMENTWISE}.values())
NEON_PRELU_SPECS = prelu_cases.SPECS + prelu_cases.BENCHMARKS
NEON_SOFTMAX_SPECS = softmax_cases.SPECS + softmax_cases.BENCHMARKS
NEON_RESIZE_SPECS = [*resize_cases.specs(), *resize_cases.benchmark_specs()]  # nearest and bilinear
NEON_MOVE_SPECS = [*move_cases.specs(), *move_cases.benchmark_specs()]  # pads and copies


def test_many_groups_are_left_to_kernels_ref():
    """Past 32 groups (one kernel each) the NEON family refuses a grouped convolution, saying why."""
    refused = [spec for spec in [*mac.SPECS, *mac._benchmark_specs()] if not _neon_mac(spec)]
    assert refused, "no grouped convolution with more than 32 groups among the MAC specs"
    for spec in refused:
        assert "up to 32 groups" in validate(spec.kernel, spec.params, None, TARGETS[0]), spec.label


@pytest.fixture(scope="module")
def neon_runs(tmp_path_factory):
    """target name -> label -> KernelRun of the generated NEON kernel for every spec of the NEON family."""
    out = {}
    for target in TARGETS:
        folder, runs = tmp_path_factory.mktemp(f"neon-{target.name}"), {}
        for name, specs, arrays, inputs in (
                ("mac", NEON_MAC_SPECS, lambda spec: spec.arrays, lambda spec: [spec.x]),
                ("elementwise", NEON_ELEMENTWISE_SPECS, lambda spec: spec.arrays, lambda spec: spec.inputs),
                ("prelu", NEON_PRELU_SPECS, lambda spec: dict(alpha=spec.alpha), lambda spec: [spec.x]),
                ("softmax", NEON_SOFTMAX_SPECS, lambda spec: {}, lambda spec: [spec.x]),
                ("resize", NEON_RESIZE_SPECS, lambda spec: spec.arrays, lambda spec: [spec.x]),
                ("move", NEON_MOVE_SPECS, lambda spec: {}, lambda spec: spec.inputs)):
            rows = [(spec.label, spec, None, True) for spec in specs]
            runs.update(run_cases(rows, folder / name, arrays, inputs, target=target))
        out[target.name] = runs
    return out


@pytest.mark.parametrize("target", TARGETS, ids=[target.name for target in TARGETS])
def test_neon_kernels_are_bit_exact(neon_runs, target):
    assert {spec.params.get("rounding", 0) for spec in NEON_MAC_SPECS} == {0, 1, 2, 3}  # 3: LiteRT's depthwise
    assert {spec.kernel for spec in NEON_MAC_SPECS} == {"conv2d", "dense"}
    groups = [(spec.params.get("groups", 1), spec.params.get("in_c"), spec.params.get("out_c")) for spec in NEON_MAC_SPECS]
    assert any(g == i == o for g, i, o in groups) and any(1 < g < i for g, i, _ in groups)  # depthwise, grouped
    assert any(g == i < o for g, i, o in groups)  # depth multiplier
    assert {spec.kernel for spec in NEON_ELEMENTWISE_SPECS} == set(NEON_ELEMENTWISE)
    means = [spec.params for spec in NEON_ELEMENTWISE_SPECS if spec.kernel == "global_avg_pool2d"]
    assert {(p.get("rounding", 0), p.get("block_rounding", 0)) for p in means} >= {(r, b) for r in range(3) for b in range(3)}
    assert any(p["in_h"] * p["in_w"] > 256 for p in means) and any(p["channels"] % 16 for p in means)  # flushes, tails
    averages = [spec.params for spec in NEON_ELEMENTWISE_SPECS if spec.kernel == "avg_pool2d"]
    windows = {p["kernel_h"] * p["kernel_w"] for p in averages}
    assert max(windows) > 256 and 256 in windows and any(p["channels"] > 16 and p["channels"] % 16 for p in averages)
    assert any(spec.params.get("broadcast") for spec in NEON_ELEMENTWISE_SPECS if spec.kernel == "add")
    assert any(spec.params.get("subtract") for spec in NEON_ELEMENTWISE_SPECS if spec.kernel == "add")
    for kernel_specs in ([spec for spec in NEON_ELEMENTWISE_SPECS if spec.kernel == "add"],
                         [spec for spec in NEON_ELEMENTWISE_SPECS if spec.kernel == "mul"], NEON_PRELU_SPECS):
        assert {spec.params.get("rounding", 0) for spec in kernel_specs} == {0, 1, 2}  # TFLite's double roundings too
    assert any(spec.params["channels"] % 8 for spec in NEON_PRELU_SPECS)
    assert all(emit("prelu", "k", spec.params, dict(alpha=spec.alpha), target=target).source.count("npu_neon_prelu(")
               for spec in NEON_PRELU_SPECS[:3])
    assert max(spec.params["depth"] for spec in NEON_SOFTMAX_SPECS) > 4096  # the saturating sum
    assert any("wide" in spec.label for spec in NEON_RESIZE_SPECS)  # sums past int32: the reference's path
    for spec in (NEON_MAC_SPECS + NEON_ELEMENTWISE_SPECS + NEON_PRELU_SPECS + NEON_SOFTMAX_SPECS + NEON_RESIZE_SPECS
                 + NEON_MOVE_SPECS):
        assert_bit_exact(neon_runs[target.name][spec.label], spec, None)  # and counted: instructions > 0


@pytest.mark.parametrize("target", TARGETS, ids=[target.name for target in TARGETS])
def test_neon_quantize_matches_kernels_ref(target, tmp_path):
    """The float input's quantisation (fdiv, fcvtas) against kernels/ref's on the same CPU model, bit for
    bit: the coral-npu quantize tests' values (exact ties, saturation, infinities, NaN, -0, subnormals)."""
    rows = quantize_cases.cases()
    cases = [KernelCase("quantize", params, {}, [x], (params["size"],), reference=reference)
             for reference in (False, True) for _, params, x, _ in rows]
    runs = run_kernel_cases(cases, tmp_path, target=target, progress=False)
    for (label, params, *_), ours, ref in zip(rows, runs[:len(rows)], runs[len(rows):]):
        assert np.array_equal(ours.output, ref.output), label
        if params["size"] >= 8 or "block" not in params:  # a block's tail alone is the reference's own loop
            assert ours.instructions < ref.instructions, label


@pytest.mark.parametrize("target", TARGETS, ids=[target.name for target in TARGETS])
def test_neon_dequantize_matches_kernels_ref(target, tmp_path):
    """The float output's dequantisation (scvtf, fmul, and fadd in LiteRT's blocks) against kernels/ref's
    on the same CPU model, float32 bit patterns compared: the coral-npu dequantize tests' cases (every
    byte at every scale and zero point, an overflowing and a subnormal scale, blocks of 8). clang
    vectorises the reference's loops nearly as well (at 1000 elements 1.31 instructions per element
    against 1.49, and 1.39 against 1.38 in blocks): the figure checked is that the vector steps ran."""
    rows = quantize_cases.dequantize_cases()
    cases = [KernelCase("dequantize", params, {}, [x], (params["size"],), output_dtype="float32", reference=reference)
             for reference in (False, True) for _, params, x, _ in rows]
    runs = run_kernel_cases(cases, tmp_path, target=target, progress=False)
    for (label, *_), ours, ref in zip(rows, runs[:len(rows)], runs[len(rows):]):
        assert np.array_equal(ours.output.view(np.uint32), ref.output.view(np.uint32)), label
        if ours.output.size >= 1000:  # the vector steps ran (the scalar loop takes ~6 per element)
            print(f"{label}: {ours.instructions / ours.output.size:.2f} instructions per element, "
                  f"kernels/ref {ref.instructions / ref.output.size:.2f}")
            assert ours.instructions < 1.5 * ours.output.size, label


def test_the_dot_product_needs_fewer_instructions(neon_runs):
    """The plugin's counts tell the two CPUs' kernels apart: on a MobileNet pointwise layer the A76's
    sdot kernel (16 MACs per product instruction) needs well under the A72's smull + sadalp (4 per
    instruction); with K = 32 the gather, the tile calls and the requantisation weigh on both."""
    label = "pointwise 56x56 32->32"
    spec = next(spec for spec in NEON_MAC_SPECS if spec.label == label)
    macs = spec.want.size * spec.params["in_c"]
    a76, a72 = (neon_runs[target.name][label].instructions for target in TARGETS)
    print(f"{label}: A76 {a76:,} instructions ({macs / a76:.2f} MACs each), A72 {a72:,} ({macs / a72:.2f})")
    assert a76 * 1.5 < a72 and macs / a72 > 1.5

def test_each_cpu_gets_its_own_products(tmp_path):
    """The A76 build multiplies with sdot, the A72 build (no dot product) with int8 smull (into int16 lanes)."""
    spec = NEON_MAC_SPECS[0]
    sdot, smull8 = re.compile(r"\bsdot\b"), re.compile(r"\bsmull\s+v\d+\.8h")
    for target, present, absent in ((TARGETS[0], sdot, smull8), (TARGETS[1], smull8, sdot)):
        (tmp_path / "k.c").write_text(emit(spec.kernel, "k", spec.params, spec.arrays, target=target).source)
        toolchain = Toolchain.for_target(target)
        obj = toolchain.compile(tmp_path / "k.c", tmp_path / f"{target.name}.o", flags=["-O2"])
        listing = run_tool([toolchain.objdump, "-d", "--mattr=+dotprod", obj], "disassembling")
        assert present.search(listing) and not absent.search(listing)


@pytest.fixture(scope="module")
def host_digits(tmp_path_factory):
    out = tmp_path_factory.mktemp("host") / "host"
    build(DIGITS / "digits_cnn.onnx", DIGITS / "calib.npz", out, "--target", "host")
    return out


@pytest.mark.parametrize("target", TARGETS, ids=[target.name for target in TARGETS])
def test_digits_equals_the_host_build_bit_for_bit(target, host_digits, tmp_path):
    out = tmp_path / target.name
    report = build(DIGITS / "digits_cnn.onnx", DIGITS / "calib.npz", out, "--target", target.name)
    stdout = digits_equal_host(out, host_digits, tmp_path / "runs", count=2)
    assert "qemu-aarch64 -plugin instret" in stdout and "MACs/instr" in stdout
    coral = report["coral"]
    assert coral["build"]["arch"] == "neon"
    convs = [row for row in coral["layers"] if row["op"].startswith("conv2d") or row["op"].startswith("dense")]
    assert [row["impl"] for row in convs] == ["neon"] * 6
    assert [row["region"] for row in coral["memory_map"]] == ["DRAM"]
    record = json.loads((out / "run.json").read_text())
    assert all(row["instructions"] > 0 for row in record["layers"])
    assert record["total_instructions"] >= sum(row["instructions"] for row in record["layers"])
    digits_equal_host(out, host_digits, tmp_path / "again", count=1)  # the same input again: the same counts
    assert json.loads((out / "run.json").read_text()) == record
    data = (out / "firmware.elf").read_bytes()
    assert data[4] == 2 and data[18:20] == (183).to_bytes(2, "little")  # ELFCLASS64, EM_AARCH64
    assert b"/lib/ld-linux" not in data  # static: no program interpreter


def test_a_float_layer_runs_tvm_code_for_aarch64(host_digits, tmp_path):
    """--keep-float leaves a convolution to TVM's LLVM backend (mtriple aarch64-linux-gnu); the same
    layer kept in float on the host gives the same outputs within float rounding."""
    keep = ("--keep-float", "/features/features.6/Conv")
    arm = build(DIGITS / "digits_cnn.onnx", DIGITS / "calib.npz", tmp_path / "arm", "--target", "arm64-neon-a72", *keep)
    assert "nn.conv2d" in {row["op"] for row in arm["coral"]["layers"] if row["impl"] == "tvm"}
    build(DIGITS / "digits_cnn.onnx", DIGITS / "calib.npz", tmp_path / "host", "--target", "host", *keep)
    x = np.load(DIGITS / "sample.npy").astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    outputs = []
    for name in ("arm", "host"):
        result = cli("run", tmp_path / name, "--input", tmp_path / "x.npy", "--output", tmp_path / f"{name}.npy")
        assert result.returncode == 0, result.stderr
        outputs.append(np.load(tmp_path / f"{name}.npy"))
    # The float conv's output is requantised to int8 before the next layer: a float-rounding
    # difference can move one value by one step, so allow one step of the output's scale.
    assert np.allclose(outputs[0], outputs[1], atol=0.05)


def test_tune_is_refused_on_a_family_without_knobs(tmp_path):
    result = cli("tune", DIGITS / "digits_cnn.onnx", "--target", "arm64-neon", "--quantize", "int8",
                 "--calib", DIGITS / "calib.npz", "--tuning-db", tmp_path / "db.json", "-o", tmp_path / "out")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "error: tune --target arm64-neon: its neon kernels have no schedule knobs to tune (the tuner searches the "
        "RVV kernels' tiles)")


def _program(target, tmp_path, body: str, cflags=()):
    (tmp_path / "main.c").write_text('#include "npu_runtime.h"\n' + body)
    return Toolchain.for_target(target).build_firmware([tmp_path / "main.c"], tmp_path / "firmware.elf", cflags=cflags)


def test_the_a72_model_has_no_dot_product(tmp_path):
    """The same program with an sdot runs on the A76 model and stops with SIGILL, named in one line,
    on the A72's: the CPU models keep a kernel honest about the instructions it may use."""
    body = r"""
        int main(void) {
            __asm__ volatile("sdot v0.4s, v1.16b, v2.16b" ::: "v0");
            npu_puts("dot product ran\n");
            return 0;
        }"""
    a76, a72 = TARGETS
    elf = _program(a72, tmp_path, body, cflags=["-march=armv8.2-a+dotprod"])
    assert "dot product ran" in run_firmware(elf, tmp_path, target=a76).stdout
    with pytest.raises(SimulatorError, match=r"^simulator failed: qemu: uncaught target signal 4 \(Illegal instruction\)"):
        run_firmware(elf, tmp_path, target=a72)


def test_the_input_stream_is_stdin(tmp_path):
    """npu_read_input reads the length-prefixed stream from stdin; a short stream is reported, not read past."""
    target = TARGETS[0]
    elf = _program(target, tmp_path, r"""
        int main(void) {
            uint8_t first[3], second[2];
            if (npu_read_input(first, 3) != 0) return 10;
            npu_send(0, first, 3);
            if (npu_read_input(second, 2) != 0) { npu_puts("short stream\n"); return 11; }
            return 0;
        }""")
    result = run_firmware(elf, tmp_path, inputs=[b"\x01\x02", b"\x03\x04"], target=target, check=False)
    assert result.records[0] == b"\x01\x02\x03" and result.exit_code == 11 and "short stream" in result.stdout
