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
