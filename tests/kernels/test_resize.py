"""INT8 resize (nearest and bilinear): NumPy reference vs portable C bit for bit, the coordinate
tables vs TFLite and ONNX, and the int8 bilinear vs a float resize.

compiler.quant.reference.resize (the spec) against compiler.quant._ref_resize (kernels/ref/
resize_s8.c). Seeded randomised property tests demand exact equality over up- and downsampling by
integer and non-integer ratios, 1-pixel inputs and outputs, every TFLite flag combination and ONNX
mode, arbitrary tables (fractions up to +-2048: extrapolation that saturates) and extreme values.
The TFLite tables are checked against hand-derived cases and a line-by-line transcription of
TFLite's C++; onnx_nearest_index against onnx.reference's Resize (and onnxruntime for
tf_half_pixel_for_nn, which onnx.reference lacks); the int8 bilinear against onnx.reference's
float linear resize of the dequantised input, within 1 LSB.
"""

import math

import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

import compiler.quant._ref_resize as C
from compiler.quant.reference import resize as R
from int8_random import exact, int8_tensor, quantize_real, real, scale, within_one_lsb, zero_point

CASES = 600  # random cases per property test
FLAGS = [(False, False), (True, False), (False, True), (True, True)]  # (align_corners, half_pixel_centers)
LINEAR_MODES = ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric")


# ----------------------------------------------------------------------------------------
# Random generators


def sizes(rng):
    """(in, out) along one axis: 1-pixel ends, integer and non-integer ratios, up and down."""
    kind = rng.integers(6)
    if kind == 0:
        return int(rng.integers(1, 10)), int(rng.integers(1, 18))
    if kind == 1:
        n = int(rng.integers(1, 8))
        return n, n * int(rng.integers(2, 5))
    if kind == 2:
        n = int(rng.integers(1, 6))
        return n * int(rng.integers(2, 5)), n
    if kind == 3:
        return 1, int(rng.integers(1, 12))
    if kind == 4:
        return int(rng.integers(1, 12)), 1
    return int(rng.integers(5, 30)), int(rng.integers(5, 30))


def image(rng, in_h, in_w):
    return int8_tensor(rng, (int(rng.integers(1, 3)), in_h, in_w, int(rng.choice([1, 2, 3, 5, 8, 13, 32]))))


def nearest_tables(rng, pairs):
    """Index tables for each (in, out): TFLite's, ONNX's, or arbitrary."""
    kind = rng.integers(3)
    if kind == 0:
        align, half = FLAGS[rng.integers(4)]
        return [R.tflite_nearest_index(n, m, align, half) for n, m in pairs]
    if kind == 1:
        mode = str(rng.choice(R.ONNX_COORDINATE_MODES))
        rounding = str(rng.choice(R.ONNX_NEAREST_MODES))
        return [R.onnx_nearest_index(n, m, m / n, mode, rounding) for n, m in pairs]
    return [rng.integers(0, n, m).astype(np.int32) for n, m in pairs]


def lerp_tables(rng, pairs):
    """{lower, upper, fraction} tables: TFLite's (any flags), or arbitrary ones within +-2048."""
    if rng.random() < 0.75:
        align, half = FLAGS[rng.integers(4)]
        return [R.tflite_bilinear_tables(n, m, align, half) for n, m in pairs]
    bound = int(rng.choice([512, 1024, 2048]))
    return [np.concatenate([rng.integers(0, n, (m, 2)), rng.integers(-bound, bound + 1, (m, 1))], axis=1)
            .astype(np.int32) for n, m in pairs]


def both(kernel, x, y_table, x_table):
    """The NumPy reference and the C kernel, which must agree bit for bit."""
    want = getattr(R, kernel)(x, y_table, x_table)
    exact(getattr(C, kernel)(x, y_table, x_table), want, f"{kernel} {x.shape}: {y_table.tolist()} {x_table.tolist()}")
    return want


# ----------------------------------------------------------------------------------------
# NumPy vs C


@pytest.mark.parametrize("kernel, tables, seed", [("resize_nearest_s8", nearest_tables, 41),
                                                  ("resize_bilinear_s8", lerp_tables, 42)])
def test_matches_c(kernel, tables, seed):
    rng = np.random.default_rng(seed)
    for _ in range(CASES):
        (in_h, out_h), (in_w, out_w) = sizes(rng), sizes(rng)
        x = image(rng, in_h, in_w)
        out = both(kernel, x, *tables(rng, [(in_h, out_h), (in_w, out_w)]))
        assert out.shape == (x.shape[0], out_h, out_w, x.shape[3])


