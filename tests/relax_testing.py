"""Helpers for the IR tests: run a Relax module, run ONNX Runtime, compare IR with float tolerance.

`assert_ir_close` is `tvm.ir.assert_structural_equal` with constants compared by value within a
stated tolerance instead of bit for bit: expected modules carry constants the test computes
itself (e.g. with the BatchNorm formula), and a last-bit difference in float rounding is not a
structural difference. Everything else (ops, attributes, types, dataflow) must match exactly.
"""

import numpy as np
import tvm
from tvm import relax

from compiler.frontend import import_onnx
from compiler.partition import partition
from compiler.passes.pipeline import optimise
from compiler.run.onnxruntime_cpu import session
from compiler.targets import get_target


def tvm_partition(model) -> tvm.IRModule:
    """The float module as TVM alone compiles it: imported, optimised and partitioned with the
    host's fusion families, in the model's own layout, nothing offloaded. (compile_model's float
    host build also hands convolutions and dense layers to oneDNN, in NHWC: codegen/dnnl.py.) What
    the IR tests of calibration, graph.onnx and host tuning take as their float model."""
    return partition(optimise(import_onnx(model, None, "model")), get_target("host").fusion_families)


def run_relax(mod: tvm.IRModule, *inputs: np.ndarray) -> np.ndarray:
    """Compile `mod` for the host (llvm) and run main on numpy inputs."""
    executable = tvm.compile(mod, target="llvm")
    vm = relax.VirtualMachine(executable, tvm.cpu())
    result = vm["main"](*(tvm.runtime.tensor(x) for x in inputs))
    return result.numpy() if hasattr(result, "numpy") else [item.numpy() for item in result]


def run_onnxruntime(model, feeds: dict) -> list[np.ndarray]:
    return session(model).run(None, feeds)


def onnx_inputs(model, low=-2.0, high=2.0) -> dict[str, np.ndarray]:
    """Seeded uniform random float32 values for every graph input that is not an initializer."""
    initializers = {init.name for init in model.graph.initializer}
    inputs = {}
    for index, value in enumerate(v for v in model.graph.input if v.name not in initializers):
        shape = [d.dim_value for d in value.type.tensor_type.shape.dim]
        inputs[value.name] = np.random.default_rng(index + 1).uniform(low, high, shape).astype("float32")
    return inputs


def assert_matches_onnxruntime(model, mod, inputs=None, rtol=1e-4, atol=1e-5):
    """`mod` (compiled for llvm) and ONNX Runtime (on `model`) agree on every output."""
    inputs = onnx_inputs(model) if inputs is None else inputs
    expected = run_onnxruntime(model, inputs)
    actual = run_relax(mod, *inputs.values())
    actual = actual if isinstance(actual, list) else [actual]
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected):
        assert got.shape == want.shape and got.dtype == want.dtype, f"{got.dtype}{got.shape} vs {want.dtype}{want.shape}"
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


def call_ops(func) -> list[str]:
    """The op names of the top-level calls in `func` (or a module's main), in binding order.

    Calls to functions appear as the function's name.
    """
    if isinstance(func, tvm.IRModule):
        func = func["main"]
    names = []
    for block in func.body.blocks:
        for binding in block.bindings:
            value = binding.value
            if isinstance(value, relax.Call):
                op = value.op
                names.append(op.name if isinstance(op, tvm.ir.Op) else op.name_hint)
    return names


@relax.expr_functor.visitor
class _ConstCollector(relax.PyExprVisitor):
    def __init__(self):
        super().__init__()
        self.consts = []

    def visit_generic_const_(self, const):
        self.consts.append(const)


@relax.expr_functor.mutator
class _ConstReplacer(relax.PyExprMutator):
    def __init__(self, replacements):
        super().__init__()
        self.replacements = list(replacements)

    def visit_generic_const_(self, const):
        return self.replacements.pop(0)


def _functions(mod):
    return sorted(((gv.name_hint, func) for gv, func in mod.functions.items()), key=lambda item: item[0])


def _consts(func):
    collector = _ConstCollector()
    collector.visit_expr(func)
    return collector.consts


def assert_ir_close(actual: tvm.IRModule, expected: tvm.IRModule, rtol=1e-6, atol=1e-7):
    """Structural equality, except that constants need only agree within rtol/atol."""
    actual_funcs, expected_funcs = _functions(actual), _functions(expected)
    assert [name for name, _ in actual_funcs] == [name for name, _ in expected_funcs], "different functions"
    replaced = {}
    for (name, func), (_, expected_func) in zip(actual_funcs, expected_funcs):
        if not isinstance(func, relax.Function):
            continue
        got, want = _consts(func), _consts(expected_func)
        assert len(got) == len(want), f"{name}: {len(got)} constants, expected {len(want)}"
        for index, (g, w) in enumerate(zip(got, want)):
            g, w = g.value.numpy(), w.value.numpy()
            assert g.dtype == w.dtype and g.shape == w.shape, f"{name}: constant {index} is {g.dtype}{g.shape}, expected {w.dtype}{w.shape}"
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=f"{name}: constant {index}")
        replaced[name] = _ConstReplacer(want).visit_expr(func)
    functions = {gv: replaced.get(gv.name_hint, func) for gv, func in actual.functions.items()}
    tvm.ir.assert_structural_equal(tvm.IRModule(functions, attrs=actual.attrs), expected)
