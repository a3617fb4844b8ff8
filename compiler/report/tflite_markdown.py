"""The `--emit tflite` part of report.md and of the terminal summary (export/verify.py's entry)."""

from compiler.names import md_code


def render_tflite(entry: dict) -> list[str]:
    check = entry["check"]
    found = "identical" if check["identical"] else f"differ by up to {check['max_abs_difference']:.4g}"
    lines = ["## TFLite export", "",
             f"- file: {md_code(entry['file'])}, {entry['bytes']:,} bytes, builtin operators only",
             f"- checked: {check['reference']} vs {check['compared_with']} on {check['inputs']} random inputs: "
             f"outputs {found} (expected: {check['expected']})"]
    if entry["float_layers"]:
        lines.append("- float layers: " + ", ".join(md_code(name) for name in entry["float_layers"]))
    lines += ["", "| TFLite operator | count |", "| --- | --- |"]
    lines += [f"| {name} | {count} |" for name, count in entry["operators"].items()]
    return lines + [""]


def tflite_summary_lines(entry) -> list[str]:
    if entry is None:
        return []
    check = entry["check"]
    verdict = "bit-exact to the build" if check["identical"] else \
        f"differs from the build by up to {check['max_abs_difference']:.4g} ({check['expected']} expected)"
    return [f"  tflite: {entry['file']} ({sum(entry['operators'].values())} operators), LiteRT {verdict} on "
            f"{check['inputs']} inputs"]


def render_tflite_operators(operators: dict) -> list[str]:
    """A TFLite model's operators and the layers (kernels) they became."""
    lines = ["## TFLite operators", "", "| TFLite operator | in the file | layers computing it |", "| --- | --- | --- |"]
    for name, entry in operators.items():
        layers = ", ".join(f"{md_code(layer)} x{count}" for layer, count in entry["layers"].items()) or "folded away"
        lines.append(f"| {md_code(name)} | {entry['count']} | {layers} |")
    return lines + [""]
