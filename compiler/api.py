"""The Python API: build a model held in Python, run the build.

    import compiler
    build = compiler.compile(module, (example,), target="coral-npu", quantize="int8", calib="calib.npz",
                             out="out/", memory="highmem")
    outputs = build.run([x])            # numpy arrays, through the target's runner (host VM, QEMU, ...)
    build.report["totals"]              # report.json as a dict

A torch.nn.Module is exported with torch.export (example_inputs fix the shapes) and goes the way of a
.pt2 file (frontend/torch_program.py); every CLI option of `build` has its keyword here.
"""

import tempfile
from pathlib import Path

import numpy as np

from compiler.errors import CompilerError


class Build:
    """A finished build: OUT, its report, and run(inputs)."""

    def __init__(self, out: Path, report: dict):
        self.out, self.report = out, report

    def run(self, inputs) -> list[np.ndarray]:
        from compiler.run.dispatch import run_build

        with tempfile.TemporaryDirectory() as folder:
            paths = []
            for index, value in enumerate(inputs):
                paths.append(str(Path(folder) / f"input{index}.npy"))
                np.save(paths[-1], np.asarray(value))
            return run_build(self.out, paths).outputs


def compile(module, example_inputs, target="host", quantize=None, calib=None, out="out", memory=None, val=None,
            **quant_options) -> Build:  # noqa: A001 - the API's name, as the issue asks
    from compiler.build import build
    from compiler.frontend.torch_program import export_module, program_to_onnx
    from compiler.quant.quantize import QuantConfig

    name = type(module).__name__
    onnx_model = program_to_onnx(export_module(module, example_inputs, name), name)
    quant = None
    if quantize is not None:
        if quantize == "int8" and calib is None:
            raise CompilerError("quantize='int8' needs calib= (a .npz / .npy path, or 'random')")
        quant = QuantConfig(calib=calib, scheme=quantize, progress=False, **quant_options)
    report = build(f"{name}.pt2", target, out, quant=quant, val_path=val, memory=memory, model=onnx_model)
    return Build(Path(out), report)
