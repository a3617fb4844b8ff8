"""--accuracy-budget POINTS: raise the precision of the layers int8 hurts most until the top-1 drop on
--val is within POINTS.

The search reuses one calibration (the plan of activation scales): every candidate is the same
partitioned float module written in the QDQ form with a different set of layers kept precise, lowered
through the deployed int8 kernels and run on the validation samples, so each figure is the build's own.

1. The int8 model as asked. Within the budget: done, nothing raised.
2. Cross-layer equalisation (--equalize) when not already asked: it costs nothing at run time, so it is
   tried before spending precision (the caller rebuilds with it; see needs_equalisation).
3. Sensitivity of every quantisable layer: the top-1 drop with only that layer kept precise (float),
   with only that layer quantised, and, on a target with int16, with that layer and the convolution
   writing its input in int16 (_raised: a step raises both).
4. Layers are raised one at a time, the largest gain from raising it first (ties: the larger
   drop when quantised alone), until the drop is within the budget. Each step tries the target's higher
   precisions ([int8] higher_precisions in its target.toml, cheapest first; float when it lists none)
   and keeps the cheapest that meets the budget, else the one with the lowest drop (ties: the
   cheaper). coral-npu lists int16 before float: TFLite's 16x8 scheme on generated RVV kernels
   (int16 activations in and out, int8 weights; convolutions and dense layers only) costs a fraction
   of a float layer on TVM's scalar riscv32 code. Two int16 layers in a row pass an int16 tensor, so
   an activation that per-tensor int8 cannot hold is fixed by raising its producer and its reader;
   16x8 keeps the weights int8, so a layer whose weights are the trouble needs float.
If even the all-precise model misses the budget, the search fails naming the figures.
"""

import math

import tvm
from tvm import relax

from compiler.analysis import module_param_bytes
from compiler.errors import CompilerError
from compiler.partition import group_name, group_nodes
from compiler.passes.util import bindings
from compiler.passes.insert_qdq import insert_qdq, is_mac_group, is_quantisable_group
from compiler.progress import Progress
from compiler.quant.evaluate import module_runner, top1
from compiler.quant.plan import plan_int16

FLOAT, INT16 = "float", "int16"


def quantisable_layers(mod) -> list[str]:
    """One node name per quantisable layer group (the name --keep-float takes), in graph order."""
    layers = []
    for func in mod.functions.values():
        nodes = group_nodes(func) if is_quantisable_group(group_name(func)) else []
        if nodes and nodes[0] not in layers:
            layers.append(nodes[0])
    return layers


def mac_producers(mod) -> dict:
    """{layer with a 16x8 kernel (convolution or dense): the layer with a 16x8 kernel that writes its input,
    or None}, layers named by their first ONNX node."""
    def mac_layer(value):
        if not (isinstance(value, relax.Call) and isinstance(value.op, tvm.ir.GlobalVar)):
            return None
        func = mod[value.op]
        nodes = group_nodes(func)
        return nodes[0] if nodes and is_mac_group(func) else None

    values = {binding.var: binding.value for binding in bindings(mod["main"])}
    producers = {}
    for value in values.values():
        layer = mac_layer(value)
        if layer is not None:
            source = next((arg for arg in value.args if isinstance(arg, relax.Var)), None)
            producers[layer] = mac_layer(values.get(source))
    return producers


class Evaluator:
    """Top-1 of the int8 build with given sets of layers kept float and raised to int16, on the
    validation samples."""

    def __init__(self, compiled, validation, lower):
        self.compiled, self.lower = compiled, lower
        self.images, self.labels, self.shape = validation
        self.float_top1 = top1(compiled.quantised.float_probe.output, self.images, self.labels, self.shape)
        config = compiled.quantised.config
        self.kept_by_user, self.int16_by_user = frozenset(config.keep_float), frozenset(config.int16_layers)
        self.plan16 = plan_int16(compiled.quantised.ranges)
        self.producers = mac_producers(compiled.partitioned)

    def qdq(self, kept: frozenset, int16=frozenset()):
        q = self.compiled.quantised
        return insert_qdq(self.compiled.partitioned, q.plan, q.input_names, keep_float=kept | self.kept_by_user,
                          io=q.config.io, input_means=q.input_means, int16_layers=int16 | self.int16_by_user,
                          plan16=self.plan16)

    def drop(self, kept: frozenset, int16=frozenset()) -> float:
        return round(self.float_top1 - top1(module_runner(self.lower(self.qdq(kept, int16))), self.images,
                                            self.labels, self.shape), 2)