def test_bilinear_extreme_values_and_fractions():
    """Every corner at -128 or 127 with the largest weights either way: sums near +-2^31 (C's int64),
    outputs that saturate both ways, ties of the rounding."""
    corners = np.array(np.meshgrid(*[[-128, 127]] * 4)).reshape(4, -1).T  # every (a, b, c, d)
    x = np.zeros((1, 2, 2, corners.shape[0]), np.int8)
    x[0, 0, 0], x[0, 1, 0], x[0, 0, 1], x[0, 1, 1] = corners.T
    fractions = [-2048, -2047, -512, -1, 0, 1, 511, 512, 513, 1023, 1024, 1536, 2047, 2048]
    lerp = np.int32([[0, 1, f] for f in fractions])
    out = both("resize_bilinear_s8", x, lerp, lerp)
    assert out.min() == -128 and out.max() == 127
    # fy = fx = 2048 extrapolates to 4d - 2b - 2c + a: saturates unless all four agree
    row = fractions.index(2048)
    np.testing.assert_array_equal(out[0, row, row], np.clip(4 * corners[:, 3] - 2 * corners[:, 1] - 2 * corners[:, 2]
                                                            + corners[:, 0], -128, 127))


def test_rounding_is_half_away_from_zero():
    """Two columns a, c and fx = 512: s / 2^20 = (a + c) / 2 exactly: halves round away from zero."""
    a = np.int8([1, -1, 3, -3, 0, 127, -128, 5])
    c = np.int8([0, 0, 0, 0, -1, 126, -127, -6])
    x = np.stack([a, c]).reshape(1, 1, 2, 8)
    out = both("resize_bilinear_s8", x, np.int32([[0, 0, 0]]), np.int32([[0, 1, 512]]))
    # (1 + 0) / 2 = 0.5 -> 1; -0.5 -> -1; 1.5 -> 2; -1.5 -> -2; -0.5 -> -1; 126.5 -> 127; -127.5 -> -128; -0.5 -> -1
    assert out.ravel().tolist() == [1, -1, 2, -2, -1, 127, -128, -1]
    # fx = 1: s = 1024 * (1023 * a + c): 1023/1024 of a
    out = both("resize_bilinear_s8", x, np.int32([[0, 0, 0]]), np.int32([[0, 1, 1]]))
    np.testing.assert_array_equal(out.ravel(), np.sign(1023 * a.astype(np.int64) + c)
                                  * np.floor(np.abs((1023 * a.astype(np.int64) + c) / 1024) + 0.5))


def test_equal_indices_make_the_fraction_irrelevant():
    """A row with y0 == y1 weighs the same row by 1024 - f and f: the fraction cannot matter (the
    generated kernels rely on it)."""
    rng = np.random.default_rng(43)
    x = int8_tensor(rng, (2, 3, 4, 7))
    x_lerp = R.tflite_bilinear_tables(4, 9, half_pixel_centers=True)
    base = both("resize_bilinear_s8", x, np.int32([[1, 1, 0]] * 3), x_lerp)
    for f in (-2048, -205, 1, 700, 2048):
        exact(both("resize_bilinear_s8", x, np.int32([[1, 1, f]] * 3), x_lerp), base, f"fy = {f}")


def test_empty_and_one_pixel():
    for shape in [(0, 3, 3, 2), (2, 3, 3, 0)]:
        x = np.zeros(shape, np.int8)
        assert both("resize_nearest_s8", x, np.int32([0, 2]), np.int32([1])).shape == (shape[0], 2, 1, shape[3])
        assert both("resize_bilinear_s8", x, np.int32([[0, 1, 5]]), np.int32([[0, 2, 9]] * 3)).shape == (shape[0], 1, 3,
                                                                                                      shape[3])
    x = np.int8([[[[7, -3]]]])
    assert both("resize_nearest_s8", x, np.zeros(0, np.int32), np.int32([0])).shape == (1, 0, 1, 2)
    # a 1x1 input resized to anything is that pixel, for every flag combination
    for align, half in FLAGS:
        tables = R.tflite_bilinear_tables(1, 5, align, half), R.tflite_bilinear_tables(1, 3, align, half)
        exact(both("resize_bilinear_s8", x, *tables), np.broadcast_to(x, (1, 5, 3, 2)).copy(), f"flags {align, half}")
        index = R.tflite_nearest_index(1, 5, align, half), R.tflite_nearest_index(1, 3, align, half)
        exact(both("resize_nearest_s8", x, *index), np.broadcast_to(x, (1, 5, 3, 2)).copy(), f"flags {align, half}")


