"""The one exception type users see.

Anything raised as CompilerError is printed by the CLI as a single line on stderr
with exit code 2; anything else is a bug in the compiler and keeps its traceback.
"""


class CompilerError(Exception):
    """A problem with the user's input (model, flags, data), stated in one line."""


class FitError(CompilerError):
    """The firmware does not fit the memory profile (code, weights or activations): callers
    with a smaller alternative (the default schedules instead of tuned ones) can retry."""
