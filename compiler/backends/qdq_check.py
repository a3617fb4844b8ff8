"""Checking an artefact of our int8 model against the host int8 build, for the backends that take
the QDQ ONNX export (export/onnx_qdq.py): OpenVINO, the TensorRT / Ascend / Sophon hand-offs.

The host int8 build of the same module (compiled.lowered on LLVM, the ONNX integer spec: one
rounding per requantisation, as ONNX Runtime's and OpenVINO's int8 kernels) runs beside the artefact
on the same inputs: random normal samples and samples uniform over each float input's int8 range
(the calibrated range: what the quantize at the input represents). Outputs are compared in steps of
their int8 scale (LSB): a float output dequantized from int8 differs by a whole number of steps, or by
a fraction of one where the runtime fuses the output's QuantizeLinear -> DequantizeLinear away
(OpenVINO does: its float output is not on the int8 grid; a value counts as identical when it is
within half a step, i.e. it quantises to the same int8 value); a
float output computed in float (a softmax left float) counts as identical within float32 rounding.
"""

import numpy as np
import tvm
from tvm import relax

from compiler.backends.qdq_layers import LayerCheck, layer_check
from compiler.report.backend import check
from compiler.codegen.int8 import int8_groups
from compiler.export.qdq_walk import QParamPlan, is_composite_call, main_bindings, main_outputs
from compiler.quant import patterns
from compiler.quant.integer_spec import ONNX
from compiler.run.host import timed_runs

RANDOM_INPUTS = 8        # random normal samples (at least)
RANGE_INPUTS = 8         # samples uniform over each input's int8 range (at least)
# More of each kind while the outputs hold fewer values than this, up to MAX_INPUTS of each: "99%
# identical" over a 10-class model's 16 x 10 logits would turn on one tie (the digits CNN: 98.75%
# on 16 inputs, 99.65-99.75% on 200 under two seeds).
MIN_VALUES, MAX_INPUTS = 2000, 100
MAX_LSB, MIN_IDENTICAL = 1, 99.0  # the goal: within 1 LSB, at least 99% of output values identical
LSB_ROUNDING = 1e-3  # a gap of n steps between dequantized float32 outputs measures n within this
FLOAT_ROUNDING = 1e-5  # relative: a float output (not dequantized from int8) counts as identical within this
QDQ_FILE = "model_qdq.onnx"


def host_reference(compiled):
    """inputs -> outputs of the host int8 build (numpy arrays)."""
    from compiler.export.verify import host_vm

    vm = host_vm(compiled)

    def run(inputs):
        result = vm["main"](*[tvm.runtime.tensor(x) for x in inputs])
        return [result.numpy()] if hasattr(result, "numpy") else [r.numpy() for r in result]
    return run


class Interface:
    """The int8 module's inputs (name, shape, dtype, int8 range in float when quantised at the input)
    and the size of one int8 step of each output (None for a float output not dequantized from int8)."""

    def __init__(self, qdq: tvm.IRModule):
        grouped = int8_groups(qdq, ONNX)
        bindings = main_bindings(grouped)
        plan = QParamPlan(grouped, bindings, "check")
        main = grouped["main"]
        self.inputs = [(p.name, [int(d) for d in p.ty.shape], str(p.ty.dtype)) for p in main.params]
        self.ranges, producers = {}, {}
        for binding in bindings:
            producers[binding.var] = binding.value
            if is_composite_call(grouped, binding.value):
                row, a = patterns.match_composite(grouped[binding.value.op])
                arg = binding.value.args[0]
                if row.kernel == "quantize" and arg in main.params and binding.var in plan.qparams:
                    scale, zero_point = plan.qparams[binding.var]
                    self.ranges[arg.name] = (scale * (-128 - zero_point), scale * (127 - zero_point))
        self.steps = []
        self.values_per_input = sum(int(np.prod([int(d) for d in out.ty.shape])) for out in main_outputs(grouped))
        for out in main_outputs(grouped):
            value = producers.get(out)
            while isinstance(value, relax.Var):
                out, value = value, producers.get(value)
            if str(out.ty.dtype) in ("int8", "uint8"):
                self.steps.append(1.0)
            elif is_composite_call(grouped, value) and value.args[0] in plan.qparams:
                self.steps.append(float(plan.qparams[value.args[0]][0]))
            else:
                self.steps.append(None)

    def samples(self, seed=0) -> list[tuple[str, list]]:
        """(kind, inputs) pairs: random normal, and uniform over the int8 range (RANDOM_INPUTS, RANGE_INPUTS, more
        when the outputs are small: MIN_VALUES)."""
        rng = np.random.default_rng(seed)
        out = []
        more = min(MAX_INPUTS, -(-MIN_VALUES // (2 * max(self.values_per_input, 1))))
        for kind, count in (("random", max(RANDOM_INPUTS, more)), ("range", max(RANGE_INPUTS, more))):
            for _ in range(count):
                out.append((kind, [self._sample(name, shape, dtype, kind, rng) for name, shape, dtype in self.inputs]))
        return out

    def _sample(self, name, shape, dtype, kind, rng):
        if dtype in ("int8", "uint8"):
            info = np.iinfo(dtype)
            return rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)
        if kind == "range" and name in self.ranges:
            lo, hi = self.ranges[name]
            return rng.uniform(lo, hi, shape).astype(np.float32)
        return rng.normal(size=shape).astype(np.float32)


def agreement(theirs_fn, ours_fn, interface: Interface, samples) -> dict:
    """Max difference in LSB and % of identical output values, over the samples."""
    worst, identical, total, worst_abs = 0, 0, 0, 0.0
    for _, inputs in samples:
        for a, b, step in zip(theirs_fn(inputs), ours_fn(inputs), interface.steps):
            gap = np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))
            worst_abs = max(worst_abs, float(gap.max(initial=0.0)))
            total += gap.size
            if step is not None:
                steps = gap / step
                identical += int(np.count_nonzero(steps < 0.5))
                worst = max(worst, float(steps.max(initial=0.0)))
            else:  # a float output (a float softmax): the same within float32 rounding
                identical += int(np.count_nonzero(gap <= FLOAT_ROUNDING * max(float(np.abs(b).max(initial=0.0)), 1e-30)))
    percent = 100.0 * identical / max(total, 1)
    return {"max_lsb": round(worst, 3), "identical_percent": round(percent, 2), "max_abs_difference": worst_abs,
            "values": total, "samples": len(samples), "random_inputs": sum(kind == "random" for kind, _ in samples),
            "passed": worst <= MAX_LSB + LSB_ROUNDING and percent >= MIN_IDENTICAL}


