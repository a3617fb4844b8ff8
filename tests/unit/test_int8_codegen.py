"""QDQ-form int8 graphs run through the C reference kernels (codegen npu_ref) must equal the NumPy
reference kernels (compiler.quant.reference) bit for bit.

Each test writes a QDQ-form Relax module by hand (quant/qdq.py), offloads it (codegen/int8.py),
compiles it for llvm, runs it in the Relax VM and compares with the reference applied to the same
integer data, whose integer parameters are derived here independently of quant/patterns.py.
Checks that fail keep the op in TVM, which must still run.
"""

import numpy as np
import pytest
import tvm
from tvm import relax

from compiler.codegen import x86
from compiler.codegen.int8 import EMITTERS, NPU_REF, offload_int8, offloaded_composites, partition_int8
from compiler.quant import qdq
from compiler.quant import reference as ref
from compiler.quant.patterns import ROWS, lower_composite
from int8_testing import (RNG, act_range, bias_scales, composites, int8, module, ops_left_in_main, output_scale,
                          requant, run, run_in_tvm, vm_run, weights)


# ---------------------------------------------------------------------------------------------
# conv2d


CONV_CASES = {
    # name: (N, H, W, C, O, kh, kw, stride, dilation, padding (t, l, b, r), groups, bias, act, zp_x, zp_y);
    # act: None, "relu" or clip bounds
    "stride2_asymmetric_padding_bias_relu":
        (2, 9, 8, 3, 4, 3, 3, (2, 2), (1, 1), (0, 1, 2, 1), 1, True, "relu", -128, -128),
    "dilation_bias": (1, 10, 9, 4, 5, 3, 2, (1, 1), (2, 3), (2, 1, 1, 0), 1, True, None, 127, 127),
    "depthwise_multiplier2_relu6": (1, 7, 6, 3, 6, 3, 3, (1, 2), (1, 1), (1, 1, 1, 1), 3, True, (0.0, 6.0), 127, -7),
    "grouped_clip_ties_no_bias": (1, 5, 5, 4, 6, 1, 2, (1, 1), (1, 1), (0, 0, 0, 1), 2, False, (-1.25, 3.75), -128, -7),
    "plain_no_bias": (1, 4, 5, 2, 3, 2, 2, (1, 1), (1, 1), (0, 0, 0, 0), 1, False, None, 0, -128),
}