def test_non_contiguous_input_and_tables():
    rng = np.random.default_rng(44)
    x = rng.integers(-128, 128, size=(2, 8, 9, 6), dtype=np.int8)[:, ::2, ::-1, 1:5]
    lerp = R.tflite_bilinear_tables(4, 7, half_pixel_centers=True)
    exact(both("resize_bilinear_s8", x, lerp[::-1], np.asfortranarray(R.tflite_bilinear_tables(9, 5))),
          R.resize_bilinear_s8(x.copy(), lerp[::-1].copy(), R.tflite_bilinear_tables(9, 5)), "views")
    index = np.arange(20, dtype=np.int64)[::5] % 4  # int64, strided
    exact(both("resize_nearest_s8", x, index, index.astype(np.int16)), x[:, index][:, :, index], "int64 / int16 tables")


# ----------------------------------------------------------------------------------------
# TFLite's tables


def test_bilinear_tables_by_hand():
    # 3 -> 5 rows, no flags: scale_10 = (3 * 1024 + 5 / 2) / 5 = 3074 / 5 = 614; scaled = 0, 614, 1228,
    # 1842, 2456; lower = scaled / 1024 = 0, 0, 1, 1, 2; upper = (scaled + 1023) / 1024 capped at 2 =
    # 0, 1, 2, 2, 2; fraction = scaled - 1024 * lower = 0, 614, 204, 818, 408
    assert R.tflite_bilinear_tables(3, 5).tolist() == [[0, 0, 0], [0, 1, 614], [1, 2, 204], [1, 2, 818], [2, 2, 408]]
    # the same with half_pixel_centers: scaled = v * 614 + 614 / 2 - 512 = -205, 409, 1023, 1637, 2251;
    # lower = max(scaled / 1024, 0) (C division: -205 / 1024 = 0) = 0, 0, 0, 1, 2; upper = 0 ((-205 + 1023)
    # / 1024), 1, 1, 2, 2 (3 capped); fraction -205 (negative: the top edge, both rows 0), 409, 1023, 613, 203
    assert R.tflite_bilinear_tables(3, 5, half_pixel_centers=True).tolist() == [
        [0, 0, -205], [0, 1, 409], [0, 1, 1023], [1, 2, 613], [2, 2, 203]]
    # 4 -> 3 with align_corners: scale_10 = (3 * 1024 + 2 / 2) / 2 = 1536; scaled 0, 1536, 3072 ->
    # (0, 0, 0), (1, 2, 512), (3, 3, 0): the corners land on the corners
    assert R.tflite_bilinear_tables(4, 3, align_corners=True).tolist() == [[0, 0, 0], [1, 2, 512], [3, 3, 0]]
    # 2 -> 4000: scale_10 = (2048 + 2000) / 4000 = 1. Row 2047: scaled 2047, (1, 1, 1023) (lower 1 is
    # the last row). Row 2048 on: TFLite's lower = 2 reads past the input; the table takes the last row.
    table = R.tflite_bilinear_tables(2, 4000)
    assert table[1023].tolist() == [0, 1, 1023] and table[2047].tolist() == [1, 1, 1023]
    assert table[2048:].tolist() == [[1, 1, 0]] * 1952


