"""Small .tflite models in tests: TFLiteBuilder (compiler/export/tflite_writer.py) writes them, without
TensorFlow; litert_run runs them in LiteRT. The same bytes serve LiteRT and our frontend."""

from compiler.export.tflite_writer import TFLiteBuilder  # noqa: F401 - the tests' builder


def litert_run(path, inputs: list, reference=True) -> list:
    """Run a .tflite in LiteRT with TFLite's built-in kernels (no XNNPACK delegate): the integer
    arithmetic TFLite Micro and the Edge TPU compiler follow (see TFLITE.md)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.BUILTIN_REF if reference else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interpreter = Interpreter(model_path=str(path), experimental_op_resolver_type=resolver)
    interpreter.allocate_tensors()
    for detail, value in zip(interpreter.get_input_details(), inputs):
        interpreter.set_tensor(detail["index"], value)
    interpreter.invoke()
    return [interpreter.get_tensor(detail["index"]) for detail in interpreter.get_output_details()]
