"""--accuracy-budget POINTS: raise the precision of the layers int8 hurts most until the top-1 drop on
--val is within POINTS.

The search reuses one calibration (the plan of activation scales): every candidate is the same
partitioned float module written in the QDQ form with a different set of layers kept precise, lowered
through the deployed int8 kernels and run on the validation samples, so each figure is the build's own.

1. The int8 model as asked. Within the budget: done, nothing raised.
2. Cross-layer equalisation (--equalize) when not already asked: it costs nothing at run time, so it is
   tried before spending precision (the caller rebuilds with it; see needs_equalisation).
3. Sensitivity of every quantisable layer: the top-1 drop with only that layer kept precise, and with
   only that layer quantised.
4. Layers are raised one at a time, the largest gain from keeping it precise first (ties: the larger
   drop when quantised alone), until the drop is within the budget. The higher precision is the
   target's cheapest: float on every target today (coral-npu runs float layers through TVM's
   riscv32 LLVM code). The int16 x int8 kernels that would be cheaper there exist
   (cpp/src/conv16x8.cc, kernels/ref/conv16x8.c); the graph does not carry int16 tensors yet.
If even the all-precise model misses the budget, the search fails naming the figures.
"""

from compiler.analysis import module_param_bytes
from compiler.errors import CompilerError
from compiler.partition import group_name, group_nodes
from compiler.passes.insert_qdq import insert_qdq, is_quantisable_group
from compiler.progress import Progress
from compiler.quant.evaluate import module_runner, top1


def quantisable_layers(mod) -> list[str]:
    """One node name per quantisable layer group (the name --keep-float takes), in graph order."""
    layers = []
    for func in mod.functions.values():
        nodes = group_nodes(func) if is_quantisable_group(group_name(func)) else []
        if nodes and nodes[0] not in layers:
            layers.append(nodes[0])
    return layers


class Evaluator:
    """Top-1 of the int8 build with a given set of layers kept precise, on the validation samples."""

    def __init__(self, compiled, validation, lower):
        self.compiled, self.lower = compiled, lower
        self.images, self.labels, self.shape = validation
        self.float_top1 = top1(compiled.quantised.float_probe.output, self.images, self.labels, self.shape)
        self.kept_by_user = frozenset(compiled.quantised.config.keep_float)

    def qdq(self, kept: frozenset):
        q = self.compiled.quantised
        return insert_qdq(self.compiled.partitioned, q.plan, q.input_names, keep_float=kept | self.kept_by_user,
                          io=q.config.io, input_means=q.input_means)

    def drop(self, kept: frozenset) -> float:
        return round(self.float_top1 - top1(module_runner(self.lower(self.qdq(kept))), self.images, self.labels,
                                            self.shape), 2)


def raise_precision(evaluator: Evaluator, budget: float, progress=True) -> dict:
    """Steps 3-4 on a model whose int8 drop exceeds `budget`: {sensitivity, steps, raised}."""
    compiled = evaluator.compiled
    layers = [name for name in quantisable_layers(compiled.partitioned) if name not in evaluator.kept_by_user]
    everything, sensitivity = frozenset(layers), []
    with Progress("layer sensitivity", 2 * len(layers), enabled=progress) as bar:
        for layer in layers:
            kept, alone = evaluator.drop(frozenset([layer])), evaluator.drop(everything - {layer})
            sensitivity.append({"layer": layer, "drop_kept_precise": kept, "drop_only_quantised": alone})
            bar.advance(2)
    order = sorted(sensitivity, key=lambda row: (row["drop_kept_precise"], -row["drop_only_quantised"]))
    kept, steps = frozenset(), []
    for row in order:
        kept |= {row["layer"]}
        steps.append({"layer": row["layer"], "precision": "float", "drop_after": evaluator.drop(kept),
                      "model_bytes": module_param_bytes(evaluator.qdq(kept))})
        if steps[-1]["drop_after"] <= budget:
            return {"sensitivity": sensitivity, "steps": steps, "raised": [step["layer"] for step in steps]}
    raise CompilerError(f"--accuracy-budget {budget:g}: even with every layer kept precise the top-1 drop is "
                        f"{steps[-1]['drop_after']:g} points (float {evaluator.float_top1:.2f}%)" if steps else
                        f"--accuracy-budget {budget:g}: the int8 drop exceeds it and no layer can be raised")
