"""One report shape for every vendor backend (compiler/backends/): report.json's "backend" section
and its part of report.md and of the terminal summary.

    {"tool": "Arm Vela 5.2", "artefact": ["model_vela.tflite", ...],
     "verified": [{"what": "...", "how": "...", "result": "...", "passed": true}],
     "not_run_here": ["NPU execution needs Arm's FVP or silicon"],
     "performance": {"figure": "cycles", "value": 123456, "source": "Vela's estimate", ...},
     "memory": {"sram_bytes": ..., "flash_bytes": ...},
     "operators": {"on_target": 12, "fallback": {"count": 1, "kind": "CPU", "layers": [...]}},
     "notes": ["..."]}

Accuracy against float is the build's own (report["quantization"]), the same for every target.
"""

from compiler.names import md_code


def section(tool: str, artefact: list[str], verified: list[dict], not_run_here: list[str], performance: dict,
            memory: dict, operators: dict | None = None, notes: list[str] | None = None) -> dict:
    return {"tool": tool, "artefact": artefact, "verified": verified, "not_run_here": not_run_here,
            "performance": performance, "memory": memory, "operators": operators or {}, "notes": notes or []}


def check(what: str, how: str, result: str, passed: bool) -> dict:
    """One verification: what was compared, how, what came out."""
    return {"what": what, "how": how, "result": result, "passed": bool(passed)}


def render_backend(entry: dict) -> list[str]:
    lines = ["## Target artefact", "", f"- made by: {entry['tool']}",
             "- files: " + ", ".join(f"`{name}`" for name in entry["artefact"])]
    performance = entry["performance"]
    if performance:
        lines.append(f"- performance: {performance.get('value')} {performance.get('figure', '')} "
                     f"({performance.get('source', '')})")
    if entry["memory"]:
        lines.append("- memory: " + ", ".join(f"{key} {value:,}" if isinstance(value, int) else f"{key} {value}"
                                              for key, value in entry["memory"].items()))
    fallback = entry["operators"].get("fallback") if entry["operators"] else None
    if fallback:
        lines.append(f"- operators not on the target: {fallback.get('count', 0)} ({fallback.get('kind', '')}): "
                     + ", ".join(md_code(name) for name in fallback.get("layers", [])[:20]))
    lines += ["", "| verified | how | result | passed |", "| --- | --- | --- | --- |"]
    lines += [f"| {c['what']} | {c['how']} | {c['result']} | {'yes' if c['passed'] else '**no**'} |"
              for c in entry["verified"]]
    if entry["not_run_here"]:
        lines += ["", "Not run on this machine: " + "; ".join(entry["not_run_here"]) + "."]
    lines += ([""] if entry["notes"] else []) + [f"- {note}" for note in entry["notes"]]
    return lines + [""]


def backend_summary_lines(entry) -> list[str]:
    if entry is None:
        return []
    passed = sum(c["passed"] for c in entry["verified"])
    performance = entry["performance"]
    figure = f"; {performance.get('value')} {performance.get('figure', '')}" if performance else ""
    return [f"  {entry['tool']}: {', '.join(entry['artefact'])}; {passed}/{len(entry['verified'])} checks passed"
            f"{figure}"]
