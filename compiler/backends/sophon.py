"""Sophgo (BM1684X) hand-off: the float ONNX, a TPU-MLIR calibration table from our calibration, and
the model_transform / model_deploy commands (deploy.sh). TPU-MLIR needs its Docker image and makes a
.bmodel for the chip; neither runs here.

Why the float ONNX plus a table, not our QDQ ONNX: TPU-MLIR's own flow is exactly that (run_calibration
writes the table, model_deploy --calibration_table quantises the float graph), and the table carries our
ranges for every tensor by name, so the chip's quantisation starts from our calibration.

The table (TPU-MLIR's text format, as its ImportCalibration pass reads it): '#' lines are comments
(some '#' lines open other sections, so ours avoid those words), then per tensor
`name threshold min max`, numbers in plain decimals (its line pattern takes no '+', so no exponents).
Names are ONNX tensor names: TPU-MLIR names every op by its output tensor. The numbers:

  - min, max: the ends of our int8 grid, scale * (-128 - zero_point) and scale * (127 - zero_point).
    TPU-MLIR's asymmetric mode (model_deploy --asymmetric) derives scale = (max - min) / 255 and the
    zero point from min: our scale and zero point; a grid starting at 0 (zero point -128, e.g. after
    ReLU) becomes its uint8 with zero point 0, the same real values.
  - threshold: what its default symmetric mode uses: scale = threshold / 127 (or / 255 when min >= 0,
    unsigned). A zero point of 0 writes 127 * scale and one of -128 writes 255 * scale (both exactly
    our scale); any other zero point has no symmetric equal, so max(|min|, |max|) is written (our
    range, at TPU-MLIR's symmetric scale), and the report counts those tensors.
  - ONNX tensors our build does not quantise on their own (inside a fused group, e.g. a Conv's output
    before its BatchNormalization and ReLU) get the range ONNX Runtime observes on our calibration
    samples, threshold max(|min|, |max|): what run_calibration would write with min/max calibration,
    there for TPU-MLIR's fusions that keep a tensor ours fuse away.
"""

import datetime
import re
from dataclasses import dataclass

from compiler.backends import handoff
from compiler.errors import CompilerError
from compiler.names import shown
from compiler.report.backend import check, section

TABLE = "model_cali_table"
SCRIPT = "deploy.sh"
CHIP = "bm1684x"
# TPU-MLIR's line pattern for a table entry (ImportCalibration.cpp)
ENTRY = re.compile(r"\S+\s+[-0-9.e]+\s+[-0-9.e]+\s+[-0-9.e]+")
# '#' lines holding these open another section in TPU-MLIR's reader
SECTION_WORDS = ("#weight_scale", "#int4_th", "#tpu-mlir-fp8", "mqbench-fp8", "asym_op", "int4_op")
RELATIVE = 1e-6  # scales compared within float32 rounding


@dataclass(frozen=True)
class Entry:
    threshold: float
    min: float
    max: float


def number(value: float) -> str:
    """A decimal TPU-MLIR's pattern takes, exact to float64 (shortest round trip, no exponent)."""
    import numpy as np

    return np.format_float_positional(float(value), unique=True, trim="-")


def grid_entry(qparams) -> Entry:
    """Our (scale, zero point) as a table entry (module docstring)."""
    scale, zero_point = qparams.scale, qparams.zero_point
    lo, hi = scale * (-128 - zero_point), scale * (127 - zero_point)
    threshold = {0: 127 * scale, -128: 255 * scale}.get(zero_point, max(abs(lo), abs(hi)))
    return Entry(threshold, lo, hi)


def range_entry(lo: float, hi: float) -> Entry:
    return Entry(max(abs(lo), abs(hi)), lo, hi)


def write_table(entries: dict[str, Entry], samples: int, method: str) -> str:
    lines = [f"# genetated time: {datetime.datetime.now()}", "# histogram number: 0", f"# sample number: {samples}",
             f"# written by the edge NPU compiler from its own calibration ({method}); op_name threshold min max"]
    lines += [f"{name} {number(e.threshold)} {number(e.min)} {number(e.max)}" for name, e in entries.items()]
    return "\n".join(lines) + "\n"


def parse_table(text: str) -> dict[str, Entry]:
    """The int8 entries of a calibration table, read as TPU-MLIR reads them (errors on what it rejects)."""
    entries = {}
    for number_, line in enumerate(text.splitlines(), 1):
        line = line.rstrip("\r")
        if line.startswith("#"):
            if any(word in line for word in SECTION_WORDS):
                raise CompilerError(f"{TABLE} line {number_}: opens a section other than int8 thresholds")
            continue
        if not ENTRY.fullmatch(line):
            raise CompilerError(f"{TABLE} line {number_}: not `name threshold min max`")
        name, *values = line.split()
        entries[name] = Entry(*map(float, values))
    return entries


def tpu_mlir_qparams(entry: Entry, asymmetric: bool) -> tuple[float, int, bool]:
    """(scale, zero point, signed) TPU-MLIR derives from an entry (its getMinMax, getScale and
    getScaleAndZeroPoint for 8 bits); unsigned values are uint8."""
    if not asymmetric:
        signed = entry.min < 0
        return entry.threshold / (127.0 if signed else 255.0), 0, signed
    signed = entry.min < 0
    qmin, qmax = (-128, 127) if signed else (0, 255)
    scale = (entry.max - entry.min) / (qmax - qmin)
    from_min = qmin - entry.min / scale
    zero_point = round(from_min)
    if from_min < qmin:
        zero_point, scale = qmin, entry.max / (qmax - qmin)
    elif from_min > qmax:
        zero_point, scale = qmax, entry.min / (qmin - qmax)
    return scale, int(zero_point), signed


