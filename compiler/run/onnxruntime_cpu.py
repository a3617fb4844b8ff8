"""ONNX Runtime's CPU provider as every int8 comparison in the compiler and its tests opens it.

On x86 CPUs without VNNI (AVX2 / AVX-512 only) ONNX Runtime computes u8 x s8 products with
vpmaddubsw, whose int16 pair sums saturate when both weights of a pair are large: a quantised
conv's output can be many steps off (measured: 121 steps on a QDQ Conv-BN-ReLU on an AVX2 EPYC,
while with VNNI it is bit-exact to the QDQ graph). ONNX Runtime's own remedy is the session option
`session.x64quantprecision`, which turns such u8s8 products into u8u8 on those CPUs (and does
nothing where VNNI exists), so the reference does not depend on the machine the tests land on.
That rewrite cannot take QOperator models with int8 activations (ONNX Runtime 1.31 then finds no
QLinearConv kernel for the types it made); those get a session without it, as ONNX Runtime's
default is.
"""

QUANT_PRECISION = ("session.x64quantprecision", "1")


def session(model, threads: int | None = None, literal: bool = False):
    """An InferenceSession on the CPU provider; `model` is a path, serialized bytes or a ModelProto.
    literal: without graph optimisations, each node computed as ONNX defines it (ONNX Runtime's QDQ
    fusions drop the QuantizeLinear -> DequantizeLinear pairs around float operators, which changes
    the rounding the graph says)."""
    import onnxruntime as ort

    if hasattr(model, "SerializeToString"):
        model = model.SerializeToString()
    model = model if isinstance(model, bytes) else str(model)
    try:
        return ort.InferenceSession(model, _options(ort, threads, literal, QUANT_PRECISION),
                                    providers=["CPUExecutionProvider"])
    except ort.capi.onnxruntime_pybind11_state.NotImplemented:
        return ort.InferenceSession(model, _options(ort, threads, literal), providers=["CPUExecutionProvider"])


def _options(ort, threads, literal, *config):
    options = ort.SessionOptions()
    for key, value in config:
        options.add_session_config_entry(key, value)
    if threads:
        options.intra_op_num_threads = threads
    if literal:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return options
