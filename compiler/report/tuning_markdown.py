"""The "Tuning" part of report.md (report.json "tuning", written by `python -m compiler tune`)."""


def render_tuning(tuning: dict) -> list[str]:
    lines = ["## Tuning", "",
             f"- database: `{tuning.get('database', '')}`; {tuning.get('trials', 0)} candidates measured "
             f"({tuning.get('rejected', 0)} rejected) in {tuning.get('search_seconds', 0):.0f} s, seed {tuning.get('seed', 0)}",
             f"- whole model, one input in QEMU: **{tuning['default_total']:,}** instructions with the default "
             f"schedules, **{tuning['tuned_total']:,}** tuned (**{tuning['ratio']:.3f}x**)", "",
             "| # | layer | op | MACs | default instr | tuned instr | tuned / default |",
             "|---:|---|---|---:|---:|---:|---:|"]
    for row in tuning["layers"]:
        default, tuned = row["default_instructions"], row["tuned_instructions"]
        lines.append(f"| {row['index']} | `{row['name']}` | {row['op']} | {row['macs']:,} | {default:,} | {tuned:,} | "
                     f"{tuned / default if default else 1.0:.3f} |")
    lines.append(f"| | **total** | | {sum(r['macs'] for r in tuning['layers']):,} | {tuning['default_total']:,} | "
                 f"{tuning['tuned_total']:,} | {tuning['ratio']:.3f} |")
    tasks = tuning.get("tasks", [])
    if tasks:
        lines += ["", "### Workloads", "", "| layers | trials | default | tuned | schedule | stopped by |",
                  "|---|---:|---:|---:|---|---|"]
        for task in tasks:
            schedule = ", ".join(f"{k}={v}" for k, v in task["schedule"].items())
            lines.append(f"| {', '.join(f'`{name}`' for name in task['layers'])} | {task['trials']} | "
                         f"{task['default_instructions']:,} | {task['tuned_instructions']:,} | {schedule} | {task['stopped']} |")
    return lines + [""]
