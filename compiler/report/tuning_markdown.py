"""The "Tuning" part of report.md (report.json "tuning", written by `python -m compiler tune`)."""

from compiler.names import md_code


def render_tuning(tuning: dict) -> list[str]:
    if "host_tasks" in tuning:
        return _render_host(tuning)
    lines = ["## Tuning", "",
             f"- database: {md_code(tuning.get('database', ''))}; {tuning.get('trials', 0)} candidates measured "
             f"({tuning.get('rejected', 0)} rejected) in {tuning.get('search_seconds', 0):.0f} s, seed {tuning.get('seed', 0)}",
             f"- whole model, one input in QEMU: **{tuning['default_total']:,}** instructions with the default "
             f"schedules, **{tuning['tuned_total']:,}** tuned (**{tuning['ratio']:.3f}x**)", "",
             "| # | layer | op | MACs | default instr | tuned instr | tuned / default |",
             "|---:|---|---|---:|---:|---:|---:|"]
    for row in tuning["layers"]:
        default, tuned = row["default_instructions"], row["tuned_instructions"]
        lines.append(f"| {row['index']} | {md_code(row['name'])} | {row['op']} | {row['macs']:,} | {default:,} | {tuned:,} | "
                     f"{tuned / default if default else 1.0:.3f} |")
    lines.append(f"| | **total** | | {sum(r['macs'] for r in tuning['layers']):,} | {tuning['default_total']:,} | "
                 f"{tuning['tuned_total']:,} | {tuning['ratio']:.3f} |")
    tasks = tuning.get("tasks", [])
    if tasks:
        lines += ["", "### Workloads", "", "| layers | trials | default | tuned | schedule | stopped by |",
                  "|---|---:|---:|---:|---|---|"]
        for task in tasks:
            schedule = ", ".join(f"{k}={v}" for k, v in task["schedule"].items())
            lines.append(f"| {', '.join(md_code(name) for name in task['layers'])} | {task['trials']} | "
                         f"{task['default_instructions']:,} | {task['tuned_instructions']:,} | {schedule} | {task['stopped']} |")
    return lines + [""]


def _render_host(tuning: dict) -> list[str]:
    """MetaSchedule's tasks (host): latency per PrimFunc, default vs tuned, as MetaSchedule measured them."""
    lines = ["## Tuning (MetaSchedule)", "",
             f"- database: {md_code(tuning['database'])} (MetaSchedule's records in {md_code(tuning['metaschedule'])}); "
             f"{tuning['trials']} trials in {tuning['search_seconds']:.0f} s, seed {tuning['seed']}",
             f"- sum over the tuned PrimFuncs: {tuning['default_total_us']:.2f} us default, "
             f"{tuning['tuned_total_us']:.2f} us tuned (**{tuning['ratio']:.3f}x**)", "",
             "| PrimFunc | trials | default us | tuned us | tuned / default |", "|---|---:|---:|---:|---:|"]
    for row in tuning["host_tasks"]:
        ratio = row["tuned_us"] / row["default_us"] if row["default_us"] else 1.0
        lines.append(f"| {md_code(row['task'])} | {row['trials']} | {row['default_us']:.3f} | {row['tuned_us']:.3f} | {ratio:.3f} |")
    return lines + [""]
