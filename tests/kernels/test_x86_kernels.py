"""The host's x86 int8 kernels (cpp/src/x86_*.cc, AVX2) are bit-exact to kernels/ref.

Random cases are test_conv_dense.py's (odd shapes, every padding, strides, dilations, depthwise,
extreme zero points / weights / multipliers / clamps, all three roundings); every case's generated
kernel is compiled natively (the host build's flags) and run through ctypes beside the reference C
kernel (compiler.quant._ref_conv), once on the calling thread and once split over the TVM runtime's
threads (npu_parallel.h). The element-wise and pooling kernels take the RVV kernel tests' cases
(elementwise_cases.py). Grouped convolutions (depth multipliers > 1 too) are one kernel per group;
past 32 groups the codegen says so and the host build keeps kernels/ref.
Needs an x86-64 CPU with AVX2 (the CI machines have it); elsewhere the test fails saying so.
"""

import ctypes
import subprocess

import numpy as np
import pytest
import tvm
import move_cases
import quantize_cases
import prelu_cases
import resize_cases
import softmax_cases
from elementwise_cases import benchmark_specs, specs
from int8_random import act_range, int8_tensor, raw_multiplier, zero_point
from test_conv_dense import pick, random_conv_case, random_dense_case, random_values

from compiler.codegen.c_module import OBJECT_CFLAGS, _host_cc
from compiler.codegen.c_render import SEARCH_DIRS
from compiler.codegen.x86 import simd_host
from compiler.cpu_features import has_flags
from compiler.coral import codegen
from compiler.quant import _ref_conv as c_ref
from compiler.quant import _ref_elementwise as c_elementwise
from compiler.quant import reference as np_ref


@pytest.fixture(scope="module")
def host():
    target = simd_host()
    assert target is not None, "the x86 kernels need an x86-64 CPU with AVX2 (/proc/cpuinfo flag avx2)"
    return target


def conv_params(x, w, kwargs) -> dict:
    n, h, wd, c = x.shape
    o, kh, kw, _ = w.shape
    (sh, sw), (dh, dw), (pt, pl, pb, pr) = kwargs["stride"], kwargs["dilation"], kwargs["padding"]
    return dict(batches=n, in_h=h, in_w=wd, in_c=c, out_h=np_ref.conv2d_output_size(h, kh, sh, dh, pt, pb),
                out_w=np_ref.conv2d_output_size(wd, kw, sw, dw, pl, pr), out_c=o, kernel_h=kh, kernel_w=kw,
                stride_h=sh, stride_w=sw, dilation_h=dh, dilation_w=dw, pad_top=pt, pad_left=pl,
                groups=kwargs["groups"], **_value_params(kwargs))


def dense_params(x, w, kwargs) -> dict:
    return dict(batches=x.shape[0], in_features=x.shape[1], out_features=w.shape[0], **_value_params(kwargs))


def _value_params(kwargs) -> dict:
    return {key: int(kwargs[key]) for key in ("input_zero_point", "output_zero_point", "act_min", "act_max",
                                              "rounding")}


def arrays(w, bias, kwargs) -> dict:
    channels = w.shape[0]
    return {"weight": w, "bias": bias, "multiplier": np.broadcast_to(kwargs["multiplier"], channels).astype(np.int32),
            "shift": np.broadcast_to(kwargs["shift"], channels).astype(np.int32)}


def compile_kernels(sources: list[str], folder, cflags=()) -> ctypes.CDLL:
    """One shared library of the generated kernels, built as the host build builds them (plus `cflags`).
    A new file name each time: dlopen hands back an already loaded library of the same path."""
    index = len(list(folder.glob("kernels*.so")))
    src, lib = folder / f"kernels{index}.c", folder / f"kernels{index}.so"
    src.write_text("\n".join(sources))
    include = [f"-I{d}" for d in SEARCH_DIRS]
    subprocess.run([_host_cc(), "-x", "c", "-std=c11", *OBJECT_CFLAGS, *cflags, "-Werror=implicit-function-declaration",
                    "-fPIC", "-shared", *include, str(src), "-o", str(lib)], check=True, capture_output=True, text=True)
    return ctypes.CDLL(str(lib))


