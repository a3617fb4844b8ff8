"""PNG plots for the report folder, where a person would rather look than read (matplotlib, Agg backend:
no display needed). Each function writes its files and returns their names."""

from pathlib import Path

SENSITIVITY_PNG, BUDGET_PNG, SQNR_PNG = "layer_sensitivity.png", "accuracy_vs_cost.png", "layer_sqnr.png"


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        from compiler.errors import CompilerError

        raise CompilerError("the report's plots need matplotlib: pip install '.[plots]' (matplotlib==3.11.2; "
                            "`make python-deps` installs it)") from None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def budget_plots(budget: dict, layer_errors: list, folder: Path) -> list[str]:
    """--accuracy-budget: per-layer sensitivity (top-1 drops, and SQNR) and the search's accuracy-vs-cost curve."""
    plt = _pyplot()
    written = [_sensitivity(plt, budget, layer_errors, folder / SENSITIVITY_PNG)]
    if budget["steps"]:
        written.append(_accuracy_vs_cost(plt, budget, folder / BUDGET_PNG))
    return written


def sqnr_plot(layer_errors: list, folder: Path) -> list[str]:
    """A calibrated int8 build: the float vs int8 SQNR of every layer output, in graph order ([] without any)."""
    if not layer_errors:
        return []
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(10, 3.2))
    _sqnr_panel(axis, layer_errors)
    return [_saved(plt, figure, folder / SQNR_PNG)]


def _sqnr_panel(axis, layer_errors) -> None:
    rows = sorted(layer_errors, key=lambda row: row["tensor"])
    axis.bar(range(len(rows)), [min(row["sqnr_db"], 99.0) for row in rows], color="#4477aa")
    axis.set_xticks(range(len(rows)), [_short(row.get("onnx_node", row["tensor"])) for row in rows], rotation=60,
                    ha="right", fontsize=7)
    axis.set_ylabel("int8 SQNR (dB)")
    axis.set_title("float vs int8 error per layer output (held-out samples)")


def _sensitivity(plt, budget, layer_errors, path) -> str:
    sensitivity = budget["sensitivity"]
    panels = 2 if sensitivity else 1
    figure, axes = plt.subplots(panels, 1, figsize=(10, 3.2 * panels), squeeze=False)
    _sqnr_panel(axes[0][0], layer_errors)
    if sensitivity:
        axis, positions = axes[1][0], range(len(sensitivity))
        bars = [("drop_only_quantised", "only this layer int8", "#cc6677"),
                ("drop_kept_precise", "all int8 but this layer", "#117733")]
        if any("drop_int16" in row for row in sensitivity):
            bars.append(("drop_int16", "this layer and its input's producer int16", "#4477aa"))
        width = 0.8 / len(bars)
        for index, (key, label, color) in enumerate(bars):
            offset = (index - (len(bars) - 1) / 2) * width
            axis.bar([p + offset for p in positions], [row.get(key, 0.0) for row in sensitivity], width, label=label,
                     color=color)
        axis.set_xticks(list(positions), [_short(row["layer"]) for row in sensitivity], rotation=60, ha="right",
                        fontsize=7)
        _budget_line(axis, budget)
    return _saved(plt, figure, path)


def _accuracy_vs_cost(plt, budget, path) -> str:
    steps = budget["steps"]
    figure, axis = plt.subplots(figsize=(7, 4))
    layers = range(len(steps) + 1)
    axis.plot(layers, [budget["searched_drop"]] + [step["drop_after"] for step in steps], marker="o")
    for count, step in enumerate(steps, start=1):
        axis.annotate(f"{step['precision']}, {step['model_bytes']:,} B{_cost(step)}", (count, step["drop_after"]), fontsize=7,
                      textcoords="offset points", xytext=(4, 4))
    if "int8_cost" in budget:
        axis.annotate(f"int8{_cost(budget['int8_cost'])}", (0, budget["searched_drop"]), fontsize=7,
                      textcoords="offset points", xytext=(4, 4))
    axis.set_xlabel("search steps (each raises a layer to int16 or float)")
    axis.set_title("accuracy-budget search: drop after each raised layer (model bytes, cost on the target)")
    _budget_line(axis, budget)
    return _saved(plt, figure, path)


def _cost(row: dict) -> str:
    """", 0.41 ms" / ", 84,112 instr": a step's cost on its target, if measured."""
    if "latency_ms" in row:
        return f", {row['latency_ms']} ms"
    return f", {row['instructions']:,} instr" if "instructions" in row else ""


def _budget_line(axis, budget) -> None:
    axis.axhline(budget["budget_points"], color="black", linestyle="--", linewidth=1, label="budget")
    axis.set_ylabel("top-1 drop (points)")
    axis.legend(fontsize=7)


def _saved(plt, figure, path) -> str:
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path.name


def _short(name: str, width: int = 28) -> str:
    return name if len(name) <= width else "..." + name[-(width - 3):]
