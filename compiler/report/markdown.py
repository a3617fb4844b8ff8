"""report.md: the build report for people, rendered from report.json's dict.

Every name from the model goes through compiler/names.py (md_code / md_text in the Markdown,
shown on the terminal): a name cannot break a table, start a heading or hide characters."""

from compiler.names import md_code, md_text, shown
from compiler.report.coral_markdown import coral_summary_lines, render_coral
from compiler.report.backend import backend_summary_lines, render_backend
from compiler.report.tflite_markdown import render_tflite, render_tflite_operators, tflite_summary_lines
from compiler.report.tuning_markdown import render_tuning


def _table(headers, rows) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines + [""]


def _shape(shape) -> str:
    return "x".join(str(d) for d in shape) if shape else "-"


def _nodes(names, limit=4) -> str:
    listed = ", ".join(md_code(name) for name in names[:limit])
    return listed + (f" +{len(names) - limit} more" if len(names) > limit else "")


def render_markdown(report: dict) -> str:
    model, totals, bn, conv = report["model"], report["totals"], report["batchnorm"], report["conv"]
    lines = [f"# Build report: {md_text(model['path'])}", "",
             f"- target: **{report['target']}** (compiler {report['compiler_version']})",
             "- inputs: " + ", ".join(f"{md_code(t['name'])} {_shape(t['shape'])} {t['dtype']}" for t in model["inputs"]),
             "- outputs: " + ", ".join(f"{md_code(t['name'])} {_shape(t['shape'])} {t['dtype']}" for t in model["outputs"]),
             f"- {model['nodes']} ONNX nodes (opset {model['opset']}) -> {totals['layers']} layers, "
             f"{totals['fused_layers']} of them fused groups{_library_text(totals)}",
             f"- {totals['macs']:,} MACs, {totals['param_bytes']:,} parameter bytes",
             f"- BatchNorms folded into Conv: {len(bn['folded'])} of {bn['total']}",
             f"- Convs in fused groups: {conv['in_fused_groups']} of {conv['total']}",
             f"- compile time: {report['compile_seconds']['total']:.2f} s", ""]
    lines += ["## Operators imported", ""] + _table(["ONNX op", "count"],
                                                    [(md_text(op), count) for op, count in report["ops_imported"].items()])
    if report.get("tflite_operators"):
        lines += render_tflite_operators(report["tflite_operators"])
    lines += ["## Fused groups", ""] + _table(["pattern", "count"], report["fused_groups"].items())
    if bn["not_folded"]:
        lines += ["## BatchNorms not folded", ""] + _table(["node", "reason"], [(md_code(r['node']), md_text(r["reason"])) for r in bn["not_folded"]])
    if conv["not_fused"]:
        lines += ["## Convs not fused", ""] + [f"- {md_code(name)}" for name in conv["not_fused"]] + [""]
    precision = report.get("quantization") is not None or report.get("prequantised") is not None
    kinds = {"fused": " (fused)", "int8": " (int8 kernel)"}
    rows = [(index, row["op"] + kinds.get(row["kind"], ""), _nodes(row["onnx_nodes"]),
             _shape(row["output_shape"]), f"{row['macs']:,}", f"{row['param_bytes']:,}") + ((row.get("precision", "-"),) if precision else ())
            for index, row in enumerate(report["layers"])]
    headers = ["#", "layer", "ONNX nodes", "output", "MACs", "param bytes"] + (["precision"] if precision else [])
    lines += ["## Layers", ""] + _table(headers, rows)
    if report.get("quantization") is not None:
        lines += render_quantisation(report["quantization"])
    if report.get("reduced_precision"):
        lines += _render_reduced_precision(report["reduced_precision"])
    if report.get("coral"):
        lines += render_coral(report["coral"], report["target"])
    if report.get("backend"):
        lines += render_backend(report["backend"])
    if report.get("tflite"):
        lines += render_tflite(report["tflite"])
    if report.get("tuning"):
        lines += render_tuning(report["tuning"])
    lines += ["## Compile time", ""] + _table(["stage", "seconds"], report["compile_seconds"].items())
    return "\n".join(lines)


def _equalisation(equalized) -> list[str]:
    if not equalized or not equalized["asked"]:
        return []
    pairs = ", ".join(f"{md_code(a)} -> {md_code(b)}" for a, b in equalized["pairs"]) or "none found"
    return [f"- cross-layer equalisation (--equalize): {len(equalized['pairs'])} convolution pairs rescaled: {pairs}; "
            "conv / dense biases corrected for their weights' quantisation error (measured input means)"]


# A budget step's cost on its target (budget_cost.py) -> the column that shows it.
COST_FIGURES = {"latency_ms": "latency (ms, host)", "instructions": "instructions (one inference)"}