def run_kernel(library, name, inputs, out_shape, scratch_bytes, out_dtype=np.int8) -> np.ndarray:
    """NAME(input, [input2,] output, scratch) on the array(s) `inputs`."""
    inputs = [np.ascontiguousarray(x) for x in (inputs if isinstance(inputs, (list, tuple)) else [inputs])]
    out = np.empty(out_shape, out_dtype)
    scratch = np.zeros(max(scratch_bytes, 1) + 32, np.int8)
    pointers = [a.ctypes.data_as(ctypes.c_void_p) for a in (*inputs, out, scratch)]
    getattr(library, name)(*pointers)
    return out


def set_parallel_launch(library, enabled: bool) -> None:
    """Point the library's weak __TVMBackendParallelLaunch at the TVM runtime's thread pool (as the TVM
    runtime does when it loads a model library), or back to NULL: every range runs on this thread."""
    launch = tvm.base._LOADED_LIBS["tvm_runtime"].TVMBackendParallelLaunch
    pointer = ctypes.c_void_p.in_dll(library, "__TVMBackendParallelLaunch")
    pointer.value = ctypes.cast(launch, ctypes.c_void_p).value if enabled else None


def check_cases(kernel, cases, host, tmp_path, cflags=()):
    """Emit, compile (with `cflags` too) and run every (x, w, bias, kwargs) case, on this thread and split
    over the TVM runtime's threads; each result must equal the reference C kernel's. The library."""
    emitted, expected = [], []
    for i, (x, w, bias, kwargs) in enumerate(cases):
        if kernel == "conv2d":
            params, reference = conv_params(x, w, kwargs), c_ref.conv2d_s8(x, w, bias, **kwargs)
        else:
            params, reference = dense_params(x, w, kwargs), c_ref.dense_s8(x, w, bias, **kwargs)
        emitted.append((f"k{i}", codegen.emit(kernel, f"k{i}", params, arrays(w, bias, kwargs), target=host)))
        expected.append(reference)
    library = compile_kernels([out.source for _, out in emitted], tmp_path, cflags)
    for parallel in (False, True):
        set_parallel_launch(library, parallel)
        for (name, out), reference, (x, w, bias, kwargs) in zip(emitted, expected, cases):
            actual = run_kernel(library, name, x, reference.shape, out.scratch_bytes)
            shown = {k: v for k, v in kwargs.items() if k not in ("multiplier", "shift")}
            np.testing.assert_array_equal(actual, reference,
                                          err_msg=f"{kernel} x{x.shape} w{w.shape} {shown} parallel={parallel}")
    return library


# conv2d also takes fixed_point.BLOCKS_OF_8_ROUNDING (3): LiteRT's depthwise, ties up in whole blocks of 8
# output channels, away from zero in the rest.
CONV_ROUNDINGS = (0, 1, 2, 3)


def random_cases(random_case, seed, count, supported=lambda case: True, roundings=(0, 1, 2)):
    rng = np.random.default_rng(seed)
    cases = []
    while len(cases) < count:
        x, w, bias, kwargs = random_case(rng, extreme=bool(len(cases) % 2))
        kwargs["rounding"] = roundings[len(cases) % len(roundings)]  # 0: single (ONNX); 1, 2: double (TFLite)
        if supported((x, w, bias, kwargs)):
            cases.append((x, w, bias, kwargs))
    return cases


