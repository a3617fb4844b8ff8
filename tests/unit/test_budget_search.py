"""quant/budget.raise_precision's order and stopping rule on a model whose drops are a known table: the
evaluator here answers drop(kept) from a formula (each layer's damage adds up), so the expected order
and the failure line are computed from the table, independently of the search's code."""

import pytest

from compiler.errors import CompilerError
from compiler.quant import budget

DAMAGE = {"conv_a": 0.5, "conv_b": 3.0, "dense": 1.0, "pool": 0.0}  # drop each layer adds when int8


class TableEvaluator:
    kept_by_user = frozenset()
    float_top1 = 99.0
    compiled = type("Compiled", (), {"partitioned": None})()

    def __init__(self, floor=0.0):
        self.floor = floor  # a drop no layer choice removes

    def drop(self, kept):
        return round(self.floor + sum(d for layer, d in DAMAGE.items() if layer not in kept), 2)

    def qdq(self, kept):
        return kept


@pytest.fixture(autouse=True)
def table_model(monkeypatch):
    monkeypatch.setattr(budget, "quantisable_layers", lambda mod: list(DAMAGE))
    monkeypatch.setattr(budget, "module_param_bytes", lambda kept: 1000 + 100 * len(kept))


def test_most_damaging_layers_are_raised_first_until_within_budget():
    result = budget.raise_precision(TableEvaluator(), 1.0, progress=False)
    assert result["raised"] == ["conv_b", "dense"]  # 4.5 -> 1.5 -> 0.5
    assert [step["drop_after"] for step in result["steps"]] == [1.5, 0.5]
    by_layer = {row["layer"]: row for row in result["sensitivity"]}
    assert by_layer["conv_b"]["drop_kept_precise"] == 1.5 and by_layer["conv_b"]["drop_only_quantised"] == 3.0


def test_budget_missed_with_every_layer_raised_is_one_line():
    with pytest.raises(CompilerError, match=r"--accuracy-budget 1: even with every layer kept precise the top-1 "
                                            r"drop is 2 points") as error:
        budget.raise_precision(TableEvaluator(floor=2.0), 1.0, progress=False)
    assert "\n" not in str(error.value)


def test_the_hosts_step_cost_is_its_latency():
    """budget_cost on the host: the median of timed runs of the step's executable on one sample."""
    import numpy as np
    from onnx_models import tiny_cnn

    from compiler.budget_cost import target_cost
    from compiler.compile_model import compile_model
    from compiler.targets import get_target

    host = get_target("host")
    compiled = compile_model(tiny_cnn(seed=1, size=16), host)
    cost = target_cost(host, None, np.zeros((1, 3, 16, 16), np.float32))
    figure = cost(compiled)
    assert list(figure) == ["latency_ms"] and 0 < figure["latency_ms"] < 1000


def test_the_search_steps_table_shows_the_targets_figure():
    from compiler.report.markdown import _budget_section

    record = {"budget_points": 1, "int8_drop": 2.0, "equalize": None, "raised": ["conv_b"], "final_drop": 0.5,
              "searched_drop": 2.0, "int8_cost": {"latency_ms": 0.25},
              "sensitivity": [{"layer": "conv_b", "drop_only_quantised": 1.5, "drop_kept_precise": 0.5}],
              "steps": [{"layer": "conv_b", "precision": "float", "drop_after": 0.5, "model_bytes": 1234,
                         "latency_ms": 0.75}]}
    text = "\n".join(_budget_section(record))
    assert "| step | layer raised | to | drop after (points) | model bytes | latency (ms, host) |" in text
    assert "| 0 | (int8, searched from) | int8 | 2.0 |  | 0.25 |" in text and "| 1 | `conv_b` | float | 0.5 | 1,234 | 0.75 |" in text
