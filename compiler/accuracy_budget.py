"""build --accuracy-budget POINTS: the int8 build, or the cheapest mix of precisions, whose top-1 drop
on --val is within POINTS (the search is quant/budget.py; this module rebuilds with its answer).

Order: the int8 model as asked; then, unless --equalize was given, cross-layer equalisation (free at
run time); then layers raised one at a time by quant/budget.raise_precision (to the target's cheapest
higher precision that serves: int16 or float), and a rebuild with them raised (--int16 / --keep-float of
those layers); each step's mix is rebuilt and its cost on the
target measured (budget_cost.py: latency on the host, instructions on a firmware target). The returned record goes into report.json
(quantization.accuracy_budget) and its plots into the report folder.
"""

import dataclasses

from compiler.compile_model import spec_form
from compiler.quant.budget import FLOAT, INT16, Evaluator, raise_precision


def meet_budget(compiled, validation, recompile, progress=True, cost=None, int16=True):
    """(the compiled model that meets the budget, the search record). `recompile(QuantConfig)` builds the
    same model with another quantisation config; `cost(compiled)`, when given (budget_cost.py), is the
    target's performance figure of a build: measured for the int8 model searched from ("int8_cost") and
    for each step's mix (each step rebuilt with the layers raised so far). int16=False: no int16 layers
    (a build exporting int8 only: --emit tflite)."""
    config = compiled.quantised.config
    budget = config.accuracy_budget
    evaluator = _evaluator(compiled, validation)
    record = {"budget_points": budget, "float_top1": round(evaluator.float_top1, 2),
              "int8_drop": evaluator.drop(frozenset()), "equalize": None, "sensitivity": [], "steps": [], "raised": []}
    drop = record["int8_drop"]
    if drop > budget and not config.equalize:
        equalized = recompile(dataclasses.replace(config, equalize=True))
        equalized_evaluator = _evaluator(equalized, validation)
        equalized_drop = equalized_evaluator.drop(frozenset())
        record["equalize"] = {"pairs": len(equalized.quantised.equalized), "drop_after": equalized_drop}
        if equalized_drop < drop:
            compiled, evaluator, drop = equalized, equalized_evaluator, equalized_drop
    record["searched_drop"] = drop
    if drop > budget:
        precisions = tuple(p for p in compiled.target.higher_precisions if int16 or p != INT16)
        record.update(raise_precision(evaluator, budget, progress, precisions))
        config = compiled.quantised.config
        searched, compiled = compiled, None
        if cost is not None:
            record["int8_cost"] = cost(searched)
        for count, step in enumerate(record["steps"], start=1):
            if cost is None and count < len(record["steps"]):
                continue  # only the final mix is built
            compiled = recompile(_with_mix(config, record["steps"][:count]))
            if cost is not None:
                step.update(cost(compiled))
    record["final_drop"] = record["steps"][-1]["drop_after"] if record["steps"] else drop
    return compiled, record


def _with_mix(config, steps):
    """`config` with the layers of `steps` raised: float ones kept float, int16 ones run 16x8."""
    raised = lambda precision: tuple(layer for step in steps if step["precision"] == precision  # noqa: E731
                                     for layer in [step["layer"], *step.get("also_raised", ())])
    return dataclasses.replace(config, keep_float=config.keep_float + raised(FLOAT),
                               int16_layers=config.int16_layers + raised(INT16))


def _evaluator(compiled, validation) -> Evaluator:
    from compiler.codegen.int8 import offload_int8

    spec = compiled.integer_spec
    return Evaluator(compiled, validation, lambda qdq: offload_int8(spec_form(qdq, spec), spec=spec))
