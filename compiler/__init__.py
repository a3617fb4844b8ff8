"""An ML compiler for edge NPUs built on Apache TVM Relax.

Data flows one way: frontend -> passes -> partition -> build -> run, with report
writers reading the IR at the end. See README.md for the commands.
"""

__version__ = "0.1.0"


def compile(module, example_inputs, **options):  # noqa: A001 - compiler.compile, the Python API
    """Build a torch.nn.Module for a target; see compiler/api.py."""
    from compiler.api import compile as compile_module

    return compile_module(module, example_inputs, **options)
