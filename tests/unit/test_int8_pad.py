"""QDQ-form int8 graphs run through the C reference kernels (codegen npu_ref): the pad row, which must
equal the NumPy reference kernels (compiler.quant.reference) bit for bit.

Each test writes a QDQ-form Relax module by hand (quant/qdq.py), offloads it (codegen/int8.py),
compiles it for llvm, runs it in the Relax VM and compares with the reference applied to the same
integer data, whose integer parameters are derived here independently of quant/patterns.py.
Checks that fail keep the op in TVM, which must still run.
"""

import warnings

import numpy as np
import pytest
import tvm
from tvm import relax

from compiler.codegen import x86
from compiler.codegen.int8 import NPU_REF, offloaded_composites, partition_int8
from compiler.quant import qdq
from compiler.quant import reference as ref
from compiler.quant.patterns import lower_composite
from int8_testing import composites, int8, module, ops_left_in_main, run, run_in_tvm
# ---------------------------------------------------------------------------------------------
# pad


def pad_module(shape, width, s, zp, *, value=0.0, s_y=None, zp_y=None, mode="constant"):
    """dequantize -> R.nn.pad(pad_width ((before, after) per axis, flattened), value) -> quantize."""
    def body(bb, v):
        padded = bb.emit(relax.op.nn.pad(bb.emit(qdq.dequantize(v, s, zp)), width, mode, value))
        return qdq.quantize(padded, s if s_y is None else s_y, zp if zp_y is None else zp_y)

    return module([(shape, "int8")], body)


PAD_CASES = {
    # name: (input shape, ((before, after) per axis), zero point)
    "odd_hwc_zp_min": ((2, 5, 4, 3), ((0, 0), (1, 2), (3, 0), (1, 2)), -128),
    "odd_hwc_zp_max": ((1, 3, 6, 5), ((0, 0), (2, 1), (0, 3), (3, 1)), 127),
    "batch_and_channel": ((2, 2, 3, 4), ((1, 2), (0, 1), (1, 0), (0, 3)), -7),
    "rank3": ((4, 5, 3), ((1, 0), (0, 2), (3, 1)), 127),
}


@pytest.mark.parametrize("case", PAD_CASES)
def test_pad_matches_reference(case):
    """npu_pad_s8 pads with the zero point (real 0.0): equal to the NumPy reference pad_s8 bit for bit."""
    shape, pairs, zp = PAD_CASES[case]
    x = int8(shape)
    mod = pad_module(shape, [w for pair in pairs for w in pair], 0.037, zp)
    assert composites(partition_int8(mod)) == ["npu_ref.pad"]
    lead = 4 - len(shape)
    expected = ref.pad_s8(x.reshape((1,) * lead + shape), padding=((0, 0),) * lead + pairs, pad_value=zp)
    expected = expected.reshape(expected.shape[lead:])
    got = run(mod, x)
    np.testing.assert_array_equal(got, expected)
    assert np.sum(got == zp) >= got.size - x.size  # the padding is the zero point
    np.testing.assert_array_equal(run_in_tvm(mod, x), expected)  # TVM's float QDQ evaluation agrees


def test_generated_pad_params(monkeypatch):
    """The portable path (kernels/ref), which CPUs without the host's SIMD kernels take."""
    monkeypatch.setattr(x86, "simd_host", lambda: None)
    mod = pad_module((1, 4, 5, 3), [0, 0, 1, 2, 3, 0, 0, 1], 0.1, -5)
    source = NPU_REF.source_for(partition_int8(mod))
    assert ("static const npu_pad_params params = {.in_dims = {1, 4, 5, 3}, .pad_before = {0, 1, 3, 0}, "
            ".pad_after = {0, 2, 0, 1}, .pad_value = -5};") in source
    assert "npu_pad_s8(&params, in0, out0);" in source


