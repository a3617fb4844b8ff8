"""Post-training INT8 quantisation of a float module: calibrate, plan, write the QDQ form.

Input: the float module in NHWC partitioned with the target's int8 families. The
calibration source gives up to `samples` samples for the observers plus up to HELD_OUT
further samples that calibration never sees, on which the report measures the
float-vs-int8 error of every layer.
"""

from dataclasses import dataclass, field

import tvm

from compiler.errors import CompilerError
from compiler.partition import group_nodes
from compiler.passes.insert_qdq import insert_qdq, is_mac_group
from compiler.quant.calib_data import CalibrationSet, input_specs, load_calibration
from compiler.quant.calibrate import Probe, calibrate, float_probe
from compiler.quant.ort_probe import OrtProbe
from compiler.quant.observers import METHODS
from compiler.quant.plan import plan_activations, plan_int16

HELD_OUT = 32


@dataclass(frozen=True)
class QuantConfig:
    calib: str | None               # a path, or "random" (None: --quantize dynamic)
    samples: int = 100
    method: str = "minmax"
    percentile: float = 99.99
    keep_float: tuple[str, ...] = ()
    int16_layers: tuple[str, ...] = ()  # convolutions / dense layers run 16x8 (--int16, --accuracy-budget)
    io: str = "float"               # model inputs/outputs: float, int8 or uint8 tensors
    equalize: bool = False          # cross-layer equalisation before calibration (passes/equalize.py)
    accuracy_budget: float | None = None  # top-1 points int8 may lose on --val (quant/budget.py)
    scheme: str = "int8"            # "int8" (calibrated); no calibration: "dynamic" (passes/dynamic_quant.py),
                                    # "fp16" (passes/fp16_weights.py)
    progress: bool = True


@dataclass
class Quantised:
    config: QuantConfig
    qdq: tvm.IRModule                 # main in the QDQ form
    plan: dict                        # tensor id -> QParams
    ranges: dict                      # tensor id -> (lo, hi) observed
    calibration_samples: int
    held_out: CalibrationSet | None = None
    input_names: list[str] = field(default_factory=list)
    equalized: list = field(default_factory=list)  # (conv, conv) name pairs --equalize rescaled
    input_means: dict | None = None   # tensor id -> per-channel mean: biases corrected (--equalize)
    float_probe: Probe | OrtProbe | None = None  # the float module's calibration probe: the report runs it again


def quantise(mod: tvm.IRModule, input_names: list[str], config: QuantConfig, tflite_scales=False) -> Quantised:
    """tflite_scales: the build is written as TFLite (plan_activations: its same-scale operators)."""
    if config.method not in METHODS:
        raise CompilerError(f"--calib-method {config.method}: unknown (choose from {', '.join(METHODS)})")
    _check_layers(mod, config.keep_float, "--keep-float")
    _check_layers(mod, config.int16_layers, "--int16", mac_only=True)
    specs = input_specs(mod, input_names)
    loaded = load_calibration(config.calib, specs, limit=config.samples + HELD_OUT)
    calibration, held_out = _split(loaded, config.samples)
    means = {} if config.equalize else None  # --equalize corrects biases with the measured input means
    probe = float_probe(mod, list(input_names))
    ranges = calibrate(mod, calibration, config.method, config.percentile, progress=config.progress, means=means,
                       probe=probe)
    plan = plan_activations(mod, ranges, input_names, tflite_scales)
    qdq_mod = insert_qdq(mod, plan, input_names, keep_float=frozenset(config.keep_float), io=config.io,
                         input_means=means, int16_layers=frozenset(config.int16_layers), plan16=plan_int16(ranges))
    return Quantised(config, qdq_mod, plan, ranges, len(calibration), held_out, list(input_names), input_means=means,
                     float_probe=probe)


def _split(loaded: CalibrationSet, count: int):
    """The first `count` samples calibrate; the rest (never seen by calibration) are held out."""
    if len(loaded) <= count:
        return loaded, None
    take = lambda rows: CalibrationSet(loaded.inputs, {k: v[rows] for k, v in loaded.samples.items()}, loaded.source)
    return take(slice(0, count)), take(slice(count, None))


def _check_layers(mod, names, flag, mac_only=False):
    """Every name of `flag` is a node of a quantisable layer (a convolution or dense layer's if mac_only)."""
    known = {node for func in mod.functions.values() for node in group_nodes(func)
             if not mac_only or is_mac_group(func)}
    unknown = [name for name in names if name not in known]
    if unknown:
        what = "convolution or dense layer" if mac_only else "quantisable layer"
        hint = ", ".join(sorted(known)[:8]) + (" ..." if len(known) > 8 else "")
        raise CompilerError(f"{flag} {','.join(unknown)}: no {what} comes from "
                            f"{'these nodes' if len(unknown) > 1 else 'this node'} (layers come from: {hint})")