def conv_module(x_shape, w_q, s_x, zp_x, s_w, s_y, zp_y, *, b_q=None, act=None, stride=(1, 1), dilation=(1, 1),
                padding=(0, 0, 0, 0), groups=1, w_zero_points=None, layout=("NHWC", "OHWI"), b_scales=None):
    def body(bb, x):
        xd = bb.emit(qdq.dequantize(x, s_x, zp_x))
        if w_zero_points is None:
            wd = bb.emit(qdq.weight(w_q, s_w, axis=0))
        else:
            wd = bb.emit(qdq.dequantize(relax.const(w_q), s_w, w_zero_points, axis=0))
        y = bb.emit(relax.op.nn.conv2d(xd, wd, strides=stride, padding=padding, dilation=dilation, groups=groups,
                                       data_layout=layout[0], kernel_layout=layout[1]))
        if b_q is not None:
            shape = (1, 1, 1, -1) if layout[0] == "NHWC" else (1, -1, 1, 1)
            axis = -1 if layout[0] == "NHWC" else 1
            scales = bias_scales(s_x, s_w) if b_scales is None else b_scales
            y = bb.emit(relax.op.add(y, bb.emit(qdq.bias(b_q.reshape(shape), scales, axis=axis))))
        if act == "relu":
            y = bb.emit(relax.op.nn.relu(y))
        elif act is not None:
            y = bb.emit(relax.op.clip(y, *act))
        return qdq.quantize(y, s_y, zp_y)

    return module([(x_shape, "int8")], body)


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_matches_reference(case):
    n, h, w, c, o, kh, kw, stride, dilation, padding, groups, has_bias, act, zp_x, zp_y = CONV_CASES[case]
    x = int8((n, h, w, c))
    w_q = weights((o, kh, kw, c // groups))
    b_q = RNG.integers(-3000, 3000, o).astype(np.int32) if has_bias else None
    s_x, s_w = np.float32(0.047), RNG.uniform(0.002, 0.03, o).astype(np.float32)
    s_y = output_scale(s_x, s_w, kh * kw * c // groups)
    lo, hi = {None: (None, None), "relu": (0.0, None)}.get(act) if not isinstance(act, tuple) else act
    if act == (-1.25, 3.75):
        s_y = np.float32(0.5)  # bounds / scale = -2.5 and 7.5: ties, rounded away from zero
    mod = conv_module(x.shape, w_q, s_x, zp_x, s_w, s_y, zp_y, b_q=b_q, act=act, stride=stride, dilation=dilation,
                      padding=padding, groups=groups)
    suffix = ("_bias" if has_bias else "") + {None: "", "relu": "_relu"}.get(act, "_clip")
    assert composites(partition_int8(mod)) == [f"npu_ref.conv2d{suffix}"]

    act_min, act_max = act_range(lo, hi, s_y, zp_y)
    if act == (-1.25, 3.75):
        assert (act_min, act_max) == (zp_y - 3, zp_y + 8)
    multiplier, shift = requant(s_x, s_w, s_y)
    expected = ref.conv2d_s8(x, w_q, b_q, stride=stride, dilation=dilation, padding=padding, groups=groups,
                             input_zero_point=zp_x, output_zero_point=zp_y, multiplier=multiplier, shift=shift,
                             act_min=act_min, act_max=act_max)
    got = run(mod, x)
    np.testing.assert_array_equal(got, expected)
    assert len(np.unique(got)) >= min(8, act_max - act_min + 1)  # the data exercise the requantisation
    # TVM's float evaluation of the same QDQ graph (rounding half to even) is within 1 LSB.
    assert np.abs(run_in_tvm(mod, x).astype(np.int32) - expected).max() <= 1


def test_generated_conv_uses_static_params_and_ohwi_weights(monkeypatch):
    """The portable path (kernels/ref), which CPUs without the host's SIMD kernels take."""
    monkeypatch.setattr(x86, "simd_host", lambda: None)
    x_shape, o = (1, 5, 5, 3), 4
    w_q = weights((o, 3, 3, 3))
    mod = conv_module(x_shape, w_q, 0.05, 3, np.full(o, 0.01, np.float32), 0.4, -5, b_q=np.arange(o, dtype=np.int32))
    source = NPU_REF.source_for(partition_int8(mod))
    assert "static const npu_conv2d_params params = {.batches = 1, .in_h = 5, .in_w = 5, .in_c = 3," in source
    assert "npu_conv2d_s8(&params, in0, npu_weight0, npu_bias1, npu_multiplier2, npu_shift3, out0);" in source
    first_weights = ", ".join(str(v) for v in w_q.reshape(-1)[:8])
    assert first_weights in source


def test_host_with_avx2_runs_conv_on_the_x86_kernels():
    """On an AVX2 CPU the host build's convolutions are the generated x86 kernels (the results of every
    conv test in this file are then theirs); a CPU without AVX2 takes kernels/ref (test above)."""
    assert x86.simd_host() is not None, "this test needs an x86-64 CPU with AVX2 (/proc/cpuinfo flag avx2)"
    mod = conv_module((1, 5, 5, 3), weights((4, 3, 3, 3)), 0.05, 3, np.full(4, 0.01, np.float32), 0.4, -5)
    source = NPU_REF.source_for(partition_int8(mod))
    assert "_mm256_madd_epi16" in source and "npu_conv2d_s8(" not in source


# ---------------------------------------------------------------------------------------------
# dense


def dense_module(x_shape, w_q, s_x, zp_x, s_w, s_y, zp_y, b_q=None, act=None):
    def body(bb, x):
        y = bb.emit(relax.op.matmul(bb.emit(qdq.dequantize(x, s_x, zp_x)), bb.emit(qdq.weight(w_q, s_w, axis=1))))
        if b_q is not None:
            y = bb.emit(relax.op.add(y, bb.emit(qdq.bias(b_q, bias_scales(s_x, s_w)))))
        if act == "relu":
            y = bb.emit(relax.op.nn.relu(y))
        return qdq.quantize(y, s_y, zp_y)

    return module([(x_shape, "int8")], body)


@pytest.mark.parametrize("x_shape, bias, act", [((3, 20), True, "relu"), ((2, 3, 17), False, None)])
def test_dense_matches_reference(x_shape, bias, act):
    k, o = x_shape[-1], 7
    x, w_q = int8(x_shape), weights((k, o))  # the QDQ form's matmul weight is [K, O]
    b_q = RNG.integers(-5000, 5000, o).astype(np.int32) if bias else None
    s_x, zp_x = np.float32(0.02), 127
    s_w = RNG.uniform(0.001, 0.05, o).astype(np.float32)
    s_y, zp_y = output_scale(s_x, s_w, k), (-128 if act else 5)
    mod = dense_module(x_shape, w_q, s_x, zp_x, s_w, s_y, zp_y, b_q, act)
    assert composites(partition_int8(mod)) == ["npu_ref.dense" + ("_bias" if bias else "") + ("_relu" if act else "")]
    multiplier, shift = requant(s_x, s_w, s_y)
    act_min, act_max = act_range(0.0 if act else None, None, s_y, zp_y)
    expected = ref.dense_s8(x.reshape(-1, k), np.ascontiguousarray(w_q.T), b_q, input_zero_point=zp_x,
                            output_zero_point=zp_y, multiplier=multiplier, shift=shift, act_min=act_min,
                            act_max=act_max).reshape(*x_shape[:-1], o)
    got = run(mod, x)
    np.testing.assert_array_equal(got, expected)
    assert np.abs(run_in_tvm(mod, x).astype(np.int32) - expected).max() <= 1


# ---------------------------------------------------------------------------------------------
# add, pools, mean, concat


@pytest.mark.parametrize("act", ["relu", None])
def test_add_matches_reference(act):
    shape = (2, 5, 6, 7)
    a, b = int8(shape), int8(shape)
    (s1, zp1), (s2, zp2), (s_y, zp_y) = (0.031, -128), (0.017, 127), (0.045, -20 if act else 3)

    def body(bb, x, y):
        out = bb.emit(relax.op.add(bb.emit(qdq.dequantize(x, s1, zp1)), bb.emit(qdq.dequantize(y, s2, zp2))))
        if act:
            out = bb.emit(relax.op.nn.relu(out))
        return qdq.quantize(out, s_y, zp_y)

    mod = module([(shape, "int8"), (shape, "int8")], body)
    assert composites(partition_int8(mod)) == ["npu_ref.add" + ("_relu" if act else "")]
    act_min, act_max = act_range(0.0 if act else None, None, s_y, zp_y)
    expected = ref.add_s8(a, b, **ref.add_params(s1, zp1, s2, zp2, s_y, zp_y, act_min, act_max))
    np.testing.assert_array_equal(run(mod, a, b), expected)


POOL_CASES = {
    "max_pool2d": dict(pool_size=(3, 3), strides=(2, 2), padding=(1, 1, 1, 1)),
    "avg_pool2d": dict(pool_size=(3, 2), strides=(2, 1), padding=(1, 0, 1, 1), count_include_pad=False),
}


@pytest.mark.parametrize("kind", POOL_CASES)
def test_pool_matches_reference(kind):
    shape, s, zp = (2, 7, 6, 5), 0.1, -100
    x = int8(shape)
    attrs = POOL_CASES[kind]
    op = getattr(relax.op.nn, kind)

    def body(bb, v):
        return qdq.quantize(bb.emit(op(bb.emit(qdq.dequantize(v, s, zp)), layout="NHWC", **attrs)), s, zp)

    mod = module([(shape, "int8")], body)
    assert composites(partition_int8(mod)) == [f"npu_ref.{kind}"]
    reference = ref.max_pool2d_s8 if kind == "max_pool2d" else ref.avg_pool2d_s8
    expected = reference(x, kernel=attrs["pool_size"], stride=attrs["strides"], padding=attrs["padding"])
    np.testing.assert_array_equal(run(mod, x), expected)


@pytest.mark.parametrize("keepdims", [True, False])
def test_global_mean_matches_reference(keepdims):
    shape, (s_x, zp_x), (s_y, zp_y) = (2, 5, 7, 6), (0.05, 127), (0.011, -128)
    x = int8(shape)

    def body(bb, v):
        mean = bb.emit(relax.op.mean(bb.emit(qdq.dequantize(v, s_x, zp_x)), axis=[1, 2], keepdims=keepdims))
        return qdq.quantize(mean, s_y, zp_y)

    mod = module([(shape, "int8")], body)
    assert composites(partition_int8(mod)) == ["npu_ref.global_avg_pool2d"]
    expected = ref.global_avg_pool2d_s8(x, **ref.mean_params(s_x, zp_x, s_y, zp_y, x.shape[1] * x.shape[2]))
    np.testing.assert_array_equal(run(mod, x), expected.reshape(2, 1, 1, 6) if keepdims else expected.reshape(2, 6))


def test_concat_with_differing_input_scales_matches_reference():
    channels = (2, 3, 4)
    qparams = [(0.02, -128), (0.1, 5), (0.05, 127)]  # the last equals the output's: copied
    s_y, zp_y = 0.05, 127
    xs = [int8((2, 3, 4, c)) for c in channels]

    def body(bb, *vs):
        parts = [bb.emit(qdq.dequantize(v, s, z)) for v, (s, z) in zip(vs, qparams)]
        return qdq.quantize(bb.emit(relax.op.concat(parts, axis=3)), s_y, zp_y)

    mod = module([(x.shape, "int8") for x in xs], body)
    assert composites(partition_int8(mod)) == ["npu_ref.concat"]
    params = ref.concat_params([s for s, _ in qparams], [z for _, z in qparams], s_y, zp_y)
    assert (params["multipliers"][2], params["shifts"][2]) == (1 << 30, 1)
    np.testing.assert_array_equal(run(mod, *xs), ref.concat_s8(xs, **params))


@pytest.mark.parametrize("act", ["relu", (-0.5, 1.25)], ids=["relu", "clip"])
def test_activation_on_its_own_matches_reference(act):
    """A ReLU / Clip no MAC or add absorbed (after a concat, say): TFLite's int8 RELU, a rescale
    to the output's parameters and the activation's clamp."""
    shape, (s_x, zp_x), (s_y, zp_y) = (2, 5, 6, 7), (0.01, 20), (0.031, 10)
    x = int8(shape)

    def body(bb, v):
        xd = bb.emit(qdq.dequantize(v, s_x, zp_x))
        y = bb.emit(relax.op.nn.relu(xd) if act == "relu" else relax.op.clip(xd, *act))
        return qdq.quantize(y, s_y, zp_y)

    mod = module([(shape, "int8")], body)
    name = "relu" if act == "relu" else "clip"
    assert composites(partition_int8(mod)) == [f"npu_ref.requantize_{name}"]
    act_min, act_max = act_range(*((0.0, None) if act == "relu" else act), s_y, zp_y)
    expected = ref.requantize_s8(x, **ref.requantize_params(s_x, zp_x, s_y, zp_y), act_min=act_min, act_max=act_max)
    assert (expected == act_min).any() and len(np.unique(expected)) > 25  # both the clamp and the rescale show
    np.testing.assert_array_equal(run(mod, x), expected)


# ---------------------------------------------------------------------------------------------
# float boundaries, whole chains


def test_input_quantize_rounds_ties_to_even_as_tvm():
    s, zp = 0.5, -3
    ties = np.arange(-12, 13, dtype=np.float32) * 0.25  # x / s = k / 2: every odd k is a tie
    x = np.concatenate([ties, RNG.normal(0, 20, 51).astype(np.float32), [1000.0, -1000.0, 63.75, -64.25]])
    x = x.astype(np.float32).reshape(4, 20)
    mod = module([(x.shape, "float32")], lambda bb, v: qdq.quantize(v, s, zp))
    assert composites(partition_int8(mod)) == ["npu_ref.quantize"]
    expected = ref.quantize(x, s, zp)
    np.testing.assert_array_equal(run(mod, x), expected)
    np.testing.assert_array_equal(run_in_tvm(mod, x), expected)  # R.quantize rounds half to even too
    away = np.clip(np.sign(x / s) * np.floor(np.abs(x / s) + 0.5) + zp, -128, 127)
    assert np.count_nonzero(away != expected) >= 6  # the ties tell the two roundings apart


def test_output_dequantize_matches_reference():
    q, s, zp = int8((3, 11)), 0.0123, 127
    mod = module([(q.shape, "int8")], lambda bb, v: qdq.dequantize(v, s, zp))
    assert composites(partition_int8(mod)) == ["npu_ref.dequantize"]
    np.testing.assert_array_equal(run(mod, q), ref.dequantize(q, s, zp))


def network(x_shape, w, b, wd, bd):
    """float -> quantize -> conv+bias+relu -> (max pool, avg pool) -> add -> concat(add, max pool)
    -> global mean -> dense+bias -> dequantize -> float: every row of the table in one graph."""
    q = NET

    def body(bb, v):
        def dq(t, name):
            return bb.emit(qdq.dequantize(t, *q[name]))

        x_q = bb.emit(qdq.quantize(v, *q["in"]))
        y = bb.emit(relax.op.nn.conv2d(dq(x_q, "in"), bb.emit(qdq.weight(w, q["s_w"], 0)), padding=(1, 1, 1, 1),
                                       data_layout="NHWC", kernel_layout="OHWI"))
        y = bb.emit(relax.op.add(y, bb.emit(qdq.bias(b.reshape(1, 1, 1, -1), bias_scales(q["in"][0], q["s_w"])))))
        y_q = bb.emit(qdq.quantize(bb.emit(relax.op.nn.relu(y)), *q["mid"]))
        y_dq = dq(y_q, "mid")  # read by both pools: split per reader
        p_q = bb.emit(qdq.quantize(bb.emit(relax.op.nn.max_pool2d(y_dq, 2, 2, layout="NHWC")), *q["mid"]))
        a_q = bb.emit(qdq.quantize(bb.emit(relax.op.nn.avg_pool2d(y_dq, 2, 2, layout="NHWC")), *q["mid"]))
        s_q = bb.emit(qdq.quantize(bb.emit(relax.op.add(dq(p_q, "mid"), dq(a_q, "mid"))), *q["add"]))
        c_q = bb.emit(qdq.quantize(bb.emit(relax.op.concat([dq(s_q, "add"), dq(p_q, "mid")], axis=3)), *q["cat"]))
        m_q = bb.emit(qdq.quantize(bb.emit(relax.op.mean(dq(c_q, "cat"), axis=[1, 2], keepdims=True)), *q["mean"]))
        d = bb.emit(relax.op.matmul(dq(m_q, "mean"), bb.emit(qdq.weight(wd, q["s_wd"], 1))))
        d = bb.emit(relax.op.add(d, bb.emit(qdq.bias(bd, bias_scales(q["mean"][0], q["s_wd"])))))
        return qdq.dequantize(bb.emit(qdq.quantize(d, *q["out"])), *q["out"])

    return module([(x_shape, "float32")], body)


def network_reference(x, w, b, wd, bd):
    q = NET
    (s_in, zp_in), (s_mid, zp_mid), (s_add, zp_add), (s_cat, zp_cat) = q["in"], q["mid"], q["add"], q["cat"]
    (s_mean, zp_mean), (s_out, zp_out) = q["mean"], q["out"]
    x_q = ref.quantize(x, s_in, zp_in)
    multiplier, shift = requant(s_in, q["s_w"], s_mid)
    y = ref.conv2d_s8(x_q, w, b, padding=(1, 1, 1, 1), input_zero_point=zp_in, output_zero_point=zp_mid,
                      multiplier=multiplier, shift=shift, act_min=max(-128, zp_mid))
    p = ref.max_pool2d_s8(y, kernel=(2, 2), stride=(2, 2))
    a = ref.avg_pool2d_s8(y, kernel=(2, 2), stride=(2, 2))
    s = ref.add_s8(p, a, **ref.add_params(s_mid, zp_mid, s_mid, zp_mid, s_add, zp_add))
    c = ref.concat_s8([s, p], **ref.concat_params([s_add, s_mid], [zp_add, zp_mid], s_cat, zp_cat))
    m = ref.global_avg_pool2d_s8(c, **ref.mean_params(s_cat, zp_cat, s_mean, zp_mean, c.shape[1] * c.shape[2]))
    multiplier, shift = requant(s_mean, q["s_wd"], s_out)
    d = ref.dense_s8(m.reshape(1, -1), np.ascontiguousarray(wd.T), bd, input_zero_point=zp_mean,
                     output_zero_point=zp_out, multiplier=multiplier, shift=shift)
    return ref.dequantize(d, s_out, zp_out).reshape(1, 1, 1, -1)


NET = {"in": (0.02, -3), "mid": (0.01, -128), "add": (0.02, -128), "cat": (0.015, -128), "mean": (0.01, -100),
       "out": (0.03, 0), "s_w": RNG.uniform(0.0005, 0.0015, 6).astype(np.float32),
       "s_wd": RNG.uniform(0.005, 0.015, 5).astype(np.float32)}


def network_data():
    x = RNG.normal(0, 1.0, (1, 8, 8, 3)).astype(np.float32)
    w, b = weights((6, 3, 3, 3)), RNG.integers(-20000, 20000, 6).astype(np.int32)
    wd, bd = weights((12, 5)), RNG.integers(-2000, 2000, 5).astype(np.int32)
    return x, (w, b, wd, bd)


def test_every_row_in_one_network_is_one_c_function():
    x, consts = network_data()
    mod = network(x.shape, *consts)
    partitioned = partition_int8(mod)
    assert composites(partitioned) == sorted(
        ["npu_ref.quantize", "npu_ref.conv2d_bias_relu", "npu_ref.max_pool2d", "npu_ref.avg_pool2d", "npu_ref.add",
         "npu_ref.concat", "npu_ref.global_avg_pool2d", "npu_ref.dense_bias", "npu_ref.dequantize"])
    assert ops_left_in_main(partitioned) == []  # main calls one offloaded function
    expected = network_reference(x, *consts)
    assert len(np.unique(expected)) == expected.size  # nothing saturated
    np.testing.assert_array_equal(run(mod, x), expected)


def test_add_and_concat_of_one_tensor_with_itself():
    """One dequantize read twice by the same op (and once by the output) is split per reader."""
    s, zp = 0.1, 3

    def body(bb, v):
        xd = bb.emit(qdq.dequantize(v, s, zp))
        doubled = bb.emit(qdq.quantize(bb.emit(relax.op.add(xd, xd)), 0.3, -1))
        twice = bb.emit(qdq.quantize(bb.emit(relax.op.concat([xd, xd], axis=-1)), s, zp))
        return relax.Tuple([doubled, twice, xd])

    mod = module([((2, 3, 4, 5), "int8")], body)
    partitioned = partition_int8(mod)
    assert composites(partitioned) == ["npu_ref.add", "npu_ref.concat", "npu_ref.dequantize"]
    assert ops_left_in_main(partitioned) == []
    x = int8((2, 3, 4, 5))
    out = relax.VirtualMachine(tvm.compile(offload_int8(mod), target="llvm"), tvm.cpu())["main"](tvm.runtime.tensor(x))
    doubled, twice, xd = (o.numpy() for o in out)
    np.testing.assert_array_equal(doubled, ref.add_s8(x, x, **ref.add_params(s, zp, s, zp, 0.3, -1)))
    np.testing.assert_array_equal(twice, np.concatenate([x, x], axis=-1))
    np.testing.assert_array_equal(xd, ref.dequantize(x, s, zp))


def test_shared_dequantize_is_split_per_reader():
    """x is dequantized once and read by a conv and by a residual add: both still offload."""
    shape, (s_x, zp_x), (s_c, zp_c), (s_y, zp_y) = (1, 6, 5, 4), (0.04, -10), (0.06, 3), (0.08, -1)
    x, w_q = int8(shape), weights((4, 3, 3, 4))
    s_w = RNG.uniform(0.002, 0.01, 4).astype(np.float32)

    def body(bb, v):
        xd = bb.emit(qdq.dequantize(v, s_x, zp_x))
        c = bb.emit(relax.op.nn.conv2d(xd, bb.emit(qdq.weight(w_q, s_w, 0)), padding=1, data_layout="NHWC",
                                       kernel_layout="OHWI"))
        c_q = bb.emit(qdq.quantize(c, s_c, zp_c))
        total = bb.emit(relax.op.add(xd, bb.emit(qdq.dequantize(c_q, s_c, zp_c))))
        return qdq.quantize(total, s_y, zp_y)

    mod = module([(shape, "int8")], body)
    partitioned = partition_int8(mod)
    assert composites(partitioned) == ["npu_ref.add", "npu_ref.conv2d"]
    assert ops_left_in_main(partitioned) == []
    multiplier, shift = requant(s_x, s_w, s_c)
    c = ref.conv2d_s8(x, w_q, padding=(1, 1, 1, 1), input_zero_point=zp_x, output_zero_point=zp_c,
                      multiplier=multiplier, shift=shift)
    expected = ref.add_s8(x, c, **ref.add_params(s_x, zp_x, s_c, zp_c, s_y, zp_y))
    np.testing.assert_array_equal(run(mod, x), expected)


# ---------------------------------------------------------------------------------------------
# checks that fail: the op stays in TVM and still runs


def _fallback_conv(kind):
    x_shape, o = (1, 6, 6, 3), 4
    s_w = np.full(o, 0.01, np.float32)
    common = dict(s_x=0.05, zp_x=2, s_w=s_w, s_y=0.2, zp_y=-4)
    if kind == "weight_zero_point":
        w_q = weights((o, 3, 3, 3))
        return conv_module(x_shape, w_q, w_zero_points=np.array([0, 1, 0, 0], np.int8), **common), x_shape
    if kind == "nchw":
        w_q = weights((o, 3, 3, 3))  # OIHW
        return conv_module((1, 3, 6, 6), w_q, layout=("NCHW", "OIHW"), **common), (1, 3, 6, 6)
    if kind == "bias_scale":
        w_q = weights((o, 3, 3, 3))
        return conv_module(x_shape, w_q, b_q=np.arange(o, dtype=np.int32) * 100,
                           b_scales=bias_scales(0.05, s_w) * np.float32(1.01), **common), x_shape
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["weight_zero_point", "nchw", "bias_scale"])
def test_conv_failing_a_check_stays_in_tvm_and_runs(kind):
    mod, x_shape = _fallback_conv(kind)
    partitioned = partition_int8(mod)
    assert not any(name.startswith("npu_ref.conv2d") for name in composites(partitioned))
    assert "relax.nn.conv2d" in ops_left_in_main(partitioned)
    x = int8(x_shape)
    got, in_tvm = run(mod, x), run_in_tvm(mod, x)
    # Only the boundary quantize is offloaded.
    assert np.abs(got.astype(np.int32) - in_tvm).max() <= 1 and np.mean(got == in_tvm) > 0.95


def test_pool_changing_scale_stays_in_tvm():
    shape = (1, 4, 4, 2)

    def body(bb, v):
        pooled = bb.emit(relax.op.nn.max_pool2d(bb.emit(qdq.dequantize(v, 0.1, 0)), 2, 2, layout="NHWC"))
        return qdq.quantize(pooled, 0.2, 0)

    mod = module([(shape, "int8")], body)
    partitioned = partition_int8(mod)
    assert "npu_ref.max_pool2d" not in composites(partitioned)
    assert "relax.nn.max_pool2d" in ops_left_in_main(partitioned)
    x = int8(shape)
    assert np.abs(run(mod, x).astype(np.int32) - run_in_tvm(mod, x)).max() <= 1


def test_every_row_has_an_emitter_and_a_codegen_prefix():
    assert set(EMITTERS) == {row.name for row in ROWS}
    assert all(row.name.startswith("npu_ref.") for row in ROWS)
    kinds = {row.kernel for row in ROWS}
    assert kinds == {"conv2d", "dense", "add", "concat", "requantize", "global_avg_pool2d", "max_pool2d", "avg_pool2d",
                     "pad", "lut", "mul", "prelu", "resize_bilinear", "resize_nearest", "copy", "softmax", "quantize",
                     "dequantize", "rescale"}


# ---------------------------------------------------------------------------------------------
# exported library


@pytest.mark.parametrize("mode", ["object", "source"])
def test_exported_library_runs(mode, tmp_path):
    """export_library + load_module; "source" compiles the generated C as C++ at export time."""
    x, consts = network_data()
    executable = tvm.compile(offload_int8(network(x.shape, *consts), {"mode": mode}), target="llvm")
    path = str(tmp_path / "model.so")
    executable.export_library(path)
    np.testing.assert_array_equal(vm_run(tvm.runtime.load_module(path), x), network_reference(x, *consts))


def test_lowered_params_of_a_composite():
    """lower_composite re-derives the kernel's parameters from the composite's constants."""
    w_q = weights((2, 1, 1, 2))
    mod = conv_module((1, 2, 2, 2), w_q, 0.5, 0, np.array([0.25, 0.5], np.float32), 0.5, 10, act=(-1.25, 3.75))
    ((name, composite),) = offloaded_composites(partition_int8(mod))
    assert name == "npu_ref.conv2d_clip"
    kernel = lower_composite(composite)
    assert kernel.kernel == "conv2d"
    assert (kernel.params["act_min"], kernel.params["act_max"]) == (10 - 3, 10 + 8)
    # 0.5 * 0.25 / 0.5 = 2^-2 and 0.5 * 0.5 / 0.5 = 2^-1: multiplier 2^30, shifts -1 and 0.
    np.testing.assert_array_equal(kernel.arrays["multiplier"], [1 << 30, 1 << 30])
    np.testing.assert_array_equal(kernel.arrays["shift"], [-1, 0])


def test_output_aliasing_a_composite_result():
    """MergeCompositeFunctions can leave `gv = lv` inside the offloaded function (real models do)."""
    x = int8((1, 10))
    w_q, s_w = weights((10, 4)), RNG.uniform(0.01, 0.02, 4).astype(np.float32)

    def body(bb, v):
        y = bb.emit(relax.op.matmul(bb.emit(qdq.dequantize(v, 0.05, 1)), bb.emit(qdq.weight(w_q, s_w, axis=1))))
        return bb.emit(qdq.dequantize(bb.emit(qdq.quantize(y, 0.2, -2)), 0.2, -2))  # main: gv = lv (an alias)

    mod = module([(x.shape, "int8")], body)
    multiplier, shift = requant(0.05, s_w, 0.2)
    expected = ref.dense_s8(x, np.ascontiguousarray(w_q.T), input_zero_point=1, output_zero_point=-2,
                            multiplier=multiplier, shift=shift)
    np.testing.assert_array_equal(run(mod, x), ref.dequantize(expected, 0.2, -2))