def _tflite_transcription(in_size, out_size, align_corners, half_pixel_centers):
    """TFLite's ResizeBilinearInteger set-up and ComputeInterpolationValuesInteger, statement by
    statement in Python ints with C's division (tensorflow/lite/kernels/internal/reference/resize_bilinear.h)."""
    def c_div(a, b):
        return abs(a) // b * (1 if a >= 0 else -1)

    scale_10 = ((1 << 10) * in_size + out_size // 2) // out_size
    if align_corners and out_size > 1:
        scale_10 = ((1 << 10) * (in_size - 1) + (out_size - 1) // 2) // (out_size - 1)
    rows = []
    for value in range(out_size):
        scaled = value * scale_10 + scale_10 // 2 - (1 << 9) if half_pixel_centers else value * scale_10
        lower = max(c_div(scaled, 1 << 10), 0)
        upper = min(c_div(scaled + (1 << 10) - 1, 1 << 10), in_size - 1)
        rows.append([lower, upper, scaled - (1 << 10) * lower])
    return rows


@pytest.mark.parametrize("align_corners, half_pixel_centers", FLAGS)
def test_bilinear_tables_follow_tflite(align_corners, half_pixel_centers):
    """Every size up to 40 both ways, and some large ones: TFLite's numbers wherever TFLite stays inside
    the input; every index inside the input; fractions in [-512, 1023], negative only with both
    indices 0."""
    pairs = [(n, m) for n in range(1, 41) for m in range(1, 41)] + [(7, 1000), (1000, 7), (224, 512), (1023, 1025)]
    for n, m in pairs:
        table = R.tflite_bilinear_tables(n, m, align_corners, half_pixel_centers)
        assert table.dtype == np.int32 and table.shape == (m, 3)
        for got, want in zip(table.tolist(), _tflite_transcription(n, m, align_corners, half_pixel_centers)):
            if want[0] <= n - 1:
                assert got == want, (n, m)
            else:  # TFLite reads past the input here
                assert got == [n - 1, n - 1, 0], (n, m)
        lower, upper, fraction = table.T
        assert (0 <= lower).all() and (lower <= upper).all() and (upper <= n - 1).all() and (upper - lower <= 1).all()
        assert (fraction >= -512).all() and (fraction <= 1023).all()
        assert ((fraction >= 0) | ((lower == 0) & (upper == 0))).all()


def test_nearest_index_by_hand():
    # 3 -> 5: scale 0.6: i * 0.6 = 0, 0.6, 1.2, 1.8, 2.4 -> floor 0, 0, 1, 1, 2
    assert R.tflite_nearest_index(3, 5).tolist() == [0, 0, 1, 1, 2]
    # align_corners: scale 2 / 4 = 0.5: 0, 0.5, 1, 1.5, 2 -> rounded half away from zero 0, 1, 1, 2, 2
    assert R.tflite_nearest_index(3, 5, align_corners=True).tolist() == [0, 1, 1, 2, 2]
    # half_pixel_centers: (i + 0.5) * 0.6 = 0.3, 0.9, 1.5, 2.1, 2.7 -> 0, 0, 1, 2, 2
    assert R.tflite_nearest_index(3, 5, half_pixel_centers=True).tolist() == [0, 0, 1, 2, 2]
    # float32, as TFLite: 2 -> 41 with half pixels, row 20 lies exactly on input row 1 ((20 + 0.5) * 2 / 41),
    # but float32(2 / 41) = 0.048780486 is below 2 / 41: the product rounds to 0.99999994 and the floor is 0
    assert float(np.float32(20.5) * (np.float32(2) / np.float32(41))) < 1
    assert R.tflite_nearest_index(2, 41, half_pixel_centers=True)[20] == 0
    assert R.tflite_nearest_index(2, 41, half_pixel_centers=True)[21] == 1
    # a single output with align_corners uses the plain scale: index 0
    assert R.tflite_nearest_index(9, 1, align_corners=True).tolist() == [0]


def test_nearest_index_matches_exact_arithmetic_mostly():
    """Against exact rational arithmetic, TFLite's float32 differs only by one step down, where the
    exact value is an integer (or for rounding, a half) the float32 product misses from below."""
    from fractions import Fraction
    for n in range(1, 30):
        for m in range(1, 30):
            for align, half in FLAGS:
                got = R.tflite_nearest_index(n, m, align, half)
                s = Fraction(n - 1, m - 1) if align and m > 1 else Fraction(n, m)
                for i in range(m):
                    v = (i + Fraction(1, 2) * half) * s
                    want = min(math.floor(v + Fraction(1, 2)) if align else math.floor(v), n - 1)
                    if got[i] != want:
                        assert got[i] == want - 1 and (v.denominator in (1, 2)), (n, m, align, half, i)


# ----------------------------------------------------------------------------------------
# ONNX nearest vs onnx.reference


def _resize_model(shape, mode, coordinates, nearest_mode=None, sizes=None, scales=None, opset=19):
    """An ONNX Resize of an NCHW float32 tensor, its output size given as sizes or as scales."""
    if scales is not None:
        names, extra = ["x", "", "scales"], helper.make_tensor("scales", TensorProto.FLOAT, [4], scales)
    else:
        names, extra = ["x", "", "", "sizes"], helper.make_tensor("sizes", TensorProto.INT64, [4], sizes)
    attrs = dict(mode=mode, coordinate_transformation_mode=coordinates)
    if nearest_mode:
        attrs["nearest_mode"] = nearest_mode
    graph = helper.make_graph([helper.make_node("Resize", names, ["y"], **attrs)], "resize",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=[extra])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def _onnx_resize(x, mode, coordinates, nearest_mode=None, sizes=None, scales=None):
    """onnx.reference's Resize (opset 19) of an NCHW float32 tensor."""
    model = _resize_model(x.shape, mode, coordinates, nearest_mode, sizes, scales)
    return ReferenceEvaluator(model).run(None, {"x": x})[0]


def _onnxruntime_resize(x, mode, coordinates, nearest_mode=None, sizes=None, opset=19):
    """onnxruntime's Resize (float32 coordinates) of an NCHW float32 tensor."""
    ort = pytest.importorskip("onnxruntime")
    model = _resize_model(x.shape, mode, coordinates, nearest_mode, sizes, opset=opset)
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def _reference_defects(in_size, out_size, scale, coordinates):
    """Outputs where onnx.reference (1.23) contradicts its own source coordinate: it rounds the
    coordinate (float64, as onnx_nearest_index computes it) into its ratio, but picks the two
    neighbours from coordinate + 1 (its edge padding), which can round onto an integer the
    coordinate is not (10 -> 14 half_pixel, output 10: (10.5) / 1.4 - 0.5 = 7.000000000000001, + 1
    rounds to 8.0): it then reads input 6 for a coordinate just above 7. onnxruntime checks those."""
    i = np.arange(out_size, dtype=np.float64)
    length = scale * in_size
    if coordinates == "align_corners":
        x = i * (in_size - 1) / (length - 1) if length != 1 else np.zeros(out_size)
    elif coordinates == "asymmetric":
        x = i / scale
    elif coordinates == "pytorch_half_pixel" and length == 1:
        x = np.full(out_size, -0.5)
    else:
        x = (i + 0.5) / scale - 0.5
    padded = x + 1
    return (np.floor(padded) - 1 != np.floor(x)) | ((padded == np.floor(padded)) != (x == np.floor(x)))


@pytest.mark.parametrize("coordinates", ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"])
@pytest.mark.parametrize("nearest_mode", R.ONNX_NEAREST_MODES)
def test_onnx_nearest_index_matches_onnx_reference(coordinates, nearest_mode):
    """The int8 gather with onnx_nearest_index's tables equals onnx.reference's float Resize of the
    same values, for output sizes given as sizes (scale out / in) and as float32 scales; where
    onnx.reference contradicts itself (_reference_defects), it equals onnxruntime's."""
    rng = np.random.default_rng(sum(map(ord, coordinates + nearest_mode)))
    defects = 0
    for case in range(80):
        (in_h, out_h), (in_w, out_w) = sizes(rng), sizes(rng)
        q = int8_tensor(rng, (1, in_h, in_w, int(rng.integers(1, 4))))
        nchw = q.transpose(0, 3, 1, 2).astype(np.float32)
        if case % 2:
            scale_h, scale_w = (float(np.float32(rng.choice([0.5, 1.5, 2.0, 3.0, 0.75, rng.uniform(0.3, 4)])))
                                for _ in range(2))
            out_h, out_w = int(scale_h * in_h), int(scale_w * in_w)  # onnx.reference's output size
            if out_h < 1 or out_w < 1:
                continue
            want = _onnx_resize(nchw, "nearest", coordinates, nearest_mode, scales=[1, 1, scale_h, scale_w])
        else:
            scale_h, scale_w = out_h / in_h, out_w / in_w
            want = _onnx_resize(nchw, "nearest", coordinates, nearest_mode, sizes=[1, q.shape[3], out_h, out_w])
        y_index = R.onnx_nearest_index(in_h, out_h, scale_h, coordinates, nearest_mode)
        x_index = R.onnx_nearest_index(in_w, out_w, scale_w, coordinates, nearest_mode)
        got = both("resize_nearest_s8", q, y_index, x_index).transpose(0, 3, 1, 2).astype(np.float32)
        bad_h = _reference_defects(in_h, out_h, scale_h, coordinates)
        bad_w = _reference_defects(in_w, out_w, scale_w, coordinates)
        what = f"{coordinates} {nearest_mode}: {in_h}x{in_w} -> {out_h}x{out_w} (scales {scale_h}, {scale_w})"
        exact(got[:, :, ~bad_h][:, :, :, ~bad_w], want[:, :, ~bad_h][:, :, :, ~bad_w], what)
        if bad_h.any() or bad_w.any():
            defects += 1
            exact(got, _onnxruntime_resize(nchw, "nearest", coordinates, nearest_mode, sizes=list(got.shape)), what)
    assert defects <= 4  # a rare float64 accident, not a disagreement on the rule


def test_tf_half_pixel_for_nn():
    """onnx.reference lacks tf_half_pixel_for_nn: (i + 0.5) / scale, by hand and against onnxruntime."""
    # 3 -> 5: (i + 0.5) * 0.6 = 0.3, 0.9, 1.5, 2.1, 2.7
    assert R.onnx_nearest_index(3, 5, 5 / 3, "tf_half_pixel_for_nn", "floor").tolist() == [0, 0, 1, 2, 2]
    assert R.onnx_nearest_index(3, 5, 5 / 3, "tf_half_pixel_for_nn", "round_prefer_floor").tolist() == [0, 1, 1, 2, 2]
    assert R.onnx_nearest_index(3, 5, 5 / 3, "tf_half_pixel_for_nn", "round_prefer_ceil").tolist() == [0, 1, 2, 2, 2]
    assert R.onnx_nearest_index(3, 5, 5 / 3, "tf_half_pixel_for_nn", "ceil").tolist() == [1, 1, 2, 2, 2]
    rng = np.random.default_rng(45)
    for nearest_mode in R.ONNX_NEAREST_MODES:
        for in_size, out_size in [(3, 5), (4, 8), (8, 4), (5, 2), (2, 7), (6, 9), (1, 3), (7, 1)]:
            x = rng.standard_normal((1, 1, in_size, in_size)).astype(np.float32)
            want = _onnxruntime_resize(x, "nearest", "tf_half_pixel_for_nn", nearest_mode,
                                       sizes=[1, 1, out_size, out_size], opset=13)  # removed from opset 19
            index = R.onnx_nearest_index(in_size, out_size, out_size / in_size, "tf_half_pixel_for_nn", nearest_mode)
            exact(x[:, :, index][:, :, :, index], want, f"{nearest_mode} {in_size} -> {out_size}")


def test_onnx_nearest_index_by_hand():
    # half_pixel 6 -> 5 (scale 5/6): (i + 0.5) * 1.2 - 0.5 = 0.1, 1.3, 2.5, 3.7, 4.9 -> the tie at 2.5
    # goes down with round_prefer_floor, up with round_prefer_ceil
    assert R.onnx_nearest_index(6, 5, 5 / 6, "half_pixel", "round_prefer_floor").tolist() == [0, 1, 2, 4, 5]
    assert R.onnx_nearest_index(6, 5, 5 / 6, "half_pixel", "round_prefer_ceil").tolist() == [0, 1, 3, 4, 5]
    # asymmetric 2 -> 6 (scale 3): i / 3 = 0, 0.33, 0.67, 1, 1.33, 1.67; ceil goes to 2, clamped to 1
    assert R.onnx_nearest_index(2, 6, 3.0, "asymmetric", "ceil").tolist() == [0, 1, 1, 1, 1, 1]
    assert R.onnx_nearest_index(2, 6, 3.0, "asymmetric", "floor").tolist() == [0, 0, 0, 1, 1, 1]
    # pytorch_half_pixel with one output reads index 0; half_pixel reads the centre
    assert R.onnx_nearest_index(5, 1, 0.2, "pytorch_half_pixel").tolist() == [0]
    assert R.onnx_nearest_index(5, 1, 0.2, "half_pixel").tolist() == [2]
    # align_corners 3 -> 5: i * 2 / 4 = 0, 0.5, 1, 1.5, 2
    assert R.onnx_nearest_index(3, 5, 5 / 3, "align_corners", "round_prefer_ceil").tolist() == [0, 1, 1, 2, 2]


# ----------------------------------------------------------------------------------------
# ONNX linear -> TFLite flags, and the int8 bilinear against a float resize


def test_bilinear_tables_for_onnx():
    for n, m in [(3, 5), (8, 4), (5, 1), (1, 4), (28, 56)]:
        half = R.tflite_bilinear_tables(n, m, half_pixel_centers=True)
        np.testing.assert_array_equal(R.bilinear_tables_for_onnx(n, m, "half_pixel"), half)
        pytorch = R.bilinear_tables_for_onnx(n, m, "pytorch_half_pixel")
        np.testing.assert_array_equal(pytorch, half if m > 1 else R.tflite_bilinear_tables(n, m))
        np.testing.assert_array_equal(R.bilinear_tables_for_onnx(n, m, "align_corners"),
                                      R.tflite_bilinear_tables(n, m, align_corners=True))
        np.testing.assert_array_equal(R.bilinear_tables_for_onnx(n, m, "asymmetric"), R.tflite_bilinear_tables(n, m))
    assert R.bilinear_tables_for_onnx(5, 1, "pytorch_half_pixel").tolist() == [[0, 0, 0]]  # ONNX reads index 0
    for mode in ["tf_crop_and_resize", "half_pixel_symmetric", "tf_half_pixel_for_nn", "bogus"]:
        with pytest.raises(ValueError, match=f"coordinate_transformation_mode '{mode}' has no TFLite equivalent"):
            R.bilinear_tables_for_onnx(4, 8, mode)


def _position_error(in_size, out_size, mode):
    """max |TFLite's 10-bit source coordinate - ONNX's float one| over the outputs, both clamped to
    [0, in - 1] (where both read the edge pixel)."""
    lower, upper, fraction = R.bilinear_tables_for_onnx(in_size, out_size, mode).T.astype(np.float64)
    tflite = np.where(lower == upper, lower, lower + fraction / 1024)
    i = np.arange(out_size, dtype=np.float64)
    scale = out_size / in_size
    if mode == "align_corners":
        onnx_x = i * (in_size - 1) / (out_size - 1) if out_size > 1 else np.zeros(out_size)
    elif mode == "asymmetric":
        onnx_x = i / scale
    elif mode == "pytorch_half_pixel" and out_size == 1:
        onnx_x = np.zeros(1)
    else:
        onnx_x = (i + 0.5) / scale - 0.5
    return float(np.abs(np.clip(tflite, 0, in_size - 1) - np.clip(onnx_x, 0, in_size - 1)).max())


def _smooth_int8(rng, shape, step):
    """int8 values whose neighbours along H and W differ by at most `step`."""
    n, h, w, c = shape
    rows = np.cumsum(rng.integers(-step, step + 1, (n, h, 1, c)), axis=1)
    cols = np.cumsum(rng.integers(-step, step + 1, (n, 1, w, c)), axis=2)
    field = rows + cols
    field += int(rng.integers(-128, 128)) - field.min() if field.max() - field.min() <= 255 else -field.min() - 128
    return np.clip(field, -128, 127).astype(np.int8)  # the clip only flattens: steps stay <= step


@pytest.mark.parametrize("mode", LINEAR_MODES)
def test_bilinear_against_float(mode):
    """onnx.reference's float linear Resize of the dequantised input, quantised again, is within 1
    step of resize_bilinear_s8 with bilinear_tables_for_onnx (except where onnx.reference
    contradicts itself, _reference_defects), and so is onnxruntime's everywhere. TFLite's 10-bit
    scale moves a source coordinate by up to about (out / 2 + 1) / 1024 pixels (d), so the data's
    neighbours differ by at most `step` with step * (d_h + d_w) < 1: any data where the scale is
    exact (2x, 4x, 0.5x...)."""
    rng = np.random.default_rng(sum(map(ord, mode)))
    exact_scales = 0
    for case in range(150):
        (in_h, out_h), (in_w, out_w) = sizes(rng), sizes(rng)
        error = _position_error(in_h, out_h, mode) + _position_error(in_w, out_w, mode)
        step = 255 if error == 0 else min(255, math.floor(0.999 / error))
        exact_scales += error == 0
        shape = (int(rng.integers(1, 3)), in_h, in_w, int(rng.integers(1, 4)))
        q = int8_tensor(rng, shape) if step == 255 else _smooth_int8(rng, shape, step)
        s, zp = scale(rng), zero_point(rng)
        got = both("resize_bilinear_s8", q, R.bilinear_tables_for_onnx(in_h, out_h, mode),
                   R.bilinear_tables_for_onnx(in_w, out_w, mode)).astype(np.int64)
        x = real(q, s, zp).astype(np.float32).transpose(0, 3, 1, 2)
        what = f"case {case}: {shape} -> {out_h}x{out_w}, step {step}"
        size = [shape[0], shape[3], out_h, out_w]
        reference = quantize_real(_onnx_resize(x, "linear", mode, sizes=size).transpose(0, 2, 3, 1).astype(np.float64),
                                  s, zp)
        keep_h = ~_reference_defects(in_h, out_h, out_h / in_h, mode)
        keep_w = ~_reference_defects(in_w, out_w, out_w / in_w, mode)
        within_one_lsb(got[:, keep_h][:, :, keep_w], reference[:, keep_h][:, :, keep_w], f"onnx.reference, {what}")
        runtime = _onnxruntime_resize(x, "linear", mode, sizes=size).transpose(0, 2, 3, 1).astype(np.float64)
        within_one_lsb(got, quantize_real(runtime, s, zp), f"onnxruntime, {what}")
    assert exact_scales >= 20  # full-range data in a good share of the cases


def test_onnx_reference_defect():
    """The onnx.reference accident _reference_defects masks, on 10 -> 14 half_pixel: output 10's
    coordinate is 7 ((10 + 0.5) * 10 / 14 - 0.5), 7.000000000000001 in float64; onnx.reference reads
    input 6 for it, onnxruntime and the int8 tables input 7."""
    x = np.arange(10, dtype=np.float32).reshape(1, 1, 1, 10)
    assert _reference_defects(10, 14, 1.4, "half_pixel").nonzero()[0].tolist() == [10]
    assert _onnx_resize(x, "nearest", "half_pixel", "floor", sizes=[1, 1, 1, 14])[0, 0, 0, 10] == 6
    assert _onnxruntime_resize(x, "nearest", "half_pixel", "floor", sizes=[1, 1, 1, 14])[0, 0, 0, 10] == 7
    assert R.onnx_nearest_index(10, 14, 1.4, "half_pixel", "floor")[10] == 7
    assert R.bilinear_tables_for_onnx(10, 14, "half_pixel")[10].tolist() == [6, 7, 1019]  # 6.995: TFLite's 10 bits


def test_bilinear_2x_upsample_is_exact_in_float():
    """28 -> 56 half_pixel: scale_10 = 512, fractions 256 and 768 exactly: every output equals the
    float bilinear rounded half away from zero (no 1-LSB slack needed)."""
    rng = np.random.default_rng(46)
    q = int8_tensor(rng, (1, 28, 28, 4))
    lerp = R.bilinear_tables_for_onnx(28, 56, "half_pixel")
    assert set(lerp[1:-1, 2].tolist()) == {256, 768}
    got = both("resize_bilinear_s8", q, lerp, lerp)
    y = _onnx_resize(q.astype(np.float32).transpose(0, 3, 1, 2), "linear", "half_pixel", sizes=[1, 4, 56, 56])
    exact(got.astype(np.int64), quantize_real(y.transpose(0, 2, 3, 1).astype(np.float64), 1.0, 0), "2x")


# ----------------------------------------------------------------------------------------
# Argument checking (shared by both implementations)


@pytest.mark.parametrize("impl", [R, C], ids=["numpy", "c"])
@pytest.mark.parametrize("kernel, y_table, x_table, message", [
    ("resize_nearest_s8", [0, 2], [1], None),
    ("resize_nearest_s8", [0, 3], [1], r"y_index holds indices outside \[0, 3\) \(in_h = 3\)"),
    ("resize_nearest_s8", [0], [-1], r"x_index holds indices outside \[0, 4\) \(in_w = 4\)"),
    ("resize_nearest_s8", [[0]], [1], "y_index must be one-dimensional"),
    ("resize_nearest_s8", [0.5], [1], "y_index must be an integer array"),
    ("resize_bilinear_s8", [[0, 2, 5]], [[0, 3, -2048]], None),
    ("resize_bilinear_s8", [[0, 2]], [[0, 3, 0]], r"y_lerp must have shape \[out, 3\]"),
    ("resize_bilinear_s8", [[0, 3, 0]], [[0, 3, 0]], r"y_lerp holds indices outside \[0, 3\)"),
    ("resize_bilinear_s8", [[0, 1, 0]], [[0, 3, 2049]], r"x_lerp holds fractions outside \[-2048, 2048\]"),
    ("resize_bilinear_s8", [[0, 1, 0]], [0, 3, 0], r"x_lerp must have shape \[out, 3\]"),
])
def test_rejects_bad_tables(impl, kernel, y_table, x_table, message):
    x = np.zeros((2, 3, 4, 5), np.int8)
    if message is None:
        assert getattr(impl, kernel)(x, np.array(y_table), np.array(x_table)).shape[:3] == (2, len(y_table),
                                                                                          len(x_table))
        return
    with pytest.raises(ValueError, match=message):
        getattr(impl, kernel)(x, np.array(y_table), np.array(x_table))


@pytest.mark.parametrize("impl", [R, C], ids=["numpy", "c"])
def test_rejects_bad_inputs(impl):
    with pytest.raises(ValueError, match="input must be an int8 array"):
        impl.resize_nearest_s8(np.zeros((1, 2, 2, 1), np.uint8), [0], [0])
    with pytest.raises(ValueError, match="input must have 4 dimensions"):
        impl.resize_bilinear_s8(np.zeros((2, 2, 1), np.int8), [[0, 0, 0]], [[0, 0, 0]])
    with pytest.raises(ValueError, match="has no rows or columns"):
        impl.resize_nearest_s8(np.zeros((1, 0, 2, 1), np.int8), np.zeros(0, np.int32), [0])


def test_table_builders_reject_bad_arguments():
    with pytest.raises(ValueError, match=r"in_size=0 is outside \[1, 1048576\]"):
        R.tflite_bilinear_tables(0, 4)
    with pytest.raises(ValueError, match=r"out_size=1048577 is outside"):
        R.tflite_nearest_index(4, (1 << 20) + 1)
    with pytest.raises(ValueError, match="out_size must be an integer"):
        R.tflite_bilinear_tables(4, 2.5)
    with pytest.raises(ValueError, match="scale must be a positive finite number"):
        R.onnx_nearest_index(4, 8, 0.0)
    with pytest.raises(ValueError, match="nearest resize: coordinate_transformation_mode 'tf_crop_and_resize' is not"):
        R.onnx_nearest_index(4, 8, 2.0, "tf_crop_and_resize")
    with pytest.raises(ValueError, match="nearest resize: nearest_mode 'round' is not supported"):
        R.onnx_nearest_index(4, 8, 2.0, "half_pixel", "round")
