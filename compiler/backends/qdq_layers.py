"""Layer by layer: does the QDQ ONNX export compute each int8 layer as our host int8 build does?

The end-to-end check (qdq_check.agreement) compares the outputs, where one rounding tie in an early
layer (ONNX Runtime requantises with float32 multiplies, we with a fixed-point multiplier) grows
through every later layer: on MediaPipe's face detector, calibrated on random inputs, 1 LSB after
the first convolution becomes 38 at an output, and two modes of ONNX Runtime itself (fused, op by
op) differ by 31 LSB on the same file. This check takes that compounding away: every int8 tensor
of the file is computed by ONNX Runtime from OUR int8 values of the tensors its layer reads, and
compared with ours. A layer the file writes as our build computes it is then within 1 LSB, and
only at rounding ties.

How: the build's int8 module with main also returning every int8 binding (`instrumented`), compiled
for the host (its first outputs are the host build's) and written by the same exporter as
model_qdq.onnx; in that file each such tensor's readers are moved to a new graph input fed our
value (`cut`), and ONNX Runtime computes every layer in one run.
"""

import numpy as np
import onnx
import tvm
from onnx import helper
from tvm import relax

from compiler.export.qdq_walk import main_outputs


def instrumented(qdq: tvm.IRModule) -> tuple[tvm.IRModule, int]:
    """qdq with main returning (*its outputs, *every other int8 binding), and how many outputs it had.
    A binding that reads a graph input directly (the input's quantize) stays inside its reader's layer."""
    main_gv, main = qdq.get_global_var("main"), qdq["main"]
    outputs = main_outputs(qdq)
    tensors = [binding.var for block in main.body.blocks for binding in block.bindings
               if str(getattr(binding.var.ty, "dtype", "")) == "int8" and binding.var not in outputs
               and not (isinstance(binding.value, relax.Call) and any(a in main.params for a in binding.value.args))]
    everything = relax.BlockBuilder().normalize(relax.Tuple([*outputs, *tensors]))
    result = relax.Var("everything", everything.ty)
    blocks = list(main.body.blocks)
    last = blocks[-1]
    binding = relax.VarBinding(result, everything)
    blocks[-1] = (relax.DataflowBlock if isinstance(last, relax.DataflowBlock) else relax.BindingBlock)(
        [*last.bindings, binding])
    mod = tvm.IRModule(dict(qdq.functions), attrs=qdq.attrs)
    body = relax.BlockBuilder().normalize(relax.SeqExpr(blocks, result))
    mod[main_gv] = relax.Function(main.params, body, None, main.is_pure, main.attrs)
    return mod, len(outputs)


def cut(model: onnx.ModelProto, homes: list) -> onnx.ModelProto:
    """`model` with each tensor of `homes` (ONNX name, its axis order) also a graph input named
    NAME/ours, which every node that read NAME reads instead; the graph outputs are the home tensors."""
    names = {name for name, _ in homes}
    out = onnx.ModelProto()
    out.CopyFrom(model)
    for node in out.graph.node:
        for index, name in enumerate(node.input):
            if name in names:
                node.input[index] = f"{name}/ours"
    types = {value.name: value.type.tensor_type.elem_type for value in [*out.graph.output, *out.graph.value_info]}
    del out.graph.output[:]
    for name, _ in homes:
        out.graph.input.append(helper.make_tensor_value_info(f"{name}/ours", onnx.TensorProto.INT8, None))
        out.graph.output.append(helper.make_tensor_value_info(name, types.get(name, onnx.TensorProto.INT8), None))
    return out


def layer_agreement(ours, theirs, model_outputs: int, homes: list, samples) -> dict:
    """Per-layer differences over the samples: `ours(inputs)` -> (*outputs, *int8 tensors) of our
    build, `theirs(feed)` -> the cut file's outputs (the home tensors) given {input name: array}."""
    worst, differing, total, worst_layer = 0, 0, 0, None
    for _, inputs in samples:
        values = ours(inputs)
        tensors = values[model_outputs:]
        feed = {f"{name}/ours": np.ascontiguousarray(np.transpose(value, perm))
                for (name, perm), value in zip(homes, tensors)}
        for (name, perm), value, got in zip(homes, tensors, theirs(inputs, feed)):
            gap = np.abs(got.astype(np.int32) - np.transpose(value, perm).astype(np.int32))
            if gap.size and int(gap.max()) > worst:
                worst, worst_layer = int(gap.max()), name
            differing += int(np.count_nonzero(gap))
            total += gap.size
    return {"layers": len(homes), "max_lsb": worst, "differing_values": differing, "values": total,
            "differing_percent": round(100.0 * differing / max(total, 1), 4), "worst_tensor": worst_layer,
            "samples": len(samples), "passed": worst <= 1}


class LayerCheck:
    """Our host int8 build of the instrumented module (`reference(inputs)`: its outputs, the host
    build's) and the export of that module (`exported`, `homes`: the int8 tensors after the outputs)."""

    def __init__(self, compiled, output_names: list, bias: str):
        from compiler.codegen.int8 import partition_int8, run_codegen
        from compiler.compile_model import spec_form
        from compiler.export.onnx_qdq import export_onnx_qdq_details

        module, self.count = instrumented(compiled.qdq)
        spec = compiled.integer_spec
        self.vm = relax.VirtualMachine(tvm.compile(run_codegen(partition_int8(spec_form(module, spec), spec)),
                                                   target=tvm.target.Target({"kind": "llvm"})), tvm.cpu())
        self.exported = export_onnx_qdq_details(module, output_names, bias)
        self.homes = self.exported.output_homes[self.count:]

    def ours(self, inputs) -> list[np.ndarray]:
        return [value.numpy() for value in self.vm["main"](*[tvm.runtime.tensor(x) for x in inputs])]

    def reference(self, inputs) -> list[np.ndarray]:
        return self.ours(inputs)[:self.count]

    def agreement(self, model: onnx.ModelProto, samples, literal: bool) -> dict:
        """layer_agreement of `model` (the export, or a file changed from it) over `samples`."""
        from compiler.run.onnxruntime_cpu import session

        layers = session(cut(model, self.homes), literal=literal)
        names = [value.name for value in model.graph.input]

        def theirs(inputs, feed):
            return layers.run(None, {**dict(zip(names, inputs)), **feed})

        return layer_agreement(self.ours, theirs, self.count, self.homes, samples)


def layer_check(result: dict, literal: bool) -> dict:
    """layer_agreement as a report check."""
    from compiler.backends.qdq_check import QDQ_FILE
    from compiler.report.backend import check

    return check(f"{QDQ_FILE}'s int8 layers in ONNX Runtime{' (op by op)' if literal else ''}, each fed our build's "
                 "int8 inputs", f"{result['layers']} int8 tensors of the export of the build's int8 module with every "
                 f"int8 tensor an output (model_qdq.onnx's writer), {result['samples']} inputs, each tensor against ours",
                 f"max {result['max_lsb']} LSB, {result['differing_values']} of {result['values']} values differ "
                 f"({result['differing_percent']:g}%)", result["passed"])