def random_wide_conv_case(rng, extreme):
    """Channel counts that fill 8-lane vectors and 32-channel tiles, with tails: the vector requantisation."""
    depthwise = rng.random() < 0.4
    c = pick(rng, [8, 13, 16, 24, 37, 64])
    o = c if depthwise else pick(rng, [8, 9, 16, 31, 32, 40, 72])
    k = pick(rng, [1, 3]) if not depthwise else 3
    x, w, bias, kwargs = random_values(rng, (1, int(rng.integers(2, 6)), int(rng.integers(2, 6)), c),
                                       (o, k, k, 1 if depthwise else c), k * k * (1 if depthwise else c), extreme)
    pad = (k // 2,) * 4
    return x, w, bias, dict(stride=(1, 1), dilation=(1, 1), padding=pad, groups=c if depthwise else 1, **kwargs)


def random_wide_dense_case(rng, extreme):
    k, o = pick(rng, [3, 16, 64, 100]), pick(rng, [8, 16, 21, 40])
    return random_values(rng, (int(rng.integers(1, 4)), k), (o, k), k, extreme)


VNNI_FLAGS = ("avx512f", "avx512bw", "avx512_vnni")


@pytest.mark.parametrize("seed", range(2))
def test_both_product_forms(seed, host, tmp_path):
    """Convolutions (groups 1 and depthwise) and dense layers in both product forms of the generated C:
    the AVX2 int16 pairs (vpmaddwd; compiled -mno-avx512vnni here), and what -march=native picks on
    this CPU, the AVX-512 VNNI byte quads (vpdpbusd, the unsigned-input offset folded into the bias)
    where it has them (the library then holds vpdpbusd), the pairs where it has not (then it holds
    none). Extreme zero points and weights, every rounding, in_c not a multiple of 4, tap counts not
    a multiple of 4; the other tests run the native form."""
    convs = [*random_cases(random_conv_case, 7600 + seed, 16, roundings=CONV_ROUNDINGS),
             *random_cases(random_wide_conv_case, 7650 + seed, 12, roundings=CONV_ROUNDINGS)]  # depthwise, 16 lanes
    dense = random_cases(random_dense_case, 7700 + seed, 10)
    assert any(x.shape[3] % 4 for x, *_ in convs) and any(kwargs["groups"] >= 16 for *_, kwargs in convs)
    check_cases("conv2d", convs, host, tmp_path, cflags=("-mno-avx512vnni",))
    check_cases("dense", dense, host, tmp_path, cflags=("-mno-avx512vnni",))
    native = check_cases("conv2d", convs, host, tmp_path)
    check_cases("dense", dense, host, tmp_path)
    listing = subprocess.run(["objdump", "-d", native._name], check=True, capture_output=True, text=True).stdout
    assert ("vpdpbusd" in listing) == has_flags(VNNI_FLAGS), f"VNNI flags {has_flags(VNNI_FLAGS)}"


@pytest.mark.parametrize("seed", range(4))
def test_conv2d_matches_reference(seed, host, tmp_path):
    """test_conv_dense.py's random convolutions: groups 1, depthwise, grouped and depth multipliers > 1,
    every rounding (LiteRT's depthwise too: a grouped layer's kernel per group splits its channels)."""
    cases = random_cases(random_conv_case, 7000 + seed, 30, roundings=CONV_ROUNDINGS)
    assert any(1 < kwargs["groups"] < x.shape[3] for x, _, _, kwargs in cases)  # grouped
    assert any(kwargs["groups"] == x.shape[3] < w.shape[0] for x, w, _, kwargs in cases)  # depth multiplier
    check_cases("conv2d", cases, host, tmp_path)


@pytest.mark.parametrize("seed", range(2))
def test_dense_matches_reference(seed, host, tmp_path):
    check_cases("dense", random_cases(random_dense_case, 7100 + seed, 30), host, tmp_path)


@pytest.mark.parametrize("seed", range(2))
def test_wide_layers_single_rounding(seed, host, tmp_path):
    """Typical and extreme values (zero points, huge / tiny / > 1 multipliers, narrow clamps) through the
    8-lane requantisation of ONNX models' single rounding."""
    check_cases("conv2d", random_cases(random_wide_conv_case, 7300 + seed, 30, roundings=(0,)), host, tmp_path)
    check_cases("dense", random_cases(random_wide_dense_case, 7400 + seed, 20, roundings=(0,)), host, tmp_path)


def test_layers_large_enough_to_split_over_threads(host, tmp_path):
    """Work above the kernels' grain (npu_parallel_range splits it): each thread's slice of pixel blocks,
    pixels or element vectors gives the same bytes, with an odd tail after the split part."""
    rng = np.random.default_rng(7250)
    cases = []
    for in_c, out_c, groups, k in [(64, 96, 1, 1), (24, 40, 1, 3), (72, 72, 72, 3)]:
        x = rng.integers(-128, 128, size=(1, 29, 27, in_c), dtype=np.int8)
        w = rng.integers(-127, 128, size=(out_c, k, k, in_c // groups), dtype=np.int8)
        kwargs = dict(stride=(1, 1), dilation=(1, 1), padding=(k // 2,) * 4, groups=groups, input_zero_point=-7,
                      output_zero_point=3, multiplier=rng.integers(1 << 30, 1 << 31, size=out_c).astype(np.int32),
                      shift=np.full(out_c, -9 - k, np.int32), act_min=-128, act_max=127, rounding=0)
        cases.append((x, w, rng.integers(-9000, 9000, size=out_c).astype(np.int32), kwargs))
    check_cases("conv2d", cases, host, tmp_path)


def test_wide_layers_cross_every_tile_boundary(host, tmp_path):
    """Channel counts around the 32-channel (AVX2) and 64-channel (VNNI) tiles, the 8- and 16-lane
    registers and VNNI's 4-channel words, in and out, both pixel blocks."""
    rng = np.random.default_rng(7200)
    cases = []
    for in_c, out_c, groups in [(64, 96, 1), (33, 31, 1), (17, 65, 1), (130, 129, 1), (6, 200, 1), (40, 40, 40),
                                (37, 37, 37), (96, 96, 96)]:
        kh = 3 if groups > 1 or in_c < 40 else 1
        x = rng.integers(-128, 128, size=(1, 5, 3, in_c), dtype=np.int8)
        w = rng.integers(-128, 128, size=(out_c, kh, kh, in_c // groups), dtype=np.int8)
        bias = rng.integers(-5000, 5000, size=out_c).astype(np.int32)
        multiplier = rng.integers(1 << 30, 1 << 31, size=out_c).astype(np.int32)
        kwargs = dict(stride=(2, 1), dilation=(1, 1), padding=(1, 1, 1, 1) if kh == 3 else (0, 0, 0, 0),
                      groups=groups, input_zero_point=int(rng.integers(-128, 128)), output_zero_point=5,
                      multiplier=multiplier, shift=np.full(out_c, -12, np.int32), act_min=-128, act_max=127,
                      rounding=0)
        cases.append((x, w, bias, kwargs))
    check_cases("conv2d", cases, host, tmp_path)


def test_grouped_convolutions(host, tmp_path):
    """Grouped convolutions as one groups-1 kernel per group over its channel slices: 32 groups (the
    most that get kernels), a depth multiplier of 3 over 8 channels, groups of 1x1 kernels whose
    channels are a multiple of 4, all bit-exact; 33 groups are left to kernels/ref, the reason named."""
    rng = np.random.default_rng(7260)
    cases = []
    for (c, o, groups, k) in [(64, 64, 32, 3), (8, 24, 8, 3), (48, 96, 4, 1), (6, 9, 3, 3)]:
        x, w, bias, kwargs = random_values(rng, (1, 7, 6, c), (o, k, k, c // groups), k * k * (c // groups), False)
        cases.append((x, w, bias, dict(stride=(1, 1), dilation=(1, 1), padding=(k // 2,) * 4, groups=groups,
                                       rounding=len(cases) % 3, **kwargs)))
    check_cases("conv2d", cases, host, tmp_path)
    params = dict(batches=1, in_h=4, in_w=4, in_c=66, out_h=4, out_w=4, out_c=66, kernel_h=1, kernel_w=1, stride_h=1,
                  stride_w=1, pad_top=0, pad_left=0, groups=33, input_zero_point=0, output_zero_point=0, act_min=-128,
                  act_max=127)
    assert "33 groups" in codegen.validate("conv2d", params, None, host)
    with pytest.raises(codegen.SpecError, match="up to 32 groups"):
        codegen.emit("conv2d", "k", params, {"weight": np.zeros((66, 1, 1, 2), np.int8),
                                             "multiplier": np.ones(66, np.int32), "shift": np.zeros(66, np.int32)},
                     target=host)


def random_add_case(rng):
    """(a, b, npu_add_params) over the kernel's whole parameter domain: saturating multipliers, every
    shift, left shift and rounding, subtract, per-channel broadcast, widths around the 8-lane vectors."""
    n, h, w, c = int(rng.integers(1, 3)), int(rng.integers(1, 5)), int(rng.integers(1, 5)), int(rng.choice([1, 7, 8, 13, 16, 40]))
    broadcast = int(rng.random() < 0.4)
    a = int8_tensor(rng, (n, h, w, c))
    b = int8_tensor(rng, (n, 1, 1, c) if broadcast else (n, h, w, c))
    act_min, act_max = act_range(rng)
    params = dict(batches=n, pixels=h * w, channels=c, broadcast=broadcast, subtract=int(rng.integers(2)),
                  left_shift=int(rng.choice([20, 0, int(rng.integers(0, 21))])), act_min=act_min, act_max=act_max)
    for prefix in ("input1_", "input2_", "output_"):
        params.update({prefix + "zero_point": zero_point(rng), prefix + "multiplier": raw_multiplier(rng),
                       prefix + "shift": int(rng.choice([0, -1, int(rng.integers(-31, 1))]))})
    params["rounding"] = int(rng.integers(3))  # npu_quant.h NPU_ROUND_*: ONNX's single, TFLite's double, ties up
    return a, b, params


def test_add_matches_reference(host, tmp_path):
    rng = np.random.default_rng(7500)
    cases = [random_add_case(rng) for _ in range(60)]
    for broadcast in (0, 1):  # large enough to be split over threads, with a tail
        a, _, params = random_add_case(rng)
        a = rng.integers(-128, 128, size=(1, 61, 59, 37), dtype=np.int8)
        b = rng.integers(-128, 128, size=(1, 1, 1, 37) if broadcast else a.shape, dtype=np.int8)
        cases.append((a, b, dict(params, batches=1, pixels=61 * 59, channels=37, broadcast=broadcast)))
    emitted = [codegen.emit("add", f"add{i}", params, {}, target=host) for i, (_, _, params) in enumerate(cases)]
    library = compile_kernels([out.source for out in emitted], tmp_path)
    for parallel in (False, True):
        set_parallel_launch(library, parallel)
        for i, ((a, b, params), out) in enumerate(zip(cases, emitted)):
            expected = c_elementwise.add_s8(a, b, **params)
            actual = run_kernel(library, f"add{i}", [a, b], expected.shape, out.scratch_bytes)
            np.testing.assert_array_equal(actual, expected, err_msg=f"add {a.shape} {b.shape} {params} parallel={parallel}")


X86_ELEMENTWISE = ("add", "concat", "mul", "lut", "requantize", "max_pool2d", "avg_pool2d", "global_avg_pool2d")


def test_elementwise_and_pooling_match_reference(host, tmp_path):
    """The element-wise and pooling cases of the RVV kernel tests (elementwise_cases.py: random specs over
    each kernel's whole domain, in every rounding, and real layers large enough to be split over
    threads): every one has an x86 kernel, bit-exact to kernels/ref."""
    cases = [spec for spec in [*specs(), *benchmark_specs()] if spec.kernel in X86_ELEMENTWISE]
    assert {spec.kernel for spec in cases} == set(X86_ELEMENTWISE)
    for spec in cases:
        assert codegen.validate(spec.kernel, spec.params, None, host) == "", spec.label
    double = [spec for spec in cases if spec.params.get("rounding", 0) or spec.params.get("block_rounding", 0)]
    assert {spec.kernel for spec in double} >= {"mul", "global_avg_pool2d"}, "no TFLite double rounding among the cases"
    assert_specs_match(cases, lambda spec: spec.arrays, lambda spec: spec.inputs, host, tmp_path)


def assert_specs_match(specs, arrays, inputs, host, tmp_path):
    """Each spec's generated x86 kernel (its constant `arrays(spec)`, run on `inputs(spec)`) gives
    spec.want bit for bit, on this thread and split over the runtime's threads."""
    emitted = [codegen.emit(spec.kernel, f"k{i}", spec.params, arrays(spec), target=host) for i, spec in enumerate(specs)]
    library = compile_kernels([out.source for out in emitted], tmp_path)
    for parallel in (False, True):
        set_parallel_launch(library, parallel)
        for i, (spec, out) in enumerate(zip(specs, emitted)):
            actual = run_kernel(library, f"k{i}", inputs(spec), spec.want.shape, out.scratch_bytes)
            np.testing.assert_array_equal(actual, spec.want, err_msg=f"{spec.label} parallel={parallel}")


def test_prelu_matches_reference(host, tmp_path):
    """The coral-npu PReLU tests' specs (per-channel and scalar slopes, every shift pair, extreme zero
    points, channel counts below and above a vector, empty tensors, every rounding): bit-exact, serial
    and threaded."""
    cases = prelu_cases.SPECS + prelu_cases.BENCHMARKS
    for spec in cases:
        assert codegen.validate("prelu", spec.params, None, host) == "", spec.label
    assert {spec.params["rounding"] for spec in cases} == {0, 1, 2}
    assert len(cases) >= 15 and any(spec.params["channels"] % 8 for spec in cases)
    assert_specs_match(cases, lambda spec: dict(alpha=spec.alpha), lambda spec: spec.x, host, tmp_path)


def test_softmax_matches_reference(host, tmp_path):
    """The coral-npu softmax tests' specs (depths below and above a vector, rows whose output shift
    exceeds 31, saturating sums, one past the kernel's int32 lane flush, edge params), serial and
    threaded."""
    cases = softmax_cases.SPECS + softmax_cases.BENCHMARKS
    assert max(spec.params["depth"] for spec in cases) > 2048 * 8
    assert_specs_match(cases, lambda spec: {}, lambda spec: spec.x, host, tmp_path)


def test_resize_matches_reference(host, tmp_path):
    """The coral-npu resize tests' specs, nearest and bilinear (every TFLite flag and ONNX mode, up and
    down, channel tails, extrapolating tables and tables whose sums pass int32) and the 28x28x32 ->
    56x56x32 benchmarks, serial and threaded."""
    cases = [*resize_cases.specs(), *resize_cases.benchmark_specs()]
    assert {spec.kernel for spec in cases} == {"resize_nearest", "resize_bilinear"}
    assert any("wide" in spec.label for spec in cases) and any("extrapolating" in spec.label for spec in cases)
    assert_specs_match(cases, lambda spec: spec.arrays, lambda spec: spec.x, host, tmp_path)


def test_pad_and_copy_match_reference(host, tmp_path):
    """The coral-npu move tests' pads (every axis, empty inputs, no padding, channel pads of short rows,
    pads longer than a vector) and copies (slices with steps, DepthToSpace, SpaceToDepth, transposes,
    raw strides and offsets), and their layer benchmarks."""
    cases = [*move_cases.specs(), *move_cases.benchmark_specs()]
    assert {spec.kernel for spec in cases} == {"pad", "copy"}
    assert_specs_match(cases, lambda spec: {}, lambda spec: spec.inputs, host, tmp_path)


def special_floats(rng, scale, count):
    """Floats around every rounding tie and saturation edge of a quantisation by `scale`, and NaN, inf."""
    ties = (rng.integers(-300, 300, count) + rng.choice([0.5, -0.5, 0.0, 0.49999997, 0.50000006], count)) * scale
    edges = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e30, -1e30, 255.5, 256.0, -255.5, -256.0, 127.5, -128.5],
                     np.float32) * np.float32(scale)
    wide = rng.standard_normal(count) * scale * 10.0 ** rng.uniform(-2, 3, count)
    return np.concatenate([ties, edges, wide]).astype(np.float32)


def test_quantize_matches_reference(host, tmp_path):
    """float32 -> int8 at a model input: ties both ways, NaN, infinities, quotients beyond +-256, every zero
    point; sizes with 8-lane tails and above the 4096-element slices; every other case with LiteRT's
    blocks of 8 (TFLite models: x * reciprocal in the blocks, the rest rounded half away)."""
    rng = np.random.default_rng(7600)
    cases = []
    for i in range(24):
        scale = float(np.float32(10.0 ** rng.uniform(-4, 1)))
        x = special_floats(rng, scale, int(rng.choice([1, 7, 100, 5000, 5003])))
        cases.append((rng.permutation(x), scale, int(rng.choice([-128, 127, 0, rng.integers(-128, 128)])), 8 * (i % 2)))
    cases.append((np.zeros(0, np.float32), 0.5, 3, 0))
    params = [dict(size=x.size, zero_point=zp, scale=scale, **quantize_cases.blocks(scale, block))
              for x, scale, zp, block in cases]
    emitted = [codegen.emit("quantize", f"q{i}", p, {}, target=host) for i, p in enumerate(params)]
    library = compile_kernels([out.source for out in emitted], tmp_path)
    for parallel in (False, True):
        set_parallel_launch(library, parallel)
        for i, ((x, scale, zp, block), out) in enumerate(zip(cases, emitted)):
            expected = c_elementwise.quantize(x, scale, zp, block)
            actual = run_kernel(library, f"q{i}", x, expected.shape, out.scratch_bytes)
            np.testing.assert_array_equal(actual, expected, err_msg=f"quantize scale {scale} zp {zp} parallel={parallel}")


def test_dequantize_matches_reference(host, tmp_path):
    """int8 -> float32 at a float output: the coral-npu dequantize tests' cases (every byte at every scale
    and zero point, an overflowing and a subnormal scale, LiteRT's blocks of 8 around their boundary),
    and sizes past the 4096-element slices with and without blocks; float32 bit patterns compared."""
    rng = np.random.default_rng(7700)
    rows = [(label, params, x) for label, params, x, _ in quantize_cases.dequantize_cases()]
    for size, block in [(10001, 0), (10001, 8), (8192, 8)]:
        params = {"size": size, "scale": float(np.float32(0.0392157)), "zero_point": -3, "block": block}
        rows.append((f"large-{size}-block{block}", params, rng.integers(-128, 128, size).astype(np.int8)))
    emitted = [codegen.emit("dequantize", f"d{i}", params, {}, target=host) for i, (_, params, _) in enumerate(rows)]
    library = compile_kernels([out.source for out in emitted], tmp_path)
    for parallel in (False, True):
        set_parallel_launch(library, parallel)
        for i, ((label, params, x), out) in enumerate(zip(rows, emitted)):
            expected = c_elementwise.dequantize(x, params["scale"], params["zero_point"], params.get("block", 0))
            actual = run_kernel(library, f"d{i}", x, expected.shape, out.scratch_bytes, np.float32)
            bad = np.flatnonzero(actual.view(np.uint32) != expected.view(np.uint32))
            assert bad.size == 0, (label, parallel, x[bad[:5]], actual[bad[:5]], expected[bad[:5]])
