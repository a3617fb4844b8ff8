# cython: language_level=3
"""Placeholder: the move kernels of kernels/ref for the tests (filled in by that work)."""
