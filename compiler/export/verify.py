"""The exported .tflite, checked in LiteRT against the build it came from, on every build.

LiteRT runs the file with TFLite's built-in kernels and no XNNPACK delegate (the integer
arithmetic TFLite Micro, Vela and the Edge TPU compiler take as the reference, TFLITE.md); the
host int8 build of the same module runs beside it on the same random inputs (spanning each
input's int8 range). Its report entry says what was compared and what was found; a difference is
a compiler bug, so it is also said on stderr.
"""

import collections

import numpy as np
import tvm


TFLITE_FILE = "model.tflite"
CHECK_INPUTS = 4


def write_tflite(exported, compiled, staging, warn=None) -> dict:
    """Write OUT/model.tflite (export/tflite.py's Exported) and return its report entry (operators,
    the LiteRT check: bit-exact expected unless the file has float layers)."""
    data = exported.data
    from ai_edge_litert import schema_py_generated as schema

    (staging / TFLITE_FILE).write_bytes(data)
    model = schema.ModelT.InitFromPackedBuf(data, 0)
    names = {value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
    graph = model.subgraphs[0]
    operators = collections.Counter(names[model.operatorCodes[op.opcodeIndex].builtinCode] for op in graph.operators)
    interpreter = litert_interpreter(model_content=data)
    vm = host_vm(compiled)
    ranges = _quantized_inputs(model, graph, names)
    rng = np.random.default_rng(0)
    worst, differing = 0.0, 0
    for _ in range(CHECK_INPUTS):
        inputs = [_random_input(detail, ranges.get(detail["index"]), rng) for detail in interpreter.get_input_details()]
        for detail, value in zip(interpreter.get_input_details(), inputs):
            interpreter.set_tensor(detail["index"], value)
        interpreter.invoke()
        theirs = [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]
        result = vm["main"](*[tvm.runtime.tensor(x) for x in inputs])
        ours = [result.numpy()] if hasattr(result, "numpy") else [r.numpy() for r in result]
        gaps = [float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)), initial=0.0))
                for a, b in zip(theirs, ours)]
        worst = max([worst, *gaps])
        differing += any(gap > 0 for gap in gaps)
    exact = not exported.float_layers
    if differing and exact and warn is not None:
        warn(f"--emit tflite: LiteRT's outputs of {TFLITE_FILE} differ from the build's on {differing} of "
             f"{CHECK_INPUTS} inputs (by up to {worst:g}); please report this")
    return {"file": TFLITE_FILE, "bytes": len(data), "operators": dict(sorted(operators.items())),
            "check": {"reference": "LiteRT built-in kernels (no XNNPACK)", "compared_with": "the host int8 build",
                      "inputs": CHECK_INPUTS, "expected": "bit-exact" if exact else
                      f"within float rounding ({len(exported.float_layers)} float layers)",
                      "identical": differing == 0, "max_abs_difference": worst},
            "float_layers": exported.float_layers}


def litert_interpreter(**model):
    """LiteRT's interpreter on a .tflite (model_path= or model_content=) with TFLite's built-in kernels and no
    XNNPACK delegate, its tensors allocated."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(**model, experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    return interpreter


def host_vm(compiled):
    """The build's int8 module on the host (the host target's own executable when it has one)."""
    from tvm import relax

    executable = compiled.executable
    if executable is None:
        executable = tvm.compile(compiled.lowered, target=tvm.target.Target({"kind": "llvm"}))
    return relax.VirtualMachine(executable, tvm.cpu())


def _quantized_inputs(model, graph, names) -> dict:
    """Float input tensor index -> (scale, zero point) of the QUANTIZE that reads it."""
    found = {}
    for op in graph.operators:
        if names[model.operatorCodes[op.opcodeIndex].builtinCode] == "QUANTIZE" and op.inputs[0] in graph.inputs:
            quant = graph.tensors[op.outputs[0]].quantization
            found[op.inputs[0]] = (quant.scale[0], quant.zeroPoint[0])
    return found


def _random_input(detail, qparams, rng) -> np.ndarray:
    """Uniform over the input's int8 range: its quantised values, or the floats they stand for
    (a float input read by something other than a QUANTIZE: [-1, 1])."""
    shape, dtype = tuple(detail["shape"]), detail["dtype"]
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
    scale, zero_point = qparams or (1.0 / 128.0, 0)
    return rng.uniform(scale * (-128 - zero_point), scale * (127 - zero_point), size=shape).astype(np.float32)