def as_int8(scale: float, zero_point: int, signed: bool) -> tuple[float, int]:
    """A uint8 (scale, zero point) as the int8 one computing the same real values."""
    return scale, zero_point if signed else zero_point - 128


def matches(ours, theirs: tuple[float, int]) -> bool:
    scale, zero_point = theirs
    return zero_point == ours.zero_point and abs(scale - ours.scale) <= RELATIVE * ours.scale


def package(compiled, staging, target, warn) -> dict:
    handoff.require_float_source(compiled, target)
    if compiled.quantised is None:
        raise CompilerError(f"--target {target.name}: the TPU-MLIR calibration table is written from our "
                            "calibration; build with --quantize int8 --calib SAMPLES")
    model = handoff.write_model(compiled, staging)
    feeds = handoff.calibration_feeds(compiled)
    planned = handoff.onnx_tensor_qparams(compiled)
    observed = handoff.observed_ranges(model, feeds)
    entries, skipped = {}, []
    for name in [*planned, *(n for n in observed if n not in planned)]:
        if not re.fullmatch(r"[^\s#]\S*", name):
            skipped.append(name)
            continue
        entries[name] = grid_entry(planned[name][0]) if name in planned else range_entry(*observed[name])
    config = compiled.quantised.config
    (staging / TABLE).write_text(write_table(entries, len(feeds), config.method))
    handoff.write_script(staging / SCRIPT, deploy_lines(compiled))
    verified = [handoff.float_check(compiled, model, feeds),
                *table_checks(parse_table((staging / TABLE).read_text()), planned),
                handoff.names_check(planned, observed, config.method)]
    notes = [f"{len(planned)} tensors carry our int8 parameters; {len(entries) - len(planned)} more (inside our "
             "fused groups) carry ONNX Runtime's range on the calibration samples"]
    if skipped:
        notes.append(f"{len(skipped)} tensor name(s) with whitespace or a leading '#' left out (TPU-MLIR's table "
                     "cannot hold them)")
    return section("TPU-MLIR hand-off (not run here)", [handoff.MODEL, TABLE, SCRIPT], verified,
                   ["TPU-MLIR (model_transform.py, model_deploy.py) is not installable here: it ships as Sophgo's "
                    "Docker image", "the .bmodel runs only on a Sophgo chip (BM1684X) or its SoC boards"],
                   {}, {}, notes=notes)


def table_checks(entries: dict[str, Entry], planned: dict) -> list[dict]:
    """The written table read back as TPU-MLIR reads it, against our (scale, zero point) per tensor."""
    missing = [name for name in planned if name not in entries]
    asymmetric = [name for name in planned if name in entries
                  and matches(planned[name][0], as_int8(*tpu_mlir_qparams(entries[name], True)))]
    symmetric = [name for name in planned if name in entries
                 and matches(planned[name][0], as_int8(*tpu_mlir_qparams(entries[name], False)))]
    exact_zero_points = [name for name in planned if planned[name][0].zero_point in (0, -128)]
    return [
        check(f"{TABLE} read back, asymmetric (--asymmetric)", "TPU-MLIR's min/max -> scale, zero point",
              f"{len(asymmetric)}/{len(planned)} tensors give our scale and zero point"
              + (f"; missing: {', '.join(map(shown, missing[:5]))}" if missing else ""), len(asymmetric) == len(planned)),
        check(f"{TABLE} read back, symmetric (default)", "TPU-MLIR's threshold -> scale (zero point 0, uint8 when "
              "min >= 0)", f"{len(symmetric)}/{len(planned)} tensors exactly ours; the other "
              f"{len(planned) - len(symmetric)} have a zero point no symmetric scale can hold",
              set(symmetric) >= set(exact_zero_points) - set(missing)),
    ]


def deploy_lines(compiled) -> list[str]:
    shapes = "[" + ",".join("[" + ",".join(map(str, shape)) + "]" for _, shape in handoff.input_shapes(compiled)) + "]"
    return [
        "# TPU-MLIR (Sophgo's Docker image sophgo/tpuc_dev, `pip install tpu_mlir`): ONNX -> MLIR -> INT8 .bmodel.",
        "# Quantisation comes from model_cali_table (our calibration; do not run run_calibration.py).",
        "# TPU-MLIR's default is symmetric int8 (the table's thresholds); ASYMMETRIC=1 ./deploy.sh uses the",
        "# table's min/max instead, which reproduce our scales and zero points for every tensor.",
        "# Newer TPU-MLIR releases also accept --processor for --chip.",
        handoff.shell_words("model_transform.py", "--model_name", "model", "--model_def", handoff.MODEL,
                            "--input_shapes", shapes, "--mlir", "model.mlir"),
        handoff.shell_words("model_deploy.py", "--mlir", "model.mlir", "--quantize", "INT8",
                            "--calibration_table", TABLE, "--chip", CHIP, "--model", "model_int8.bmodel")
        + ' ${ASYMMETRIC:+--asymmetric}',
    ]