def _budget_section(budget: dict) -> list[str]:
    equalize = budget["equalize"]
    tried = (f"tried ({equalize['pairs']} pairs): drop {equalize['drop_after']} points" if equalize
             else "not tried (asked with --equalize, or not needed)")
    lines = ["### Accuracy budget", "",
             f"- budget: {budget['budget_points']:g} top-1 points; int8 as asked: drop {budget['int8_drop']} points",
             f"- cross-layer equalisation: {tried}",
             f"- raised: {_raised(budget) or 'none'}; final drop {budget['final_drop']} points", ""]
    if budget["sensitivity"]:
        wide = any("drop_int16" in r for r in budget["sensitivity"])
        rows = [(md_code(r["layer"]), r["drop_only_quantised"], r["drop_kept_precise"])
                + ((r.get("drop_int16", ""),) if wide else ()) for r in budget["sensitivity"]]
        lines += ["Sensitivity (top-1 drop in points):", ""] + _table(
            ["layer", "only this layer int8", "all int8 but this layer"]
            + (["this layer and its input's producer in int16"] if wide else []), rows)
        figure = next((key for key in COST_FIGURES if key in budget.get("int8_cost", {})), None)
        steps = [(i, " + ".join(md_code(n) for n in [s["layer"], *s.get("also_raised", ())]), s["precision"], _tried(s),
                  s["drop_after"], f"{s['model_bytes']:,}")
                 + ((f"{s[figure]:,}",) if figure else ()) for i, s in enumerate(budget["steps"], start=1)]
        head = (["step", "layer raised", "to", "drops tried", "drop after (points)", "model bytes"]
                + ([COST_FIGURES[figure]] if figure else []))
        if figure:
            steps.insert(0, (0, "(int8, searched from)", "int8", "", budget["searched_drop"], "",
                             f"{budget['int8_cost'][figure]:,}"))
        lines += ["Search steps:", ""] + _table(head, steps)
    lines += [f"![{name}]({name})" for name in budget.get("plots", [])] + [""]
    return lines


def _raised(budget) -> str:
    precisions = budget.get("precisions") or {layer: "float" for layer in budget["raised"]}
    return ", ".join(f"{md_code(layer)} ({precision})" for layer, precision in precisions.items())


def _tried(step) -> str:
    """The drop with each precision the step tried (the target's higher precisions), or "" (one)."""
    return ", ".join(f"{precision} {drop}" for precision, drop in step.get("tried", {}).items())


REDUCED_WHAT = {"dynamic": "layers with int8 weights", "fp16": "constants stored as float16"}


def _render_reduced_precision(reduced: dict) -> list[str]:
    mode, sizes = reduced["mode"], reduced["model_bytes"]
    lines = [f"## Reduced precision: --quantize {mode}", "", f"- scheme: {reduced['scheme']}",
             f"- {REDUCED_WHAT[mode]}: {reduced['reduced']}; model size: {sizes['float']:,} bytes float -> "
             f"{sizes[mode]:,} bytes", ""]
    if reduced["accuracy"]:
        acc = reduced["accuracy"]
        lines += _table(["samples", "float top-1 %", f"{mode} top-1 %", "drop (points)"],
                        [(acc["samples"], acc["float_top1"], acc["int8_top1"], acc["drop_points"])])
    return lines


def render_quantisation(quant: dict) -> list[str]:
    calib, sizes = quant["calibration"], quant["model_bytes"]
    method = calib["method"] + (f" ({calib['percentile']})" if calib["percentile"] else "")
    lines = ["## INT8 quantisation", "", f"- scheme: {quant['scheme']}",
             f"- calibration: {calib['samples']} samples from {md_code(calib['source'])}, method {method}; "
             f"errors measured on {calib['held_out_samples']} held-out samples",
             f"- model size: {sizes['float']:,} bytes float -> {sizes['int8']:,} bytes int8 "
             f"({sizes['int8'] / max(sizes['float'], 1):.1%})",
             f"- layers on int8 kernels: {len(quant['int8_layers'])}; layers computing in float: "
             + (", ".join(md_code(name) + (f" ({md_text(quant['float_reasons'][name])})"
                                           if name in quant.get("float_reasons", {}) else "")
                          for name in quant["float_layers"]) or "none")
             + (f" (kept by --keep-float: {', '.join(md_code(n) for n in quant['kept_float'])})" if quant["kept_float"] else "")]
    if quant.get("int16_layers"):
        lines.append("- layers in TFLite's 16x8 scheme (int16 activations, int8 weights): "
                     + ", ".join(md_code(name) for name in quant["int16_layers"]))
    lines += _equalisation(quant.get("equalized")) + [""]
    if quant["accuracy"]:
        acc = quant["accuracy"]
        lines += ["### Accuracy", ""] + _table(["samples", "float top-1 %", "int8 top-1 %", "drop (points)"],
                                               [(acc["samples"], acc["float_top1"], acc["int8_top1"], acc["drop_points"])])
    if quant.get("accuracy_budget"):
        lines += _budget_section(quant["accuracy_budget"])
    if quant["layer_errors"]:
        rows = [(md_code(r['onnx_node']), r["sqnr_db"], r["cosine"], f"{r['max_abs_error']:.4g}") for r in quant["layer_errors"]]
        lines += ["### Float vs int8 error per layer (worst first)", ""] + _table(["layer output", "SQNR dB", "cosine", "max abs error"], rows)
        lines += [f"![{name}]({name})" for name in quant.get("plots", [])] + ([""] if quant.get("plots") else [])
    rows = [(md_code(t['onnx_node']), f"{t['scale']:.6g}", t["zero_point"], f"[{t['range'][0]:.4g}, {t['range'][1]:.4g}]")
            for t in quant["tensors"]]
    lines += ["### Tensor quantisation parameters", ""] + _table(["tensor (producing node)", "scale", "zero point", "calibrated range"], rows)
    return lines


