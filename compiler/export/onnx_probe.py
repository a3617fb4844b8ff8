"""The float module as an ONNX file that also returns every tensor calibration observes: the float
probe ONNX Runtime runs (quant/ort_probe.py) instead of a TVM compile of the instrumented module.

main's bindings are written one Relax op to one ONNX operator (onnx_float.py's table, the tensor
forms of onnx_qdq.py's exporter); a call to a fused group is written as the ops of its body. The
file's outputs are main's outputs, then each observed binding (calibrate.tensor_ids, graph inputs
left out) in its own axis order. An op outside the table raises reads.Unsupported: the caller then
compiles the probe with TVM as before.
"""

import numpy as np
import onnx
import tvm
from onnx import helper
from tvm import relax

from compiler.export.onnx_float import FLOAT_OPS, FloatExportError, emit_float, identity
from compiler.export.onnx_qdq import IR_VERSION, OPSET, _Exporter, _dtype, _shape
from compiler.export.qdq_walk import main_bindings, main_outputs, moves
from compiler.quant import qdq_reads as reads


def export_probe(mod: tvm.IRModule, observed: list) -> onnx.ModelProto:
    """main of the float module `mod` returning (its outputs, *the `observed` vars); inputs named
    input0, input1, ... in main's parameter order. reads.Unsupported when some op has no ONNX form here."""
    return _ProbeExporter(mod).export(observed)


class _ProbeExporter(_Exporter):
    def __init__(self, mod: tvm.IRModule):
        super().__init__(mod, "int32")

    def export(self, observed: list) -> onnx.ModelProto:
        main = self.mod["main"]
        inputs = []
        for index, param in enumerate(main.params):
            name = self._name(f"input{index}")
            self.forms[param] = {identity(param): name}
            inputs.append(helper.make_tensor_value_info(name, _dtype(param), _shape(param)))
        for binding in main_bindings(self.mod):
            self._write(binding.var, binding.value)
        outputs = []
        for index, var in enumerate([*main_outputs(self.mod), *observed]):
            name = self._node("Identity", [self.form(var, identity(var))], f"output{index}")
            outputs.append(helper.make_tensor_value_info(name, _dtype(var), _shape(var)))
        graph = helper.make_graph(self.nodes, "float_probe", inputs, outputs, self.initializers)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                 producer_name="edge-npu-compiler", ir_version=IR_VERSION)

    def _write(self, var, value) -> None:
        if isinstance(value, relax.Var):
            self.forms[var] = self.forms[value]
        elif isinstance(value, relax.Call) and isinstance(value.op, relax.GlobalVar):
            self._inline(var, value)
        elif isinstance(value, relax.Call) and moves(value):
            self._move(value, var)
        elif isinstance(value, relax.Call) and isinstance(value.op, tvm.ir.Op) and value.op.name in FLOAT_OPS:
            try:
                emit_float(self, value, var)
            except FloatExportError as err:
                raise reads.Unsupported(str(err)) from None
        else:
            what = value.op.name if isinstance(value, relax.Call) and isinstance(value.op, tvm.ir.Op) else \
                type(value).__name__
            raise reads.Unsupported(f"{var.name} computes {what}")

    def _inline(self, var, call) -> None:
        """A fused group: its body's ops, reading the call's arguments."""
        func = self.mod[call.op]
        if not isinstance(func, relax.Function) or not isinstance(func.body, relax.SeqExpr):
            raise reads.Unsupported(f"{var.name} calls {call.op.name_hint}, which is not a Relax function")
        for param, arg in zip(func.params, call.args):
            if isinstance(arg, relax.Var):
                self.forms[param] = self.forms[arg]
            elif reads.is_const(arg) and arg.value.numpy().dtype == np.float32:
                self.folded[param] = arg.value.numpy()
            else:
                raise reads.Unsupported(f"{var.name} passes {type(arg).__name__} to {call.op.name_hint}")
        for block in func.body.blocks:
            for binding in block.bindings:
                self._write(binding.var, binding.value)
        result = func.body.body
        if not isinstance(result, relax.Var):
            raise reads.Unsupported(f"{call.op.name_hint} returns {type(result).__name__}")
        self.forms[var] = self.forms[result]
