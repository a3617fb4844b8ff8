"""The compiler as an ONNX backend (onnx.backend.base), so ONNX's own test suite can test it.

    import compiler.backend as backend
    rep = backend.prepare(model)           # compiles for the "host" target, as `compiler build` does
    outputs = rep.run([x])                 # or rep.run({"input": x}); a tuple of numpy arrays

prepare goes through the same compile_model pipeline as the CLI (import with our converter
overrides, graph passes, partition, TVM codegen), so a passing ONNX case is evidence about
our compiler, not about TVM alone. Only the CPU device is supported.
"""

import numpy as np
import onnx
import tvm
import tvm_ffi
from onnx.backend.base import Backend, BackendRep

from compiler.compile_model import compile_model
from compiler.errors import CompilerError
from compiler.frontend.onnx import graph_inputs, resolve_input_shapes
from compiler.targets import get_target


class CompilerRep(BackendRep):
    """A compiled model bound to a Relax VM on the CPU; run() may be called repeatedly."""

    def __init__(self, compiled, input_shapes):
        self.compiled = compiled
        self.inputs = [(value.name, input_shapes[value.name],
                        onnx.helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type))
                       for value in graph_inputs(compiled.model)]
        self.output_names = [value.name for value in compiled.model.graph.output]
        self._vm = tvm.relax.VirtualMachine(compiled.executable, tvm.cpu())

    def run(self, inputs, **kwargs):
        """inputs: a list in graph-input order, a dict by input name, or one array (one input)."""
        arrays = self._ordered(inputs)
        for (name, shape, dtype), array in zip(self.inputs, arrays):
            if array.shape != shape or array.dtype != dtype:
                raise CompilerError(f"input {name!r}: expected {dtype.name}{list(shape)}, got {array.dtype.name}{list(array.shape)}")
        result = self._vm["main"](*[tvm.runtime.tensor(np.asarray(a, order="C")) for a in arrays])
        outputs = tuple(_to_numpy(result)) if len(self.output_names) > 1 else (_to_numpy(result),)
        if len(outputs) != len(self.output_names):
            raise RuntimeError(f"the compiled model returned {len(outputs)} outputs, the ONNX graph has {len(self.output_names)}")
        return outputs

    def _ordered(self, inputs):
        names = [name for name, _, _ in self.inputs]
        if isinstance(inputs, dict):
            missing = [name for name in names if name not in inputs]
            if missing:
                raise CompilerError(f"missing input{'s' if len(missing) > 1 else ''}: {', '.join(missing)}")
            inputs = [inputs[name] for name in names]
        elif isinstance(inputs, np.ndarray):
            inputs = [inputs]
        inputs = [np.asarray(a) for a in inputs]
        if len(inputs) != len(names):
            raise CompilerError(f"expected {len(names)} input{'s' if len(names) != 1 else ''} ({', '.join(names)}), got {len(inputs)}")
        return inputs


def _to_numpy(value):
    """A VM result (tensor, shape, or a tuple of them) as numpy; a tuple is returned as a list."""
    if isinstance(value, tvm.runtime.Tensor):
        return value.numpy()
    if isinstance(value, tvm_ffi.Shape):
        return np.array(list(value), dtype=np.int64)
    if isinstance(value, (tuple, list, tvm_ffi.Array)):
        return [_to_numpy(item) for item in value]
    return np.asarray(value)


class CompilerBackend(Backend):
    """onnx.backend.base.Backend over compile_model for the "host" target."""

    @classmethod
    def prepare(cls, model, device="CPU", **kwargs):
        """Compile `model` for the host; kwargs: input_shapes ({name: shape}) fixes dynamic inputs."""
        if not cls.supports_device(device):
            raise CompilerError(f"device {device!r} is not supported (only CPU)")
        super().prepare(model, device)  # onnx.checker.check_model
        shapes = kwargs.get("input_shapes") or {}
        compiled = compile_model(model, get_target("host"), input_shapes=shapes,
                                 source=model.graph.name or "model")
        return CompilerRep(compiled, resolve_input_shapes(model, shapes))

    @classmethod
    def run_node(cls, node, inputs, device="CPU", outputs_info=None, **kwargs):
        """Run one node by wrapping it in a one-node model (inputs: arrays in the node's input order).

        Output types come from outputs_info [(dtype, shape), ...] if given, else from ONNX shape inference.
        """
        super().run_node(node, inputs, device=device, outputs_info=outputs_info, **kwargs)
        helper = onnx.helper
        arrays = [np.asarray(a) for a in inputs]
        input_values = [helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
                        for name, a in zip([name for name in node.input if name], arrays)]
        output_names = [name for name in node.output if name]
        if outputs_info:
            output_values = [helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), shape)
                             for name, (dtype, shape) in zip(output_names, outputs_info)]
        else:
            output_values = [helper.make_empty_tensor_value_info(name) for name in output_names]
        opset = kwargs.get("opset_version", onnx.defs.onnx_opset_version())
        model = helper.make_model(helper.make_graph([node], node.op_type, input_values, output_values),
                                  opset_imports=[helper.make_opsetid("", opset)])
        return cls.run_model(onnx.shape_inference.infer_shapes(model), arrays, device)

    @classmethod
    def supports_device(cls, device):
        return onnx.backend.base.Device(device).type == onnx.backend.base.DeviceType.CPU


prepare = CompilerBackend.prepare
run_model = CompilerBackend.run_model
run_node = CompilerBackend.run_node
supports_device = CompilerBackend.supports_device