_LIBRARIES = {"dnnl": "oneDNN"}


def _library_text(totals: dict) -> str:
    """"; 52 on oneDNN": the layers a library runs rather than TVM's own code (codegen/dnnl.py)."""
    counts = totals.get("library_layers") or {}
    return "".join(f"; {count} on {_LIBRARIES.get(name, name)}" for name, count in counts.items())


def render_summary(report: dict) -> str:
    """A few lines for the terminal after a build."""
    totals, bn, conv = report["totals"], report["batchnorm"], report["conv"]
    groups = ", ".join(f"{name} x{count}" for name, count in report["fused_groups"].items()) or "none"
    return "\n".join([
        f"built {shown(report['model']['path'])} for {report['target']} in {report['compile_seconds']['total']:.2f} s",
        f"  layers: {totals['layers']} ({totals['fused_layers']} fused groups: {groups}){_library_text(totals)}",
        f"  BatchNorms folded: {len(bn['folded'])}/{bn['total']}; Convs fused: {conv['in_fused_groups']}/{conv['total']}",
        f"  MACs: {totals['macs']:,}; parameters: {totals['param_bytes']:,} bytes",
    ] + _quant_summary_lines(report.get("quantization")) + _prequantised_summary_lines(report.get("prequantised")) + _reduced_summary_lines(report.get("reduced_precision")) + coral_summary_lines(report.get("coral"), report.get("target"))
        + tflite_summary_lines(report.get("tflite")) + backend_summary_lines(report.get("backend")))


def _reduced_summary_lines(reduced) -> list[str]:
    if reduced is None:
        return []
    mode = reduced["mode"]
    lines = [f"  {mode}: {reduced['reduced']} {REDUCED_WHAT[mode]}, {reduced['model_bytes'][mode]:,} bytes "
             f"(float {reduced['model_bytes']['float']:,})"]
    if reduced["accuracy"]:
        acc = reduced["accuracy"]
        lines.append(f"  top-1 on {acc['samples']} samples: float {acc['float_top1']}%, {mode} {acc['int8_top1']}% "
                     f"(drop {acc['drop_points']} points)")
    return lines


def _prequantised_summary_lines(facts) -> list[str]:
    if facts is None:
        return []
    floats = facts["float_layers"]
    return [f"  int8 ({facts['scales']} scales): {facts['int8_layers']} layers on int8 kernels; {len(floats)} node(s) "
            "computing in float" + (f" ({', '.join(shown(name, 60) for name in floats[:4])}"
                                    f"{' ...' if len(floats) > 4 else ''})" if floats else "")]


def _with_reason(name, quant) -> str:
    """A float layer's name, and why its int8 kernel refused it when one did."""
    reason = quant.get("float_reasons", {}).get(name)
    return shown(name, 60) + (f": {shown(reason, 160)}" if reason else "")


def _quant_summary_lines(quant) -> list[str]:
    if quant is None:
        return []
    floats = quant["float_layers"]
    lines = [f"  int8: {len(quant['int8_layers'])} layers on int8 kernels, {quant['model_bytes']['int8']:,} bytes "
             f"(float {quant['model_bytes']['float']:,}); {len(floats)} layer(s) computing in float"
             + (f" ({', '.join(_with_reason(name, quant) for name in floats[:4])}{' ...' if len(floats) > 4 else ''})"
                if floats else "")
             + (f"; {len(quant['int16_layers'])} in 16x8 (int16 activations)" if quant.get("int16_layers") else "")]
    equalized = quant.get("equalized")
    if equalized and equalized["asked"]:
        lines.append(f"  cross-layer equalisation: {len(equalized['pairs'])} convolution pair(s) rescaled")
    if quant["layer_errors"]:
        worst = quant["layer_errors"][0]
        lines.append(f"  worst layer: {shown(worst['onnx_node'])} at {worst['sqnr_db']} dB SQNR")
    if quant["accuracy"]:
        acc = quant["accuracy"]
        lines.append(f"  top-1 on {acc['samples']} samples: float {acc['float_top1']}%, int8 {acc['int8_top1']}% "
                     f"(drop {acc['drop_points']} points)")
    return lines