def test_host_with_avx2_pads_with_the_x86_kernel():
    """On an AVX2 CPU the pad is the x86 family's (pad.cc's plan with the C library's fills and copies);
    the results of the other tests here are then its."""
    assert x86.simd_host() is not None, "this test needs an x86-64 CPU with AVX2 (/proc/cpuinfo flag avx2)"
    source = NPU_REF.source_for(partition_int8(pad_module((1, 4, 5, 3), [0, 0, 1, 2, 3, 0, 0, 1], 0.1, -5)))
    assert "npu_x86_fill(dst, -5, " in source and "npu_pad_s8(&" not in source  # declared, not called


@pytest.mark.parametrize("kind", ["value", "scale", "zero_point", "reflect"])
def test_pad_failing_a_check_stays_in_tvm_and_runs(kind):
    """Only a constant pad with 0.0 keeping the input's (scale, zero point) is the kernel's."""
    shape, width = (1, 4, 4, 2), [0, 0, 1, 1, 2, 0, 0, 1]
    if kind == "reflect":
        width = [0, 0, 1, 1, 2, 0, 0, 0]
    extra = {"value": dict(value=0.5), "scale": dict(s_y=0.2), "zero_point": dict(zp_y=4),
             "reflect": dict(mode="reflect")}[kind]
    mod = pad_module(shape, width, 0.1, 3, **extra)
    partitioned = partition_int8(mod)
    assert "npu_ref.pad" not in composites(partitioned)
    assert "relax.nn.pad" in ops_left_in_main(partitioned)
    x = int8(shape)
    assert np.abs(run(mod, x).astype(np.int32) - run_in_tvm(mod, x)).max() <= 1


def conv_pad_conv_model(seed=0):
    """ONNX x -> Conv -> Pad (constant 0, odd pads on C, H and W) -> Conv (no padding)."""
    from onnx_models import GraphBuilder

    g = GraphBuilder(seed)
    pads = g.const("pads", np.array([0, 1, 1, 2, 0, 2, 3, 0], np.int64))  # begins N C H W, ends N C H W
    y = g.node("Pad", [g.conv("x", "conv1", 3, 6), pads, g.const("pad_value", np.float32(0.0))], "pad",
               mode="constant")
    y = g.conv(y, "conv2", 9, 4, pad=0)
    return g.model([("x", [1, 3, 7, 7])], y, [1, 4, 9, 7])


def test_onnx_conv_pad_conv_offloads_the_pad():
    """Quantised end to end (calibrate, plan, QDQ, int8 partition): the pad runs on npu_pad_s8 with
    the conv output's zero point, and the model stays close to the float one."""
    import compiler.targets
    from compiler.compile_model import compile_model
    from compiler.run.onnxruntime_cpu import session as ort_session
    from compiler.quant.calib_data import CalibrationWarning
    from compiler.quant.quantize import QuantConfig

    model = conv_pad_conv_model()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)  # random calibration samples, as asked
        cm = compile_model(model, compiler.targets.get_target("host"),
                           quant=QuantConfig(calib="random", samples=20, progress=False))
    names = [name for name, _ in offloaded_composites(cm.offloaded)]
    assert "npu_ref.pad" in names and sorted(names).count("npu_ref.conv2d_bias") == 2
    ((_, pad),) = [(n, f) for n, f in offloaded_composites(cm.offloaded) if n == "npu_ref.pad"]
    kernel = lower_composite(pad)
    assert kernel.params["pad_value"] != 0  # padding with 0 instead of the zero point would be wrong
    assert (kernel.params["pad_before"], kernel.params["pad_after"]) == ((0, 1, 2, 1), (0, 3, 0, 2))
    session = ort_session(model)
    vm = relax.VirtualMachine(cm.executable, tvm.cpu())["main"]
    for seed in range(3):
        x = np.random.default_rng(seed).standard_normal((1, 3, 7, 7)).astype(np.float32)
        expected = session.run(None, {"x": x})[0]
        got = vm(tvm.runtime.tensor(x)).numpy()
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() < 0.05 * np.abs(expected).max()


