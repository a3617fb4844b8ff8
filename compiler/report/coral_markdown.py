"""The firmware part of report.md and of the build's terminal summary for the firmware targets (coral-npu,
rvv256-rv64, arm64-neon: report.json "coral")."""

from compiler.names import md_code, md_text


def _cells(row) -> str:
    return "| " + " | ".join(str(cell) for cell in row) + " |"


def render_coral(coral: dict, target: str) -> list[str]:
    build = coral.get("build", {})
    regions = {"arena": "DTCM", "spill_arena": "EXTMEM", **coral.get("arena_regions", {})}
    lines = [f"## {target} firmware", "",
             f"- memory profile: **{coral['memory_profile']}**; kernels: {build.get('kernels', 'generated')} "
             f"({build.get('opt', '')} -march={build.get('march', '')})",
             f"- activation arena: {coral['arena_bytes'].get('arena', 0):,} bytes in {regions['arena']}"
             + (f", {coral['arena_bytes']['spill_arena']:,} bytes spilled to {regions['spill_arena']}"
                if coral["arena_bytes"].get("spill_arena") else ""),
             f"- constant data (packed weights, biases, requantisation tables): {coral['constant_bytes']:,} bytes",
             *_weight_line(coral.get("weight_bytes")),
             *_tuning_db_line(coral.get("tuning_db")), "",
             "### Memory map", "", "| region | used bytes | size bytes | used |", "|---|---:|---:|---:|"]
    lines += [_cells((r["region"], f"{r['used_bytes']:,}", f"{r['size_bytes']:,}", f"{r['percent']}%"))
              for r in coral["memory_map"]]
    lines += ["", "### Layers", "", "| # | layer | op | output | MACs | implementation | schedule |",
              "|---:|---|---|---|---:|---|---|"]
    for row in coral["layers"]:
        impl = row["impl"] + (f" ({md_text(row['fallback'])})" if row["fallback"] else "")
        schedule = ", ".join(f"{k}={v}" for k, v in (row["schedule"] or {}).items()) or "-"
        if row.get("tuned"):
            schedule += " (tuned)"
        shape = "x".join(str(d) for d in row["output_shape"])
        lines.append(_cells((row["index"], md_code(row['name']), row["op"], shape, f"{row['macs']:,}", impl, schedule)))
    return lines + ["", "Instruction counts per layer: `python -m compiler run OUT --input x.npy` (recorded in "
                        "OUT/run.json).", ""]


def _weight_line(weights) -> list[str]:
    if not weights:
        return []
    return [f"- weights: {weights['int8']:,} bytes as int8, {weights['stored']:,} bytes as stored "
            f"({weights['int16_packed_layers']} layer(s) keep them pre-widened to int16, the fastest form; "
            "the others are int8 because the profile's memory needs it, or by their kernel)"]


def _tuning_db_line(tuning_db) -> list[str]:
    if tuning_db is None:
        return []
    ignored = sum(tuning_db["ignored"].values())
    lines = [f"- tuning database: {tuning_db['layers_tuned']} layer(s) use tuned schedules ({tuning_db['records']} "
             f"usable record(s)" + (f", {ignored} ignored" if ignored else "") + ")"]
    for entry in tuning_db.get("dropped", []):
        lines.append(f"- tuned schedule not used for {', '.join(md_code(n) for n in entry['layers'])} (would save "
                     f"{entry['saved_instructions']:,} instructions): with it, {md_text(entry['why'])}")
    return lines


def coral_summary_lines(coral, target: str) -> list[str]:
    if coral is None:
        return []
    regions = ", ".join(f"{r['region']} {r['used_bytes']:,}/{r['size_bytes']:,} B ({r['percent']}%)"
                        for r in coral["memory_map"])
    family = coral.get("build", {}).get("arch", "rvv")
    generated = sum(row["impl"] == family for row in coral["layers"])
    parts = [f"{generated} on generated {family.upper()} kernels"]
    for impl, where in (("ref", "kernels/ref"), ("tvm", "TVM's LLVM code")):
        rows = [row for row in coral["layers"] if row["impl"] == impl]
        if rows:
            parts.append(f"{len(rows)} on {where} ({', '.join(sorted({row['op'] for row in rows}))})")
    return [f"  {target} ({coral['memory_profile']}): {regions}", f"  layers: {', '.join(parts)}"]
