"""Huawei Ascend hand-off: the float ONNX as ATC takes it, the ATC command (atc.sh) and an AIPP
configuration (aipp.cfg) from the model's input. ATC (CANN toolkit) and AMCT are not installable
here, and the .om runs only on an Ascend NPU.

Why the float ONNX, not our QDQ ONNX: ATC does not compile a QuantizeLinear/DequantizeLinear model
itself; Huawei's AMCT must first rewrite it (convert_qat_model) into AscendQuant/AscendDequant, and
that rewrite takes per-tensor weights only for Gemm and MatMul, where our dense layers are per
channel. ATC takes the float ONNX directly (float16 on the chip); int8 on Ascend is AMCT's
calibration of that same float ONNX (amct_onnx calibration, run by atc.sh when CALIB=1), so the
package holds our calibration samples (calib/*.bin, float32 as AMCT's --data_dir wants) and, to
compare with AMCT's record, our parameters per ONNX tensor (quant_params.json).
"""

import json

import numpy as np

from compiler.backends import handoff
from compiler.report.backend import check, section

SCRIPT, AIPP, PARAMS, CALIB_DIR = "atc.sh", "aipp.cfg", "quant_params.json", "calib"
SOC_VERSION = "Ascend310"
AIPP_FORMATS = {1: "YUV400_U8", 3: "RGB888_U8"}  # channels -> AIPP input_format (uint8 images)


def package(compiled, staging, target, warn) -> dict:
    handoff.require_float_source(compiled, target)
    model = handoff.write_model(compiled, staging)
    shapes = handoff.input_shapes(compiled)
    soc_version = target.data["handoff"].get("soc_version", SOC_VERSION)
    files, notes, verified = [handoff.MODEL, SCRIPT], [], []
    feeds = handoff.check_feeds(compiled)
    aipp = aipp_config(shapes, _input_range(compiled))
    if aipp is not None:
        (staging / AIPP).write_text(aipp)
        files.insert(1, AIPP)
        verified.append(aipp_check(parse_aipp(aipp), shapes[0][1]))
    else:
        notes.append("no aipp.cfg: AIPP takes one NCHW image input of 1 or 3 channels")
    calib = compiled.quantised is not None and len(shapes) == 1
    if compiled.quantised is not None:
        feeds = handoff.calibration_feeds(compiled)
        planned = handoff.onnx_tensor_qparams(compiled)
        (staging / PARAMS).write_text(json.dumps(
            {name: {**qparams.as_dict(), "calibrated_range": list(map(float, limits))}
             for name, (qparams, limits) in planned.items()}, indent=2) + "\n")
        files.append(PARAMS)
        verified.append(handoff.names_check(planned, handoff.observed_ranges(model, feeds),
                                            compiled.quantised.config.method))
    if calib:
        (staging / CALIB_DIR).mkdir()
        for index, feed in enumerate(feeds):
            np.ascontiguousarray(feed[0], dtype=np.float32).tofile(staging / CALIB_DIR / f"{index}.bin")
        files.append(f"{CALIB_DIR}/")
        notes.append(f"{CALIB_DIR}/: our {len(feeds)} calibration samples, one float32 .bin each (AMCT's --data_dir)")
    handoff.write_script(staging / SCRIPT, atc_lines(shapes, soc_version, aipp is not None, calib))
    verified.insert(0, handoff.float_check(compiled, model, feeds))
    not_run = ["ATC and AMCT (Huawei's CANN toolkit) are not installable here", "the .om runs only on an Ascend NPU"]
    return section("Ascend ATC hand-off (not run here)", files, verified, not_run, {}, {}, notes=notes)


def _input_range(compiled):
    quantised = compiled.quantised
    if quantised is None or not quantised.input_names:
        return None
    return quantised.ranges.get(quantised.input_names[0])


def aipp_config(shapes, input_range) -> str | None:
    """Static AIPP for a single NCHW image input: uint8 pixels of the input's size, normalisation as the
    identity (the model does not say how it was trained to see pixels)."""
    if len(shapes) != 1 or len(shapes[0][1]) != 4 or shapes[0][1][1] not in AIPP_FORMATS:
        return None
    _, channels, height, width = shapes[0][1]
    seen = (f"# Our calibration samples spanned [{input_range[0]:.6g}, {input_range[1]:.6g}]. A model trained on "
            "(pixel / 255 - mean) / std takes mean_chn = 255 * mean, var_reci_chn = 1 / (255 * std)."
            if input_range is not None else "")
    lines = ["# AIPP: ATC inserts this in front of the model's input (atc --insert_op_conf=aipp.cfg).",
             "# The model takes float input; AIPP feeds it uint8 pixels as (pixel - mean_chn - min_chn) * var_reci_chn.",
             "# The normalisation below is the identity (the model does not record its training preprocessing):",
             "# set mean_chn_* and var_reci_chn_* to it.", *([seen] if seen else []),
             "aipp_op {", "    aipp_mode: static", f"    input_format: {AIPP_FORMATS[channels]}",
             "    related_input_rank: 0", f"    src_image_size_w: {width}", f"    src_image_size_h: {height}",
             "    crop: false", "    csc_switch: false", "    rbuv_swap_switch: false"]
    for channel in range(channels):
        lines += [f"    mean_chn_{channel}: 0", f"    min_chn_{channel}: 0.0", f"    var_reci_chn_{channel}: 1.0"]
    return "\n".join(lines + ["}"]) + "\n"


def parse_aipp(text: str) -> dict[str, str]:
    """The `key: value` fields of an aipp_op block."""
    fields = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if ":" in line:
            key, value = (part.strip() for part in line.split(":", 1))
            fields[key] = value
    return fields


def aipp_check(fields: dict, shape: list[int]) -> dict:
    _, channels, height, width = shape
    wanted = {"aipp_mode": "static", "input_format": AIPP_FORMATS[channels], "src_image_size_w": str(width),
              "src_image_size_h": str(height)}
    wrong = [key for key, value in wanted.items() if fields.get(key) != value]
    return check(f"{AIPP} fits the model's input", f"fields read back vs the input's shape {shape}",
                 "format and size agree" if not wrong else f"differ: {', '.join(wrong)}", not wrong)


def atc_lines(shapes, soc_version: str, aipp: bool, calib: bool) -> list[str]:
    input_shape = ";".join(f"{name}:{','.join(map(str, shape))}" for name, shape in shapes)
    lines = ["# ATC (Huawei CANN toolkit; source its set_env.sh first): ONNX -> offline model model.om.",
             f"# SOC_VERSION=... ./atc.sh for another chip (default {soc_version}; see `npu-smi info`).",
             f'SOC_VERSION="${{SOC_VERSION:-{soc_version}}}"', f"MODEL={handoff.MODEL}"]
    if calib:
        lines += ["# CALIB=1 ./atc.sh: int8 by AMCT's post-training calibration on our calibration samples",
                  "# (calib/*.bin); without it ATC compiles the float model (float16 on the chip).",
                  'if [ -n "$CALIB" ]; then',
                  "    " + handoff.shell_words("amct_onnx", "calibration", f"--model={handoff.MODEL}",
                                               "--save_path=amct/model", f"--input_shape={input_shape}",
                                               f"--data_dir={CALIB_DIR}", "--data_types=float32"),
                  "    MODEL=amct/model_deploy_model.onnx", "fi"]
    command = handoff.shell_words("atc", "--framework=5", "--output=model", f"--input_shape={input_shape}",
                                  *(["--input_format=NCHW", f"--insert_op_conf={AIPP}"] if aipp else []))
    return lines + [command + ' --model="$MODEL" --soc_version="$SOC_VERSION"']
