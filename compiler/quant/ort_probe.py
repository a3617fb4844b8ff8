"""The float probe on ONNX Runtime: the float module written as ONNX (export/onnx_probe.py), every
observed tensor an output, run by ONNX Runtime's CPU provider.

Why: compiling the instrumented module with TVM is most of a small model's calibration and --val
run (the digits CNN: 0.48 s of LLVM for 0.35M MACs a sample), and TVM's untuned loops are slow on a
large one; ONNX Runtime opens the file in milliseconds and runs convolutions on MLAS. Its values
are the float module's within float rounding (another summation order), as the library probe's are
(calibrate.py `_convolutions_on_library`); ONNX Runtime is the float reference of the project
anyway. A module with an op the export does not write returns None: calibrate compiles the probe
with TVM.
"""

import importlib.util

from compiler.quant import qdq_reads as reads


class OrtProbe:
    """calibrate.Probe's interface: `ids`, run(feed) -> [model output (a tuple of a model's several),
    *observed tensors] as arrays, output(feed) -> the model's output alone."""

    def __init__(self, model, ids: list[str], outputs: int):
        from compiler.run.onnxruntime_cpu import session

        self.ids, self.outputs = ids, outputs
        self.session = session(model)
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()[:outputs]]

    def run(self, feed) -> list:
        values = self.session.run(None, dict(zip(self.inputs, feed)))
        return [values[0] if self.outputs == 1 else tuple(values[:self.outputs]), *values[self.outputs:]]

    def output(self, feed):
        values = self.session.run(self.output_names, dict(zip(self.inputs, feed)))
        return values[0] if self.outputs == 1 else tuple(values)


def ort_probe(mod, observed: list, ids: list[str]) -> OrtProbe | None:
    """The probe of float module `mod` observing the vars `observed` (named `ids`), or None when its
    export meets an op it does not write, or ONNX Runtime is not installed."""
    from compiler.export.onnx_probe import export_probe
    from compiler.export.qdq_walk import main_outputs

    if importlib.util.find_spec("onnxruntime") is None:
        return None
    try:
        model = export_probe(mod, observed)
    except reads.Unsupported:
        return None
    return OrtProbe(model, ids, len(main_outputs(mod)))