def agreement_check(what: str, result: dict) -> dict:
    """agreement() as a report check."""
    random = result["random_inputs"]
    return check(what, f"{result['samples']} inputs ({random} random normal, {result['samples'] - random} uniform over "
                       "the inputs' int8 ranges), each output value compared in steps of its int8 scale",
                 f"max {result['max_lsb']} LSB, {result['identical_percent']}% of {result['values']} values identical",
                 result["passed"])


def ort_runner(model_bytes: bytes, threads: int | None = None, literal: bool = False):
    """inputs -> outputs of ONNX Runtime's CPU provider on a model (literal: op by op, onnxruntime_cpu.session)."""
    from compiler.run.onnxruntime_cpu import session as ort_session

    session = ort_session(model_bytes, threads, literal)
    names = [i.name for i in session.get_inputs()]
    return lambda inputs: session.run(None, dict(zip(names, inputs)))


def median_ms(fn, inputs, runs: int) -> float:
    """Median wall time of fn(inputs) over `runs` runs, after one untimed warm-up run."""
    return float(np.median(timed_runs(lambda: fn(inputs), runs)[1]))


class CheckedExport:
    """OUT/model_qdq.onnx (export/onnx_qdq.py) of a build's int8 module, and its ONNX Runtime check
    against the host int8 build: `checks` (report checks), `notes`, and what a backend compares
    more runtimes with (`reference`, `interface`, `samples`)."""

    def __init__(self, compiled, staging, target, bias="int32"):
        from compiler.errors import CompilerError
        from compiler.export.onnx_qdq import export_onnx_qdq_details

        if compiled.qdq is None:
            raise CompilerError(f"--target {target.name}: takes an int8 model; build with --quantize int8 (or from a "
                                "quantised model)")
        names = [value.name for value in compiled.model.graph.output]
        self.exported = export_onnx_qdq_details(compiled.qdq, names, bias)
        self.data = self.exported.model.SerializeToString()
        (staging / QDQ_FILE).write_bytes(self.data)
        self.interface = Interface(compiled.qdq)
        self.samples = self.interface.samples()
        # float layers: op by op, as the file says (ONNX Runtime's fusions would drop the Q -> DQ around them)
        literal = bool(self.exported.float_layers)
        # the host int8 build, instrumented: its outputs are the reference, its int8 tensors the layers' inputs
        layers = LayerCheck(compiled, names, bias)
        self.reference, self.layers = layers.reference, layers.agreement(layers.exported.model, self.samples, literal)
        self.ort = agreement(ort_runner(self.data, literal=literal), self.reference, self.interface, self.samples)
        self.checks = [agreement_check(f"{QDQ_FILE} in ONNX Runtime{' (op by op)' if literal else ''} against our host "
                                       "int8 build", self.ort), layer_check(self.layers, literal)]
        self.notes = []
        if self.exported.float_functions:
            self.notes.append("tables written as their float function between DequantizeLinear and QuantizeLinear "
                              "(may differ from our table by 1 LSB): " + ", ".join(
                                  f"{layer} ({name})" for layer, name in self.exported.float_functions.items()))
        if self.exported.tables:
            self.notes.append("tables written as the int8 lookup itself (Cast, Add 128, Gather): "
                              + ", ".join(self.exported.tables))
        if self.exported.float_layers:
            self.notes.append("float layers: " + ", ".join(self.exported.float_layers))