def raise_precision(evaluator: Evaluator, budget: float, progress=True, precisions=(FLOAT,)) -> dict:
    """Steps 3-4 on a model whose int8 drop exceeds `budget`: {sensitivity, steps, raised, precisions}.
    `precisions`: the target's higher precisions, cheapest first (int16, float)."""
    compiled = evaluator.compiled
    user = evaluator.kept_by_user | evaluator.int16_by_user
    layers = [name for name in quantisable_layers(compiled.partitioned) if name not in user]
    everything, sensitivity = frozenset(layers), []
    wide = INT16 in precisions
    with Progress("layer sensitivity", (2 + wide) * len(layers), enabled=progress) as bar:
        for layer in layers:
            kept, alone = evaluator.drop(frozenset([layer])), evaluator.drop(everything - {layer})
            sensitivity.append({"layer": layer, "drop_kept_precise": kept, "drop_only_quantised": alone})
            if wide and layer in evaluator.producers:
                sensitivity[-1]["drop_int16"] = evaluator.drop(*_sets(_raised({}, layer, INT16, evaluator.producers)))
            bar.advance(2 + wide)
    order = sorted(sensitivity, key=lambda row: (min(row["drop_kept_precise"], row.get("drop_int16", math.inf)),
                                                 -row["drop_only_quantised"]))
    mix, steps = {}, []  # layer -> precision
    for row in order:
        layer = row["layer"]
        if layer in mix:  # raised to int16 already, as the input's producer of a layer before it
            continue
        choices = [p for p in precisions if p == FLOAT or (p == INT16 and layer in evaluator.producers)] or [FLOAT]
        mixes = {p: _raised(mix, layer, p, evaluator.producers) for p in choices}
        tried = {p: evaluator.drop(*_sets(mixes[p])) for p in choices}
        within = [p for p in choices if tried[p] <= budget]
        precision = within[0] if within else min(choices, key=lambda p: (tried[p], choices.index(p)))
        steps.append({"layer": layer, "precision": precision, "drop_after": tried[precision],
                      "also_raised": [name for name in mixes[precision] if name not in mix and name != layer],
                      "model_bytes": module_param_bytes(evaluator.qdq(*_sets(mixes[precision])))})
        mix = mixes[precision]
        if len(choices) > 1:
            steps[-1]["tried"] = tried
        if steps[-1]["drop_after"] <= budget:
            return {"sensitivity": sensitivity, "steps": steps, "raised": list(mix), "precisions": mix}
    raise CompilerError(f"--accuracy-budget {budget:g}: even with every layer raised the top-1 drop is "
                        f"{steps[-1]['drop_after']:g} points (float {evaluator.float_top1:.2f}%)" if steps else
                        f"--accuracy-budget {budget:g}: the int8 drop exceeds it and no layer can be raised")


def _raised(mix: dict, layer: str, precision: str, producers: dict) -> dict:
    """`mix` with `layer` raised to `precision`. int16 raises the convolution writing the layer's input
    too (unless it is float already): 16x8 helps where an activation defeats int8, and only an int16
    tensor from its producer carries the finer steps into the layer (a widened int8 tensor has none)."""
    raised = {**mix, layer: precision}
    producer = producers.get(layer)
    if precision == INT16 and producer is not None and mix.get(producer) != FLOAT:
        raised[producer] = INT16
    return raised


def _sets(mix: dict) -> tuple[frozenset, frozenset]:
    """(layers kept float, layers raised to int16) of a {layer: precision} mix."""
    return (frozenset(layer for layer, p in mix.items() if p == FLOAT),
            frozenset(layer for layer, p in mix.items() if p == INT16))
