"""quant/budget.raise_precision's order and stopping rule on a model whose drops are a known table: the
evaluator here answers drop(kept) from a formula (each layer's damage adds up), so the expected order
and the failure line are computed from the table, independently of the search's code."""

import pytest

from compiler.errors import CompilerError
from compiler.quant import budget

DAMAGE = {"conv_a": 0.5, "conv_b": 3.0, "dense": 1.0, "pool": 0.0}  # drop each layer adds when int8


# the drop a layer still adds when raised to int16 (16x8: int16 activations, int8 weights): conv_b's
# trouble is its input activation, which conv_a writes (int16 fixes it when conv_a writes int16 too), the
# dense layer's its weights (int16 does not help)
DAMAGE_INT16 = {"conv_a": 0.5, "conv_b": 0.0, "dense": 1.0}


class TableEvaluator:
    kept_by_user = int16_by_user = frozenset()
    producers = {"conv_a": None, "conv_b": "conv_a", "dense": None}  # the 16x8-capable layers
    float_top1 = 99.0
    compiled = type("Compiled", (), {"partitioned": None})()

    def __init__(self, floor=0.0):
        self.floor = floor  # a drop no layer choice removes

    def drop(self, kept, int16=frozenset()):
        def damage(layer, d):
            if layer in kept:
                return 0.0
            if layer == "conv_b" and layer in int16 and "conv_a" not in int16 | kept:
                return d  # a widened int8 input: nothing gained
            return DAMAGE_INT16[layer] if layer in int16 else d

        return round(self.floor + sum(damage(layer, d) for layer, d in DAMAGE.items()), 2)

    def qdq(self, kept, int16=frozenset()):
        return kept | int16


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


def test_each_step_keeps_the_cheapest_precision_that_serves():
    """int16 before float: conv_b (4.5 -> 1.5 either way: a tie goes to the cheaper int16, which raises conv_a,
    the producer of its input, with it), then the dense layer, where int16 leaves 1.5 but float reaches 0.5,
    within the budget."""
    result = budget.raise_precision(TableEvaluator(), 1.0, progress=False, precisions=("int16", "float"))
    assert result["precisions"] == {"conv_b": "int16", "conv_a": "int16", "dense": "float"}
    assert [step["layer"] for step in result["steps"]] == ["conv_b", "dense"]
    assert result["steps"][0]["also_raised"] == ["conv_a"]
    assert [step["tried"] for step in result["steps"]] == [{"int16": 1.5, "float": 1.5}, {"int16": 1.5, "float": 0.5}]
    assert [step["drop_after"] for step in result["steps"]] == [1.5, 0.5]
    by_layer = {row["layer"]: row for row in result["sensitivity"]}
    assert by_layer["conv_b"]["drop_int16"] == 1.5 and "drop_int16" not in by_layer["pool"]


def test_int16_alone_when_it_meets_the_budget():
    """With a budget of 1.5 the first step's int16 is within it: the search stops there."""
    result = budget.raise_precision(TableEvaluator(), 1.5, progress=False, precisions=("int16", "float"))
    assert result["precisions"] == {"conv_b": "int16", "conv_a": "int16"} and len(result["steps"]) == 1


def test_budget_missed_with_every_layer_raised_is_one_line():
    with pytest.raises(CompilerError, match=r"--accuracy-budget 1: even with every layer raised the top-1 "
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
                         "latency_ms": 0.75, "tried": {"int16": 1.25, "float": 0.5}}],
              "precisions": {"conv_b": "float"}}
    text = "\n".join(_budget_section(record))
    assert "| step | layer raised | to | drops tried | drop after (points) | model bytes | latency (ms, host) |" in text
    assert "| 0 | (int8, searched from) | int8 |  | 2.0 |  | 0.25 |" in text
    assert "| 1 | `conv_b` | float | int16 1.25, float 0.5 | 0.5 | 1,234 | 0.75 |" in text
    assert "- raised: `conv_b` (float); final drop 0.5 points" in text


def test_the_searched_mix_is_rebuilt_with_each_layer_at_its_precision(monkeypatch):
    """meet_budget on coral-npu (int16 before float): the rebuild runs conv_b and conv_a (its input's producer,
    raised with it) 16x8 and keeps the dense layer float, beside what the user asked."""
    from types import SimpleNamespace

    from compiler import accuracy_budget
    from compiler.quant.quantize import QuantConfig
    from compiler.targets import get_target

    config = QuantConfig(calib="calib.npz", accuracy_budget=1.0, equalize=True, keep_float=("pool",))
    coral = get_target("coral-npu")
    rebuilt = []

    def recompile(new_config):
        rebuilt.append(new_config)
        return SimpleNamespace(quantised=SimpleNamespace(config=new_config), target=coral)

    monkeypatch.setattr(accuracy_budget, "_evaluator", lambda compiled, validation: TableEvaluator())
    _, record = accuracy_budget.meet_budget(recompile(config), None, recompile, progress=False)
    assert record["precisions"] == {"conv_b": "int16", "conv_a": "int16", "dense": "float"}
    assert rebuilt[-1].int16_layers == ("conv_b", "conv_a") and rebuilt[-1].keep_float == ("pool", "dense")
